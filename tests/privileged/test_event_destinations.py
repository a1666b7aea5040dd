"""Asynchronous invocation configuration applied for real: retries limited by MaximumRetryAttempts,
records delivered to an on-failure / on-success Lambda function in AWS's shape
(``aws-lambda-destinations-recordings.json``), in real sandboxes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_server import LaminaServer, allow_deliveries, client
from runtime_kit import function_log_text, installed_python, python_function, runtime_server

pytestmark = pytest.mark.privileged

RUNTIME = installed_python()
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"

SOURCE = """\
import json


def handler(event, context):
    print("attempt " + json.dumps(event, sort_keys=True))
    if event.get("fail"):
        raise Exception("intentional failure")
    return {"ok": event}
"""

RECORDER = """\
import json


def handler(event, context):
    print("RECORD " + json.dumps(event))
    return None
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = runtime_server(tmp_path_factory, "lamina-destinations", "--event-retry-delay", "0.3")
    # Deliveries need the execution role's permission (checked on put and on each delivery).
    allow_deliveries(srv)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    return client(server, read_timeout=60)


def create(lam: Any, code: str) -> str:
    return python_function(lam, code, runtime=RUNTIME, prefix="dst")


def log_text(server: LaminaServer, name: str) -> str:
    return function_log_text(server, name)


def records(server: LaminaServer, name: str) -> list[str]:
    return [
        line[len("RECORD ") :] for line in log_text(server, name).splitlines() if line.startswith("RECORD ")
    ]


def wait_record(server: LaminaServer, name: str, count: int = 1) -> list[str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(records(server, name)) < count:
        time.sleep(0.1)
    found = records(server, name)
    assert len(found) >= count, log_text(server, name)
    return found


def attempts(server: LaminaServer, name: str, payload: dict[str, Any]) -> int:
    return log_text(server, name).count("attempt " + json.dumps(payload, sort_keys=True))


def test_failure_without_retries_lands_in_the_on_failure_function(lam: Any, server: LaminaServer) -> None:
    source, recorder = create(lam, SOURCE), create(lam, RECORDER)
    lam.put_function_event_invoke_config(
        FunctionName=source,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": ARN + recorder}},
    )
    payload = {"fail": 1, "n": uuid.uuid4().hex}
    r = lam.invoke(FunctionName=source, InvocationType="Event", Payload=json.dumps(payload))
    assert r["StatusCode"] == 202
    request_id = r["ResponseMetadata"]["RequestId"]
    text = wait_record(server, recorder)[0]
    record = json.loads(text)
    # AWS's member order (the SQS destination recordings).
    assert list(record) == [
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    ]
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z") and "T" in record["timestamp"]
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": ARN + source + ":$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 1,
    }
    assert list(record["requestContext"]) == [
        "requestId",
        "functionArn",
        "condition",
        "approximateInvokeCount",
    ]
    assert record["requestPayload"] == payload
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert list(record["responseContext"]) == ["statusCode", "executedVersion", "functionError"]
    assert record["responsePayload"]["errorMessage"] == "intentional failure"
    assert record["responsePayload"]["errorType"] == "Exception"
    time.sleep(1.0)  # no retry follows: MaximumRetryAttempts 0 means one attempt
    assert attempts(server, source, payload) == 1
    assert len(records(server, recorder)) == 1


def test_maximum_retry_attempts_limits_attempts(lam: Any, server: LaminaServer) -> None:
    source, recorder = create(lam, SOURCE), create(lam, RECORDER)
    lam.put_function_event_invoke_config(
        FunctionName=source,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": ARN + recorder}},
    )
    payload = {"fail": 1, "n": uuid.uuid4().hex}
    lam.invoke(FunctionName=source, InvocationType="Event", Payload=json.dumps(payload))
    record = json.loads(wait_record(server, recorder)[0])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    time.sleep(1.5)  # long enough for a third attempt at the 0.3 s retry delay, were there one
    assert attempts(server, source, payload) == 2


def test_success_lands_in_the_on_success_function(lam: Any, server: LaminaServer) -> None:
    source, recorder = create(lam, SOURCE), create(lam, RECORDER)
    assert lam.publish_version(FunctionName=source)["Version"] == "1"
    lam.put_function_event_invoke_config(
        FunctionName=source,
        Qualifier="1",
        DestinationConfig={"OnSuccess": {"Destination": ARN + recorder}},
    )
    payload = {"n": uuid.uuid4().hex}
    lam.invoke(FunctionName=source, Qualifier="1", InvocationType="Event", Payload=json.dumps(payload))
    record = json.loads(wait_record(server, recorder)[0])
    assert record["requestContext"]["functionArn"] == ARN + source + ":1"
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "1"}
    assert record["responsePayload"] == {"ok": payload}
    # $LATEST has no configuration: its success goes nowhere.
    lam.invoke(FunctionName=source, InvocationType="Event", Payload=json.dumps({"latest": 1}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and attempts(server, source, {"latest": 1}) < 1:
        time.sleep(0.1)
    time.sleep(1.0)
    assert len(records(server, recorder)) == 1


def test_undeliverable_destinations_are_logged(lam: Any, server: LaminaServer) -> None:
    source = create(lam, SOURCE)
    queue = "arn:aws:sqs:us-east-1:000000000000:nowhere"
    lam.put_function_event_invoke_config(
        FunctionName=source, MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": queue}}
    )
    lam.invoke(FunctionName=source, InvocationType="Event", Payload=json.dumps({"fail": 1}))
    deadline = time.monotonic() + 30
    needle = f"not delivered to {queue}: lamina does not serve SQS"
    while time.monotonic() < deadline and needle not in server.log_path.read_text(errors="replace"):
        time.sleep(0.1)
    assert needle in server.log_path.read_text(errors="replace")


def test_a_delivery_the_role_may_no_longer_make_is_logged(lam: Any, server: LaminaServer) -> None:
    """The role allowed lambda:InvokeFunction when the configuration was put, and no longer is at
    delivery: the record is not delivered, and the log says why."""
    role = "arn:aws:iam::000000000000:role/destinations-revoked"
    iam = client(server, "iam")
    iam.create_role(
        RoleName="destinations-revoked",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    allow_deliveries(server, "destinations-revoked")
    recorder = create(lam, RECORDER)
    source = create(lam, SOURCE)
    lam.update_function_configuration(FunctionName=source, Role=role)
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=source, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    lam.put_function_event_invoke_config(
        FunctionName=source,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": ARN + recorder}},
    )
    iam.delete_role_policy(RoleName="destinations-revoked", PolicyName="deliveries")
    lam.invoke(FunctionName=source, InvocationType="Event", Payload=json.dumps({"fail": 1}))
    deadline = time.monotonic() + 30
    needle = f"not delivered to {ARN + recorder}: the function's execution role is not allowed lambda:InvokeFunction"
    while time.monotonic() < deadline and needle not in server.log_path.read_text(errors="replace"):
        time.sleep(0.1)
    assert needle in server.log_path.read_text(errors="replace")
    assert records(server, recorder) == []


def test_invoke_async_queues_an_event(lam: Any, server: LaminaServer) -> None:
    """The deprecated InvokeAsync: 202, and the event runs as an Event invocation."""
    source = create(lam, SOURCE)
    payload = {"n": uuid.uuid4().hex}
    r = lam.invoke_async(FunctionName=source, InvokeArgs=json.dumps(payload).encode())
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 202 and r["Status"] == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and attempts(server, source, payload) < 1:
        time.sleep(0.1)
    assert attempts(server, source, payload) == 1
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke_async(FunctionName="doesnotexist", InvokeArgs=b"{}")


def test_reserved_concurrency_zero_sends_the_event_to_on_failure(lam: Any, server: LaminaServer) -> None:
    # TestLambdaConcurrency::test_reserved_concurrency: accepted (202), never run, and recorded.
    source, recorder = create(lam, SOURCE), create(lam, RECORDER)
    lam.put_function_concurrency(FunctionName=source, ReservedConcurrentExecutions=0)
    lam.put_function_event_invoke_config(
        FunctionName=source,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": ARN + recorder}},
    )
    r = lam.invoke(FunctionName=source, InvocationType="Event", Payload=b"{}")
    assert r["StatusCode"] == 202
    record = json.loads(wait_record(server, recorder)[0])
    assert list(record) == ["version", "timestamp", "requestContext", "requestPayload"]
    assert record["requestContext"] == {
        "requestId": r["ResponseMetadata"]["RequestId"],
        "functionArn": ARN + source + ":$LATEST",
        "condition": "ZeroReservedConcurrency",
        "approximateInvokeCount": 0,
    }
    assert record["requestPayload"] == {}
    assert attempts(server, source, {}) == 0
