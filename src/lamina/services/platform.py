"""The process-wide state operation handlers work on: stores, signer, runtimes, environments."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Coroutine, Mapping
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, TypeVar

from lamina.domain.presign import UrlSigner
from lamina.net.attach import attach
from lamina.net.manager import DataplaneManager
from lamina.net.uplink import UplinkSpec
from lamina.runtime.catalog import RuntimeCatalog
from lamina.runtime.logs import LogStore
from lamina.runtime.pool import EnvironmentPool
from lamina.store import BlobStore, Metadata
from lamina.store.ec2 import DEFAULT_PUBLIC_POOL, Ec2Store
from lamina.store.functions import FunctionStore
from lamina.store.iam import IamStore, Session
from lamina.store.trees import TreeStore

T = TypeVar("T")

log = logging.getLogger("lamina.net")
_told_why_no_dataplane = False


def _dataplane(platform: Platform) -> DataplaneManager | None:
    """The VPC data plane when this process may build it (root, iproute2 and nftables), else None,
    saying why once per process."""
    from lamina.net.commands import DataplaneError, tool

    global _told_why_no_dataplane
    why = None
    if os.geteuid() != 0:
        why = "not running as root"
    else:
        try:
            tool("ip")
            tool("nft")
        except DataplaneError as exc:
            why = str(exc)
    if why is None:
        try:
            return DataplaneManager(
                platform.ec2,
                platform.data_dir / "run",
                uplink=platform.uplink,
                public_pool=platform.ec2.public_pool,
            )
        except (OSError, DataplaneError) as exc:
            why = f"cannot set it up: {exc}"
    if not _told_why_no_dataplane:
        _told_why_no_dataplane = True
        log.warning("VPC data plane off (%s): VPC resources are stored but carry no traffic", why)
    return None


class Platform:
    def __init__(
        self,
        data_dir: Path,
        *,
        runtimes_dir: Path | None = None,
        max_environments: int = 32,
        idle_timeout_s: float = 600.0,
        endpoint_port: int = 4566,
        credentials: Mapping[str, tuple[str, str]] | None = None,
        event_retry_delay_s: float = 60.0,
        eni_release_delay_s: float = 30.0,
        vpc_idle_reclaim_s: float = 14 * 24 * 3600.0,
        uplink: UplinkSpec | None = None,
        public_ip_pool: IPv4Network = DEFAULT_PUBLIC_POOL,
    ) -> None:
        """``uplink``: the way out of VPCs and the default network (None: none); Elastic IPs are
        allocated from ``public_ip_pool``."""
        from lamina.services.lambda_.invoke import EventQueue
        from lamina.services.lambda_.prepare import Preparer
        from lamina.services.lambda_.vpc import Hyperplane

        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.metadata = Metadata(data_dir / "lamina.db")
        self.blobs = BlobStore(data_dir / "blobs")
        self.trees = TreeStore(data_dir / "trees", self.blobs)
        self.functions = FunctionStore(self.metadata)
        self.iam = IamStore(self.metadata)
        self.ec2 = Ec2Store(self.metadata, public_pool=public_ip_pool)
        self.uplink = uplink
        # Before anything that may change EC2 state, so it hears of every change.
        self.dataplane = _dataplane(self)
        key = self.metadata.setting("download-signing-key", lambda: os.urandom(32).hex())
        self.signer = UrlSigner(bytes.fromhex(key))
        self.catalog = RuntimeCatalog(runtimes_dir)
        self.max_environments = max_environments
        self.idle_timeout_s = idle_timeout_s
        self.endpoint_port = endpoint_port
        self._credentials = dict(credentials or {})
        self._function_sessions: dict[tuple[str, str, str], Session] = {}
        # Invoke's per-configuration Targets (services/lambda_/invoke.py), reused by warm invokes.
        self.targets: dict[tuple[str, str, str, int, str], tuple[float, Any]] = {}
        self.logs = LogStore(data_dir / "logs")
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pool: EnvironmentPool | None = None
        self.events = EventQueue(self, retry_delay_s=event_retry_delay_s)
        self.hyperplane = Hyperplane(self, release_delay_s=eni_release_delay_s)
        self.preparer = Preparer(self)
        self.preparer.resume()
        self.hyperplane.start_idle_reclaim(vpc_idle_reclaim_s)
        if self.dataplane is not None and not self.dataplane.reconcile_all():
            log.warning("the VPC data plane is still being rebuilt from the database")

    def runtimes(self) -> list[str]:
        """Runtimes this host can run, in a stable order."""
        return self.catalog.offered()

    def forget_blob(self, sha256_hex: str) -> None:
        """A blob nobody refers to any more: remove it and its extracted tree."""
        self.blobs.delete(sha256_hex)
        self.trees.remove(sha256_hex)

    def trees_size(self, sha256_hex: str) -> int:
        """Unzipped size of a layer blob (its layer version rows know it, deleted or not)."""
        row = self.metadata.read(
            lambda c: c.execute(
                "SELECT unzipped_size FROM layer_versions WHERE sha256=? LIMIT 1", (sha256_hex,)
            ).fetchone()
        )
        return int(row[0]) if row else 0

    def credentials_for(self, account: str) -> tuple[str, str]:
        """The long-term keys of an account."""
        return self._credentials.get(account, ("", ""))

    def function_credentials(self, account: str, role_arn: str, function: str) -> tuple[str, str, str]:
        """Temporary credentials of a function's execution role (session named after the function),
        reused while they have more than an hour left, as Lambda refreshes them for new environments."""
        from lamina.errors import InvalidParameterValueException
        from lamina.services.sts.handlers import issue_session

        key = (account, role_arn, function)
        cached = self._function_sessions.get(key)
        if cached is not None and cached.expires - time.time() > 3600:
            return cached.access_key, cached.secret, cached.token
        parts = role_arn.split(":", 5)
        role = self.iam.get_role(parts[4], parts[5].rsplit("/", 1)[-1]) if len(parts) == 6 else None
        if role is None:
            raise InvalidParameterValueException(
                "The role defined for the function cannot be assumed by Lambda."
            )
        session = issue_session(self, parts[4], role, function, 43_200)
        self._function_sessions[key] = session
        return session.access_key, session.secret, session.token

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    # -- the event loop side: environments and the event queue --------------------------------

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called on the server's loop at startup."""
        self.loop = loop
        self.logs.start()
        self._pool = EnvironmentPool(
            self.data_dir / "envs",
            self.logs,
            attacher=attach,
            max_environments=self.max_environments,
            idle_timeout_s=self.idle_timeout_s,
        )
        self.events.start(loop)

    @property
    def pool(self) -> EnvironmentPool:
        if self._pool is None:
            raise RuntimeError("the platform has no event loop attached")
        return self._pool

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop from a worker thread and wait for its result."""
        if self.loop is None:
            coro.close()
            raise RuntimeError("the platform has no event loop attached")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def retire(self, account: str, region: str, name: str, seq: int | None) -> None:
        """Environments of a deleted or changed function stop being reused."""
        if self.loop is not None and self._pool is not None:
            self.loop.call_soon_threadsafe(self._pool.retire, account, region, name)

    async def aclose(self) -> None:
        await self.events.close()
        if self._pool is not None:
            await self._pool.close()
        await asyncio.get_running_loop().run_in_executor(None, self.logs.close)
        if self.dataplane is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.dataplane.close)

    def close(self) -> None:
        self.hyperplane.close()
        self.preparer.close()
        if self.dataplane is not None:
            self.dataplane.close()
        self.metadata.close()
