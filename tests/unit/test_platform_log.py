"""Lambda's system log lines in Text and JSON (runtime/platform_log.py): shapes and level filtering."""

from __future__ import annotations

import json

from lamina.runtime.platform_log import Level, PlatformLog, Report


def _event(line: bytes) -> dict[str, object]:
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    event = json.loads(line)
    assert isinstance(event, dict)
    return event


def test_the_writer_follows_the_logging_config() -> None:
    assert PlatformLog.of(None) == PlatformLog()
    assert PlatformLog.of({"LogFormat": "Text", "LogGroup": "g"}) == PlatformLog()
    assert PlatformLog.of({"LogFormat": "JSON"}) == PlatformLog(json=True, level=Level.INFO)
    assert PlatformLog.of({"LogFormat": "JSON", "SystemLogLevel": "WARN"}).level is Level.WARN


def test_text_lines_are_lambdas() -> None:
    text = PlatformLog()
    assert text.start("r1", "3") == b"START RequestId: r1 Version: 3\n"
    assert text.runtime_done("r1", "success", 1.0, 2) == b"END RequestId: r1\n"
    report = text.report(Report("r1", 1.234, 128, 40, init_ms=100.5))
    assert report == (
        b"REPORT RequestId: r1\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
        b"Max Memory Used: 40 MB\tInit Duration: 100.50 ms\t\n"
    )
    timeout = text.report(Report("r1", 3000.0, 128, 40, status="timeout"))
    assert timeout.endswith(b"Max Memory Used: 40 MB\tStatus: timeout\t\n")
    failed = text.init_report(12.5, "init", "Runtime.ImportModuleError")
    assert failed == (
        b"INIT_REPORT Init Duration: 12.50 ms\tPhase: init\tStatus: error\tError Type: Runtime.ImportModuleError\n"
    )


def test_json_events_and_their_fields() -> None:
    log = PlatformLog(json=True, level=Level.DEBUG)
    report = _event(log.report(Report("r1", 1.234, 256, 41, status="error", error_type="Runtime.ExitError")))
    assert report["type"] == "platform.report"
    assert report["record"] == {
        "requestId": "r1",
        "metrics": {"durationMs": 1.23, "billedDurationMs": 2, "memorySizeMB": 256, "maxMemoryUsedMB": 41},
        "status": "error",
        "errorType": "Runtime.ExitError",
    }
    init = _event(log.init_report(7.0, "invoke", "Sandbox.Timedout"))
    assert init["type"] == "platform.initReport"
    assert init["record"] == {
        "initializationType": "on-demand",
        "phase": "invoke",
        "status": "timeout",
        "metrics": {"durationMs": 7.0},
    }
    done = _event(log.runtime_done("r1", "success", 0.5, 17))
    assert done["record"] == {
        "requestId": "r1",
        "status": "success",
        "metrics": {"durationMs": 0.5, "producedBytes": 17},
    }


def test_levels_filter_json_events_only() -> None:
    info, warn = PlatformLog(json=True), PlatformLog(json=True, level=Level.WARN)
    assert info.runtime_done("r", "success", 1.0, 1) == b""
    assert _event(info.start("r", "$LATEST"))["type"] == "platform.start"
    assert warn.start("r", "$LATEST") == b"" and warn.report(Report("r", 1.0, 128, 1)) == b""
    assert warn.init_report(1.0, "init", "Runtime.Unknown") == b""


def test_init_start_names_the_runtime_version_as_aws_does() -> None:
    from pathlib import Path

    from lamina.runtime.runtime_env import runtime_version
    from lamina.runtime.target import Target
    from lamina.runtime.telemetry_events import init_start_record

    def target(**config: object) -> Target:
        return Target(
            "111122223333", "eu-west-1", "f", "$LATEST", config, Path("/"), (), None, ("", "", ""), 0
        )  # type: ignore[arg-type]

    arn = "arn:aws:lambda:eu-west-1::runtime:" + "ab" * 32
    assert runtime_version(target(Runtime="python3.12", RuntimeVersionConfig={"RuntimeVersionArn": arn})) == (
        "python:3.12.v1",
        arn,
    )
    version, computed = runtime_version(target(Runtime="provided.al2023")) or ("", "")
    assert version == "provided:al2023.v1" and computed.startswith("arn:aws:lambda:eu-west-1::runtime:")
    assert runtime_version(target(PackageType="Image")) is None
    record = init_start_record(runtime_version="python:3.12.v1", runtime_version_arn=arn, function_name="f")
    # AWS's recorded line: "INIT_START Runtime Version: python:3.10.v11\tRuntime Version ARN: arn:...\n".
    assert (
        PlatformLog().init_start(record)
        == f"INIT_START Runtime Version: python:3.12.v1\tRuntime Version ARN: {arn}\n".encode()
    )
    event = _event(PlatformLog(json=True).init_start(record))
    assert event["type"] == "platform.initStart"
    assert event["record"] == {
        "initializationType": "on-demand",
        "phase": "init",
        "runtimeVersion": "python:3.12.v1",
        "runtimeVersionArn": arn,
        "functionName": "f",
    }
    assert PlatformLog(json=True, level=Level.WARN).init_start(record) == b""
