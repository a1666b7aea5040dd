"""Two sources sharing one log stream: whole lines only, whatever the chunks."""

from __future__ import annotations

import asyncio

import pytest

from lamina.runtime.environment_output import LineGate, sandbox_connector
from lamina.runtime.logs import MAX_EVENT_BYTES


def test_a_gate_writes_whole_lines_and_keeps_the_unfinished_one() -> None:
    written: list[bytes] = []
    gate = LineGate(written.append)
    gate.feed(b"ab")
    gate.feed(b"c\nde")
    gate.feed(b"f\ng\nh")
    assert written == [b"abc\n", b"def\ng\n"]
    gate.flush()
    assert written[-1] == b"h\n"
    gate.flush()
    assert len(written) == 3


def test_two_gates_never_glue_partial_lines() -> None:
    stream = bytearray()
    function, extension = LineGate(stream.extend), LineGate(stream.extend)
    function.feed(b"function sa")
    extension.feed(b"extension sa")
    function.feed(b"ys hi\n")
    extension.feed(b"ys hello\nmore")
    function.flush()
    extension.flush()
    assert bytes(stream).splitlines() == [b"function says hi", b"extension says hello", b"more"]


def test_an_endless_line_goes_once_it_fills_an_event() -> None:
    written: list[bytes] = []
    gate = LineGate(written.append)
    for _ in range(MAX_EVENT_BYTES // 1000 + 1):
        gate.feed(b"x" * 1000)
    assert len(written) == 1 and len(written[0]) >= MAX_EVENT_BYTES


@pytest.mark.parametrize("port", [9001, 8080, 0, 70_000])
def test_the_connector_never_connects_without_a_namespace_or_to_a_refused_port(port: int) -> None:
    connect = sandbox_connector(lambda: None, refused=(9001, 8080))
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(connect(port))  # type: ignore[arg-type]
