"""Delivering an asynchronous invocation's record to its destination.

A Lambda function of the same account and region is invoked asynchronously with the record as its
event (as AWS does: the destination's own retries and configuration apply). What lamina cannot
deliver (SQS, SNS, EventBridge and S3 are not served here; another account's function, whose
permission lamina does not evaluate for deliveries) is accepted as configuration, as AWS accepts it,
and each record that cannot be delivered is logged with the reason: nothing is silently lost. The
function's execution role must be allowed ``lambda:InvokeFunction`` on the destination, when the
configuration is put and again at each delivery.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lamina.domain import event_invoke as E
from lamina.domain import functions as F
from lamina.errors import AwsError
from lamina.services.lambda_.functions import load_function
from lamina.services.lambda_.roles import role_allows

if TYPE_CHECKING:
    from lamina.services.platform import Platform
    from lamina.store.events import QueuedEvent

log = logging.getLogger("lamina.destinations")


def _undelivered(due: QueuedEvent, condition: E.Condition, destination: str, reason: str) -> None:
    log.warning(
        "destination record of event invocation %s of function %s (%s) not delivered to %s: %s",
        due.id,
        F.function_arn(due.region, due.account, due.name, due.invoked or F.LATEST),
        condition.value,
        destination,
        reason,
    )


def deliver(
    platform: Platform, due: QueuedEvent, condition: E.Condition, destination: str, record: bytes
) -> None:
    """Send ``record`` (of ``due``, finished with ``condition``) to ``destination``. Blocks (a store
    write): call it from a worker thread."""
    service = E.service_of(destination)
    if service != "lambda":
        name = E.SERVICE_NAMES.get(service or "", service or "an unknown service")
        _undelivered(due, condition, destination, f"lamina does not serve {name}, so it cannot deliver there")
        return
    parts = F.split_function_name(destination)
    if parts is None:
        _undelivered(due, condition, destination, "it is not a Lambda function ARN")
        return
    account, region = parts.account or due.account, parts.region or due.region
    if (account, region) != (due.account, due.region):
        _undelivered(
            due,
            condition,
            destination,
            "lamina delivers only to functions of the same account and region (it does not evaluate the "
            "execution role's permission on another account's function)",
        )
        return
    if not _role_may_invoke(platform, due, destination):
        _undelivered(
            due,
            condition,
            destination,
            "the function's execution role is not allowed lambda:InvokeFunction on it (any more)",
        )
        return
    ref = F.FunctionRef(account, region, parts.name, parts.qualifier)
    try:
        row = load_function(platform, ref)
    except AwsError as exc:
        _undelivered(due, condition, destination, f"the function cannot be invoked ({exc.message})")
        return
    event_id = platform.events.enqueue(
        ref, str(row.config.get("Version", F.LATEST)), record, invoked=parts.qualifier
    )
    log.info(
        "destination record of event invocation %s (%s) queued for %s as %s",
        due.id,
        condition.value,
        destination,
        event_id,
    )


def _role_may_invoke(platform: Platform, due: QueuedEvent, destination: str) -> bool:
    """Whether the execution role of the version that ran may still invoke ``destination``: it was
    allowed when the configuration was put, and a role's policies can change since (AWS then fails
    the delivery)."""
    source = F.FunctionRef(due.account, due.region, due.name, due.qualifier or F.LATEST)
    try:
        role = str(load_function(platform, source).config.get("Role", ""))
    except AwsError:
        return False
    return role_allows(platform.iam, due.account, role, "lambda:InvokeFunction", destination)
