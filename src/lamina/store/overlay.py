"""VPCs' VXLAN network identifiers (docs/overlay.md): one per VPC, unique, stored.

Not a hash of the VPC id: 24 bits collide (3% at a thousand VPCs) and a collision would join two
VPCs' tunnels. The unique index on ``vni`` arbitrates between nodes allocating at once: an insert
that loses does nothing (``ON CONFLICT DO NOTHING``), the re-read tells, the next free one is tried.
"""

from __future__ import annotations

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
