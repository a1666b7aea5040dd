"""LoggingConfig on functions, as AWS keeps it (recorded: TestLoggingConfig): JSON's default levels,
a format switch dropping them, partial updates keeping what they do not name, a custom log group, and
a level refused with Text."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from testzips import make_zip

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def _create(lam: Any, **kw: Any) -> str:
    name = f"logcfg-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": make_zip({"handler.py": "def handler(e, c):\n    return 1\n"})},
        **kw,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def _update(lam: Any, name: str, config: dict[str, str]) -> dict[str, Any]:
    out = lam.update_function_configuration(FunctionName=name, LoggingConfig=config)["LoggingConfig"]
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    assert lam.get_function_configuration(FunctionName=name)["LoggingConfig"] == out
    return dict(out)


def test_json_at_create_gets_default_levels(lam: Any) -> None:
    name = _create(lam, LoggingConfig={"LogFormat": "JSON"})
    expected = {
        "ApplicationLogLevel": "INFO",
        "LogFormat": "JSON",
        "LogGroup": f"/aws/lambda/{name}",
        "SystemLogLevel": "INFO",
    }
    config = lam.get_function(FunctionName=name)["Configuration"]["LoggingConfig"]
    assert config == expected
    assert _update(lam, name, {"LogGroup": "cool_lambda"}) == {**expected, "LogGroup": "cool_lambda"}


def test_format_switch_adds_and_drops_the_levels(lam: Any) -> None:
    name = _create(lam)
    text = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    assert lam.get_function_configuration(FunctionName=name)["LoggingConfig"] == text
    assert _update(lam, name, {"LogFormat": "JSON"}) == {
        "ApplicationLogLevel": "INFO",
        "LogFormat": "JSON",
        "LogGroup": f"/aws/lambda/{name}",
        "SystemLogLevel": "INFO",
    }
    assert _update(lam, name, {"LogFormat": "Text"}) == text


@pytest.mark.parametrize(
    ("partial", "expected"),
    [
        (
            {"LogFormat": "JSON"},
            {"ApplicationLogLevel": "INFO", "LogFormat": "JSON", "SystemLogLevel": "INFO"},
        ),
        (
            {"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"},
            {"ApplicationLogLevel": "DEBUG", "LogFormat": "JSON", "SystemLogLevel": "INFO"},
        ),
        (
            {"LogFormat": "JSON", "SystemLogLevel": "DEBUG"},
            {"ApplicationLogLevel": "INFO", "LogFormat": "JSON", "SystemLogLevel": "DEBUG"},
        ),
        ({"LogGroup": "cool_lambda"}, {"LogFormat": "Text", "LogGroup": "cool_lambda"}),
    ],
)
def test_partial_updates(lam: Any, partial: dict[str, str], expected: dict[str, str]) -> None:
    name = _create(lam)
    got = _update(lam, name, partial)
    assert got == {"LogGroup": f"/aws/lambda/{name}", **expected}


def test_a_level_with_text_is_refused_and_changes_nothing(lam: Any) -> None:
    name = _create(lam)
    before = lam.get_function_configuration(FunctionName=name)
    with pytest.raises(ClientError) as caught:
        lam.update_function_configuration(FunctionName=name, LoggingConfig={"ApplicationLogLevel": "DEBUG"})
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"] == (
        'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your request or '
        'change the LogFormat to "JSON" and try again.'
    )
    assert lam.get_function_configuration(FunctionName=name)["RevisionId"] == before["RevisionId"]
