"""Settings kept beside a function or one of its versions, and code signing configurations.

A setting is a text value by (function, qualifier, kind): the recursion loop setting and the code
signing configuration of the function (qualifier ``''``), the runtime management configuration of
a version (``$LATEST`` or a number). Deleting the function or the version deletes its settings.
Code signing configurations are AWS-shaped JSON by (account, region, id).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import cast

from lamina.domain.models import CodeSigningConfig
from lamina.store.db import Database

FUNCTION = ""  # the qualifier of a setting of the function itself


class SettingKind(enum.Enum):
    """What a stored setting is."""

    RECURSION = "recursion"
    RUNTIME_MANAGEMENT = "runtime-management"
    CODE_SIGNING = "code-signing"


class FunctionSettingsStore:
    """Per-function and per-version settings of every account and region."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, account: str, region: str, name: str, qualifier: str, kind: SettingKind) -> str | None:
        """The setting's value, or None when it was never set."""
        row = self.db.read(
            lambda c: c.execute(
                "SELECT value FROM function_settings WHERE account=? AND region=? AND name=? AND qualifier=?"
                " AND kind=?",
                (account, region, name, qualifier, kind.value),
            ).fetchone()
        )
        return None if row is None else str(row[0])

    def put(
        self, account: str, region: str, name: str, qualifier: str, kind: SettingKind, value: str
    ) -> None:
        """Set (or replace) the setting."""
        with self.db.write() as c:
            c.execute(
                "INSERT INTO function_settings (account, region, name, qualifier, kind, value) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (account, region, name, qualifier, kind) DO UPDATE SET value=excluded.value",
                (account, region, name, qualifier, kind.value, value),
            )

    def delete(self, account: str, region: str, name: str, qualifier: str, kind: SettingKind) -> bool:
        """Remove the setting; False if it was not set."""
        with self.db.write() as c:
            cur = c.execute(
                "DELETE FROM function_settings WHERE account=? AND region=? AND name=? AND qualifier=? AND kind=?",
                (account, region, name, qualifier, kind.value),
            )
            return cur.rowcount > 0

    def forget_function(self, account: str, region: str, name: str, qualifier: str | None = None) -> None:
        """A deleted function (``qualifier`` None: every setting) or version (its own settings)."""
        with self.db.write() as c:
            if qualifier is None:
                c.execute(
                    "DELETE FROM function_settings WHERE account=? AND region=? AND name=?",
                    (account, region, name),
                )
            else:
                c.execute(
                    "DELETE FROM function_settings WHERE account=? AND region=? AND name=? AND qualifier=?",
                    (account, region, name, qualifier),
                )

    def functions_with(self, account: str, region: str, kind: SettingKind, value: str) -> list[str]:
        """Names of the functions whose setting ``kind`` (of the function itself) is ``value``, sorted."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT name FROM function_settings WHERE account=? AND region=? AND kind=? AND value=?"
                " AND qualifier='' ORDER BY name",
                (account, region, kind.value, value),
            ).fetchall()
        )
        return [str(r[0]) for r in rows]


def _decode(text: object) -> CodeSigningConfig:
    return cast(CodeSigningConfig, json.loads(str(text)))


class CodeSigningStore:
    """Code signing configurations of every account and region."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, account: str, region: str, csc_id: str, config: CodeSigningConfig) -> None:
        """Store a new configuration (ids are fresh: never replaces one)."""
        with self.db.write() as c:
            c.execute(
                "INSERT INTO code_signing_configs (account, region, id, config) VALUES (?, ?, ?, ?)",
                (account, region, csc_id, json.dumps(config)),
            )

    def get(self, account: str, region: str, csc_id: str) -> CodeSigningConfig | None:
        """The configuration, or None."""
        row = self.db.read(
            lambda c: c.execute(
                "SELECT config FROM code_signing_configs WHERE account=? AND region=? AND id=?",
                (account, region, csc_id),
            ).fetchone()
        )
        return None if row is None else _decode(row[0])

    def update(
        self, account: str, region: str, csc_id: str, change: Callable[[CodeSigningConfig], CodeSigningConfig]
    ) -> CodeSigningConfig | None:
        """Apply ``change`` in one transaction; None if there is no such configuration."""
        with self.db.write() as c:
            row = c.execute(
                "SELECT config FROM code_signing_configs WHERE account=? AND region=? AND id=?",
                (account, region, csc_id),
            ).fetchone()
            if row is None:
                return None
            updated = change(_decode(row[0]))
            c.execute(
                "UPDATE code_signing_configs SET config=? WHERE account=? AND region=? AND id=?",
                (json.dumps(updated), account, region, csc_id),
            )
            return updated

    def delete(self, account: str, region: str, csc_id: str) -> bool:
        """Remove the configuration; False if there was none."""
        with self.db.write() as c:
            cur = c.execute(
                "DELETE FROM code_signing_configs WHERE account=? AND region=? AND id=?",
                (account, region, csc_id),
            )
            return cur.rowcount > 0

    def list(self, account: str, region: str) -> list[CodeSigningConfig]:
        """Every configuration of the account and region, by id."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT config FROM code_signing_configs WHERE account=? AND region=? ORDER BY id",
                (account, region),
            ).fetchall()
        )
        return [_decode(r[0]) for r in rows]
