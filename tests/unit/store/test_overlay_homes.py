"""VPCs' home nodes and nodes' underlay addresses (store.overlay.HomeStore)."""

from __future__ import annotations

import threading

from lamina.store import Database
from lamina.store.overlay import HomeStore


def test_the_first_claimer_is_home_and_stays_while_it_lives(db: Database) -> None:
    homes = HomeStore(db)
    assert homes.home("vpc-1") is None
    assert homes.claim("vpc-1", "n1", {"n1", "n2"}, 1.0) == "n1"
    assert homes.claim("vpc-1", "n2", {"n1", "n2"}, 2.0) == "n1"
    assert homes.home("vpc-1") == "n1"
    assert homes.homed_on("n1") == ["vpc-1"]


def test_a_dead_home_is_taken_over(db: Database) -> None:
    homes = HomeStore(db)
    homes.claim("vpc-1", "n1", {"n1"}, 1.0)
    assert homes.claim("vpc-1", "n2", {"n2"}, 2.0) == "n2"
    assert homes.homed_on("n1") == []
    homes.release("vpc-1")
    assert homes.home("vpc-1") is None


def test_concurrent_claims_agree(db: Database) -> None:
    homes = HomeStore(db)
    got: list[str] = []

    def claim(node: str) -> None:
        got.append(homes.claim("vpc-x", node, set(), 1.0))

    threads = [threading.Thread(target=claim, args=(f"n{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every claimer sees a dead home (live is empty) but its own: they may each take it over in
    # turn; what matters is that the store ends with one home and each answer was a real claimer.
    assert homes.home("vpc-x") in {f"n{i}" for i in range(6)}
    assert set(got) <= {f"n{i}" for i in range(6)}


def test_addresses_are_set_and_replaced(db: Database) -> None:
    homes = HomeStore(db)
    homes.set_address("n1", "10.0.0.1")
    homes.set_address("n2", "10.0.0.2")
    homes.set_address("n1", "10.0.0.9")
    assert homes.addresses() == {"n1": "10.0.0.9", "n2": "10.0.0.2"}
