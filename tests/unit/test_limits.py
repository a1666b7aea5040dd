"""Limits per tenant: the token buckets, the relay's connection cap, the descriptor limit and the
accept-failure log filter."""

from __future__ import annotations

import asyncio
import logging
import resource
import socket

import pytest

from lamina.api import ratelimit
from lamina.api.ratelimit import OFF, RateLimit, RateLimiter
from lamina.linux.fdlimit import (
    ACCEPT_FAILURE,
    AcceptFailureFilter,
    install_accept_failure_filter,
    raise_nofile_limit,
)
from lamina.runtime.proxy import EndpointRelay


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "expected"),
    [("100/1000", RateLimit(100.0, 1000)), ("5", RateLimit(5.0, 10)), ("0.5/3", RateLimit(0.5, 3))],
)
def test_parse(text: str, expected: RateLimit) -> None:
    assert RateLimit.parse(text) == expected
    assert RateLimit.parse(str(expected)) == expected


@pytest.mark.parametrize("text", ["off", "OFF", "0"])
def test_off(text: str) -> None:
    assert RateLimit.parse(text) is OFF
    assert not OFF.enabled
    assert str(OFF) == "off"


@pytest.mark.parametrize("text", ["fast", "-1", "10/0", "10/x", "inf", "nan", "1/2/3"])
def test_bad_values(text: str) -> None:
    with pytest.raises(ValueError, match="RATE"):
        RateLimit.parse(text)


def test_bucket_drains_and_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(2.0, 3), clock)
    assert [limiter.admit("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.admit("b")  # another principal has its own bucket
    clock.now += 0.4  # 0.8 token: still empty
    assert not limiter.admit("a")
    clock.now += 0.2  # the refill while refused counts: 0.8 + 0.4 = 1.2
    assert limiter.admit("a")
    assert not limiter.admit("a")
    clock.now += 100  # never more than the burst
    assert [limiter.admit("a") for _ in range(4)] == [True, True, True, False]


def test_buckets_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_BUCKETS", 10)
    clock = Clock()
    limiter = RateLimiter(RateLimit(1.0, 2), clock)
    for i in range(10):
        limiter.admit(f"p{i}")
    clock.now += 5  # all refilled: forgotten when room is needed, at no cost to anyone
    limiter.admit("new")
    assert len(limiter._buckets) == 1
    for i in range(30):  # all busy: the oldest half goes
        limiter.admit(f"q{i}")
        assert len(limiter._buckets) <= 10


def test_raise_nofile_limit() -> None:
    soft, hard = raise_nofile_limit()
    assert soft == hard == resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def record(msg: str, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, None, exc_info)


def test_accept_failures_logged_at_most_once_a_second() -> None:
    clock = Clock()
    f = AcceptFailureFilter(1.0, clock)
    emfile = OSError(24, "Too many open files")
    first = record(f"{ACCEPT_FAILURE}\nexception: {emfile!r}", emfile)
    assert f.filter(first)
    assert first.exc_info is None
    assert (
        first.getMessage()
        == f"{ACCEPT_FAILURE} ([Errno 24] Too many open files); 0 more like it held back since the last report"
    )
    assert [f.filter(record(ACCEPT_FAILURE, emfile)) for _ in range(500)] == [False] * 500
    assert f.filter(record("something else"))  # other records pass
    clock.now += 1.0
    again = record(ACCEPT_FAILURE, emfile)
    assert f.filter(again)
    assert "500 more like it" in again.getMessage()


def test_filter_installed_once() -> None:
    a = install_accept_failure_filter("lamina-test-accept")
    assert install_accept_failure_filter("lamina-test-accept") is a
    assert logging.getLogger("lamina-test-accept").filters == [a]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _relay_cap() -> None:
    upstream = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.setblocking(False)
    relay_port = listener.getsockname()[1]
    relay = EndpointRelay(listener, port, max_connections=3)
    await relay.start()

    async def roundtrip(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bytes:
        try:
            w.write(b"ping")
            await w.drain()
            return await asyncio.wait_for(r.read(4), 5)
        except ConnectionError:
            return b""

    held = [await asyncio.open_connection("127.0.0.1", relay_port) for _ in range(3)]
    assert [await roundtrip(*c) for c in held] == [b"ping"] * 3
    assert relay.open_connections == 3

    async def refused() -> bool:
        # Reset at once: the connect itself may already see it, else the first read does.
        try:
            r, w = await asyncio.open_connection("127.0.0.1", relay_port)
        except ConnectionError:
            return True
        answer = await roundtrip(r, w)
        w.close()
        return answer == b""

    assert [await refused() for _ in range(20)] == [True] * 20
    assert relay.refused == 20
    for _, w in held:
        w.close()
    for _ in range(100):
        if relay.open_connections == 0:
            break
        await asyncio.sleep(0.01)
    assert relay.open_connections == 0
    r, w = await asyncio.open_connection("127.0.0.1", relay_port)  # room again
    assert await roundtrip(r, w) == b"ping"
    w.close()
    await relay.close()
    upstream.close()
    await upstream.wait_closed()


def test_relay_caps_connections() -> None:
    asyncio.run(_relay_cap())
