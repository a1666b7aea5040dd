"""Persistence: metadata (SQLite) and content-addressed blobs."""

from lamina.store.blobs import BlobStore, BlobStoreError
from lamina.store.metadata import Metadata, MetadataError

__all__ = ["BlobStore", "BlobStoreError", "Metadata", "MetadataError"]
