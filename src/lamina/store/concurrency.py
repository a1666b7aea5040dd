"""Functions' reserved concurrency in the metadata database (a column of ``functions``), and the
slots of their running invocations while several nodes share the database."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

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

#: The notification of a reservation set or deleted (payload: the function, its value, the writer).
RESERVATION_CHANGED: Final = "lamina_reservation_changed"


@dataclass(frozen=True)
class ReservationChange:
    """A reservation set (``reserved``) or deleted (None) by the process ``origin``."""

    account: str
    region: str
    name: str
    reserved: int | None
    origin: str


def _heard(text: str) -> ReservationChange | None:
    """What a notification says; None for anything else."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    if not (isinstance(found, list) and len(found) == 5):
        return None
    account, region, name, value, origin = found
    if not all(isinstance(part, str) for part in (account, region, name, origin)):
        return None
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        return None
    return ReservationChange(account, region, name, value, origin)


class ConcurrencyStore:
    """Reserved concurrency of every account's functions."""

    def __init__(self, db: Database, origin: str = "") -> None:
        """``origin``: this process (its own notifications are not handed to :meth:`listen`'s
        listener: it applied its writes already)."""
        self.db = db
        self.origin = origin

    def listen(self, listener: Callable[[str, str, str, int | None], None]) -> None:
        """Call ``listener(account, region, name, reservation)`` (None: deleted) for each
        reservation another process sets or deletes: at once on PostgreSQL (its notification, on
        the listening thread, in commit order); never on SQLite (nodes follow at heartbeats)."""

        def heard(text: str) -> None:
            found = _heard(text)
            if found is not None and found.origin != self.origin:
                listener(found.account, found.region, found.name, found.reserved)

        self.db.listen(RESERVATION_CHANGED, heard)

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
            self.db.notify(RESERVATION_CHANGED, json.dumps([account, region, name, value, self.origin]))
            applied(r[0])
        return True


class SlotOutcome(enum.Enum):
    """What :meth:`ConcurrencySlots.take` found."""

    TAKEN = "taken"
    FULL = "full"  # as many running as the function reserves (0: none may run)
    UNRESERVED = "unreserved"  # no reservation (deleted meanwhile), or no such function


_SLOT_FUNCTION = "s.account=f.account AND s.region=f.region AND s.name=f.name"


class ConcurrencySlots:
    """Reserved concurrency counted across the nodes sharing the database: one row per running
    invocation of a function with a reservation, held by the node (and its process) that took it.
    A slot is taken in one statement inside a write transaction (writes are serialised on both
    engines: SQLite's one writer, PostgreSQL's advisory write lock), so no two nodes take the last
    one; the reservation it is compared with is the stored one at that moment."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def take(
        self, slot: str, account: str, region: str, name: str, node: str, instance: str, now: float
    ) -> SlotOutcome:
        """Take slot ``slot`` (a new unique id) for one invocation of the function, if fewer than
        its reservation run."""
        with self.db.write() as c:
            taken = c.execute(
                "INSERT INTO concurrency_slots (id, account, region, name, node, instance, taken)"
                " SELECT ?, f.account, f.region, f.name, ?, ?, ? FROM functions f"
                " WHERE f.account=? AND f.region=? AND f.name=? AND f.reserved_concurrency >"
                f" (SELECT COUNT(*) FROM concurrency_slots s WHERE {_SLOT_FUNCTION})",
                (slot, node, instance, now, account, region, name),
            ).rowcount
        if taken:
            return SlotOutcome.TAKEN
        found = self.get_reservation(account, region, name)
        return SlotOutcome.UNRESERVED if found is None else SlotOutcome.FULL

    def get_reservation(self, account: str, region: str, name: str) -> int | None:
        r = self.db.read(
            lambda c: c.execute(
                f"SELECT reserved_concurrency FROM functions WHERE {_FUNCTION}", (account, region, name)
            ).fetchone()
        )
        return None if r is None or r[0] is None else int(r[0])

    def give(self, slot: str) -> None:
        """Give a slot back (nothing if it is gone already: its node was taken for dead)."""
        with self.db.write() as c:
            c.execute("DELETE FROM concurrency_slots WHERE id=?", (slot,))

    def running(self, account: str, region: str, name: str) -> int:
        """The function's slots taken now, by every node."""
        r = self.db.read(
            lambda c: c.execute(
                f"SELECT COUNT(*) FROM concurrency_slots WHERE {_FUNCTION}", (account, region, name)
            ).fetchone()
        )
        return int(r[0])
