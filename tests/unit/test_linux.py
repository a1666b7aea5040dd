"""Unit tests for lamina.linux's pure parts (mountinfo and inotify parsing) and inotify itself
(unprivileged: a watch on a temporary directory)."""

from __future__ import annotations

import os
import select
import struct
from pathlib import Path

import pytest

from lamina.linux import inotify, mounts


def _event(wd: int, mask: int, cookie: int, name: bytes, padded: int) -> bytes:
    return struct.pack("iIII", wd, mask, cookie, padded) + name.ljust(padded, b"\0")


@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("/plain", "/plain"),
        ("/with\\040space", "/with space"),
        ("/tab\\011and\\012newline", "/tab\tand\nnewline"),
        ("/back\\134slash", "/back\\slash"),
    ],
    ids=["plain", "space", "tab-newline", "backslash"],
)
def test_mountinfo_unescape(field: str, path: str) -> None:
    assert mounts.unescape(field) == path


def test_mount_points_in_order() -> None:
    text = (
        "22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n"
        "31 22 0:28 / /run/a\\040b rw - tmpfs tmpfs rw\n"
        "\n"
        "32 31 0:29 / /run/a\\040b/c rw - nsfs nsfs rw\n"
    )
    assert mounts.mount_points(text) == [Path("/"), Path("/run/a b"), Path("/run/a b/c")]


def test_parse_events() -> None:
    data = _event(1, inotify.IN_CREATE, 0, b"new", 16) + _event(1, inotify.IN_DELETE_SELF, 0, b"", 0)
    assert inotify.parse_events(data) == [
        inotify.Event(1, inotify.IN_CREATE, 0, b"new"),
        inotify.Event(1, inotify.IN_DELETE_SELF, 0, b""),
    ]


def test_parse_events_ignores_a_truncated_header() -> None:
    data = _event(3, inotify.IN_ATTRIB, 0, b"", 0)
    assert inotify.parse_events(data + data[:10]) == [inotify.Event(3, inotify.IN_ATTRIB, 0, b"")]


def test_inotify_sees_a_file_created(tmp_path: Path) -> None:
    fd = inotify.init()
    try:
        wd = inotify.add_watch(fd, tmp_path, inotify.IN_CREATE)
        (tmp_path / "hello").touch()
        ready, _, _ = select.select([fd], [], [], 5.0)
        assert ready
        events = inotify.parse_events(os.read(fd, 4096))
    finally:
        os.close(fd)
    assert inotify.Event(wd, inotify.IN_CREATE, 0, b"hello") in events


def test_inotify_errors_carry_errno(tmp_path: Path) -> None:
    fd = inotify.init()
    try:
        with pytest.raises(FileNotFoundError, match="inotify_add_watch"):
            inotify.add_watch(fd, tmp_path / "missing", inotify.IN_CREATE)
    finally:
        os.close(fd)
