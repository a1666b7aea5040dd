"""What every operation handler receives, and how services are bound to models."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina.api.validation import MemberOverride
from lamina.domain.arns import root_user_arn
from lamina.domain.presign import UrlSigner
from lamina.store import BlobStore, Metadata


@dataclass(frozen=True)
class RequestContext:
    """Who is calling, where, and how to build URLs back to this server."""

    account_id: str
    region: str
    request_id: str
    base_url: str
    caller_arn: str = ""
    now_ms: int = 0

    @property
    def caller(self) -> str:
        return self.caller_arn or root_user_arn(self.account_id)


class Platform:
    """The process-wide state handlers work on: stores, signer, runtimes, settings."""

    def __init__(
        self, data_dir: Path, *, runtimes_dir: Path | None = None, max_environments: int = 32
    ) -> None:
        from lamina.runtime.catalog import RuntimeCatalog
        from lamina.services.lambda_.prepare import Preparer
        from lamina.store.functions import FunctionStore
        from lamina.store.trees import TreeStore

        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.metadata = Metadata(data_dir / "lamina.db")
        self.blobs = BlobStore(data_dir / "blobs")
        self.trees = TreeStore(data_dir / "trees", self.blobs)
        self.functions = FunctionStore(self.metadata)
        key = self.metadata.setting("download-signing-key", lambda: os.urandom(32).hex())
        self.signer = UrlSigner(bytes.fromhex(key))
        self.catalog = RuntimeCatalog(runtimes_dir)
        self.max_environments = max_environments
        self.preparer = Preparer(self)
        self.preparer.resume()

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

    def retire(self, account: str, region: str, name: str, seq: int | None) -> None:
        """Environments of a deleted or changed function stop being reused (hook for the invoker)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def close(self) -> None:
        self.preparer.close()
        self.metadata.close()


Handler = Callable[[Platform, RequestContext, dict[str, Any]], dict[str, Any]]


@dataclass
class ServiceBinding:
    """A service: its botocore model, handlers by operation name, and AWS's wire quirks."""

    model: Any
    handlers: dict[str, Handler]
    overrides: Mapping[str, Mapping[str, MemberOverride]] = field(default_factory=dict)
    # Largest request body per operation (AWS answers 413 above it); default for the rest.
    max_request_bytes: Mapping[str, int] = field(default_factory=dict)
    default_max_request_bytes: int = 6 * 1024 * 1024
    # AWS's order of members in multi-error validation messages, per operation.
    validation_order: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # Checks run before schema validation (AWS answers some errors first).
    prevalidators: Mapping[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)
