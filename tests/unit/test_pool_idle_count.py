"""The pool's count of idle environments (what ``EnvironmentPool.busy`` answers from, on every
invocation routed while other nodes are live) against the count of its idle lists, through
every way an environment becomes idle or stops being so. Stand-in environments: the pool's
books are what is under test (tests/privileged run real ones)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lamina.domain.functions import FunctionRef
from lamina.runtime import pool as pool_module
from lamina.runtime.pool import EnvironmentPool


class Env:
    """What the pool uses of an environment."""

    def __init__(self, target: Any, *args: Any, **kwargs: Any) -> None:
        self.target = target
        self.id = uuid.uuid4().hex
        self.alive, self.busy, self.retired = True, False, False
        self.owner: object = None
        self.settling = None
        self.attachment = None
        self.init_error = None
        self.last_used = time.time()
        self.gate: asyncio.Event | None = None

    async def start(self) -> None:
        await asyncio.sleep(0)

    async def invoke(self, inv: Any, timeout_s: float, first: bool) -> str:
        self.busy = True
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        self.busy = False
        self.last_used = time.time()
        return "done"

    def suspend(self) -> None:
        pass

    async def destroy(self) -> None:
        self.alive = False


def target(name: str, revision: str = "r1") -> Any:
    function = FunctionRef("000000000000", "us-east-1", name)
    return SimpleNamespace(
        function=function,
        version="$LATEST",
        key=(function, "$LATEST", revision),
        credentials_expire=time.time() + 12 * 3600,
        config={"FunctionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{name}"},
    )


def consistent(pool: EnvironmentPool) -> int:
    counted = sum(pool.idle_counts().values())
    assert pool._idle_count == counted  # noqa: SLF001 - the books under test
    assert pool.busy == max(0, pool.size - counted)
    return counted


def test_the_idle_count_follows_every_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "Environment", Env)

    async def run() -> None:
        pool = EnvironmentPool(
            tmp_path / "work", None, attacher=None, max_environments=3, idle_timeout_s=600, zygotes=False
        )  # type: ignore[arg-type]
        a, b, c = target("a"), target("b"), target("c")
        await pool.invoke(a, b"{}", timeout_s=3, client_context=None)
        assert consistent(pool) == 1 and pool.busy == 0
        # Two at once: the idle one is taken (busy 1), a second one starts (busy 2).
        started = [pool.invoke(a, b"{}", timeout_s=3, client_context=None) for _ in range(2)]
        await asyncio.gather(*started)
        assert consistent(pool) == 2 and pool.busy == 0
        await pool.provision("owner-b", b, "provisioned-concurrency")
        assert consistent(pool) == 3 and pool.busy == 0
        # A provisioned environment taken and held during its invocation.
        held = next(env for envs in pool._held.values() for env in envs)  # noqa: SLF001
        held.gate = asyncio.Event()
        running = asyncio.ensure_future(pool.invoke(b, b"{}", timeout_s=3, client_context=None))
        await asyncio.sleep(0.01)
        assert consistent(pool) == 2 and pool.busy == 1
        held.gate.set()
        await running
        assert consistent(pool) == 3 and pool.busy == 0
        # The cap reached: a new function's cold start evicts the least recently used idle one.
        await pool.invoke(c, b"{}", timeout_s=3, client_context=None)
        assert consistent(pool) == 3 and pool.busy == 0
        # A new configuration of c retires the old one's idle environments.
        await pool.invoke(target("c", "r2"), b"{}", timeout_s=3, client_context=None)
        consistent(pool)
        pool.retire("000000000000", "us-east-1", "a")
        await asyncio.sleep(0.01)
        consistent(pool)
        pool.unprovision("owner-b")
        await asyncio.sleep(0.01)
        consistent(pool)
        await pool.close()
        assert consistent(pool) == 0 and pool.busy == 0

    asyncio.run(run())
