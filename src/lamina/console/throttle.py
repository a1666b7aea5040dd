"""Back-off for failed console sign-ins, per subject (an access key, a client address).

Password guessing is refused the way careful sign-in pages refuse it: a handful of free failures,
then each further failure locks the subject out for twice as long as the last (1 s, 2 s, 4 s, ...
up to 15 minutes), a subject that stays quiet long enough is forgotten, and the table is bounded
(the longest-quiet subject makes room). Attempts while locked out are refused without checking
the secret, and do not count: a lockout never grows from requests it refused.

Attempts still being checked count as failures-to-be: a burst of concurrent guesses gets no more
tries than one after another (at most the free failures before the first lockout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FREE_FAILURES = 5
FIRST_LOCKOUT_S = 1.0
MAX_LOCKOUT_S = 900.0
FORGET_AFTER_S = 900.0
MAX_SUBJECTS = 10_000


@dataclass
class _Record:
    failures: int
    last_failure: float
    locked_until: float


class FailureBackoff:
    """Failures per subject and the lockouts they earn; the clock is passed in (``now``)."""

    def __init__(
        self,
        *,
        free_failures: int = FREE_FAILURES,
        first_lockout_s: float = FIRST_LOCKOUT_S,
        max_lockout_s: float = MAX_LOCKOUT_S,
        forget_after_s: float = FORGET_AFTER_S,
        max_subjects: int = MAX_SUBJECTS,
    ) -> None:
        self.free_failures = free_failures
        self.first_lockout_s = first_lockout_s
        self.max_lockout_s = max_lockout_s
        self.forget_after_s = forget_after_s
        self.max_subjects = max_subjects
        self._records: dict[str, _Record] = {}  # oldest failure first (re-inserted on each)
        self._pending: dict[str, int] = {}  # attempts begun and not finished

    def __len__(self) -> int:
        return len(self._records)

    def retry_after(self, subject: str, now: float) -> int:
        """Whole seconds until ``subject`` may try again; 0 when it may now."""
        record = self._current(subject, now)
        if record is not None and record.locked_until > now:
            return max(1, math.ceil(record.locked_until - now))
        failures = record.failures if record is not None else 0
        pending = self._pending.get(subject, 0)
        if pending and failures + pending >= max(1, self.free_failures):
            return 1  # as many attempts in flight as could still fail freely: wait for them
        return 0

    def begin(self, subject: str) -> None:
        """An attempt of ``subject`` is being checked; :meth:`finish` ends it."""
        self._pending[subject] = self._pending.get(subject, 0) + 1

    def finish(self, subject: str, now: float, *, failed: bool) -> None:
        """The attempt begun with :meth:`begin` is over; ``failed`` counts it as a failure."""
        left = self._pending.get(subject, 0) - 1
        if left > 0:
            self._pending[subject] = left
        else:
            self._pending.pop(subject, None)
        if failed:
            self.failed(subject, now)

    def failed(self, subject: str, now: float) -> None:
        """Count a failure of ``subject``; past the free ones it locks the subject out."""
        record = self._current(subject, now) or _Record(0, now, now)
        record.failures += 1
        record.last_failure = now
        extra = record.failures - self.free_failures
        if extra >= 0:
            lockout = min(self.max_lockout_s, self.first_lockout_s * 2 ** min(extra, 64))
            record.locked_until = now + lockout
        self._records.pop(subject, None)
        while len(self._records) >= self.max_subjects:
            self._records.pop(next(iter(self._records)))  # the one quiet the longest
        self._records[subject] = record

    def succeeded(self, subject: str) -> None:
        """Forget ``subject``'s failures (a successful sign-in with its key)."""
        self._records.pop(subject, None)

    def _current(self, subject: str, now: float) -> _Record | None:
        record = self._records.get(subject)
        if (
            record is not None
            and now - record.last_failure > self.forget_after_s
            and record.locked_until <= now
        ):
            del self._records[subject]
            return None
        return record
