"""Telemetry API and Logs API delivery (runtime/telemetry.py, telemetry_delivery.py) to a real HTTP
listener on loopback: batching, flush, keep-alive, retries, bounded buffers, the events' shapes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.runtime.telemetry import LOGS, TELEMETRY, Telemetry
from lamina.runtime.telemetry_events import (
    DROPPED_REASON,
    Category,
    Span,
    extension_record,
    init_report_record,
    init_runtime_done_record,
    init_start_record,
    report_record,
    runtime_done_record,
    start_record,
    tracing,
)

TRACE = "Root=1-62e900b2-710d76f009d6e7785905449a;Parent=0efbd19962d95b05;Sampled=1"


class Listener:
    """A subscriber's HTTP listener: records every request, answers with the next of ``statuses``
    (200 when none is left); ``silent`` reads nothing and answers nothing."""

    def __init__(self, *, statuses: list[int] | None = None, silent: bool = False) -> None:
        self.requests: asyncio.Queue[tuple[str, str, dict[str, str], bytes]] = asyncio.Queue()
        self.statuses = statuses or []
        self.silent = silent
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Listener:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        if self.silent:
            return
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                request_line, *lines = head.split("\r\n")
                headers = {
                    k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)
                }
                body = await reader.readexactly(int(headers["content-length"]))
                method, target, _ = request_line.split(" ")
                status = self.statuses.pop(0) if self.statuses else 200
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok".encode())
                await writer.drain()
                await self.requests.put((method, target, headers, body))

    async def batch(self) -> list[dict[str, Any]]:
        """The next batch's events."""
        _, _, _, body = await asyncio.wait_for(self.requests.get(), 10)
        events = json.loads(body)
        assert isinstance(events, list)
        return events


def connector() -> Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    """What the environment gives: a connection to 127.0.0.1:<port> (here the host's loopback)."""

    async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port)

    return connect


def subscription(
    port: int, *, api: str = TELEMETRY, types: list[str] | None = None, **buffering: int
) -> bytes:
    schema = "2022-12-13" if api == TELEMETRY else "2021-03-18"
    doc: dict[str, Any] = {
        "schemaVersion": schema,
        "types": types or ["platform", "function", "extension"],
        "buffering": buffering or {"timeoutMs": 30_000},
        "destination": {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{port}/events"},
    }
    return json.dumps(doc).encode()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def test_a_full_batch_goes_at_once_and_the_rest_on_flush_over_one_connection() -> None:
    async def main() -> None:
        async with Listener() as listener:
            telemetry = Telemetry(connector())
            assert telemetry.subscribe(
                TELEMETRY, "agent", subscription(listener.port, types=["function"])
            ) == (200, b'"OK"')
            telemetry.init_done()
            telemetry.function_output(b"".join(b"line %d\n" % i for i in range(1_000)))
            first = await listener.batch()
            assert [e["record"] for e in first] == [f"line {i}\n" for i in range(1_000)]
            assert {e["type"] for e in first} == {"function"}
            telemetry.function_output(b"a\nb\nunfinished")
            assert await telemetry.flush()
            assert [e["record"] for e in await listener.batch()] == ["a\n", "b\n"]
            telemetry.end_output()  # the pipe closed: the unfinished line is a record of its own
            assert await telemetry.flush()
            assert [e["record"] for e in await listener.batch()] == ["unfinished"]
            assert listener.connections == 1
            await telemetry.close()

    run(main)


def test_requests_are_http_posts_of_json_to_the_uri() -> None:
    async def main() -> None:
        async with Listener() as listener:
            telemetry = Telemetry(connector())
            telemetry.subscribe(TELEMETRY, "agent", subscription(listener.port))
            assert await telemetry.flush()
            method, target, headers, body = await asyncio.wait_for(listener.requests.get(), 10)
            assert (method, target, headers["content-type"]) == ("POST", "/events", "application/json")
            assert headers["host"] == f"sandbox.localdomain:{listener.port}"
            assert [e["type"] for e in json.loads(body)] == ["platform.telemetrySubscription"]
            await telemetry.close()

    run(main)


def test_a_batch_goes_when_its_bytes_reach_max_bytes() -> None:
    async def main() -> None:
        async with Listener() as listener:
            telemetry = Telemetry(connector())
            telemetry.subscribe(
                TELEMETRY,
                "agent",
                subscription(listener.port, types=["function"], maxBytes=262_144, timeoutMs=30_000),
            )
            line = b"x" * 10_000 + b"\n"
            telemetry.function_output(line * 30)
            batch = await listener.batch()
            size = sum(len(json.dumps(e, separators=(",", ":"))) for e in batch)
            assert 262_144 <= size < 262_144 + 11_000
            assert len(batch) == 27
            await telemetry.close()

    run(main)


def test_a_batch_goes_when_timeout_ms_has_passed() -> None:
    async def main() -> None:
        async with Listener() as listener:
            telemetry = Telemetry(connector())
            telemetry.subscribe(
                TELEMETRY, "agent", subscription(listener.port, types=["function"], timeoutMs=25)
            )
            telemetry.function_output(b"one line\n")
            assert [e["record"] for e in await listener.batch()] == ["one line\n"]  # no flush, no full buffer
            await telemetry.close()

    run(main)


def test_a_failed_batch_is_retried_until_acknowledged() -> None:
    async def main() -> None:
        async with Listener(statuses=[500, 503]) as listener:
            telemetry = Telemetry(connector())
            telemetry.subscribe(TELEMETRY, "agent", subscription(listener.port, types=["function"]))
            telemetry.function_output(b"important\n")
            assert await telemetry.flush()
            bodies = [(await listener.batch()) for _ in range(3)]
            assert bodies[0] == bodies[1] == bodies[2]
            assert [e["record"] for e in bodies[2]] == ["important\n"]
            await telemetry.close()

    run(main)


def test_a_missing_listener_bounds_memory_and_the_next_batch_says_what_was_dropped() -> None:
    async def main() -> None:
        listener = Listener()
        up = asyncio.Event()

        async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            if not up.is_set():
                raise ConnectionRefusedError(port)  # the extension has not started listening yet
            return await asyncio.open_connection("127.0.0.1", listener.port)

        async with listener:
            telemetry = Telemetry(connect)
            telemetry.subscribe(
                TELEMETRY, "agent", subscription(1234, maxItems=1_000, maxBytes=262_144, timeoutMs=25)
            )
            telemetry.init_done()
            line = b"y" * 1_000 + b"\n"
            for _ in range(100):  # ~10 MB: far more than the buffer holds
                telemetry.function_output(line * 100)
            subscriber = telemetry.subscribers["agent"]
            assert subscriber.pending_bytes <= 2 * 262_144
            assert subscriber.dropped_records > 0
            dropped = subscriber.dropped_records
            dropped_bytes = subscriber.dropped_bytes
            assert not await telemetry.flush(0.2)  # nobody to deliver to: flush gives up, nothing blocks
            up.set()
            assert await telemetry.flush()
            events = []
            while not listener.requests.empty() or not events:
                events += await listener.batch()
            kinds = [e["type"] for e in events]
            assert kinds.count("platform.logsDropped") == 1
            report = next(e for e in events if e["type"] == "platform.logsDropped")["record"]
            assert list(report) == ["reason", "droppedRecords", "droppedBytes"]
            assert report == {
                "reason": DROPPED_REASON,
                "droppedRecords": dropped,
                "droppedBytes": dropped_bytes,
            }
            assert kinds.count("function") + dropped == 10_000 + 0  # every line either delivered or counted
            await telemetry.close()

    run(main)


def test_a_silent_listener_neither_blocks_the_caller_nor_grows_memory() -> None:
    async def main() -> None:
        async with Listener(silent=True) as listener:
            telemetry = Telemetry(connector(), delivery_timeout_s=0.05)
            telemetry.subscribe(
                TELEMETRY, "agent", subscription(listener.port, types=["function"], timeoutMs=25)
            )
            subscriber = telemetry.subscribers["agent"]
            for _ in range(50):
                telemetry.function_output(b"z" * 5_000 + b"\n" * 1 + b"w" * 5_000 + b"\n")
                await asyncio.sleep(0)  # the delivery task runs between writes, and stays stuck
            for _ in range(200):
                telemetry.function_output((b"v" * 1_000 + b"\n") * 10)
            assert subscriber.pending_bytes <= 2 * subscriber.max_bytes
            assert subscriber.dropped_records > 0
            assert not await telemetry.flush(0.2)
            assert listener.connections >= 1
            await telemetry.close()

    run(main)


def test_events_before_a_subscription_during_init_are_delivered_to_it() -> None:
    async def main() -> None:
        async with Listener() as listener:
            telemetry = Telemetry(connector())
            telemetry.emit(
                "platform.initStart",
                init_start_record(
                    runtime_version="python:3.12.v1", function_name="f", function_version="$LATEST"
                ),
            )
            telemetry.function_output(b"importing\n")
            telemetry.subscribe(TELEMETRY, "agent", subscription(listener.port))
            telemetry.init_done()
            assert await telemetry.flush()
            events = await listener.batch()
            assert [e["type"] for e in events] == [
                "platform.initStart",
                "function",
                "platform.telemetrySubscription",
            ]
            assert events[0]["record"] == {
                "initializationType": "on-demand",
                "phase": "init",
                "runtimeVersion": "python:3.12.v1",
                "functionName": "f",
                "functionVersion": "$LATEST",
            }
            assert events[2]["record"] == {
                "name": "agent",
                "state": "Subscribed",
                "types": ["platform", "function", "extension"],
            }
            assert events[0]["time"].endswith("Z") and len(events[0]["time"]) == len(
                "2022-10-12T00:00:15.064Z"
            )
            await telemetry.close()

    run(main)


def _platform_events(telemetry: Telemetry) -> None:
    start = 1_700_000_000.0
    spans = [Span("responseLatency", start, 1.5), Span("responseDuration", start + 0.0015, 0.25)]
    trace = tracing(TRACE, "54565fb41ac79632")
    telemetry.emit("platform.initRuntimeDone", init_runtime_done_record("success"))
    telemetry.emit("platform.initReport", init_report_record(12.345, "success"))
    telemetry.emit("platform.extension", extension_record("agent", "Ready", ["INVOKE", "SHUTDOWN"]))
    telemetry.emit("platform.start", start_record("r1", "$LATEST", trace=trace))
    telemetry.function_output(b"hello\n")
    telemetry.extension_output(b"from the agent\n")
    telemetry.emit(
        "platform.runtimeDone", runtime_done_record("r1", "success", 2.5, 17, spans=spans, trace=trace)
    )
    telemetry.emit("platform.report", report_record("r1", 3.21, 128, 40, init_ms=100.5, trace=trace))


def test_telemetry_api_records_have_aws_field_names_in_order() -> None:
    async def main() -> None:
        async with Listener() as listener:
            telemetry = Telemetry(connector())
            telemetry.subscribe(TELEMETRY, "agent", subscription(listener.port))
            _platform_events(telemetry)
            assert await telemetry.flush()
            events = {e["type"]: e for e in await listener.batch()}
            assert list(events) == [
                "platform.telemetrySubscription",
                "platform.initRuntimeDone",
                "platform.initReport",
                "platform.extension",
                "platform.start",
                "function",
                "extension",
                "platform.runtimeDone",
                "platform.report",
            ]
            assert list(events["platform.initRuntimeDone"]["record"]) == [
                "initializationType",
                "phase",
                "status",
            ]
            assert events["platform.initReport"]["record"] == {
                "initializationType": "on-demand",
                "phase": "init",
                "status": "success",
                "metrics": {"durationMs": 12.35},
            }
            assert events["platform.extension"]["record"] == {
                "name": "agent",
                "state": "Ready",
                "events": ["INVOKE", "SHUTDOWN"],
            }
            assert list(events["platform.start"]["record"]) == ["requestId", "version", "tracing"]
            assert events["platform.start"]["record"]["tracing"] == {
                "spanId": "54565fb41ac79632",
                "type": "X-Amzn-Trace-Id",
                "value": TRACE,
            }
            done = events["platform.runtimeDone"]["record"]
            assert list(done) == ["requestId", "status", "tracing", "spans", "metrics"]
            assert done["metrics"] == {"durationMs": 2.5, "producedBytes": 17}
            assert done["spans"] == [
                {"name": "responseLatency", "start": "2023-11-14T22:13:20.000Z", "durationMs": 1.5},
                {"name": "responseDuration", "start": "2023-11-14T22:13:20.001Z", "durationMs": 0.25},
            ]
            report = events["platform.report"]["record"]
            assert list(report) == ["requestId", "metrics", "tracing", "status"]
            assert list(report["metrics"]) == [
                "durationMs",
                "billedDurationMs",
                "memorySizeMB",
                "maxMemoryUsedMB",
                "initDurationMs",
            ]
            assert report["metrics"]["billedDurationMs"] == 4
            assert events["function"]["record"] == "hello\n"  # as AWS sends it: with its newline
            assert events["extension"]["record"] == "from the agent\n"
            await telemetry.close()

    run(main)


def test_logs_api_subscribers_get_the_2020_08_15_shapes() -> None:
    async def main() -> None:
        async with Listener() as new, Listener() as old:
            telemetry = Telemetry(connector())
            assert telemetry.subscribe(
                LOGS, "new", subscription(new.port, api=LOGS, types=["platform", "function"])
            ) == (200, b'"OK"')
            body = json.loads(subscription(old.port, api=LOGS, types=["platform", "function"]))
            body["schemaVersion"] = "2020-08-15"
            assert telemetry.subscribe(LOGS, "old", json.dumps(body).encode()) == (200, b'"OK"')
            _platform_events(telemetry)
            assert await telemetry.flush()
            events = await new.batch()
            assert [(e["type"], e["record"]) for e in events] == [
                (
                    "platform.logsSubscription",
                    {"name": "new", "state": "Subscribed", "types": ["platform", "function"]},
                ),
                (
                    "platform.logsSubscription",
                    {"name": "old", "state": "Subscribed", "types": ["platform", "function"]},
                ),
                ("platform.extension", {"name": "agent", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]}),
                ("platform.start", {"requestId": "r1", "version": "$LATEST"}),
                ("function", "hello\n"),
                ("platform.runtimeDone", {"requestId": "r1", "status": "success"}),
                ("platform.end", {"requestId": "r1"}),
                (
                    "platform.report",
                    {
                        "requestId": "r1",
                        "metrics": {
                            "durationMs": 3.21,
                            "billedDurationMs": 4,
                            "memorySizeMB": 128,
                            "maxMemoryUsedMB": 40,
                            "initDurationMs": 100.5,
                        },
                    },
                ),
            ]
            older = [e["type"] for e in await old.batch()]
            assert "platform.runtimeDone" not in older and "platform.end" in older
            await telemetry.close()

    run(main)


def test_json_log_format_lines_are_objects_and_other_lines_strings() -> None:
    async def main() -> None:
        async with Listener() as listener:
            telemetry = Telemetry(connector(), function_json=True)
            telemetry.subscribe(TELEMETRY, "agent", subscription(listener.port, types=["function"]))
            telemetry.function_output(
                b'{"level":"INFO","message":"hi","requestId":"r1"}\nplain text\n[1, 2]\n{"broken"\n'
            )
            telemetry.function_output(b'{"lone":"\\ud800"}\n')  # a lone surrogate stays a JSON escape
            assert await telemetry.flush()
            records = [e["record"] for e in await listener.batch()]
            assert records == [
                {"level": "INFO", "message": "hi", "requestId": "r1"},
                "plain text\n",
                "[1, 2]\n",
                '{"broken"\n',
                {"lone": "\ud800"},
            ]
            await telemetry.close()

    run(main)


def test_tcp_destinations_get_newline_delimited_json() -> None:
    async def main() -> None:
        lines: asyncio.Queue[bytes] = asyncio.Queue()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    await lines.put(await reader.readuntil(b"\n"))
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        telemetry = Telemetry(connector())
        doc = {
            "schemaVersion": "2022-07-01",
            "types": ["function"],
            "destination": {"protocol": "TCP", "port": port},
        }
        assert telemetry.subscribe(TELEMETRY, "agent", json.dumps(doc).encode()) == (200, b'"OK"')
        telemetry.function_output(b"first\nsecond\n")
        assert await telemetry.flush()
        got = [json.loads(await asyncio.wait_for(lines.get(), 10))["record"] for _ in range(2)]
        assert got == ["first\n", "second\n"]
        await telemetry.close()
        server.close()
        await server.wait_closed()

    run(main)


def test_nothing_is_split_or_kept_for_streams_nobody_wants() -> None:
    async def main() -> None:
        async with Listener() as listener:
            telemetry = Telemetry(connector())
            telemetry.subscribe(TELEMETRY, "agent", subscription(listener.port, types=["platform"]))
            telemetry.init_done()
            assert not telemetry.wants(Category.FUNCTION)
            telemetry.function_output(b"ignored\n" * 1000)
            assert await telemetry.flush()
            assert [e["type"] for e in await listener.batch()] == ["platform.telemetrySubscription"]
            await telemetry.close()

    run(main)


def test_a_suspended_environment_delivers_nothing_until_resumed() -> None:
    async def main() -> None:
        async with Listener() as listener:
            telemetry = Telemetry(connector())
            telemetry.subscribe(TELEMETRY, "agent", subscription(listener.port, types=["function"]))
            telemetry.suspend()  # frozen: its listener could not answer
            telemetry.function_output(b"while frozen\n")
            assert not await telemetry.flush(0.2)
            assert listener.requests.empty()
            telemetry.resume()
            assert await telemetry.flush()
            assert [e["record"] for e in await listener.batch()] == ["while frozen\n"]
            await telemetry.close()

    run(main)


def test_the_same_subscription_again_is_already_subscribed() -> None:
    async def main() -> None:
        async with Listener() as listener:
            telemetry = Telemetry(connector())
            body = subscription(listener.port, types=["platform"])
            assert telemetry.subscribe(TELEMETRY, "agent", body) == (200, b'"OK"')
            assert telemetry.subscribe(TELEMETRY, "agent", body) == (200, b'"AlreadySubscribed"')
            assert await telemetry.flush()
            states = [e["record"]["state"] for e in await listener.batch()]
            assert states == ["Subscribed", "Already subscribed"]
            await telemetry.close()

    run(main)
