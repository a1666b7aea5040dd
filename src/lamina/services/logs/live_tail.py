"""StartLiveTail: a stream of the log events newly ingested in up to 10 log groups.

Facts (CloudWatch Logs API Reference, "StartLiveTail"): the answer is an event stream; a
``sessionStart`` event comes first, then every second a ``sessionUpdate`` with the events ingested
since (an empty list when there were none), at most 500 per update (more are sampled down to 500,
``sessionMetadata.sampled``); after three hours the session ends with a ``SessionTimeoutException``
event; a client ends it sooner by closing the connection. ``logGroupIdentifiers`` names the groups
(ARNs, without a trailing ``*``; lamina also takes names); ``logStreamNames`` or
``logStreamNamePrefixes`` (not both, and only with one group) narrow the streams;
``logEventFilterPattern`` is a filter pattern as FilterLogEvents takes it. The operation's host
prefix is ``stream-``: boto3 against an endpoint URL sends to ``stream-<host>`` unless the client
is made with ``Config(inject_host_prefix=False)`` (see docs/logs.md "Live Tail").

lamina reads the groups from the store every second: an event is shown once (by its position), if
it was ingested after the session started and its timestamp is at most :data:`LOOKBACK_MS` before
the poll (lines delivered a few seconds late are still shown; an event put with an older timestamp
is not, a difference from AWS, which streams by ingestion).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lamina.domain.actions_logs import group_name_in
from lamina.domain.arns import PARTITION
from lamina.domain.log_filters import LogPattern, compile_pattern
from lamina.errors import AwsError
from lamina.services.base import OnLoop, RequestContext
from lamina.store.logs import LogGroupStore, Scope

SESSION_S = 3 * 3600  # AWS ends a session after three hours
UPDATE_S = 1.0  # one sessionUpdate a second
MAX_RESULTS = 500  # events in one sessionUpdate; more are sampled down to this
MAX_SESSIONS = 15  # concurrent sessions of an account (CloudWatch Logs quotas: "Live Tail")
LOOKBACK_MS = 10_000
PAGE = 1_000  # events read from the store at a time
MAX_SCAN = 20_000  # events one update reads from one group at most (the rest: next second)
_END_OF_TIME_MS = 2**62
TIMEOUT_MESSAGE = "Live Tail session has timed out after 3 hours."


def _invalid(message: str) -> AwsError:
    return AwsError(message, code="InvalidParameterException", status=400, sender_fault=True)


class Sessions:
    """The live sessions of each account (registered while their stream runs)."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._live: dict[str, int] = {}

    def check(self, account: str) -> None:
        """LimitExceededException when the account already has ``limit`` sessions."""
        with self._lock:
            if self._live.get(account, 0) >= self.limit:
                raise AwsError(
                    f"Your account has reached the limit of {self.limit} concurrent Live Tail sessions.",
                    code="LimitExceededException",
                    status=400,
                    sender_fault=True,
                )

    def enter(self, account: str) -> None:
        with self._lock:
            self._live[account] = self._live.get(account, 0) + 1

    def leave(self, account: str) -> None:
        with self._lock:
            left = self._live.get(account, 0) - 1
            if left > 0:
                self._live[account] = left
            else:
                self._live.pop(account, None)

    def count(self, account: str) -> int:
        """How many sessions of ``account`` are streaming now."""
        with self._lock:
            return self._live.get(account, 0)


SESSIONS = Sessions()


@dataclass(frozen=True)
class Target:
    """One group of a session: how the request named it, its name, and its streams (None: all)."""

    identifier: str
    name: str
    names: tuple[str, ...] | None
    prefixes: tuple[str, ...] | None


@dataclass
class Tail:
    """One session's reading state: what it shows and what it has shown."""

    store: LogGroupStore
    scope: Scope
    targets: tuple[Target, ...]
    pattern: LogPattern
    started_ms: int
    clock_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    seen: dict[int, int] = field(default_factory=dict)  # event position -> timestamp

    def poll(self) -> tuple[list[dict[str, Any]], bool]:
        """The events ingested since the last poll that match, oldest first: at most
        :data:`MAX_RESULTS`, sampled evenly when more matched (or when a group had more than
        :data:`MAX_SCAN` events to read in its window): then True."""
        found: list[tuple[int, int, dict[str, Any]]] = []
        # Timestamps from LOOKBACK_MS ago on (and any in the future): a window of the wall clock,
        # so that an event stamped hours ahead cannot hide the ones that follow it.
        since = max(0, self.clock_ms() - LOOKBACK_MS)
        behind = False
        for target in self.targets:
            streams = self._streams(target)
            if streams == []:
                continue
            cursor: tuple[int, int] | None = None
            scanned = 0
            while scanned < MAX_SCAN:
                page = self.store.group_events(
                    self.scope,
                    target.name,
                    streams=streams,
                    since_ms=since,
                    until_ms=_END_OF_TIME_MS,
                    cursor=cursor,
                    limit=PAGE,
                )
                for event in page:
                    scanned += 1
                    if event.id in self.seen or event.ingested_ms < self.started_ms:
                        continue
                    self.seen[event.id] = event.ts
                    if self.pattern.matches(event.message):
                        found.append(
                            (
                                event.ts,
                                event.id,
                                {
                                    "logStreamName": event.stream,
                                    "logGroupIdentifier": target.identifier,
                                    "message": event.message,
                                    "timestamp": event.ts,
                                    "ingestionTime": event.ingested_ms,
                                },
                            )
                        )
                if len(page) < PAGE:
                    break
                cursor = (page[-1].ts, page[-1].id)
            else:
                behind = True
        self.seen = {k: ts for k, ts in self.seen.items() if ts >= since}
        found.sort(key=lambda item: (item[0], item[1]))
        results = [item[2] for item in found]
        if len(results) <= MAX_RESULTS:
            return results, behind
        step = len(results) / MAX_RESULTS
        return [results[int(i * step)] for i in range(MAX_RESULTS)], True

    def _streams(self, target: Target) -> list[str] | None:
        if target.names is not None:
            return list(target.names)
        if target.prefixes is None:
            return None
        names: set[str] = set()
        for prefix in target.prefixes:
            names.update(s.name for s in self.store.streams(self.scope, target.name, prefix))
        return sorted(names)


def _targets(store: LogGroupStore, ctx: RequestContext, params: Mapping[str, Any]) -> tuple[Target, ...]:
    identifiers: list[str] = list(params.get("logGroupIdentifiers") or [])
    names = params.get("logStreamNames")
    prefixes = params.get("logStreamNamePrefixes")
    if names is not None and prefixes is not None:
        raise _invalid("logStreamNames and logStreamNamePrefixes are mutually exclusive parameters.")
    if (names is not None or prefixes is not None) and len(identifiers) > 1:
        raise _invalid(
            "logStreamNames and logStreamNamePrefixes can only be specified with a single log group."
        )
    own = f"arn:{PARTITION}:logs:{ctx.region}:{ctx.account_id}:log-group:"
    scope = Scope(ctx.account_id, ctx.region)
    targets: list[Target] = []
    for identifier in identifiers:
        if identifier.endswith("*"):
            raise _invalid("LogGroup ARN should not end with '*'.")
        if identifier.startswith("arn:") and not identifier.startswith(own):
            # Another account's or Region's group: not one lamina can see from here.
            raise AwsError(
                "The specified log group does not exist.",
                code="ResourceNotFoundException",
                status=400,
                sender_fault=True,
            )
        name = group_name_in(None, identifier)
        if store.group(scope, name) is None:
            raise AwsError(
                "The specified log group does not exist.",
                code="ResourceNotFoundException",
                status=400,
                sender_fault=True,
            )
        targets.append(
            Target(
                identifier,
                name,
                None if names is None else tuple(names),
                None if prefixes is None else tuple(prefixes),
            )
        )
    return tuple(targets)


async def stream(
    tail: Tail,
    start: dict[str, Any],
    account: str,
    *,
    sessions: Sessions = SESSIONS,
    session_s: float = SESSION_S,
    update_s: float = UPDATE_S,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The session's events: ``sessionStart``, a ``sessionUpdate`` every ``update_s`` (the store
    read on the default executor: never on the loop's thread), and after ``session_s`` the
    ``SessionTimeoutException`` that ends it. Closing it ends the session."""
    loop = asyncio.get_running_loop()
    deadline = clock() + session_s
    sessions.enter(account)
    try:
        yield "sessionStart", start
        while True:
            left = deadline - clock()
            if left <= 0:
                yield "SessionTimeoutException", {"message": TIMEOUT_MESSAGE}
                return
            await asyncio.sleep(min(update_s, left))
            results, sampled = await loop.run_in_executor(None, tail.poll)
            yield "sessionUpdate", {"sessionMetadata": {"sampled": sampled}, "sessionResults": results}
    finally:
        sessions.leave(account)


def start_live_tail(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> OnLoop:
    """StartLiveTail: the checks here (groups exist, stream options, the pattern, the session
    limit), the stream on the event loop."""
    targets = _targets(store, ctx, params)
    pattern = compile_pattern(params.get("logEventFilterPattern", ""))
    SESSIONS.check(ctx.account_id)
    start: dict[str, Any] = {
        "requestId": ctx.request_id,
        "sessionId": str(uuid.uuid4()),
        "logGroupIdentifiers": list(params["logGroupIdentifiers"]),
    }
    for key in ("logStreamNames", "logStreamNamePrefixes", "logEventFilterPattern"):
        if key in params:
            start[key] = params[key]
    tail = Tail(store, Scope(ctx.account_id, ctx.region), targets, pattern, started_ms=ctx.now_ms)
    account = ctx.account_id

    async def finish() -> dict[str, Any]:
        return {"responseStream": stream(tail, start, account)}

    return OnLoop(finish)


HANDLERS: Mapping[str, Callable[[LogGroupStore, RequestContext, dict[str, Any]], OnLoop]] = {
    "StartLiveTail": start_live_tail,
}
