"""The function repository on a real SQLite file."""

from __future__ import annotations

from typing import Any

import pytest

from lamina.domain.functions import FunctionRef
from lamina.store import Database, FunctionRow, FunctionStore

ACCOUNT, REGION = "000000000000", "us-east-1"
CODE_A, CODE_B, LAYER = "a" * 64, "b" * 64, "c" * 64


def latest(name: str = "fn", code: str = CODE_A, **config: Any) -> FunctionRow:
    return FunctionRow(
        ACCOUNT, REGION, name, 0, {"FunctionName": name, "CodeSize": 10, **config}, code, 20, (LAYER,)
    )


def test_create_get_and_a_taken_name(db: Database) -> None:
    functions = FunctionStore(db)
    assert functions.create(latest())
    assert not functions.create(latest(code=CODE_B))
    assert functions.get(ACCOUNT, REGION, "fn") == latest()
    assert functions.get(ACCOUNT, REGION, "fn", 1) is None
    assert functions.get(ACCOUNT, "eu-west-1", "fn") is None


def test_create_checks_its_blob_inside_the_transaction(db: Database) -> None:
    """``ensure_blob`` (an S3 object's bytes still there) runs before the insert; raising inserts nothing."""
    functions = FunctionStore(db)
    calls: list[str] = []

    def gone() -> None:
        calls.append("checked")
        raise ValueError("the object was deleted meanwhile")

    with pytest.raises(ValueError):
        functions.create(latest(), ensure_blob=gone)
    assert calls == ["checked"] and functions.get(ACCOUNT, REGION, "fn") is None
    assert functions.create(latest(), ensure_blob=lambda: calls.append("ok"))
    assert calls[-1] == "ok" and functions.get(ACCOUNT, REGION, "fn") == latest()


def test_update_applies_a_change_or_nothing(db: Database) -> None:
    functions = FunctionStore(db)
    functions.create(latest())
    row = functions.update(ACCOUNT, REGION, "fn", lambda r: r.with_config({**r.config, "Timeout": 9}))
    assert row is not None and functions.get(ACCOUNT, REGION, "fn") == row
    assert row.config["Timeout"] == 9

    def refuse(r: FunctionRow) -> FunctionRow:
        raise ValueError("precondition failed")

    with pytest.raises(ValueError):
        functions.update(ACCOUNT, REGION, "fn", refuse)
    assert functions.get(ACCOUNT, REGION, "fn") == row
    assert functions.update(ACCOUNT, REGION, "nope", refuse) is None


def test_publish_numbers_versions_and_can_decline(db: Database) -> None:
    functions = FunctionStore(db)
    functions.create(latest())
    seen: list[tuple[int, int | None]] = []

    def make(latest_row: FunctionRow, newest: FunctionRow | None, number: int) -> FunctionRow | None:
        seen.append((number, None if newest is None else newest.seq))
        if newest is not None and newest.code_sha256 == latest_row.code_sha256:
            return None  # nothing changed since
        return FunctionRow(
            ACCOUNT, REGION, "fn", number, {"Version": str(number)}, latest_row.code_sha256, 20, ()
        )

    v1 = functions.publish(ACCOUNT, REGION, "fn", make)
    assert v1 is not None and v1.seq == 1
    assert functions.publish(ACCOUNT, REGION, "fn", make) == v1
    functions.update(ACCOUNT, REGION, "fn", lambda r: FunctionRow(**{**r.__dict__, "code_sha256": CODE_B}))
    v2 = functions.publish(ACCOUNT, REGION, "fn", make)
    assert v2 is not None and v2.seq == 2
    assert seen == [(1, None), (2, 1), (2, 1)]
    assert functions.publish(ACCOUNT, REGION, "nope", make) is None
    assert [r.seq for r in functions.versions(ACCOUNT, REGION, "fn", after=0, limit=10)] == [1, 2]
    assert [r.seq for r in functions.versions(ACCOUNT, REGION, "fn", after=1, limit=10)] == [2]


def test_list_rows_pages_by_name_and_version(db: Database) -> None:
    functions = FunctionStore(db)
    for name in ("b", "a", "c"):
        functions.create(latest(name))
    functions.publish(ACCOUNT, REGION, "a", lambda lt, nw, n: FunctionRow(**{**lt.__dict__, "seq": n}))

    def names(after: tuple[str, int] | None, all_versions: bool) -> list[tuple[str, int]]:
        rows = functions.list_rows(ACCOUNT, REGION, after=after, limit=3, all_versions=all_versions)
        return [(r.name, r.seq) for r in rows]

    assert names(None, False) == [("a", 0), ("b", 0), ("c", 0)]
    assert names(None, True) == [("a", 0), ("a", 1), ("b", 0)]
    assert names(("a", 1), True) == [("b", 0), ("c", 0)]


def test_delete_frees_blobs_nobody_else_has(db: Database) -> None:
    functions = FunctionStore(db)
    functions.create(latest("one", CODE_A))
    functions.create(latest("two", CODE_A))
    functions.publish(
        ACCOUNT,
        REGION,
        "one",
        lambda lt, nw, n: FunctionRow(**{**lt.__dict__, "seq": n, "code_sha256": CODE_B, "layer_shas": ()}),
    )
    freed: list[str] = []
    assert functions.delete(ACCOUNT, REGION, "one", 1, freed.append)
    assert freed == [CODE_B]
    assert not functions.delete(ACCOUNT, REGION, "one", 1, freed.append)
    assert functions.delete(ACCOUNT, REGION, "one", None, freed.append)
    assert freed == [CODE_B]  # "two" still has the code and the layer
    assert functions.delete(ACCOUNT, REGION, "two", None, freed.append)
    assert freed == [CODE_B, CODE_A, LAYER]
    assert functions.get(ACCOUNT, REGION, "two") is None
    # The name is free again, its version numbers start over.
    assert functions.create(latest("one"))
    v = functions.publish(ACCOUNT, REGION, "one", lambda lt, nw, n: FunctionRow(**{**lt.__dict__, "seq": n}))
    assert v is not None and v.seq == 1


def test_usage_and_states(db: Database) -> None:
    functions = FunctionStore(db)
    functions.create(latest("a", State="Pending"))
    functions.create(latest("b", State="Active", LastUpdateStatus="InProgress"))
    functions.create(latest("c", State="Active", LastUpdateStatus="Successful"))
    functions.publish(ACCOUNT, REGION, "c", lambda lt, nw, n: FunctionRow(**{**lt.__dict__, "seq": n}))
    assert functions.usage(ACCOUNT, REGION) == (3, 40)
    assert functions.usage(ACCOUNT, "eu-west-1") == (0, 0)
    assert sorted(r.name for r in functions.in_state("Pending", "InProgress")) == ["a", "b"]


def test_what_the_hyperplane_interfaces_need(db: Database) -> None:
    functions = FunctionStore(db)
    vpc = {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-2", "sg-1"], "VpcId": "vpc-1"}
    no_vpc = {"SubnetIds": [], "SecurityGroupIds": [], "VpcId": ""}
    functions.create(latest("active", State="Active", VpcConfig=vpc))
    functions.create(latest("pending", State="Pending", VpcConfig=vpc))
    functions.create(latest("idle", State="Inactive", VpcConfig=vpc))
    functions.create(latest("plain", State="Active", VpcConfig=no_vpc))
    functions.create(latest("bare", State="Active"))
    assert sorted(functions.vpc_configs_in_use(), key=str) == [(ACCOUNT, REGION, vpc), (ACCOUNT, REGION, vpc)]
    assert functions.active_in_vpc() == [FunctionRef(ACCOUNT, REGION, "active")]


def test_policies_per_version(db: Database) -> None:
    """A version's policy: the document GetPolicy answers, its RevisionId (also the version's), the
    authorizer's one-read ``function_policy``; publishing does not copy it, deleting drops it."""
    from lamina.domain.function_policy import FunctionPolicy

    functions = FunctionStore(db)
    functions.create(latest(RevisionId="r0"))
    statement: Any = {"Sid": "s", "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction"}
    assert functions.function_policy(ACCOUNT, REGION, "fn", None) is None
    updated = functions.update_policy(
        ACCOUNT, REGION, "fn", 0, lambda row, current: FunctionPolicy((*current.statements, statement), "r1")
    )
    assert updated is not None
    row, policy = updated
    assert row.config["RevisionId"] == "r1" and policy.statements == (statement,)
    document = policy.document()
    assert document is not None
    for qualifier in (None, "$LATEST"):
        assert functions.function_policy(ACCOUNT, REGION, "fn", qualifier) == document
    assert functions.get_policy(ACCOUNT, REGION, "fn", 0) == (row, policy)
    assert functions.get(ACCOUNT, REGION, "fn") == row

    def refuse(row: FunctionRow, current: FunctionPolicy) -> FunctionPolicy:
        raise ValueError("precondition failed")

    with pytest.raises(ValueError):
        functions.update_policy(ACCOUNT, REGION, "fn", 0, refuse)
    assert functions.function_policy(ACCOUNT, REGION, "fn", None) == document
    assert functions.update_policy(ACCOUNT, REGION, "fn", 1, refuse) is None

    functions.publish(ACCOUNT, REGION, "fn", lambda lt, newest, n: FunctionRow(**{**lt.__dict__, "seq": n}))
    assert functions.function_policy(ACCOUNT, REGION, "fn", "1") is None
    for qualifier in ("2", "alias", "valid-with-$"):
        assert functions.function_policy(ACCOUNT, REGION, "fn", qualifier) is None
    assert functions.function_policy(ACCOUNT, REGION, "other", None) is None
    # The last statement removed: no document, the RevisionId kept.
    cleared = functions.update_policy(ACCOUNT, REGION, "fn", 0, lambda row, current: FunctionPolicy((), "r2"))
    assert cleared is not None and cleared[1].document() is None
    assert functions.function_policy(ACCOUNT, REGION, "fn", None) is None
    assert functions.get_policy(ACCOUNT, REGION, "fn", 0) == (cleared[0], FunctionPolicy((), "r2"))
    functions.update_policy(ACCOUNT, REGION, "fn", 0, lambda row, current: FunctionPolicy((statement,), "r3"))
    functions.delete(ACCOUNT, REGION, "fn", None, on_unreferenced=lambda sha: None)
    functions.create(latest())
    assert functions.function_policy(ACCOUNT, REGION, "fn", None) is None


def test_the_authorize_stage_reads_function_policies_by_arn(db: Database) -> None:
    from types import SimpleNamespace

    from lamina.domain.arns import Arn
    from lamina.domain.function_policy import FunctionPolicy
    from lamina.services.lambda_.resource_policies import reader

    functions = FunctionStore(db)
    functions.create(latest())
    statement: Any = {"Sid": "s", "Effect": "Allow", "Principal": "*", "Action": "lambda:GetFunction"}
    functions.update_policy(ACCOUNT, REGION, "fn", 0, lambda row, current: FunctionPolicy((statement,), "r"))
    platform: Any = SimpleNamespace(functions=functions)
    read = reader(platform)
    base = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn"
    expected = functions.function_policy(ACCOUNT, REGION, "fn", None)
    assert expected is not None
    for arn, document in (
        (base, expected),
        (f"{base}:$LATEST", expected),
        (f"{base}:1", None),
        (f"{base}:live", None),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other", None),
    ):
        parsed = Arn.parse(arn)
        assert parsed is not None
        assert read(parsed) == document


def test_tags_live_with_the_function(db: Database) -> None:
    functions = FunctionStore(db)
    assert functions.tags(ACCOUNT, REGION, "fn") is None
    assert functions.create(latest(RevisionId="r0"), {"team": "blue"})
    assert functions.tags(ACCOUNT, REGION, "fn") == {"team": "blue"}
    new = functions.update_tags(ACCOUNT, REGION, "fn", lambda t: {**t, "env": "dev"}, "r1")
    assert new == {"team": "blue", "env": "dev"} == functions.tags(ACCOUNT, REGION, "fn")
    row = functions.get(ACCOUNT, REGION, "fn")
    assert row is not None and row.config["RevisionId"] == "r1"

    def refuse(tags: dict[str, str]) -> dict[str, str]:
        raise ValueError("too many")

    with pytest.raises(ValueError):
        functions.update_tags(ACCOUNT, REGION, "fn", refuse, "r2")
    assert functions.tags(ACCOUNT, REGION, "fn") == new
    row = functions.get(ACCOUNT, REGION, "fn")
    assert row is not None and row.config["RevisionId"] == "r1"
    assert functions.update_tags(ACCOUNT, REGION, "nope", lambda t: t, "r3") is None
    functions.delete(ACCOUNT, REGION, "fn", None, on_unreferenced=lambda sha: None)
    assert functions.tags(ACCOUNT, REGION, "fn") is None
    assert functions.create(latest())
    assert functions.tags(ACCOUNT, REGION, "fn") == {}
