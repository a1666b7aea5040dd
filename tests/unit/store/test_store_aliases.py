"""Aliases in the function repository, on a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lamina.domain.function_policy import FunctionPolicy
from lamina.domain.models import AliasConfiguration
from lamina.store import Database, FunctionRow, FunctionStore
from lamina.store.aliases import AliasWrite

ACCOUNT, REGION = "000000000000", "us-east-1"


def version(seq: int, name: str = "fn") -> FunctionRow:
    return FunctionRow(
        ACCOUNT, REGION, name, seq, {"FunctionName": name, "Version": str(seq)}, "a" * 64, 1, ()
    )


def alias(name: str, primary: int, extra: int | None = None) -> Callable[..., AliasWrite]:
    def change(current: AliasConfiguration | None, exists: Callable[[int], bool]) -> AliasWrite:
        if not exists(primary) or (extra is not None and not exists(extra)):
            raise LookupError("no such version")
        config: AliasConfiguration = {
            "Name": name,
            "FunctionVersion": str(primary),
            "RevisionId": f"r{primary}",
        }
        if extra is not None:
            config["RoutingConfig"] = {"AdditionalVersionWeights": {str(extra): 0.5}}
        return AliasWrite(config, primary, extra)

    return change


@pytest.fixture
def functions(db: Database) -> FunctionStore:
    store = FunctionStore(db)
    store.create(version(0))
    for _ in (1, 2):
        store.publish(ACCOUNT, REGION, "fn", lambda latest, newest, n: version(n))
    return store


def test_put_get_list_and_delete(functions: FunctionStore) -> None:
    aliases = functions.aliases
    assert aliases.put(ACCOUNT, REGION, "nope", "live", alias("live", 1)) is None  # no such function
    live = aliases.put(ACCOUNT, REGION, "fn", "live", alias("live", 1))
    canary = aliases.put(ACCOUNT, REGION, "fn", "canary", alias("canary", 2, 1))
    assert aliases.get(ACCOUNT, REGION, "fn", "live") == live
    assert aliases.list(ACCOUNT, REGION, "fn", version=None, after=None, limit=10) == [canary, live]
    assert aliases.list(ACCOUNT, REGION, "fn", version=1, after=None, limit=10) == [live]
    assert aliases.list(ACCOUNT, REGION, "fn", version=None, after="canary", limit=10) == [live]
    with pytest.raises(LookupError):
        aliases.put(ACCOUNT, REGION, "fn", "broken", alias("broken", 9))
    assert aliases.get(ACCOUNT, REGION, "fn", "broken") is None
    assert aliases.delete(ACCOUNT, REGION, "fn", "live")
    assert not aliases.delete(ACCOUNT, REGION, "fn", "live")


def test_routes_read_the_alias_with_its_versions(functions: FunctionStore) -> None:
    functions.aliases.put(ACCOUNT, REGION, "fn", "canary", alias("canary", 2, 1))
    found = functions.alias_routes(ACCOUNT, REGION, "fn", "canary")
    assert found is not None
    config, versions = found
    assert config["Name"] == "canary" and sorted(versions) == [1, 2]
    assert versions[1] == functions.get(ACCOUNT, REGION, "fn", 1)
    assert functions.alias_routes(ACCOUNT, REGION, "fn", "nope") is None


def test_routed_versions_cannot_be_deleted_and_the_function_takes_its_aliases(
    functions: FunctionStore,
) -> None:
    functions.aliases.put(ACCOUNT, REGION, "fn", "canary", alias("canary", 2, 1))
    refused: list[list[str]] = []

    def in_use(names: list[str]) -> None:
        refused.append(names)
        raise PermissionError(names)

    with pytest.raises(PermissionError):
        functions.delete(ACCOUNT, REGION, "fn", 1, on_unreferenced=lambda sha: None, in_use=in_use)
    assert refused == [["canary"]] and functions.get(ACCOUNT, REGION, "fn", 1) is not None
    assert functions.delete(ACCOUNT, REGION, "fn", None, on_unreferenced=lambda sha: None, in_use=in_use)
    functions.create(version(0))
    assert functions.aliases.get(ACCOUNT, REGION, "fn", "canary") is None


def test_alias_policy(functions: FunctionStore) -> None:
    aliases = functions.aliases
    aliases.put(ACCOUNT, REGION, "fn", "live", alias("live", 1))
    assert functions.function_policy(ACCOUNT, REGION, "fn", "live") is None
    statement = {
        "Sid": "s",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:InvokeFunction",
        "Resource": "r",
    }
    new = aliases.update_policy(
        ACCOUNT, REGION, "fn", "live", lambda a, p: FunctionPolicy((statement,), "rev-1")
    )
    assert new is not None and new.revision_id == "rev-1"
    document = functions.function_policy(ACCOUNT, REGION, "fn", "live")
    assert document is not None and '"Sid":"s"' in document
    assert functions.function_policy(ACCOUNT, REGION, "fn", "1") is None  # the version's is its own
    found = aliases.get_policy(ACCOUNT, REGION, "fn", "live")
    assert found is not None and found[1] == new
    assert aliases.get(ACCOUNT, REGION, "fn", "live") == found[0]  # the alias itself is unchanged
    assert aliases.update_policy(ACCOUNT, REGION, "fn", "nope", lambda a, p: p) is None
