"""STS sessions: temporary credentials for a role (AssumeRole, and Lambda for execution roles)."""

from __future__ import annotations

import base64
import os

from lamina.domain.models import Role
from lamina.store.iam import IamStore, Session


def issue_session(
    iam: IamStore, account: str, role: Role, session_name: str, duration: int, now: float
) -> Session:
    """New temporary credentials for ``role`` (used by AssumeRole and by Lambda for functions);
    ``now`` in epoch seconds."""
    key = "ASIA" + base64.b32encode(os.urandom(10)).decode()[:16]
    secret = base64.b64encode(os.urandom(30)).decode()
    token = "IQoJb3JpZ2luX2VjE" + base64.b64encode(os.urandom(96)).decode()
    session = Session(
        access_key=key,
        secret=secret,
        token=token,
        account=account,
        arn=f"arn:aws:sts::{account}:assumed-role/{role['RoleName']}/{session_name}",
        user_id=f"{role['RoleId']}:{session_name}",
        role_arn=str(role["Arn"]),
        expires=now + duration,
    )
    iam.add_session(session, now)
    return session
