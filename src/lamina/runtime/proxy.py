"""A TCP relay from inside an environment's network namespace to lamina's own API port.

Facts: a listening socket made while a thread is in another network namespace stays
there, so lamina listens *inside* the environment (127.0.0.1:<port>) and relays each
connection to the server on the host's loopback: ``AWS_ENDPOINT_URL`` works in the
function while the function still has no route anywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket


class EndpointRelay:
    def __init__(self, sock: socket.socket, target_port: int) -> None:
        self._sock = sock
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, sock=self._sock)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.close()
            return
        a = asyncio.ensure_future(_pipe(reader, up_writer))
        b = asyncio.ensure_future(_pipe(up_reader, writer))
        for t in (a, b):
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        await asyncio.gather(a, b, return_exceptions=True)

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
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
