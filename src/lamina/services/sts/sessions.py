"""STS sessions: temporary credentials for a role (AssumeRole, and Lambda for execution roles)
or for the caller itself (GetSessionToken)."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence

from lamina.domain.models import Role
from lamina.store.iam import IamStore, Session


def _credentials() -> tuple[str, str, str]:
    key = "ASIA" + base64.b32encode(os.urandom(10)).decode()[:16]
    secret = base64.b64encode(os.urandom(30)).decode()
    token = "IQoJb3JpZ2luX2VjE" + base64.b64encode(os.urandom(96)).decode()
    return key, secret, token


def issue_session(
    iam: IamStore,
    account: str,
    role: Role,
    session_name: str,
    duration: int,
    now: float,
    *,
    policy: str | None = None,
    policy_arns: Sequence[str] = (),
    tags: Mapping[str, str] | None = None,
    transitive_tag_keys: Sequence[str] = (),
    source_identity: str | None = None,
) -> Session:
    """New temporary credentials for ``role`` (used by AssumeRole and by Lambda for functions);
    ``now`` in epoch seconds. The keyword arguments are AssumeRole's session policies, session
    tags and source identity, kept for the authorizer."""
    key, secret, token = _credentials()
    session = Session(
        access_key=key,
        secret=secret,
        token=token,
        account=account,
        arn=f"arn:aws:sts::{account}:assumed-role/{role['RoleName']}/{session_name}",
        user_id=f"{role['RoleId']}:{session_name}",
        role_arn=str(role["Arn"]),
        expires=now + duration,
        policy=policy,
        policy_arns=tuple(policy_arns),
        tags=dict(tags or {}),
        transitive_tag_keys=tuple(transitive_tag_keys),
        source_identity=source_identity,
    )
    iam.add_session(session, now)
    return session


def issue_own_session(
    iam: IamStore, account: str, arn: str, user_id: str, duration: int, now: float
) -> Session:
    """GetSessionToken: temporary credentials that act as the caller itself (``arn``, a user's or
    the account root's), with no role behind them."""
    key, secret, token = _credentials()
    session = Session(key, secret, token, account, arn, user_id, "", now + duration)
    iam.add_session(session, now)
    return session
