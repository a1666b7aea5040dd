"""VPCs across nodes over kernel VXLAN (net.overlay), on a real kernel: two "hosts" are network
namespaces this test makes, joined by a veth pair (the underlay); each VPC's data plane and tunnel
are built for each host with that host's namespace as the underlay. Nothing touches the real
host's namespace; every namespace, link and FDB entry is removed and checked gone.

The VPC: 10.30.0.0/16; subnet a 10.30.1.0/24 holds fn (sg-fn, the Hyperplane interface), subnet b
10.30.2.0/24 holds db (sg-db: tcp 6379 from sg-fn, nothing else). Both are homed on host A (the
router of host B's copy has no interface); an environment on host B reaches db through fn over the
tunnel. The isolation test adds a second VPC, same CIDR and addresses, homed on host B.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from typing import Any

import pytest

from lamina.domain.dataplane import VpcPlan, plan_vpc
from lamina.domain.overlay import FIRST_VNI, OverlayError, RemoteLink, slot_addresses
from lamina.linux import NetNamespace
from lamina.linux import links as links_module
from lamina.net import VpcDataplane, attach
from lamina.net.commands import DataplaneError, run
from lamina.net.overlay import Overlay, VpcTunnel

pytestmark = [pytest.mark.privileged, pytest.mark.cluster]

DROPPED_AFTER_S = 0.5  # an allowed connection here completes in well under a millisecond
ANSWER_WITHIN_S = 10.0  # what must answer does, however loaded the machine (a bound, not a timing)
ALL_OUT = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
DB, FN = "10.30.2.10", "10.30.1.10"
HOST_A, HOST_B = IPv4Address("10.255.0.1"), IPv4Address("10.255.0.2")


@dataclass
class Vpc:
    """Hand-written EC2 state of one VPC (unique ids); ``interfaces``: whether this host's plan
    has fn and db (host A) or none (host B: only the router, for the tunnel)."""

    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def id(self, kind: str, name: str) -> str:
        return f"{kind}-{name}{self.uid}"

    def plan(self, interfaces: bool) -> VpcPlan:
        vpc_id = self.id("vpc", "")

        def group(name: str, ingress: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                "GroupId": self.id("sg", name),
                "VpcId": vpc_id,
                "IpPermissions": ingress,
                "IpPermissionsEgress": ALL_OUT,
            }

        def interface(name: str, subnet: str, address: str) -> dict[str, Any]:
            return {
                "NetworkInterfaceId": self.id("eni", name),
                "VpcId": vpc_id,
                "SubnetId": self.id("subnet", subnet),
                "PrivateIpAddress": address,
                "Groups": [{"GroupId": self.id("sg", name)}],
            }

        redis = {
            "IpProtocol": "tcp",
            "FromPort": 6379,
            "ToPort": 6379,
            "UserIdGroupPairs": [{"GroupId": self.id("sg", "fn")}],
        }
        local = {"DestinationCidrBlock": "10.30.0.0/16", "GatewayId": "local", "State": "active"}
        return plan_vpc(
            {"VpcId": vpc_id, "CidrBlock": "10.30.0.0/16"},
            [
                {"SubnetId": self.id("subnet", s), "VpcId": vpc_id, "CidrBlock": f"10.30.{n}.0/24"}
                for s, n in (("a", 1), ("b", 2))
            ],
            [group("db", [redis]), group("fn", [])],
            [interface("db", "b", DB), interface("fn", "a", FN)] if interfaces else [],
            [
                {
                    "RouteTableId": self.id("rtb", "main"),
                    "VpcId": vpc_id,
                    "Associations": [{"Main": True}],
                    "Routes": [local],
                }
            ],
        )


class Who:
    """A TCP server in a namespace answering each connection with its tag and the peer's address."""

    def __init__(self, ns: NetNamespace, host: str, port: int, tag: str) -> None:
        self.tag = tag
        self.sock = ns.listen_tcp(host, port)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(f"{self.tag} {peer[0]}".encode())

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def ask(ns: NetNamespace, host: str, port: int, wait: float = ANSWER_WITHIN_S) -> str:
    """What the server at (host, port) answers a connection from ``ns``, or ``dropped`` (nothing
    within ``wait``: ``DROPPED_AFTER_S`` where a drop is expected, a generous bound otherwise)."""

    def go() -> str:
        with socket.socket() as s:
            s.settimeout(wait)
            try:
                s.connect((host, port))
                return s.recv(64).decode()
            except TimeoutError:
                return "dropped"
            except OSError as exc:
                return f"error {exc.errno}"

    return ns.call(go)


def ip_json(ns: NetNamespace, *args: str) -> Any:
    return json.loads(run(ns, ["ip", "-json", *args]) or "[]")


def links(ns: NetNamespace) -> list[str]:
    return sorted(link["ifname"] for link in ip_json(ns, "link", "show"))


def counters(ns: NetNamespace, link: str) -> tuple[int, int]:
    """(rx, tx) packets of ``link`` in ``ns``."""
    stats = ip_json(ns, "-s", "link", "show", link)[0]["stats64"]
    return int(stats["rx"]["packets"]), int(stats["tx"]["packets"])


def ns_inode(ns: NetNamespace) -> int:
    return os.fstat(ns.fd).st_ino


def held_anywhere(inodes: set[int]) -> set[int]:
    """Which of these namespaces a process (or an fd of this process) still holds."""
    held: set[int] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        with contextlib.suppress(OSError):
            held.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("net:["):
            held.add(int(target[5:-1]))
    return held & inodes


@dataclass
class Hosts:
    """Two hosts (their namespaces) and each one's overlay, as a node would hold it."""

    a: NetNamespace
    b: NetNamespace
    overlay_a: Overlay
    overlay_b: Overlay


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    a, b = NetNamespace.create("host-a"), NetNamespace.create("host-b")
    try:
        run(
            a,
            [
                "ip",
                "link",
                "add",
                "ul0",
                "type",
                "veth",
                "peer",
                "name",
                "ul0",
                "netns",
                f"/proc/self/fd/{b.fd}",
            ],
            pass_fds=(b.fd,),
        )
        for ns, address in ((a, HOST_A), (b, HOST_B)):
            run(ns, ["ip", "-batch", "-"], stdin=f"address add {address}/24 dev ul0\nlink set ul0 up\n")
        overlay_a, overlay_b = Overlay(HOST_A, a), Overlay(HOST_B, b)
        try:
            yield Hosts(a, b, overlay_a, overlay_b)
        finally:
            overlay_a.close()
            overlay_b.close()
    finally:
        a.close()
        b.close()


@dataclass
class Deployment:
    """One VPC on both hosts: its data plane on each (its interfaces on its home host, only its
    router on the other), its tunnel on each."""

    vpc: Vpc
    hosts: Hosts
    home: VpcDataplane
    away: VpcDataplane
    tunnel_home: VpcTunnel
    tunnel_away: VpcTunnel
    away_address: IPv4Address  # the host its environments run on

    def close(self) -> None:
        self.hosts.overlay_a.remove(self.vpc.id("vpc", ""))
        self.hosts.overlay_b.remove(self.vpc.id("vpc", ""))
        self.home.close()
        self.away.close()


def deploy(hosts: Hosts, vni: int, *, home_on_b: bool = False) -> Deployment:
    vpc = Vpc()
    home = VpcDataplane(vpc.plan(interfaces=True))
    away = VpcDataplane(vpc.plan(interfaces=False))
    (home_overlay, away_overlay), away_address = (
        ((hosts.overlay_b, hosts.overlay_a), HOST_A)
        if home_on_b
        else ((hosts.overlay_a, hosts.overlay_b), HOST_B)
    )
    # The node layer lists every node; each overlay leaves itself out.
    tunnel_home = home_overlay.ensure(vpc.id("vpc", ""), home.router_namespace, vni, [HOST_A, HOST_B])
    tunnel_away = away_overlay.ensure(vpc.id("vpc", ""), away.router_namespace, vni, [HOST_A, HOST_B])
    return Deployment(vpc, hosts, home, away, tunnel_home, tunnel_away, away_address)


@pytest.fixture
def vpc1(hosts: Hosts) -> Iterator[Deployment]:
    d = deploy(hosts, FIRST_VNI + 1)
    try:
        yield d
    finally:
        d.close()


def remote_env(d: Deployment, name: str) -> tuple[NetNamespace, Any, Any]:
    """An environment namespace on the VPC's away host attached to fn (on its home host) through
    the tunnel."""
    env = NetNamespace.create(name)
    hosted = d.tunnel_home.host(d.home.interface_namespace(d.vpc.id("eni", "fn")), d.away_address)
    # What the home host hands the other crosses the node layer as JSON.
    joined = d.tunnel_away.join(env, RemoteLink.from_json(hosted.link.to_json()))
    return env, hosted, joined


def test_remote_environment_reaches_the_vpc_as_the_interface(hosts: Hosts, vpc1: Deployment) -> None:
    d = vpc1
    db_ns = d.home.interface_namespace(d.vpc.id("eni", "db"))
    servers = [Who(db_ns, DB, 6379, "db"), Who(db_ns, DB, 6380, "db")]
    env, hosted, joined = remote_env(d, "env-b")
    local_env = NetNamespace.create("env-a")
    local = attach.attach(local_env, d.home.interface_namespace(d.vpc.id("eni", "fn")))
    try:
        # The environment on B speaks from the interface's address, as a local one does.
        assert ask(env, DB, 6379) == f"db {FN}"
        assert ask(local_env, DB, 6379) == f"db {FN}"
        # sg-db lets in only tcp 6379 from sg-fn: the remote environment's 6380 is refused at home.
        assert ask(env, DB, 6380, wait=DROPPED_AFTER_S) == "dropped"
        assert ask(local_env, DB, 6380, wait=DROPPED_AFTER_S) == "dropped"
        # MTU: the tunnel's 50 bytes are taken off the environment's link.
        vpc0 = ip_json(env, "link", "show", "vpc0")[0]
        assert vpc0["mtu"] == 1450
        assert vpc0["address"] == hosted.link.env_mac
        # The UDP socket is the host's (underlay), not the VPC's: nothing of the underlay is in
        # the router namespace, nothing of the VPC in the host namespace.
        assert ":4789" in run(hosts.b, ["ss", "-Hnul"])
        assert ":4789" not in run(d.away.router_namespace, ["ss", "-Hnul"])
        assert links(hosts.a) == ["lo", "ul0"]
        # The router of B has no route through the tunnel: the frames go by the netdev switch.
        assert ip_json(d.away.router_namespace, "route", "show", "table", "all", "dev", "lmx0") == []
    finally:
        local.close()
        local_env.close()
        for s in servers:
            s.close()
        d.tunnel_away.leave(joined)
        d.tunnel_home.release(hosted)
        env.close()


def test_a_remote_environment_reaches_only_its_own_interface(hosts: Hosts, vpc1: Deployment) -> None:
    d = vpc1
    db_ns = d.home.interface_namespace(d.vpc.id("eni", "db"))
    env, hosted, joined = remote_env(d, "env-b")
    try:
        # The router itself answers nothing (its input chain), as for a local environment.
        assert ask(env, "10.30.2.1", 22, wait=DROPPED_AFTER_S) == "dropped"
        # Descriptions this tunnel must refuse: another VPC's VNI, a home that is not a peer.
        link = hosted.link
        with pytest.raises(OverlayError):
            d.tunnel_away.join(
                env,
                RemoteLink(link.vni + 1, link.home, link.slot, link.eni_mac, "06:00:00:00:00:01", link.mtu),
            )
        with pytest.raises(OverlayError):
            d.tunnel_away.join(
                env,
                RemoteLink(
                    link.vni,
                    IPv4Address("10.255.0.9"),
                    link.slot,
                    link.eni_mac,
                    "06:00:00:00:00:01",
                    link.mtu,
                ),
            )
        with pytest.raises(OverlayError):
            d.tunnel_home.host(db_ns, IPv4Address("10.255.0.9"))
        # A description reusing this node's attachment's MACs would take over its FDB entry or its
        # switch rule (a lying home node): refused, and the attachment keeps working.
        other = NetNamespace.create("env-other")
        try:
            for eni_mac, env_mac in (
                (link.eni_mac, "06:00:00:00:00:01"),
                ("06:00:00:00:00:01", link.env_mac),
            ):
                with pytest.raises(OverlayError):
                    d.tunnel_away.join(other, RemoteLink(link.vni, link.home, 7, eni_mac, env_mac, link.mtu))
            # An environment attached already (its vpc0 exists) is refused by the kernel, and
            # nothing of the attempt is left behind.
            router_links = links(d.away.router_namespace)
            with pytest.raises(DataplaneError):
                d.tunnel_away.join(
                    env,
                    RemoteLink(link.vni, link.home, 7, "06:00:00:00:00:02", "06:00:00:00:00:03", link.mtu),
                )
            assert links(d.away.router_namespace) == router_links
            assert links(other) == ["lo"]
        finally:
            other.close()
        assert ask(env, DB, 6379) == "error 111"  # still attached: refused by db's kernel, a round trip
        # Frames to another destination MAC (another attachment's, say) or from another source
        # MAC (function code can change neither, root in the namespace can) are dropped by B's
        # switch: not one reaches A.
        before = counters(d.home.router_namespace, "lmx0")[0]
        run(env, ["ip", "neigh", "replace", str(link.gateway), "lladdr", "02:00:00:00:00:77", "dev", "vpc0"])
        assert ask(env, DB, 6379, wait=DROPPED_AFTER_S) == "dropped"
        assert counters(d.home.router_namespace, "lmx0")[0] == before
        run(env, ["ip", "neigh", "replace", str(link.gateway), "lladdr", link.eni_mac, "dev", "vpc0"])
        assert ask(env, DB, 6379) == "error 111"
        before = counters(d.home.router_namespace, "lmx0")[0]
        # (Changing a link's MAC flushes its neighbours, permanent ones too: put the gateway back.)
        run(env, ["ip", "link", "set", "vpc0", "address", "02:00:00:00:00:99"])
        run(env, ["ip", "neigh", "replace", str(link.gateway), "lladdr", link.eni_mac, "dev", "vpc0"])
        assert ask(env, DB, 6379, wait=DROPPED_AFTER_S) == "dropped"
        assert counters(d.home.router_namespace, "lmx0")[0] == before
    finally:
        d.tunnel_away.leave(joined)
        d.tunnel_home.release(hosted)
        env.close()


def test_same_cidr_vpcs_are_isolated_by_their_vnis(hosts: Hosts, vpc1: Deployment) -> None:
    """VPC 1 is homed on A (its environment on B), VPC 2, with the same CIDR and addresses, on B
    (its environment on A): both hosts carry both VNIs, both ways."""
    vpc2 = deploy(hosts, FIRST_VNI + 2, home_on_b=True)
    servers: list[Who] = []
    envs: list[tuple[NetNamespace, Any, Any, Deployment]] = []
    try:
        for tag, d in (("vpc1", vpc1), ("vpc2", vpc2)):
            servers.append(Who(d.home.interface_namespace(d.vpc.id("eni", "db")), DB, 6379, tag))
            env, hosted, joined = remote_env(d, f"env-{tag}")
            envs.append((env, hosted, joined, d))
        (env1, *_), (env2, *_) = envs
        quiet = [counters(vpc2.home.router_namespace, "lmx0"), counters(vpc2.away.router_namespace, "lmx0")]
        for _ in range(3):
            assert ask(env1, DB, 6379) == f"vpc1 {FN}"
        # Not one packet of VPC 1's crossed VPC 2's tunnel, on either host.
        assert [
            counters(vpc2.home.router_namespace, "lmx0"),
            counters(vpc2.away.router_namespace, "lmx0"),
        ] == quiet
        assert ask(env2, DB, 6379) == f"vpc2 {FN}"
        # A VPC 1 attachment's description given to VPC 2's tunnel is refused (VNI).
        with pytest.raises(OverlayError):
            vpc1.tunnel_home.join(env2, envs[1][1].link)
        # And a host holds one tunnel per VNI: another router cannot be given VPC 1's.
        with NetNamespace.create("spare-router") as spare, pytest.raises(DataplaneError):
            VpcTunnel(spare, hosts.a, vpc1.tunnel_home.vni, HOST_A, [HOST_B])
    finally:
        for s in servers:
            s.close()
        for env, hosted, joined, d in envs:
            d.tunnel_away.leave(joined)
            d.tunnel_home.release(hosted)
            env.close()
        vpc2.close()


def test_teardown_leaves_nothing(hosts: Hosts) -> None:
    d = deploy(hosts, FIRST_VNI + 3)
    fn_ns = d.home.interface_namespace(d.vpc.id("eni", "fn"))
    before = {  # the routers' links but the tunnel's
        "a-router": [n for n in links(d.home.router_namespace) if n != "lmx0"],
        "b-router": [n for n in links(d.away.router_namespace) if n != "lmx0"],
        "fn": links(fn_ns),
    }
    env, hosted, joined = remote_env(d, "env-b")
    inodes = {ns_inode(ns) for ns in (env, fn_ns, d.home.router_namespace, d.away.router_namespace)}
    try:
        assert ask(env, DB, 6379) == "error 111"  # refused by db's kernel: a round trip (no server here)
        assert "lmx0" in links(d.home.router_namespace)
        assert run(d.home.router_namespace, ["bridge", "fdb", "show", "dev", "lmx0"]).strip()
        # Leaving and releasing undo one attachment; closing the tunnels undoes the rest.
        d.tunnel_away.leave(joined)
        d.tunnel_home.release(hosted)
        assert links(env) == ["lo"]
        assert links(fn_ns) == before["fn"]
        assert run(d.home.router_namespace, ["bridge", "fdb", "show", "dev", "lmx0"]).strip() == ""
        # An attachment left in place when the tunnels close goes with them.
        env2, _, _ = remote_env(d, "env-b2")
        inodes.add(ns_inode(env2))
        d.tunnel_home.close()
        d.tunnel_away.close()
        assert links(d.home.router_namespace) == before["a-router"]
        assert links(d.away.router_namespace) == before["b-router"]
        assert links(fn_ns) == before["fn"]
        assert links(env2) == ["lo"]
        for router in (d.home.router_namespace, d.away.router_namespace):
            assert "lamina_overlay" not in run(router, ["nft", "list", "tables"])
        assert run(hosts.a, ["bridge", "fdb", "show"]).count("dst") == 0
        assert links(hosts.a) == ["lo", "ul0"] and links(hosts.b) == ["lo", "ul0"]
        assert ":4789" not in run(hosts.a, ["ss", "-Hnul"])
        env2.close()
    finally:
        env.close()
        d.close()
    assert held_anywhere(inodes) == set()


class Bulk:
    """A TCP server that reads what a client sends until it shuts its side, then answers with the
    digest of it and ``DOWN`` bytes."""

    DOWN = 2 * 1024 * 1024

    def __init__(self, ns: NetNamespace, host: str, port: int) -> None:
        self.sock = ns.listen_tcp(host, port)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            digest = hashlib.sha256()
            while data := conn.recv(65536):
                digest.update(data)
            conn.sendall(digest.hexdigest().encode() + bytes(self.DOWN))

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def test_full_size_segments_cross_the_tunnel_awayoth_ways(hosts: Hosts, vpc1: Deployment) -> None:
    """The 50 bytes of VXLAN are taken off the attachment's links: megabytes go up and down
    (segments sized to the environment's MTU), nothing is lost to an oversized frame."""
    d = vpc1
    server = Bulk(d.home.interface_namespace(d.vpc.id("eni", "db")), DB, 6379)
    env, hosted, joined = remote_env(d, "env-b")
    up = os.urandom(3 * 1024 * 1024)

    def go() -> tuple[str, int]:
        with socket.create_connection((DB, 6379), timeout=30) as s:
            s.sendall(up)
            s.shutdown(socket.SHUT_WR)
            got = bytearray()
            while data := s.recv(65536):
                got += data
        return got[:64].decode(), len(got) - 64

    try:
        digest, down = env.call(go)
        assert digest == hashlib.sha256(up).hexdigest()
        assert down == Bulk.DOWN
    finally:
        server.close()
        d.tunnel_away.leave(joined)
        d.tunnel_home.release(hosted)
        env.close()


def test_a_node_that_leaves_takes_its_attachments_with_it(hosts: Hosts, vpc1: Deployment) -> None:
    d = vpc1
    fn_ns = d.home.interface_namespace(d.vpc.id("eni", "fn"))
    server = Who(d.home.interface_namespace(d.vpc.id("eni", "db")), DB, 6379, "db")
    env, hosted, joined = remote_env(d, "env-b")
    try:
        assert ask(env, DB, 6379) == f"db {FN}"
        # Host B is gone for host A: what A hosted for it is removed, its slot free again.
        assert hosts.overlay_a.set_peers([HOST_A]) == [hosted.link]
        assert hosted.link.inner_link not in links(fn_ns)
        assert ask(env, DB, 6379, wait=DROPPED_AFTER_S) == "dropped"
        with pytest.raises(OverlayError):  # nor can anything be hosted for it any more
            d.tunnel_home.host(fn_ns, HOST_B)
        # And host A is gone for host B: the environment is cut off the VPC.
        assert hosts.overlay_b.set_peers([]) == [hosted.link]
        assert links(env) == ["lo"]
        # B comes back: a new attachment works again.
        hosts.overlay_a.set_peers([HOST_B])
        hosts.overlay_b.set_peers([HOST_A])
        env2, hosted2, joined2 = remote_env(d, "env-b2")
        try:
            assert ask(env2, DB, 6379) == f"db {FN}"
        finally:
            d.tunnel_away.leave(joined2)
            d.tunnel_home.release(hosted2)
            env2.close()
    finally:
        server.close()
        d.tunnel_away.leave(joined)
        d.tunnel_home.release(hosted)
        env.close()


def test_environments_on_one_interface_do_not_reach_each_other(hosts: Hosts, vpc1: Deployment) -> None:
    """Two environments attached through the tunnel to the same interface (and a local one): each
    reaches the VPC, none reaches another's address, as between local environments."""
    d = vpc1
    server = Who(d.home.interface_namespace(d.vpc.id("eni", "db")), DB, 6379, "db")
    first, second = remote_env(d, "env-1"), remote_env(d, "env-2")
    local_env = NetNamespace.create("env-a")
    local = attach.attach(local_env, d.home.interface_namespace(d.vpc.id("eni", "fn")))
    listeners = []
    try:
        for env, hosted, _ in (first, second):
            assert ask(env, DB, 6379) == f"db {FN}"
            listeners.append(Who(env, str(hosted.link.address), 8080, "env"))
        local_address = str(slot_addresses(local.slot)[1])
        listeners.append(Who(local_env, local_address, 8080, "env"))
        for env, target in (
            (first[0], str(second[1].link.address)),
            (second[0], str(first[1].link.address)),
            (first[0], local_address),
            (local_env, str(first[1].link.address)),
        ):
            assert ask(env, target, 8080, wait=DROPPED_AFTER_S) == "dropped", (env, target)
    finally:
        for listener in listeners:
            listener.close()
        server.close()
        local.close()
        local_env.close()
        for env, hosted, joined in (first, second):
            d.tunnel_away.leave(joined)
            d.tunnel_home.release(hosted)
            env.close()


def test_an_interface_deleted_at_home_cuts_its_remote_environments_off(
    hosts: Hosts, vpc1: Deployment
) -> None:
    d = vpc1
    server = Who(d.home.interface_namespace(d.vpc.id("eni", "db")), DB, 6379, "db")
    env, hosted, joined = remote_env(d, "env-b")
    try:
        assert ask(env, DB, 6379) == f"db {FN}"
        # The home's data plane drops fn (its interface deleted): its namespace goes, and with it
        # the attachment's link into it; the environment on B reaches nothing any more.
        plan = d.vpc.plan(interfaces=True)
        d.home.apply(
            replace(plan, interfaces=tuple(i for i in plan.interfaces if i.eni_id != d.vpc.id("eni", "fn")))
        )
        # (Dropped, or refused by what is left of fn's namespace while the kernel destroys it.)
        assert ask(env, DB, 6379, wait=DROPPED_AFTER_S) in ("dropped", "error 101")
        # Releasing afterwards cleans what is left (the port, the switch's chains, the FDB entry).
        d.tunnel_home.release(hosted)
        assert hosted.link.home_port not in links(d.home.router_namespace)
        assert f"from_{hosted.link.home_port}" not in run(d.home.router_namespace, ["nft", "list", "ruleset"])
        assert run(d.home.router_namespace, ["bridge", "fdb", "show", "dev", "lmx0"]).strip() == ""
    finally:
        server.close()
        d.tunnel_away.leave(joined)
        d.tunnel_home.release(hosted)
        env.close()


def test_the_neighbours_and_fdb_entries_are_the_tools_own(hosts: Hosts, vpc1: Deployment) -> None:
    """What ``linux.links`` writes by rtnetlink reads back with ``ip``/``bridge`` as if they had
    written it; a second entry for a MAC is refused, not replaced."""
    d = vpc1
    fn_ns = d.home.interface_namespace(d.vpc.id("eni", "fn"))
    env, hosted, joined = remote_env(d, "env-b")
    link = hosted.link
    try:
        neighbours = ip_json(fn_ns, "neigh", "show", "dev", link.inner_link)
        assert [(n["dst"], n["lladdr"], n["state"]) for n in neighbours] == [
            (str(link.address), link.env_mac, ["PERMANENT"])
        ]
        addresses = ip_json(fn_ns, "-4", "address", "show", "dev", link.inner_link)[0]
        assert addresses["mtu"] == 1450 and addresses["operstate"] in ("UP", "LOWERLAYERDOWN", "UNKNOWN")
        assert [(a["local"], a["prefixlen"]) for a in addresses["addr_info"]] == [(str(link.gateway), 30)]
        for router, mac, dst in (
            (d.home.router_namespace, link.env_mac, HOST_B),
            (d.away.router_namespace, link.eni_mac, HOST_A),
        ):
            entries = json.loads(run(router, ["bridge", "-json", "fdb", "show", "dev", "lmx0"]))
            assert [(e["mac"], e["dst"], e.get("state")) for e in entries] == [(mac, str(dst), "permanent")]
            with pytest.raises(OSError) as refused:
                router.call(lambda mac=mac: links_module.add_fdb("lmx0", mac, HOST_A))
            assert refused.value.errno == errno.EEXIST
    finally:
        d.tunnel_away.leave(joined)
        d.tunnel_home.release(hosted)
        env.close()


def test_many_environments_attached_at_once_each_reach_the_vpc(hosts: Hosts, vpc1: Deployment) -> None:
    """Sixteen environments attached from four threads at once (cold starts in a burst): distinct
    slots and MACs, every one reaches db as fn; all detached, nothing is left."""
    d = vpc1
    server = Who(d.home.interface_namespace(d.vpc.id("eni", "db")), DB, 6379, "db")
    attached: list[tuple[NetNamespace, Any, Any]] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def attach_some(n: int) -> None:
        for i in range(4):
            try:
                made = remote_env(d, f"env-{n}-{i}")
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
                return
            with lock:
                attached.append(made)

    threads = [threading.Thread(target=attach_some, args=(n,)) for n in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert len({hosted.link.slot for _, hosted, _ in attached}) == 16
        assert len({hosted.link.env_mac for _, hosted, _ in attached}) == 16
        for env, _, _ in attached:
            assert ask(env, DB, 6379) == f"db {FN}"
        for router in (d.home.router_namespace, d.away.router_namespace):
            assert (
                run(router, ["nft", "list", "map", "netdev", "lamina_overlay", "pairs"]).count("goto") == 16
            )
    finally:
        server.close()
        for env, hosted, joined in attached:
            d.tunnel_away.leave(joined)
            d.tunnel_home.release(hosted)
            env.close()
    fn_ns = d.home.interface_namespace(d.vpc.id("eni", "fn"))
    assert [name for name in links(fn_ns) if name.startswith("lme")] == []
    assert run(d.home.router_namespace, ["bridge", "fdb", "show", "dev", "lmx0"]).strip() == ""
    for router in (d.home.router_namespace, d.away.router_namespace):
        assert "goto" not in run(router, ["nft", "list", "map", "netdev", "lamina_overlay", "pairs"])
