"""CloudWatch Logs (json 1.1 protocol, ``logs/2014-03-28``): log groups, streams, events,
retention and tags; Live Tail sessions (see docs/logs.md)."""

from __future__ import annotations

from typing import Any

from lamina.services.base import ServiceBinding
from lamina.services.logs import handlers, live_tail
from lamina.store.logs import LogGroupStore

MAX_NAME = 512


def _names_fit(params: dict[str, Any]) -> None:
    """A name over 512 characters has CloudWatch Logs' own message, before any other check."""
    for key in ("logGroupName", "logStreamName"):
        value = params.get(key)
        if isinstance(value, str) and len(value) > MAX_NAME:
            raise handlers.invalid(
                "Invalid LogGroup or LogStream, both must have length less than or equal to 512."
            )


def binding(loader: Any, store: LogGroupStore) -> ServiceBinding[LogGroupStore]:
    """CloudWatch Logs' operations bound to its botocore model (``loader``: a botocore session).
    A broken constraint is answered with InvalidParameterException (recorded against AWS)."""
    return ServiceBinding(
        model=loader.get_service_model("logs"),
        deps=store,
        handlers={**handlers.HANDLERS, **live_tail.HANDLERS},
        prevalidators=dict.fromkeys(handlers.HANDLERS, _names_fit),
        validation_error=handlers.invalid,
    )
