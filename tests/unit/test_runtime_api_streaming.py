"""The Runtime API's streaming response mode, driven by a raw HTTP/1.1 client over loopback: each
chunk reaches the invocation's stream as it arrives, trailers carry a mid-stream error, a stream
without a reader (Invoke) is buffered like any response, backpressure pauses the runtime."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from test_runtime_api import PREFIX, Client, Connect, deliver, invocation, request_bytes, run

from lamina.runtime import runtime_wire
from lamina.runtime.runtime_api import InvocationResult, ResultKind, RuntimeApi
from lamina.runtime.streaming import ResponseStream

STREAMING = {"Transfer-Encoding": "chunked", "Lambda-Runtime-Function-Response-Mode": "streaming"}


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def open_stream(client: Client, request_id: str, headers: dict[str, str] | None = None) -> None:
    await client.send(
        request_bytes(
            "POST", f"{PREFIX}/invocation/{request_id}/response", headers={**STREAMING, **(headers or {})}
        )
    )


def test_chunks_reach_the_stream_as_they_arrive() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        stream = ResponseStream()
        future, _ = await deliver(api, client, invocation(stream=stream))
        await open_stream(client, "req-1", {"Content-Type": "text/plain"})
        await client.send(chunk(b"first"))
        await asyncio.wait_for(stream.opened(), 5)
        assert stream.streaming and stream.content_type == "text/plain"
        assert await stream.next_chunk() == b"first"
        assert not future.done()  # the runtime has not finished: the first chunk came before
        await client.send(chunk(b"second"))
        assert await stream.next_chunk() == b"second"
        await client.send(b"0\r\n\r\n")
        assert (await client.response()).status == 202
        assert await future == InvocationResult(ResultKind.RESPONSE, b"", streamed=True)
        stream.close()
        assert await stream.next_chunk() is None

    run(scenario)


def test_an_error_in_the_trailers_ends_the_stream() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        stream = ResponseStream()
        future, _ = await deliver(api, client, invocation(stream=stream))
        await open_stream(
            client,
            "req-1",
            {"Trailer": "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"},
        )
        error = json.dumps({"errorType": "Boom", "errorMessage": "half way"}).encode()
        await client.send(
            chunk(b"partial")
            + b"0\r\nLambda-Runtime-Function-Error-Type: Runtime.Boom\r\n"
            + b"Lambda-Runtime-Function-Error-Body: "
            + base64.b64encode(error)
            + b"\r\n\r\n"
        )
        assert (await client.response()).status == 202
        assert await future == InvocationResult(ResultKind.ERROR, error, "Runtime.Boom", streamed=True)
        assert await stream.next_chunk() == b"partial"

    run(scenario)


def test_a_streamed_response_without_a_reader_is_buffered() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        future, _ = await deliver(api, client, invocation())
        await open_stream(client, "req-1")
        await client.send(chunk(b"a") + chunk(b"b") + b"0\r\n\r\n")
        assert (await client.response()).status == 202
        assert await future == InvocationResult(ResultKind.RESPONSE, b"ab")

    run(scenario)


def test_a_buffered_response_leaves_the_stream_unopened() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        stream = ResponseStream()
        future, _ = await deliver(api, client, invocation(stream=stream))
        await client.request("POST", f"{PREFIX}/invocation/req-1/response", b'"whole"')
        assert await future == InvocationResult(ResultKind.RESPONSE, b'"whole"')
        assert not stream.streaming

    run(scenario)


def test_a_stream_for_another_request_id_is_400_and_streams_nothing() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        stream = ResponseStream()
        future, _ = await deliver(api, client, invocation(stream=stream))
        await open_stream(client, "other")
        await client.send(chunk(b"x") + b"0\r\n\r\n")
        assert (await client.response()).status == 400
        assert not stream.streaming and not future.done()

    run(scenario)


def test_a_slow_reader_pauses_the_runtime_until_it_catches_up() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        stream = ResponseStream(high_water=64 * 1024)
        future, _ = await deliver(api, client, invocation(stream=stream))
        await open_stream(client, "req-1")
        piece = b"z" * 32 * 1024
        total = 0
        for _ in range(8):
            await client.send(chunk(piece))
        await client.send(b"0\r\n\r\n")
        await asyncio.wait_for(stream.opened(), 5)
        while total < 8 * len(piece):
            data = await asyncio.wait_for(stream.next_chunk(), 5)
            assert data is not None
            total += len(data)
        assert (await client.response()).status == 202
        assert (await future).streamed

    run(scenario)


# -- ResponseStream on its own


def test_the_stream_pauses_past_its_high_water_and_resumes_at_half() -> None:
    async def main() -> None:
        calls: list[str] = []
        stream = ResponseStream(high_water=10)
        stream.open(None, lambda: calls.append("pause"), lambda: calls.append("resume"))
        stream.write(b"12345")
        stream.write(b"678901")
        assert calls == ["pause"]
        assert await stream.next_chunk() == b"12345678901"
        assert calls == ["pause", "resume"]
        stream.close()
        assert await stream.next_chunk() is None

    asyncio.run(main())


def test_an_abandoned_stream_drops_what_comes_and_resumes_the_runtime() -> None:
    async def main() -> None:
        calls: list[str] = []
        stream = ResponseStream(high_water=4)
        stream.open(None, lambda: calls.append("pause"), lambda: calls.append("resume"))
        stream.write(b"123456")
        stream.abandon()
        stream.write(b"more")
        assert calls == ["pause", "resume"]
        stream.close()
        assert await stream.next_chunk() is None

    asyncio.run(main())


def test_a_waiting_reader_is_woken_by_a_write_and_by_close() -> None:
    async def main() -> None:
        stream = ResponseStream()
        reader = asyncio.ensure_future(stream.next_chunk())
        await asyncio.sleep(0)
        stream.write(b"x")
        assert await reader == b"x"
        reader = asyncio.ensure_future(stream.next_chunk())
        await asyncio.sleep(0)
        stream.close()
        assert await reader is None
        await asyncio.wait_for(stream.opened(), 1)  # closed without streaming: opened() returns too
        assert not stream.streaming

    asyncio.run(main())


def test_a_stream_over_its_limit_is_413_and_the_invocation_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_wire, "MAX_STREAMED_BYTES", 10)

    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        client = await connect()
        stream = ResponseStream()
        future, _ = await deliver(api, client, invocation(stream=stream))
        await open_stream(client, "req-1")
        await client.send(chunk(b"0123456789") + chunk(b"x") + b"0\r\n\r\n")
        assert (await client.response()).status == 413
        result = await future
        assert (result.kind, result.error_type) == (ResultKind.ERROR, "Function.ResponseSizeTooLarge")
        assert await stream.next_chunk() == b"0123456789"  # what fitted went out

    run(scenario)
