"""Clients of CloudWatch Logs against the real server: ``lamina logs`` (an API client: Lambda for the
function's log group, FilterLogEvents for its events) and the AWS CLI v2 (``aws logs tail``,
``--follow``, ``filter-log-events``). Events are put with PutLogEvents, as the platform's own
delivery puts a function's lines, so these tests do not need a function to run."""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client, stop_process
from testzips import make_zip

ALICE = ACCOUNTS[1]
BOB = ACCOUNTS[2]
ROLE = f"arn:aws:iam::{ALICE['account_id']}:role/lambda-role"
# Debian's awscli package (2.x); the AWS CLI first on PATH may be the venv's v1.
AWS_V2 = Path("/usr/bin/aws")


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    return client(server, key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])


@pytest.fixture(scope="module")
def logs(server: LaminaServer) -> Any:
    return client(server, "logs", key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def function(lam: Any, **kw: Any) -> str:
    name = uid("lc")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": "def handler(e, c):\n    return 1\n"})},
        **kw,
    )
    return name


def put(logs: Any, group: str, stream: str, messages: list[str], ts: int | None = None) -> None:
    """``messages`` into ``group``/``stream`` (created when missing), one millisecond apart."""
    for create, kw in (
        (logs.create_log_group, {"logGroupName": group}),
        (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
    ):
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            create(**kw)
    start = now_ms() if ts is None else ts
    events = [{"timestamp": start + i, "message": m} for i, m in enumerate(messages)]
    for i in range(0, len(events), 10_000):
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i : i + 10_000])


def env_for(account: dict[str, str]) -> dict[str, str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": account["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": account["secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
        "AWS_MAX_ATTEMPTS": "1",
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL", "LAMINA_DATA_DIR"):
        env.pop(name, None)
    return env


def lamina_logs(
    server: LaminaServer, *args: str, account: dict[str, str] = ALICE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina.cli.main", "logs", *args, "--endpoint-url", server.url],
        capture_output=True,
        text=True,
        env=env_for(account),
        timeout=60,
    )


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; each is ended by its own pid afterwards."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        stop_process(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def start(
    procs: list[subprocess.Popen[bytes]], argv: list[str], env: dict[str, str]
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    procs.append(proc)
    return proc


def read_until(proc: subprocess.Popen[bytes], needle: str, timeout: float = 60.0) -> str:
    """What ``proc`` printed until ``needle`` appeared in it (or the timeout passed: the caller's
    assertion then shows what did come)."""
    assert proc.stdout is not None
    got = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while needle.encode() not in got and time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                chunk = proc.stdout.read1(65536)  # type: ignore[attr-defined]
                if not chunk:
                    break
                got += chunk
    return got.decode(errors="replace")


# -- lamina logs ------------------------------------------------------------------------------------


def test_lamina_logs_prints_each_streams_events(server: LaminaServer, lam: Any, logs: Any) -> None:
    name = function(lam)
    group = f"/aws/lambda/{name}"
    first, second = "2026/01/01/[$LATEST]" + "a" * 32, "2026/01/01/[$LATEST]" + "b" * 32
    t0 = now_ms() - 60_000
    put(logs, group, first, ["START RequestId: r1 Version: $LATEST\n", "hello\n", "no newline"], t0)
    put(logs, group, second, ["from the second environment\n"], t0 + 10)
    out = lamina_logs(server, name)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (
        f"== {first}\nSTART RequestId: r1 Version: $LATEST\nhello\nno newline\n"
        f"== {second}\nfrom the second environment\n"
    )
    assert out.stderr == ""
    # --since: a duration back from now, or an ISO time.
    put(logs, group, first, ["recent\n"])
    assert lamina_logs(server, name, "--since", "20s").stdout == f"== {first}\nrecent\n"
    everything = lamina_logs(server, name, "--since", "2000-01-01T00:00:00Z").stdout
    assert everything == out.stdout + f"== {first}\nrecent\n"
    bad = lamina_logs(server, name, "--since", "yesterday")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert "--since: not a duration" in bad.stderr


def test_lamina_logs_reads_the_functions_own_log_group(server: LaminaServer, lam: Any, logs: Any) -> None:
    group = uid("/custom/group")
    name = function(lam, LoggingConfig={"LogFormat": "Text", "LogGroup": group})
    put(logs, group, "s", ["custom group line\n"])
    put(logs, f"/aws/lambda/{name}", "s", ["not this one\n"])
    out = lamina_logs(server, name)
    assert (out.returncode, out.stdout) == (0, "== s\ncustom group line\n")


def test_no_such_function_and_no_logs_yet_are_told_apart(server: LaminaServer, lam: Any) -> None:
    missing = lamina_logs(server, "never-created")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "lamina: no such function: never-created\n"
    name = function(lam)
    quiet = lamina_logs(server, name)
    assert (quiet.returncode, quiet.stdout) == (1, "")
    assert quiet.stderr == f"lamina: no logs yet for function {name} (log group /aws/lambda/{name})\n"
    # Another account's credentials see no such function (accounts are apart).
    other = lamina_logs(server, name, account=BOB)
    assert other.stderr == f"lamina: no such function: {name}\n"


def test_old_flags_are_ignored_with_a_note(server: LaminaServer, lam: Any, logs: Any, tmp_path: Path) -> None:
    name = function(lam)
    put(logs, f"/aws/lambda/{name}", "s", ["line\n"])
    out = lamina_logs(server, name, "--data-dir", str(tmp_path), "--account", "999999999999")
    assert (out.returncode, out.stdout) == (0, "== s\nline\n")
    assert out.stderr.splitlines() == [
        "lamina: logs: --data-dir is ignored: logs are read through the API at --endpoint-url",
        "lamina: logs: --account is ignored: the credentials choose the account",
    ]


def test_lamina_logs_reads_every_page(server: LaminaServer, lam: Any, logs: Any) -> None:
    # FilterLogEvents answers at most 10,000 events a call: the rest come with nextToken.
    name = function(lam)
    put(logs, f"/aws/lambda/{name}", "s", [f"line {i}\n" for i in range(10_050)], now_ms() - 600_000)
    out = lamina_logs(server, name)
    lines = out.stdout.splitlines()
    assert lines[0] == "== s" and lines[1:] == [f"line {i}" for i in range(10_050)]


def test_a_reader_that_goes_away_ends_it_quietly(server: LaminaServer, lam: Any, logs: Any) -> None:
    name = function(lam)
    put(logs, f"/aws/lambda/{name}", "s", [f"line {i}\n" for i in range(30_000)], now_ms() - 60_000)
    argv = [sys.executable, "-m", "lamina.cli.main", "logs", name, "--endpoint-url", server.url]
    out = subprocess.run(
        ["bash", "-c", 'set -o pipefail; "$@" | head -2', "sh", *argv],
        capture_output=True,
        text=True,
        env=env_for(ALICE),
        timeout=60,
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "== s\nline 0\n", "")


def test_lamina_logs_refused_by_iam_says_so(server: LaminaServer) -> None:
    iam = client(server, "iam")
    user = uid("nologs")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    creds = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    out = lamina_logs(server, "anything", account=creds)
    assert out.returncode == 1 and out.stderr.startswith("lamina: logs: AccessDeniedException: ")
    assert "lambda:GetFunctionConfiguration" in out.stderr


def test_lamina_logs_follow_prints_new_events_once(
    server: LaminaServer, lam: Any, logs: Any, spawned: list[subprocess.Popen[bytes]]
) -> None:
    name = function(lam)
    group = f"/aws/lambda/{name}"
    argv = [sys.executable, "-m", "lamina.cli.main", "logs", name, "--follow", "--endpoint-url", server.url]
    proc = start(spawned, argv, env_for(ALICE))
    # The group does not exist yet: it is waited for, then read.
    time.sleep(1.5)
    put(logs, group, "s1", ["before\n"])
    seen = read_until(proc, "before\n")
    assert seen == "== s1\nbefore\n"
    put(logs, group, "s1", ["after\n"])
    put(logs, group, "s2", ["elsewhere\n"])
    seen = read_until(proc, "elsewhere\n")
    # Every poll looks back a little: each event is still printed once.
    time.sleep(2.5)
    seen += read_until(proc, "never", timeout=0.5)
    assert seen == "after\n== s2\nelsewhere\n"
    assert proc.poll() is None


# -- AWS CLI v2 --------------------------------------------------------------------------------------

needs_v2 = pytest.mark.skipif(
    not AWS_V2.exists(), reason="AWS CLI v2 (Debian's awscli package) is not installed"
)


def aws_v2(server: LaminaServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AWS_V2), *args, "--endpoint-url", server.url],
        capture_output=True,
        text=True,
        env=env_for(ALICE),
        timeout=120,
    )


@needs_v2
def test_aws_cli_v2_is_version_2() -> None:
    out = subprocess.run([str(AWS_V2), "--version"], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("aws-cli/2."), out.stdout + out.stderr


@needs_v2
def test_aws_cli_v2_describe_filter_and_tail(server: LaminaServer, logs: Any) -> None:
    group = uid("/aws/lambda/v2")
    t0 = now_ms() - 30_000
    put(logs, group, "2026/01/01/[$LATEST]abc", ["START RequestId: 1\n", "hello world\n", "bye\n"], t0)
    out = aws_v2(server, "logs", "describe-log-groups", "--log-group-name-prefix", group)
    assert out.returncode == 0, out.stderr
    assert f'"logGroupName": "{group}"' in out.stdout
    out = aws_v2(
        server, "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "hello",
        "--query", "events[].message", "--output", "text",
    )  # fmt: skip
    assert (out.returncode, out.stdout.strip()) == (0, "hello world"), out.stderr
    out = aws_v2(server, "logs", "tail", group, "--since", "1h", "--format", "short")
    assert out.returncode == 0, out.stderr
    assert [line.split(" ", 1)[1] for line in out.stdout.splitlines()] == [
        "START RequestId: 1",
        "hello world",
        "bye",
    ]
    out = aws_v2(server, "logs", "tail", group, "--since", "1h", "--filter-pattern", "bye")
    assert out.returncode == 0 and out.stdout.rstrip("\n").endswith(" 2026/01/01/[$LATEST]abc bye"), out


@needs_v2
def test_aws_cli_v2_tail_follow_shows_a_new_event(
    server: LaminaServer, logs: Any, spawned: list[subprocess.Popen[bytes]]
) -> None:
    group = uid("/aws/lambda/follow")
    put(logs, group, "s", ["already there\n"], now_ms() - 5_000)
    argv = [str(AWS_V2), "logs", "tail", group, "--follow", "--format", "short", "--endpoint-url", server.url]
    proc = start(spawned, argv, env_for(ALICE))
    assert "already there" in read_until(proc, "already there")
    put(logs, group, "s", ["new line from an invoke\n"])
    # ``aws logs tail --follow`` polls every 5 seconds: the line comes with its next poll.
    seen = read_until(proc, "new line from an invoke")
    assert "new line from an invoke" in seen, seen
    assert proc.poll() is None


def test_v1_cli_is_still_first_on_path_for_other_tests(server: LaminaServer) -> None:
    # The v1 tests run the venv's aws (tests/functional/lamina_server.py run_aws): installing v2 at
    # /usr/bin/aws does not change which one they get.
    v1 = Path(sys.executable).parent / "aws"
    out = subprocess.run([str(v1), "--version"], capture_output=True, text=True, timeout=60)
    assert (out.stdout + out.stderr).startswith("aws-cli/1."), out
