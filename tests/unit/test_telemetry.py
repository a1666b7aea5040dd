"""Telemetry API and Logs API subscriptions (runtime/telemetry.py): AWS's validation, errors and rules."""

from __future__ import annotations

import asyncio
import json

import pytest

from lamina.runtime.telemetry import LOGS, TELEMETRY, SubscriptionError, Telemetry, parse_subscription


async def _refuse(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    raise ConnectionRefusedError(port)


def _body(**fields: object) -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": "2022-12-13",
        "types": ["platform", "function"],
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:8080/telemetry"},
    }
    for key, value in fields.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return json.dumps(doc).encode()


def _error(status: int, error_type: str, message: str) -> tuple[int, bytes]:
    return status, json.dumps(
        {"errorMessage": message, "errorType": error_type}, separators=(",", ":")
    ).encode()


CASES = [
    pytest.param(
        TELEMETRY,
        b"{not json",
        _error(
            400,
            "Telemetry.DeserializationError",
            "Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        id="not-json",
    ),
    pytest.param(
        TELEMETRY,
        b"[]",
        _error(400, "Telemetry.DeserializationError", "invalid type: sequence, expected a map"),
        id="not-an-object",
    ),
    pytest.param(
        TELEMETRY,
        _body(types=None),
        _error(400, "Telemetry.DeserializationError", "missing field `types`"),
        id="no-types",
    ),
    pytest.param(
        LOGS,
        _body(destination=None),
        _error(400, "Logs.DeserializationError", "missing field `destination`"),
        id="no-destination",
    ),
    pytest.param(
        TELEMETRY,
        _body(types=["platform", "logs"]),
        _error(
            400,
            "Telemetry.DeserializationError",
            "unknown variant `logs`, expected one of `platform`, `function`, `extension`",
        ),
        id="unknown-type",
    ),
    pytest.param(
        TELEMETRY,
        _body(destination={"protocol": "HTTPS", "URI": "https://sandbox.localdomain:8080"}),
        _error(400, "Telemetry.DeserializationError", "unknown variant `HTTPS`, expected `HTTP` or `TCP`"),
        id="unknown-protocol",
    ),
    pytest.param(
        TELEMETRY,
        _body(destination={"protocol": "HTTP"}),
        _error(400, "Telemetry.DeserializationError", "missing field `URI`"),
        id="no-uri",
    ),
    pytest.param(
        TELEMETRY,
        _body(buffering={"maxItems": "many"}),
        _error(400, "Telemetry.DeserializationError", 'invalid type: string "many", expected u32'),
        id="buffering-not-a-number",
    ),
    pytest.param(
        LOGS,
        _body(
            schemaVersion="2020-08-15",
            types=[],
            destination={"protocol": "HTTP", "URI": "http://sandbox.localdomain/logs"},
        ),
        _error(400, "Logs.ValidationError", "URI port is not provided; types should not be empty"),
        id="aws-documented-example",
    ),
    pytest.param(
        TELEMETRY,
        _body(schemaVersion=None),
        _error(
            400,
            "Telemetry.ValidationError",
            "TelemetryAPI only supports the SchemaVersion released after 2021-03-18",
        ),
        id="telemetry-needs-a-schema",
    ),
    pytest.param(
        LOGS,
        _body(schemaVersion="2022-07-01"),
        _error(
            400,
            "Logs.ValidationError",
            "LogsAPI only supports the following SchemaVersion: 2020-08-15, 2021-03-18",
        ),
        id="logs-schema",
    ),
    pytest.param(
        TELEMETRY,
        _body(buffering={"maxItems": 10, "maxBytes": 1, "timeoutMs": 30_001}),
        _error(
            400,
            "Telemetry.ValidationError",
            "maxItems should be between 1000 and 10000; maxBytes should be between 262144 and 1048576; "
            "timeoutMs should be between 25 and 30000",
        ),
        id="buffering-bounds",
    ),
    pytest.param(
        TELEMETRY,
        _body(types=["platform", "platform"]),
        _error(400, "Telemetry.ValidationError", "types should be unique"),
        id="types-twice",
    ),
    pytest.param(
        TELEMETRY,
        _body(destination={"protocol": "HTTP", "URI": "http://sandbox.localdomain:9001/"}),
        _error(400, "Telemetry.ValidationError", "port 9001 is reserved"),
        id="runtime-api-port",
    ),
    pytest.param(
        TELEMETRY,
        _body(destination={"protocol": "HTTP", "URI": "https://sandbox.localdomain:8080/"}),
        _error(403, "Telemetry.AccessDenied", "Only 'http' scheme is supported."),
        id="https",
    ),
    pytest.param(
        TELEMETRY,
        _body(destination={"protocol": "HTTP", "URI": "http://169.254.169.254:80/"}),
        _error(403, "Telemetry.AccessDenied", "Only 'sandbox.localdomain' hostname is supported."),
        id="elsewhere",
    ),
    pytest.param(
        LOGS,
        _body(schemaVersion="2021-03-18", destination={"protocol": "TCP", "port": 80}),
        _error(400, "Logs.ValidationError", "port should be between 1024 and 65535"),
        id="tcp-port",
    ),
]


@pytest.mark.parametrize(("api", "body", "expected"), CASES)
def test_refusals_are_aws_answers_byte_for_byte(api: str, body: bytes, expected: tuple[int, bytes]) -> None:
    telemetry = Telemetry(_refuse)
    assert telemetry.subscribe(api, "agent", body) == expected
    assert telemetry.subscribers == {}


def test_defaults_and_destinations() -> None:
    sub = parse_subscription(TELEMETRY, _body())
    assert (sub.max_items, sub.max_bytes, sub.timeout_ms) == (1_000, 262_144, 1_000)
    assert (sub.protocol, sub.port, sub.target, sub.method) == ("HTTP", 8080, "/telemetry", "POST")
    logs = parse_subscription(
        LOGS, _body(schemaVersion=None, destination={"protocol": "HTTP", "URI": "http://sandbox:1234?a=b"})
    )
    assert (logs.schema_version, logs.max_items, logs.port, logs.target) == (
        "2020-08-15",
        10_000,
        1234,
        "/?a=b",
    )
    tcp = parse_subscription(
        TELEMETRY, _body(destination={"protocol": "TCP", "port": 4243}, buffering={"timeoutMs": 25})
    )
    assert (tcp.protocol, tcp.port, tcp.timeout_ms) == ("TCP", 4243, 25)
    with pytest.raises(SubscriptionError) as refused:
        parse_subscription(
            TELEMETRY, _body(destination={"protocol": "HTTP", "URI": "http://sandbox.localdomain:99999"})
        )
    assert refused.value.message == "invalid destination port"


def test_one_extension_one_api_and_only_during_init() -> None:
    async def main() -> None:
        telemetry = Telemetry(_refuse)
        assert telemetry.subscribe(TELEMETRY, "agent", _body()) == (200, b'"OK"')
        assert telemetry.subscribe(TELEMETRY, "agent", _body()) == (200, b'"AlreadySubscribed"')
        replaced = telemetry.subscribe(TELEMETRY, "agent", _body(types=["function"]))
        assert replaced == (200, b'"OK"')
        assert telemetry.subscribe(LOGS, "agent", _body(schemaVersion="2021-03-18")) == _error(
            400,
            "Logs.AccessDenied",
            "The extension agent is already subscribed to the TelemetryAPI. You must either subscribe to the LogsAPI or the TelemetryAPI",
        )
        assert telemetry.subscribe(LOGS, "other", _body(schemaVersion="2021-03-18")) == (200, b'"OK"')
        assert telemetry.subscribe(TELEMETRY, "other", _body()) == _error(
            400,
            "Telemetry.AccessDenied",
            "The extension other is already subscribed to the LogsAPI. You must either subscribe to the LogsAPI or the TelemetryAPI",
        )
        assert sorted(telemetry.subscribers) == ["agent", "other"]
        telemetry.init_done()
        assert telemetry.subscribe(TELEMETRY, "late", _body()) == _error(
            403, "Telemetry.SubscriptionClosed", "Telemetry API subscription is closed already"
        )
        assert telemetry.subscribe(LOGS, "late", _body(schemaVersion="2020-08-15")) == _error(
            403, "Logs.SubscriptionClosed", "Logs API subscription is closed already"
        )
        await telemetry.close()

    asyncio.run(main())


def test_an_unknown_api_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="'metrics'"):
        Telemetry(_refuse).subscribe("metrics", "agent", _body())
