"""``lamina logs``'s pure parts: ``--since`` and how events print."""

from __future__ import annotations

import io

import pytest

from lamina.cli.logs import Printer, parse_since

NOW = 1_800_000_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("30s", NOW - 30_000, id="seconds"),
        pytest.param("5m", NOW - 300_000, id="minutes"),
        pytest.param("2h", NOW - 7_200_000, id="hours"),
        pytest.param("1d", NOW - 86_400_000, id="days"),
        pytest.param("1w", NOW - 7 * 86_400_000, id="weeks"),
        pytest.param("2026-01-02T03:04:05Z", 1_767_323_045_000, id="iso-utc"),
        pytest.param("2026-01-02T03:04:05", 1_767_323_045_000, id="iso-naive-is-utc"),
        pytest.param("2026-01-02T04:04:05+01:00", 1_767_323_045_000, id="iso-offset"),
    ],
)
def test_since(text: str, expected: int) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "5x", "-5m", "m5"])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="--since: not a duration"):
        parse_since(text, NOW)


def test_printer_heads_each_run_of_a_stream() -> None:
    out = io.BytesIO()
    printer = Printer(out)
    for stream, message in (("a", "one\n"), ("a", "two"), ("b", "three\n"), ("a", "four\n")):
        printer.write({"logStreamName": stream, "message": message})
    assert out.getvalue() == b"== a\none\ntwo\n== b\nthree\n== a\nfour\n"
    assert printer.printed == 4
