"""Provisioned concurrency: its rules, statuses and AWS's messages (pure).

Facts from "Configuring provisioned concurrency for a function" and the API reference
(PutProvisionedConcurrencyConfig): a configuration belongs to a published version or an alias,
never ``$LATEST``; Lambda then initialises that many execution environments (``Status``
``IN_PROGRESS``, then ``READY``; ``FAILED`` with a ``StatusReason`` when it cannot). Provisioned
concurrency counts against the function's reserved concurrency when it has one (a function's
configurations together may not exceed it) and otherwise against the account's unreserved
concurrency, which keeps its minimum as for reservations. Messages below were recorded against AWS
unless said otherwise.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Final

from lamina.domain.concurrency import min_unreserved
from lamina.errors import AwsError, BodyStyle, InvalidParameterValueException, ResourceConflictException

#: AWS's ``AWS_LAMBDA_INITIALIZATION_TYPE`` of an environment started for provisioned concurrency.
INITIALIZATION_TYPE: Final = "provisioned-concurrency"

#: The ``StatusReason`` when the function's Init fails in a provisioned environment (the reason
#: Lambda reports, e.g. through CloudFormation's "Provisioned Concurrency configuration failed to
#: be applied. Reason: FUNCTION_ERROR_INIT_FAILURE").
INIT_FAILURE_REASON: Final = "FUNCTION_ERROR_INIT_FAILURE"


class Status(enum.Enum):
    """``ProvisionedConcurrencyStatusEnum``."""

    IN_PROGRESS = "IN_PROGRESS"
    READY = "READY"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Progress:
    """Where the allocation of one configuration stands (kept by the server, not stored)."""

    requested: int
    available: int = 0
    status: Status = Status.IN_PROGRESS
    reason: str | None = None


@dataclass(frozen=True)
class Usage:
    """What the account already uses, read in the transaction that stores a configuration:
    the function's reservation (None: none), its other configurations together, and the account's
    reservations and other unreserved functions' provisioned concurrency in the Region."""

    function_reserved: int | None
    function_others: int
    account_reserved: int
    account_provisioned_others: int


def last_modified(epoch_ms: int) -> str:
    """``2019-12-31T20:28:49+0000``: the configuration's ``LastModified`` (the API reference's
    example, seconds without a fraction)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(epoch_ms // 1000))


def unpublished() -> InvalidParameterValueException:
    """PutProvisionedConcurrencyConfig on ``$LATEST``."""
    return InvalidParameterValueException(
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    )


def not_alias_or_version() -> InvalidParameterValueException:
    """Get/DeleteProvisionedConcurrencyConfig on ``$LATEST``."""
    return InvalidParameterValueException(
        "The function resource provided must be an alias or a published version."
    )


def config_not_found() -> AwsError:
    """GetProvisionedConcurrencyConfig of a version or alias without one."""
    return AwsError(
        "No Provisioned Concurrency Config found for this function",
        code="ProvisionedConcurrencyConfigNotFoundException",
        status=404,
        style=BodyStyle.USER_LOWER,
        sender_fault=True,
    )


def version_already_provisioned() -> ResourceConflictException:
    """An alias's configuration when its version has one of its own."""
    return ResourceConflictException(
        "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
    )


def version_under_alias() -> ResourceConflictException:
    """A version's configuration when an alias pointing to it has one."""
    return ResourceConflictException("Version is pointed by a Provisioned Concurrency alias")


def check_request(limit: int, usage: Usage, value: int) -> None:
    """Refuse ``value`` provisioned environments the function's reservation or the account's
    unreserved concurrency cannot hold, in AWS's words (the two unreserved messages recorded, with
    no ``Type`` member; the reservation's as AWS words it for functions with one)."""
    if usage.function_reserved is not None:
        if usage.function_others + value > usage.function_reserved:
            raise InvalidParameterValueException(
                "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function"
            )
        return
    unreserved = limit - usage.account_reserved - usage.account_provisioned_others
    if value > unreserved:
        raise InvalidParameterValueException(
            f"Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [{unreserved}].",
            style=BodyStyle.LOWER,
        )
    floor = min_unreserved(limit)
    if unreserved - value < floor:
        raise InvalidParameterValueException(
            "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
            f"below its minimum value of [{floor}].",
            style=BodyStyle.LOWER,
        )


def host_cannot_hold(requested: int, detail: str) -> str:
    """The ``StatusReason`` when this host cannot run that many environments (lamina's words:
    AWS's own capacity is not a user's concern)."""
    return f"This lamina host cannot hold {requested} provisioned execution environments: {detail}"
