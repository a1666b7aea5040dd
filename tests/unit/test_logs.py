"""Unit tests for lamina.runtime.logs: the log store's writer thread keeps order and loses nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lamina.runtime.logs import LogStore

ACCOUNT, REGION = "000000000000", "us-east-1"


def _read(store: LogStore, function: str) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in store.streams(ACCOUNT, REGION, function)}


def test_close_writes_everything_in_order(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.start()
    expected: dict[str, bytearray] = {
        "2026/01/01/[$LATEST]a": bytearray(),
        "2026/01/01/[$LATEST]b": bytearray(),
    }
    for i in range(2000):
        stream = sorted(expected)[i % 3 % 2]
        line = f"line {i}\n".encode()
        store.append(ACCOUNT, REGION, "fn", stream, line)
        expected[stream] += line
    store.close()
    assert _read(store, "fn") == {k: bytes(v) for k, v in expected.items()}


def test_streams_sees_what_was_appended(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.start()
    try:
        store.append(ACCOUNT, REGION, "fn", "s/1", b"START\n")
        store.append(ACCOUNT, REGION, "fn", "s/1", b"END\n")
        # No close: streams() waits for the writer itself.
        assert _read(store, "fn") == {"s/1": b"START\nEND\n"}
    finally:
        store.close()


def test_appends_from_several_threads_all_land(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.start()

    def writer(n: int) -> None:
        for i in range(200):
            store.append(ACCOUNT, REGION, "fn", f"s/{n}", f"{n}:{i}\n".encode())

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    logs = _read(store, "fn")
    assert logs == {f"s/{n}": "".join(f"{n}:{i}\n" for i in range(200)).encode() for n in range(4)}


def test_without_writer_appends_are_written_at_once(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.append(ACCOUNT, REGION, "fn", "s/1", b"before\n")
    path = tmp_path / ACCOUNT / REGION / "fn" / "s%2F1.log"
    assert path.read_bytes() == b"before\n"
    store.start()
    store.close()
    store.close()  # idempotent
    store.append(ACCOUNT, REGION, "fn", "s/1", b"after\n")
    assert path.read_bytes() == b"before\nafter\n"
    store.flush()  # no writer: nothing to wait for


def test_start_twice_is_refused(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            store.start()
    finally:
        store.close()


def test_a_failed_write_does_not_stop_the_writer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "blocked").write_text("a file where an account directory would go")
    store = LogStore(tmp_path)
    store.start()
    store.append("blocked", REGION, "fn", "s/1", b"lost\n")
    store.append(ACCOUNT, REGION, "fn", "s/1", b"kept\n")
    store.close()
    assert _read(store, "fn") == {"s/1": b"kept\n"}
    assert "cannot write the log" in caplog.text


def test_a_flood_is_capped_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A function printing faster than the disk takes it cannot grow the server's memory."""
    store = LogStore(tmp_path, write_interval_s=60.0, max_pending_bytes=1000)  # the writer waits
    store.start()
    for _ in range(50):
        store.append(ACCOUNT, REGION, "fn", "s", b"x" * 100)
    store.flush()
    written = _read(store, "fn")["s"]
    assert len(written) == 1000  # the first ten chunks; the other forty were refused
    store.append(ACCOUNT, REGION, "fn", "s", b"after\n")  # room again once written
    store.close()
    assert _read(store, "fn")["s"].endswith(b"after\n")
    assert "4000 bytes dropped" in caplog.text
