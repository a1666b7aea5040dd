"""CloudWatch Logs through boto3 and the AWS CLI against the real server: groups, streams,
events, retention, tags, IAM and accounts; shapes and messages as AWS records them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import ACCOUNTS, LaminaServer, client, run_aws

ALICE = ACCOUNTS[1]
BOB = ACCOUNTS[2]
ACCT = ALICE["account_id"]
REGION = "us-east-1"
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def logs(server: LaminaServer) -> Any:
    return client(server, "logs", key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def fails(call: Callable[..., Any], **kwargs: Any) -> tuple[int, str, str]:
    """(status, code, message) of the ClientError ``call(**kwargs)`` raises."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response
    return error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"], error["Error"]["Message"]


def now_ms() -> int:
    return int(time.time() * 1000)


def group_with_stream(logs: Any) -> tuple[str, str]:
    group, stream = uid("/test/group"), uid("stream")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    return group, stream


def test_groups_shape_errors_and_prefix(logs: Any) -> None:
    base = uid("/shape")
    names = [f"{base}/{i}" for i in range(3)]
    for name in names:
        logs.create_log_group(logGroupName=name)
    found = logs.describe_log_groups(logGroupNamePrefix=base)["logGroups"]
    assert [g["logGroupName"] for g in found] == names
    arn = f"arn:aws:logs:{REGION}:{ACCT}:log-group:{names[0]}"
    first = found[0]
    assert set(first) == {
        "arn",
        "creationTime",
        "deletionProtectionEnabled",
        "logGroupArn",
        "logGroupClass",
        "logGroupName",
        "metricFilterCount",
        "storedBytes",
    }
    assert (first["arn"], first["logGroupArn"], first["logGroupClass"]) == (f"{arn}:*", arn, "STANDARD")
    assert fails(logs.create_log_group, logGroupName=names[0]) == (
        400,
        "ResourceAlreadyExistsException",
        "The specified log group already exists",
    )
    assert fails(logs.create_log_group, logGroupName="x" * 513) == (
        400,
        "InvalidParameterException",
        "Invalid LogGroup or LogStream, both must have length less than or equal to 512.",
    )
    assert fails(logs.describe_log_groups, logGroupNamePrefix="a", logGroupNamePattern="b") == (
        400,
        "InvalidParameterException",
        "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
    )
    # Pagination and the case-insensitive pattern.
    page = logs.describe_log_groups(logGroupNamePrefix=base, limit=2)
    rest = logs.describe_log_groups(logGroupNamePrefix=base, nextToken=page["nextToken"])
    assert [g["logGroupName"] for g in page["logGroups"] + rest["logGroups"]] == names
    assert "nextToken" not in rest
    pattern = logs.describe_log_groups(logGroupNamePattern=base[len("/shape-") :].upper())["logGroups"]
    assert [g["logGroupName"] for g in pattern] == names
    assert "storedBytes" not in pattern[0]
    logs.delete_log_group(logGroupName=names[0])
    assert fails(logs.delete_log_group, logGroupName=names[0]) == (
        400,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )


def test_streams_shape_order_and_errors(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    assert fails(logs.create_log_stream, logGroupName=group, logStreamName=stream) == (
        400,
        "ResourceAlreadyExistsException",
        "The specified log stream already exists",
    )
    described = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert described == [
        {
            "logStreamName": stream,
            "creationTime": described[0]["creationTime"],
            "arn": f"arn:aws:logs:{REGION}:{ACCT}:log-group:{group}:log-stream:{stream}",
            "storedBytes": 0,
        }
    ]
    by_arn = logs.describe_log_streams(logGroupIdentifier=f"arn:aws:logs:{REGION}:{ACCT}:log-group:{group}")
    assert by_arn["logStreams"] == described
    assert fails(logs.describe_log_streams, logGroupName=group, logGroupIdentifier=group) == (
        400,
        "ValidationException",
        "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
    )
    logs.create_log_stream(logGroupName=group, logStreamName="b-late")
    logs.create_log_stream(logGroupName=group, logStreamName="a-early")
    logs.put_log_events(
        logGroupName=group, logStreamName="b-late", logEvents=[{"timestamp": now_ms(), "message": "x"}]
    )
    logs.put_log_events(
        logGroupName=group,
        logStreamName="a-early",
        logEvents=[{"timestamp": now_ms() - 60_000, "message": "y"}],
    )
    latest = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)[
        "logStreams"
    ]
    assert latest[0]["logStreamName"] == "b-late" and "lastEventTimestamp" in latest[0]
    page = logs.describe_log_streams(logGroupName=group, limit=1)
    assert [s["logStreamName"] for s in page["logStreams"]] == ["a-early"]
    second = logs.describe_log_streams(logGroupName=group, limit=1, nextToken=page["nextToken"])
    assert [s["logStreamName"] for s in second["logStreams"]] == ["b-late"]
    assert [
        s["logStreamName"]
        for s in logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="a")["logStreams"]
    ] == ["a-early"]
    logs.delete_log_stream(logGroupName=group, logStreamName=stream)
    assert fails(logs.delete_log_stream, logGroupName=group, logStreamName=stream) == (
        400,
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )


def test_put_and_get_events(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    t0 = now_ms() - 10_000
    events = [{"timestamp": t0 + i, "message": f"line {i}"} for i in range(5)]
    put = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    assert set(put) - {"ResponseMetadata"} == {"nextSequenceToken"}
    tail = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2)
    assert [e["message"] for e in tail["events"]] == ["line 3", "line 4"]
    assert tail["nextForwardToken"].startswith("f/") and tail["nextBackwardToken"].startswith("b/")
    assert set(tail["events"][0]) == {"timestamp", "message", "ingestionTime"}
    back = logs.get_log_events(
        logGroupName=group, logStreamName=stream, limit=2, nextToken=tail["nextBackwardToken"]
    )
    assert [e["message"] for e in back["events"]] == ["line 1", "line 2"]
    head = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, limit=3)
    assert [e["message"] for e in head["events"]] == ["line 0", "line 1", "line 2"]
    more = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=head["nextForwardToken"])
    assert [e["message"] for e in more["events"]] == ["line 3", "line 4"]
    end = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=more["nextForwardToken"])
    assert end["events"] == [] and end["nextForwardToken"] == more["nextForwardToken"]
    window = logs.get_log_events(logGroupName=group, logStreamName=stream, startTime=t0 + 1, endTime=t0 + 3)
    assert [e["message"] for e in window["events"]] == ["line 1", "line 2"]
    assert fails(logs.get_log_events, logGroupName=group, logStreamName=stream, nextToken="bogus") == (
        400,
        "InvalidParameterException",
        "The specified nextToken is invalid.",
    )
    assert fails(logs.get_log_events, logGroupName=group, logStreamName=stream, limit=10001) == (
        400,
        "InvalidParameterException",
        "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 10000",
    )


def test_put_rules(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    now = now_ms()
    assert fails(
        logs.put_log_events,
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now, "message": "b"}, {"timestamp": now - 1, "message": "a"}],
    ) == (
        400,
        "InvalidParameterException",
        "Log events in a single PutLogEvents request must be in chronological order.",
    )
    old = logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[
            {"timestamp": now - 14 * DAY_MS - 60_000, "message": "old"},
            {"timestamp": now - 14 * DAY_MS + 60_000, "message": "ok"},
        ],
    )
    assert old["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    new = logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[
            {"timestamp": now, "message": "now"},
            {"timestamp": now + 3 * 3_600_000, "message": "future"},
        ],
    )
    assert new["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    kept = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in kept] == ["ok", "now"]
    assert fails(
        logs.put_log_events,
        logGroupName=group,
        logStreamName="nope",
        logEvents=[{"timestamp": now, "message": "x"}],
    ) == (400, "ResourceNotFoundException", "The specified log stream does not exist.")
    big = [{"timestamp": now, "message": "x" * 200_000} for _ in range(6)]
    assert fails(logs.put_log_events, logGroupName=group, logStreamName=stream, logEvents=big)[1] == (
        "InvalidParameterException"
    )


def test_retention_is_enforced(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    now = now_ms()
    for at, message in ((now - 3 * DAY_MS, "three days"), (now, "today")):
        logs.put_log_events(
            logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": at, "message": message}]
        )
    assert (
        fails(logs.put_retention_policy, logGroupName=group, retentionInDays=2)[1]
        == "InvalidParameterException"
    )
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 1
    kept = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in kept] == ["today"]
    put = logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": now - 2 * DAY_MS, "message": "x"}]
    )
    assert put["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    # Deleted, not hidden: removing the policy does not bring them back.
    kept = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in kept] == ["today"]


def test_filter_log_events_pages(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    logs.create_log_stream(logGroupName=group, logStreamName="other")
    t0 = now_ms() - 60_000
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[
            {"timestamp": t0 + i, "message": f"{'ERROR' if i % 2 else 'INFO'} n={i}"} for i in range(10)
        ],
    )
    logs.put_log_events(
        logGroupName=group, logStreamName="other", logEvents=[{"timestamp": t0 + 3, "message": "ERROR other"}]
    )
    found = logs.filter_log_events(logGroupName=group, filterPattern="ERROR")["events"]
    assert [e["message"] for e in found] == [
        "ERROR n=1",
        "ERROR n=3",
        "ERROR other",
        "ERROR n=5",
        "ERROR n=7",
        "ERROR n=9",
    ]
    assert set(found[0]) == {"logStreamName", "timestamp", "message", "ingestionTime", "eventId"}
    page = logs.filter_log_events(logGroupName=group, filterPattern="ERROR", logStreamNames=[stream], limit=2)
    assert [e["message"] for e in page["events"]] == ["ERROR n=1", "ERROR n=3"]
    rest = logs.filter_log_events(
        logGroupName=group, filterPattern="ERROR", logStreamNames=[stream], nextToken=page["nextToken"]
    )
    assert [e["message"] for e in rest["events"]] == ["ERROR n=5", "ERROR n=7", "ERROR n=9"]
    assert "nextToken" not in rest
    paginated = [
        e
        for p in logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 3}
        )
        for e in p["events"]
    ]
    assert len(paginated) == 11


def test_tags(logs: Any) -> None:
    group = uid("/tags")
    logs.create_log_group(logGroupName=group, tags={"env": "testing1"})
    arn = f"arn:aws:logs:{REGION}:{ACCT}:log-group:{group}"
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "testing1"}
    logs.tag_resource(resourceArn=arn, tags={"test1": "val1", "test2": "val2"})
    logs.tag_log_group(logGroupName=group, tags={"test3": "val3"})
    expected = {"env": "testing1", "test1": "val1", "test2": "val2", "test3": "val3"}
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == expected
    logs.untag_resource(resourceArn=arn, tagKeys=["env", "test1"])
    logs.untag_log_group(logGroupName=group, tags=["test3"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"test2": "val2"}


def test_other_account_and_iam_denial(server: LaminaServer, logs: Any) -> None:
    group, stream = group_with_stream(logs)
    bob = client(server, "logs", key=BOB["access_key_id"], secret=BOB["secret_access_key"])
    assert (
        fails(bob.get_log_events, logGroupName=group, logStreamName=stream)[1] == "ResourceNotFoundException"
    )
    assert group not in [g["logGroupName"] for g in bob.describe_log_groups()["logGroups"]]
    iam = client(server, "iam", key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])
    user = uid("reader")
    iam.create_user(UserName=user)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["logs:Describe*", "logs:GetLogEvents"], "Resource": "*"}
        ],
    }
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    reader = client(server, "logs", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    assert reader.describe_log_streams(logGroupName=group)["logStreams"]
    status, code, message = fails(
        reader.put_log_events,
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now_ms(), "message": "x"}],
    )
    resource = f"arn:aws:logs:{REGION}:{ACCT}:log-group:{group}:log-stream:{stream}"
    assert (status, code) == (400, "AccessDeniedException")  # CloudWatch Logs' status for a denial
    assert message == (
        f"User: arn:aws:iam::{ACCT}:user/{user} is not authorized to perform: logs:PutLogEvents on resource: "
        f"{resource} because no identity-based policy allows the logs:PutLogEvents action"
    )


def test_aws_cli(server: LaminaServer) -> None:
    creds = {"key": ALICE["access_key_id"], "secret": ALICE["secret_access_key"]}
    group = uid("/cli")
    assert run_aws(server, "logs", "create-log-group", "--log-group-name", group, **creds).returncode == 0
    run_aws(server, "logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "s", **creds)
    events = json.dumps([{"timestamp": now_ms(), "message": "hello from the cli"}])
    put = run_aws(
        server,
        "logs",
        "put-log-events",
        "--log-group-name",
        group,
        "--log-stream-name",
        "s",
        "--log-events",
        events,
        **creds,
    )
    assert put.returncode == 0, put.stderr
    out = run_aws(
        server, "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "hello", **creds
    )
    assert out.returncode == 0, out.stderr
    assert [e["message"] for e in json.loads(out.stdout)["events"]] == ["hello from the cli"]
    missing = run_aws(server, "logs", "delete-log-group", "--log-group-name", group + "-nope", **creds)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr


def test_events_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = LaminaServer(data, lambda_role=False)
    try:
        logs = client(first, "logs")
        logs.create_log_group(logGroupName="/durable")
        logs.create_log_stream(logGroupName="/durable", logStreamName="s")
        logs.put_log_events(
            logGroupName="/durable", logStreamName="s", logEvents=[{"timestamp": now_ms(), "message": "kept"}]
        )
    finally:
        first.stop()
    second = LaminaServer(data, port=first.port, lambda_role=False)
    try:
        events = client(second, "logs").get_log_events(logGroupName="/durable", logStreamName="s")["events"]
        assert [e["message"] for e in events] == ["kept"]
    finally:
        second.stop()


def test_filter_patterns_through_the_api(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    at = now_ms()
    messages = ['{"level": "ERROR", "latency": 900}', '{"level": "INFO", "latency": 5}', "ERRORS everywhere"]
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": at, "message": m} for m in messages],
    )

    def matching(pattern: str) -> list[str]:
        return [
            e["message"] for e in logs.filter_log_events(logGroupName=group, filterPattern=pattern)["events"]
        ]

    assert matching('{ $.level = "ERROR" && $.latency > 500 }') == [messages[0]]
    assert matching("ERRORS") == [messages[2]]
    assert matching("") == messages
    assert fails(logs.filter_log_events, logGroupName=group, filterPattern="{ $.level = ") == (
        400,
        "InvalidParameterException",
        "If a filter pattern starts with '{' it must end with '}'",
    )


def test_another_accounts_group_by_arn_is_not_found(server: LaminaServer, logs: Any) -> None:
    group, stream = group_with_stream(logs)
    bob = client(server, "logs", key=BOB["access_key_id"], secret=BOB["secret_access_key"])
    arn = f"arn:aws:logs:{REGION}:{ACCT}:log-group:{group}"
    assert fails(bob.filter_log_events, logGroupIdentifier=arn) == (
        400,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
    # Named by its ARN, the other account's group is what IAM decides on: no policy grants it.
    assert fails(bob.list_tags_for_resource, resourceArn=arn)[1] == "AccessDeniedException"


def test_tokens_and_times_past_any_range_are_refused_or_bounded(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": now_ms(), "message": "m"}]
    )
    bad = "The specified nextToken is invalid."
    for token in ("f/" + "9" * 40, "b/" + "9" * 40):
        assert fails(logs.get_log_events, logGroupName=group, logStreamName=stream, nextToken=token) == (
            400, "InvalidParameterException", bad,
        )  # fmt: skip
    assert fails(logs.describe_log_streams, logGroupName=group, nextToken="\u00b2")[:2] == (
        400, "InvalidParameterException",
    )  # fmt: skip
    far = 2**63 - 1  # the largest ``long``: bounded to "forever"
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startTime=0, endTime=far)
    assert [e["message"] for e in got["events"]] == ["m"]
    found = logs.filter_log_events(logGroupName=group, startTime=0, endTime=far)
    assert [e["message"] for e in found["events"]] == ["m"]


@pytest.mark.parametrize("value", [2**63, 99999999999999999999])
def test_a_long_past_64_bits_is_a_serialization_error(logs: Any, value: int) -> None:
    group, stream = group_with_stream(logs)
    status, code, message = fails(logs.filter_log_events, logGroupName=group, startTime=value)
    assert (status, code) == (400, "SerializationException")
    assert message == f"Numeric value ({value}) out of range of long at 'FilterLogEventsRequest.startTime'"
    status, code, _ = fails(
        logs.put_log_events,
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": value, "message": "m"}],
    )
    assert (status, code) == (400, "SerializationException")
    assert logs.get_log_events(logGroupName=group, logStreamName=stream)["events"] == []


def test_catastrophic_regex_is_answered_or_refused(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now_ms(), "message": "a" * 200_000}],
    )
    # With Python's backtracking ``re`` this held a server thread for hours; now it answers.
    assert logs.filter_log_events(logGroupName=group, filterPattern="%a*a*a*a*a*a*b%")["events"] == []
    found = logs.filter_log_events(logGroupName=group, filterPattern="%a{3}a*$%")["events"]
    assert len(found) == 1
    for pattern in ("%(a+)+b%", "%a**%", "{ $.a = %x% || $.b = %y% || $.c = %z% }"):
        assert fails(logs.filter_log_events, logGroupName=group, filterPattern=pattern) == (
            400, "InvalidParameterException", "Invalid filter pattern",
        )  # fmt: skip


def test_event_size_limits_and_one_megabyte_answers(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    largest = 262_144 - 26
    too_large = fails(
        logs.put_log_events,
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now_ms(), "message": "x" * (largest + 1)}],
    )
    assert too_large == (
        400,
        "InvalidParameterException",
        "Log event too large: 262145 bytes exceeds limit of 262144",
    )
    t = now_ms()
    big = [{"timestamp": t + i, "message": f"{i}" + "y" * (largest - 1)} for i in range(4)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=big[:2])
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=big[2:])
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": t + 9, "message": "z"}]
    )
    # Four events of 256 KB fill 1 MB exactly: each answer stops there, with a token to go on.
    first = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    assert [e["message"][0] for e in first["events"]] == ["0", "1", "2", "3"]
    second = logs.get_log_events(
        logGroupName=group, logStreamName=stream, nextToken=first["nextForwardToken"]
    )
    assert [e["message"][0] for e in second["events"]] == ["z"]
    latest = logs.get_log_events(logGroupName=group, logStreamName=stream)  # the newest that fit
    assert [e["message"][0] for e in latest["events"]] == ["1", "2", "3", "z"]
    page = logs.filter_log_events(logGroupName=group)
    assert [e["message"][0] for e in page["events"]] == ["0", "1", "2", "3"] and "nextToken" in page
    rest = logs.filter_log_events(logGroupName=group, nextToken=page["nextToken"])
    assert [e["message"][0] for e in rest["events"]] == ["z"] and "nextToken" not in rest
    stored = 4 * largest + 1
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"] == stored
    assert logs.describe_log_streams(logGroupName=group)["logStreams"][0]["storedBytes"] == stored


def test_many_streams_paged_and_filtered(tmp_path: Path) -> None:
    # Its own server without the API rate limit: 1,200 CreateLogStream calls in a row.
    server = LaminaServer(tmp_path / "data", lambda_role=False, env={"LAMINA_API_RATE_LIMIT": "off"})
    try:
        _many_streams(client(server, "logs"))
    finally:
        server.stop()


def _many_streams(logs: Any) -> None:
    group = uid("/test/many")
    logs.create_log_group(logGroupName=group)
    names = [f"s{i:04d}" for i in range(1200)]
    for name in names:
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    t = now_ms()
    for i in (5, 1105, 1199):
        logs.put_log_events(
            logGroupName=group,
            logStreamName=names[i],
            logEvents=[{"timestamp": t + i, "message": f"ERROR {i}"}],
        )

    def all_streams(**kwargs: Any) -> list[str]:
        pages = logs.get_paginator("describe_log_streams").paginate(logGroupName=group, **kwargs)
        return [s["logStreamName"] for p in pages for s in p["logStreams"]]

    assert all_streams() == names
    assert all_streams(descending=True) == names[::-1]
    assert all_streams(logStreamNamePrefix="s11") == names[1100:1200]
    by_time = all_streams(orderBy="LastEventTime", descending=True)
    assert by_time[:3] == ["s1199", "s1105", "s0005"] and len(by_time) == 1200
    for token in ("9999999999999999999/s0001", "-5/s0001", "12", "x/s0001", "1/"):
        encoded = base64.urlsafe_b64encode(token.encode()).decode()
        assert fails(logs.describe_log_streams, logGroupName=group, nextToken=encoded) == (
            400, "InvalidParameterException", "The specified nextToken is invalid.",
        )  # fmt: skip
    page = logs.describe_log_streams(logGroupName=group, limit=7)
    assert len(page["logStreams"]) == 7
    after = logs.describe_log_streams(logGroupName=group, limit=7, nextToken=page["nextToken"])
    assert [s["logStreamName"] for s in after["logStreams"]] == names[7:14]

    def messages(**kwargs: Any) -> list[str]:
        return [e["message"] for e in logs.filter_log_events(logGroupName=group, **kwargs)["events"]]

    assert messages(filterPattern="ERROR", logStreamNamePrefix="s11") == ["ERROR 1105", "ERROR 1199"]
    assert messages(logStreamNames=names[:100]) == ["ERROR 5"]
    status, code, message = fails(logs.filter_log_events, logGroupName=group, logStreamNames=names[:101])
    assert (status, code) == (400, "InvalidParameterException")
    assert message.endswith(
        "at 'logStreamNames' failed to satisfy constraint: Member must have length less than or equal to 100"
    )


def test_a_lone_surrogate_in_a_message_is_stored_replaced(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": now_ms(), "message": "a\ud800b"}]
    )
    events = logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]
    assert [e["message"] for e in events] == ["a\ufffdb"]
