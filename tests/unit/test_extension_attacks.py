"""A hostile function or extension against its environment's Runtime/Extensions/Telemetry APIs:
every attack is refused and leaves the server (and the connection, where that makes sense) usable."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from test_extensions_api import EXT, attach, register
from test_runtime_api import PREFIX, Connect, deliver, invocation, request_bytes, run

from lamina.runtime import native_gate
from lamina.runtime.extension_files import ExtensionListingError, extension_environment, external_extensions
from lamina.runtime.extensions_api import ExtensionsApi, FunctionMetadata
from lamina.runtime.runtime_api import MAX_CONNECTIONS, MAX_RESPONSE_BYTES, RuntimeApi
from lamina.runtime.telemetry import TELEMETRY, SubscriptionError, parse_subscription

META = FunctionMetadata("f", "$LATEST", "app.handler", "000000000000")


# -- the server's memory and descriptors


def test_a_client_that_never_reads_cannot_make_the_server_buffer_its_answers() -> None:
    # 34 MB of pipelined requests whose 404 answers are ~4x larger: with reading paused while the
    # answers are not read, most of the requests stay unsent in the client.
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        client.writer.transport.pause_reading()  # it never reads an answer
        blob = b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n" * 1_000_000
        client.writer.write(blob)
        # Until the server stops reading (it never would without the pause: it would read it all).
        unsent, previous = client.writer.transport.get_write_buffer_size(), -1
        while unsent != previous:
            await asyncio.sleep(0.3)
            unsent, previous = client.writer.transport.get_write_buffer_size(), unsent
        client.writer.transport.abort()  # what it never sent is dropped, not flushed at close
        assert unsent > len(blob) // 2
        # Another connection of the same environment is served meanwhile.
        other = await connect()
        assert (await other.request("GET", "/nowhere")).status == 404

    run(scenario)


def test_connections_over_the_limit_are_closed_at_once_and_the_others_keep_working() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        clients = [await connect() for _ in range(MAX_CONNECTIONS)]
        extra = [await connect() for _ in range(5)]
        for client in extra:
            try:
                data = await client.reader.read()
            except ConnectionResetError:
                data = b""
            assert data == b""
        for client in clients[:: MAX_CONNECTIONS // 8]:
            assert (await client.request("GET", "/nowhere")).status == 404
        # Closing some makes room again.
        for client in clients[:3]:
            await client.close()
        await asyncio.sleep(0.1)
        late = await connect()
        assert (await late.request("GET", "/nowhere")).status == 404

    run(scenario)


def test_a_large_body_for_an_invocation_not_in_flight_is_refused_and_the_connection_survives() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        runtime = await connect()
        future, _ = await deliver(api, runtime, invocation("req-1"))
        attacker = await connect()
        big = b"x" * MAX_RESPONSE_BYTES
        resp = await attacker.request("POST", f"{PREFIX}/invocation/other/response", big)
        assert (resp.status, resp.json()) == (
            400,
            {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"},
        )
        assert not future.done()
        # The runtime's own answer still goes through.
        assert (await runtime.request("POST", f"{PREFIX}/invocation/req-1/response", b"ok")).status == 202
        assert (await future).body == b"ok"
        # An init error after Init is refused the same way (not kept either).
        resp = await attacker.request("POST", f"{PREFIX}/init/error", big)
        assert resp.status == 403
        assert (await attacker.request("GET", "/nowhere")).status == 404

    run(scenario)


def test_a_response_body_pipelined_behind_a_parked_long_poll_closes_the_connection() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        await client.send(
            request_bytes("GET", f"{PREFIX}/invocation/next")
            + request_bytes("POST", f"{PREFIX}/invocation/req-1/response", b"x" * 100_000)
        )
        await api.wait_ready()
        resp = await client.response()
        assert resp.status == 400
        assert await client.reader.read() == b""
        # The environment is still served.
        runtime = await connect()
        future, _ = await deliver(api, runtime, invocation("req-1"))
        assert (await runtime.request("POST", f"{PREFIX}/invocation/req-1/response", b"ok")).status == 202
        assert (await future).body == b"ok"

    run(scenario)


# -- malformed input


def test_a_register_body_nested_too_deep_is_a_format_error() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        ext = attach(api)
        client = await connect()
        for body in (b"[" * 60_000, b'{"events":' + b"[" * 60_000 + b"}"):
            resp = await client.request("POST", f"{EXT}/register", body, {"Lambda-Extension-Name": "agent"})
            assert resp.status == 403
            assert resp.json() == {
                "errorMessage": "json: exceeded max depth",
                "errorType": "InvalidRequestFormat",
            }
        assert not ext.any_registered
        assert (await register(client, "agent", ["INVOKE"])).status == 200

    run(scenario)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 60_000,
        b'{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"HTTP",'
        b'"URI":"http://sandbox.localdomain:8080/"},"buffering":' + b"[" * 60_000 + b"}",
    ],
)
def test_a_subscription_nested_too_deep_is_a_deserialization_error(body: bytes) -> None:
    with pytest.raises(SubscriptionError) as refused:
        parse_subscription(TELEMETRY, body)
    assert (refused.value.status, refused.value.error_type) == (400, "Telemetry.DeserializationError")


@pytest.mark.parametrize("name", ["a\nREPORT RequestId: x", "a\x85b", "a\u2028b", "a\x1b[2Jb", "a\x00b"])
def test_internal_extension_names_that_could_forge_log_lines_are_refused(name: str) -> None:
    api = ExtensionsApi(META, ())
    answer = api.register(name, None, b'{"events":["INVOKE"]}')
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["errorType"] == "Extension.InvalidExtensionName"
    assert api.extensions == []


def test_error_types_are_stored_without_line_breaks() -> None:
    api = ExtensionsApi(META, ())
    answer = api.register("agent", None, b'{"events":["INVOKE"]}')
    identifier = answer.split(b"Lambda-Extension-Identifier: ", 1)[1].split(b"\r\n", 1)[0].decode()
    assert api.error(identifier, "Extension.X\x85\u2028REPORT", init=True).startswith(b"HTTP/1.1 202 ")
    (agent,) = api.extensions
    assert agent.error_type == "Extension.X??REPORT"


# -- the layers' /opt/extensions


@pytest.mark.parametrize("name", [b"agent\nREPORT RequestId: 1\tDuration: 1 ms", b"agent\xff", b"agent\x85"])
def test_extension_file_names_that_are_not_utf8_or_hold_controls_are_refused(
    tmp_path: Path, name: bytes
) -> None:
    extensions = tmp_path / "layer" / "extensions"
    extensions.mkdir(parents=True)
    (extensions / "fine").write_text("#!/bin/sh\n")
    path = os.path.join(os.fsencode(extensions), name)
    with open(path, "wb") as f:
        f.write(b"#!/bin/sh\n")
    with pytest.raises(ExtensionListingError, match="not UTF-8 or holds a control character"):
        external_extensions((tmp_path / "layer",))
    # A directory of that name is no extension: nothing is refused.
    os.unlink(path)
    os.mkdir(path)
    assert external_extensions((tmp_path / "layer",)) == ("/opt/extensions/fine",)


# -- Telemetry destinations: nowhere but the sandbox's own listener


def _subscription(uri: str) -> bytes:
    return json.dumps(
        {
            "schemaVersion": "2022-12-13",
            "types": ["platform"],
            "destination": {"protocol": "HTTP", "URI": uri},
        }
    ).encode()


@pytest.mark.parametrize(
    ("uri", "status"),
    [
        ("http://example.com:8080/", 403),
        ("http://127.0.0.1:8080/", 403),
        ("http://[::1]:8080/", 403),
        ("http://[::ffff:127.0.0.1]:8080/", 403),
        ("http://169.254.169.254:80/", 403),
        ("http://sandbox.localdomain.:8080/", 403),
        ("http://sandbox.localdomain.example.com:8080/", 403),
        ("http://sandbox.localdomain%2eexample.com:8080/", 403),
        ("http://sandbox.localdomain@example.com:8080/", 403),
        ("http://sandbox.localdomain:8080\\@example.com/", 403),
        ("https://sandbox.localdomain:8080/", 403),
        ("file:///etc/passwd", 403),
        ("http://user@sandbox.localdomain:8080/", 400),
        ("http://sandbox.localdomain:8080/a\r\nHost: example.com", 400),
        ("http://sandbox.localdomain:8080/#x", 400),
        ("http://sandbox.localdomain:9001/", 400),
        ("http://sandbox.localdomain:65536/", 400),
        ("http://sandbox.localdomain:0/", 400),
        ("http://sandbox.localdomain:8080%0d%0aX:1/", 400),
        ("http://sandbox.localdomain/", 400),
    ],
)
def test_telemetry_destinations_elsewhere_are_refused(uri: str, status: int) -> None:
    with pytest.raises(SubscriptionError) as refused:
        parse_subscription(TELEMETRY, _subscription(uri))
    assert refused.value.status == status


def test_a_telemetry_destination_in_the_sandbox_is_accepted_with_its_port_and_path() -> None:
    sub = parse_subscription(TELEMETRY, _subscription("http://sandbox.localdomain:4243/in?x=1"))
    assert (sub.port, sub.target) == (4243, "/in?x=1")


def test_no_lamina_internal_variable_reaches_an_external_extension() -> None:
    # native_gate.ENV_VAR (the bootstrap's list of blocked native modules) and rapid's "_" and
    # runtime-only variables are the runtime's alone.
    env = {
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_LAMBDA_FUNCTION_NAME": "f",
        native_gate.ENV_VAR: "blocked-list",
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": "/var/task",
    }
    assert extension_environment(env) == {
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_LAMBDA_FUNCTION_NAME": "f",
    }
