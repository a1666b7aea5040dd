"""The layer repository on a real SQLite file."""

from __future__ import annotations

import dataclasses

import pytest

from lamina.domain.layers import LayerVersion
from lamina.store import Database, FunctionRow, FunctionStore, LayerStore

ACCOUNT, REGION = "000000000000", "us-east-1"
SHA_A, SHA_B = "a" * 64, "b" * 64


def draft(name: str = "lib", sha: str = SHA_A, **changes: object) -> LayerVersion:
    base = LayerVersion(
        account=ACCOUNT,
        region=REGION,
        name=name,
        version=0,
        description="d",
        created_ms=1,
        compatible_runtimes=("python3.12",),
        compatible_architectures=None,
        license_info=None,
        sha256_hex=sha,
        code_size=10,
        unzipped_size=25,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_versions_are_numbered_per_layer(db: Database) -> None:
    layers = LayerStore(db)
    assert [layers.publish_layer_version(draft(), lambda: None).version for _ in range(3)] == [1, 2, 3]
    assert layers.publish_layer_version(draft("other"), lambda: None).version == 1
    got = layers.get_layer_version(ACCOUNT, REGION, "lib", 2)
    assert got == draft(version=2)
    assert layers.get_layer_version(ACCOUNT, REGION, "lib", 4) is None
    assert layers.get_layer_version(ACCOUNT, "eu-west-1", "lib", 1) is None


def test_a_publish_whose_blob_fails_leaves_nothing(db: Database) -> None:
    layers = LayerStore(db)

    def no_blob() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        layers.publish_layer_version(draft(), no_blob)
    assert layers.list_layer_versions(ACCOUNT, REGION, "lib", below=None, limit=None) == []
    # The number was not used up.
    assert layers.publish_layer_version(draft(), lambda: None).version == 1


def test_listing_newest_first_with_pages(db: Database) -> None:
    layers = LayerStore(db)
    for _ in range(5):
        layers.publish_layer_version(draft(), lambda: None)
    assert layers.delete_layer_version(ACCOUNT, REGION, "lib", 4, lambda sha: None)

    def versions(below: int | None, limit: int | None) -> list[int]:
        return [
            v.version for v in layers.list_layer_versions(ACCOUNT, REGION, "lib", below=below, limit=limit)
        ]

    assert versions(None, None) == [5, 3, 2, 1]
    assert versions(None, 2) == [5, 3]
    assert versions(3, 2) == [2, 1]


def test_layer_names_skip_layers_without_live_versions(db: Database) -> None:
    layers = LayerStore(db)
    for name in ("c", "a", "b"):
        layers.publish_layer_version(draft(name), lambda: None)
    layers.delete_layer_version(ACCOUNT, REGION, "b", 1, lambda sha: None)
    assert list(layers.layer_names(ACCOUNT, REGION, after=None)) == ["a", "c"]
    assert list(layers.layer_names(ACCOUNT, REGION, after="a")) == ["c"]


def test_delete_frees_a_blob_only_when_nothing_refers_to_it(db: Database) -> None:
    layers, functions = LayerStore(db), FunctionStore(db)
    layers.publish_layer_version(draft(sha=SHA_A), lambda: None)  # 1
    layers.publish_layer_version(draft(sha=SHA_A), lambda: None)  # 2, same content
    layers.publish_layer_version(draft(sha=SHA_B), lambda: None)  # 3
    functions.create(FunctionRow(ACCOUNT, REGION, "fn", 0, {}, "c" * 64, 1, (SHA_B,)))
    freed: list[str] = []
    assert layers.delete_layer_version(ACCOUNT, REGION, "lib", 1, freed.append)
    assert freed == []  # version 2 has the same blob
    assert layers.delete_layer_version(ACCOUNT, REGION, "lib", 2, freed.append)
    assert freed == [SHA_A]
    assert layers.delete_layer_version(ACCOUNT, REGION, "lib", 3, freed.append)
    assert freed == [SHA_A]  # a function has version 3 as a layer
    assert not layers.delete_layer_version(ACCOUNT, REGION, "lib", 3, freed.append)  # gone already
    # The deleted version's size is still known (for the functions that have it).
    assert layers.unzipped_size(SHA_B) == 25
    assert layers.unzipped_size("d" * 64) == 0


def test_policy_changes_are_atomic(db: Database) -> None:
    layers = LayerStore(db)
    layers.publish_layer_version(draft(), lambda: None)
    statement = {"Sid": "s1", "Action": "lambda:GetLayerVersion"}
    updated = layers.update_layer_policy(
        ACCOUNT, REGION, "lib", 1, lambda v: ((*v.policy, statement), "rev-1")
    )
    assert updated is not None and (updated.policy, updated.revision_id) == ((statement,), "rev-1")

    def refuse(v: LayerVersion) -> tuple[tuple[dict[str, object], ...], str | None]:
        raise ValueError("conflict")

    with pytest.raises(ValueError):
        layers.update_layer_policy(ACCOUNT, REGION, "lib", 1, refuse)
    stored = layers.get_layer_version(ACCOUNT, REGION, "lib", 1)
    assert stored is not None and (stored.policy, stored.revision_id) == ((statement,), "rev-1")
    assert layers.update_layer_policy(ACCOUNT, REGION, "lib", 9, refuse) is None
    # Deleting a version drops its policy.
    layers.delete_layer_version(ACCOUNT, REGION, "lib", 1, lambda sha: None)
    assert layers.update_layer_policy(ACCOUNT, REGION, "lib", 1, refuse) is None
