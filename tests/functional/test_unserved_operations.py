"""Lambda operations that need what lamina does not serve answer one clear error naming it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


@pytest.mark.parametrize(
    ("operation", "params", "needs"),
    [
        ("list_event_source_mappings", {}, "event sources (Amazon SQS, Kinesis, DynamoDB Streams"),
        (
            "create_event_source_mapping",
            {"FunctionName": "f", "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q"},
            "event sources",
        ),
        ("list_capacity_providers", {}, "Lambda Managed Instances"),
        ("list_durable_executions_by_function", {"FunctionName": "f"}, "Lambda durable functions"),
    ],
)
def test_unserved_operations_name_what_is_missing(
    lam: Any, operation: str, params: dict[str, Any], needs: str
) -> None:
    if not hasattr(lam, operation):
        pytest.skip(f"this botocore has no {operation}")
    with pytest.raises(ClientError) as caught:
        getattr(lam, operation)(**params)
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert error["Code"] == "NotImplemented"
    name = caught.value.operation_name
    assert error["Message"].startswith(f"The {name} operation needs ")
    assert needs in error["Message"] and "which lamina does not" in error["Message"]
