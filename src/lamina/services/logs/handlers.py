"""CloudWatch Logs' operations: log groups, streams, events, retention and tags.

Messages and shapes are AWS's (recorded against real AWS). Facts from the CloudWatch Logs API
Reference: PutLogEvents takes at most 10,000 events and 1,048,576 bytes (each event's UTF-8
message plus 26 bytes), each event at most 256 KB (262,144 bytes, counted the same way), in
chronological order, spanning at most 24 hours; events older than 14 days or the group's
retention, or more than 2 hours in the future, are rejected (reported in
``rejectedLogEventsInfo``, not stored); sequence tokens are ignored. Retention is one of
:data:`RETENTION_DAYS`. GetLogEvents and FilterLogEvents answer "as many log events as can fit in
a response size of 1 MB (up to 10,000 log events)": lamina counts each event as PutLogEvents does
and stops a page before the event that would pass :data:`MAX_RESPONSE_BYTES`, with a token to go
on from there.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from lamina.domain.actions_logs import group_name_in
from lamina.domain.arns import PARTITION
from lamina.domain.log_filters import compile_pattern
from lamina.domain.logs_models import (
    FilteredLogEvent,
    LogGroup,
    LogStream,
    OutputLogEvent,
    RejectedLogEventsInfo,
)
from lamina.errors import AwsError
from lamina.services.base import RequestContext
from lamina.store.logs import (
    DAY_MS,
    LogEventRow,
    LogGroupRow,
    LogGroupStore,
    LogStreamRow,
    Scope,
    message_bytes,
)

Handler = Callable[[LogGroupStore, RequestContext, dict[str, Any]], dict[str, Any]]

RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
MAX_BATCH_BYTES = 1_048_576
MAX_EVENT_BYTES = 262_144
MAX_RESPONSE_BYTES = 1_048_576
MAX_FILTER_STREAMS = 100  # FilterLogEvents logStreamNames (the API's list length constraint)
EVENT_OVERHEAD = 26
MAX_AGE_MS = 14 * DAY_MS
MAX_FUTURE_MS = 2 * 3_600_000
MAX_SPAN_MS = DAY_MS
FOREVER_MS = 2**62
FILTER_PAGE = 1_000  # events read from the store at a time by FilterLogEvents
FILTER_SCAN = 100_000  # events one FilterLogEvents call judges in Python before a nextToken
FILTER_SQL_SCAN = 1_000_000  # rows one call lets SQLite skip (required texts) before a nextToken


def invalid(message: str) -> AwsError:
    """InvalidParameterException (400)."""
    return AwsError(message, code="InvalidParameterException", status=400, sender_fault=True)


def not_found(message: str) -> AwsError:
    """ResourceNotFoundException (400)."""
    return AwsError(message, code="ResourceNotFoundException", status=400, sender_fault=True)


def exists(message: str) -> AwsError:
    """ResourceAlreadyExistsException (400)."""
    return AwsError(message, code="ResourceAlreadyExistsException", status=400, sender_fault=True)


NO_GROUP = "The specified log group does not exist."
NO_STREAM = "The specified log stream does not exist."
BAD_TOKEN = "The specified nextToken is invalid."


def _scope(ctx: RequestContext) -> Scope:
    return Scope(ctx.account_id, ctx.region)


def group_arn(ctx: RequestContext, name: str) -> str:
    """A group's ARN (``logGroupArn``: without the ``:*`` of the older ``arn`` member)."""
    return f"arn:{PARTITION}:logs:{ctx.region}:{ctx.account_id}:log-group:{name}"


def _name(params: Mapping[str, Any]) -> str:
    if params.get("logGroupName") and params.get("logGroupIdentifier"):
        raise AwsError(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
            code="ValidationException",
            status=400,
            sender_fault=True,
        )
    return group_name_in(params.get("logGroupName"), params.get("logGroupIdentifier"))


def _require_group(store: LogGroupStore, ctx: RequestContext, name: str) -> LogGroupRow:
    group = store.group(_scope(ctx), name)
    if group is None:
        raise not_found(NO_GROUP)
    return group


def _clamped(millis: Any) -> int:
    """A caller's time in milliseconds, held within what the store's integers can compare (a time
    past year 146 million is the same bound as "forever")."""
    return max(-FOREVER_MS, min(int(millis), FOREVER_MS))


def _since(group: LogGroupRow, now_ms: int, start: int | None) -> int:
    """The oldest timestamp a read may return: the caller's ``startTime`` and the retention."""
    since = _clamped(start) if start is not None else -FOREVER_MS
    if group.retention_days is not None:
        since = max(since, now_ms - group.retention_days * DAY_MS)
    return since


# -- groups ---------------------------------------------------------------------------------------


def create_log_group(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if not store.create_group(_scope(ctx), params["logGroupName"], ctx.now_ms, params.get("tags", {})):
        raise exists("The specified log group already exists")
    return {}


def delete_log_group(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if not store.delete_group(_scope(ctx), params["logGroupName"]):
        raise not_found(NO_GROUP)
    return {}


def _group_out(ctx: RequestContext, group: LogGroupRow, full: bool) -> LogGroup:
    arn = group_arn(ctx, group.name)
    out: LogGroup = {"logGroupName": group.name, "creationTime": group.created_ms}
    if group.retention_days is not None:
        out["retentionInDays"] = group.retention_days
    out["metricFilterCount"] = 0
    out["arn"] = f"{arn}:*"
    if full:
        out["storedBytes"] = group.stored_bytes
    out["logGroupClass"] = "STANDARD"
    out["logGroupArn"] = arn
    if full:
        out["deletionProtectionEnabled"] = False
    return out


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise invalid(BAD_TOKEN) from exc


def describe_log_groups(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    prefix = params.get("logGroupNamePrefix")
    pattern = params.get("logGroupNamePattern")
    if prefix is not None and pattern is not None:
        raise invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
    limit = int(params.get("limit", 50))
    after = _decode(params["nextToken"]) if "nextToken" in params else ""
    found: list[LogGroupRow] = []
    more = False
    # A pattern is a case-insensitive substring of the name (DescribeLogGroups,
    # logGroupNamePattern): pages of groups are read until ``limit`` match.
    while True:
        page = store.groups(_scope(ctx), prefix or "", after, limit + 1)
        for group in page:
            if pattern is None or pattern.lower() in group.name.lower():
                if len(found) == limit:
                    more = True
                    break
                found.append(group)
            after = group.name
        if more or len(page) <= limit:
            break
    out: dict[str, Any] = {"logGroups": [_group_out(ctx, g, pattern is None) for g in found]}
    if more:
        out["nextToken"] = _encode(found[-1].name)
    return out


def put_retention_policy(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    days = int(params["retentionInDays"])
    if days not in RETENTION_DAYS:
        raise invalid(
            f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint:"
            " Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400,"
            " 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]"
        )
    name = params["logGroupName"]
    if not store.set_retention(_scope(ctx), name, days):
        raise not_found(NO_GROUP)
    store.expire(_scope(ctx), name, ctx.now_ms)
    return {}


def delete_retention_policy(
    store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    if not store.set_retention(_scope(ctx), params["logGroupName"], None):
        raise not_found(NO_GROUP)
    return {}


# -- streams --------------------------------------------------------------------------------------


def create_log_stream(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["logGroupName"]
    _require_group(store, ctx, name)
    if not store.create_stream(_scope(ctx), name, params["logStreamName"], ctx.now_ms):
        raise exists("The specified log stream already exists")
    return {}


def delete_log_stream(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["logGroupName"]
    _require_group(store, ctx, name)
    if not store.delete_stream(_scope(ctx), name, params["logStreamName"]):
        raise not_found(NO_STREAM)
    return {}


def _stream_out(ctx: RequestContext, group: str, stream: LogStreamRow) -> LogStream:
    out: LogStream = {"logStreamName": stream.name, "creationTime": stream.created_ms}
    # The three are set together by the stream's first PutLogEvents.
    if stream.first_ms is not None and stream.last_ms is not None and stream.ingested_ms is not None:
        out["firstEventTimestamp"] = stream.first_ms
        out["lastEventTimestamp"] = stream.last_ms
        out["lastIngestionTime"] = stream.ingested_ms
    out["arn"] = f"{group_arn(ctx, group)}:log-stream:{stream.name}"
    out["storedBytes"] = stream.stored_bytes
    return out


def describe_log_streams(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _name(params)
    _require_group(store, ctx, name)
    order = params.get("orderBy", "LogStreamName")
    prefix = params.get("logStreamNamePrefix")
    if order == "LastEventTime" and prefix is not None:
        raise invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
    by_last = order == "LastEventTime"
    after: tuple[int, str] | None = None
    if "nextToken" in params:
        after = _stream_key(_decode(params["nextToken"]))
    limit = int(params.get("limit", 50))
    # One row more than the page: whether there is a next page (paged in SQL, however many streams).
    streams = store.streams_page(
        _scope(ctx),
        name,
        prefix=prefix or "",
        by_last_event=by_last,
        descending=bool(params.get("descending")),
        after=after,
        limit=limit + 1,
    )
    page = streams[:limit]
    out: dict[str, Any] = {"logStreams": [_stream_out(ctx, name, s) for s in page]}
    if len(streams) > limit:
        last = page[-1]
        out["nextToken"] = _encode(f"{last.last_ms if last.last_ms is not None else -1}/{last.name}")
    return out


def _stream_key(text: str) -> tuple[int, str]:
    """A DescribeLogStreams token's key: the last stream's (last event time, name)."""
    millis, sep, stream = text.partition("/")  # (a stream's name may hold "/" itself)
    body = millis[1:] if millis.startswith("-") else millis
    if not sep or not (body.isascii() and body.isdigit() and len(body) <= 19) or not stream:
        raise invalid(BAD_TOKEN)
    if not -1 <= int(millis) <= FOREVER_MS:  # not a token lamina wrote (and past SQLite's integers)
        raise invalid(BAD_TOKEN)
    return int(millis), stream


# -- events ---------------------------------------------------------------------------------------


def _sequence_token() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(56))


def put_log_events(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["logGroupName"]
    group = _require_group(store, ctx, name)
    stream = params["logStreamName"]
    if store.stream(_scope(ctx), name, stream) is None:
        raise not_found(NO_STREAM)
    events: list[dict[str, Any]] = params["logEvents"]
    sizes = [message_bytes(str(e["message"])) + EVENT_OVERHEAD for e in events]
    size = sum(sizes)
    if size > MAX_BATCH_BYTES:
        raise invalid(f"Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}")
    largest = max(sizes, default=0)
    if largest > MAX_EVENT_BYTES:  # AWS's message, seen in SDK reports: the event's size with its 26
        raise invalid(f"Log event too large: {largest} bytes exceeds limit of {MAX_EVENT_BYTES}")
    stamps = [int(e["timestamp"]) for e in events]
    if any(b < a for a, b in zip(stamps, stamps[1:], strict=False)):
        raise invalid("Log events in a single PutLogEvents request must be in chronological order.")
    if stamps and stamps[-1] - stamps[0] > MAX_SPAN_MS:
        raise invalid(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."
        )
    oldest = ctx.now_ms - MAX_AGE_MS
    newest = ctx.now_ms + MAX_FUTURE_MS
    expired_before = ctx.now_ms - group.retention_days * DAY_MS if group.retention_days is not None else None
    too_old = sum(1 for ts in stamps if ts < oldest)
    expired = sum(1 for ts in stamps if expired_before is not None and ts < expired_before)
    too_new_at = next((i for i, ts in enumerate(stamps) if ts > newest), len(stamps))
    first = max(too_old, expired)
    kept = [
        (ts, str(e["message"]))
        for ts, e in zip(stamps[first:too_new_at], events[first:too_new_at], strict=True)
    ]
    store.put_events(_scope(ctx), name, stream, kept, ctx.now_ms)
    out: dict[str, Any] = {"nextSequenceToken": _sequence_token()}
    rejected: RejectedLogEventsInfo = {}
    if too_new_at < len(stamps):
        rejected["tooNewLogEventStartIndex"] = too_new_at
    if too_old:
        rejected["tooOldLogEventEndIndex"] = too_old
    if expired > too_old:
        rejected["expiredLogEventEndIndex"] = expired
    if rejected:
        out["rejectedLogEventsInfo"] = rejected
    return out


def _position(direction: str, ts: int, event_id: int) -> str:
    # AWS's tokens are ``f/`` or ``b/`` and digits: here the timestamp and the event's number.
    return f"{direction}/{ts + 2**62:020d}{event_id:020d}"


def _parse_position(token: str) -> tuple[str, tuple[int, int]]:
    direction, _, digits = token.partition("/")
    if direction not in ("f", "b") or len(digits) != 40 or not (digits.isascii() and digits.isdigit()):
        raise invalid(BAD_TOKEN)
    ts, event_id = int(digits[:20]) - 2**62, int(digits[20:])
    if not (-FOREVER_MS <= ts <= FOREVER_MS and event_id < 2**63):  # not a token lamina wrote
        raise invalid(BAD_TOKEN)
    return direction, (ts, event_id)


def _event_out(event: LogEventRow) -> OutputLogEvent:
    return {"timestamp": event.ts, "message": event.message, "ingestionTime": event.ingested_ms}


def get_log_events(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _name(params)
    group = _require_group(store, ctx, name)
    stream = params["logStreamName"]
    if store.stream(_scope(ctx), name, stream) is None:
        raise not_found(NO_STREAM)
    cursor: tuple[int, int] | None = None
    forward = bool(params.get("startFromHead", False))
    if "nextToken" in params:
        direction, cursor = _parse_position(params["nextToken"])
        forward = direction == "f"
    limit = int(params.get("limit", 10_000))
    events = store.stream_events(
        _scope(ctx),
        name,
        stream,
        since_ms=_since(group, ctx.now_ms, params.get("startTime")),
        until_ms=_clamped(params.get("endTime", FOREVER_MS)),
        cursor=cursor,
        forward=forward,
        limit=limit,
        max_bytes=MAX_RESPONSE_BYTES,
    )
    if events:
        head, tail = (events[0].ts, events[0].id), (events[-1].ts, events[-1].id)
    else:
        # Nothing (more): both tokens stay where the reader is (AWS answers the same token again).
        here = cursor if cursor is not None else ((-FOREVER_MS, 0) if forward else (FOREVER_MS, 2**62))
        head = tail = here
    return {
        "events": [_event_out(e) for e in events],
        "nextForwardToken": _position("f", *tail),
        "nextBackwardToken": _position("b", *head),
    }


def _filtered_out(event: LogEventRow) -> FilteredLogEvent:
    return {
        "logStreamName": event.stream,
        "timestamp": event.ts,
        "message": event.message,
        "ingestionTime": event.ingested_ms,
        "eventId": f"{event.id:056d}",
    }


def filter_log_events(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _name(params)
    group = _require_group(store, ctx, name)
    names: list[str] | None = params.get("logStreamNames")
    prefix: str | None = params.get("logStreamNamePrefix")
    if names is not None and prefix is not None:
        raise invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
    if names is not None and len(names) > MAX_FILTER_STREAMS:
        raise invalid(
            f"1 validation error detected: Value '[{', '.join(names)}]' at 'logStreamNames' failed to"
            f" satisfy constraint: Member must have length less than or equal to {MAX_FILTER_STREAMS}"
        )
    matcher = compile_pattern(params.get("filterPattern", ""))
    cursor: tuple[int, int] | None = None
    if "nextToken" in params:
        text = _decode(params["nextToken"])
        ts, _, event_id = text.partition(":")
        try:
            cursor = (int(ts), int(event_id))
        except ValueError as exc:
            raise invalid(BAD_TOKEN) from exc
        if not (-FOREVER_MS <= cursor[0] <= FOREVER_MS and 0 <= cursor[1] < 2**63):
            raise invalid(BAD_TOKEN)
    limit = int(params.get("limit", 10_000))
    since = _since(group, ctx.now_ms, params.get("startTime"))
    until = _clamped(params.get("endTime", FOREVER_MS))
    found: list[FilteredLogEvent] = []
    scanned = 0
    used = 0
    last: tuple[int, int] | None = None
    exhausted = names == []
    # A page of the group's events at a time (a group may hold millions): until ``limit`` match,
    # the events run out, the answer would pass 1 MB, or FILTER_SCAN were looked at (then a
    # nextToken says where to go on). The store skips, in SQL, events without the texts the
    # pattern needs; ``matches`` stays the judge of the rest.
    full = False
    # With texts to skip on, SQLite may pass over many rows for each it returns: one call reads at
    # most FILTER_SQL_SCAN of them (up to ``horizon``), then answers with a nextToken from there.
    horizon = None
    if matcher.required and not exhausted:
        horizon = store.scan_horizon(
            _scope(ctx), name, since_ms=since, until_ms=until, cursor=cursor, rows=FILTER_SQL_SCAN
        )
    while not exhausted and not full and len(found) < limit and scanned < FILTER_SCAN:
        page = store.group_events(
            _scope(ctx),
            name,
            streams=names,
            stream_prefix=prefix,
            since_ms=since,
            until_ms=until,
            cursor=cursor,
            limit=FILTER_PAGE,
            required=matcher.required,
            upto=horizon,
        )
        for event in page:
            if matcher.matches(event.message):
                used += message_bytes(event.message) + EVENT_OVERHEAD
                if used > MAX_RESPONSE_BYTES:  # the next page starts at this event
                    full = True
                    break
                found.append(_filtered_out(event))
            scanned += 1
            last = (event.ts, event.id)
            if len(found) == limit:
                break
        if not page or (len(page) < FILTER_PAGE and last == (page[-1].ts, page[-1].id)):
            if horizon is None:
                exhausted = True
            else:  # read up to the horizon: go on from there next time
                last = horizon
                break
        cursor = last
    out: dict[str, Any] = {"events": found}
    if not exhausted and last is not None:
        out["nextToken"] = _encode(f"{last[0]}:{last[1]}")
    return out


# -- tags -----------------------------------------------------------------------------------------


def _arn_group(ctx: RequestContext, arn: str) -> str:
    """The group a ``resourceArn`` names in the caller's account and Region."""
    prefix = f"arn:{PARTITION}:logs:{ctx.region}:{ctx.account_id}:log-group:"
    if not arn.startswith(prefix):
        raise not_found(NO_GROUP)
    name = arn[len(prefix) :]
    return name[:-2] if name.endswith(":*") else name


def _retag(
    store: LogGroupStore, ctx: RequestContext, name: str, change: Callable[[dict[str, str]], None]
) -> None:
    group = _require_group(store, ctx, name)
    tags = dict(group.tags)
    change(tags)
    store.set_tags(_scope(ctx), name, tags)


def tag_resource(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _retag(store, ctx, _arn_group(ctx, params["resourceArn"]), lambda t: t.update(params["tags"]))
    return {}


def untag_resource(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    def drop(tags: dict[str, str]) -> None:
        for key in params["tagKeys"]:
            tags.pop(key, None)

    _retag(store, ctx, _arn_group(ctx, params["resourceArn"]), drop)
    return {}


def list_tags_for_resource(
    store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    return {"tags": _require_group(store, ctx, _arn_group(ctx, params["resourceArn"])).tags}


def tag_log_group(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _retag(store, ctx, params["logGroupName"], lambda t: t.update(params["tags"]))
    return {}


def untag_log_group(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    def drop(tags: dict[str, str]) -> None:
        for key in params["tags"]:
            tags.pop(key, None)

    _retag(store, ctx, params["logGroupName"], drop)
    return {}


def list_tags_log_group(store: LogGroupStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return {"tags": _require_group(store, ctx, params["logGroupName"]).tags}


HANDLERS: Mapping[str, Handler] = {
    "CreateLogGroup": create_log_group,
    "DeleteLogGroup": delete_log_group,
    "DescribeLogGroups": describe_log_groups,
    "CreateLogStream": create_log_stream,
    "DeleteLogStream": delete_log_stream,
    "DescribeLogStreams": describe_log_streams,
    "PutLogEvents": put_log_events,
    "GetLogEvents": get_log_events,
    "FilterLogEvents": filter_log_events,
    "PutRetentionPolicy": put_retention_policy,
    "DeleteRetentionPolicy": delete_retention_policy,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
    "TagLogGroup": tag_log_group,
    "UntagLogGroup": untag_log_group,
    "ListTagsLogGroup": list_tags_log_group,
}
