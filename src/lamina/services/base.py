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
    """The process-wide state handlers work on: stores, signer, settings."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.metadata = Metadata(data_dir / "lamina.db")
        self.blobs = BlobStore(data_dir / "blobs")
        key = self.metadata.setting("download-signing-key", lambda: os.urandom(32).hex())
        self.signer = UrlSigner(bytes.fromhex(key))

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def close(self) -> None:
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
