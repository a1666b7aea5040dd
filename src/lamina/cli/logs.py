"""``lamina logs FUNCTION``: a function's log events, read through the Lambda and CloudWatch Logs
APIs of a running server (or of AWS itself), like any other client.

It asks Lambda where the function logs (``GetFunctionConfiguration``: ``LoggingConfig.LogGroup``,
``/aws/lambda/<name>`` by default), then reads the group with ``FilterLogEvents`` (every page),
printing each stream's events under a ``== <stream>`` heading. ``--follow`` polls the group and
prints each new event once: events are told apart by their ``eventId``, and each poll looks a little
back in time (:data:`LOOKBACK_MS`) for events delivered after newer ones. Endpoint and credentials
are those of every lamina command that talks to an API (``cli/awsclient.py``): ``--endpoint-url``,
``--region``, ``--profile`` and the standard credential chain; no data directory is involved.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from lamina.cli.awsclient import DEFAULT_ENDPOINT, aws_error, clients

POLL_S = 1.0  # between two polls with --follow (``aws logs tail --follow`` polls every 5 s)
# How far back each --follow poll looks before the newest event seen: an environment's lines may be
# delivered a little after a newer event of another environment. Events seen are kept this long.
LOOKBACK_MS = 30_000
_SINCE = re.compile(r"^(\d+)([smhdw])$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def add_parser(sub: Any) -> None:
    """``lamina logs ...`` under the top-level subcommands."""
    logs = sub.add_parser(
        "logs",
        help="print a function's logs (START/END/REPORT lines and its output)",
        description="Print a function's log events from CloudWatch Logs (its log group: "
        "LoggingConfig.LogGroup, /aws/lambda/FUNCTION by default), read through the API of the "
        "server at --endpoint-url.",
    )
    logs.add_argument("function", help="function name or ARN")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new log events")
    logs.add_argument(
        "--since",
        default=None,
        metavar="WHEN",
        help="only events from this time on: a duration back from now (30s, 5m, 2h, 1d, 1w) or an "
        "ISO 8601 time (2026-01-02T03:04:05Z); default: all",
    )
    logs.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL_LOGS", os.environ.get("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT)),
        help=f"the lamina server (default {DEFAULT_ENDPOINT})",
    )
    logs.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION")),
        help="region (default: AWS_REGION, the AWS configuration, else us-east-1)",
    )
    logs.add_argument("--profile", default=None, help="a profile of the AWS configuration")
    # Before lamina logs read the API it read the server's files: these two chose them. Accepted
    # (old scripts keep working) and ignored with a note: the credentials decide the account.
    logs.add_argument("--data-dir", default=None, help=argparse.SUPPRESS)
    logs.add_argument("--account", default=None, help=argparse.SUPPRESS)


def parse_since(text: str, now_ms: int) -> int:
    """``--since``: milliseconds since the epoch for a duration back from ``now_ms`` or an ISO time."""
    m = _SINCE.match(text.strip())
    if m:
        return now_ms - int(m.group(1)) * _UNIT_MS[m.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since: not a duration (30s, 5m, 2h, 1d, 1w) or an ISO 8601 time: {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def _say(message: str) -> None:
    print(f"lamina: {message}", file=sys.stderr, flush=True)


def _code(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""


def log_group_of(lam: Any, function: str) -> str | None:
    """The function's log group (None: no such function); other failures are raised."""
    try:
        config = lam.get_function_configuration(FunctionName=function)
    except Exception as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise
    group = (config.get("LoggingConfig") or {}).get("LogGroup")
    return str(group) if group else f"/aws/lambda/{config['FunctionName']}"


def events(logs: Any, group: str, since_ms: int | None) -> Iterator[dict[str, Any]]:
    """Every event of ``group`` from ``since_ms`` on, oldest first, page after page."""
    params: dict[str, Any] = {"logGroupName": group}
    if since_ms is not None:
        params["startTime"] = max(0, since_ms)
    while True:
        page = logs.filter_log_events(**params)
        yield from page.get("events", [])
        token = page.get("nextToken")
        if not token:
            return
        params["nextToken"] = token


@dataclass
class Printer:
    """Writes events as ``lamina logs`` always has: each stream's lines under ``== <stream>``
    (again whenever events of another stream come between), one line per event."""

    out: BinaryIO
    stream: str | None = None
    printed: int = 0

    def write(self, event: dict[str, Any]) -> None:
        name = str(event.get("logStreamName", ""))
        if name != self.stream:
            self.out.write(f"== {name}\n".encode())
            self.stream = name
        message = str(event.get("message", ""))
        self.out.write(message.encode(errors="replace"))
        if not message.endswith("\n"):
            self.out.write(b"\n")
        self.printed += 1


def follow(
    logs: Any,
    group: str,
    since_ms: int | None,
    printer: Printer,
    *,
    sleep: Callable[[float], None] = time.sleep,
    polls: int | None = None,
) -> None:
    """Print the group's events, then each new one once, every :data:`POLL_S` (``polls``: stop
    after that many polls; None: until interrupted). A group not created yet is waited for."""
    seen: dict[str, int] = {}  # eventId -> timestamp, for events within LOOKBACK_MS of the newest
    newest: int | None = None
    waiting = False
    count = 0
    while polls is None or count < polls:
        count += 1
        start = since_ms if newest is None else max(since_ms or 0, newest - LOOKBACK_MS)
        try:
            for event in events(logs, group, start):
                key = str(event.get("eventId", ""))
                if key in seen:
                    continue
                ts = int(event.get("timestamp", 0))
                seen[key] = ts
                newest = ts if newest is None else max(newest, ts)
                printer.write(event)
        except Exception as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            if not waiting:
                _say(f"no logs yet in {group}: waiting for the function to log")
                waiting = True
        printer.out.flush()
        if newest is not None:
            seen = {k: ts for k, ts in seen.items() if ts >= newest - LOOKBACK_MS}
        if polls is None or count < polls:
            sleep(POLL_S)


def main(args: argparse.Namespace) -> int:
    """``lamina logs``: 0 when events were printed (or followed), 1 when there are none, the function
    does not exist, or the API refused."""
    if args.data_dir is not None:
        _say("logs: --data-dir is ignored: logs are read through the API at --endpoint-url")
    if args.account is not None:
        _say("logs: --account is ignored: the credentials choose the account")
    since_ms: int | None = None
    if args.since is not None:
        try:
            since_ms = parse_since(args.since, int(time.time() * 1000))
        except ValueError as exc:
            _say(f"logs: {exc}")
            return 2
    out = sys.stdout.buffer
    printer = Printer(out)
    try:
        lam, logs = clients(args.endpoint_url, args.region, "lambda", "logs", profile=args.profile)
        group = log_group_of(lam, args.function)
        if group is None:
            _say(f"no such function: {args.function}")
            return 1
        if args.follow:
            follow(logs, group, since_ms, printer)
            return 0
        try:
            for event in events(logs, group, since_ms):
                printer.write(event)
        except Exception as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
        out.flush()
    except KeyboardInterrupt:
        out.flush()
        return 0
    except BrokenPipeError:
        # The reader went away (``lamina logs fn | head``): done, quietly (Python's own advice:
        # point stdout at /dev/null so that the flush at exit does not fail again).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        message = aws_error(exc)
        if message is None:
            raise
        _say(f"logs: {message}")
        return 1
    if not printer.printed:
        _say(f"no logs yet for function {args.function} (log group {group})")
        return 1
    return 0
