"""Asynchronous invocation: its configuration, what happens after each attempt, destination records.

Facts from the Lambda Developer Guide ("Configuring error handling for asynchronous invocation",
"Capturing records of Lambda asynchronous invocations") and the recordings:

- Without a configuration, an event is retried twice (three attempts) and kept at most six hours.
  ``MaximumRetryAttempts`` (0-2) and ``MaximumEventAgeInSeconds`` (60-21600) lower either.
- An event that runs out of attempts goes to the ``OnFailure`` destination with condition
  ``RetriesExhausted``; one whose next attempt would fall past its maximum age is discarded with
  ``EventAgeExceeded`` (the record carries the last attempt's response); a success goes to
  ``OnSuccess`` with ``Success``.
- Destinations are SQS queues, SNS topics, Lambda functions and EventBridge buses; an S3 bucket only
  on failure. A Lambda function cannot be its own destination.
- The record is ``{version, timestamp, requestContext {requestId, functionArn, condition,
  approximateInvokeCount}, requestPayload, responseContext {statusCode, executedVersion,
  functionError}, responsePayload}``, ``functionArn`` qualified with what the invocation named
  (``$LATEST`` when it named nothing).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass
from typing import Any

from lamina.domain import jsontext
from lamina.domain.models import DestinationConfig, FunctionEventInvokeConfig
from lamina.errors import InvalidParameterValueException

DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE_S = 21_600

SETTINGS = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
NOTHING_TO_SET = "You must specify at least one of error handling or destination setting."
SELF_DESTINATION = "You can't specify the function as a destination for itself."

# The services a destination may name (the ARN's service field), per condition.
SUCCESS_SERVICES = frozenset({"sqs", "sns", "lambda", "events"})
FAILURE_SERVICES = SUCCESS_SERVICES | {"s3"}
# What each service is, in the log line of a delivery lamina cannot make.
SERVICE_NAMES = {"sqs": "SQS", "sns": "SNS", "events": "EventBridge", "s3": "S3"}
# What the execution role must be allowed to deliver a record, by the destination's service (the
# action, and the operation AWS names when it is not: "The function execution role does not have
# permissions to call InvokeFunction on arn:aws:lambda:...").
DELIVERY_ACTIONS = {
    "lambda": ("lambda:InvokeFunction", "InvokeFunction"),
    "sqs": ("sqs:SendMessage", "SendMessage"),
    "sns": ("sns:Publish", "Publish"),
    "events": ("events:PutEvents", "PutEvents"),
}


def role_cannot_deliver(operation: str, arn: str) -> str:
    """AWS's message when the execution role may not deliver to ``arn``."""
    return f"The function execution role does not have permissions to call {operation} on {arn}"


class Condition(enum.Enum):
    """Why a record is sent (``requestContext.condition``)."""

    SUCCESS = "Success"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    EVENT_AGE_EXCEEDED = "EventAgeExceeded"
    ZERO_RESERVED_CONCURRENCY = "ZeroReservedConcurrency"  # reserved concurrency 0: it never runs


def destination_arn_invalid(arn: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(f"The destination ARN {arn} is invalid.")


def no_config(function_arn: str) -> str:
    """Get/Update/Delete of a qualifier that has no configuration (recorded wording)."""
    return f"The function {function_arn} doesn't have an EventInvokeConfig"


@dataclass(frozen=True, slots=True)
class AsyncPolicy:
    """What applies to one function qualifier's events (AWS's defaults without a configuration)."""

    retries: int = DEFAULT_RETRIES
    max_age_s: int = DEFAULT_MAX_AGE_S
    on_success: str | None = None
    on_failure: str | None = None

    @classmethod
    def of(cls, config: FunctionEventInvokeConfig | None) -> AsyncPolicy:
        """The policy a stored configuration sets (None: the defaults)."""
        if config is None:
            return cls()
        destinations = config.get("DestinationConfig") or {}
        return cls(
            retries=config.get("MaximumRetryAttempts", DEFAULT_RETRIES),
            max_age_s=config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_S),
            on_success=(destinations.get("OnSuccess") or {}).get("Destination") or None,
            on_failure=(destinations.get("OnFailure") or {}).get("Destination") or None,
        )

    def destination(self, condition: Condition) -> str | None:
        """Where a record of ``condition`` goes, if anywhere."""
        return self.on_success if condition is Condition.SUCCESS else self.on_failure


@dataclass(frozen=True, slots=True)
class Next:
    """After an attempt: retry at ``retry_at`` (epoch seconds), or finish with ``condition``."""

    condition: Condition | None
    retry_at: float | None = None


def expired(policy: AsyncPolicy, created: float, now: float) -> bool:
    """An event older than its maximum age is not run any more."""
    return now - created > policy.max_age_s


def after_attempt(
    policy: AsyncPolicy, *, ok: bool, attempts: int, created: float, now: float, retry_delay_s: float
) -> Next:
    """What follows attempt number ``attempts`` (1 for the first): done, or a retry after
    ``retry_delay_s`` times the attempts so far, unless that is past the event's maximum age."""
    if ok:
        return Next(Condition.SUCCESS)
    if attempts > policy.retries:
        return Next(Condition.RETRIES_EXHAUSTED)
    retry_at = now + retry_delay_s * attempts
    if retry_at - created > policy.max_age_s:
        return Next(Condition.EVENT_AGE_EXCEEDED)
    return Next(None, retry_at)


def service_of(arn: str) -> str | None:
    """The service an ARN names (``arn:partition:SERVICE:...``), or None for what is no ARN."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        return None
    return parts[2]


def _describe(key: str, value: Any) -> str:
    if not isinstance(value, dict):
        return "null"
    destination = value.get("Destination")
    return f"{key}(destination={destination if destination else 'null'})"


def describe(config: DestinationConfig) -> str:
    """AWS's rendering of a DestinationConfig in its messages (recorded)."""
    return (
        f"DestinationConfig(onSuccess={_describe('OnSuccess', config.get('OnSuccess'))}, "
        f"onFailure={_describe('OnFailure', config.get('OnFailure'))})"
    )


def check_services(config: DestinationConfig) -> None:
    """Each destination names a service that can take records for its condition."""
    for key, allowed in (("OnSuccess", SUCCESS_SERVICES), ("OnFailure", FAILURE_SERVICES)):
        arn = (config.get(key) or {}).get("Destination")  # type: ignore[attr-defined]
        if arn and service_of(arn) not in allowed:
            raise InvalidParameterValueException(
                f"The provided destination config {describe(config)} is invalid."
            )


def normalised(config: DestinationConfig | None) -> DestinationConfig:
    """Both members always present, an empty Destination dropped (AWS answers ``{}`` for them)."""
    out: DestinationConfig = {"OnSuccess": {}, "OnFailure": {}}
    for key in ("OnSuccess", "OnFailure"):
        arn = ((config or {}).get(key) or {}).get("Destination")  # type: ignore[attr-defined]
        if arn:
            out[key] = {"Destination": arn}
    return out


def check_something_set(params: dict[str, Any]) -> None:
    """Put and Update set retries, age or destinations; AWS checks this before anything else
    (even before the function exists: recorded)."""
    if all(params.get(k) is None for k in SETTINGS):
        raise InvalidParameterValueException(NOTHING_TO_SET)


def built(params: dict[str, Any], now: float) -> FunctionEventInvokeConfig:
    """PutFunctionEventInvokeConfig's configuration: what the request sets, nothing else."""
    config: FunctionEventInvokeConfig = {"LastModified": now}
    if params.get("MaximumRetryAttempts") is not None:
        config["MaximumRetryAttempts"] = int(params["MaximumRetryAttempts"])
    if params.get("MaximumEventAgeInSeconds") is not None:
        config["MaximumEventAgeInSeconds"] = int(params["MaximumEventAgeInSeconds"])
    config["DestinationConfig"] = normalised(params.get("DestinationConfig"))
    return config


def merged(
    current: FunctionEventInvokeConfig, params: dict[str, Any], now: float
) -> FunctionEventInvokeConfig:
    """UpdateFunctionEventInvokeConfig: the members the request sets replace the stored ones."""
    config: FunctionEventInvokeConfig = {**current, "LastModified": now}
    for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
        if params.get(key) is not None:
            config[key] = int(params[key])
    given = params.get("DestinationConfig")
    if given is not None:
        destinations = normalised(current.get("DestinationConfig"))
        fresh = normalised(given)
        for key in ("OnSuccess", "OnFailure"):
            if key in given:
                destinations[key] = fresh[key]  # type: ignore[literal-required]
        config["DestinationConfig"] = destinations
    return config


def shown(config: FunctionEventInvokeConfig, function_arn: str) -> FunctionEventInvokeConfig:
    """The configuration as AWS answers it, in its shape's member order."""
    out: FunctionEventInvokeConfig = {"LastModified": config["LastModified"], "FunctionArn": function_arn}
    if "MaximumRetryAttempts" in config:
        out["MaximumRetryAttempts"] = config["MaximumRetryAttempts"]
    if "MaximumEventAgeInSeconds" in config:
        out["MaximumEventAgeInSeconds"] = config["MaximumEventAgeInSeconds"]
    out["DestinationConfig"] = normalised(config.get("DestinationConfig"))
    return out


def _embedded(payload: bytes) -> Any:
    """A payload inside the record: its JSON value, or its text when it is not JSON."""
    try:
        return jsontext.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return payload.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Response:
    """What the last attempt answered (``function_error``: None when it succeeded)."""

    payload: bytes
    executed_version: str
    function_error: str | None


def record(
    *,
    request_id: str,
    function_arn: str,
    condition: Condition,
    attempts: int,
    request_payload: bytes,
    response: Response | None,
    now: float,
) -> bytes:
    """The invocation record sent to a destination, in AWS's member order."""
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    out: dict[str, Any] = {
        "version": "1.0",
        "timestamp": stamp,
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition.value,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": _embedded(request_payload),
    }
    if response is not None:
        context: dict[str, Any] = {"statusCode": 200, "executedVersion": response.executed_version}
        if response.function_error is not None:
            context["functionError"] = response.function_error
        out["responseContext"] = context
        out["responsePayload"] = _embedded(response.payload)
    return json.dumps(out).encode()
