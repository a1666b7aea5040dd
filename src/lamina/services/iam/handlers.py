"""IAM operations for roles and policies, with IAM's error codes and messages.

IAM is global: state is per account, whatever region the request was signed for.
Policy documents are returned as IAM does, URL-encoded JSON (botocore decodes them).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import urllib.parse
from typing import Any

from lamina.domain.iam_managed import MANAGED
from lamina.domain.models import Policy, Role
from lamina.domain.policy import MalformedPolicy, PolicyKind, parse_policy
from lamina.errors import AwsError
from lamina.services.base import RequestContext
from lamina.store.iam import IamStore


def _err(code: str, status: int, message: str) -> AwsError:
    return AwsError(message, code=code, status=status, sender_fault=True)


def _no_role(name: str) -> AwsError:
    return _err("NoSuchEntity", 404, f"The role with name {name} cannot be found.")


def _no_role_policy(name: str) -> AwsError:
    return _err("NoSuchEntity", 404, f"The role policy with name {name} cannot be found.")


def _now(ctx: RequestContext) -> dt.datetime:
    return dt.datetime.fromtimestamp(ctx.now_ms / 1000, dt.UTC).replace(microsecond=0)


def _unique_id(prefix: str) -> str:
    return prefix + base64.b32encode(os.urandom(10)).decode()[:17]


def _encoded(document: str) -> str:
    return urllib.parse.quote(document, safe="")


def _check_document(document: str, kind: PolicyKind) -> None:
    try:
        parse_policy(document, kind)
    except MalformedPolicy as exc:
        raise _err("MalformedPolicyDocument", 400, str(exc)) from exc


def _path(params: dict[str, Any]) -> str:
    return str(params.get("Path") or "/")


def _role_out(role: Role) -> dict[str, Any]:
    """The wire form: IAM's serializer renders the date itself (the store keeps ISO text)."""
    out: dict[str, Any] = dict(role)
    out["CreateDate"] = dt.datetime.fromisoformat(out["CreateDate"])
    out["AssumeRolePolicyDocument"] = _encoded(out["AssumeRolePolicyDocument"])
    return out


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
        role["Tags"] = params["Tags"]
    if not iam.put_role(ctx.account_id, role, create=True):
        raise _err("EntityAlreadyExists", 409, f"Role with name {name} already exists.")
    return {"Role": _role_out(role)}


def get_role(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return {"Role": _role_out(_role(iam, ctx, params["RoleName"]))}


def list_roles(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    prefix = params.get("PathPrefix") or "/"
    roles = [r for r in iam.list_roles(ctx.account_id) if str(r["Path"]).startswith(prefix)]
    start = int(params["Marker"]) if str(params.get("Marker") or "").isdigit() else 0
    limit = int(params.get("MaxItems") or 100)
    page = roles[start : start + limit]
    out: dict[str, Any] = {"Roles": [_role_out(r) for r in page], "IsTruncated": start + limit < len(roles)}
    if out["IsTruncated"]:
        out["Marker"] = str(start + limit)
    return out


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
            "PermissionsBoundaryUsageCount": 0,
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
    if iam.attachment_count(ctx.account_id, arn):
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


def role_documents(iam: IamStore, account: str, role_name: str) -> list[str]:
    """Every identity policy document of a role (inline and attached), for evaluation."""
    docs = [doc for _, doc in iam.inline_policies(account, role_name)]
    for arn in iam.attached(account, role_name):
        if arn in MANAGED:
            docs.append(MANAGED[arn].document)
        else:
            found = iam.get_policy(account, arn)
            if found is not None:
                docs.append(found[1])
    return docs


HANDLERS = {
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
}
