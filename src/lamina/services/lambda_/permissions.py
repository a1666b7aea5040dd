"""Function resource policies: AddPermission, GetPolicy, RemovePermission, and the whole-document
PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy over the same policy.

Each function version has its own policy (``lamina.domain.function_policy``); the store keeps its
document next to the version, so deleting the version or the function deletes it. The pipeline's
authorizer reads it through ``FunctionStore.function_policy`` to let other accounts and services in.
An alias has its own policy too (kept with the alias): the authorizer reads it for requests that
name the alias's ARN, invokes through the alias among them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from lamina.domain import function_policy as P
from lamina.domain import functions as F
from lamina.domain.layers import PolicyStatement
from lamina.domain.models import (
    AddPermissionResponse,
    AliasConfiguration,
    GetPolicyResponse,
    GetResourcePolicyResponse,
    PutResourcePolicyResponse,
)
from lamina.errors import InvalidParameterValueException, ResourceNotFoundException
from lamina.services.base import RequestContext, output
from lamina.services.lambda_ import messages as M
from lamina.services.lambda_.functions import function_ref
from lamina.services.platform import Platform
from lamina.store.functions import FunctionRow

INVALID_PRINCIPAL = "The provided principal was invalid. Please check the principal and try again."
LATEST_UNSUPPORTED = "We currently do not support adding policies for $LATEST."


def _alias_missing(ref: F.FunctionRef) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Cannot find alias arn: {ref.qualified_arn}")


def _version(platform: Platform, ref: F.FunctionRef, message: str) -> int:
    """The stored version (seq) a policy operation acts on, or the operation's not-found error
    (``message``; an alias of an existing function: "Cannot find alias arn")."""
    seq = P.version_seq(ref.qualifier)
    if seq is None and P.qualifier_kind(ref.qualifier) == P.QualifierKind.ALIAS:
        if platform.functions.get(ref.account, ref.region, ref.name) is None:
            raise ResourceNotFoundException(message)
        raise _alias_missing(ref)
    if seq is None:
        raise ResourceNotFoundException(message)
    return seq


def _shown_arn(ref: F.FunctionRef) -> str:
    """The ARN AWS's messages name: qualified, except for $LATEST."""
    if ref.qualifier in (None, F.LATEST):
        return ref.arn
    return ref.qualified_arn


def _check_revision(params: dict[str, Any], row: FunctionRow, policy: P.FunctionPolicy) -> None:
    # Both RevisionIds a client may hold are current: GetPolicy's, and GetFunction's (a policy change
    # gives the version the policy's new RevisionId; publishing a version changes $LATEST's alone).
    wanted = params.get("RevisionId")
    if wanted is not None and wanted not in (policy.revision_id, row.config.get("RevisionId")):
        raise M.function_revision_mismatch()


def _reprepare(platform: Platform, row: FunctionRow) -> None:
    """A policy change rotates the version's RevisionId; a preparation still running for the old
    one gives way to newer changes, so it is scheduled again for this one (cheap: trees are there)."""
    if row.seq == 0 and (
        row.config.get("State") == F.State.PENDING.value
        or row.config.get("LastUpdateStatus") == F.UpdateStatus.IN_PROGRESS.value
    ):
        platform.preparer.schedule(row)


def add_permission(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = function_ref(ctx, params)
    if ref.qualifier == F.LATEST:
        raise InvalidParameterValueException(LATEST_UNSUPPORTED)
    if not P.valid_principal(params["Principal"]):
        raise InvalidParameterValueException(INVALID_PRINCIPAL)
    missing = f"Function not found: {_shown_arn(ref)}"
    sid = params["StatementId"]
    statement = P.make_statement(params, ref.qualified_arn)
    if P.qualifier_kind(ref.qualifier) == P.QualifierKind.ALIAS:
        _change_alias_policy(
            platform, ref, missing, params.get("RevisionId"), lambda current: _added(current, sid, statement)
        )
        return output(AddPermissionResponse(Statement=json.dumps(statement, separators=(",", ":"))))
    seq = _version(platform, ref, missing)

    def change(row: FunctionRow, current: P.FunctionPolicy) -> P.FunctionPolicy:
        _check_revision(params, row, current)
        return _added(current, sid, statement)

    updated = platform.functions.update_policy(ref.account, ref.region, ref.name, seq, change)
    if updated is None:
        raise ResourceNotFoundException(missing)
    _reprepare(platform, updated[0])
    out: AddPermissionResponse = {"Statement": json.dumps(statement, separators=(",", ":"))}
    return output(out)


def _stored_policy(platform: Platform, ref: F.FunctionRef) -> tuple[str, P.FunctionPolicy]:
    """The document and policy of the version or alias ``ref`` names; GetPolicy's not-found error
    when there is none."""
    seq = P.version_seq(ref.qualifier)
    found: tuple[object, P.FunctionPolicy] | None = None
    if seq is not None:
        found = platform.functions.get_policy(ref.account, ref.region, ref.name, seq)
    elif P.qualifier_kind(ref.qualifier) == P.QualifierKind.ALIAS:
        assert ref.qualifier is not None
        found = platform.functions.aliases.get_policy(ref.account, ref.region, ref.name, ref.qualifier)
    document = found[1].document() if found is not None else None
    if found is None or document is None:
        # The same answer for no function, no such version or alias, and no policy (recorded).
        raise ResourceNotFoundException(M.RESOURCE_NOT_FOUND)
    return document, found[1]


def get_policy(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    # Another account's function when its policy lets the caller (decided by the authorizer).
    ref = function_ref(ctx, params, cross_account=True)
    document, policy = _stored_policy(platform, ref)
    out: GetPolicyResponse = {"Policy": document}
    if policy.revision_id is not None:
        out["RevisionId"] = policy.revision_id
    return output(out)


def remove_permission(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = function_ref(ctx, params)
    missing = f"No policy found for: {_shown_arn(ref)}"
    sid = params["StatementId"]
    if P.qualifier_kind(ref.qualifier) == P.QualifierKind.ALIAS:
        _change_alias_policy(
            platform, ref, missing, params.get("RevisionId"), lambda current: _removed(current, sid)
        )
        return {}
    seq = _version(platform, ref, missing)

    def change(row: FunctionRow, current: P.FunctionPolicy) -> P.FunctionPolicy:
        _check_revision(params, row, current)
        return _removed(current, sid)

    updated = platform.functions.update_policy(ref.account, ref.region, ref.name, seq, change)
    if updated is None:
        raise ResourceNotFoundException(missing)
    _reprepare(platform, updated[0])
    return {}


def _added(current: P.FunctionPolicy, sid: str, statement: PolicyStatement) -> P.FunctionPolicy:
    if current.has(sid):
        raise M.statement_exists(sid)
    statements = (*current.statements, statement)
    size = len(P.policy_document(statements).encode())
    if size > P.MAX_POLICY_BYTES:
        raise M.policy_too_long(size, P.MAX_POLICY_BYTES)
    return current.changed(statements, str(uuid.uuid4()))


def _removed(current: P.FunctionPolicy, sid: str) -> P.FunctionPolicy:
    if not current.statements:
        raise ResourceNotFoundException(M.NO_POLICY)
    remaining = tuple(s for s in current.statements if s.get("Sid") != sid)
    if len(remaining) == len(current.statements):
        raise M.statement_missing(sid)
    return current.changed(remaining, str(uuid.uuid4()))


def _change_alias_policy(
    platform: Platform,
    ref: F.FunctionRef,
    missing: str,
    revision: str | None,
    change: Callable[[P.FunctionPolicy], P.FunctionPolicy],
) -> None:
    """Apply ``change`` to an alias's policy. An alias's policy has its own RevisionId (the alias's
    stays as it is); a RevisionId that is neither is refused naming GetPolicy (recorded)."""
    assert ref.qualifier is not None

    def apply(alias: AliasConfiguration, current: P.FunctionPolicy) -> P.FunctionPolicy:
        if revision is not None and revision not in (current.revision_id, alias.get("RevisionId")):
            raise M.policy_revision_mismatch()
        return change(current)

    updated = platform.functions.aliases.update_policy(
        ref.account, ref.region, ref.name, ref.qualifier, apply
    )
    if updated is None:
        if platform.functions.get(ref.account, ref.region, ref.name) is None:
            raise ResourceNotFoundException(missing)
        raise _alias_missing(ref)


# -- the whole document: PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy ------------------


def runtime_unserved(arn: str) -> InvalidParameterValueException:
    """A ``runtime/...`` ResourceArn (lamina's wording): the model admits runtime ARNs, lamina has none."""
    return InvalidParameterValueException(
        f"lamina has no Lambda runtime resources, so {arn} has no resource-based policy: "
        "resource-based policies apply to functions, versions and aliases."
    )


def _resource_ref(ctx: RequestContext, params: dict[str, Any], *, cross_account: bool) -> F.FunctionRef:
    """The function, version or alias a ``ResourceArn`` names (``$LATEST``: the function itself).

    Another account's function is this account's "Function not found" (as AddPermission answers
    it) unless ``cross_account`` (GetResourcePolicy, as GetPolicy: the authorizer has let the caller
    in through that function's own policy, else answered AccessDeniedException)."""
    arn = params["ResourceArn"]
    target = P.parse_resource_arn(arn)
    if target is not None and target.kind == P.TargetKind.RUNTIME:
        raise runtime_unserved(arn)
    if target is None:  # the model's pattern admits no other shape; kept for direct callers
        raise ResourceNotFoundException(M.RESOURCE_NOT_FOUND)
    if target.region != ctx.region:
        # As every operation that takes a function ARN answers another region's (FunctionName).
        raise ResourceNotFoundException(
            f"Functions from '{target.region}' are not reachable in this region ('{ctx.region}')"
        )
    ref = F.FunctionRef(target.account, target.region, target.name, target.qualifier)
    if ref.account != ctx.account_id and not cross_account:
        raise M.function_not_found(ref.arn)
    return ref


def _replace_policy(
    platform: Platform,
    ref: F.FunctionRef,
    params: dict[str, Any],
    change: Callable[[P.FunctionPolicy], P.FunctionPolicy],
) -> None:
    """Apply ``change`` to the policy of the version or alias ``ref`` names, under the request's
    RevisionId precondition (the same rules and messages as AddPermission's)."""
    missing = f"Function not found: {_shown_arn(ref)}"
    if P.qualifier_kind(ref.qualifier) == P.QualifierKind.ALIAS:
        _change_alias_policy(platform, ref, missing, params.get("RevisionId"), change)
        return
    seq = _version(platform, ref, missing)

    def apply(row: FunctionRow, current: P.FunctionPolicy) -> P.FunctionPolicy:
        _check_revision(params, row, current)
        return change(current)

    updated = platform.functions.update_policy(ref.account, ref.region, ref.name, seq, apply)
    if updated is None:
        raise ResourceNotFoundException(missing)
    _reprepare(platform, updated[0])


def put_resource_policy(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Replace the whole policy of a function, version or alias (AddPermission's statements too)."""
    ref = _resource_ref(ctx, params, cross_account=False)
    qualified = ref.qualified_arn if ref.qualifier is not None else None
    checked = P.check_document(params["Policy"], ref.arn, qualified)
    size = P.document_size(checked)
    if size > P.MAX_POLICY_BYTES:
        # The document as stored (compact JSON); the model caps the request at 20480 characters.
        raise M.policy_too_long(size, P.MAX_POLICY_BYTES)
    # PublicPolicyException is never raised: it answers a policy that grants public access when the
    # account's block-public-access setting forbids it, and lamina has no such setting (Lambda's
    # API has no operation to set one) - a public policy is stored, as AWS stores it without BPA.
    new = checked.changed(checked.statements, str(uuid.uuid4()))
    _replace_policy(platform, ref, params, lambda _current: new)
    document = new.document()
    assert document is not None and new.revision_id is not None  # check_document refuses no statements
    out: PutResourcePolicyResponse = {"Policy": document, "RevisionId": new.revision_id}
    return output(out)


def get_resource_policy(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """The whole policy of a function, version or alias, as GetPolicy answers it."""
    ref = _resource_ref(ctx, params, cross_account=True)
    document, policy = _stored_policy(platform, ref)
    out: GetResourcePolicyResponse = {"Policy": document}
    if policy.revision_id is not None:
        out["RevisionId"] = policy.revision_id
    return output(out)


def delete_resource_policy(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Delete the whole policy of a function, version or alias (204); none: RemovePermission's answer."""
    ref = _resource_ref(ctx, params, cross_account=False)

    def cleared(current: P.FunctionPolicy) -> P.FunctionPolicy:
        if not current.statements:
            raise ResourceNotFoundException(M.NO_POLICY)
        return current.changed((), str(uuid.uuid4()))

    _replace_policy(platform, ref, params, cleared)
    return {}


HANDLERS = {
    "AddPermission": add_permission,
    "GetPolicy": get_policy,
    "RemovePermission": remove_permission,
    "PutResourcePolicy": put_resource_policy,
    "GetResourcePolicy": get_resource_policy,
    "DeleteResourcePolicy": delete_resource_policy,
}
