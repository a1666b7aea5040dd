"""An Event invocation whose worker fails after claiming it (a store read failing, say) is not
left claimed, which the node's heartbeats would extend for as long as it lives (the event would
run never, then again after a restart), nor due at once (a failure that repeats would spin): it
is released, due again after the retry delay, its attempts unchanged."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

from lamina.domain.functions import FunctionRef
from lamina.services.lambda_.invoke import EventQueue
from lamina.store import Database, EventStore

ACCOUNT, REGION = "000000000000", "us-east-1"


class FailingFunctions:
    def __init__(self) -> None:
        self.calls = 0

    def get(self, *args: Any) -> Any:
        self.calls += 1
        raise RuntimeError("the store failed")


def test_a_worker_failure_releases_the_claim(db: Database) -> None:
    store = EventStore(db)
    functions = FailingFunctions()
    platform: Any = SimpleNamespace(functions=functions)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-store")
    queue = EventQueue(platform, store, retry_delay_s=3600.0, executor=executor)
    queue.node, queue.lease_s, queue.poll_s = "a", 60.0, 0.05
    before = time.time()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            executor, queue.enqueue, FunctionRef(ACCOUNT, REGION, "f"), "$LATEST", b"{}", "ev"
        )
        await queue.start()
        for _ in range(500):
            due = await loop.run_in_executor(executor, store.next_due)
            if functions.calls and due is not None and due.next_at > before + 60:
                break
            await asyncio.sleep(0.01)
        await queue.close()

    try:
        asyncio.run(run())
    finally:
        executor.shutdown()
    assert functions.calls == 1  # not spun on
    due = store.next_due()
    assert due is not None and due.id == "ev" and due.attempts == 0 and due.next_at >= before + 3600
    # Claimed by nobody: any node may take it once it is due.
    assert store.next_due(now=due.next_at + 1, claim_by="b", lease_until=due.next_at + 61) is not None
