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
import queue
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

log = logging.getLogger("lamina.supervisor")

P = ParamSpec("P")
T = TypeVar("T")


class IoExecutor(Executor):
    """The I/O executor: a thread pool with a second, lighter way in from the event loop.

    ``submit`` is the standard ``Executor`` interface (``loop.run_in_executor`` uses it).
    :meth:`run` is for the hot paths (every API request, every invoke): it hands the call to a
    worker and awaits a plain asyncio future that the worker resolves with
    ``call_soon_threadsafe``, skipping ``concurrent.futures.Future`` and its chaining to an asyncio
    future, which cost about as much again as the thread hand-off itself (measured: ~37 us vs
    ~23 us a round trip on this project's 2-core machines). Threads start on demand, up to
    ``max_workers``, and are joined by :meth:`shutdown`; none is a daemon.
    """

    def __init__(self, max_workers: int, name: str = "lamina-io") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers!r}")
        self._max = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def _put(self, item: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the I/O executor is shut down")
            if self._idle <= 0 and len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, name=f"{self._name}_{len(self._threads)}")
                self._threads.append(thread)
                self._idle += 1
                thread.start()
            self._idle -= 1  # a worker is taken by this item; it counts itself idle again when done
        self._queue.put(item)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            item()
            with self._lock:
                self._idle += 1

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()

        def item() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self._put(item)
        return future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker, awaited from the running loop."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()

        def item() -> None:
            try:
                result = fn(*args)
            except BaseException as exc:
                loop.call_soon_threadsafe(_deliver, waiter, None, exc)
            else:
                loop.call_soon_threadsafe(_deliver, waiter, result, None)

        self._put(item)
        return await waiter

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                threads = []
            else:
                self._closed = True
                threads = list(self._threads)
                for _ in threads:
                    self._queue.put(None)  # each worker ends after the work queued before it
        if wait:
            for thread in threads:
                thread.join()


def _deliver(waiter: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if waiter.cancelled():
        return
    if exc is not None:
        waiter.set_exception(exc)
    else:
        waiter.set_result(result)


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
    executor: Executor

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

    def __init__(self, workers: Sequence[tuple[str, Worker]], executor: Executor) -> None:
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
