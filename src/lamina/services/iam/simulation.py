"""The IAM operations of the policy simulator: whose policies take part, read from the store
(the decisions themselves are :mod:`lamina.services.iam.simulator`'s)."""

from __future__ import annotations

from typing import Any

from lamina.domain.arns import Arn
from lamina.domain.iam_managed import MANAGED
from lamina.errors import AwsError
from lamina.services.base import RequestContext
from lamina.services.iam.identities import policy_document
from lamina.services.iam.simulator import SourcedPolicy, caller_for, inputs, invalid_input, simulate, sourced
from lamina.store.iam import Entity, IamStore


def _no_entity(kind: str, name: str) -> AwsError:
    return AwsError(
        f"The {kind} with name {name} cannot be found.", code="NoSuchEntity", status=404, sender_fault=True
    )


def _managed(iam: IamStore, account: str, arns: list[str]) -> list[SourcedPolicy]:
    out = []
    for arn in arns:
        document = policy_document(iam, account, arn)
        if document is not None:
            kind = "aws-managed" if arn in MANAGED else "user-managed"
            out.append(sourced(arn.rsplit("/", 1)[-1], kind, document))
    return out


def _inline(pairs: list[tuple[str, str]], kind: str) -> list[SourcedPolicy]:
    return [sourced(name, kind, document) for name, document in pairs]


def _boundary(iam: IamStore, account: str, entity: dict[str, Any]) -> list[SourcedPolicy]:
    arn = (entity.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    return _managed(iam, account, [arn]) if isinstance(arn, str) else []


def principal_policies(
    iam: IamStore, account: str, source_arn: str
) -> tuple[list[SourcedPolicy], list[SourcedPolicy]]:
    """(identity policies, permissions boundary) of the user, group or role ``source_arn`` names:
    a user's include its groups'."""
    arn = Arn.parse(source_arn)
    kind, _, rest = (arn.resource if arn is not None else "").partition("/")
    name = rest.rsplit("/", 1)[-1]
    if arn is None or arn.service != "iam" or kind not in ("user", "group", "role") or not name:
        raise invalid_input(f"Invalid Entity Arn: {source_arn} does not clearly define entity type and name.")
    if arn.account != account:
        raise _no_entity(kind, name)
    if kind == "role":
        role = iam.get_role(account, name)
        if role is None:
            raise _no_entity("role", name)
        real = str(role["RoleName"])
        identity = _inline(iam.inline_policies(account, real), "role")
        identity += _managed(iam, account, iam.attached(account, real))
        return identity, _boundary(iam, account, dict(role))
    if kind == "group":
        group = iam.get_group(account, name)
        if group is None:
            raise _no_entity("group", name)
        real = str(group["GroupName"])
        identity = _inline(iam.entity_inline(Entity.GROUP, account, real), "group")
        return identity + _managed(iam, account, iam.entity_attached(Entity.GROUP, account, real)), []
    user = iam.get_user(account, name)
    if user is None:
        raise _no_entity("user", name)
    real = str(user["UserName"])
    identity = _inline(iam.entity_inline(Entity.USER, account, real), "user")
    identity += _managed(iam, account, iam.entity_attached(Entity.USER, account, real))
    for group in iam.user_groups(account, real):
        group_name = str(group["GroupName"])
        identity += _inline(iam.entity_inline(Entity.GROUP, account, group_name), "group")
        identity += _managed(iam, account, iam.entity_attached(Entity.GROUP, account, group_name))
    return identity, _boundary(iam, account, dict(user))


def simulate_principal_policy(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """The principal's own policies (and any passed in PolicyInputList), as IAM's simulator answers."""
    source = str(params["PolicySourceArn"])
    identity, boundary = principal_policies(iam, ctx.account_id, source)
    identity += inputs(params, "PolicyInputList")
    if params.get("PermissionsBoundaryPolicyInputList"):  # replaces the entity's own boundary
        boundary = inputs(params, "PermissionsBoundaryPolicyInputList")
    caller = caller_for(str(params.get("CallerArn") or source), ctx.account_id)
    return simulate(caller=caller, identity=identity, boundary=boundary, params=params)


def simulate_custom_policy(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Only the policies passed in, as IAM's simulator answers."""
    caller_arn = str(params.get("CallerArn") or f"arn:aws:iam::{ctx.account_id}:user/simulated-user")
    return simulate(
        caller=caller_for(caller_arn, ctx.account_id),
        identity=inputs(params, "PolicyInputList"),
        boundary=inputs(params, "PermissionsBoundaryPolicyInputList"),
        params=params,
    )
