"""Provisioned concurrency's rules and how the invoke-side limits count it (pure, no server)."""

from __future__ import annotations

import pytest

from lamina.domain import concurrency as C
from lamina.domain import provisioned as P
from lamina.domain.functions import FunctionRef
from lamina.errors import BodyStyle, InvalidParameterValueException, TooManyRequestsException
from lamina.services.lambda_.concurrency import InvocationLimits
from lamina.store.concurrency import ReservedFunction

F1 = FunctionRef("111111111111", "us-east-1", "f1")
F2 = FunctionRef("111111111111", "us-east-1", "f2")


def usage(
    reserved: int | None = None, mine: int = 0, account_reserved: int = 0, provisioned: int = 0
) -> P.Usage:
    return P.Usage(reserved, mine, account_reserved, provisioned)


@pytest.mark.parametrize(
    ("limit", "used", "value", "error"),
    [
        pytest.param(1000, usage(), 900, None, id="leaves-exactly-100"),
        pytest.param(1000, usage(), 901, "below its minimum value of [100].", id="leaves-99"),
        pytest.param(1000, usage(), 1001, "unreserved concurrency [1000].", id="over-unreserved"),
        pytest.param(
            1000,
            usage(account_reserved=300, provisioned=200),
            501,
            "unreserved concurrency [500].",
            id="others",
        ),
        pytest.param(1000, usage(reserved=10, mine=4), 6, None, id="within-reservation"),
        pytest.param(
            1000, usage(reserved=10, mine=4), 7, "reservedConcurrentExecution for function", id="over"
        ),
    ],
)
def test_check_request(limit: int, used: P.Usage, value: int, error: str | None) -> None:
    if error is None:
        P.check_request(limit, used, value)
        return
    with pytest.raises(InvalidParameterValueException) as e:
        P.check_request(limit, used, value)
    assert e.value.message.endswith(error)
    # The unreserved messages were recorded without a Type member; the reservation's has one.
    assert e.value.style is (BodyStyle.USER_LOWER if used.function_reserved is not None else BodyStyle.LOWER)


def test_last_modified_is_seconds_with_offset() -> None:
    assert P.last_modified(1_577_824_129_123) == "2019-12-31T20:28:49+0000"


def test_provisioned_slots_come_first_then_the_shared_pool() -> None:
    limits = InvocationLimits({"111111111111": 103}, [])
    limits.provisioned_changed(F1, "live", "1", 2)
    assert limits.unreserved_provisioned("111111111111", "us-east-1") == 2
    # Two provisioned slots of version 1, then the pool (103 - 2 = 101 for everyone else).
    held = [limits.enter(F1, "1") for _ in range(2)]
    assert all(slot == ("provisioned", F1, "1") for slot in held)
    pool = [limits.enter(F2) for _ in range(101)]
    with pytest.raises(TooManyRequestsException):
        limits.enter(F1, "1")
    with pytest.raises(TooManyRequestsException) as e:
        limits.enter(F1, "2")
    assert e.value.fields == {"Reason": C.ThrottleReason.ACCOUNT.value}
    for slot in [*held, *pool]:
        limits.leave(slot)
    # The alias moves to version 2: its slots go with it; gone, they are the pool's again.
    limits.provisioned_changed(F1, "live", "2", 2)
    assert limits.enter(F1, "2") == ("provisioned", F1, "2")
    assert limits.enter(F1, "1") == ("111111111111", "us-east-1")
    limits.provisioned_changed(F1, "live", None, 0)
    assert limits.unreserved_provisioned("111111111111", "us-east-1") == 0


def test_a_reserved_function_counts_every_invocation_against_its_reservation() -> None:
    limits = InvocationLimits({}, [ReservedFunction("111111111111", "us-east-1", "f1", 1)])
    limits.provisioned_changed(F1, "1", "1", 1)
    assert limits.unreserved_provisioned("111111111111", "us-east-1") == 0
    slot = limits.enter(F1, "1")
    assert slot == F1
    with pytest.raises(TooManyRequestsException) as e:
        limits.enter(F1, "1")
    assert e.value.fields == {"Reason": C.ThrottleReason.RESERVED.value}
