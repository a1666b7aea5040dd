"""IAM roles and policies (global per account) and STS sessions, in the metadata database.

Roles and customer policies are stored as the AWS-shaped dicts IAM returns (documents kept as
JSON text); role names are case-insensitive in IAM, so rows are keyed by the lower-cased name.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from lamina.domain.models import Policy, Role
from lamina.store.db import Database

# Encoded authorization messages are kept this long (AWS does not say how long it keeps them).
AUTHORIZATION_MESSAGE_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Session:
    """Temporary credentials and what the authorizer needs to know about them.

    An AssumeRole session has the role's ARN in ``role_arn`` and its session policies
    (``policy``: the inline JSON, ``policy_arns``: managed ones) and session tags (inherited
    transitive ones included). A GetSessionToken session keeps the caller's own identity:
    ``arn`` is the user's (or the root's) and ``role_arn`` is empty. Function role sessions
    (Lambda) have no session policies or tags.
    """

    access_key: str
    secret: str
    token: str
    account: str
    arn: str  # arn:aws:sts::<acct>:assumed-role/<role>/<session>
    user_id: str  # <role id>:<session>
    role_arn: str
    expires: float
    policy: str | None = None
    policy_arns: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    source_identity: str | None = None

    @property
    def is_role_session(self) -> bool:
        """An assumed-role session (AssumeRole or a function's role), not GetSessionToken's."""
        return bool(self.role_arn)


class IamStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- roles ------------------------------------------------------------------------------

    def get_role(self, account: str, name: str) -> Role | None:
        row = self.db.read(
            lambda c: c.execute(
                "SELECT role FROM iam_roles WHERE account=? AND name_lower=?", (account, name.lower())
            ).fetchone()
        )
        return cast(Role, json.loads(row[0])) if row else None

    def put_role(self, account: str, role: Role, *, create: bool) -> bool:
        """Insert (``create``) or replace a role; False if creating and the name is taken."""
        with self.db.write() as c:
            key = (account, str(role["RoleName"]).lower())
            exists = c.execute("SELECT 1 FROM iam_roles WHERE account=? AND name_lower=?", key).fetchone()
            if create and exists:
                return False
            c.execute(
                "INSERT OR REPLACE INTO iam_roles (account, name_lower, role) VALUES (?, ?, ?)",
                (*key, json.dumps(role)),
            )
        return True

    def list_roles(self, account: str) -> list[Role]:
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT role FROM iam_roles WHERE account=? ORDER BY name_lower", (account,)
            ).fetchall()
        )
        return [cast(Role, json.loads(r[0])) for r in rows]

    def delete_role(self, account: str, name: str) -> str | None:
        """Delete a role; None if done, else what still depends on it ("policies" / "attached")."""
        with self.db.write() as c:
            key = (account, name.lower())
            if c.execute("SELECT 1 FROM iam_role_policies WHERE account=? AND role_lower=?", key).fetchone():
                return "policies"
            if c.execute("SELECT 1 FROM iam_attachments WHERE account=? AND role_lower=?", key).fetchone():
                return "attached"
            c.execute("DELETE FROM iam_roles WHERE account=? AND name_lower=?", key)
        return None

    # -- inline policies ------------------------------------------------------------------------

    def put_inline(self, account: str, role: str, name: str, document: str) -> None:
        with self.db.write() as c:
            c.execute(
                "INSERT OR REPLACE INTO iam_role_policies (account, role_lower, policy_name, document)"
                " VALUES (?, ?, ?, ?)",
                (account, role.lower(), name, document),
            )

    def get_inline(self, account: str, role: str, name: str) -> str | None:
        row = self.db.read(
            lambda c: c.execute(
                "SELECT document FROM iam_role_policies WHERE account=? AND role_lower=? AND policy_name=?",
                (account, role.lower(), name),
            ).fetchone()
        )
        return str(row[0]) if row else None

    def inline_policies(self, account: str, role: str) -> list[tuple[str, str]]:
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT policy_name, document FROM iam_role_policies WHERE account=? AND role_lower=?"
                " ORDER BY policy_name",
                (account, role.lower()),
            ).fetchall()
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def delete_inline(self, account: str, role: str, name: str) -> bool:
        with self.db.write() as c:
            cur = c.execute(
                "DELETE FROM iam_role_policies WHERE account=? AND role_lower=? AND policy_name=?",
                (account, role.lower(), name),
            )
            return cur.rowcount > 0

    # -- managed policies ---------------------------------------------------------------------------

    def put_policy(self, account: str, policy: Policy, document: str, *, create: bool) -> bool:
        with self.db.write() as c:
            exists = c.execute(
                "SELECT 1 FROM iam_policies WHERE account=? AND arn=?", (account, policy["Arn"])
            ).fetchone()
            if create and exists:
                return False
            c.execute(
                "INSERT OR REPLACE INTO iam_policies (account, arn, policy, document) VALUES (?, ?, ?, ?)",
                (account, policy["Arn"], json.dumps(policy), document),
            )
        return True

    def get_policy(self, account: str, arn: str) -> tuple[Policy, str] | None:
        row = self.db.read(
            lambda c: c.execute(
                "SELECT policy, document FROM iam_policies WHERE account=? AND arn=?", (account, arn)
            ).fetchone()
        )
        return (cast(Policy, json.loads(row[0])), str(row[1])) if row else None

    def delete_policy(self, account: str, arn: str) -> bool:
        with self.db.write() as c:
            return (
                c.execute("DELETE FROM iam_policies WHERE account=? AND arn=?", (account, arn)).rowcount > 0
            )

    def list_policies(self, account: str) -> list[Policy]:
        """The account's customer managed policies (their documents are not read)."""
        rows = self.db.read(
            lambda c: c.execute("SELECT policy FROM iam_policies WHERE account=?", (account,)).fetchall()
        )
        return [cast(Policy, json.loads(r[0])) for r in rows]

    def attach(self, account: str, role: str, arn: str) -> None:
        with self.db.write() as c:
            c.execute(
                "INSERT OR IGNORE INTO iam_attachments (account, role_lower, policy_arn) VALUES (?, ?, ?)",
                (account, role.lower(), arn),
            )

    def detach(self, account: str, role: str, arn: str) -> bool:
        with self.db.write() as c:
            return (
                c.execute(
                    "DELETE FROM iam_attachments WHERE account=? AND role_lower=? AND policy_arn=?",
                    (account, role.lower(), arn),
                ).rowcount
                > 0
            )

    def attached(self, account: str, role: str) -> list[str]:
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT policy_arn FROM iam_attachments WHERE account=? AND role_lower=? ORDER BY rowid",
                (account, role.lower()),
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    def attachment_count(self, account: str, arn: str) -> int:
        row = self.db.read(
            lambda c: c.execute(
                "SELECT COUNT(*) FROM iam_attachments WHERE account=? AND policy_arn=?", (account, arn)
            ).fetchone()
        )
        return int(row[0])

    # -- STS sessions -----------------------------------------------------------------------------

    _SESSION_COLUMNS = (
        "access_key, secret, token, account, arn, user_id, role_arn, expires,"
        " policy, policy_arns, tags, transitive_tag_keys, source_identity"
    )

    def add_session(self, s: Session, now: float) -> None:
        with self.db.write() as c:
            c.execute("DELETE FROM sts_sessions WHERE expires < ?", (now - 3600,))
            c.execute(
                f"INSERT INTO sts_sessions ({self._SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    s.access_key,
                    s.secret,
                    s.token,
                    s.account,
                    s.arn,
                    s.user_id,
                    s.role_arn,
                    s.expires,
                    s.policy,
                    json.dumps(list(s.policy_arns)),
                    json.dumps(dict(s.tags)),
                    json.dumps(list(s.transitive_tag_keys)),
                    s.source_identity,
                ),
            )

    def session(self, access_key: str) -> Session | None:
        row = self.db.read(
            lambda c: c.execute(
                f"SELECT {self._SESSION_COLUMNS} FROM sts_sessions WHERE access_key=?", (access_key,)
            ).fetchone()
        )
        if row is None:
            return None
        return Session(
            access_key=row[0],
            secret=row[1],
            token=row[2],
            account=row[3],
            arn=row[4],
            user_id=row[5],
            role_arn=row[6],
            expires=row[7],
            policy=row[8],
            policy_arns=tuple(json.loads(row[9])),
            tags=json.loads(row[10]),
            transitive_tag_keys=tuple(json.loads(row[11])),
            source_identity=row[12],
        )

    # -- encoded authorization messages ------------------------------------------------------------

    def save_authorization_message(self, account: str, decoded: str, now: float) -> str:
        """Keep ``decoded`` (the JSON DecodeAuthorizationMessage answers) for ``account`` and
        return the opaque text that stands for it in an error message: random, URL-safe and
        about as long as AWS's, so nothing can be learnt from it. Messages older than
        :data:`AUTHORIZATION_MESSAGE_TTL_S` are dropped here."""
        encoded = secrets.token_urlsafe(720)
        with self.db.write() as c:
            c.execute(
                "DELETE FROM sts_authorization_messages WHERE created < ?",
                (now - AUTHORIZATION_MESSAGE_TTL_S,),
            )
            c.execute(
                "INSERT INTO sts_authorization_messages (encoded, account, decoded, created) VALUES (?, ?, ?, ?)",
                (encoded, account, decoded, now),
            )
        return encoded

    def authorization_message(self, account: str, encoded: str) -> str | None:
        """The decoded message, if ``encoded`` was saved for ``account`` (and not yet dropped)."""
        row = self.db.read(
            lambda c: c.execute(
                "SELECT decoded FROM sts_authorization_messages WHERE encoded=? AND account=?",
                (encoded, account),
            ).fetchone()
        )
        return str(row[0]) if row else None
