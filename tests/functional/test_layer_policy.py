"""Layer version resource policies: lifecycle, RevisionId, cross-account reads and grants."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import pytest
from testzips import make_zip


def unique() -> str:
    return f"pol-{uuid.uuid4().hex[:10]}"


def test_policy_lifecycle(lam: Any) -> None:
    name = unique()
    pub = lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip()})
    arn = pub["LayerVersionArn"]
    s1 = lam.add_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="s1", Action="lambda:GetLayerVersion", Principal="*"
    )
    assert s1["ResponseMetadata"]["HTTPStatusCode"] == 201
    # Statement keys in AWS's order, principal "*" kept as a string.
    assert list(json.loads(s1["Statement"]).items()) == [
        ("Sid", "s1"),
        ("Effect", "Allow"),
        ("Principal", "*"),
        ("Action", "lambda:GetLayerVersion"),
        ("Resource", arn),
    ]
    got = lam.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert got["RevisionId"] == s1["RevisionId"]
    doc = json.loads(got["Policy"])
    assert (doc["Version"], doc["Id"]) == ("2012-10-17", "default")
    s2 = lam.add_layer_version_permission(
        LayerName=name,
        VersionNumber=1,
        StatementId="s2",
        Action="lambda:GetLayerVersion",
        Principal="111111111111",
        RevisionId=got["RevisionId"],
    )
    assert s2["RevisionId"] != s1["RevisionId"]
    assert json.loads(s2["Statement"])["Principal"] == {"AWS": "arn:aws:iam::111111111111:root"}
    got2 = lam.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert [s["Sid"] for s in json.loads(got2["Policy"])["Statement"]] == ["s1", "s2"]
    assert got2["RevisionId"] == s2["RevisionId"]
    removed = lam.remove_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="s2", RevisionId=got2["RevisionId"]
    )
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    got3 = lam.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert [s["Sid"] for s in json.loads(got3["Policy"])["Statement"]] == ["s1"]
    assert got3["RevisionId"] not in (s1["RevisionId"], s2["RevisionId"])
    lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="s1")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_layer_version_policy(LayerName=name, VersionNumber=1)


def test_organization_condition_rendered(lam: Any) -> None:
    name = unique()
    lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip()})
    r = lam.add_layer_version_permission(
        LayerName=name,
        VersionNumber=1,
        StatementId="org",
        Action="lambda:GetLayerVersion",
        Principal="*",
        OrganizationId="o-abcdefghij",
    )
    assert json.loads(r["Statement"])["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}


def test_cross_account_read_needs_a_grant(alice: Any, bob: Any) -> None:
    name = unique()
    pub = alice.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip()})
    layer_arn, version_arn = pub["LayerArn"], pub["LayerVersionArn"]
    denied = (
        f"User: arn:aws:iam::222222222222:root is not authorized to perform: lambda:GetLayerVersion on resource: "
        f"{version_arn} because no resource-based policy allows the lambda:GetLayerVersion action"
    )
    for call in (
        lambda: bob.get_layer_version(LayerName=layer_arn, VersionNumber=1),
        lambda: bob.get_layer_version_by_arn(Arn=version_arn),
    ):
        with pytest.raises(bob.exceptions.ClientError) as e:
            call()
        r = e.value.response
        assert (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]) == (
            403,
            "AccessDeniedException",
            denied,
        )
    # A bare name is always the caller's own layer.
    with pytest.raises(bob.exceptions.ResourceNotFoundException):
        bob.get_layer_version(LayerName=name, VersionNumber=1)

    alice.add_layer_version_permission(
        LayerName=name,
        VersionNumber=1,
        StatementId="bob",
        Action="lambda:GetLayerVersion",
        Principal="222222222222",
    )
    got = bob.get_layer_version(LayerName=layer_arn, VersionNumber=1)
    assert got["LayerVersionArn"] == version_arn
    assert (
        bob.get_layer_version_by_arn(Arn=version_arn)["Content"]["CodeSha256"] == pub["Content"]["CodeSha256"]
    )
    with urllib.request.urlopen(got["Content"]["Location"]) as resp:
        assert resp.status == 200

    # Never cross-account, grant or not.
    for call in (
        lambda: bob.list_layer_versions(LayerName=layer_arn),
        lambda: bob.delete_layer_version(LayerName=layer_arn, VersionNumber=1),
        lambda: bob.get_layer_version_policy(LayerName=layer_arn, VersionNumber=1),
        lambda: bob.add_layer_version_permission(
            LayerName=layer_arn,
            VersionNumber=1,
            StatementId="x",
            Action="lambda:GetLayerVersion",
            Principal="*",
        ),
        lambda: bob.remove_layer_version_permission(LayerName=layer_arn, VersionNumber=1, StatementId="bob"),
    ):
        with pytest.raises(bob.exceptions.ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert alice.get_layer_version(LayerName=name, VersionNumber=1)["Version"] == 1


def test_public_grant_and_other_versions(alice: Any, bob: Any, lam: Any) -> None:
    name = unique()
    alice.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip()})
    v2 = alice.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip()})
    alice.add_layer_version_permission(
        LayerName=name, VersionNumber=2, StatementId="public", Action="lambda:GetLayerVersion", Principal="*"
    )
    assert bob.get_layer_version_by_arn(Arn=v2["LayerVersionArn"])["Version"] == 2
    assert lam.get_layer_version_by_arn(Arn=v2["LayerVersionArn"])["Version"] == 2
    with pytest.raises(bob.exceptions.ClientError) as e:  # the grant is per version
        bob.get_layer_version(LayerName=v2["LayerArn"], VersionNumber=1)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    # A deleted version stops being readable, grant or not.
    alice.delete_layer_version(LayerName=name, VersionNumber=2)
    with pytest.raises(bob.exceptions.ClientError):
        bob.get_layer_version_by_arn(Arn=v2["LayerVersionArn"])


def test_org_conditioned_grant_does_not_open_access(alice: Any, bob: Any) -> None:
    name = unique()
    pub = alice.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip()})
    alice.add_layer_version_permission(
        LayerName=name,
        VersionNumber=1,
        StatementId="org",
        Action="lambda:GetLayerVersion",
        Principal="*",
        OrganizationId="o-abcdefghij",
    )
    with pytest.raises(bob.exceptions.ClientError) as e:
        bob.get_layer_version_by_arn(Arn=pub["LayerVersionArn"])
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
