"""What the S3 handlers receive: the S3 repository and the blob store."""

from __future__ import annotations

from dataclasses import dataclass

from lamina.store import BlobStore, S3Store


@dataclass(frozen=True)
class S3Deps:
    """The S3 repository (buckets, objects) and the content-addressed blobs that hold the bytes."""

    store: S3Store
    blobs: BlobStore
