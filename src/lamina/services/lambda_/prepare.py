"""Preparing functions: extract code and layer trees, then flip the function to Active.

Runs in the background after CreateFunction / Update*; a change made meanwhile (new
RevisionId) wins, so a slow preparation never overwrites a newer configuration. After a
restart, functions left Pending or InProgress are prepared again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from lamina.domain import functions as F
from lamina.errors import AwsError
from lamina.linux import affinity
from lamina.services.lambda_.vpc import HyperplaneFailure, role_may_manage_interfaces
from lamina.store.functions import FunctionRow

if TYPE_CHECKING:
    from lamina.services.platform import Platform

log = logging.getLogger("lamina.prepare")


class Preparer:
    def __init__(self, platform: Platform, workers: int = 2) -> None:
        self.platform = platform
        # Started from pinned I/O workers: extraction may use every CPU.
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="lamina-prepare", initializer=affinity.release_thread
        )
        # Keyed by (function, RevisionId): one preparation per configuration.
        self._jobs: dict[tuple[F.FunctionRef, str], Future[None]] = {}
        self._lock = threading.Lock()

    def schedule(self, row: FunctionRow) -> None:
        key = (row.function, str(row.config.get("RevisionId")))
        with self._lock:
            self._jobs[key] = self._pool.submit(self._prepare, row)

    def wait(self, row: FunctionRow, timeout: float = 120) -> None:
        key = (row.function, str(row.config.get("RevisionId")))
        with self._lock:
            job = self._jobs.get(key)
        if job is not None:
            job.result(timeout)

    def resume(self) -> None:
        for row in self.platform.functions.in_state(F.State.PENDING.value, F.UpdateStatus.IN_PROGRESS.value):
            self.schedule(row)

    def _prepare(self, row: FunctionRow) -> None:
        creating = row.config.get("State") == F.State.PENDING.value
        try:
            self.platform.trees.ensure(row.code_sha256)
            for sha in row.layer_shas:
                self.platform.trees.ensure(sha)
            vpc = row.config.get("VpcConfig") or {}
            if vpc.get("VpcId"):
                if not role_may_manage_interfaces(self.platform, row.account, str(row.config.get("Role"))):
                    raise HyperplaneFailure(
                        "InsufficientRolePermissions",
                        "The function's execution role does not have permissions to call CreateNetworkInterface "
                        "on EC2.",
                    )
                enis = self.platform.hyperplane.ensure(row.account, row.region, row.name, vpc)
                dataplane = self.platform.dataplane
                nodes = self.platform.vpc_nodes
                if dataplane is not None and (
                    nodes is None or nodes.is_home((row.account, row.region, str(vpc["VpcId"])))
                ):
                    for eni in enis:
                        # Active only once the interface really exists on this host (its namespace);
                        # a VPC homed on another node builds it there (services/vpc_nodes.py).
                        dataplane.wait_interface_namespace(row.account, row.region, eni, timeout_s=10.0)
            outcome = None
            code = "InternalError"
        except HyperplaneFailure as exc:
            outcome, code = exc.reason, exc.code
        except Exception as exc:  # any failure makes the function Failed, with the reason
            log.exception("preparing %s failed", row.name)
            outcome = f"lamina could not prepare the function's code: {exc}"
            code = "InternalError"
        revision = row.config.get("RevisionId")

        def change(current: FunctionRow) -> FunctionRow:
            if current.config.get("RevisionId") != revision:
                return current  # changed meanwhile: that change's own preparation decides
            if outcome is None:
                config = F.next_revision_state(current.config)
            else:
                config = F.failed_state(current.config, code, outcome, creating=creating)
            config["RevisionId"] = str(uuid.uuid4())
            return current.with_config(config)

        self.platform.functions.update(row.account, row.region, row.name, change)
        if outcome is None:
            # The role's session is issued here, in the background, not by the first invoke.
            with contextlib.suppress(AwsError):
                self.platform.role_sessions.credentials(row.account, str(row.config.get("Role")), row.name)
            # Idle time counts from when the function (re)gained its VPC connection.
            self.platform.hyperplane.touch(row.function)
        with self._lock:
            self._jobs.pop((row.function, str(revision)), None)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
