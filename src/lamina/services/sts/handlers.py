"""STS operations. Temporary credentials are stored as sessions the SigV4 check accepts
(with their session token) until they expire."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lamina.domain.arns import Arn, root_user_arn
from lamina.domain.policy import PolicyKind, parse_policy, trusts_account
from lamina.errors import AwsError
from lamina.services.base import RequestContext
from lamina.services.sts.sessions import issue_session
from lamina.store.iam import IamStore

MIN_DURATION, MAX_DURATION = 900, 43_200


def _access_denied(message: str) -> AwsError:
    return AwsError(message, code="AccessDenied", status=403, sender_fault=True)


def get_caller_identity(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    session = iam.session(ctx.access_key_id) if ctx.access_key_id else None
    if session is not None:
        return {"UserId": session.user_id, "Account": session.account, "Arn": session.arn}
    return {"UserId": ctx.account_id, "Account": ctx.account_id, "Arn": root_user_arn(ctx.account_id)}


def assume_role(iam: IamStore, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["RoleArn"]
    duration = int(params.get("DurationSeconds") or 3600)
    parsed = Arn.parse(arn)
    role = None
    if parsed is not None and parsed.role_name is not None:
        role = iam.get_role(parsed.account, parsed.role_name)
    denied = _access_denied(
        f"User: {ctx.caller} is not authorized to perform: sts:AssumeRole on resource: {arn}"
    )
    if parsed is None or role is None:
        raise denied
    trust = parse_policy(str(role["AssumeRolePolicyDocument"]), PolicyKind.TRUST)
    if not trusts_account(trust, ctx.account_id, ctx.caller):
        raise denied
    if not MIN_DURATION <= duration <= int(role.get("MaxSessionDuration", 3600)):
        raise AwsError(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            code="ValidationError",
            status=400,
            sender_fault=True,
        )
    session = issue_session(iam, parsed.account, role, params["RoleSessionName"], duration, ctx.now_ms / 1000)
    expiration = dt.datetime.fromtimestamp(session.expires, dt.UTC).replace(microsecond=0)
    return {
        "Credentials": {
            "AccessKeyId": session.access_key,
            "SecretAccessKey": session.secret,
            "SessionToken": session.token,
            "Expiration": expiration,
        },
        "AssumedRoleUser": {"AssumedRoleId": session.user_id, "Arn": session.arn},
        "PackedPolicySize": 0 if params.get("Policy") else None,
    }


HANDLERS = {"GetCallerIdentity": get_caller_identity, "AssumeRole": assume_role}
