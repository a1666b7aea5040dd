"""VPCs' VNIs (store.overlay): unique, stable, the lowest free one, agreed by concurrent callers."""

from __future__ import annotations

import threading

import pytest

from lamina.domain.overlay import FIRST_VNI, MAX_VNI
from lamina.store import Database
from lamina.store.db import DatabaseError
from lamina.store.overlay import VniStore


def test_a_vpc_keeps_its_vni_and_vpcs_get_distinct_ones(db: Database) -> None:
    vnis = VniStore(db)
    assert vnis.get("vpc-1") is None
    first = vnis.vni("vpc-1")
    assert first == FIRST_VNI
    assert vnis.vni("vpc-1") == first
    assert vnis.vni("vpc-2") == FIRST_VNI + 1
    assert vnis.all() == {"vpc-1": FIRST_VNI, "vpc-2": FIRST_VNI + 1}


def test_a_released_vni_is_reused_lowest_first(db: Database) -> None:
    vnis = VniStore(db)
    for n in range(4):
        vnis.vni(f"vpc-{n}")
    vnis.release("vpc-1")
    vnis.release("vpc-0")
    assert vnis.get("vpc-1") is None
    assert vnis.vni("vpc-new") == FIRST_VNI
    assert vnis.vni("vpc-newer") == FIRST_VNI + 1
    assert vnis.vni("vpc-newest") == FIRST_VNI + 4


def test_concurrent_allocations_never_share_a_vni(db: Database) -> None:
    vnis = VniStore(db)
    got: dict[str, list[int]] = {f"vpc-{n}": [] for n in range(8)}

    def worker() -> None:
        for vpc_id in got:
            got[vpc_id].append(vnis.vni(vpc_id))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(set(v)) == 1 for v in got.values())  # every caller agreed on each VPC's VNI
    assert len({v[0] for v in got.values()}) == len(got)


def test_a_hostile_vpc_id_is_only_a_key(db: Database) -> None:
    vnis = VniStore(db)
    hostile = "vpc-x'); DROP TABLE vpc_vnis; --"
    assert vnis.vni(hostile) == FIRST_VNI
    assert vnis.vni("vpc-ok") == FIRST_VNI + 1


def test_exhaustion_is_an_error_not_a_wrap(db: Database) -> None:
    vnis = VniStore(db, first=FIRST_VNI, last=FIRST_VNI + 2)
    assert [vnis.vni(f"vpc-{n}") for n in range(3)] == [FIRST_VNI, FIRST_VNI + 1, FIRST_VNI + 2]
    with pytest.raises(DatabaseError):
        vnis.vni("vpc-one-too-many")
    assert vnis.get("vpc-one-too-many") is None
    vnis.release("vpc-1")
    assert vnis.vni("vpc-one-too-many") == FIRST_VNI + 1


def test_the_range_must_be_valid(db: Database) -> None:
    for first, last in ((0, 10), (FIRST_VNI, MAX_VNI + 1), (FIRST_VNI + 5, FIRST_VNI)):
        with pytest.raises(ValueError):
            VniStore(db, first=first, last=last)
