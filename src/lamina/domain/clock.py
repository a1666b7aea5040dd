"""Time values as AWS prints them (pure: the current time is always passed in)."""

from __future__ import annotations

import datetime as dt


def aws_timestamp(epoch_ms: int) -> str:
    """``2018-11-14T23:03:52.894+0000``: Lambda's CreatedDate / LastModified format."""
    t = dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}+0000"
