"""The Runtime API of one environment, driven by a raw HTTP/1.1 client over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from lamina.runtime.runtime_api import (
    MAX_RESPONSE_BYTES,
    Invocation,
    InvocationResult,
    ResultKind,
    RuntimeApi,
    RuntimeApiClosed,
    RuntimeState,
)

PREFIX = "/2018-06-01/runtime"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"
TOO_LARGE_413 = {
    "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
    "errorType": "RequestEntityTooLarge",
}
TOO_LARGE_RESULT = {
    "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
    "errorType": "Function.ResponseSizeTooLarge",
}


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


class Client:
    """A bare HTTP/1.1 client: sends exactly the bytes asked for, reads responses in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, *, skip_continue: bool = True) -> Resp:
        while True:
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if status == 100 and skip_continue:
                continue
            length = int(headers.get("content-length", "0"))
            body = await self.reader.readexactly(length) if length else b""
            return Resp(status, headers, body)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Resp:
        await self.send(request_bytes(method, path, body, headers))
        return await self.response()

    def start(self, method: str, path: str, body: bytes = b"") -> asyncio.Task[Resp]:
        """Send a request now; its response is read in a task (for requests that block)."""
        self.writer.write(request_bytes(method, path, body))
        return asyncio.ensure_future(self.response())

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def request_bytes(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    if method != "GET" and "Transfer-Encoding" not in (headers or {}):
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


Connect = Callable[[], Awaitable[Client]]


def run(scenario: Callable[[RuntimeApi, Connect], Awaitable[None]]) -> None:
    """Run ``scenario`` against a fresh RuntimeApi on 127.0.0.1:<ephemeral>."""

    async def main() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        api = RuntimeApi(sock)
        await api.start()
        clients: list[Client] = []

        async def connect() -> Client:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=16 * 1024 * 1024)
            client = Client(reader, writer)
            clients.append(client)
            return client

        try:
            await asyncio.wait_for(scenario(api, connect), timeout=20)
        finally:
            for client in clients:
                await client.close()
            await api.close()

    asyncio.run(main())


def invocation(request_id: str = "req-1", payload: bytes = b'{"k": 1}', **kw: object) -> Invocation:
    fields: dict[str, object] = {
        "deadline_ms": 1_700_000_003_000,
        "function_arn": ARN,
        "trace_id": "Root=1-5e1b4151-5ac6c58f5b5daa6532e4f2e8;Parent=1;Sampled=0",
    }
    fields.update(kw)
    return Invocation(request_id, payload, **fields)  # type: ignore[arg-type]


async def deliver(
    api: RuntimeApi, client: Client, inv: Invocation
) -> tuple[asyncio.Future[InvocationResult], Resp]:
    """invoke() and the runtime's GET /next that receives it."""
    future = api.invoke(inv)
    resp = await client.request("GET", f"{PREFIX}/invocation/next")
    assert resp.status == 200
    return future, resp


# -- the happy path


def test_next_blocks_until_an_event_then_response_resolves_the_invoke() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        assert api.state is RuntimeState.STARTED
        pending = client.start("GET", f"{PREFIX}/invocation/next")
        assert await api.wait_ready() is None
        assert api.state is RuntimeState.READY
        assert not pending.done()

        inv = invocation(
            client_context='{"custom": {"foo": "bar"}, "env": {"fizz": "buzz"}}',
            cognito_identity='{"cognitoIdentityId": "id", "cognitoIdentityPoolId": "pool"}',
        )
        future = api.invoke(inv)
        event = await pending
        assert event.status == 200
        assert event.body == b'{"k": 1}'
        assert event.headers["content-type"] == "application/json"
        assert event.headers["lambda-runtime-aws-request-id"] == "req-1"
        assert event.headers["lambda-runtime-deadline-ms"] == "1700000003000"
        assert event.headers["lambda-runtime-invoked-function-arn"] == ARN
        assert event.headers["lambda-runtime-trace-id"] == inv.trace_id
        assert json.loads(event.headers["lambda-runtime-client-context"]) == {
            "custom": {"foo": "bar"},
            "env": {"fizz": "buzz"},
        }
        assert json.loads(event.headers["lambda-runtime-cognito-identity"])["cognitoIdentityId"] == "id"
        assert api.state is RuntimeState.INVOKING
        assert not future.done()

        posted = await client.request("POST", f"{PREFIX}/invocation/req-1/response", b'{"ok": true}')
        assert posted.status == 202
        assert posted.json() == {"status": "OK"}
        assert await future == InvocationResult(ResultKind.RESPONSE, b'{"ok": true}')
        assert api.state is RuntimeState.READY

    run(scenario)


def test_optional_headers_are_absent_when_not_given() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        _, event = await deliver(api, client, invocation())
        assert "lambda-runtime-client-context" not in event.headers
        assert "lambda-runtime-cognito-identity" not in event.headers

    run(scenario)


def test_an_invoke_before_the_runtime_asks_is_handed_to_its_first_next() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        future = api.invoke(invocation("early"))
        event = await client.request("GET", f"{PREFIX}/invocation/next")
        assert event.headers["lambda-runtime-aws-request-id"] == "early"
        assert await api.wait_ready() is None
        await client.request("POST", f"{PREFIX}/invocation/early/response", b"1")
        assert (await future).body == b"1"

    run(scenario)


def test_many_invokes_over_one_keep_alive_connection() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        for i in range(200):
            payload = b"x" * (i * 997)  # crosses the join-or-write-twice threshold
            future, event = await deliver(api, client, invocation(f"r{i}", payload))
            assert event.body == payload
            await client.request("POST", f"{PREFIX}/invocation/r{i}/response", payload[::-1])
            assert (await future).body == payload[::-1]
        assert len(api._connections) == 1

    run(scenario)


def test_error_post_passes_the_body_and_error_type_through() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        error = b'{"errorMessage": "boom", "errorType": "ValueError", "requestId": "a", "stackTrace": []}'
        future, _ = await deliver(api, client, invocation("a"))
        resp = await client.request(
            "POST",
            f"{PREFIX}/invocation/a/error",
            error,
            {"Lambda-Runtime-Function-Error-Type": "Runtime.Unknown"},
        )
        assert resp.status == 202
        assert resp.json() == {"status": "OK"}
        assert await future == InvocationResult(ResultKind.ERROR, error, "Runtime.Unknown")

        future, _ = await deliver(api, client, invocation("b"))
        await client.request("POST", f"{PREFIX}/invocation/b/error", b"{}")
        assert await future == InvocationResult(ResultKind.ERROR, b"{}", None)

    run(scenario)


@pytest.mark.parametrize(
    "chunks", [[b"he", b"llo ", b"world"], [b"x" * 100_000, b"y"]], ids=["small", "large"]
)
def test_chunked_request_bodies_are_reassembled(chunks: list[bytes]) -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        future, _ = await deliver(api, client, invocation())
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        head = request_bytes(
            "POST", f"{PREFIX}/invocation/req-1/response", headers={"Transfer-Encoding": "chunked"}
        )
        await client.send(head + body)
        assert (await client.response()).status == 202
        assert (await future).body == b"".join(chunks)

    run(scenario)


def test_expect_100_continue_is_answered_before_the_body() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        future, _ = await deliver(api, client, invocation())
        body = b"z" * 2_000_000
        head = request_bytes(
            "POST",
            f"{PREFIX}/invocation/req-1/response",
            headers={"Expect": "100-continue", "Content-Length": str(len(body))},
        )
        head = head.replace(b"Content-Length: 0\r\n", b"")
        await client.send(head)
        interim = await client.response(skip_continue=False)
        assert interim.status == 100
        await client.send(body)
        assert (await client.response()).status == 202
        assert (await future).body == body

    run(scenario)


# -- sizes


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_response_over_the_limit_is_413_and_the_invoke_fails(chunked: bool) -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        future, _ = await deliver(api, client, invocation())
        body = b"a" * (MAX_RESPONSE_BYTES + 1)
        path = f"{PREFIX}/invocation/req-1/response"
        if chunked:
            half = len(body) // 2
            data = request_bytes("POST", path, headers={"Transfer-Encoding": "chunked"}) + b"".join(
                b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:half], body[half:])
            )
            await client.send(data + b"0\r\n\r\n")
            resp = await client.response()
        else:
            resp = await client.request("POST", path, body)
        assert resp.status == 413
        assert resp.json() == TOO_LARGE_413
        result = await future
        assert result.kind is ResultKind.ERROR
        assert result.error_type == "Function.ResponseSizeTooLarge"
        assert json.loads(result.body) == TOO_LARGE_RESULT
        # The invocation is over, and the connection still works.
        again = await client.request("POST", path, b"late")
        assert again.status == 400
        future, _ = await deliver(api, client, invocation("next-one"))
        await client.request("POST", f"{PREFIX}/invocation/next-one/response", b"ok")
        assert (await future).body == b"ok"

    run(scenario)


def test_a_response_of_exactly_the_limit_is_accepted() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        future, _ = await deliver(api, client, invocation())
        body = b"b" * MAX_RESPONSE_BYTES
        assert (await client.request("POST", f"{PREFIX}/invocation/req-1/response", body)).status == 202
        result = await future
        assert result.kind is ResultKind.RESPONSE
        assert len(result.body) == MAX_RESPONSE_BYTES

    run(scenario)


# -- request ids and states


@pytest.mark.parametrize("kind", ["response", "error"], ids=["response", "error"])
def test_unknown_and_finished_request_ids_are_400(kind: str) -> None:
    invalid = {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}

    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        future, _ = await deliver(api, client, invocation("live"))
        unknown = await client.request("POST", f"{PREFIX}/invocation/other/{kind}", b"{}")
        assert (unknown.status, unknown.json()) == (400, invalid)
        assert not future.done()
        await client.request("POST", f"{PREFIX}/invocation/live/{kind}", b"{}")
        await future
        finished = await client.request("POST", f"{PREFIX}/invocation/live/{kind}", b"{}")
        assert (finished.status, finished.json()) == (400, invalid)

    run(scenario)


def test_an_invocation_post_before_init_is_done_is_403() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        resp = await client.request("POST", f"{PREFIX}/invocation/x/response", b"{}")
        assert resp.status == 403
        body = resp.json()
        assert isinstance(body, dict)
        assert body["errorType"] == "InvalidStateTransition"
        assert body["errorMessage"]

    run(scenario)


def test_next_while_an_event_is_in_flight_is_403() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        future, _ = await deliver(api, client, invocation())
        again = await client.request("GET", f"{PREFIX}/invocation/next")
        assert again.status == 403
        assert again.json() == {
            "errorMessage": "State transition from Invoking to Ready failed for runtime. "
            "Error: State transition is not allowed",
            "errorType": "InvalidStateTransition",
        }
        assert not future.done()

    run(scenario)


def test_a_second_waiting_next_is_403_but_a_dead_one_is_replaced() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        first = await connect()
        parked = first.start("GET", f"{PREFIX}/invocation/next")
        await api.wait_ready()
        second = await connect()
        resp = await second.request("GET", f"{PREFIX}/invocation/next")
        assert resp.status == 403
        parked.cancel()
        await first.close()
        while api._waiter is not None:  # connection_lost arrives on a later loop turn
            await asyncio.sleep(0)
        third = await connect()
        future, event = await deliver(api, third, invocation("after"))
        assert event.headers["lambda-runtime-aws-request-id"] == "after"

    run(scenario)


def test_init_error_before_next_fails_init_and_the_first_invoke() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        error = (
            b'{"errorMessage": "Unable to import module \'app\'", "errorType": "Runtime.ImportModuleError"}'
        )
        queued = api.invoke(invocation("first"))
        resp = await client.request(
            "POST",
            f"{PREFIX}/init/error",
            error,
            {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
        )
        assert (resp.status, resp.json()) == (202, {"status": "OK"})
        expected = InvocationResult(ResultKind.INIT_ERROR, error, "Runtime.ImportModuleError")
        assert await api.wait_ready() == expected
        assert await queued == expected
        assert api.state is RuntimeState.INIT_ERROR
        later = api.invoke(invocation("second"))
        assert later.done() and later.result() == expected
        nxt = await client.request("GET", f"{PREFIX}/invocation/next")
        assert nxt.status == 403
        again = await client.request("POST", f"{PREFIX}/init/error", b"{}")
        assert again.status == 403

    run(scenario)


def test_init_error_after_init_is_403() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        await deliver(api, client, invocation())
        resp = await client.request("POST", f"{PREFIX}/init/error", b"{}")
        assert resp.status == 403
        body = resp.json()
        assert isinstance(body, dict) and body["errorType"] == "InvalidStateTransition"

    run(scenario)


# -- other paths


@pytest.mark.parametrize("method", ["PUT", "POST"], ids=["put", "post"])
def test_telemetry_api_is_not_supported(method: str) -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        resp = await client.request(method, "/2022-07-01/telemetry", b'{"destination": {}}')
        assert resp.status == 202
        assert resp.json() == {
            "errorType": "Telemetry.NotSupported",
            "errorMessage": "Telemetry API is not supported",
        }

    run(scenario)


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/"),
        ("GET", "/2018-06-01/runtime/invocation"),
        ("GET", "/2018-06-01/runtime/invocation/next/extra"),
        ("POST", "/2018-06-01/runtime/invocation//response"),
        ("POST", "/2018-06-01/runtime/invocation/x/result"),
        ("POST", "/2020-01-01/extension/register"),
        ("GET", "/2018-06-01/runtime/init/error/x"),
    ],
    ids=["root", "invocation", "next-extra", "empty-id", "bad-verb", "extensions", "init-extra"],
)
def test_unknown_paths_are_404(method: str, path: str) -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        assert (await client.request(method, path)).status == 404
        assert api.state is RuntimeState.STARTED

    run(scenario)


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", f"{PREFIX}/invocation/next"),
        ("GET", f"{PREFIX}/init/error"),
        ("GET", f"{PREFIX}/invocation/a/response"),
    ],
    ids=["post-next", "get-init-error", "get-response"],
)
def test_wrong_methods_are_405(method: str, path: str) -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        assert (await client.request(method, path)).status == 405
        assert api.state is RuntimeState.STARTED

    run(scenario)


def test_query_strings_are_ignored() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        future = api.invoke(invocation())
        assert (await client.request("GET", f"{PREFIX}/invocation/next?x=1")).status == 200
        assert (await client.request("POST", f"{PREFIX}/invocation/req-1/response?y", b"1")).status == 202
        assert (await future).body == b"1"

    run(scenario)


def test_connection_close_is_honoured() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        resp = await client.request("PUT", "/2022-07-01/telemetry", b"", {"Connection": "close"})
        assert resp.status == 202
        assert await client.reader.read() == b""  # the server closed its side

    run(scenario)


def test_requests_pipelined_behind_a_waiting_next_are_answered_in_order() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        await client.send(
            request_bytes("GET", f"{PREFIX}/invocation/next")
            + request_bytes("PUT", "/2022-07-01/telemetry", b"{}")
        )
        await api.wait_ready()
        future = api.invoke(invocation())
        first = await client.response()
        second = await client.response()
        assert first.status == 200 and first.headers["lambda-runtime-aws-request-id"] == "req-1"
        assert second.status == 202 and b"Telemetry" in second.body
        assert not future.done()

    run(scenario)


def test_malformed_http_is_400_and_closes() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        await client.send(b"NOT HTTP AT ALL\r\n\r\n")
        resp = await client.response()
        assert resp.status == 400
        assert await client.reader.read() == b""

    run(scenario)


# -- the caller's side


def test_invoke_while_one_is_in_progress_is_refused() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        api.invoke(invocation("one"))
        with pytest.raises(RuntimeError, match="in progress"):
            api.invoke(invocation("two"))

    run(scenario)


def test_a_cancelled_invocation_is_abandoned() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        future, _ = await deliver(api, client, invocation("slow"))
        future.cancel()  # e.g. the caller's timeout
        late = await client.request("POST", f"{PREFIX}/invocation/slow/response", b"late")
        assert late.status == 400
        future, _ = await deliver(api, client, invocation("fresh"))
        await client.request("POST", f"{PREFIX}/invocation/fresh/response", b"ok")
        assert (await future).body == b"ok"

    run(scenario)


def test_a_cancelled_invocation_can_be_replaced_before_the_runtime_answers() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        old, _ = await deliver(api, client, invocation("old"))
        old.cancel()
        new = api.invoke(invocation("new"))
        assert (await client.request("POST", f"{PREFIX}/invocation/old/response", b"x")).status == 400
        event = await client.request("GET", f"{PREFIX}/invocation/next")
        assert event.headers["lambda-runtime-aws-request-id"] == "new"
        await client.request("POST", f"{PREFIX}/invocation/new/response", b"y")
        assert (await new).body == b"y"

    run(scenario)


def test_an_invocation_cancelled_before_delivery_is_never_handed_out() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        api.invoke(invocation("gone")).cancel()
        pending = client.start("GET", f"{PREFIX}/invocation/next")
        assert await api.wait_ready() is None
        assert api._waiter is not None  # parked: nothing to hand out
        future = api.invoke(invocation("real"))
        event = await pending
        assert event.headers["lambda-runtime-aws-request-id"] == "real"
        await client.request("POST", f"{PREFIX}/invocation/real/response", b"1")
        assert (await future).body == b"1"

    run(scenario)


def test_wait_ready_can_be_cancelled_and_waited_again() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        waiter = asyncio.ensure_future(api.wait_ready())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        client = await connect()
        pending = client.start("GET", f"{PREFIX}/invocation/next")
        assert await api.wait_ready() is None
        pending.cancel()

    run(scenario)


def test_close_fails_whatever_still_waits() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        ready = asyncio.ensure_future(api.wait_ready())
        future = api.invoke(invocation())
        await asyncio.sleep(0)
        await api.close()
        with pytest.raises(RuntimeApiClosed):
            await ready
        with pytest.raises(RuntimeApiClosed):
            await future
        with pytest.raises(RuntimeApiClosed):
            api.invoke(invocation("after"))
        assert api.state is RuntimeState.CLOSED

    run(scenario)


@pytest.mark.parametrize(
    "field",
    ["request_id", "function_arn", "trace_id"],
    ids=["request-id", "arn", "trace-id"],
)
def test_header_injection_is_refused(field: str) -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        values = {"request_id": "r", "function_arn": ARN, "trace_id": "Root=1"}
        values[field] = "bad\r\nX-Injected: 1"
        inv = Invocation(values["request_id"], b"{}", 0, values["function_arn"], values["trace_id"])
        with pytest.raises(ValueError, match="CR, LF or NUL"):
            api.invoke(inv)
        api.invoke(invocation())  # nothing was left half-accepted

    run(scenario)


def test_multiline_client_context_json_stays_one_header() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        context = json.dumps({"custom": {"a": "b\nc"}, "env": {}}, indent=2)
        assert "\n" in context
        _, event = await deliver(api, client, invocation(client_context=context))
        assert json.loads(event.headers["lambda-runtime-client-context"]) == json.loads(context)

    run(scenario)


def test_when_parked_fires_once_when_the_runtime_waits_again() -> None:
    """The moment an environment is frozen: the runtime back in /next with nothing to take."""

    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        calls: list[str] = []
        future, _event = await deliver(api, client, invocation("a"))
        api.when_parked(lambda: calls.append("parked"))
        await client.request("POST", f"{PREFIX}/invocation/a/response", b"1")
        await future
        await asyncio.sleep(0.01)
        assert calls == []  # answered, but not asking for more yet
        pending = client.start("GET", f"{PREFIX}/invocation/next")
        for _ in range(100):
            if calls:
                break
            await asyncio.sleep(0.005)
        assert calls == ["parked"]
        api.when_parked(lambda: calls.append("again"))  # already parked: soon
        api.when_parked(None)  # ... unless cancelled first
        await asyncio.sleep(0.01)
        api.when_parked(lambda: calls.append("now"))
        await asyncio.sleep(0.01)
        assert calls == ["parked", "now"]
        api.invoke(invocation("b"))
        assert (await pending).headers["lambda-runtime-aws-request-id"] == "b"

    run(scenario)
