"""The Event invocation queue's worker runs on the event loop but reaches its store only through
its executor: with the loop guard on, any store call on the loop's thread would raise."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

from lamina.domain.functions import FunctionRef
from lamina.services.lambda_.invoke import EventQueue
from lamina.store import Database, EventStore, FunctionRow, FunctionStore

ACCOUNT, REGION = "000000000000", "us-east-1"


def test_the_queue_works_off_the_loop(db: Database) -> None:
    assert db.loop_guard
    functions = FunctionStore(db)
    # Not Active (still Pending): its event is kept for a retry, not run.
    functions.create(FunctionRow(ACCOUNT, REGION, "pending", 0, {"State": "Pending"}, "a" * 64, 1, ()))
    store = EventStore(db)
    platform: Any = SimpleNamespace(functions=functions)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-store")
    queue = EventQueue(platform, store, retry_delay_s=3600.0, executor=executor)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        await queue.start()
        await loop.run_in_executor(
            executor, queue.enqueue, FunctionRef(ACCOUNT, REGION, "gone"), "$LATEST", b"{}"
        )
        await loop.run_in_executor(
            executor, queue.enqueue, FunctionRef(ACCOUNT, REGION, "pending"), "$LATEST", b"{}", "ev-pending"
        )
        for _ in range(500):  # until the worker has seen both (each step waits on the executor)
            due = await loop.run_in_executor(executor, store.next_due)
            if store_settled(due):
                break
            await asyncio.sleep(0.01)
        await queue.close()

    def store_settled(due: Any) -> bool:
        return due is not None and due.id == "ev-pending" and due.attempts == 1

    try:
        asyncio.run(run())
    finally:
        executor.shutdown()
    assert store.count() == 1  # the event of a function that does not exist is dropped
    due = store.next_due()
    assert due is not None and (due.id, due.attempts) == ("ev-pending", 1)
