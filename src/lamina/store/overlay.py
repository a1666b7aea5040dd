"""VPCs' VXLAN network identifiers (docs/overlay.md): one per VPC, unique, stored.

Not a hash of the VPC id: 24 bits collide (3% at a thousand VPCs) and a collision would join two
VPCs' tunnels. The unique index on ``vni`` arbitrates between nodes allocating at once: an insert
that loses does nothing (``ON CONFLICT DO NOTHING``), the re-read tells, the next free one is tried.
"""

from __future__ import annotations

from collections.abc import Collection

from lamina.domain.overlay import FIRST_VNI, MAX_VNI
from lamina.store.db import Database, DatabaseError

_ATTEMPTS = 16  # allocations lost to concurrent ones before giving up

# The lowest free VNI from the first one: the first itself, or one past a taken one.
_FREE = """
SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM vpc_vnis WHERE vni = ?) THEN ?
       ELSE (SELECT MIN(v.vni + 1) FROM vpc_vnis v
             WHERE v.vni >= ? AND NOT EXISTS (SELECT 1 FROM vpc_vnis w WHERE w.vni = v.vni + 1))
       END
"""


class VniStore:
    """Which VNI each VPC's tunnel uses."""

    def __init__(self, db: Database, *, first: int = FIRST_VNI, last: int = MAX_VNI) -> None:
        """``first``..``last``: the VNIs handed out (the whole valid range but for tests)."""
        if not FIRST_VNI <= first <= last <= MAX_VNI:
            raise ValueError(f"VNIs are allocated within {FIRST_VNI}..{MAX_VNI}")
        self.db = db
        self.first, self.last = first, last

    def get(self, vpc_id: str) -> int | None:
        """The VPC's VNI, if it has one."""
        row = self.db.read(
            lambda c: c.execute("SELECT vni FROM vpc_vnis WHERE vpc_id = ?", (vpc_id,)).fetchone()
        )
        return int(row[0]) if row else None

    def vni(self, vpc_id: str) -> int:
        """The VPC's VNI, allocated (the lowest free one) if it has none yet."""
        for _ in range(_ATTEMPTS):
            found = self.get(vpc_id)
            if found is not None:
                return found
            with self.db.write() as c:
                row = c.execute(_FREE, (self.first, self.first, self.first)).fetchone()
                candidate = int(row[0]) if row and row[0] is not None else self.first
                if candidate > self.last:
                    raise DatabaseError("every VXLAN network identifier is taken")
                c.execute(
                    "INSERT INTO vpc_vnis (vpc_id, vni) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (vpc_id, candidate),
                )
        found = self.get(vpc_id)
        if found is None:
            raise DatabaseError(f"no VNI could be allocated to {vpc_id} ({_ATTEMPTS} attempts lost)")
        return found

    def release(self, vpc_id: str) -> None:
        """Forget the VPC's VNI (the VPC is deleted and its tunnels closed on every node)."""
        with self.db.write() as c:
            c.execute("DELETE FROM vpc_vnis WHERE vpc_id = ?", (vpc_id,))

    def all(self) -> dict[str, int]:
        """Every VPC's VNI."""
        rows = self.db.read(lambda c: c.execute("SELECT vpc_id, vni FROM vpc_vnis").fetchall())
        return {str(r[0]): int(r[1]) for r in rows}


class HomeStore:
    """Each VPC's home node (docs/overlay.md) and each node's underlay address.

    A VPC's home is set by the first node that needs the VPC's interfaces (:meth:`claim`) and kept
    while that node lives; a node that needs it while the home is dead takes it over. Both are
    compare-and-set writes, so two nodes claiming at once agree on one home."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def home(self, vpc_id: str) -> str | None:
        row = self.db.read(
            lambda c: c.execute("SELECT node FROM vpc_homes WHERE vpc_id = ?", (vpc_id,)).fetchone()
        )
        return str(row[0]) if row else None

    def claim(self, vpc_id: str, node: str, live: Collection[str], now: float) -> str:
        """The VPC's home: the recorded one if it is among ``live``, else ``node`` (which takes
        it over). Returns the home agreed on."""
        for _ in range(_ATTEMPTS):
            found = self.home(vpc_id)
            if found is not None and (found in live or found == node):
                return found
            with self.db.write() as c:
                if found is None:
                    c.execute(
                        "INSERT INTO vpc_homes (vpc_id, node, since) VALUES (?, ?, ?) ON CONFLICT (vpc_id) DO NOTHING",
                        (vpc_id, node, now),
                    )
                else:
                    c.execute(
                        "UPDATE vpc_homes SET node = ?, since = ? WHERE vpc_id = ? AND node = ?",
                        (node, now, vpc_id, found),
                    )
        found = self.home(vpc_id)
        if found is None:
            raise DatabaseError(f"no home could be chosen for {vpc_id}")
        return found

    def homed_on(self, node: str) -> list[str]:
        """The VPCs homed on ``node``."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT vpc_id FROM vpc_homes WHERE node = ? ORDER BY vpc_id", (node,)
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    def release(self, vpc_id: str) -> None:
        with self.db.write() as c:
            c.execute("DELETE FROM vpc_homes WHERE vpc_id = ?", (vpc_id,))

    def set_address(self, node: str, address: str) -> None:
        """``node``'s underlay address (set when it starts)."""
        with self.db.write() as c:
            c.execute(
                "INSERT INTO node_addresses (name, address) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET address = excluded.address",
                (node, address),
            )

    def addresses(self) -> dict[str, str]:
        """Every node's underlay address, by node name."""
        rows = self.db.read(lambda c: c.execute("SELECT name, address FROM node_addresses").fetchall())
        return {str(r[0]): str(r[1]) for r in rows}
