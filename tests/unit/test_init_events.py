"""lamina-init's report lines as events, and the listing of a function's external extensions."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest

from lamina.runtime.extension_files import (
    MAX_ENTRIES,
    ExtensionListingError,
    extension_environment,
    external_extensions,
)
from lamina.runtime.init_events import (
    ExtensionExited,
    ExtensionLaunchFailed,
    ExtensionStarted,
    ReportParser,
    RuntimeExited,
    RuntimeLaunchFailed,
    RuntimeStarted,
    launch_error_message,
)

PATHS = ("/opt/extensions/a", "/opt/extensions/b")


def _parser() -> ReportParser:
    return ReportParser(PATHS, "/var/runtime/bootstrap")


def test_a_whole_report() -> None:
    data = b"S 0 5\nF 1 13\nR 7\nX 0 256\nE 9\n"  # 256: exit 1; 9: killed by SIGKILL
    assert _parser().feed(data) == [
        ExtensionStarted(0, "a", "/opt/extensions/a", 5),
        ExtensionLaunchFailed(
            1, "b", "/opt/extensions/b", errno.EACCES, "fork/exec /opt/extensions/b: permission denied"
        ),
        RuntimeStarted(7),
        ExtensionExited(0, "a", "/opt/extensions/a", 1),
        RuntimeExited(-signal.SIGKILL),
    ]


def test_lines_split_across_reads() -> None:
    parser = _parser()
    assert parser.feed(b"S 0") == []
    assert parser.feed(b" 5\nR") == [ExtensionStarted(0, "a", "/opt/extensions/a", 5)]
    assert parser.feed(b" 8\nL") == [RuntimeStarted(8)]


def test_runtime_launch_failure() -> None:
    assert _parser().feed(b"L 2\n") == [
        RuntimeLaunchFailed(errno.ENOENT, "fork/exec /var/runtime/bootstrap: no such file or directory")
    ]


GARBAGE = {
    "unknown-kind": b"Z 0 1\n",
    "index-out-of-range": b"S 2 5\n",
    "negative": b"S 0 -5\n",
    "not-a-number": b"S 0 x\n",
    "too-many-fields": b"S 0 5 6\n",
    "exit-before-start": b"X 0 0\n",
    "runtime-exit-before-start": b"E 0\n",
    "stopped-status": b"R 3\nE 4991\n",  # WIFSTOPPED: not an exit
    "status-too-large": b"R 3\nE 70000\n",
    "huge-number": b"S 0 99999999999999999999\n",
    "empty": b"\n\n",
}


@pytest.mark.parametrize("data", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_is_dropped(data: bytes) -> None:
    events = _parser().feed(data)
    assert all(isinstance(e, RuntimeStarted) for e in events)


def test_duplicates_and_order_are_enforced() -> None:
    parser = _parser()
    assert len(parser.feed(b"S 0 5\nS 0 6\nF 0 2\nX 0 0\nX 0 0\nS 0 7\n")) == 2  # started, exited
    assert len(parser.feed(b"R 3\nR 4\nL 2\nE 0\nE 0\n")) == 2


def test_an_overlong_line_is_discarded_whole() -> None:
    parser = _parser()
    assert parser.feed(b"S 0 " + b"1" * 100) == []
    assert parser.feed(b"2\nS 0 5\n") == [ExtensionStarted(0, "a", "/opt/extensions/a", 5)]


MESSAGES = {
    "eacces": (errno.EACCES, "fork/exec /x: permission denied"),
    "enoent": (errno.ENOENT, "fork/exec /x: no such file or directory"),
    "enoexec": (errno.ENOEXEC, "fork/exec /x: exec format error"),
    "eagain": (errno.EAGAIN, "fork/exec /x: resource temporarily unavailable"),
    "unknown": (4000, "fork/exec /x: errno 4000"),
}


@pytest.mark.parametrize(("err", "message"), MESSAGES.values(), ids=MESSAGES.keys())
def test_launch_messages_read_as_gos(err: int, message: str) -> None:
    assert launch_error_message("/x", err) == message


# --- the listing ----------------------------------------------------------------------------


def _layer(base: Path, name: str, files: dict[str, str]) -> Path:
    root = base / name
    (root / "extensions").mkdir(parents=True)
    for rel, kind in files.items():
        path = root / "extensions" / rel
        if kind == "dir":
            path.mkdir()
        elif kind.startswith("->"):
            path.symlink_to(kind[2:])
        else:
            path.write_text("#!/bin/sh\n")
            path.chmod(int(kind, 8))
    return root


def test_listing_merges_layers_later_wins_sorted(tmp_path: Path) -> None:
    first = _layer(tmp_path, "first", {"zeta": "755", "shadowed": "755", "dir": "dir", "alpha": "644"})
    second = _layer(tmp_path, "second", {"beta": "755", "shadowed": "dir", "dir": "755", "link": "->/bin/sh"})
    no_extensions = tmp_path / "third"
    no_extensions.mkdir()
    assert external_extensions((first, second, no_extensions)) == tuple(
        f"/opt/extensions/{n}" for n in ("alpha", "beta", "dir", "link", "zeta")
    )
    # Reversed: the first layer's directory "dir" wins, its file "shadowed" too.
    assert external_extensions((second, first)) == tuple(
        f"/opt/extensions/{n}" for n in ("alpha", "beta", "link", "shadowed", "zeta")
    )


def test_listing_is_bytewise_sorted(tmp_path: Path) -> None:
    layer = _layer(tmp_path, "l", {"B": "755", "a": "755", "_x": "755", "é": "755"})
    assert [p.rsplit("/", 1)[1] for p in external_extensions((layer,))] == ["B", "_x", "a", "é"]


def test_a_non_directory_extensions_hides_earlier_layers(tmp_path: Path) -> None:
    first = _layer(tmp_path, "first", {"a": "755"})
    second = tmp_path / "second"
    second.mkdir()
    (second / "extensions").symlink_to(first / "extensions")
    assert external_extensions((first, second)) == ()
    assert external_extensions((second, first)) == ("/opt/extensions/a",)


def test_no_layers_no_extensions() -> None:
    assert external_extensions(()) == ()


def test_a_hostile_number_of_entries_is_refused(tmp_path: Path) -> None:
    layer = _layer(tmp_path, "many", {})
    for i in range(MAX_ENTRIES + 1):
        os.mknod(layer / "extensions" / f"e{i}")
    with pytest.raises(ExtensionListingError, match="more than"):
        external_extensions((layer,))


def test_extension_environment_is_rapids_agent_env() -> None:
    runtime_env = {
        "PATH": "/usr/bin",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "k",
        "_HANDLER": "app.handler",
        "_X_AMZN_TRACE_ID": "t",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/f",
        "AWS_LAMBDA_LOG_STREAM_NAME": "s",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "MY_VAR": "v",
    }
    assert extension_environment(runtime_env) == {
        "PATH": "/usr/bin",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "k",
        "MY_VAR": "v",
    }
