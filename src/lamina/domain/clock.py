"""Time values as AWS prints them (pure: the current time is always passed in)."""

from __future__ import annotations

import datetime as dt
import functools
import time


def aws_timestamp(epoch_ms: int) -> str:
    """``2018-11-14T23:03:52.894+0000``: Lambda's CreatedDate / LastModified format."""
    # Formatted by hand: strftime is most of this function's cost, and it runs per listed item.
    t = time.gmtime(epoch_ms // 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}."
        f"{epoch_ms % 1000:03d}+0000"
    )


def iso_millis_ms(epoch_ms: int) -> str:
    """``2026-01-01T00:00:00.000Z`` (as :func:`iso_millis`) from milliseconds since the epoch:
    formatted by hand, for listings that print it once per entry."""
    return f"{_iso_second(epoch_ms // 1000)}.{epoch_ms % 1000:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(epoch_s: int) -> str:
    # Objects put together share their second: a listing formats each second once.
    t = time.gmtime(epoch_s)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def iso_millis(value: dt.datetime) -> str:
    """``2026-01-01T00:00:00.000Z``: EC2."""
    value = as_utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S") + f".{value.microsecond // 1000:03d}Z"


def as_utc(value: dt.datetime) -> dt.datetime:
    # Naive datetimes are taken as UTC: lamina never deals in local time.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
