"""The console's Logs tab reads CloudWatch Logs: a function's log group (its LoggingConfig.LogGroup),
newest streams first, the group's retention applied, for a principal allowed logs:FilterLogEvents on
the group; over HTTP as the page's script calls it, and in headless Chromium as a user sees it.
Events are put with PutLogEvents, as the platform's delivery puts a function's lines."""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from iam_kit import doc, user_keys
from lamina_server import LaminaServer, client
from test_console_api import Browser
from testzips import make_zip

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def logs(server: LaminaServer) -> Any:
    return client(server, "logs")


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def put(logs: Any, group: str, stream: str, messages: list[str], ts: int) -> None:
    for create, kw in (
        (logs.create_log_group, {"logGroupName": group}),
        (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
    ):
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            create(**kw)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": ts + i, "message": m} for i, m in enumerate(messages)],
    )


def signed_in(server: LaminaServer, key: str = "test", secret: str = "test") -> Browser:
    b = Browser(server)
    assert b.signin(key, secret)[0] == 200
    return b


def test_newest_streams_first_with_their_events(server: LaminaServer, logs: Any) -> None:
    fn = uid("fn")
    group = f"/aws/lambda/{fn}"
    t0 = now_ms() - 60_000
    put(logs, group, "2026/01/01/[$LATEST]old", ["START old\n", "line without newline"], t0)
    put(logs, group, "2026/01/01/[$LATEST]new", ["START new\n", "END new\n"], t0 + 1_000)
    b = signed_in(server)
    status, out = b.post("logs", {"function": fn, "region": "us-east-1"})
    assert status == 200
    assert out == {
        "streams": [
            {"stream": "2026/01/01/[$LATEST]new", "text": "START new\nEND new\n"},
            {"stream": "2026/01/01/[$LATEST]old", "text": "START old\nline without newline\n"},
        ]
    }
    # An older stream with a new event comes first again (streams are ordered by their last event).
    put(logs, group, "2026/01/01/[$LATEST]old", ["again\n"], t0 + 2_000)
    names = [s["stream"] for s in b.post("logs", {"function": fn, "region": "us-east-1"})[1]["streams"]]
    assert names == ["2026/01/01/[$LATEST]old", "2026/01/01/[$LATEST]new"]
    # Another Region holds another group.
    assert b.post("logs", {"function": fn, "region": "eu-west-1"}) == (200, {"streams": []})


def test_the_functions_own_log_group_and_bad_names(server: LaminaServer, logs: Any) -> None:
    fn, group = uid("fn"), uid("/custom/app")
    put(logs, group, "s", ["custom\n"], now_ms())
    b = signed_in(server)
    assert b.post("logs", {"function": fn, "region": "us-east-1", "logGroup": group}) == (
        200,
        {"streams": [{"stream": "s", "text": "custom\n"}]},
    )
    for bad in ("", "has space", "a" * 513, 42):
        status, out = b.post("logs", {"function": fn, "region": "us-east-1", "logGroup": bad})
        assert (status, out["error"]["code"]) == (400, "ValidationException"), bad


def test_only_the_newest_64_kb(server: LaminaServer, logs: Any) -> None:
    fn = uid("fn")
    line = "x" * 1023 + "\n"
    put(logs, f"/aws/lambda/{fn}", "s", [f"{i:04d}" + line[4:] for i in range(100)], now_ms() - 10_000)
    streams = signed_in(server).post("logs", {"function": fn, "region": "us-east-1"})[1]["streams"]
    text = streams[0]["text"]
    assert len(text) == 64 * 1024 and text.startswith("0036") and text.endswith("x\n")


def test_retention_applies_and_other_accounts_see_nothing(server: LaminaServer, logs: Any) -> None:
    fn = uid("fn")
    group = f"/aws/lambda/{fn}"
    put(logs, group, "s", ["two days old\n"], now_ms() - 2 * 86_400_000)
    put(logs, group, "s", ["fresh\n"], now_ms())
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    b = signed_in(server)
    assert b.post("logs", {"function": fn, "region": "us-east-1"})[1] == {
        "streams": [{"stream": "s", "text": "fresh\n"}]
    }
    alice = signed_in(server, "AKIDALICE111", "alice-secret")
    assert alice.post("logs", {"function": fn, "region": "us-east-1"}) == (200, {"streams": []})


def test_a_user_allowed_to_filter_the_group_reads_it_and_no_other(server: LaminaServer, logs: Any) -> None:
    fn, other = uid("fn"), uid("fn")
    for name in (fn, other):
        put(logs, f"/aws/lambda/{name}", "s", [f"{name}\n"], now_ms())
    iam = client(server, "iam")
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/{fn}:*"
    _, key, secret = user_keys(
        iam, inline=doc({"Effect": "Allow", "Action": "logs:FilterLogEvents", "Resource": arn})
    )
    b = signed_in(server, key, secret)
    assert b.post("logs", {"function": fn, "region": "us-east-1"}) == (
        200,
        {"streams": [{"stream": "s", "text": f"{fn}\n"}]},
    )
    status, out = b.post("logs", {"function": other, "region": "us-east-1"})
    assert (status, out["error"]["code"]) == (403, "AccessDeniedException")
    status, out = b.post("logs", {"function": fn, "region": "us-east-1", "logGroup": f"/aws/lambda/{other}"})
    assert (status, out["error"]["code"]) == (403, "AccessDeniedException")


# -- in a browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def test_logs_tab_in_a_browser(server: LaminaServer, logs: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    lam = client(server)
    fn, group = uid("fn"), uid("/custom/tab")
    lam.create_function(
        FunctionName=fn,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 1\n"})},
        LoggingConfig={"LogFormat": "Text", "LogGroup": group},
    )
    put(logs, group, "2026/01/01/[$LATEST]abc", ["START RequestId: r1\n", "<b>not markup</b>\n"], now_ms())
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{server.url}/console/#/signin")
        page.fill("#access-key", "test")
        page.fill("#secret-key", "test")
        page.click("#signin")
        expect(page.locator("#signout")).to_be_visible()
        expect(page.locator("h1:text-is('Layers'), #error:not([hidden])").first).to_be_visible()
        page.goto(f"{server.url}/console/#/functions/{fn}/logs")
        expect(page.locator("#log-group")).to_have_text(group)
        expect(page.locator("#logs h2")).to_have_text("2026/01/01/[$LATEST]abc")
        expect(page.locator("#logs pre")).to_have_text("START RequestId: r1\n<b>not markup</b>\n")
        put(logs, group, "2026/01/01/[$LATEST]def", ["a newer environment\n"], now_ms() + 1_000)
        page.click("#logs button:text-is('Refresh')")
        expect(page.locator("#logs h2").first).to_have_text("2026/01/01/[$LATEST]def")
    finally:
        context.close()
    assert errors == []
