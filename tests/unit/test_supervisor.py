"""The supervisor and the I/O executor: owned workers, ordered start and stop, joined threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lamina.supervisor import Hooks, IoExecutor, Supervisor, ThreadedWorker


def test_io_executor_run_submit_and_errors() -> None:
    ex = IoExecutor(4, name="t-io")

    async def go() -> None:
        assert await ex.run(lambda a, b: a + b, 2, 3) == 5
        assert await ex.run(threading.current_thread) is not threading.current_thread()
        with pytest.raises(KeyError):
            await ex.run({}.__getitem__, "missing")
        assert await asyncio.get_running_loop().run_in_executor(ex, pow, 2, 10) == 1024
        results = await asyncio.gather(*(ex.run(lambda i=i: i * i) for i in range(50)))
        assert results == [i * i for i in range(50)]

    asyncio.run(go())
    assert ex.submit(str.upper, "x").result() == "X"
    ex.shutdown()
    assert not [t for t in threading.enumerate() if t.name.startswith("t-io")]
    with pytest.raises(RuntimeError):
        ex.submit(str.upper, "x")


def test_io_executor_threads_on_demand_up_to_the_cap() -> None:
    ex = IoExecutor(3, name="t-cap")
    release = threading.Event()
    futures = [ex.submit(release.wait, 10) for _ in range(6)]  # more work than threads
    busy = [t for t in threading.enumerate() if t.name.startswith("t-cap")]
    assert len(busy) == 3
    release.set()
    assert all(f.result(10) for f in futures)
    for _ in range(20):  # sequential work reuses an idle thread
        ex.submit(int, "1").result()
    assert len([t for t in threading.enumerate() if t.name.startswith("t-cap")]) == 3
    ex.shutdown()
    assert not [t for t in threading.enumerate() if t.name.startswith("t-cap")]


def test_io_executor_shutdown_finishes_queued_work() -> None:
    ex = IoExecutor(1, name="t-drain")
    done: list[int] = []
    for i in range(5):
        ex.submit(done.append, i)
    ex.shutdown(wait=True)
    assert done == [0, 1, 2, 3, 4]


def test_supervisor_order_and_failure() -> None:
    events: list[str] = []

    def worker(name: str, fail: bool = False) -> Hooks:
        async def start() -> None:
            if fail:
                raise OSError(f"{name} cannot start")
            events.append(f"start {name}")

        async def close() -> None:
            events.append(f"stop {name}")

        return Hooks(name, start, close)

    async def go() -> None:
        ex = IoExecutor(2, name="t-sup")
        ok = Supervisor([(n, worker(n)) for n in ("a", "b", "c")], ex)
        await ok.start()
        assert ok.running == ["a", "b", "c"]
        await ok.aclose()
        assert ok.running == []
        assert events == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
        events.clear()
        ex2 = IoExecutor(2, name="t-sup2")
        threaded = ThreadedWorker("t", lambda: events.append("start t"), lambda: events.append("stop t"), ex2)
        bad = Supervisor([("t", threaded), ("a", worker("a")), ("x", worker("x", fail=True))], ex2)
        with pytest.raises(OSError):
            await bad.start()
        # The worker that failed to start is stopped too (whatever it had started), then the others.
        assert events == ["start t", "start a", "stop x", "stop a", "stop t"]
        assert bad.running == []

    asyncio.run(go())
    assert not [t for t in threading.enumerate() if t.name.startswith("t-sup")]


def test_io_workers_wait_on_the_callers_cpu_and_released_threads_are_free() -> None:
    from lamina.linux import affinity

    ex = IoExecutor(4, name="t-pin")
    caller = affinity.current_cpu()
    seen: dict[str, object] = {}

    def inside() -> None:
        seen["worker"] = affinity.allowed_cpus()

        def child() -> None:
            affinity.release_thread()
            seen["child"] = affinity.allowed_cpus()

        t = threading.Thread(target=child)
        t.start()
        t.join()

    async def go() -> None:
        await ex.run(lambda: None)  # the worker pins itself on start
        await ex.run(inside)

    asyncio.run(go())
    ex.shutdown()
    if len(affinity.PROCESS_CPUS) > 1 and caller >= 0:
        assert seen["worker"] == frozenset({caller}) or len(seen["worker"]) == 1  # type: ignore[arg-type]
    assert seen["child"] == affinity.PROCESS_CPUS


def test_io_worker_survives_an_answer_nobody_waits_for() -> None:
    """A call that finishes after its event loop closed must not take its worker down."""
    ex = IoExecutor(1, name="t-late")
    release = threading.Event()

    async def go() -> None:
        task = asyncio.ensure_future(ex.run(release.wait, 10))
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(go())  # the loop is closed now; the call still runs
    release.set()
    assert ex.submit(int, "7").result(5) == 7  # the same (only) worker still serves
    ex.shutdown()
