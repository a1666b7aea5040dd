"""inotify: waiting for a directory to change without polling.

Facts about inotify (inotify(7)):
- A watch is on an inode: events for a directory's entries (``IN_CREATE``, ``IN_MOVED_TO``),
  for the directory itself (``IN_ATTRIB``, e.g. ``utime`` on it) and its removal
  (``IN_DELETE_SELF``). A mount made on a path raises no event at all.
- Reading the fd returns whole events: ``struct inotify_event`` (wd, mask, cookie, len; 16
  bytes) followed by ``len`` bytes of NUL-padded name.
"""

from __future__ import annotations

import ctypes
import os
import struct
from dataclasses import dataclass

from lamina.linux import libc

IN_ATTRIB = 0x00000004
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE_SELF = 0x00000400
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

_EVENT = struct.Struct("iIII")
_init1 = libc.function("inotify_init1", [ctypes.c_int])
_add_watch = libc.function("inotify_add_watch", [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32])


@dataclass(frozen=True)
class Event:
    """One inotify event."""

    wd: int
    mask: int
    cookie: int
    name: bytes


def init(flags: int = IN_NONBLOCK | IN_CLOEXEC) -> int:
    """A new inotify fd (the caller closes it); raises OSError."""
    return libc.check(_init1(flags), "inotify_init1")


def add_watch(fd: int, path: bytes | str | os.PathLike[str], mask: int) -> int:
    """Watch ``path`` for the events in ``mask``; the watch descriptor. Raises OSError."""
    return libc.check(_add_watch(fd, os.fsencode(path), mask), f"inotify_add_watch {os.fsdecode(path)}")


def parse_events(data: bytes) -> list[Event]:
    """The events in a buffer read from an inotify fd (a truncated last event is ignored)."""
    events = []
    offset = 0
    while offset + _EVENT.size <= len(data):
        wd, mask, cookie, length = _EVENT.unpack_from(data, offset)
        start = offset + _EVENT.size
        events.append(Event(wd, mask, cookie, data[start : start + length].rstrip(b"\0")))
        offset = start + length
    return events
