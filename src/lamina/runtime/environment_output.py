"""An execution environment's output: its processes' pipes, the log stream they go to, the
invocation's Tail, and the Telemetry API's ``function`` and ``extension`` streams.

Without extensions the runtime's pipe is the only writer of the function's log stream and its
chunks go there as read (the stream cuts them into lines). With extensions, their stdout and stderr
are a second pipe (as in AWS, their lines are in the function's log stream too); each source is
then cut into whole lines before the shared stream gets them (:class:`LineGate`), so a partial line
of one is never glued to the other's; a source's unfinished line is ended when a platform line
(START, END, REPORT, ...) is written, or when it outgrows one log event.

The Telemetry API (:class:`lamina.runtime.telemetry.Telemetry`, created by the environment) gets
every chunk of each pipe as read; its subscribers' listeners are reached by :func:`sandbox_connector`
inside the sandbox's network namespace, at ``127.0.0.1`` (which ``sandbox.localdomain`` is there),
and nowhere else.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Collection

from lamina.linux import NetNamespace
from lamina.runtime.log_pipe import LogPipe
from lamina.runtime.logs import MAX_EVENT_BYTES, LogSink, LogStream
from lamina.runtime.telemetry import Telemetry
from lamina.runtime.telemetry_delivery import Connector

__all__ = ["LOG_TAIL_BYTES", "EnvironmentOutput", "LineGate", "sandbox_connector"]

LOG_TAIL_BYTES = 4096


class LineGate:
    """One source's output to a stream it shares with another: whole lines only. An unfinished
    line waits (at most one log event's worth of it) until its newline comes or :meth:`flush`."""

    __slots__ = ("_partial", "_write")

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._partial = bytearray()

    def feed(self, data: bytes) -> None:
        """A chunk of the source's output, cut anywhere."""
        cut = data.rfind(b"\n") + 1
        if cut:
            if self._partial:
                self._partial += data[:cut]
                whole = bytes(self._partial)
                self._partial.clear()
            else:
                whole = data[:cut]
            self._write(whole)
        if cut < len(data):
            self._partial += data[cut:]
            if len(self._partial) >= MAX_EVENT_BYTES:
                self.flush()

    def flush(self) -> None:
        """End the unfinished line, if any (it gets its newline)."""
        if self._partial:
            self._partial += b"\n"
            whole = bytes(self._partial)
            self._partial.clear()
            self._write(whole)


def sandbox_connector(netns: Callable[[], NetNamespace | None], refused: Collection[int]) -> Connector:
    """How a Telemetry API subscriber's listener is reached: a TCP connection to ``127.0.0.1:<port>``
    made inside the sandbox's network namespace (``netns()``, None once it is gone), so nothing
    outside the sandbox can ever be the destination. ``refused``: ports of the server's own
    listeners in that namespace (the Runtime API, the endpoint relay), never connected to."""

    async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        ns = netns()
        if ns is None or ns.closed or port in refused or not 0 < port < 65_536:
            raise ConnectionRefusedError(f"no listener of the sandbox's at port {port}")
        loop = asyncio.get_running_loop()

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            return sock

        sock = await loop.run_in_executor(None, ns.call, make)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            return await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise

    return connect


class EnvironmentOutput:
    """The output of one environment's processes (see the module docstring); ``stream`` is its log
    stream, ``sink`` the sink it belongs to (which says when to hold back)."""

    def __init__(self, sink: LogSink, stream: LogStream) -> None:
        self._sink = sink
        self.stream = stream
        self.tail = bytearray()  # the current invocation's output, its last LOG_TAIL_BYTES at least
        self.telemetry: Telemetry | None = None
        self._function: LogPipe | None = None  # the runtime's pipe (an Init retry opens another)
        self._extension: LogPipe | None = None  # the extensions' (only with extensions)
        self._gates: tuple[LineGate, LineGate] | None = None

    def open(self, extensions: bool) -> tuple[int, int | None]:
        """Open the pipes (the extensions' too if ``extensions``): their write ends, which the
        caller closes once the sandbox has them."""
        if extensions:
            self._gates = (LineGate(self._write), LineGate(self._write))
        self._function = LogPipe(self._sink, self._function_output)
        function_fd = self._function.open()
        extension_fd = None
        if extensions:
            self._extension = LogPipe(self._sink, self._extension_output)
            try:
                extension_fd = self._extension.open()
            except BaseException:
                os.close(function_fd)
                raise
        return function_fd, extension_fd

    def open_telemetry(self, connect: Connector, function_json: bool) -> Telemetry:
        """Start its Telemetry API (see :class:`Telemetry` for ``function_json``)."""
        self.telemetry = Telemetry(connect, function_json=function_json)
        return self.telemetry

    def _function_output(self, data: bytes) -> None:
        if self._gates is None:
            self._write(data)
        else:
            self._gates[0].feed(data)
        if self.telemetry is not None:
            self.telemetry.function_output(data)

    def _extension_output(self, data: bytes) -> None:
        if self._gates is not None:
            self._gates[1].feed(data)
        if self.telemetry is not None:
            self.telemetry.extension_output(data)

    def _write(self, data: bytes) -> None:
        self._keep_tail(data)
        self.stream.write(data)

    def _keep_tail(self, data: bytes) -> None:
        self.tail += data
        if len(self.tail) > 2 * LOG_TAIL_BYTES:
            del self.tail[:-LOG_TAIL_BYTES]

    def line(self, data: bytes) -> None:
        """A line of the platform's (START, END, REPORT, ...)."""
        if not data:  # a system log line the function's SystemLogLevel leaves out
            return
        if self._gates is not None:
            for gate in self._gates:
                gate.flush()
        self._keep_tail(data)
        self.stream.write_line(data)

    def tail_bytes(self) -> bytes:
        """The Tail of the invocation's log (its last LOG_TAIL_BYTES)."""
        return bytes(self.tail[-LOG_TAIL_BYTES:])

    def drain(self) -> None:
        """Read what the processes wrote so far (see :meth:`LogPipe.drain`), the runtime's first."""
        for pipe in (self._function, self._extension):
            if pipe is not None:
                pipe.drain()

    def close(self) -> None:
        """The processes are gone: read what is left, close the pipes, end the stream's output."""
        pipes = [p for p in (self._function, self._extension) if p is not None and p.open_]
        if not pipes:
            return
        for pipe in pipes:
            pipe.close()
        if self._gates is not None:
            for gate in self._gates:
                gate.flush()
        if self.telemetry is not None:
            self.telemetry.end_output()
        self.stream.end()
