"""Persistence: the metadata database and its repositories (one per aggregate), and blobs.

Repositories are synchronous and may block: call them off the event loop (a thread pool).
Their interface, which a PostgreSQL implementation provides too, is described in
docs/architecture.md ("The store interface").
"""

from lamina.store.blobs import BlobStore, BlobStoreError, Spooled
from lamina.store.concurrency import ConcurrencyStore, Reservation, ReservedFunction
from lamina.store.console_sessions import (
    ConsoleDownload,
    ConsoleDownloadStore,
    ConsoleSession,
    ConsoleSessionStore,
)
from lamina.store.datadir import open_data_dir
from lamina.store.db import (
    LOOP_GUARD_ENV,
    Database,
    DatabaseError,
    SqliteDatabase,
    UnstorableText,
    open_existing,
)
from lamina.store.ec2 import Ec2Store, Ec2Tx
from lamina.store.engines import open_database
from lamina.store.event_configs import EventInvokeConfigStore
from lamina.store.events import EventStore, QueuedEvent
from lamina.store.function_settings import CodeSigningStore, FunctionSettingsStore, SettingKind
from lamina.store.functions import FunctionRow, FunctionStore
from lamina.store.hyperplane import HyperplaneStore, SharedInterface, groups_key
from lamina.store.iam import AccessKeyRecord, Entity, IamStore, Session
from lamina.store.layers import LayerStore
from lamina.store.nodes import NodeConflict, NodeStore
from lamina.store.provisioned import ProvisionedConfig, ProvisionedStore
from lamina.store.references import blob_referenced
from lamina.store.s3 import BucketDeletion, S3Store
from lamina.store.trees import TreeStore

__all__ = [
    "AccessKeyRecord",
    "LOOP_GUARD_ENV",
    "BlobStore",
    "BlobStoreError",
    "BucketDeletion",
    "CodeSigningStore",
    "ConcurrencyStore",
    "ConsoleDownload",
    "ConsoleDownloadStore",
    "ConsoleSession",
    "ConsoleSessionStore",
    "Database",
    "SqliteDatabase",
    "DatabaseError",
    "UnstorableText",
    "open_existing",
    "Ec2Store",
    "Ec2Tx",
    "Entity",
    "EventInvokeConfigStore",
    "EventStore",
    "FunctionRow",
    "FunctionSettingsStore",
    "FunctionStore",
    "HyperplaneStore",
    "IamStore",
    "LayerStore",
    "NodeConflict",
    "NodeStore",
    "ProvisionedConfig",
    "ProvisionedStore",
    "QueuedEvent",
    "Reservation",
    "S3Store",
    "ReservedFunction",
    "Session",
    "SettingKind",
    "SharedInterface",
    "Spooled",
    "TreeStore",
    "blob_referenced",
    "groups_key",
    "open_data_dir",
    "open_database",
]
