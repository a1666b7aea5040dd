"""What the authorizer reads: a user's or role's identity with every policy that speaks for it,
and users' access keys as credentials (on a real SQLite file)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.api.auth import Credentials
from lamina.domain.accounts import Account
from lamina.domain.iam_managed import MANAGED
from lamina.domain.models import Role
from lamina.services.iam.handlers import ADMINISTRATOR_ACCESS, provision_user
from lamina.services.iam.identities import Identity, IdentityKind, load_identity
from lamina.store import Entity, IamStore, SqliteDatabase

ACCOUNT = "000000000000"
CUSTOMER = "arn:aws:iam::000000000000:policy/c"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def iam(tmp_path: Path) -> Iterator[IamStore]:
    db = SqliteDatabase(tmp_path / "lamina.db")
    yield IamStore(db)
    db.close()


def test_a_users_identity_gathers_its_groups_policies(iam: IamStore) -> None:
    provision_user(iam, ACCOUNT, "ann", NOW)
    ann = iam.get_user(ACCOUNT, "ann")
    assert ann is not None
    ann["Tags"] = [{"Key": "team", "Value": "a"}]
    ann["PermissionsBoundary"] = {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
        "PermissionsBoundaryArn": CUSTOMER,
    }
    iam.put_user(ACCOUNT, ann, create=False)
    iam.put_policy(ACCOUNT, {"Arn": CUSTOMER}, "{customer}", create=True)
    iam.put_entity_inline(Entity.USER, ACCOUNT, "ann", "own", "{own}")
    iam.put_group(ACCOUNT, {"GroupName": "Ops"}, create=True)
    iam.add_member(ACCOUNT, "Ops", "ann")
    iam.put_entity_inline(Entity.GROUP, ACCOUNT, "Ops", "g", "{group}")
    iam.attach_entity(Entity.GROUP, ACCOUNT, "Ops", CUSTOMER)
    iam.attach_entity(Entity.GROUP, ACCOUNT, "Ops", "arn:aws:iam::000000000000:policy/deleted")

    found = load_identity(iam, ACCOUNT, IdentityKind.USER, "ANN")
    assert found == Identity(
        IdentityKind.USER,
        ACCOUNT,
        "ann",
        f"arn:aws:iam::{ACCOUNT}:user/ann",
        str(ann["UserId"]),
        ("{own}", MANAGED[ADMINISTRATOR_ACCESS].document, "{group}", "{customer}"),
        "{customer}",
        {"team": "a"},
    )
    assert load_identity(iam, ACCOUNT, IdentityKind.USER, "nobody") is None
    assert load_identity(iam, ACCOUNT, IdentityKind.ROLE, "ann") is None


def test_a_roles_identity(iam: IamStore) -> None:
    role: Role = {
        "RoleName": "Runner",
        "RoleId": "AROAX",
        "Arn": f"arn:aws:iam::{ACCOUNT}:role/svc/Runner",
        "Tags": [{"Key": "k", "Value": "v"}],
    }
    iam.put_role(ACCOUNT, role, create=True)
    iam.put_inline(ACCOUNT, "Runner", "p", "{inline}")
    iam.attach(ACCOUNT, "Runner", ADMINISTRATOR_ACCESS)
    found = load_identity(iam, ACCOUNT, IdentityKind.ROLE, "runner")
    assert found is not None
    assert (found.name, found.arn, found.unique_id) == ("Runner", role["Arn"], "AROAX")
    assert found.documents == ("{inline}", MANAGED[ADMINISTRATOR_ACCESS].document)
    assert found.boundary is None and dict(found.tags) == {"k": "v"}


def test_provisioning_a_user_happens_once(iam: IamStore) -> None:
    assert provision_user(iam, ACCOUNT, "admin", NOW)
    iam.detach_entity(Entity.USER, ACCOUNT, "admin", ADMINISTRATOR_ACCESS)
    assert not provision_user(iam, ACCOUNT, "ADMIN", NOW)
    assert iam.entity_attached(Entity.USER, ACCOUNT, "admin") == []


def test_user_access_keys_are_credentials_while_active(iam: IamStore) -> None:
    provision_user(iam, ACCOUNT, "ann", NOW)
    iam.add_access_key(ACCOUNT, "ann", "AKIAANN", "secret", NOW.isoformat(), limit=2)
    creds = Credentials([Account(ACCOUNT, "rootkey", "rs")], iam, lambda: 0.0)
    found = creds.lookup("AKIAANN")
    assert found is not None
    assert (found.account_id, found.secret_access_key, found.arn) == (
        ACCOUNT,
        "secret",
        f"arn:aws:iam::{ACCOUNT}:user/ann",
    )
    assert not Credentials.principal(found).is_root
    iam.set_access_key_status(ACCOUNT, "ann", "AKIAANN", "Inactive")
    assert creds.lookup("AKIAANN") is None
    iam.delete_access_key(ACCOUNT, "ann", "AKIAANN")
    assert creds.lookup("AKIAANN") is None
    assert creds.lookup("AKIAUNKNOWN") is None
    root = creds.lookup("rootkey")
    assert root is not None and Credentials.principal(root).is_root


def test_an_accounts_file_user_entry_signs_as_the_user(iam: IamStore) -> None:
    creds = Credentials([Account(ACCOUNT, "AKIDADMIN", "s", user="admin")], iam, lambda: 0.0)
    before = creds.lookup("AKIDADMIN")
    assert before is not None and before.arn == f"arn:aws:iam::{ACCOUNT}:user/admin"
    provision_user(iam, ACCOUNT, "admin", NOW)
    admin = iam.get_user(ACCOUNT, "admin")
    assert admin is not None
    iam.rename_user(
        ACCOUNT, "admin", {**admin, "Path": "/ops/", "Arn": f"arn:aws:iam::{ACCOUNT}:user/ops/admin"}
    )
    moved = creds.lookup("AKIDADMIN")
    assert moved is not None and moved.arn == f"arn:aws:iam::{ACCOUNT}:user/ops/admin"
