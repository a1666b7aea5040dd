"""StartLiveTail through boto3 against the real server: the event stream (sessionStart, then a
sessionUpdate a second with the newly ingested events that match), stream and pattern filters,
errors, IAM, the per-account session limit, and a closed connection ending its session.

boto3 sends StartLiveTail to ``stream-<host>`` (the operation's host prefix): against an endpoint
URL on 127.0.0.1 the client is made with ``inject_host_prefix=False``."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from iam_kit import doc, user_keys
from lamina_server import ACCOUNTS, LaminaServer, client

ALICE = ACCOUNTS[1]
ACCT = ALICE["account_id"]


def tail_client(
    server: LaminaServer, key: str = ALICE["access_key_id"], secret: str = ALICE["secret_access_key"]
) -> Any:
    return client(server, "logs", key=key, secret=secret, inject_host_prefix=False, read_timeout=30)


@pytest.fixture(scope="module")
def logs(server: LaminaServer) -> Any:
    return tail_client(server)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def arn(group: str) -> str:
    return f"arn:aws:logs:us-east-1:{ACCT}:log-group:{group}"


def group_with_streams(logs: Any, *streams: str) -> str:
    group = uid("/tail/group")
    logs.create_log_group(logGroupName=group)
    for stream in streams:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    return group


def put(logs: Any, group: str, stream: str, *messages: str) -> None:
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )


def collect(
    events: Any, until: Callable[[list[dict[str, Any]]], bool], updates: int = 30
) -> list[dict[str, Any]]:
    """The session results of the next updates, until ``until`` holds for them (at most
    ``updates`` updates: one a second)."""
    got: list[dict[str, Any]] = []
    for _ in range(updates):
        event = next(events)
        assert set(event) == {"sessionUpdate"}, event
        got += event["sessionUpdate"]["sessionResults"]
        if until(got):
            break
    return got


def messages(results: list[dict[str, Any]]) -> list[str]:
    return [r["message"] for r in results]


def test_session_start_then_updates_with_new_events(logs: Any) -> None:
    group = group_with_streams(logs, "s1", "s2")
    put(logs, group, "s1", "before the session")
    response = logs.start_live_tail(logGroupIdentifiers=[arn(group)])
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    events = iter(response["responseStream"])
    start = next(events)["sessionStart"]
    assert list(start) == ["requestId", "sessionId", "logGroupIdentifiers"]
    assert start["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert start["logGroupIdentifiers"] == [arn(group)]
    put(logs, group, "s1", "one", "two")
    put(logs, group, "s2", "three")
    got = collect(events, lambda r: len(r) >= 3)
    assert messages(got) == ["one", "two", "three"] or sorted(messages(got)) == ["one", "three", "two"]
    first = got[0]
    assert list(first) == ["logStreamName", "logGroupIdentifier", "message", "timestamp", "ingestionTime"]
    assert first["logGroupIdentifier"] == arn(group)
    # An update a second, empty when nothing came: each event was shown once.
    update = next(events)["sessionUpdate"]
    assert update == {"sessionMetadata": {"sampled": False}, "sessionResults": []}
    response["responseStream"].close()


def test_streams_prefixes_and_pattern(logs: Any) -> None:
    group = group_with_streams(logs, "app/1", "app/2", "other")
    response = logs.start_live_tail(
        logGroupIdentifiers=[group], logStreamNamePrefixes=["app/"], logEventFilterPattern="ERROR"
    )
    events = iter(response["responseStream"])
    start = next(events)["sessionStart"]
    assert start["logStreamNamePrefixes"] == ["app/"] and start["logEventFilterPattern"] == "ERROR"
    put(logs, group, "other", "ERROR elsewhere")
    put(logs, group, "app/1", "INFO fine", "ERROR one")
    put(logs, group, "app/2", "ERROR two")
    got = collect(events, lambda r: len(r) >= 2)
    assert sorted(messages(got)) == ["ERROR one", "ERROR two"]
    assert {r["logGroupIdentifier"] for r in got} == {group}
    response["responseStream"].close()

    response = logs.start_live_tail(logGroupIdentifiers=[arn(group)], logStreamNames=["other"])
    events = iter(response["responseStream"])
    next(events)
    put(logs, group, "app/1", "not this")
    put(logs, group, "other", "this")
    assert messages(collect(events, lambda r: len(r) >= 1)) == ["this"]
    response["responseStream"].close()


def error_of(call: Callable[..., Any], **kw: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kw)
    err = caught.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"]["Message"]


def test_errors(logs: Any) -> None:
    group = group_with_streams(logs, "s")
    other = group_with_streams(logs)
    start = logs.start_live_tail
    missing = "The specified log group does not exist."
    assert error_of(start, logGroupIdentifiers=[arn(group + "-nope")]) == (
        400,
        "ResourceNotFoundException",
        missing,
    )
    # Another account's group: its owner has not shared it (no resource policy), IAM refuses.
    foreign = f"arn:aws:logs:us-east-1:{ACCOUNTS[2]['account_id']}:log-group:{group}"
    assert error_of(start, logGroupIdentifiers=[foreign])[1] == "AccessDeniedException"
    assert error_of(
        start, logGroupIdentifiers=[arn(group)], logStreamNames=["s"], logStreamNamePrefixes=["s"]
    )[1] == ("InvalidParameterException")
    status, code, message = error_of(
        start, logGroupIdentifiers=[arn(group), arn(other)], logStreamNames=["s"]
    )
    assert (status, code) == (400, "InvalidParameterException") and "single log group" in message
    assert error_of(start, logGroupIdentifiers=[arn(group) + ":*"])[1] == "InvalidParameterException"
    assert error_of(start, logGroupIdentifiers=[arn(group)], logEventFilterPattern='"unclosed')[1] == (
        "InvalidParameterException"
    )
    status, code, message = error_of(start, logGroupIdentifiers=[arn(f"/g{i}") for i in range(11)])
    assert (status, code) == (400, "InvalidParameterException") and "logGroupIdentifiers" in message


def test_iam_decides_on_each_group(server: LaminaServer, logs: Any) -> None:
    allowed, denied = group_with_streams(logs), group_with_streams(logs)
    iam = client(server, "iam", key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])
    policy = doc({"Effect": "Allow", "Action": "logs:StartLiveTail", "Resource": f"{arn(allowed)}:*"})
    name, key, secret = user_keys(iam, inline=policy)
    mine = tail_client(server, key, secret)
    response = mine.start_live_tail(logGroupIdentifiers=[arn(allowed)])
    assert "sessionStart" in next(iter(response["responseStream"]))
    response["responseStream"].close()
    status, code, message = error_of(mine.start_live_tail, logGroupIdentifiers=[arn(allowed), arn(denied)])
    assert (status, code) == (400, "AccessDeniedException")
    assert message == (
        f"User: arn:aws:iam::{ACCT}:user/{name} is not authorized to perform: logs:StartLiveTail on resource: "
        f"{arn(denied)}:log-stream: because no identity-based policy allows the logs:StartLiveTail action"
    )


def test_session_limit_and_a_closed_connection_ends_its_session(server: LaminaServer) -> None:
    # Another account, so that other tests' sessions do not count.
    bob = ACCOUNTS[2]
    mine = tail_client(server, bob["access_key_id"], bob["secret_access_key"])
    group = uid("/tail/limit")
    mine.create_log_group(logGroupName=group)
    sessions = []
    try:
        for _ in range(15):
            response = mine.start_live_tail(logGroupIdentifiers=[group])
            next(iter(response["responseStream"]))
            sessions.append(response["responseStream"])
        status, code, message = error_of(mine.start_live_tail, logGroupIdentifiers=[group])
        assert (status, code) == (400, "LimitExceededException")
        assert message == "Your account has reached the limit of 15 concurrent Live Tail sessions."
        sessions.pop().close()  # the client goes away: the server ends that session
        deadline = time.monotonic() + 30
        while True:
            try:
                response = mine.start_live_tail(logGroupIdentifiers=[group])
                break
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "LimitExceededException"
                assert time.monotonic() < deadline, "the closed session was never ended"
                time.sleep(0.2)
        sessions.append(response["responseStream"])
        assert "sessionStart" in next(iter(response["responseStream"]))
    finally:
        for stream in sessions:
            with contextlib.suppress(Exception):
                stream.close()
