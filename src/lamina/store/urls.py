"""Function URLs in the metadata database (migration 10).

One row per function URL: the function ($LATEST: qualifier ``''``) or alias it serves, the
AWS-shaped ``FunctionUrlConfig`` as JSON and the URL's id, by which the HTTP endpoint finds it.
Deleting the function deletes its URLs (:meth:`lamina.store.functions.FunctionStore.delete`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from lamina.domain.functions import FunctionRef
from lamina.domain.models import FunctionUrlConfig
from lamina.errors import LaminaError
from lamina.store.db import Database


@dataclass(frozen=True)
class UrlRow:
    """One function URL: what it serves (``ref.qualifier`` None: $LATEST), its id and configuration."""

    ref: FunctionRef
    url_id: str
    config: FunctionUrlConfig


_COLS = "account, region, name, qualifier, url_id, config"


def _row(r: Any) -> UrlRow:
    ref = FunctionRef(str(r[0]), str(r[1]), str(r[2]), str(r[3]) or None)
    return UrlRow(ref, str(r[4]), cast(FunctionUrlConfig, json.loads(r[5])))


def _key(ref: FunctionRef) -> tuple[str, str, str, str]:
    return ref.account, ref.region, ref.name, ref.qualifier or ""


class UrlIdTaken(LaminaError):
    """The generated URL id is already another URL's (retry with a new one)."""


class FunctionUrlStore:
    """Create, read, change and delete function URLs; find one by its id."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, ref: FunctionRef, url_id: str, config: FunctionUrlConfig) -> bool:
        """Store a new URL; False when ``ref`` already has one. Raises :class:`UrlIdTaken`."""
        with self.db.write() as c:
            found = c.execute(
                "SELECT 1 FROM function_urls WHERE account=? AND region=? AND name=? AND qualifier=?",
                _key(ref),
            ).fetchone()
            if found is not None:
                return False
            if c.execute("SELECT 1 FROM function_urls WHERE url_id=?", (url_id,)).fetchone():
                raise UrlIdTaken(url_id)
            c.execute(
                f"INSERT INTO function_urls ({_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                (*_key(ref), url_id, json.dumps(config)),
            )
        return True

    def get(self, ref: FunctionRef) -> UrlRow | None:
        """The URL of a function ($LATEST) or alias, if it has one."""
        r = self.db.read(
            lambda c: c.execute(
                f"SELECT {_COLS} FROM function_urls WHERE account=? AND region=? AND name=? AND qualifier=?",
                _key(ref),
            ).fetchone()
        )
        return None if r is None else _row(r)

    def by_id(self, url_id: str) -> UrlRow | None:
        """The URL with this id (one read by a unique index: the endpoint asks on every request)."""
        r = self.db.read(
            lambda c: c.execute(f"SELECT {_COLS} FROM function_urls WHERE url_id=?", (url_id,)).fetchone()
        )
        return None if r is None else _row(r)

    def update(
        self, ref: FunctionRef, change: Callable[[FunctionUrlConfig], FunctionUrlConfig]
    ) -> UrlRow | None:
        """Apply ``change`` (which may raise) to a URL's configuration atomically; None if none."""
        with self.db.write() as c:
            r = c.execute(
                f"SELECT {_COLS} FROM function_urls WHERE account=? AND region=? AND name=? AND qualifier=?",
                _key(ref),
            ).fetchone()
            if r is None:
                return None
            row = _row(r)
            config = change(row.config)
            c.execute(
                "UPDATE function_urls SET config=? WHERE account=? AND region=? AND name=? AND qualifier=?",
                (json.dumps(config), *_key(ref)),
            )
        return UrlRow(row.ref, row.url_id, config)

    def delete(self, ref: FunctionRef) -> bool:
        """Delete a URL; False if there was none."""
        with self.db.write() as c:
            cur = c.execute(
                "DELETE FROM function_urls WHERE account=? AND region=? AND name=? AND qualifier=?", _key(ref)
            )
            return bool(cur.rowcount)

    def list(self, function: FunctionRef, *, after: str | None, limit: int) -> list[UrlRow]:
        """A function's URLs ($LATEST's first, then by alias name), after the ``after`` qualifier."""
        sql = f"SELECT {_COLS} FROM function_urls WHERE account=? AND region=? AND name=?"
        args: list[Any] = [function.account, function.region, function.name]
        if after is not None:
            sql += " AND qualifier > ?"
            args.append(after)
        sql += " ORDER BY qualifier LIMIT ?"
        args.append(limit)
        return [_row(r) for r in self.db.read(lambda c: c.execute(sql, args).fetchall())]
