"""Reserved concurrency's rules and the invoke-side limits (pure, no server)."""

from __future__ import annotations

import pytest

from lamina.domain import concurrency as C
from lamina.domain.accounts import AccountsError, parse_accounts
from lamina.domain.functions import FunctionRef
from lamina.errors import BodyStyle, InvalidParameterValueException, TooManyRequestsException
from lamina.services.lambda_.concurrency import InvocationLimits
from lamina.store.concurrency import ReservedFunction

ENTRY = {"account_id": "111111111111", "access_key_id": "AKID1", "secret_access_key": "s"}
F1 = FunctionRef("111111111111", "us-east-1", "f1")
F2 = FunctionRef("111111111111", "us-east-1", "f2")


@pytest.mark.parametrize(
    ("limit", "others", "value", "ok"),
    [
        pytest.param(1000, 0, 900, True, id="leaves-exactly-100"),
        pytest.param(1000, 0, 901, False, id="leaves-99"),
        pytest.param(1000, 850, 50, True, id="others-count"),
        pytest.param(1000, 850, 51, False, id="others-count-over"),
        pytest.param(1000, 0, 0, True, id="zero"),
        pytest.param(40, 0, 0, True, id="small-account-zero"),
        pytest.param(40, 0, 1, False, id="small-account-one"),
    ],
)
def test_check_reservation(limit: int, others: int, value: int, ok: bool) -> None:
    if ok:
        C.check_reservation(limit, others, value)
        return
    with pytest.raises(InvalidParameterValueException) as e:
        C.check_reservation(limit, others, value)
    assert e.value.style is BodyStyle.LOWER
    assert e.value.message.endswith(f"below its minimum value of [{min(limit, 100)}].")


def test_accounts_file_limit() -> None:
    assert parse_accounts({"accounts": [ENTRY]})[0].concurrent_executions == 1000
    got = parse_accounts({"accounts": [{**ENTRY, "concurrent_executions": 250}]})[0]
    assert got.concurrent_executions == 250
    for bad in (0, -1, "100", 1.5, True, 10_000_001):
        with pytest.raises(AccountsError, match="concurrent_executions must be an integer"):
            parse_accounts({"accounts": [{**ENTRY, "concurrent_executions": bad}]})
    second = {**ENTRY, "access_key_id": "AKID2", "concurrent_executions": 300}
    with pytest.raises(AccountsError, match="differs from an earlier entry"):
        parse_accounts({"accounts": [{**ENTRY, "concurrent_executions": 250}, second]})
    assert len(parse_accounts({"accounts": [{**ENTRY, "concurrent_executions": 300}, second]})) == 2


def reason(exc: pytest.ExceptionInfo[TooManyRequestsException]) -> str:
    assert exc.value.status == 429 and exc.value.message == "Rate Exceeded."
    return exc.value.fields["Reason"]


def test_reserved_function_is_capped_at_its_reservation() -> None:
    limits = InvocationLimits({}, [ReservedFunction(F1.account, F1.region, F1.name, 2)])
    a, b = limits.enter(F1), limits.enter(F1)
    with pytest.raises(TooManyRequestsException) as e:
        limits.enter(F1)
    assert reason(e) == "ReservedFunctionConcurrentInvocationLimitExceeded"
    limits.leave(a)
    c = limits.enter(F1)
    limits.leave(b)
    limits.leave(c)
    assert limits.in_flight(F1) == 0


def test_zero_throttles_everything() -> None:
    limits = InvocationLimits({}, [])
    limits.reserved_changed(F1, 0)
    with pytest.raises(TooManyRequestsException):
        limits.enter(F1)
    assert limits.reserved(F1) == 0
    limits.reserved_changed(F1, None)  # deleted: back to the unreserved pool
    limits.leave(limits.enter(F1))


def test_unreserved_functions_share_what_reservations_leave() -> None:
    limits = InvocationLimits({F1.account: 3}, [])
    limits.reserved_changed(F2, 1)
    slots = [limits.enter(F1), limits.enter(F1)]  # 3 - 1 reserved = 2 unreserved
    with pytest.raises(TooManyRequestsException) as e:
        limits.enter(F1)
    assert reason(e) == "ConcurrentInvocationLimitExceeded"
    f2 = limits.enter(F2)  # the reservation is F2's own, whatever the others run
    # Another Region of the account has its own quota.
    west = FunctionRef(F1.account, "eu-west-1", "f1")
    limits.leave(limits.enter(west))
    for slot in [*slots, f2]:
        limits.leave(slot)


def test_a_reservation_changed_mid_invocation_releases_what_it_took() -> None:
    limits = InvocationLimits({}, [])
    slot = limits.enter(F1)  # unreserved
    limits.reserved_changed(F1, 1)
    limits.leave(slot)
    assert limits.in_flight((F1.account, F1.region)) == 0
    limits.leave(limits.enter(F1))
    assert limits.account_limit("999999999999") == C.DEFAULT_ACCOUNT_LIMIT
