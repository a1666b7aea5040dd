"""Failed-sign-in back-off (console/throttle.py): free failures, doubling lockouts, forgetting."""

from __future__ import annotations

from lamina.console.throttle import FailureBackoff


def fail(b: FailureBackoff, subject: str, now: float) -> None:
    b.begin(subject)
    b.finish(subject, now, failed=True)


def test_five_free_failures_then_doubling_lockouts_up_to_the_cap() -> None:
    b = FailureBackoff(free_failures=5, first_lockout_s=1, max_lockout_s=8, forget_after_s=1000)
    for _ in range(4):
        fail(b, "k", 0)
        assert b.retry_after("k", 0) == 0
    fail(b, "k", 0)
    assert b.retry_after("k", 0) == 1
    assert b.retry_after("k", 0.5) == 1
    assert b.retry_after("k", 1.0) == 0  # one more try; its failure locks out for twice as long
    b.begin("k")
    assert b.retry_after("k", 1.0) == 1  # and only one at a time
    b.finish("k", 1.0, failed=True)
    waits = [b.retry_after("k", 1.0)]
    now = 1.0 + waits[0]
    for _ in range(4):
        fail(b, "k", now)
        waits.append(b.retry_after("k", now))
        now += waits[-1]
    assert waits == [2, 4, 8, 8, 8]
    assert b.retry_after("other", now) == 0


def test_a_success_forgets_and_a_quiet_subject_is_forgotten() -> None:
    b = FailureBackoff(free_failures=2, first_lockout_s=1, forget_after_s=60)
    fail(b, "k", 0)
    fail(b, "k", 0)
    assert b.retry_after("k", 0) == 1
    b.succeeded("k")
    assert b.retry_after("k", 0) == 0
    fail(b, "a", 0)
    fail(b, "a", 0)
    assert b.retry_after("a", 61) == 0 and len(b) == 0


def test_concurrent_attempts_get_no_more_tries_than_sequential_ones() -> None:
    b = FailureBackoff(free_failures=3)
    for _ in range(3):
        assert b.retry_after("k", 0) == 0
        b.begin("k")
    assert b.retry_after("k", 0) == 1  # three in flight could all fail
    b.finish("k", 0, failed=False)
    assert b.retry_after("k", 0) == 0


def test_the_table_is_bounded() -> None:
    b = FailureBackoff(max_subjects=3)
    for i in range(10):
        fail(b, f"s{i}", float(i))
    assert len(b) == 3
    fail(b, "s7", 20)  # a fresh failure moves a subject to the back
    fail(b, "s10", 21)
    assert b.retry_after("s7", 21) == 0 and len(b) == 3
