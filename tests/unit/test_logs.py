"""Unit tests for lamina.runtime.logs: how output becomes events, and how streams are named."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from lamina.runtime.logs import MAX_EVENT_BYTES, DiscardLogs, EventSplitter, group_name, stream_name

NOW = dt.datetime(2026, 3, 7, 23, 59, tzinfo=dt.UTC)


def test_every_line_is_an_event_with_its_newline() -> None:
    s = EventSplitter()
    assert s.feed(b"one\ntwo\nthr") == ["one\n", "two\n"]
    assert s.pending == 3
    assert s.feed(b"ee\n\nfour") == [
        "three\n",
        "\n",
    ]
    assert s.flush() == ["four"]
    assert s.flush() == []


def test_json_lines_are_records_without_newline_and_empty_ones_go() -> None:
    s = EventSplitter(json=True)
    assert s.feed(b'{"a":1}\n\n{"b"') == ['{"a":1}']
    assert s.feed(b":2}\n") == ['{"b":2}']
    assert s.flush() == []


@pytest.mark.parametrize("chunk", [1 << 16, 7, MAX_EVENT_BYTES + 5], ids=["pipe-reads", "tiny", "huge"])
def test_a_line_past_the_event_size_is_split_never_dropped(chunk: int) -> None:
    line = b"x" * (2 * MAX_EVENT_BYTES + 10) + b"\n"
    data = line + b"short\n"
    s = EventSplitter()
    out: list[str] = []
    for i in range(0, len(data), chunk):
        out += s.feed(data[i : i + chunk])
    assert [len(m) for m in out] == [MAX_EVENT_BYTES, MAX_EVENT_BYTES, 11, 6]
    assert "".join(out).encode() == data


def test_a_split_never_cuts_a_character() -> None:
    data = ("x" * (MAX_EVENT_BYTES - 1) + "é" + "y\n").encode()  # é's 2 bytes straddle the limit
    out = EventSplitter().feed(data)
    assert len(out) == 2 and out[0] == "x" * (MAX_EVENT_BYTES - 1) and out[1] == "éy\n"
    assert all(len(m.encode()) <= MAX_EVENT_BYTES for m in out)


def test_bytes_that_are_not_utf8_are_replaced() -> None:
    assert EventSplitter().feed(b"\xff\xfeok\n") == ["\ufffd\ufffdok\n"]


def test_stream_names_are_lambdas() -> None:
    assert re.fullmatch(r"2026/03/07/\[\$LATEST\][0-9a-f]{32}", stream_name("fn", "$LATEST", NOW))
    custom = stream_name("fn", "3", NOW, custom_group=True)
    assert re.fullmatch(r"2026/03/07/fn\[3\][0-9a-f]{32}", custom)
    assert stream_name("fn", "1", NOW) != stream_name("fn", "1", NOW)


def test_group_names() -> None:
    assert group_name("fn", None) == "/aws/lambda/fn"
    assert group_name("fn", {"LogFormat": "Text", "LogGroup": "/aws/lambda/fn"}) == "/aws/lambda/fn"
    assert group_name("fn", {"LogGroup": "shared"}) == "shared"


def test_discarding_sink_is_never_behind() -> None:
    sink = DiscardLogs()
    called: list[int] = []
    sink.when_drained(lambda: called.append(1))
    assert not sink.behind and called == [1]
