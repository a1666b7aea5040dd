"""IAM roles, users, groups, access keys and policies (global per account) and STS sessions, in
the metadata database.

Roles, users, groups and customer policies are stored as the AWS-shaped dicts IAM returns
(documents kept as JSON text); their names are case-insensitive in IAM, so rows are keyed by the
lower-cased name.

:attr:`IamStore.generation` counts the writes that can change an authorization decision, so that
a reader may cache what it derived from the store until the number moves.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, cast

from lamina.domain.models import Group, Policy, Role, User
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


@dataclass(frozen=True)
class AccessKeyRecord:
    """An IAM user's long-term access key."""

    account: str
    user_name: str
    secret: str
    status: str  # "Active" | "Inactive"
    create_date: str  # ISO 8601
    access_key_id: str = ""


class Entity(Enum):
    """The IAM identities other than roles that carry inline policies and attachments."""

    USER = "user"
    GROUP = "group"


# The change notification other nodes sharing the database bump their generation on.
CHANGED: Final = "lamina_iam_changed"


class IamStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._generation = 0
        self._lock = threading.Lock()
        # Any notification, RESYNC (some may have been missed) included, moves the generation.
        db.listen(CHANGED, lambda _payload: self._bump_here())

    @property
    def generation(self) -> int:
        """Bumped by every write that can change an authorization decision (not STS sessions), on
        this node or on another sharing the database (a moment later: as IAM's own changes,
        eventually consistent). While this node does not hear the other nodes' changes
        (PostgreSQL's notifications: ``Database.following``), it moves at every look, so that
        nothing derived from IAM is kept meanwhile."""
        if not self.db.following(CHANGED):
            self._bump_here()
        return self._generation

    def _bump_here(self) -> None:
        with self._lock:
            self._generation += 1

    def _bump(self) -> None:
        """After a committed write: here at once, on the other nodes by notification."""
        self._bump_here()
        self.db.broadcast(CHANGED, "")

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
                "INSERT INTO iam_roles (account, name_lower, role) VALUES (?, ?, ?)"
                " ON CONFLICT (account, name_lower) DO UPDATE SET role=excluded.role",
                (*key, json.dumps(role)),
            )
        self._bump()
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
        self._bump()
        return None

    # -- inline policies ------------------------------------------------------------------------

    def put_inline(self, account: str, role: str, name: str, document: str) -> None:
        with self.db.write() as c:
            c.execute(
                "INSERT INTO iam_role_policies (account, role_lower, policy_name, document) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (account, role_lower, policy_name) DO UPDATE SET document=excluded.document",
                (account, role.lower(), name, document),
            )
        self._bump()

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
        self._bump()
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
                "INSERT INTO iam_policies (account, arn, policy, document) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (account, arn) DO UPDATE SET policy=excluded.policy, document=excluded.document",
                (account, policy["Arn"], json.dumps(policy), document),
            )
        self._bump()
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
            done = (
                c.execute("DELETE FROM iam_policies WHERE account=? AND arn=?", (account, arn)).rowcount > 0
            )
        self._bump()
        return done

    def list_policies(self, account: str) -> list[Policy]:
        """The account's customer managed policies (their documents are not read)."""
        rows = self.db.read(
            lambda c: c.execute("SELECT policy FROM iam_policies WHERE account=?", (account,)).fetchall()
        )
        return [cast(Policy, json.loads(r[0])) for r in rows]

    def attach(self, account: str, role: str, arn: str) -> None:
        with self.db.write() as c:
            c.execute(
                "INSERT INTO iam_attachments (account, role_lower, policy_arn) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (account, role.lower(), arn),
            )
        self._bump()

    def detach(self, account: str, role: str, arn: str) -> bool:
        with self.db.write() as c:
            done = (
                c.execute(
                    "DELETE FROM iam_attachments WHERE account=? AND role_lower=? AND policy_arn=?",
                    (account, role.lower(), arn),
                ).rowcount
                > 0
            )
        self._bump()
        return done

    def attached(self, account: str, role: str) -> list[str]:
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT policy_arn FROM iam_attachments WHERE account=? AND role_lower=? ORDER BY rowid",
                (account, role.lower()),
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    def attachment_count(self, account: str, arn: str) -> int:
        """How many roles, users and groups of the account have the policy attached."""
        row = self.db.read(
            lambda c: c.execute(
                "SELECT (SELECT COUNT(*) FROM iam_attachments WHERE account=? AND policy_arn=?)"
                " + (SELECT COUNT(*) FROM iam_entity_attachments WHERE account=? AND policy_arn=?)",
                (account, arn, account, arn),
            ).fetchone()
        )
        return int(row[0])

    def boundary_usage_count(self, account: str, arn: str) -> int:
        """How many roles and users of the account have the policy as their permissions boundary."""
        boundary = ("PermissionsBoundary", "PermissionsBoundaryArn")
        role_arn = self.db.sql.json_text("role", *boundary)
        user_arn = self.db.sql.json_text('"user"', *boundary)
        row = self.db.read(
            lambda c: c.execute(
                f"SELECT (SELECT COUNT(*) FROM iam_roles WHERE account=? AND {role_arn}=?)"
                f" + (SELECT COUNT(*) FROM iam_users WHERE account=? AND {user_arn}=?)",
                (account, arn, account, arn),
            ).fetchone()
        )
        return int(row[0])

    # -- users ----------------------------------------------------------------------------------

    def get_user(self, account: str, name: str) -> User | None:
        row = self.db.read(
            lambda c: c.execute(
                'SELECT "user" FROM iam_users WHERE account=? AND name_lower=?', (account, name.lower())
            ).fetchone()
        )
        return cast(User, json.loads(row[0])) if row else None

    def put_user(self, account: str, user: User, *, create: bool) -> bool:
        """Insert (``create``) or replace a user; False if creating and the name is taken."""
        with self.db.write() as c:
            key = (account, str(user["UserName"]).lower())
            exists = c.execute("SELECT 1 FROM iam_users WHERE account=? AND name_lower=?", key).fetchone()
            if create and exists:
                return False
            c.execute(
                'INSERT INTO iam_users (account, name_lower, "user") VALUES (?, ?, ?)'
                ' ON CONFLICT (account, name_lower) DO UPDATE SET "user"=excluded."user"',
                (*key, json.dumps(user)),
            )
        self._bump()
        return True

    def rename_user(self, account: str, old_name: str, user: User) -> bool:
        """Replace user ``old_name`` by ``user`` (new name and/or path), carrying its keys, groups
        and policies along; False if the new name belongs to another user."""
        old, new = old_name.lower(), str(user["UserName"]).lower()
        with self.db.write() as c:
            if (
                new != old
                and c.execute(
                    "SELECT 1 FROM iam_users WHERE account=? AND name_lower=?", (account, new)
                ).fetchone()
            ):
                return False
            c.execute("DELETE FROM iam_users WHERE account=? AND name_lower=?", (account, old))
            c.execute(
                'INSERT INTO iam_users (account, name_lower, "user") VALUES (?, ?, ?)',
                (account, new, json.dumps(user)),
            )
            for table, column in (("iam_group_members", "user_lower"), ("iam_access_keys", "user_lower")):
                c.execute(
                    f"UPDATE {table} SET {column}=? WHERE account=? AND {column}=?", (new, account, old)
                )
            for table in ("iam_entity_policies", "iam_entity_attachments"):
                c.execute(
                    f"UPDATE {table} SET name_lower=? WHERE account=? AND kind='user' AND name_lower=?",
                    (new, account, old),
                )
        self._bump()
        return True

    def list_users(self, account: str) -> list[User]:
        rows = self.db.read(
            lambda c: c.execute(
                'SELECT "user" FROM iam_users WHERE account=? ORDER BY name_lower', (account,)
            ).fetchall()
        )
        return [cast(User, json.loads(r[0])) for r in rows]

    def delete_user(self, account: str, name: str) -> str | None:
        """Delete a user; None if done, else what still depends on it ("keys", "policies",
        "attached" or "groups")."""
        key = (account, name.lower())
        with self.db.write() as c:
            if c.execute("SELECT 1 FROM iam_access_keys WHERE account=? AND user_lower=?", key).fetchone():
                return "keys"
            for table, blocker in (
                ("iam_entity_policies", "policies"),
                ("iam_entity_attachments", "attached"),
            ):
                if c.execute(
                    f"SELECT 1 FROM {table} WHERE account=? AND kind='user' AND name_lower=?", key
                ).fetchone():
                    return blocker
            if c.execute("SELECT 1 FROM iam_group_members WHERE account=? AND user_lower=?", key).fetchone():
                return "groups"
            c.execute("DELETE FROM iam_users WHERE account=? AND name_lower=?", key)
        self._bump()
        return None

    # -- groups ----------------------------------------------------------------------------------

    def get_group(self, account: str, name: str) -> Group | None:
        row = self.db.read(
            lambda c: c.execute(
                "SELECT grp FROM iam_groups WHERE account=? AND name_lower=?", (account, name.lower())
            ).fetchone()
        )
        return cast(Group, json.loads(row[0])) if row else None

    def put_group(self, account: str, group: Group, *, create: bool) -> bool:
        """Insert (``create``) or replace a group; False if creating and the name is taken."""
        with self.db.write() as c:
            key = (account, str(group["GroupName"]).lower())
            exists = c.execute("SELECT 1 FROM iam_groups WHERE account=? AND name_lower=?", key).fetchone()
            if create and exists:
                return False
            c.execute(
                "INSERT INTO iam_groups (account, name_lower, grp) VALUES (?, ?, ?)"
                " ON CONFLICT (account, name_lower) DO UPDATE SET grp=excluded.grp",
                (*key, json.dumps(group)),
            )
        self._bump()
        return True

    def list_groups(self, account: str) -> list[Group]:
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT grp FROM iam_groups WHERE account=? ORDER BY name_lower", (account,)
            ).fetchall()
        )
        return [cast(Group, json.loads(r[0])) for r in rows]

    def delete_group(self, account: str, name: str) -> str | None:
        """Delete a group; None if done, else what still depends on it ("members", "policies" or
        "attached")."""
        key = (account, name.lower())
        with self.db.write() as c:
            if c.execute("SELECT 1 FROM iam_group_members WHERE account=? AND group_lower=?", key).fetchone():
                return "members"
            for table, blocker in (
                ("iam_entity_policies", "policies"),
                ("iam_entity_attachments", "attached"),
            ):
                if c.execute(
                    f"SELECT 1 FROM {table} WHERE account=? AND kind='group' AND name_lower=?", key
                ).fetchone():
                    return blocker
            c.execute("DELETE FROM iam_groups WHERE account=? AND name_lower=?", key)
        self._bump()
        return None

    def add_member(self, account: str, group: str, user: str) -> None:
        with self.db.write() as c:
            c.execute(
                "INSERT INTO iam_group_members (account, group_lower, user_lower) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (account, group.lower(), user.lower()),
            )
        self._bump()

    def remove_member(self, account: str, group: str, user: str) -> bool:
        with self.db.write() as c:
            done = (
                c.execute(
                    "DELETE FROM iam_group_members WHERE account=? AND group_lower=? AND user_lower=?",
                    (account, group.lower(), user.lower()),
                ).rowcount
                > 0
            )
        self._bump()
        return done

    def group_users(self, account: str, group: str) -> list[User]:
        """The group's members, by name."""
        rows = self.db.read(
            lambda c: c.execute(
                'SELECT u."user" FROM iam_group_members m JOIN iam_users u'
                " ON u.account=m.account AND u.name_lower=m.user_lower"
                " WHERE m.account=? AND m.group_lower=? ORDER BY u.name_lower",
                (account, group.lower()),
            ).fetchall()
        )
        return [cast(User, json.loads(r[0])) for r in rows]

    def user_groups(self, account: str, user: str) -> list[Group]:
        """The groups the user belongs to, by name."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT g.grp FROM iam_group_members m JOIN iam_groups g"
                " ON g.account=m.account AND g.name_lower=m.group_lower"
                " WHERE m.account=? AND m.user_lower=? ORDER BY g.name_lower",
                (account, user.lower()),
            ).fetchall()
        )
        return [cast(Group, json.loads(r[0])) for r in rows]

    # -- users' and groups' inline policies and attachments -----------------------------------------

    def put_entity_inline(self, kind: Entity, account: str, entity: str, name: str, document: str) -> None:
        with self.db.write() as c:
            c.execute(
                "INSERT INTO iam_entity_policies (account, kind, name_lower, policy_name, document)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, kind, name_lower, policy_name)"
                " DO UPDATE SET document=excluded.document",
                (account, kind.value, entity.lower(), name, document),
            )
        self._bump()

    def get_entity_inline(self, kind: Entity, account: str, entity: str, name: str) -> str | None:
        row = self.db.read(
            lambda c: c.execute(
                "SELECT document FROM iam_entity_policies"
                " WHERE account=? AND kind=? AND name_lower=? AND policy_name=?",
                (account, kind.value, entity.lower(), name),
            ).fetchone()
        )
        return str(row[0]) if row else None

    def entity_inline(self, kind: Entity, account: str, entity: str) -> list[tuple[str, str]]:
        """(policy name, document) of a user's or group's inline policies, by name."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT policy_name, document FROM iam_entity_policies"
                " WHERE account=? AND kind=? AND name_lower=? ORDER BY policy_name",
                (account, kind.value, entity.lower()),
            ).fetchall()
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def delete_entity_inline(self, kind: Entity, account: str, entity: str, name: str) -> bool:
        with self.db.write() as c:
            done = (
                c.execute(
                    "DELETE FROM iam_entity_policies WHERE account=? AND kind=? AND name_lower=? AND policy_name=?",
                    (account, kind.value, entity.lower(), name),
                ).rowcount
                > 0
            )
        self._bump()
        return done

    def attach_entity(self, kind: Entity, account: str, entity: str, arn: str) -> None:
        with self.db.write() as c:
            c.execute(
                "INSERT INTO iam_entity_attachments (account, kind, name_lower, policy_arn)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (account, kind.value, entity.lower(), arn),
            )
        self._bump()

    def detach_entity(self, kind: Entity, account: str, entity: str, arn: str) -> bool:
        with self.db.write() as c:
            done = (
                c.execute(
                    "DELETE FROM iam_entity_attachments WHERE account=? AND kind=? AND name_lower=?"
                    " AND policy_arn=?",
                    (account, kind.value, entity.lower(), arn),
                ).rowcount
                > 0
            )
        self._bump()
        return done

    def entity_attached(self, kind: Entity, account: str, entity: str) -> list[str]:
        """The managed policy ARNs attached to a user or group, in attachment order."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT policy_arn FROM iam_entity_attachments WHERE account=? AND kind=? AND name_lower=?"
                " ORDER BY rowid",
                (account, kind.value, entity.lower()),
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    # -- access keys ------------------------------------------------------------------------------

    def add_access_key(
        self, account: str, user: str, key_id: str, secret: str, create_date: str, *, limit: int
    ) -> bool:
        """Give the user a new Active key; False (nothing written) if it has ``limit`` already."""
        with self.db.write() as c:
            (count,) = c.execute(
                "SELECT COUNT(*) FROM iam_access_keys WHERE account=? AND user_lower=?",
                (account, user.lower()),
            ).fetchone()
            if count >= limit:
                return False
            c.execute(
                "INSERT INTO iam_access_keys (access_key, account, user_lower, secret, status, create_date)"
                " VALUES (?, ?, ?, ?, 'Active', ?)",
                (key_id, account, user.lower(), secret, create_date),
            )
        self._bump()
        return True

    def _key_select(self) -> str:
        user_name = self.db.sql.json_text('u."user"', "UserName")
        return (
            f"SELECT k.access_key, k.account, {user_name}, k.secret,"
            " k.status, k.create_date FROM iam_access_keys k JOIN iam_users u"
            " ON u.account=k.account AND u.name_lower=k.user_lower"
        )

    @staticmethod
    def _key(row: tuple[str, str, str, str, str, str]) -> AccessKeyRecord:
        key_id, account, user, secret, status, created = row
        return AccessKeyRecord(account, user, secret, status, created, key_id)

    def access_key(self, key_id: str) -> AccessKeyRecord | None:
        """The access key with this id (any status), or None."""
        row = self.db.read(
            lambda c: c.execute(self._key_select() + " WHERE k.access_key=?", (key_id,)).fetchone()
        )
        return self._key(row) if row else None

    def access_keys(self, account: str, user: str) -> list[AccessKeyRecord]:
        """The user's access keys, oldest first."""
        rows = self.db.read(
            lambda c: c.execute(
                self._key_select() + " WHERE k.account=? AND k.user_lower=? ORDER BY k.create_date, k.rowid",
                (account, user.lower()),
            ).fetchall()
        )
        return [self._key(r) for r in rows]

    def set_access_key_status(self, account: str, user: str, key_id: str, status: str) -> bool:
        with self.db.write() as c:
            done = (
                c.execute(
                    "UPDATE iam_access_keys SET status=? WHERE access_key=? AND account=? AND user_lower=?",
                    (status, key_id, account, user.lower()),
                ).rowcount
                > 0
            )
        self._bump()
        return done

    def delete_access_key(self, account: str, user: str, key_id: str) -> bool:
        with self.db.write() as c:
            done = (
                c.execute(
                    "DELETE FROM iam_access_keys WHERE access_key=? AND account=? AND user_lower=?",
                    (key_id, account, user.lower()),
                ).rowcount
                > 0
            )
        self._bump()
        return done

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

    def invalidate(self) -> None:
        """Another process sharing the database changed IAM (services/cluster.py): what readers
        derived from the store is stale (nothing to tell the others: they made the change)."""
        self._bump_here()
