"""The Extensions API on an environment's Runtime API socket, driven by a raw HTTP/1.1 client."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from test_runtime_api import PREFIX, Client, Connect, Resp, invocation, request_bytes, run

from lamina.runtime.extensions_api import (
    MAX_EXTENSION_BODY_BYTES,
    ExtensionsApi,
    ExtensionState,
    FunctionMetadata,
)
from lamina.runtime.runtime_api import RuntimeApi

EXT = "/2020-01-01/extension"
META = FunctionMetadata("f", "$LATEST", "app.handler", "000000000000")


def attach(api: RuntimeApi, external: tuple[str, ...] = ("agent",)) -> ExtensionsApi:
    ext = ExtensionsApi(META, external)
    api.extensions = ext
    return ext


async def register(client: Client, name: str, events: list[str], **headers: str) -> Resp:
    return await client.request(
        "POST",
        f"{EXT}/register",
        json.dumps({"events": events}).encode(),
        {"Lambda-Extension-Name": name, **headers},
    )


def next_task(client: Client, identifier: str) -> asyncio.Future[Resp]:
    client.writer.write(
        request_bytes("GET", f"{EXT}/event/next", headers={"Lambda-Extension-Identifier": identifier})
    )
    return asyncio.ensure_future(client.response())


async def parked(task: asyncio.Future[Resp]) -> None:
    await asyncio.sleep(0.05)  # long enough for the request to reach the server
    assert not task.done()


def test_register_answers_the_function_metadata_and_an_identifier() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        ext = attach(api)
        c = await connect()
        resp = await register(c, "agent", ["INVOKE", "SHUTDOWN"])
        assert resp.status == 200
        assert resp.json() == {"functionName": "f", "functionVersion": "$LATEST", "handler": "app.handler"}
        identifier = resp.headers["lambda-extension-identifier"]
        assert str(uuid.UUID(identifier)) == identifier
        (agent,) = ext.extensions
        assert (agent.state, agent.events, agent.internal) == (
            ExtensionState.REGISTERED,
            ("INVOKE", "SHUTDOWN"),
            False,
        )
        # The accountId feature adds the account.
        resp = await register(c, "other", [], **{"Lambda-Extension-Accept-Feature": "accountId"})
        assert resp.json() == {
            "accountId": "000000000000",
            "functionName": "f",
            "functionVersion": "$LATEST",
            "handler": "app.handler",
        }
        assert ext.extensions[1].internal

    run(scenario)


@pytest.mark.parametrize(
    ("headers", "body", "error_type", "message"),
    [
        ({}, b'{"events":[]}', "Extension.InvalidExtensionName", "Empty extension name"),
        (
            {"Lambda-Extension-Name": "agent"},
            b'{"events":["BOOM"]}',
            "Extension.InvalidEventType",
            "BOOM: ErrorInvalidEventType",
        ),
        ({"Lambda-Extension-Name": "agent"}, b"not json", "InvalidRequestFormat", None),
        (
            {"Lambda-Extension-Name": "agent"},
            b'{"events":[],"configurationKeys":["a"]}',
            "InvalidRequestFormat",
            "configurationKeys are deprecated; use environment variables instead",
        ),
        ({"Lambda-Extension-Name": "in\tside"}, b'{"events":[]}', "Extension.InvalidExtensionName", None),
        (
            {"Lambda-Extension-Name": "inside"},
            b'{"events":["SHUTDOWN"]}',
            "Extension.InvalidEventType",
            "SHUTDOWN: ShutdownEventNotSupportedForInternalExtension",
        ),
    ],
)
def test_bad_registrations_are_403_and_change_nothing(
    headers: dict[str, str], body: bytes, error_type: str, message: str | None
) -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        ext = attach(api)
        c = await connect()
        resp = await c.request("POST", f"{EXT}/register", body, headers)
        assert resp.status == 403
        assert resp.json()["errorType"] == error_type  # type: ignore[index]
        if message is not None:
            assert resp.json()["errorMessage"] == message  # type: ignore[index]
        assert [e.state for e in ext.extensions] == [ExtensionState.STARTED]

    run(scenario)


def test_registering_twice_is_an_invalid_state() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        attach(api)
        c = await connect()
        assert (await register(c, "agent", ["INVOKE"])).status == 200
        resp = await register(c, "agent", ["INVOKE"])
        assert resp.status == 403
        assert resp.json() == {
            "errorMessage": "State transition from Registered to Registered failed for extension agent. "
            "Error: State transition is not allowed",
            "errorType": "Extension.InvalidExtensionState",
        }
        assert (await register(c, "inside", ["INVOKE"])).status == 200
        resp = await register(c, "inside", ["INVOKE"])
        assert resp.json()["errorType"] == "Extension.InvalidExtensionState"  # type: ignore[index]

    run(scenario)


def test_registration_closes_when_the_runtime_is_initialised() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        attach(api, ())
        runtime, c = await connect(), await connect()
        assert (await register(c, "early", ["INVOKE"])).status == 200
        runtime_next = runtime.start("GET", f"{PREFIX}/invocation/next")
        await parked(runtime_next)
        resp = await register(c, "late", ["INVOKE"])
        assert resp.status == 403
        assert resp.json() == {
            "errorMessage": "Extension registration closed already",
            "errorType": "Extension.RegistrationClosed",
        }

    run(scenario)


def test_at_most_ten_extensions() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        attach(api, ())
        c = await connect()
        for i in range(10):
            assert (await register(c, f"x{i}", [])).status == 200
        resp = await register(c, "x10", [])
        assert resp.json() == {
            "errorMessage": "Extension limit (10) reached",
            "errorType": "Extension.TooManyExtensions",
        }

    run(scenario)


@pytest.mark.parametrize(
    ("identifier", "error_type"),
    [
        (None, "Extension.MissingExtensionIdentifier"),
        ("not-a-uuid", "Extension.InvalidExtensionIdentifier"),
        ("9c5d8bd4-6a8e-4a65-9c2e-2b1d0d5f3e71", "Extension.UnknownExtensionIdentifier"),
    ],
)
@pytest.mark.parametrize("path", ["event/next", "init/error", "exit/error"])
def test_calls_need_a_registered_identifier(identifier: str | None, error_type: str, path: str) -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        attach(api)
        c = await connect()
        headers = {"Lambda-Extension-Function-Error-Type": "Extension.Boom"}
        if identifier is not None:
            headers["Lambda-Extension-Identifier"] = identifier
        resp = await c.request("GET" if path == "event/next" else "POST", f"{EXT}/{path}", b"", headers)
        assert resp.status == 403
        assert resp.json()["errorType"] == error_type  # type: ignore[index]

    run(scenario)


def test_invoke_and_shutdown_events_have_aws_shapes_and_next_may_come_on_any_connection() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        ext = attach(api)
        a, b = await connect(), await connect()
        identifier = (await register(a, "agent", ["INVOKE", "SHUTDOWN"])).headers[
            "lambda-extension-identifier"
        ]
        first = next_task(a, identifier)
        await parked(first)
        assert ext.busy() == []
        inv = invocation("req-7")
        assert ext.invoke(inv.request_id, inv.deadline_ms, inv.function_arn, inv.trace_id) == 1
        resp = await first
        assert resp.status == 200
        assert resp.json() == {
            "eventType": "INVOKE",
            "deadlineMs": inv.deadline_ms,
            "requestId": "req-7",
            "invokedFunctionArn": inv.function_arn,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": inv.trace_id},
        }
        assert "lambda-extension-event-identifier" in resp.headers
        assert [e.name for e in ext.busy()] == ["agent"]
        second = next_task(b, identifier)  # another connection
        await parked(second)
        assert ext.busy() == []
        assert ext.shutdown("spindown", 1_700_000_002_000) == 1
        assert (await second).json() == {
            "eventType": "SHUTDOWN",
            "shutdownReason": "spindown",
            "deadlineMs": 1_700_000_002_000,
        }

    run(scenario)


def test_an_event_for_an_extension_not_waiting_is_its_next_answer() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        ext = attach(api)
        c = await connect()
        identifier = (await register(c, "agent", ["INVOKE"])).headers["lambda-extension-identifier"]
        task = next_task(c, identifier)
        await parked(task)
        await c.close()  # its long poll is gone
        await asyncio.sleep(0.05)
        inv = invocation("req-8")
        ext.invoke(inv.request_id, inv.deadline_ms, inv.function_arn, inv.trace_id)
        assert [e.name for e in ext.busy()] == ["agent"]  # not done with it until it asks again
        c2 = await connect()
        resp = await next_task(c2, identifier)
        assert resp.json()["requestId"] == "req-8"  # type: ignore[index]

    run(scenario)


def test_two_long_polls_at_once_are_an_invalid_state() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        attach(api)
        a, b = await connect(), await connect()
        identifier = (await register(a, "agent", ["INVOKE"])).headers["lambda-extension-identifier"]
        await parked(next_task(a, identifier))
        resp = await next_task(b, identifier)
        assert resp.status == 403
        assert resp.json()["errorMessage"] == (  # type: ignore[index]
            f"State transition from Ready to Ready failed for extension {identifier}. "
            "Error: State transition is not allowed"
        )

    run(scenario)


def test_an_extension_next_behind_the_runtimes_parked_next_waits_its_turn() -> None:
    """A request on the runtime's own connection after its parked /next is answered in order
    (HTTP/1.1): the extension's long poll neither jumps the queue nor disturbs the runtime."""

    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        ext = attach(api)
        a, runtime = await connect(), await connect()
        identifier = (await register(a, "agent", ["INVOKE"])).headers["lambda-extension-identifier"]
        runtime_next = runtime.start("GET", f"{PREFIX}/invocation/next")
        await parked(runtime_next)
        runtime.writer.write(
            request_bytes("GET", f"{EXT}/event/next", headers={"Lambda-Extension-Identifier": identifier})
        )
        await asyncio.sleep(0.05)
        assert ext.extensions[0].state is ExtensionState.REGISTERED  # still queued behind
        future = api.invoke(invocation("req-9"))
        resp = await runtime_next
        assert resp.headers["lambda-runtime-aws-request-id"] == "req-9"
        ext_resp = asyncio.ensure_future(runtime.response())
        await parked(ext_resp)  # now parked for the extension
        assert not future.done()

    run(scenario)


def test_error_posts() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        ext = attach(api)
        c = await connect()
        identifier = (await register(c, "agent", ["INVOKE"])).headers["lambda-extension-identifier"]
        headers = {"Lambda-Extension-Identifier": identifier}
        resp = await c.request("POST", f"{EXT}/init/error", b"{}", headers)
        assert resp.json() == {
            "errorMessage": "Lambda-Extension-Function-Error-Type not found",
            "errorType": "Extension.MissingHeader",
        }
        headers["Lambda-Extension-Function-Error-Type"] = "Extension.ConfigInvalid"
        resp = await c.request("POST", f"{EXT}/init/error", b"{}", headers)
        assert (resp.status, resp.json()) == (202, {"status": "OK"})
        (agent,) = ext.extensions
        assert (agent.state, agent.error_type) == (ExtensionState.INIT_ERROR, "Extension.ConfigInvalid")
        assert ext.first_error() is agent
        resp = await c.request("GET", f"{EXT}/event/next", b"", headers)
        assert resp.status == 403
        assert resp.json()["errorMessage"].startswith("State transition from InitError to Ready")  # type: ignore[index]
        resp = await c.request("POST", f"{EXT}/exit/error", b"{}", headers)
        assert resp.json()["errorMessage"].startswith("State transition from InitError to ExitError")  # type: ignore[index]

    run(scenario)


def test_huge_bodies_are_413_and_the_connection_stays_usable() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        ext = attach(api)
        c = await connect()
        body = b'{"events":[' + b'"INVOKE",' * (MAX_EXTENSION_BODY_BYTES // 9 + 1) + b'"INVOKE"]}'
        resp = await c.request("POST", f"{EXT}/register", body, {"Lambda-Extension-Name": "agent"})
        assert resp.status == 413
        assert ext.extensions[0].state is ExtensionState.STARTED
        assert (await register(c, "agent", ["INVOKE"])).status == 200

    run(scenario)


def test_subscriptions_go_to_the_handler_for_registered_extensions_only() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        attach(api)
        calls: list[tuple[str, str, bytes]] = []

        def handler(kind: str, name: str, body: bytes) -> tuple[int, bytes]:
            calls.append((kind, name, body))
            return 200, b'"OK"'

        c = await connect()
        # Without a handler: AWS's "not supported".
        resp = await c.request("PUT", "/2020-08-15/logs", b"{}")
        assert resp.json()["errorType"] == "Logs.NotSupported"  # type: ignore[index]
        api.on_subscribe = handler
        identifier = (await register(c, "agent", ["INVOKE"])).headers["lambda-extension-identifier"]
        resp = await c.request(
            "PUT", "/2022-07-01/telemetry", b'{"a":1}', {"Lambda-Extension-Identifier": "x"}
        )
        assert resp.json()["errorType"] == "Extension.InvalidExtensionIdentifier"  # type: ignore[index]
        resp = await c.request(
            "PUT", "/2022-07-01/telemetry", b'{"a":1}', {"Lambda-Extension-Identifier": identifier}
        )
        assert (resp.status, resp.body) == (200, b'"OK"')
        resp = await c.request("PUT", "/2020-08-15/logs", b"{}", {"Lambda-Extension-Identifier": identifier})
        assert resp.status == 200
        assert calls == [("telemetry", "agent", b'{"a":1}'), ("logs", "agent", b"{}")]

    run(scenario)


def test_without_an_extensions_api_every_extension_path_is_404() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        c = await connect()
        resp = await c.request("POST", f"{EXT}/register", b"{}", {"Lambda-Extension-Name": "x"})
        assert resp.status == 404

    run(scenario)


def test_shutdown_reaches_an_extension_still_in_init_at_its_next() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        ext = attach(api)
        c = await connect()
        identifier = (await register(c, "agent", ["SHUTDOWN"])).headers["lambda-extension-identifier"]
        assert ext.shutdown("timeout", 1_700_000_000_500) == 1
        resp = await next_task(c, identifier)
        assert resp.json() == {
            "eventType": "SHUTDOWN",
            "shutdownReason": "timeout",
            "deadlineMs": 1_700_000_000_500,
        }

    run(scenario)
