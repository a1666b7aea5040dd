"""The pure rules of several nodes: liveness, where an invocation runs, forwarded requests' signatures."""

from __future__ import annotations

import pytest

from lamina.domain import nodes as N
from lamina.domain.nodes import ClusterView, NodeRecord, NodeState

KEY = ("000000000000", "us-east-1", "fn", "$LATEST", "rev-1")


def node(name: str, busy: int = 0, state: NodeState = NodeState.ACTIVE, most: int = 4) -> NodeRecord:
    return NodeRecord(name, f"http://{name}:4566", "i", 0.0, 100.0, state, busy, most)


def test_liveness_is_three_heartbeats() -> None:
    n = node("a")
    assert n.live(100.0 + 3 * 5.0, 5.0)
    assert not n.live(100.0 + 3 * 5.0 + 0.1, 5.0)


@pytest.mark.parametrize(
    ("view", "local_idle", "local_load", "expected"),
    [
        (ClusterView("a", (node("a"),)), False, 0.0, None),
        (ClusterView("a", (node("a"), node("b")), {KEY: ("b",)}), True, 0.0, None),
        (ClusterView("a", (node("a"), node("b", busy=3)), {KEY: ("b",)}), False, 0.0, "b"),
        (ClusterView("a", (node("a"), node("b", busy=4)), {KEY: ("b",)}), False, 0.0, None),
        (ClusterView("a", (node("a"), node("b", busy=1)), {}), False, 0.5, "b"),
        (ClusterView("a", (node("a"), node("b", busy=2)), {}), False, 0.5, None),
        (ClusterView("a", (node("a"), node("b", state=NodeState.DRAINING)), {KEY: ("b",)}), False, 0.9, None),
        (
            ClusterView("a", (node("a"), node("b", busy=1), node("c", busy=3)), {KEY: ("b", "c")}),
            False,
            0,
            "b",
        ),
        (ClusterView("a", (node("b", busy=1), node("c")), {}), False, float("inf"), "c"),
    ],
    ids=[
        "alone",
        "local-idle",
        "peer-warm",
        "peer-warm-but-full",
        "least-loaded-peer",
        "tie-stays-here",
        "draining-peer-skipped",
        "warm-least-loaded",
        "draining-self",
    ],
)
def test_route(view: ClusterView, local_idle: bool, local_load: float, expected: str | None) -> None:
    found = N.route(view, KEY, local_idle=local_idle, local_load=local_load)
    assert (found.name if found else None) == expected


def test_route_counts_the_invocations_being_forwarded_and_a_draining_node_sends_all_away() -> None:
    view = ClusterView("a", (node("a"), node("b", busy=1), node("c", busy=1)), {KEY: ("b", "c")})
    assert N.route(view, KEY, local_idle=False, local_load=0.0).name == "b"  # type: ignore[union-attr]
    # Two forwarded to b since the heartbeat: c, with as much room at the heartbeat, is less loaded now.
    found = N.route(view, KEY, local_idle=False, local_load=0.0, forwarding={"b": 2})
    assert found is not None and found.name == "c"
    # Every node full once the forwards are counted: here.
    assert N.route(view, KEY, local_idle=False, local_load=0.0, forwarding={"b": 3, "c": 3}) is None
    # Not cold here when another node has room, even with this node idle, while draining.
    cold = ClusterView("a", (node("a"), node("b", busy=2)), {})
    assert N.route(cold, KEY, local_idle=False, local_load=0.0) is None
    assert N.route(cold, KEY, local_idle=False, local_load=0.0, here=False).name == "b"  # type: ignore[union-attr]


def test_signature_binds_node_path_time_nonce_and_body() -> None:
    secret = b"s" * 32
    header = N.sign(secret, target="b", path="/p", timestamp=1000.0, nonce="n1", body=b"x")
    assert N.verify(secret, header, me="b", path="/p", now=1010.0, body=b"x", seen=set()) == "n1"
    for kwargs, why in [
        ({"me": "c"}, "bad signature"),
        ({"path": "/q"}, "bad signature"),
        ({"body": b"y"}, "bad signature"),
        ({"now": 1000.0 + N.FORWARD_WINDOW_S + 1}, "expired"),
        ({"seen": {"n1"}}, "replayed"),
    ]:
        args = {"me": "b", "path": "/p", "now": 1010.0, "body": b"x", "seen": set()} | kwargs
        with pytest.raises(N.NodeError, match=why):
            N.verify(secret, header, **args)  # type: ignore[arg-type]
    with pytest.raises(N.NodeError, match="bad signature"):
        N.verify(b"t" * 32, header, me="b", path="/p", now=1010.0, body=b"x", seen=set())
    for bad in ("", "t=x", "t=1,n=,s=" + "0" * 64, "t=nan,n=a,s=" + "0" * 64, "garbage,,,==="):
        with pytest.raises(N.NodeError):
            N.verify(secret, bad, me="b", path="/p", now=1010.0, body=b"x", seen=set())


def test_forwarded_invocation_round_trips() -> None:
    call = N.ForwardedInvoke("1", "r", "n", "3", "rev", b"\x00{}", "rid", "ctx", "arn:x", True)
    assert N.ForwardedInvoke.decode(call.encode()) == call
    result = N.ForwardedResult(b"payload", True, b"tail")
    assert N.ForwardedResult.decode(result.encode()) == result
    with pytest.raises(ValueError):
        N.ForwardedInvoke.decode(b"[]")


@pytest.mark.parametrize(
    "name", ["", "a" * 65, "a b", "a/b", "é"], ids=["empty", "long", "space", "slash", "unicode"]
)
def test_bad_node_names(name: str) -> None:
    with pytest.raises(N.NodeError):
        N.check_name(name)


@pytest.mark.parametrize(
    "url", ["ftp://x:1", "http://", "x:1", "http://h:1/path"], ids=["scheme", "empty", "no-scheme", "path"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(N.NodeError):
        N.check_url(url)
