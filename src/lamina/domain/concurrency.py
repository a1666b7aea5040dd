"""Reserved concurrency: the account's limit and AWS's minimum-unreserved rule (pure).

AWS Lambda's concurrency quota is per account and Region: 1,000 concurrent executions by
default ("Lambda quotas"). A function's reserved concurrency sets aside part of it for that
function alone and caps the function at it; every function without a reservation shares what is
left (``UnreservedConcurrentExecutions``), and Lambda keeps at least 100 of the account's
concurrency unreserved ("Configuring reserved concurrency": "Lambda requires at least 100 units
of unreserved concurrency").
"""

from __future__ import annotations

import enum
from typing import Final

from lamina.errors import BodyStyle, InvalidParameterValueException, TooManyRequestsException

#: AWS's default account concurrency quota per Region.
DEFAULT_ACCOUNT_LIMIT: Final = 1000
#: What Lambda keeps unreserved in every account.
MIN_UNRESERVED: Final = 100

#: PutFunctionConcurrency on a qualified name or ARN (recorded against AWS).
FUNCTIONS_ONLY: Final = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. "
    "Please specify either a function name or an unqualified function ARN."
)

#: Invoke's throttling message; the reason is a member of its own.
RATE_EXCEEDED: Final = "Rate Exceeded."


class ThrottleReason(enum.Enum):
    """Why an invocation was refused (botocore's ``ThrottleReason`` values)."""

    RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
    ACCOUNT = "ConcurrentInvocationLimitExceeded"


def min_unreserved(limit: int) -> int:
    """The concurrency an account keeps unreserved: 100, or all of it when its limit is lower (a
    small account can reserve nothing but 0)."""
    return min(MIN_UNRESERVED, limit)


def check_reservation(limit: int, reserved_by_others: int, value: int) -> None:
    """Refuse a reservation of ``value`` that leaves the account less than its minimum unreserved,
    as AWS does (its message, recorded, has no ``Type`` member)."""
    floor = min_unreserved(limit)
    if limit - reserved_by_others - value < floor:
        raise InvalidParameterValueException(
            "Specified ReservedConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{floor}].",
            style=BodyStyle.LOWER,
        )


def throttled(reason: ThrottleReason) -> TooManyRequestsException:
    """Invoke's 429, as recorded: ``Rate Exceeded.`` with ``Reason`` as its own member."""
    return TooManyRequestsException(RATE_EXCEEDED, fields={"Reason": reason.value})
