"""The pipe an environment's processes write their output to, read on the event loop.

The write end goes to the sandbox (the runtime's stdout and stderr, and its extensions'); the read
end is watched on the loop and read at most every ``LOG_READ_DELAY_S``: after a read it is left
alone that long, so a function printing line by line does not wake the server for every line (nor
pay the wake-up in its write); the pipe holds what it prints meanwhile (``LOG_PIPE_BYTES``: 200
MB/s before its writes wait). While the log sink is behind, the pipe is not read at all until the
sink has caught up: the function's writes then wait (back-pressure).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import struct
import termios
from collections.abc import Callable
from typing import Any

from lamina.runtime.logs import LogSink

__all__ = ["LOG_PIPE_BYTES", "LOG_READ_DELAY_S", "LogPipe"]

LOG_READ_DELAY_S = 0.005
LOG_PIPE_BYTES = 1 << 20


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
    """``fn(*args)`` on ``loop`` from another thread; nothing once the loop is closed."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


class LogPipe:
    """One output pipe: what is read from it goes to ``output``; ``sink`` says when to hold back."""

    def __init__(self, sink: LogSink, output: Callable[[bytes], None]) -> None:
        self._sink = sink
        self._output = output
        self._fd = -1
        self._reading = False  # watched (not while the sink is behind, nor after its end)

    def open(self) -> int:
        """Create the pipe and start watching it; returns the write end (close-on-exec: the
        sandbox's start hands it over), which the caller closes once the sandbox has it."""
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(read_fd, False)
        with contextlib.suppress(OSError):  # over /proc/sys/fs/pipe-max-size unprivileged: 64 KiB it is
            fcntl.fcntl(read_fd, fcntl.F_SETPIPE_SZ, LOG_PIPE_BYTES)
        self._fd = read_fd
        self._watch()
        return write_fd

    @property
    def open_(self) -> bool:
        """Whether the read end is open."""
        return self._fd >= 0

    def drain(self) -> None:
        """Read what is in the pipe now (at most the pipe's size, read even while the sink is
        behind: what a runtime wrote before answering precedes END)."""
        if self._fd < 0:
            return
        pending = struct.unpack("i", fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        if pending:
            self._read(pending)

    def close(self) -> None:
        """Drain, stop watching, close the read end (idempotent)."""
        if self._fd < 0:
            return
        self.drain()
        self._unwatch()
        os.close(self._fd)
        self._fd = -1

    # -- internals -------------------------------------------------------------------------------

    def _watch(self) -> None:
        if self._fd >= 0 and not self._reading:
            asyncio.get_running_loop().add_reader(self._fd, self._on_readable)
            self._reading = True

    def _unwatch(self) -> None:
        if self._reading:
            self._reading = False
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._fd)

    def _on_readable(self) -> None:
        """Readable: read it, then leave it alone for ``LOG_READ_DELAY_S``."""
        self._read()
        if self._reading:  # not paused (the sink behind) nor at its end
            self._unwatch()
            asyncio.get_running_loop().call_later(LOG_READ_DELAY_S, self._resume)

    def _read(self, limit: int | None = None) -> None:
        """Read until the pipe is empty (or ``limit`` bytes); while the sink is behind, stop
        watching it until the sink has caught up."""
        left = (1 << 62) if limit is None else limit
        try:
            while left > 0:
                if limit is None and self._sink.behind:
                    self._unwatch()
                    self._sink.when_drained(
                        functools.partial(_call_soon, asyncio.get_running_loop(), self._resume)
                    )
                    return
                chunk = os.read(self._fd, min(left, 1 << 16))
                if not chunk:
                    self._unwatch()
                    return
                left -= len(chunk)
                self._output(chunk)
        except OSError:  # BlockingIOError: empty for now
            return

    def _resume(self) -> None:
        if self._fd >= 0:  # still open
            self._watch()
            self._read()
