"""LogFormat JSON: the Python runtime logs JSON records at the function's ApplicationLogLevel, and a
custom LogGroup is the function's ``AWS_LAMBDA_LOG_GROUP_NAME``; real functions in sandboxes."""

from __future__ import annotations

import base64
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip

pytestmark = pytest.mark.privileged

if not (Path(sys.prefix) / "lamina-runtimes" / "python3.12" / "lamina-runtime.json").is_file():
    pytest.skip("python3.12 is not installed in lamina-runtimes", allow_module_level=True)

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
    name = f"jsonlog-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role="arn:aws:iam::000000000000:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": APP})},
        LoggingConfig=logging_config,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    r = lam.invoke(FunctionName=name, LogType="Tail")
    tail = base64.b64decode(r["LogResult"]).decode()
    records = [json.loads(line) for line in tail.splitlines() if line.startswith("{")]
    return json.loads(r["Payload"].read()), records


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
