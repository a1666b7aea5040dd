"""Asynchronous invocation configurations: one per function qualifier ($LATEST, version, alias).

Each is the AWS-shaped ``FunctionEventInvokeConfig`` as JSON, without ``FunctionArn`` (the handler
derives it); listed in the order they were first put (a Put over an existing one keeps its place).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import cast

from lamina.domain.models import FunctionEventInvokeConfig
from lamina.store.db import Database


def _decode(text: object) -> FunctionEventInvokeConfig:
    return cast(FunctionEventInvokeConfig, json.loads(str(text)))


class EventInvokeConfigStore:
    """The asynchronous invocation configurations of every account and region."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, account: str, region: str, name: str, qualifier: str) -> FunctionEventInvokeConfig | None:
        """The configuration of ``name:qualifier``, or None."""
        row = self.db.read(
            lambda c: c.execute(
                "SELECT config FROM event_invoke_configs WHERE account=? AND region=? AND name=? AND qualifier=?",
                (account, region, name, qualifier),
            ).fetchone()
        )
        return None if row is None else _decode(row[0])

    def put(
        self, account: str, region: str, name: str, qualifier: str, config: FunctionEventInvokeConfig
    ) -> None:
        """Store ``config`` for ``name:qualifier``, replacing what was there."""
        with self.db.write() as c:
            c.execute(
                "INSERT INTO event_invoke_configs (account, region, name, qualifier, config) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (account, region, name, qualifier) DO UPDATE SET config=excluded.config",
                (account, region, name, qualifier, json.dumps(config)),
            )

    def update(
        self,
        account: str,
        region: str,
        name: str,
        qualifier: str,
        change: Callable[[FunctionEventInvokeConfig], FunctionEventInvokeConfig],
    ) -> FunctionEventInvokeConfig | None:
        """Apply ``change`` to the stored configuration in one transaction; None if there is none."""
        with self.db.write() as c:
            row = c.execute(
                "SELECT config FROM event_invoke_configs WHERE account=? AND region=? AND name=? AND qualifier=?",
                (account, region, name, qualifier),
            ).fetchone()
            if row is None:
                return None
            updated = change(_decode(row[0]))
            c.execute(
                "UPDATE event_invoke_configs SET config=? WHERE account=? AND region=? AND name=? AND qualifier=?",
                (json.dumps(updated), account, region, name, qualifier),
            )
            return updated

    def delete(self, account: str, region: str, name: str, qualifier: str) -> bool:
        """Remove the configuration of ``name:qualifier``; False if there was none."""
        with self.db.write() as c:
            cur = c.execute(
                "DELETE FROM event_invoke_configs WHERE account=? AND region=? AND name=? AND qualifier=?",
                (account, region, name, qualifier),
            )
            return cur.rowcount > 0

    def forget_function(self, account: str, region: str, name: str, qualifier: str | None = None) -> None:
        """A deleted function (``qualifier`` None) or version: its configurations go with it."""
        with self.db.write() as c:
            if qualifier is None:
                c.execute(
                    "DELETE FROM event_invoke_configs WHERE account=? AND region=? AND name=?",
                    (account, region, name),
                )
            else:
                c.execute(
                    "DELETE FROM event_invoke_configs WHERE account=? AND region=? AND name=? AND qualifier=?",
                    (account, region, name, qualifier),
                )

    def list(self, account: str, region: str, name: str) -> list[tuple[str, FunctionEventInvokeConfig]]:
        """Every configuration of the function as (qualifier, configuration), first put first."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT qualifier, config FROM event_invoke_configs WHERE account=? AND region=? AND name=?"
                " ORDER BY rowid",
                (account, region, name),
            ).fetchall()
        )
        return [(str(q), _decode(text)) for q, text in rows]
