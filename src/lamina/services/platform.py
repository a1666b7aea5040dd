"""What operation handlers work with: the stores, the environments, the data plane, the workers.

Built and wired by the composition root (:mod:`lamina.server`), which constructs every part and
hands it in; this class constructs nothing and starts nothing (the supervisor starts the workers).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from lamina.domain.functions import FunctionRef
from lamina.domain.presign import UrlSigner
from lamina.net.manager import DataplaneManager
from lamina.runtime.catalog import RuntimeCatalog
from lamina.runtime.environment import Target
from lamina.runtime.pool import EnvironmentPool
from lamina.runtime.public_api import ApiAccess
from lamina.store import (
    BlobStore,
    CodeSigningStore,
    ConcurrencyStore,
    Ec2Store,
    FunctionSettingsStore,
    FunctionStore,
    IamStore,
    LayerStore,
    TreeStore,
)
from lamina.store.urls import FunctionUrlStore

if TYPE_CHECKING:
    from lamina.services.cluster import Cluster
    from lamina.services.lambda_.concurrency import InvocationLimits
    from lamina.services.lambda_.invoke import EventQueue
    from lamina.services.lambda_.prepare import Preparer
    from lamina.services.lambda_.provisioned import Provisioner
    from lamina.services.lambda_.roles import RoleSessions
    from lamina.services.lambda_.vpc import Hyperplane
    from lamina.services.s3.deps import S3Deps
    from lamina.services.vpc_nodes import VpcNodes


class Platform:
    """The parts handlers use. ``events``, ``hyperplane`` and ``preparer`` need the platform
    themselves: the composition root attaches them right after construction (and the stores of
    function settings, code signing configurations and reservations, and the invocation limits,
    with them)."""

    events: EventQueue
    # Reserved concurrency: the stored reservations, and the invoke-side limits that mirror them.
    reservations: ConcurrencyStore
    limits: InvocationLimits
    # Provisioned concurrency: the stored configurations and the worker keeping their environments.
    provisioned: Provisioner
    hyperplane: Hyperplane
    preparer: Preparer
    urls: FunctionUrlStore  # function URLs (services/lambda_/urls.py), attached like the workers
    settings: FunctionSettingsStore
    code_signing: CodeSigningStore
    s3: S3Deps  # S3's buckets and objects: code and layer content from S3 (services/lambda_/code.py)
    # How functions with a data plane reach the API (runtime.public_api); None: the in-sandbox relay.
    api_access: ApiAccess | None = None
    # This node among the nodes sharing the database (services/cluster.py); None: alone, always.
    cluster: Cluster | None = None
    # VPCs across nodes (services/vpc_nodes.py); None: no underlay address, every VPC homed here.
    vpc_nodes: VpcNodes | None = None

    def __init__(
        self,
        *,
        endpoint_port: int,
        max_environments: int,
        layers: LayerStore,
        blobs: BlobStore,
        trees: TreeStore,
        functions: FunctionStore,
        iam: IamStore,
        ec2: Ec2Store,
        dataplane: DataplaneManager | None,
        signer: UrlSigner,
        catalog: RuntimeCatalog,
        pool: EnvironmentPool,
        role_sessions: RoleSessions,
    ) -> None:
        self.endpoint_port = endpoint_port
        self.max_environments = max_environments
        self.layers = layers
        self.blobs = blobs
        self.trees = trees
        self.functions = functions
        self.iam = iam
        self.ec2 = ec2
        self.dataplane = dataplane
        self.signer = signer
        self.catalog = catalog
        self.pool = pool
        self.role_sessions = role_sessions
        # Invoke's per-configuration Targets (services/lambda_/invoke.py), reused by warm invokes.
        self.targets: dict[tuple[FunctionRef, int, str], tuple[float, Target]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- a worker of its own: it learns the server's loop at startup ----------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def aclose(self) -> None:
        self._loop = None

    # -- services to handlers -------------------------------------------------------------------

    def runtimes(self) -> list[str]:
        """Runtimes this host can run, in a stable order."""
        return self.catalog.offered()

    def forget_blob(self, sha256_hex: str) -> None:
        """A blob nobody refers to any more: remove it and its extracted tree."""
        self.blobs.delete(sha256_hex)
        self.trees.remove(sha256_hex)

    def trees_size(self, sha256_hex: str) -> int:
        """Unzipped size of a layer blob (its layer version rows know it, deleted or not)."""
        return self.layers.unzipped_size(sha256_hex)

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def retire(self, account: str, region: str, name: str) -> None:
        """Environments of a deleted or changed function stop being reused (called from any thread)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self.pool.retire, account, region, name)
