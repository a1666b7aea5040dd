"""One owner for every background worker and thread pool of the server.

Facts about lamina's concurrency (what this module makes explicit):

- One asyncio event loop (uvicorn's) runs the HTTP front door, the environments (Runtime API
  servers, log pipes, pidfds) and the event queue. Nothing on it touches SQLite or files: the store
  refuses to run there, and blocking work goes to the I/O executor.
- One I/O executor (a thread pool) runs every operation handler that is a plain function, together
  with the pipeline stages before it, and every store call made from the loop.
- Background workers (the event queue, Hyperplane interface release and idle reclaim, the VPC data
  plane, function preparation, the environments' idle reclaim, the log writer) are started here in
  dependency order and stopped in the reverse order, each by ``aclose()``; no daemon threads, so
  every thread has been joined when the server's lifespan ends.

Like trio's nurseries: a worker is never started without an owner that will stop it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("lamina.supervisor")


class Worker(Protocol):
    """A background worker: ``start()`` on the server's loop at startup, ``aclose()`` at shutdown
    (it must return only once the worker's threads and tasks have ended)."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ThreadedWorker:
    """Adapts a worker whose start and stop are blocking calls: they run on the I/O executor."""

    name: str
    start_blocking: Callable[[], None]
    close_blocking: Callable[[], None]
    executor: ThreadPoolExecutor

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self.start_blocking)

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self.close_blocking)


@dataclass(frozen=True)
class Hooks:
    """A worker made of two coroutine functions."""

    name: str
    on_start: Callable[[], Awaitable[None]]
    on_close: Callable[[], Awaitable[None]]

    async def start(self) -> None:
        await self.on_start()

    async def aclose(self) -> None:
        await self.on_close()


class Supervisor:
    """Starts workers in order, stops the started ones in reverse order, then the I/O executor."""

    def __init__(self, workers: Sequence[tuple[str, Worker]], executor: ThreadPoolExecutor) -> None:
        self._workers = list(workers)
        self._started: list[tuple[str, Worker]] = []
        self.executor = executor

    async def start(self) -> None:
        """Start every worker; if one fails, those already started are stopped and the error raised."""
        for name, worker in self._workers:
            try:
                await worker.start()
            except BaseException:
                log.exception("starting %s failed", name)
                await self.aclose()
                raise
            self._started.append((name, worker))

    async def aclose(self) -> None:
        """Stop what was started, newest first; a failure is logged and the others still stop."""
        while self._started:
            name, worker = self._started.pop()
            try:
                await worker.aclose()
            except Exception:
                log.exception("stopping %s failed", name)
        await asyncio.get_running_loop().run_in_executor(None, self.executor.shutdown, True)

    @property
    def running(self) -> list[str]:
        """Names of the workers started and not yet stopped, in start order."""
        return [name for name, _ in self._started]
