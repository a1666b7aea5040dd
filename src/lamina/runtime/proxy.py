"""A TCP relay from inside an environment's network namespace to lamina's own API port.

Facts: a listening socket made while a thread is in another network namespace stays
there, so lamina listens *inside* the environment (127.0.0.1:<port>) and relays each
connection to the server on the host's loopback: ``AWS_ENDPOINT_URL`` works in the
function while the function still has no route anywhere else.

Every relayed connection costs the server three descriptors (the accepted one, the one to the API,
and the API's own end of it), so each environment may hold at most ``max_connections`` at once,
counted from the moment of ``accept``: past that a connection is reset (``SO_LINGER`` 0) before the
accept callback returns, so a refused connection never holds a descriptor across a loop iteration.
That is why the relay runs its own accept loop rather than ``asyncio.start_server``, whose accepted
connections wait for a task each before any code of ours sees them (hundreds at once under a
flood). A function that opens thousands of connections meets its own cap, not the server's
descriptor limit; boto3 keeps at most 10 connections per client (``max_pool_connections``), so
honest code never comes near it.

The same relay serves lamina's public addresses and VPC endpoints (:mod:`lamina.runtime.public_api`):
there one listening socket takes every source, so the cap counts per source address
(``per_source``: a NAT gateway's Elastic IP, an environment of the default network), and it
terminates TLS (``tls``) with lamina's certificate before relaying plain HTTP to the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
import struct

log = logging.getLogger("lamina.runtime")

#: Connections one environment may hold open through its relay at once.
MAX_RELAY_CONNECTIONS = 64
#: A TLS handshake that takes longer than this is dropped (a slow-loris holds nothing for long).
TLS_HANDSHAKE_TIMEOUT_S = 10.0
#: Connections accepted per readiness event (asyncio's own accept loop takes up to its backlog).
ACCEPT_BATCH = 64
#: Out of descriptors or memory: stop accepting for this long, as asyncio does (ACCEPT_RETRY_DELAY).
ACCEPT_RETRY_DELAY_S = 1.0
_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST and frees at once


class EndpointRelay:
    """Relays each connection made to ``sock`` (inside an environment) to ``target_port`` on the
    host's loopback, at most ``max_connections`` at once (``per_source``: per source address).
    ``tls``: a server context; the relay terminates TLS and relays what it decrypts."""

    def __init__(
        self,
        sock: socket.socket,
        target_port: int,
        *,
        max_connections: int = MAX_RELAY_CONNECTIONS,
        per_source: bool = False,
        tls: ssl.SSLContext | None = None,
        upstream: ssl.SSLContext | None = None,
        source_address: str | None = None,
    ) -> None:
        self._sock = sock
        self._target = target_port
        self._max = max_connections
        self._per_source = per_source
        self._tls = tls
        self._upstream = upstream  # when the API itself serves HTTPS (``--tls-cert``)
        # The loopback address the relay's connections to the API come from: tells the API which
        # listener (which VPC endpoint) a request came through.
        self._local = (source_address, 0) if source_address is not None else None
        self._by_source: dict[str, int] = {}
        self._open = 0
        self._refused = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False
        self._closed = False
        self._retry: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def open_connections(self) -> int:
        """Connections being relayed now."""
        return self._open

    @property
    def refused(self) -> int:
        """Connections reset because the cap was reached, since the relay started."""
        return self._refused

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock.setblocking(False)
        self._resume()

    def _resume(self) -> None:
        self._retry = None
        if self._loop is not None and not self._closed and not self._reading:
            self._loop.add_reader(self._sock.fileno(), self._accept)
            self._reading = True

    def _pause(self) -> None:
        if self._loop is not None and self._reading:
            self._loop.remove_reader(self._sock.fileno())
            self._reading = False

    def _accept(self) -> None:
        """Readiness of the listening socket: accept a batch; relay or reset each at once."""
        assert self._loop is not None
        for _ in range(ACCEPT_BATCH):
            try:
                conn, addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRNOS:
                    raise
                # The server is out of descriptors (or memory): the kernel keeps the connection in
                # the backlog; try again in a second, saying so once (not once per connection).
                log.warning("endpoint relay: accept failed (%s); pausing it for a second", exc)
                self._pause()
                self._retry = self._loop.call_later(ACCEPT_RETRY_DELAY_S, self._resume)
                return
            source = str(addr[0]) if self._per_source else ""
            held = self._by_source.get(source, 0) if self._per_source else self._open
            if held >= self._max:
                self._refuse(conn)
                continue
            self._open += 1
            if self._per_source:
                self._by_source[source] = held + 1
            task = self._loop.create_task(self._relay(conn, source))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _refuse(self, conn: socket.socket) -> None:
        self._refused += 1
        if self._refused & (self._refused - 1) == 0:  # logged at 1, 2, 4, 8... refusals
            log.warning("endpoint relay: %d connections refused past the cap of %d", self._refused, self._max)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        conn.close()

    async def _relay(self, conn: socket.socket, source: str = "") -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            if self._tls is None:
                reader, writer = await asyncio.open_connection(sock=conn)
            else:
                reader, writer = await self._tls_accept(conn)
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", self._target, ssl=self._upstream, local_addr=self._local
                )
            except OSError:
                writer.transport.abort()
                return
            a = asyncio.ensure_future(_pipe(reader, up_writer))
            b = asyncio.ensure_future(_pipe(up_reader, writer))
            try:
                await asyncio.gather(a, b, return_exceptions=True)
            finally:
                a.cancel()
                b.cancel()
        except OSError:
            pass  # the function's end went away before the relay started
        finally:
            if writer is None:
                conn.close()
            self._open -= 1
            if self._per_source:
                left = self._by_source.get(source, 1) - 1
                if left > 0:
                    self._by_source[source] = left
                else:
                    self._by_source.pop(source, None)

    async def _tls_accept(self, conn: socket.socket) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The server side of TLS on an accepted socket (``OSError`` when the handshake fails)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 16, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=self._tls, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S
            )
        except (ssl.SSLError, TimeoutError, ConnectionError) as exc:
            raise OSError(f"TLS handshake: {exc}") from exc
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    def discard(self) -> None:
        """Close a relay that never started (no loop involved)."""
        self._closed = True
        self._sock.close()

    async def close(self) -> None:
        self._closed = True
        self._pause()
        if self._retry is not None:
            self._retry.cancel()
        self._sock.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.CancelledError):
        pass  # the peer went away (reset, or the server out of resources): close the other side
    finally:
        with contextlib.suppress(Exception):
            writer.close()
