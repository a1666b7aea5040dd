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
import collections
import contextlib
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from lamina.linux import affinity

log = logging.getLogger("lamina.supervisor")

P = ParamSpec("P")
T = TypeVar("T")
# A call for a worker: runs there, and may return what to do once the worker is idle again.
_Item = Callable[[], "Callable[[], None] | None"]


class IoExecutor(Executor):
    """The I/O executor: a thread pool with a light way in from the event loop.

    ``submit`` is the standard ``Executor`` interface (``loop.run_in_executor`` uses it).
    :meth:`run` is for the hot paths (every API request, every invoke): the call goes to a worker
    that resolves a plain asyncio future with ``call_soon_threadsafe``, without a
    ``concurrent.futures.Future`` chained to it (as much again as the hand-off itself).

    Where the worker sleeps matters more (:mod:`lamina.linux.affinity`): each worker is pinned to
    one CPU, and a call goes to an idle worker of the CPU the caller runs on, so the wake-up stays
    on the CPU the event loop is leaving. A long-lived thread a call starts inherits that pin and
    must call ``affinity.release_thread()`` first (the preparer's, the data plane's, the log
    writer's and the sandbox's threads do). Threads start on demand, up to ``max_workers``;
    beyond that, calls wait their turn in order. ``shutdown`` joins them all; none is a daemon.
    """

    def __init__(self, max_workers: int, name: str = "lamina-io") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers!r}")
        self._max = max_workers
        self._name = name
        self._lock = threading.Lock()
        self._idle: dict[int, list[_IoWorker]] = {}  # CPU -> idle workers, the latest last
        self._workers: list[_IoWorker] = []
        self._backlog: collections.deque[_Item] = collections.deque()
        self._closed = False
        self._cpus = affinity.allowed_cpus()

    def _dispatch(self, item: _Item) -> None:
        cpu = affinity.current_cpu()
        with self._lock:
            if self._closed:
                raise RuntimeError("the I/O executor is shut down")
            stack = self._idle.get(cpu)
            if stack:
                worker: _IoWorker | None = stack.pop()
            elif len(self._workers) < self._max:
                worker = _IoWorker(cpu)
                worker.thread = threading.Thread(
                    target=self._work, args=(worker,), name=f"{self._name}_{len(self._workers)}"
                )
                worker.thread.start()  # raises (nothing changed) if no thread can be started
                self._workers.append(worker)
            else:
                worker = next((s.pop() for s in self._idle.values() if s), None)
            if worker is None:
                self._backlog.append(item)
                return
            # Under the lock: a shutdown's end-of-work marker can never overtake an accepted call.
            worker.queue.put(item)

    def _work(self, worker: _IoWorker) -> None:
        home = frozenset({worker.cpu}) if worker.cpu in self._cpus else None
        if home is not None:
            _pin(home)
        while True:
            item = worker.queue.get()
            if item is None:
                return
            while item is not None:
                deliver = item()
                with self._lock:  # a call that waited for a free worker, or idle
                    if self._backlog:
                        item = self._backlog.popleft()
                    else:
                        item = None
                        self._idle.setdefault(worker.cpu, []).append(worker)
                if deliver is not None:
                    # Last, so that the woken event loop finds the GIL about to be free.
                    try:
                        deliver()
                    except Exception:  # the loop has closed: nobody waits for this answer
                        log.warning("an I/O call finished after its event loop closed", exc_info=True)

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

        self._dispatch(item)
        return future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker, awaited from the running loop."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()

        def item() -> Callable[[], None]:
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn(*args)
            except BaseException as exc:
                error = exc

            def deliver() -> None:
                loop.call_soon_threadsafe(_deliver, waiter, result, error)

            return deliver

        self._dispatch(item)
        return await waiter

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                workers: list[_IoWorker] = []
            else:
                self._closed = True
                workers = list(self._workers)
                for worker in workers:
                    worker.queue.put(None)  # after the calls already handed to it
        if wait:
            for worker in workers:
                if worker.thread is not None:
                    worker.thread.join()


class _IoWorker:
    """One thread of the I/O executor and its hand-off queue; idle, it waits on ``cpu``."""

    __slots__ = ("cpu", "queue", "thread")

    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self.queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None


def _pin(cpus: frozenset[int]) -> None:
    with contextlib.suppress(OSError):  # a CPU taken away meanwhile: run unpinned
        affinity.pin_thread(cpus)


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
        """Start every worker; if one fails, it (whatever it had started) and those already started
        are stopped, and the error raised. A worker's ``aclose`` must cope with a partial start."""
        for name, worker in self._workers:
            self._started.append((name, worker))
            try:
                await worker.start()
            except BaseException:
                log.exception("starting %s failed", name)
                await self.aclose()
                raise

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
