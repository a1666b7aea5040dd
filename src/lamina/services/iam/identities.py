"""IAM identities as an authorizer sees them: who a user or role is and every policy that speaks
for it.

IAM evaluates a user's identity-based policies as the union of its inline and attached managed
policies and those of every group it belongs to; a role has its own inline and attached policies
only. A permissions boundary, when set, caps them (IAM User Guide, "Policy evaluation logic" and
"Permissions boundaries for IAM entities").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from lamina.domain.iam_managed import MANAGED
from lamina.domain.models import Tag
from lamina.store.iam import Entity, IamStore


class IdentityKind(Enum):
    USER = "user"
    ROLE = "role"


@dataclass(frozen=True)
class Identity:
    """An IAM user or role with the policy documents (JSON text) evaluated for it."""

    kind: IdentityKind
    account: str
    name: str
    arn: str  # arn:aws:iam::ACCT:user/path/name or role/path/name
    unique_id: str  # AIDA... / AROA...
    documents: tuple[str, ...]  # inline + attached managed (+ the user's groups' inline + attached)
    boundary: str | None  # the permissions boundary's policy document, if any
    tags: Mapping[str, str]  # aws:PrincipalTag/*


def policy_document(iam: IamStore, account: str, arn: str) -> str | None:
    """The default version's document of an AWS managed or the account's customer policy."""
    if arn in MANAGED:
        return MANAGED[arn].document
    found = iam.get_policy(account, arn)
    return found[1] if found is not None else None


def _attached(iam: IamStore, account: str, arns: list[str]) -> list[str]:
    return [doc for arn in arns if (doc := policy_document(iam, account, arn)) is not None]


def _tags(tags: list[Tag] | None) -> Mapping[str, str]:
    return MappingProxyType({str(t["Key"]): str(t.get("Value", "")) for t in tags or []})


def load_identity(iam: IamStore, account: str, kind: IdentityKind, name: str) -> Identity | None:
    """The user or role ``name`` of ``account`` with its policies, or None if there is none."""
    if kind is IdentityKind.ROLE:
        role = iam.get_role(account, name)
        if role is None:
            return None
        real = str(role["RoleName"])
        docs = [doc for _, doc in iam.inline_policies(account, real)]
        docs += _attached(iam, account, iam.attached(account, real))
        boundary_arn = role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
        arn, unique_id, tags = str(role["Arn"]), str(role["RoleId"]), role.get("Tags")
    else:
        user = iam.get_user(account, name)
        if user is None:
            return None
        real = str(user["UserName"])
        docs = [doc for _, doc in iam.entity_inline(Entity.USER, account, real)]
        docs += _attached(iam, account, iam.entity_attached(Entity.USER, account, real))
        for group in iam.user_groups(account, real):
            group_name = str(group["GroupName"])
            docs += [doc for _, doc in iam.entity_inline(Entity.GROUP, account, group_name)]
            docs += _attached(iam, account, iam.entity_attached(Entity.GROUP, account, group_name))
        boundary_arn = user.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
        arn, unique_id, tags = str(user["Arn"]), str(user["UserId"]), user.get("Tags")
    boundary = policy_document(iam, account, boundary_arn) if boundary_arn else None
    return Identity(kind, account, real, arn, unique_id, tuple(docs), boundary, _tags(tags))
