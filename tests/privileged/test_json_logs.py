"""LogFormat JSON: the Python runtime logs JSON records at the function's ApplicationLogLevel, Lambda's
own lines (START, END, REPORT) are platform events at its SystemLogLevel, and a custom LogGroup is the
function's ``AWS_LAMBDA_LOG_GROUP_NAME``; real functions in sandboxes."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from runtime_kit import installed_python, python_function

pytestmark = pytest.mark.privileged

RUNTIME = installed_python()

APP = """\
import logging
import os

logger = logging.getLogger()


def handler(event, context):
    logger.debug("debug line")
    logger.info("info line")
    logger.warning("warning line")
    return os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
"""


@pytest.fixture(scope="module")
def lam(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = LaminaServer(tmp_path_factory.mktemp("jsonlogs") / "data")
    yield client(srv, read_timeout=60)
    srv.stop()


def _run(lam: Any, logging_config: dict[str, str]) -> tuple[Any, list[dict[str, Any]]]:
    """The function's answer and the application's JSON records of its first invocation."""
    payload, records, _ = _invoke(lam, logging_config)
    return payload, [r for r in records if "type" not in r]


def _invoke(lam: Any, logging_config: dict[str, str]) -> tuple[Any, list[dict[str, Any]], str]:
    name = python_function(lam, APP, runtime=RUNTIME, prefix="jsonlog", LoggingConfig=logging_config)
    r = lam.invoke(FunctionName=name, LogType="Tail")
    tail = base64.b64decode(r["LogResult"]).decode()
    records = [json.loads(line) for line in tail.splitlines() if line.startswith("{")]
    return json.loads(r["Payload"].read()), records, tail


def test_json_records_at_the_application_level(lam: Any) -> None:
    group, records = _run(lam, {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "LogGroup": "my-group"})
    assert group == "my-group"
    assert [(r["level"], r["message"]) for r in records] == [
        ("INFO", "info line"),
        ("WARNING", "warning line"),
    ]
    assert all(r["requestId"] and r["timestamp"] for r in records)


def test_debug_level_shows_debug_records(lam: Any) -> None:
    _group, records = _run(lam, {"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"})
    assert [r["message"] for r in records] == ["debug line", "info line", "warning line"]


def test_text_format_logs_no_json(lam: Any) -> None:
    group, records = _run(lam, {"LogFormat": "Text"})
    assert records == [] and group.startswith("/aws/lambda/jsonlog-")


TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _platform(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    events = [r for r in records if "type" in r]
    assert all(list(e) == ["time", "type", "record"] and TIME.match(e["time"]) for e in events)
    return events


def test_json_platform_events_at_the_default_system_level(lam: Any) -> None:
    """INFO (the default): platform.start and platform.report, no END (platform.runtimeDone is
    DEBUG), and no text line of Lambda's."""
    _group, records, tail = _invoke(lam, {"LogFormat": "JSON"})
    start, report = _platform(records)
    assert start["type"] == "platform.start"
    assert list(start["record"]) == ["requestId", "version"] and start["record"]["version"] == "$LATEST"
    assert report["type"] == "platform.report"
    assert report["record"]["requestId"] == start["record"]["requestId"]
    assert list(report["record"]) == ["requestId", "metrics", "status"]
    assert report["record"]["status"] == "success"
    metrics = report["record"]["metrics"]
    assert list(metrics) == [
        "durationMs",
        "billedDurationMs",
        "memorySizeMB",
        "maxMemoryUsedMB",
        "initDurationMs",
    ]
    assert (
        metrics["memorySizeMB"] == 128 and metrics["billedDurationMs"] >= 1 and metrics["initDurationMs"] > 0
    )
    assert not re.search(r"^(START|END|REPORT) RequestId", tail, re.M)


def test_json_debug_system_level_adds_runtime_done(lam: Any) -> None:
    _group, records, _tail = _invoke(lam, {"LogFormat": "JSON", "SystemLogLevel": "DEBUG"})
    events = _platform(records)
    assert [e["type"] for e in events] == ["platform.start", "platform.runtimeDone", "platform.report"]
    done = events[1]["record"]
    assert done["status"] == "success" and list(done["metrics"]) == ["durationMs", "producedBytes"]
    assert done["metrics"]["producedBytes"] > 0


def test_json_warn_system_level_writes_no_platform_event(lam: Any) -> None:
    _group, records, _tail = _invoke(lam, {"LogFormat": "JSON", "SystemLogLevel": "WARN"})
    assert _platform(records) == []
    assert [r["message"] for r in records] == ["info line", "warning line"]


def test_text_format_keeps_lambdas_lines(lam: Any) -> None:
    _group, _records, tail = _invoke(lam, {"LogFormat": "Text"})
    lines = tail.splitlines()
    assert lines[0].startswith("START RequestId: ") and lines[0].endswith(" Version: $LATEST")
    assert lines[-2].startswith("END RequestId: ")
    assert re.match(r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t", lines[-1])
