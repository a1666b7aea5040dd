"""IAM operations for roles, users, groups, access keys and policies, with IAM's error codes and
messages.

IAM is global: state is per account, whatever region the request was signed for.
Policy documents are returned as IAM does, URL-encoded JSON (botocore decodes them).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import urllib.parse
from collections.abc import Callable
from typing import Any

from lamina.domain.arns import root_user_arn
from lamina.domain.iam_managed import MANAGED
from lamina.domain.models import AttachedPermissionsBoundary, Group, Policy, Role, Tag, User
from lamina.domain.policy import MalformedPolicy, PolicyKind, parse_policy
from lamina.errors import AwsError
from lamina.services.base import RequestContext
from lamina.services.iam import simulation
from lamina.store.iam import Entity, IamStore


def _err(code: str, status: int, message: str) -> AwsError:
    return AwsError(message, code=code, status=status, sender_fault=True)


def _no_role(name: str) -> AwsError:
    return _err("NoSuchEntity", 404, f"The role with name {name} cannot be found.")


def _no_role_policy(name: str) -> AwsError:
    return _err("NoSuchEntity", 404, f"The role policy with name {name} cannot be found.")


def _now(ctx: RequestContext) -> dt.datetime:
    return dt.datetime.fromtimestamp(ctx.now_ms / 1000, dt.UTC).replace(microsecond=0)


def _unique_id(prefix: str) -> str:
    return prefix + base64.b32encode(os.urandom(11)).decode()[:17]


def _encoded(document: str) -> str:
    return urllib.parse.quote(document, safe="")


def _check_document(document: str, kind: PolicyKind) -> None:
    try:
        parse_policy(document, kind)
    except MalformedPolicy as exc:
        raise _err("MalformedPolicyDocument", 400, str(exc)) from exc


def _path(params: dict[str, Any]) -> str:
    return str(params.get("Path") or "/")


def _role_out(role: Role, *, listing: bool = False) -> dict[str, Any]:
    """The wire form: IAM's serializer renders the date itself (the store keeps ISO text)."""
    out: dict[str, Any] = dict(role)
    out["CreateDate"] = dt.datetime.fromisoformat(out["CreateDate"])
    out["AssumeRolePolicyDocument"] = _encoded(out["AssumeRolePolicyDocument"])
    if listing:
        out.pop("PermissionsBoundary", None)
        out.pop("Tags", None)
    return out


def _listing(key: str, items: list[Any], params: dict[str, Any]) -> dict[str, Any]:
    """One page of a listing under ``key`` with its paging fields (see :func:`_page`)."""
    page, fields = _page(items, params)
    return {key: page, **fields}


def _role(iam: IamStore, ctx: RequestContext, name: str) -> Role:
    role = iam.get_role(ctx.account_id, name)
    if role is None:
        raise _no_role(name)
    return role


# -- roles ------------------------------------------------------------------------------------


def create_role(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["RoleName"]
    document = params["AssumeRolePolicyDocument"]
    _check_document(document, PolicyKind.TRUST)
    path = _path(params)
    role: Role = {
        "Path": path,
        "RoleName": name,
        "RoleId": _unique_id("AROA"),
        "Arn": f"arn:aws:iam::{ctx.account_id}:role{path}{name}",
        "CreateDate": _now(ctx).isoformat(),
        "AssumeRolePolicyDocument": document,
        "MaxSessionDuration": int(params.get("MaxSessionDuration") or 3600),
    }
    if params.get("Description") is not None:
        role["Description"] = params["Description"]
    if params.get("Tags"):
        role["Tags"] = _merged_tags([], params["Tags"], "TagsPerRole")
    if params.get("PermissionsBoundary"):
        role["PermissionsBoundary"] = _boundary(iam, ctx, params["PermissionsBoundary"])
    if not iam.put_role(ctx.account_id, role, create=True):
        raise _err("EntityAlreadyExists", 409, f"Role with name {name} already exists.")
    return {"Role": _role_out(role)}


def get_role(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return {"Role": _role_out(_role(iam, ctx, params["RoleName"]))}


def list_roles(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    prefix = params.get("PathPrefix") or "/"
    roles = [r for r in iam.list_roles(ctx.account_id) if str(r["Path"]).startswith(prefix)]
    # ListRoles leaves out PermissionsBoundary, RoleLastUsed and Tags (IAM API Reference, ListRoles).
    return _listing("Roles", [_role_out(r, listing=True) for r in roles], params)


def delete_role(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["RoleName"]
    _role(iam, ctx, name)
    blocked = iam.delete_role(ctx.account_id, name)
    if blocked == "policies":
        raise _err("DeleteConflict", 409, "Cannot delete entity, must delete policies first.")
    if blocked == "attached":
        raise _err("DeleteConflict", 409, "Cannot delete entity, must detach all policies first.")
    return {}


def update_assume_role_policy(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    _check_document(params["PolicyDocument"], PolicyKind.TRUST)
    role["AssumeRolePolicyDocument"] = params["PolicyDocument"]
    iam.put_role(ctx.account_id, role, create=False)
    return {}


# -- inline policies -----------------------------------------------------------------------------


def put_role_policy(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    _check_document(params["PolicyDocument"], PolicyKind.IDENTITY)
    iam.put_inline(ctx.account_id, role["RoleName"], params["PolicyName"], params["PolicyDocument"])
    return {}


def get_role_policy(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    document = iam.get_inline(ctx.account_id, role["RoleName"], params["PolicyName"])
    if document is None:
        raise _no_role_policy(params["PolicyName"])
    return {
        "RoleName": role["RoleName"],
        "PolicyName": params["PolicyName"],
        "PolicyDocument": _encoded(document),
    }


def delete_role_policy(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    if not iam.delete_inline(ctx.account_id, role["RoleName"], params["PolicyName"]):
        raise _no_role_policy(params["PolicyName"])
    return {}


def list_role_policies(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    names = [n for n, _ in iam.inline_policies(ctx.account_id, role["RoleName"])]
    return {"PolicyNames": names, "IsTruncated": False}


# -- managed policies -------------------------------------------------------------------------------


def _managed(iam: IamStore, ctx: RequestContext, arn: str) -> tuple[Policy, str] | None:
    """(Policy shape, document) of an AWS managed or customer policy visible to the account."""
    if arn in MANAGED:
        m = MANAGED[arn]
        policy: Policy = {
            "PolicyName": m.name,
            "PolicyId": m.policy_id,
            "Arn": m.arn,
            "Path": m.path,
            "DefaultVersionId": m.version_id,
            "AttachmentCount": iam.attachment_count(ctx.account_id, arn),
            "PermissionsBoundaryUsageCount": iam.boundary_usage_count(ctx.account_id, arn),
            "IsAttachable": True,
            "Description": m.description,
            "CreateDate": m.create_date,
            "UpdateDate": m.update_date,
        }
        return policy, m.document
    found = iam.get_policy(ctx.account_id, arn)
    if found is None:
        return None
    stored, document = found
    policy = stored.copy()
    policy["AttachmentCount"] = iam.attachment_count(ctx.account_id, arn)
    policy["PermissionsBoundaryUsageCount"] = iam.boundary_usage_count(ctx.account_id, arn)
    return policy, document


def _policy_out(policy: Policy) -> dict[str, Any]:
    out: dict[str, Any] = dict(policy)
    for key in ("CreateDate", "UpdateDate"):
        if isinstance(out.get(key), str):
            out[key] = dt.datetime.fromisoformat(out[key])
    return out


def create_policy(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["PolicyName"]
    document = params["PolicyDocument"]
    _check_document(document, PolicyKind.IDENTITY)
    path = _path(params)
    now = _now(ctx).isoformat()
    policy: Policy = {
        "PolicyName": name,
        "PolicyId": _unique_id("ANPA"),
        "Arn": f"arn:aws:iam::{ctx.account_id}:policy{path}{name}",
        "Path": path,
        "DefaultVersionId": "v1",
        "AttachmentCount": 0,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "CreateDate": now,
        "UpdateDate": now,
    }
    if params.get("Description") is not None:
        policy["Description"] = params["Description"]
    if not iam.put_policy(ctx.account_id, policy, document, create=True):
        raise _err(
            "EntityAlreadyExists",
            409,
            f"A policy called {name} already exists. Duplicate names are not allowed.",
        )
    return {"Policy": _policy_out(policy)}


def get_policy(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    found = _managed(iam, ctx, params["PolicyArn"])
    if found is None:
        raise _err("NoSuchEntity", 404, f"Policy {params['PolicyArn']} was not found.")
    return {"Policy": _policy_out(found[0])}


def get_policy_version(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    found = _managed(iam, ctx, params["PolicyArn"])
    if found is None or params["VersionId"] != found[0]["DefaultVersionId"]:
        raise _err(
            "NoSuchEntity",
            404,
            f"Policy {params['PolicyArn']} version {params['VersionId']} does not exist or is not attachable.",
        )
    policy, document = found
    return {
        "PolicyVersion": {
            "Document": _encoded(document),
            "VersionId": policy["DefaultVersionId"],
            "IsDefaultVersion": True,
            # The default version was made when the policy last changed (its UpdateDate).
            "CreateDate": _policy_out(policy)["UpdateDate"],
        }
    }


def delete_policy(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["PolicyArn"]
    if arn in MANAGED or iam.get_policy(ctx.account_id, arn) is None:
        raise _err("NoSuchEntity", 404, f"Policy {arn} was not found.")
    # A policy in use as a permissions boundary is attached to that entity too (IAM refuses both).
    if iam.attachment_count(ctx.account_id, arn) or iam.boundary_usage_count(ctx.account_id, arn):
        raise _err("DeleteConflict", 409, "Cannot delete a policy attached to entities.")
    iam.delete_policy(ctx.account_id, arn)
    return {}


def attach_role_policy(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    arn = params["PolicyArn"]
    if _managed(iam, ctx, arn) is None:
        raise _err("NoSuchEntity", 404, f"Policy {arn} does not exist or is not attachable.")
    iam.attach(ctx.account_id, role["RoleName"], arn)
    return {}


def detach_role_policy(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    if not iam.detach(ctx.account_id, role["RoleName"], params["PolicyArn"]):
        raise _err("NoSuchEntity", 404, f"Policy {params['PolicyArn']} was not found.")
    return {}


def list_attached_role_policies(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    attached = []
    for arn in iam.attached(ctx.account_id, role["RoleName"]):
        found = _managed(iam, ctx, arn)
        if found is not None:
            attached.append({"PolicyName": found[0]["PolicyName"], "PolicyArn": arn})
    return {"AttachedPolicies": attached, "IsTruncated": False}


# -- listing policies and their versions (ListPolicies, ListPolicyVersions) -------------------------
#
# AWS lists every AWS managed policy (well over a thousand); lamina lists the ones it carries
# (lamina.domain.iam_managed.MANAGED) with the account's own. Only each policy's default version is
# kept, so ListPolicyVersions answers with that one version.

_SCOPES = {"All": (True, True), "AWS": (True, False), "Local": (False, True)}


def _listed(policy: Policy) -> dict[str, Any]:
    """A ListPolicies entry: IAM's listing leaves out Description and Tags (GetPolicy has them)."""
    out = _policy_out(policy)
    out.pop("Description", None)
    out.pop("Tags", None)
    return out


def _page(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Marker/MaxItems paging (IAM's default page is 100 items): the page and the paging fields."""
    start = int(params["Marker"]) if str(params.get("Marker") or "").isdigit() else 0
    limit = int(params.get("MaxItems") or 100)
    truncated = start + limit < len(items)
    fields: dict[str, Any] = {"IsTruncated": truncated}
    if truncated:
        fields["Marker"] = str(start + limit)
    return items[start : start + limit], fields


def list_policies(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """ListPolicies: Scope (All, AWS, Local), OnlyAttached, PathPrefix, Marker/MaxItems.

    PolicyUsageFilter (PermissionsPolicy / PermissionsBoundary) is accepted and does not narrow
    the list: every policy here may serve as either. Policies come in PolicyId order, as in
    published ``aws iam list-policies`` answers (ANPAI23HZ..., ANPAI2D5N..., ANPAI2DV5...).
    """
    aws, local = _SCOPES[str(params.get("Scope") or "All")]
    found: list[Policy] = []
    if aws:
        for arn in MANAGED:
            carried = _managed(iam, ctx, arn)
            if carried is not None:
                found.append(carried[0])
    if local:
        for stored in iam.list_policies(ctx.account_id):
            policy = stored.copy()
            policy["AttachmentCount"] = iam.attachment_count(ctx.account_id, stored["Arn"])
            policy["PermissionsBoundaryUsageCount"] = iam.boundary_usage_count(ctx.account_id, stored["Arn"])
            found.append(policy)
    prefix = str(params.get("PathPrefix") or "/")
    found = [p for p in found if p["Path"].startswith(prefix)]
    if params.get("OnlyAttached"):
        found = [p for p in found if p["AttachmentCount"] > 0]
    found.sort(key=lambda p: p["PolicyId"])
    page, fields = _page(found, params)
    return {"Policies": [_listed(p) for p in page], **fields}


def list_policy_versions(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """ListPolicyVersions: the one version lamina keeps, the default (no Document in a listing)."""
    found = _managed(iam, ctx, params["PolicyArn"])
    if found is None:
        raise _err("NoSuchEntity", 404, f"Policy {params['PolicyArn']} was not found.")
    policy = found[0]
    version = {
        "VersionId": policy["DefaultVersionId"],
        "IsDefaultVersion": True,
        "CreateDate": _policy_out(policy)["UpdateDate"],
    }
    page, fields = _page([version], params)
    return {"Versions": page, **fields}


# -- tags and permissions boundaries ------------------------------------------------------------

MAX_TAGS = 50  # per user or role (IAM User Guide, "IAM and AWS STS quotas")
MAX_ACCESS_KEYS = 2  # per user (same page)
MAX_GROUPS_PER_USER = 10  # (same page)


def _merged_tags(existing: list[Tag], new: list[dict[str, Any]], quota: str) -> list[Tag]:
    """``existing`` with ``new`` applied: keys are case-insensitive, a given key replaces the one
    it matches, in place; new keys go last."""
    seen: set[str] = set()
    for tag in new:
        key = str(tag["Key"]).lower()
        if key in seen:
            raise _err(
                "InvalidInput",
                400,
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            )
        seen.add(key)
    given = {str(t["Key"]).lower(): Tag(Key=str(t["Key"]), Value=str(t.get("Value", ""))) for t in new}
    out = [given.pop(str(t["Key"]).lower(), t) for t in existing]
    out += list(given.values())
    if len(out) > MAX_TAGS:
        raise _err("LimitExceeded", 409, f"Cannot exceed quota for {quota}: {MAX_TAGS}")
    return out


def _untagged(existing: list[Tag], keys: list[str]) -> list[Tag]:
    drop = {k.lower() for k in keys}
    return [t for t in existing if str(t["Key"]).lower() not in drop]


def _boundary(iam: IamStore, ctx: RequestContext, arn: str) -> AttachedPermissionsBoundary:
    """A permissions boundary naming an existing managed policy (AWS or the account's)."""
    if _managed(iam, ctx, arn) is None:
        raise _err("NoSuchEntity", 404, f"Scope ARN: {arn} does not exist or is not attachable.")
    return {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": arn}


def tag_role(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    role["Tags"] = _merged_tags(role.get("Tags", []), params["Tags"], "TagsPerRole")
    iam.put_role(ctx.account_id, role, create=False)
    return {}


def _set_tags(entity: Role | User, tags: list[Tag]) -> None:
    """An entity's tags; none at all leaves no Tags member (as IAM shows it)."""
    if tags:
        entity["Tags"] = tags
    else:
        entity.pop("Tags", None)


def untag_role(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    _set_tags(role, _untagged(role.get("Tags", []), params["TagKeys"]))
    iam.put_role(ctx.account_id, role, create=False)
    return {}


def list_role_tags(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _listing("Tags", list(_role(iam, ctx, params["RoleName"]).get("Tags", [])), params)


def put_role_permissions_boundary(
    iam: IamStore, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    role["PermissionsBoundary"] = _boundary(iam, ctx, params["PermissionsBoundary"])
    iam.put_role(ctx.account_id, role, create=False)
    return {}


def delete_role_permissions_boundary(
    iam: IamStore, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    role = _role(iam, ctx, params["RoleName"])
    if role.pop("PermissionsBoundary", None) is not None:
        iam.put_role(ctx.account_id, role, create=False)
    return {}


# -- users ------------------------------------------------------------------------------------------


def _no_user(name: str) -> AwsError:
    return _err("NoSuchEntity", 404, f"The user with name {name} cannot be found.")


def _user(iam: IamStore, ctx: RequestContext, name: str) -> User:
    user = iam.get_user(ctx.account_id, name)
    if user is None:
        raise _no_user(name)
    return user


def _caller_user_name(ctx: RequestContext) -> str | None:
    """The IAM user signing the request, if one is (not the root, not a role session)."""
    prefix = f"arn:aws:iam::{ctx.account_id}:user/"
    return ctx.caller.rsplit("/", 1)[-1] if ctx.caller.startswith(prefix) else None


def _target_user(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> User:
    """``UserName``'s user, or without it the calling user (IAM: "defaults to the user making the
    request"); a caller that is no IAM user must name one."""
    name = params.get("UserName")
    if name is None:
        name = _caller_user_name(ctx)
        if name is None:
            raise _err("ValidationError", 400, "Must specify userName when calling with non-User credentials")
    return _user(iam, ctx, name)


def _user_out(user: User, *, listing: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = dict(user)
    out["CreateDate"] = dt.datetime.fromisoformat(out["CreateDate"])
    if listing:
        # ListUsers and GetGroup leave out PermissionsBoundary and Tags (IAM API Reference, ListUsers).
        out.pop("PermissionsBoundary", None)
        out.pop("Tags", None)
    return out


def new_user(account: str, name: str, path: str, created: dt.datetime) -> User:
    """A user as CreateUser makes it (no tags, no boundary)."""
    return {
        "Path": path,
        "UserName": name,
        "UserId": _unique_id("AIDA"),
        "Arn": f"arn:aws:iam::{account}:user{path}{name}",
        "CreateDate": created.isoformat(),
    }


ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"


def provision_user(iam: IamStore, account: str, name: str, now: dt.datetime) -> bool:
    """Create user ``name`` with AdministratorAccess attached unless the account has it already
    (an accounts-file entry's ``user``); True if created."""
    if iam.get_user(account, name) is not None:
        return False
    if not iam.put_user(account, new_user(account, name, "/", now.replace(microsecond=0)), create=True):
        return False
    iam.attach_entity(Entity.USER, account, name, ADMINISTRATOR_ACCESS)
    return True


def create_user(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["UserName"]
    user = new_user(ctx.account_id, name, _path(params), _now(ctx))
    if params.get("PermissionsBoundary"):
        user["PermissionsBoundary"] = _boundary(iam, ctx, params["PermissionsBoundary"])
    if params.get("Tags"):
        user["Tags"] = _merged_tags([], params["Tags"], "TagsPerUser")
    if not iam.put_user(ctx.account_id, user, create=True):
        raise _err("EntityAlreadyExists", 409, f"User with name {name} already exists.")
    return {"User": _user_out(user)}


def get_user(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("UserName") is None and ctx.caller == root_user_arn(ctx.account_id):
        # The account root has no IAM user: IAM describes it by the account id and root ARN.
        return {"User": {"UserId": ctx.account_id, "Arn": ctx.caller}}
    return {"User": _user_out(_target_user(iam, ctx, params))}


def list_users(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    prefix = params.get("PathPrefix") or "/"
    users = [u for u in iam.list_users(ctx.account_id) if str(u["Path"]).startswith(prefix)]
    return _listing("Users", [_user_out(u, listing=True) for u in users], params)


def update_user(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    user = _user(iam, ctx, params["UserName"])
    old = str(user["UserName"])
    name = params.get("NewUserName") or old
    path = params.get("NewPath") or str(user["Path"])
    user["UserName"], user["Path"] = name, path
    user["Arn"] = f"arn:aws:iam::{ctx.account_id}:user{path}{name}"
    if not iam.rename_user(ctx.account_id, old, user):
        raise _err("EntityAlreadyExists", 409, f"User with name {name} already exists.")
    return {}


_DELETE_CONFLICTS = {
    "keys": "Cannot delete entity, must delete access keys first.",
    "policies": "Cannot delete entity, must delete policies first.",
    "attached": "Cannot delete entity, must detach all policies first.",
    "groups": "Cannot delete entity, must remove users from group first.",
    "members": "Cannot delete entity, must remove users from group first.",
}


def delete_user(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    user = _user(iam, ctx, params["UserName"])
    blocked = iam.delete_user(ctx.account_id, str(user["UserName"]))
    if blocked is not None:
        raise _err("DeleteConflict", 409, _DELETE_CONFLICTS[blocked])
    return {}


def tag_user(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    user = _user(iam, ctx, params["UserName"])
    user["Tags"] = _merged_tags(user.get("Tags", []), params["Tags"], "TagsPerUser")
    iam.put_user(ctx.account_id, user, create=False)
    return {}


def untag_user(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    user = _user(iam, ctx, params["UserName"])
    _set_tags(user, _untagged(user.get("Tags", []), params["TagKeys"]))
    iam.put_user(ctx.account_id, user, create=False)
    return {}


def list_user_tags(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _listing("Tags", list(_user(iam, ctx, params["UserName"]).get("Tags", [])), params)


def put_user_permissions_boundary(
    iam: IamStore, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    user = _user(iam, ctx, params["UserName"])
    user["PermissionsBoundary"] = _boundary(iam, ctx, params["PermissionsBoundary"])
    iam.put_user(ctx.account_id, user, create=False)
    return {}


def delete_user_permissions_boundary(
    iam: IamStore, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    user = _user(iam, ctx, params["UserName"])
    if user.pop("PermissionsBoundary", None) is not None:
        iam.put_user(ctx.account_id, user, create=False)
    return {}


# -- access keys ------------------------------------------------------------------------------------

# Access key ids are "AKIA" and 16 characters of the base-32 alphabet; secrets 40 characters of
# base 64 (IAM User Guide, "Unique identifiers" and "Managing access keys").
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))


def new_secret() -> str:
    return base64.b64encode(os.urandom(30)).decode()


def _no_key(key_id: str) -> AwsError:
    return _err("NoSuchEntity", 404, f"The Access Key with id {key_id} cannot be found.")


def create_access_key(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    user = _target_user(iam, ctx, params)
    key_id, secret, created = new_access_key_id(), new_secret(), _now(ctx)
    if not iam.add_access_key(
        ctx.account_id, str(user["UserName"]), key_id, secret, created.isoformat(), limit=MAX_ACCESS_KEYS
    ):
        raise _err("LimitExceeded", 409, f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}")
    return {
        "AccessKey": {
            "UserName": user["UserName"],
            "AccessKeyId": key_id,
            "Status": "Active",
            "SecretAccessKey": secret,
            "CreateDate": created,
        }
    }


def list_access_keys(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    user = _target_user(iam, ctx, params)
    keys = [
        {
            "UserName": k.user_name,
            "AccessKeyId": k.access_key_id,
            "Status": k.status,
            "CreateDate": dt.datetime.fromisoformat(k.create_date),
        }
        for k in iam.access_keys(ctx.account_id, str(user["UserName"]))
    ]
    return _listing("AccessKeyMetadata", keys, params)


def update_access_key(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    user = _target_user(iam, ctx, params)
    key_id = params["AccessKeyId"]
    if not iam.set_access_key_status(ctx.account_id, str(user["UserName"]), key_id, params["Status"]):
        raise _no_key(key_id)
    return {}


def delete_access_key(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    user = _target_user(iam, ctx, params)
    key_id = params["AccessKeyId"]
    if not iam.delete_access_key(ctx.account_id, str(user["UserName"]), key_id):
        raise _no_key(key_id)
    return {}


# -- groups -------------------------------------------------------------------------------------------


def _no_group(name: str) -> AwsError:
    return _err("NoSuchEntity", 404, f"The group with name {name} cannot be found.")


def _group(iam: IamStore, ctx: RequestContext, name: str) -> Group:
    group = iam.get_group(ctx.account_id, name)
    if group is None:
        raise _no_group(name)
    return group


def _group_out(group: Group) -> dict[str, Any]:
    out: dict[str, Any] = dict(group)
    out["CreateDate"] = dt.datetime.fromisoformat(out["CreateDate"])
    return out


def create_group(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["GroupName"]
    path = _path(params)
    group: Group = {
        "Path": path,
        "GroupName": name,
        "GroupId": _unique_id("AGPA"),
        "Arn": f"arn:aws:iam::{ctx.account_id}:group{path}{name}",
        "CreateDate": _now(ctx).isoformat(),
    }
    if not iam.put_group(ctx.account_id, group, create=True):
        raise _err("EntityAlreadyExists", 409, f"Group with name {name} already exists.")
    return {"Group": _group_out(group)}


def get_group(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(iam, ctx, params["GroupName"])
    users = [_user_out(u, listing=True) for u in iam.group_users(ctx.account_id, str(group["GroupName"]))]
    return {"Group": _group_out(group), **_listing("Users", users, params)}


def list_groups(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    prefix = params.get("PathPrefix") or "/"
    groups = [g for g in iam.list_groups(ctx.account_id) if str(g["Path"]).startswith(prefix)]
    return _listing("Groups", [_group_out(g) for g in groups], params)


def delete_group(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(iam, ctx, params["GroupName"])
    blocked = iam.delete_group(ctx.account_id, str(group["GroupName"]))
    if blocked is not None:
        raise _err("DeleteConflict", 409, _DELETE_CONFLICTS[blocked])
    return {}


def add_user_to_group(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(iam, ctx, params["GroupName"])
    user = _user(iam, ctx, params["UserName"])
    member_of = {str(g["GroupName"]).lower() for g in iam.user_groups(ctx.account_id, str(user["UserName"]))}
    if str(group["GroupName"]).lower() not in member_of and len(member_of) >= MAX_GROUPS_PER_USER:
        raise _err("LimitExceeded", 409, f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}")
    iam.add_member(ctx.account_id, str(group["GroupName"]), str(user["UserName"]))
    return {}


def remove_user_from_group(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(iam, ctx, params["GroupName"])
    user = _user(iam, ctx, params["UserName"])
    if not iam.remove_member(ctx.account_id, str(group["GroupName"]), str(user["UserName"])):
        raise _no_user(params["UserName"])
    return {}


def list_groups_for_user(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    user = _user(iam, ctx, params["UserName"])
    groups = iam.user_groups(ctx.account_id, str(user["UserName"]))
    return _listing("Groups", [_group_out(g) for g in groups], params)


# -- users' and groups' policies ------------------------------------------------------------------


def _entity(iam: IamStore, ctx: RequestContext, kind: Entity, params: dict[str, Any]) -> str:
    """The existing user's or group's name as stored (its case)."""
    if kind is Entity.USER:
        return str(_user(iam, ctx, params["UserName"])["UserName"])
    return str(_group(iam, ctx, params["GroupName"])["GroupName"])


def _no_entity_policy(kind: Entity, name: str) -> AwsError:
    return _err("NoSuchEntity", 404, f"The {kind.value} policy with name {name} cannot be found.")


def _name_key(kind: Entity) -> str:
    return "UserName" if kind is Entity.USER else "GroupName"


# The handlers of one operation on users and on groups differ only in the entity they name.
IamHandler = Callable[[IamStore, RequestContext, dict[str, Any]], dict[str, Any]]


def _put_policy(kind: Entity) -> IamHandler:
    def handler(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = _entity(iam, ctx, kind, params)
        _check_document(params["PolicyDocument"], PolicyKind.IDENTITY)
        iam.put_entity_inline(kind, ctx.account_id, name, params["PolicyName"], params["PolicyDocument"])
        return {}

    return handler


def _get_policy(kind: Entity) -> IamHandler:
    def handler(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = _entity(iam, ctx, kind, params)
        document = iam.get_entity_inline(kind, ctx.account_id, name, params["PolicyName"])
        if document is None:
            raise _no_entity_policy(kind, params["PolicyName"])
        return {
            _name_key(kind): name,
            "PolicyName": params["PolicyName"],
            "PolicyDocument": _encoded(document),
        }

    return handler


def _delete_policy(kind: Entity) -> IamHandler:
    def handler(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = _entity(iam, ctx, kind, params)
        if not iam.delete_entity_inline(kind, ctx.account_id, name, params["PolicyName"]):
            raise _no_entity_policy(kind, params["PolicyName"])
        return {}

    return handler


def _list_policies(kind: Entity) -> IamHandler:
    def handler(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = _entity(iam, ctx, kind, params)
        names = [n for n, _ in iam.entity_inline(kind, ctx.account_id, name)]
        return _listing("PolicyNames", names, params)

    return handler


def _attach(kind: Entity) -> IamHandler:
    def handler(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = _entity(iam, ctx, kind, params)
        arn = params["PolicyArn"]
        if _managed(iam, ctx, arn) is None:
            raise _err("NoSuchEntity", 404, f"Policy {arn} does not exist or is not attachable.")
        iam.attach_entity(kind, ctx.account_id, name, arn)
        return {}

    return handler


def _detach(kind: Entity) -> IamHandler:
    def handler(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = _entity(iam, ctx, kind, params)
        if not iam.detach_entity(kind, ctx.account_id, name, params["PolicyArn"]):
            raise _err("NoSuchEntity", 404, f"Policy {params['PolicyArn']} was not found.")
        return {}

    return handler


def _list_attached(kind: Entity) -> IamHandler:
    def handler(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = _entity(iam, ctx, kind, params)
        prefix = params.get("PathPrefix") or "/"
        attached = []
        for arn in iam.entity_attached(kind, ctx.account_id, name):
            found = _managed(iam, ctx, arn)
            if found is not None and str(found[0]["Path"]).startswith(prefix):
                attached.append({"PolicyName": found[0]["PolicyName"], "PolicyArn": arn})
        return _listing("AttachedPolicies", attached, params)

    return handler


HANDLERS = {
    "SimulatePrincipalPolicy": simulation.simulate_principal_policy,
    "SimulateCustomPolicy": simulation.simulate_custom_policy,
    "CreateRole": create_role,
    "GetRole": get_role,
    "ListRoles": list_roles,
    "DeleteRole": delete_role,
    "UpdateAssumeRolePolicy": update_assume_role_policy,
    "PutRolePolicy": put_role_policy,
    "GetRolePolicy": get_role_policy,
    "DeleteRolePolicy": delete_role_policy,
    "ListRolePolicies": list_role_policies,
    "CreatePolicy": create_policy,
    "GetPolicy": get_policy,
    "GetPolicyVersion": get_policy_version,
    "DeletePolicy": delete_policy,
    "AttachRolePolicy": attach_role_policy,
    "DetachRolePolicy": detach_role_policy,
    "ListAttachedRolePolicies": list_attached_role_policies,
    # policy listings
    "ListPolicies": list_policies,
    "ListPolicyVersions": list_policy_versions,
    "TagRole": tag_role,
    "UntagRole": untag_role,
    "ListRoleTags": list_role_tags,
    "PutRolePermissionsBoundary": put_role_permissions_boundary,
    "DeleteRolePermissionsBoundary": delete_role_permissions_boundary,
    "CreateUser": create_user,
    "GetUser": get_user,
    "ListUsers": list_users,
    "UpdateUser": update_user,
    "DeleteUser": delete_user,
    "TagUser": tag_user,
    "UntagUser": untag_user,
    "ListUserTags": list_user_tags,
    "PutUserPermissionsBoundary": put_user_permissions_boundary,
    "DeleteUserPermissionsBoundary": delete_user_permissions_boundary,
    "CreateAccessKey": create_access_key,
    "ListAccessKeys": list_access_keys,
    "UpdateAccessKey": update_access_key,
    "DeleteAccessKey": delete_access_key,
    "CreateGroup": create_group,
    "GetGroup": get_group,
    "ListGroups": list_groups,
    "DeleteGroup": delete_group,
    "AddUserToGroup": add_user_to_group,
    "RemoveUserFromGroup": remove_user_from_group,
    "ListGroupsForUser": list_groups_for_user,
    "PutUserPolicy": _put_policy(Entity.USER),
    "GetUserPolicy": _get_policy(Entity.USER),
    "DeleteUserPolicy": _delete_policy(Entity.USER),
    "ListUserPolicies": _list_policies(Entity.USER),
    "AttachUserPolicy": _attach(Entity.USER),
    "DetachUserPolicy": _detach(Entity.USER),
    "ListAttachedUserPolicies": _list_attached(Entity.USER),
    "PutGroupPolicy": _put_policy(Entity.GROUP),
    "GetGroupPolicy": _get_policy(Entity.GROUP),
    "DeleteGroupPolicy": _delete_policy(Entity.GROUP),
    "ListGroupPolicies": _list_policies(Entity.GROUP),
    "AttachGroupPolicy": _attach(Entity.GROUP),
    "DetachGroupPolicy": _detach(Entity.GROUP),
    "ListAttachedGroupPolicies": _list_attached(Entity.GROUP),
}
