"""STS operations. Temporary credentials are stored as sessions the SigV4 check accepts
(with their session token) until they expire."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lamina.domain import jsontext, sessions
from lamina.domain.arns import Arn, root_user_arn
from lamina.domain.constraints import format_errors, render_value
from lamina.domain.iam_managed import MANAGED
from lamina.domain.policy import MalformedPolicy, PolicyKind, parse_policy, trusts_account
from lamina.errors import AwsError
from lamina.services.base import RequestContext
from lamina.services.sts.sessions import issue_own_session, issue_session
from lamina.store.iam import IamStore, Session

# Not confirmed against a recording (AWS's reference gives only the exception's meaning).
INVALID_AUTHORIZATION_MESSAGE = "Message is not valid"


def _access_denied(message: str) -> AwsError:
    return AwsError(message, code="AccessDenied", status=403, sender_fault=True)


def get_caller_identity(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    session = iam.session(ctx.access_key_id) if ctx.access_key_id else None
    if session is not None:
        return {"UserId": session.user_id, "Account": session.account, "Arn": session.arn}
    if ctx.caller.startswith(f"arn:aws:iam::{ctx.account_id}:user/"):
        # An IAM user's keys: the user's unique id (AIDA...) and ARN.
        user = iam.get_user(ctx.account_id, ctx.caller.rsplit("/", 1)[-1])
        if user is not None:
            return {"UserId": user["UserId"], "Account": ctx.account_id, "Arn": user["Arn"]}
    return {"UserId": ctx.account_id, "Account": ctx.account_id, "Arn": root_user_arn(ctx.account_id)}


def _role_not_found_or_untrusted(ctx: RequestContext, action: str, arn: str) -> AwsError:
    return _access_denied(f"User: {ctx.caller} is not authorized to perform: {action} on resource: {arn}")


def _calling_session(iam: IamStore, ctx: RequestContext) -> Session | None:
    """The session behind the request's temporary credentials (None for long-term keys)."""
    return iam.session(ctx.access_key_id) if ctx.access_key_id.startswith("ASIA") else None


def _requested_tags(params: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(t["Key"]), str(t["Value"])) for t in params.get("Tags") or []]


def prevalidate_assume_role(params: dict[str, Any]) -> None:
    """The limits AWS's validator checks and botocore's model no longer carries: at most 2,048
    characters of inline session policy, at most 10 managed policy ARNs (API Reference,
    AssumeRole), worded as the validator words them."""
    policy = params.get("Policy")
    if isinstance(policy, str) and len(policy) > sessions.MAX_POLICY_PLAINTEXT:
        raise sessions.validation_error(
            format_errors(
                [
                    f"Value {render_value(policy)} at 'policy' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {sessions.MAX_POLICY_PLAINTEXT}"
                ]
            )
        )
    arns = params.get("PolicyArns")
    if isinstance(arns, list) and len(arns) > sessions.MAX_POLICY_ARNS:
        # Not confirmed against a recording: a list of structures is not printed.
        raise sessions.validation_error(
            format_errors(
                [
                    "Value at 'policyArns' failed to satisfy constraint: Member must have length less "
                    f"than or equal to {sessions.MAX_POLICY_ARNS}"
                ]
            )
        )


def _session_policy(iam: IamStore, role_account: str, params: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The inline session policy (checked as an identity policy) and the managed policy ARNs,
    which must be AWS managed policies or customer policies of the role's account."""
    policy = params.get("Policy")
    if policy is not None:
        try:
            jsontext.loads(policy)
        except ValueError:
            raise MalformedPolicy(sessions.NOT_JSON) from None
        parse_policy(policy, PolicyKind.IDENTITY)
    arns = [str(d.get("arn") or "") for d in params.get("PolicyArns") or []]
    for arn in arns:
        if arn in MANAGED:
            continue
        parsed = Arn.parse(arn)
        if parsed is None or parsed.account != role_account or iam.get_policy(role_account, arn) is None:
            # Not confirmed against a recording: IAM's words for a policy it cannot attach.
            raise MalformedPolicy(f"Policy {arn} does not exist or is not attachable.")
    return policy, arns


def _principal_tags(iam: IamStore, ctx: RequestContext, caller: Session | None) -> dict[str, str]:
    """aws:PrincipalTag/*: a user's tags; a role session's role tags overridden by its session tags."""
    found: dict[str, Any] | None = None
    if caller is not None and caller.is_role_session:
        role = Arn.parse(caller.role_arn)
        name = role.role_name if role is not None else None
        found = dict(iam.get_role(role.account, name) or {}) if role is not None and name else None
    elif ":user/" in ctx.caller:
        found = dict(iam.get_user(ctx.account_id, ctx.caller.rsplit("/", 1)[-1]) or {})
    tags = {str(t["Key"]): str(t.get("Value", "")) for t in (found or {}).get("Tags") or []}
    if caller is not None:
        tags.update(caller.tags)
    return tags


def _trust_context(
    iam: IamStore,
    ctx: RequestContext,
    caller: Session | None,
    params: dict[str, Any],
    requested: list[tuple[str, str]],
) -> dict[str, str | list[str]]:
    """The request context the role's trust policy is evaluated with (IAM User Guide, "AWS
    global condition context keys" and "AWS STS condition keys")."""
    context: dict[str, str | list[str]] = {
        "aws:PrincipalAccount": ctx.account_id,
        # For a role session the principal ARN is the role's, not the session's.
        "aws:PrincipalArn": caller.role_arn if caller and caller.is_role_session else ctx.caller,
        "aws:CurrentTime": dt.datetime.fromtimestamp(ctx.now_ms / 1000, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "aws:EpochTime": str(ctx.now_ms // 1000),
        "sts:RoleSessionName": str(params["RoleSessionName"]),
    }
    for key, value in _principal_tags(iam, ctx, caller).items():
        context[f"aws:PrincipalTag/{key}"] = value
    for key, value in requested:
        context[f"aws:RequestTag/{key}"] = value
    if requested:
        context["aws:TagKeys"] = [k for k, _ in requested]
    if params.get("TransitiveTagKeys"):
        context["sts:TransitiveTagKeys"] = [str(k) for k in params["TransitiveTagKeys"]]
    if params.get("ExternalId") is not None:
        context["sts:ExternalId"] = str(params["ExternalId"])
    if params.get("SourceIdentity") is not None:
        context["sts:SourceIdentity"] = str(params["SourceIdentity"])
    return context


def _credentials_shape(session: Session) -> dict[str, Any]:
    expiration = dt.datetime.fromtimestamp(session.expires, dt.UTC).replace(microsecond=0)
    return {
        "AccessKeyId": session.access_key,
        "SecretAccessKey": session.secret,
        "SessionToken": session.token,
        "Expiration": expiration,
    }


def assume_role(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """AssumeRole: the request's own checks, the root refusal, the trust policy (with
    sts:TagSession / sts:SetSourceIdentity when tags / a source identity are passed), the
    duration, then a session carrying its session policies and tags."""
    arn = str(params["RoleArn"])
    if not sessions.is_valid_arn(arn):
        raise sessions.validation_error(f"{arn} is invalid")
    if ctx.caller == root_user_arn(ctx.account_id):
        raise _access_denied(sessions.ROOT_CANNOT_ASSUME)
    caller = _calling_session(iam, ctx)
    requested = _requested_tags(params)
    transitive = [str(k) for k in params.get("TransitiveTagKeys") or []]
    inherited = caller.tags if caller else {}
    carried = caller.transitive_tag_keys if caller else ()
    tags = sessions.session_tags(requested, transitive, inherited, carried)
    parsed = Arn.parse(arn)
    role = None
    if parsed is not None and parsed.role_name is not None:
        role = iam.get_role(parsed.account, parsed.role_name)
    if parsed is None or role is None:
        raise _role_not_found_or_untrusted(ctx, "sts:AssumeRole", arn)
    policy, policy_arns = _session_policy(iam, parsed.account, params)
    trust = parse_policy(str(role["AssumeRolePolicyDocument"]), PolicyKind.TRUST)
    context = _trust_context(iam, ctx, caller, params, requested)
    if not trusts_account(trust, ctx.account_id, ctx.caller, "sts:AssumeRole", context):
        raise _role_not_found_or_untrusted(ctx, "sts:AssumeRole", arn)
    # Passing session tags, or setting a source identity, needs its own permission in the trust
    # policy (IAM User Guide, "Permissions required to add session tags", "... source identity").
    if requested and not trusts_account(trust, ctx.account_id, ctx.caller, "sts:TagSession", context):
        raise _role_not_found_or_untrusted(ctx, "sts:TagSession", arn)
    source_identity = caller.source_identity if caller and caller.source_identity else None
    if params.get("SourceIdentity") is not None and source_identity is None:
        if not trusts_account(trust, ctx.account_id, ctx.caller, "sts:SetSourceIdentity", context):
            raise _role_not_found_or_untrusted(ctx, "sts:SetSourceIdentity", arn)
        source_identity = str(params["SourceIdentity"])
    duration = int(params.get("DurationSeconds") or 3600)
    chained = caller is not None and caller.is_role_session
    error = sessions.role_duration_error(duration, int(role.get("MaxSessionDuration", 3600)), chained)
    if error is not None:
        raise error
    given = policy is not None or bool(policy_arns) or bool(requested)
    size = sessions.packed_size(policy, policy_arns, tags.tags)
    sessions.check_packed_size(size)
    session = issue_session(
        iam,
        parsed.account,
        role,
        params["RoleSessionName"],
        duration,
        ctx.now_ms / 1000,
        policy=policy,
        policy_arns=policy_arns,
        tags=tags.tags,
        transitive_tag_keys=tags.transitive_keys,
        source_identity=source_identity,
    )
    return {
        "Credentials": _credentials_shape(session),
        "AssumedRoleUser": {"AssumedRoleId": session.user_id, "Arn": session.arn},
        # Present only when session policies or tags were passed (as AWS answers).
        "PackedPolicySize": size.total if given else None,
        "SourceIdentity": source_identity,
    }


def get_session_token(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """GetSessionToken: long-term keys only; the session acts as the caller (a user for up to
    36 hours, 12 by default; the account root for at most one hour, longer requests shortened)."""
    if ctx.access_key_id.startswith("ASIA"):
        raise _access_denied(sessions.SESSION_CREDENTIALS_REFUSED)
    root = ctx.caller == root_user_arn(ctx.account_id)
    duration = int(params.get("DurationSeconds") or 43_200)
    if root:
        duration = min(duration, 3600)
    # The root's user id is its account id; a user's is its AIDA... id (the authorizer keeps the
    # session to that user: one made again under the name is another).
    user_id = ctx.account_id
    if not root:
        user = iam.get_user(ctx.account_id, ctx.caller.rsplit("/", 1)[-1])
        user_id = str(user["UserId"]) if user is not None else ctx.caller
    session = issue_own_session(iam, ctx.account_id, ctx.caller, user_id, duration, ctx.now_ms / 1000)
    return {"Credentials": _credentials_shape(session)}


def decode_authorization_message(
    iam: IamStore, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    """The decision behind an ``Encoded authorization failure message``, for the same account."""
    decoded = iam.authorization_message(ctx.account_id, str(params["EncodedMessage"]))
    if decoded is None:
        raise AwsError(
            INVALID_AUTHORIZATION_MESSAGE,
            code="InvalidAuthorizationMessageException",
            status=400,
            sender_fault=True,
        )
    return {"DecodedMessage": decoded}


HANDLERS = {
    "GetCallerIdentity": get_caller_identity,
    "AssumeRole": assume_role,
    "GetSessionToken": get_session_token,
    "DecodeAuthorizationMessage": decode_authorization_message,
}
