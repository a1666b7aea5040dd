"""The server's side of ``lamina-init`` (PID 1 of an environment with extensions): its command
line and pipes (:class:`InitPipes`), and what it reports, as typed events.

``lamina-init`` writes one line per fact on its report pipe (``runtime/native/lamina_init.c``):
``S i pid`` extension ``i`` started, ``F i errno`` it could not be, ``X i status`` it exited
(``status`` as wait(2) gives it), ``R pid`` the runtime started, ``L errno`` it could not be,
``E status`` it exited. The pipe comes from inside the sandbox, where the function's code runs
as the same user as init: :class:`ReportParser` treats it as hostile input (bounded line length
and buffer; malformed, out-of-range, duplicate or out-of-order lines are dropped).

Return codes are ``subprocess.Popen``'s: the exit code, or the negative signal number.
A launch failure reads as Go's ``exec.Cmd.Start`` error, which is what AWS's Lambda platform
(rapid) reports for an extension it could not start: ``fork/exec /opt/extensions/x: permission
denied``.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Where lamina-init (:mod:`lamina.runtime.init_binary`) is bound in a sandbox with extensions.
INIT_PATH = "/var/lamina/init"
#: The longest report line ``lamina-init`` writes is well under this; a longer one is garbage.
MAX_LINE = 64


@dataclass(frozen=True)
class ExtensionStarted:
    index: int
    name: str  # the file name: what Lambda-Extension-Name must be
    path: str
    pid: int  # in the sandbox's PID namespace


@dataclass(frozen=True)
class ExtensionLaunchFailed:
    index: int
    name: str
    path: str
    errno: int
    message: str  # "fork/exec /opt/extensions/x: permission denied"


@dataclass(frozen=True)
class ExtensionExited:
    index: int
    name: str
    path: str
    returncode: int  # Popen-style: negative = killed by that signal


@dataclass(frozen=True)
class RuntimeStarted:
    pid: int


@dataclass(frozen=True)
class RuntimeLaunchFailed:
    errno: int
    message: str


@dataclass(frozen=True)
class RuntimeExited:
    returncode: int


InitEvent = (
    ExtensionStarted
    | ExtensionLaunchFailed
    | ExtensionExited
    | RuntimeStarted
    | RuntimeLaunchFailed
    | RuntimeExited
)


def launch_error_message(path: str, err: int) -> str:
    """Go's ``exec.Cmd.Start`` error text for ``path`` failing with ``err`` (Go's errno strings
    are glibc's with a lower-case first letter; unknown ones are ``errno N``)."""
    text = os.strerror(err)
    text = f"errno {err}" if text.startswith("Unknown error") else text[:1].lower() + text[1:]
    return f"fork/exec {path}: {text}"


def _returncode(status: int) -> int | None:
    if not 0 <= status <= 0xFFFF:
        return None
    try:
        return os.waitstatus_to_exitcode(status)
    except ValueError:  # a stopped/continued status: not an exit
        return None


class ReportParser:
    """Turns the bytes of the report pipe into events, for the ``paths`` given to init (in its
    order) and the runtime's ``argv[0]``."""

    def __init__(self, paths: tuple[str, ...], runtime: str) -> None:
        self.paths = paths
        self.runtime = runtime
        self._buffer = b""
        self._discarding = False
        self._started: set[int] = set()
        self._done: set[int] = set()
        self._runtime_state = 0  # 0 not started, 1 started, 2 over

    def feed(self, data: bytes) -> list[InitEvent]:
        """The events completed by ``data`` (a partial line waits for the rest)."""
        events: list[InitEvent] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    self._buffer = b""
                    self._discarding = True
                return events
            line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            if self._discarding:
                self._discarding = False
                continue
            if len(line) <= MAX_LINE:
                event = self._parse(line)
                if event is not None:
                    events.append(event)

    def _parse(self, line: bytes) -> InitEvent | None:
        parts = line.split(b" ")
        if not parts or not all(p.isdigit() and len(p) <= 10 for p in parts[1:]):
            return None
        kind, nums = parts[0], [int(p) for p in parts[1:]]
        if kind in (b"S", b"F", b"X") and len(nums) == 2 and nums[0] < len(self.paths):
            return self._extension(kind, nums[0], nums[1])
        if len(nums) != 1:
            return None
        value = nums[0]
        if kind == b"R" and self._runtime_state == 0 and value > 0:
            self._runtime_state = 1
            return RuntimeStarted(value)
        if kind == b"L" and self._runtime_state == 0 and value > 0:
            self._runtime_state = 2
            return RuntimeLaunchFailed(value, launch_error_message(self.runtime, value))
        if kind == b"E" and self._runtime_state == 1:
            code = _returncode(value)
            if code is not None:
                self._runtime_state = 2
                return RuntimeExited(code)
        return None

    def _extension(self, kind: bytes, index: int, value: int) -> InitEvent | None:
        path = self.paths[index]
        name = posixpath.basename(path)
        if index in self._done:
            return None
        if kind == b"S" and index not in self._started and value > 0:
            self._started.add(index)
            return ExtensionStarted(index, name, path, value)
        if kind == b"F" and index not in self._started and value > 0:
            self._done.add(index)
            return ExtensionLaunchFailed(index, name, path, value, launch_error_message(path, value))
        if kind == b"X" and index in self._started:
            code = _returncode(value)
            if code is not None:
                self._done.add(index)
                return ExtensionExited(index, name, path, code)
        return None


class InitPipes:
    """The server's pipes to lamina-init: control (server -> init) and report (init -> server).
    Both ends are close-on-exec in the server (``os.pipe``); only the child ends are passed to
    init, which marks them close-on-exec for its own children."""

    def __init__(
        self, parser: ReportParser, control_r: int, control_w: int, report_r: int, report_w: int
    ) -> None:
        self.parser = parser
        self.eof = False  # the report pipe ended: init is gone and everything it wrote was read
        self.control_r, self.control_w = control_r, control_w
        self.report_r, self.report_w = report_r, report_w

    @classmethod
    def open(cls, parser: ReportParser) -> InitPipes:
        control_r, control_w = os.pipe()
        try:
            report_r, report_w = os.pipe()
        except OSError:
            os.close(control_r)
            os.close(control_w)
            raise
        os.set_blocking(report_r, False)
        return cls(parser, control_r, control_w, report_r, report_w)

    def argv(
        self, extensions: Sequence[str], env: Mapping[str, str], out: int | None, runtime: Sequence[str]
    ) -> list[str]:
        """lamina-init's command line: start ``extensions`` with ``env`` and their output on ``out``
        (None: init's stdout), then, when told, ``runtime`` (with init's own environment). Only the
        names of ``env`` are on it (init takes their values from its own environment, which must hold
        them): the function can read PID 1's command line."""
        return [
            INIT_PATH,
            str(self.control_r),
            str(self.report_w),
            str(-1 if out is None else out),
            str(len(extensions)),
            *extensions,
            str(len(env)),
            *env.keys(),
            "--",
            *runtime,
        ]

    def child_fds(self, out: int | None) -> tuple[int, ...]:
        """The descriptors init must get (``Popen(pass_fds=...)``)."""
        fds = (self.control_r, self.report_w)
        return fds if out is None else (*fds, out)

    def send(self, byte: bytes) -> None:
        """One control byte to init (nothing once it is gone: PID 1's exit says so)."""
        if self.control_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self.control_w, byte)

    def read_events(self) -> list[InitEvent]:
        """What init reported since the last call; never blocks."""
        events: list[InitEvent] = []
        for _ in range(64):  # bounded: init writes a few short lines per extension
            if self.report_r < 0:
                break
            try:
                data = os.read(self.report_r, 65536)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self.eof = True
                break
            events += self.parser.feed(data)
        return events

    def close_child_ends(self) -> None:
        for fd in (self.control_r, self.report_w):
            os.close(fd)
        self.control_r = self.report_w = -1

    def close_control(self) -> None:
        if self.control_w >= 0:
            os.close(self.control_w)
            self.control_w = -1

    def close(self) -> None:
        for fd in (self.control_r, self.control_w, self.report_r, self.report_w):
            if fd >= 0:
                os.close(fd)
        self.control_r = self.control_w = self.report_r = self.report_w = -1
