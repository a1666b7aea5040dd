"""The server's own descriptor limit, and a quiet log when it is reached anyway.

Facts:
- RLIMIT_NOFILE's soft limit is what ``accept``/``open`` meet (EMFILE); a process may raise it up to
  the hard limit without privilege (setrlimit(2)). Many distributions start services with a soft
  limit of 1024 and a far higher hard limit (systemd: 1024 soft, 524288 hard), and a server holding
  environments, their relays and client connections needs more than 1024.
- asyncio's accept loop (``BaseSelectorEventLoop._accept_connection``, CPython 3.11) answers EMFILE,
  ENFILE, ENOBUFS and ENOMEM by logging "socket.accept() out of system resource" with a traceback
  through the loop's exception handler (logger ``asyncio``), pausing that listener for one second,
  then accepting again: one traceback per listener per second, plus one per failed accept of a
  burst. :class:`AcceptFailureFilter` keeps at most one line per second and drops the tracebacks.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from collections.abc import Callable

ACCEPT_FAILURE = "socket.accept() out of system resource"


def raise_nofile_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; returns (soft, hard) after.
    Never fails: a limit that cannot be raised stays as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError):
            return soft, hard
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class AcceptFailureFilter(logging.Filter):
    """Lets through at most one accept-failure record per ``interval_s`` seconds, without its
    traceback, saying how many were held back since the last one; other records pass untouched."""

    def __init__(self, interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str) or not record.msg.startswith(ACCEPT_FAILURE):
            return True
        now = self._clock()
        with self._lock:
            if self._last is not None and now - self._last < self._interval:
                self._held += 1
                return False
            held, self._held, self._last = self._held, 0, now
        reason = record.exc_info[1] if record.exc_info else None
        record.msg = f"{ACCEPT_FAILURE} ({reason}); {held} more like it held back since the last report"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


def install_accept_failure_filter(logger_name: str = "asyncio") -> AcceptFailureFilter:
    """Put one :class:`AcceptFailureFilter` on ``logger_name`` (idempotent: returns the one there)."""
    target = logging.getLogger(logger_name)
    for existing in target.filters:
        if isinstance(existing, AcceptFailureFilter):
            return existing
    added = AcceptFailureFilter()
    target.addFilter(added)
    return added
