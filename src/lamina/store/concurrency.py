"""Functions' reserved concurrency in the metadata database (a column of ``functions``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lamina.store.db import Database
from lamina.store.provisioned import UNRESERVED_PROVISIONED_SQL


@dataclass(frozen=True)
class Reservation:
    """One function's reserved concurrency (None: it has none)."""

    reserved: int | None


@dataclass(frozen=True)
class ReservedFunction:
    account: str
    region: str
    name: str
    reserved: int


_FUNCTION = "account=? AND region=? AND name=?"


class ConcurrencyStore:
    """Reserved concurrency of every account's functions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, account: str, region: str, name: str) -> Reservation | None:
        """The function's reservation; None if there is no such function."""
        r = self.db.read(
            lambda c: c.execute(
                f"SELECT reserved_concurrency FROM functions WHERE {_FUNCTION}", (account, region, name)
            ).fetchone()
        )
        return None if r is None else Reservation(r[0])

    def total_reserved(self, account: str, region: str) -> int:
        """What the account's functions in ``region`` have reserved together."""
        r = self.db.read(
            lambda c: c.execute(
                "SELECT CAST(COALESCE(SUM(reserved_concurrency), 0) AS BIGINT) FROM functions WHERE account=? AND region=?",
                (account, region),
            ).fetchone()
        )
        return int(r[0])

    def all_reserved(self) -> list[ReservedFunction]:
        """Every reservation (read once at start by the invoke-side limits)."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT account, region, name, reserved_concurrency FROM functions"
                " WHERE reserved_concurrency IS NOT NULL"
            ).fetchall()
        )
        return [ReservedFunction(r[0], r[1], r[2], int(r[3])) for r in rows]

    def put(
        self,
        account: str,
        region: str,
        name: str,
        value: int | None,
        *,
        check: Callable[[int], None],
        applied: Callable[[int | None], None],
    ) -> bool:
        """Set (``value``) or remove (None) a function's reservation atomically; False if there is no
        such function. ``check`` gets what the account's other functions in the Region reserve (or
        have provisioned without a reservation) and may raise (nothing changes); ``applied`` gets
        the previous value, inside the write transaction, so that callers mirroring reservations
        see the writes in commit order."""
        with self.db.write() as c:
            r = c.execute(
                f"SELECT reserved_concurrency FROM functions WHERE {_FUNCTION}", (account, region, name)
            ).fetchone()
            if r is None:
                return False
            if value is not None:
                others = c.execute(
                    "SELECT CAST(COALESCE(SUM(reserved_concurrency), 0) AS BIGINT) FROM functions"
                    " WHERE account=? AND region=? AND name<>?",
                    (account, region, name),
                ).fetchone()
                # Other functions' provisioned concurrency is out of the unreserved pool too
                # (store/provisioned.py); this function's moves into its reservation.
                provisioned = c.execute(
                    UNRESERVED_PROVISIONED_SQL + " AND p.name<>?", (account, region, name)
                ).fetchone()
                check(int(others[0]) + int(provisioned[0]))
            c.execute(
                f"UPDATE functions SET reserved_concurrency=? WHERE {_FUNCTION}",
                (value, account, region, name),
            )
            applied(r[0])
        return True
