"""A TCP relay from inside an environment's network namespace to lamina's own API port.

Facts: a listening socket made while a thread is in another network namespace stays
there, so lamina listens *inside* the environment (127.0.0.1:<port>) and relays each
connection to the server on the host's loopback: ``AWS_ENDPOINT_URL`` works in the
function while the function still has no route anywhere else.

Every relayed connection costs the server three descriptors (the accepted one, the one to the API,
and the API's own end of it), so each environment may hold at most ``max_connections`` at once:
past that a connection is reset as soon as it is accepted. A function that opens thousands of
connections then meets its own cap, not the server's descriptor limit. boto3 keeps at most 10
connections per client (``max_pool_connections``), so honest code never comes near it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

log = logging.getLogger("lamina.runtime")

#: Connections one environment may hold open through its relay at once.
MAX_RELAY_CONNECTIONS = 64


class EndpointRelay:
    """Relays each connection made to ``sock`` (inside an environment) to ``target_port`` on the
    host's loopback, at most ``max_connections`` at once."""

    def __init__(
        self, sock: socket.socket, target_port: int, *, max_connections: int = MAX_RELAY_CONNECTIONS
    ) -> None:
        self._sock = sock
        self._target = target_port
        self._max = max_connections
        self._open = 0
        self._refused = 0
        self._server: asyncio.Server | None = None
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
        self._server = await asyncio.start_server(self._serve, sock=self._sock)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self._max:
            # Reset at once (no FIN handshake to wait for): the descriptor is free before the next
            # accept. Logged once per burst, not per connection: a flood must not fill the log.
            self._refused += 1
            if self._refused & (self._refused - 1) == 0:  # 1, 2, 4, 8... refusals
                log.warning(
                    "endpoint relay: %d connections refused past the cap of %d", self._refused, self._max
                )
            writer.transport.abort()
            return
        self._open += 1
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
            except OSError:
                writer.transport.abort()
                return
            a = asyncio.ensure_future(_pipe(reader, up_writer))
            b = asyncio.ensure_future(_pipe(up_reader, writer))
            for t in (a, b):
                self._tasks.add(t)
                t.add_done_callback(self._tasks.discard)
            await asyncio.gather(a, b, return_exceptions=True)
        finally:
            self._open -= 1

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        else:
            self._sock.close()


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
