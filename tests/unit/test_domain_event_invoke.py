"""The pure rules of asynchronous invocation: retries, maximum age, records, AWS's messages."""

from __future__ import annotations

import json

import pytest

from lamina.domain import event_invoke as E
from lamina.errors import InvalidParameterValueException

CREATED = 1_000_000.0


def test_defaults_are_two_retries_and_six_hours() -> None:
    policy = E.AsyncPolicy.of(None)
    assert (policy.retries, policy.max_age_s, policy.on_success, policy.on_failure) == (2, 21600, None, None)


def test_attempts_and_conditions() -> None:
    policy = E.AsyncPolicy(retries=1)
    step = E.after_attempt(policy, ok=False, attempts=1, created=CREATED, now=CREATED, retry_delay_s=60)
    assert step == E.Next(None, CREATED + 60)
    step = E.after_attempt(policy, ok=False, attempts=2, created=CREATED, now=CREATED + 60, retry_delay_s=60)
    assert step == E.Next(E.Condition.RETRIES_EXHAUSTED)
    step = E.after_attempt(policy, ok=True, attempts=2, created=CREATED, now=CREATED + 60, retry_delay_s=60)
    assert step == E.Next(E.Condition.SUCCESS)
    # No retries: the first failure is the last.
    zero = E.AsyncPolicy(retries=0)
    step = E.after_attempt(zero, ok=False, attempts=1, created=CREATED, now=CREATED, retry_delay_s=60)
    assert step == E.Next(E.Condition.RETRIES_EXHAUSTED)


def test_a_retry_past_the_maximum_age_is_not_made() -> None:
    policy = E.AsyncPolicy(max_age_s=60)
    step = E.after_attempt(policy, ok=False, attempts=1, created=CREATED, now=CREATED + 10, retry_delay_s=60)
    assert step == E.Next(E.Condition.EVENT_AGE_EXCEEDED)
    assert E.expired(policy, CREATED, CREATED + 61) and not E.expired(policy, CREATED, CREATED + 60)


def test_policy_of_a_configuration() -> None:
    config = {
        "LastModified": 1.0,
        "MaximumRetryAttempts": 0,
        "DestinationConfig": {"OnSuccess": {}, "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:1:q"}},
    }
    policy = E.AsyncPolicy.of(config)  # type: ignore[arg-type]
    assert (policy.retries, policy.max_age_s) == (0, 21600)
    assert policy.destination(E.Condition.SUCCESS) is None
    assert policy.destination(E.Condition.EVENT_AGE_EXCEEDED) == "arn:aws:sqs:us-east-1:1:q"


def test_describe_and_services() -> None:
    arn = "arn:aws:iam:us-east-1:000000000000:function:f"
    assert E.describe({"OnSuccess": {"Destination": arn}}) == (
        f"DestinationConfig(onSuccess=OnSuccess(destination={arn}), onFailure=null)"
    )
    assert E.describe({"OnSuccess": {}, "OnFailure": {"Destination": "x"}}) == (
        "DestinationConfig(onSuccess=OnSuccess(destination=null), onFailure=OnFailure(destination=x))"
    )
    with pytest.raises(InvalidParameterValueException):
        E.check_services({"OnSuccess": {"Destination": arn}})
    with pytest.raises(InvalidParameterValueException):
        E.check_services({"OnSuccess": {"Destination": "arn:aws:s3:::bucket"}})
    E.check_services({"OnFailure": {"Destination": "arn:aws:s3:::bucket"}})
    E.check_services({"OnSuccess": {"Destination": "arn:aws:events:us-east-1:000000000000:event-bus/b"}})


def test_put_sets_only_what_is_given_and_update_merges() -> None:
    with pytest.raises(InvalidParameterValueException) as e:
        E.check_something_set({"FunctionName": "f"})
    assert e.value.message == E.NOTHING_TO_SET
    put = E.built({"MaximumRetryAttempts": 1, "DestinationConfig": {"OnFailure": {"Destination": ""}}}, 5.0)
    assert put == {
        "LastModified": 5.0,
        "MaximumRetryAttempts": 1,
        "DestinationConfig": {"OnSuccess": {}, "OnFailure": {}},
    }
    merged = E.merged(
        put, {"MaximumEventAgeInSeconds": 60, "DestinationConfig": {"OnSuccess": {"Destination": "a"}}}, 6.0
    )
    assert merged == {
        "LastModified": 6.0,
        "MaximumRetryAttempts": 1,
        "MaximumEventAgeInSeconds": 60,
        "DestinationConfig": {"OnSuccess": {"Destination": "a"}, "OnFailure": {}},
    }
    shown = E.shown(merged, "arn")
    assert list(shown) == [
        "LastModified",
        "FunctionArn",
        "MaximumRetryAttempts",
        "MaximumEventAgeInSeconds",
        "DestinationConfig",
    ]


def test_record_shape() -> None:
    response = E.Response(b'{"errorMessage": "x", "errorType": "Exception"}', "$LATEST", "Unhandled")
    raw = E.record(
        request_id="rid",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
        condition=E.Condition.RETRIES_EXHAUSTED,
        attempts=3,
        request_payload=b'{"a": 1}',
        response=response,
        now=1_574_636_905.651,
    )
    record = json.loads(raw)
    assert list(record) == [
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    ]
    assert record["timestamp"] == "2019-11-24T23:08:25.651Z"
    assert record["requestContext"] == {
        "requestId": "rid",
        "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    # A response that is not JSON is embedded as its text; an event never run has no response.
    raw = E.record(
        request_id="r",
        function_arn="f",
        condition=E.Condition.EVENT_AGE_EXCEEDED,
        attempts=0,
        request_payload=b"{}",
        response=E.Response(b"not json", "1", None),
        now=0.0,
    )
    assert json.loads(raw)["responsePayload"] == "not json"
    raw = E.record(
        request_id="r",
        function_arn="f",
        condition=E.Condition.EVENT_AGE_EXCEEDED,
        attempts=0,
        request_payload=b"{}",
        response=None,
        now=0.0,
    )
    assert "responseContext" not in json.loads(raw) and "responsePayload" not in json.loads(raw)
