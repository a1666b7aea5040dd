"""Execution role sessions and the environments that carry them: an environment is not given an
invocation its credentials may not outlast, and the session it is replaced with is a fresh one."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from lamina.runtime.environment import Target
from lamina.runtime.pool import CREDENTIALS_MARGIN_S, credentials_last
from lamina.services.lambda_.roles import REFRESH_S, ROLE_SESSION_S, RoleSessions
from lamina.store import Database, IamStore

ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/runner"


def test_sessions_expire_and_are_replaced_before_the_margin(db: Database) -> None:
    iam = IamStore(db)
    iam.put_role(ACCOUNT, {"RoleName": "runner", "Arn": ROLE, "RoleId": "AROAEXAMPLE"}, create=True)
    now = [1_000_000.0]
    sessions = RoleSessions(iam, clock=lambda: now[0])
    assert sessions.expires(ACCOUNT, ROLE, "fn") == math.inf  # none given yet
    first = sessions.credentials(ACCOUNT, ROLE, "fn")
    assert sessions.expires(ACCOUNT, ROLE, "fn") == now[0] + ROLE_SESSION_S
    now[0] += ROLE_SESSION_S - REFRESH_S - 1  # just over an hour left: kept
    assert sessions.credentials(ACCOUNT, ROLE, "fn") == first
    # An environment with these credentials is still used (an hour is more than the margin)...
    assert REFRESH_S > CREDENTIALS_MARGIN_S
    now[0] += REFRESH_S + 1 - CREDENTIALS_MARGIN_S  # ...until less than the margin is left
    second = sessions.credentials(ACCOUNT, ROLE, "fn")
    assert second != first  # its replacement gets a new session
    assert sessions.expires(ACCOUNT, ROLE, "fn") == now[0] + ROLE_SESSION_S


def test_an_environment_whose_credentials_would_expire_mid_invocation_is_not_used(tmp_path: Path) -> None:
    target = Target(
        account=ACCOUNT,
        region="us-east-1",
        name="fn",
        version="$LATEST",
        config={"Handler": "x", "MemorySize": 128, "RevisionId": "r"},
        code_dir=tmp_path,
        layer_dirs=(),
        python=None,
        credentials=("AKID", "secret", "token"),
        endpoint_port=4566,
        credentials_expire=10_000.0,
    )
    assert credentials_last(target, 10_000.0 - CREDENTIALS_MARGIN_S - 1)
    assert not credentials_last(target, 10_000.0 - CREDENTIALS_MARGIN_S)
    assert credentials_last(dataclasses.replace(target, credentials_expire=math.inf), 10_000.0)
