"""The data plane manager on a real kernel, fed by an in-memory EC2 state that emits the store's
events: VPC data planes follow the events (coalesced, latest wins), interface namespaces are
published as bind mounts and withdrawn, a crash's leftovers are swept, close leaves nothing.

Every VPC has unique ids; each test's state directory is its own ``tmp_path``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lamina.domain.dns import DhcpSettings, VpcDnsAttributes
from lamina.linux import NetNamespace, mounts
from lamina.linux.namespaces import namespace_inode
from lamina.net import published
from lamina.net.manager import DataplaneManager

pytestmark = pytest.mark.privileged

ACCOUNT, REGION = "000000000000", "us-east-1"
ALL_OUT = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
DROPPED_AFTER_S = 0.25


class FakeEc2:
    """EC2 state of one (account, region) as ``list_resources`` shows it, changed by the test,
    with the store's events (``partition_listeners``) sent by :meth:`emit`."""

    def __init__(self) -> None:
        self.partition_listeners: list[Callable[[str, str, str, dict[str, Any]], None]] = []
        self.resources: dict[str, dict[str, dict[str, Any]]] = {}
        self.reads = 0
        self.lock = threading.Lock()

    def put(self, kind: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.resources.setdefault(kind, {})[key] = body
        return body

    def remove(self, kind: str, key: str) -> dict[str, Any]:
        with self.lock:
            return self.resources[kind].pop(key)

    def emit(self, event: str, obj: dict[str, Any]) -> None:
        for listener in list(self.partition_listeners):
            listener(ACCOUNT, REGION, event, obj)

    def list_resources(
        self, account: str, region: str, kind: str, *, vpc_id: str | None = None
    ) -> list[dict[str, Any]]:
        with self.lock:
            self.reads += 1
            return [
                dict(r)
                for r in self.resources.get(kind, {}).values()
                if vpc_id is None or r["VpcId"] == vpc_id
            ]

    def vpc_locations(self) -> list[tuple[str, str, str]]:
        with self.lock:
            return [(ACCOUNT, REGION, v) for v in self.resources.get("vpc", {})]

    def vpc_dns(self, account: str, region: str, vpc_id: str) -> tuple[VpcDnsAttributes, DhcpSettings] | None:
        """A new VPC's DNS: support on, hostnames off, no DHCP option set."""
        with self.lock:
            if vpc_id not in self.resources.get("vpc", {}):
                return None
        return VpcDnsAttributes(), DhcpSettings.of(None)


class Vpc:
    """One VPC in a :class:`FakeEc2`: subnet a 10.40.1.0/24, subnet b 10.40.2.0/24, groups db, fn."""

    def __init__(self, ec2: FakeEc2) -> None:
        self.ec2 = ec2
        self.uid = uuid.uuid4().hex[:10]
        self.id = f"vpc-{self.uid}"
        ec2.put("vpc", self.id, {"VpcId": self.id, "CidrBlock": "10.40.0.0/16"})
        for name, n in (("a", 1), ("b", 2)):
            ec2.put(
                "subnet",
                self.sub(name),
                {"SubnetId": self.sub(name), "VpcId": self.id, "CidrBlock": f"10.40.{n}.0/24"},
            )
        for name in ("db", "fn"):
            self.group(name, [])
        ec2.put(
            "route-table",
            f"rtb-{self.uid}",
            {
                "RouteTableId": f"rtb-{self.uid}",
                "VpcId": self.id,
                "Associations": [{"Main": True}],
                "Routes": [{"DestinationCidrBlock": "10.40.0.0/16", "GatewayId": "local", "State": "active"}],
            },
        )

    def sub(self, name: str) -> str:
        return f"subnet-{name}{self.uid}"

    def sg(self, name: str) -> str:
        return f"sg-{name}{self.uid}"

    def eni(self, name: str) -> str:
        return f"eni-{name}{self.uid}"

    def group(self, name: str, ingress: list[dict[str, Any]]) -> None:
        body = {
            "GroupId": self.sg(name),
            "VpcId": self.id,
            "IpPermissions": ingress,
            "IpPermissionsEgress": ALL_OUT,
        }
        self.ec2.emit("security-group-changed", self.ec2.put("security-group", self.sg(name), body))

    def allow_redis(self, allowed: bool) -> None:
        peer = {
            "IpProtocol": "tcp",
            "FromPort": 6379,
            "ToPort": 6379,
            "UserIdGroupPairs": [{"GroupId": self.sg("fn")}],
        }
        self.group("db", [peer] if allowed else [])

    def add_interface(
        self, name: str, subnet: str, address: str, group: str, kind: str = "interface"
    ) -> None:
        body = {
            "NetworkInterfaceId": self.eni(name),
            "VpcId": self.id,
            "SubnetId": self.sub(subnet),
            "PrivateIpAddress": address,
            "InterfaceType": kind,
            "Groups": [{"GroupId": self.sg(group)}],
        }
        self.ec2.emit("interface-created", self.ec2.put("network-interface", self.eni(name), body))

    def remove_interface(self, name: str) -> None:
        self.ec2.emit("interface-deleted", self.ec2.remove("network-interface", self.eni(name)))


@pytest.fixture
def ec2() -> FakeEc2:
    return FakeEc2()


@pytest.fixture
def manager(ec2: FakeEc2, tmp_path: Path) -> Iterator[DataplaneManager]:
    m = DataplaneManager(ec2, tmp_path / "run")
    m.start()
    try:
        yield m
    finally:
        m.close()


def reach(ns: NetNamespace, host: str, port: int) -> str:
    def go() -> str:
        with socket.socket() as s:
            s.settimeout(DROPPED_AFTER_S)
            try:
                s.connect((host, port))
            except TimeoutError:
                return "dropped"
            return "connected"

    return ns.call(go)


def test_interfaces_follow_the_events(ec2: FakeEc2, manager: DataplaneManager) -> None:
    vpc = Vpc(ec2)
    assert manager.wait_idle(10) and manager.vpcs() == []  # no interface, no namespaces
    vpc.add_interface("db", "b", "10.40.2.10", "db")
    vpc.add_interface("fn", "a", "10.40.1.10", "fn")
    assert manager.wait_idle(10)
    assert manager.vpcs() == [(ACCOUNT, REGION, vpc.id)]
    db = manager.interface_namespace(ACCOUNT, REGION, vpc.eni("db"))
    fn = manager.interface_namespace(ACCOUNT, REGION, vpc.eni("fn"))
    assert db is not None and fn is not None
    assert manager.interface_namespace("111111111111", REGION, vpc.eni("db")) is None  # another account's
    for eni, ns in ((vpc.eni("db"), db), (vpc.eni("fn"), fn)):
        assert namespace_inode(manager.netns_dir / eni) == os.fstat(ns.fd).st_ino

    listener = db.listen_tcp("10.40.2.10", 6379)
    try:
        assert reach(fn, "10.40.2.10", 6379) == "dropped"
        vpc.allow_redis(True)
        assert manager.wait_idle(10)
        assert reach(fn, "10.40.2.10", 6379) == "connected"
    finally:
        listener.close()

    vpc.remove_interface("fn")
    assert manager.wait_idle(10)
    assert manager.interface_namespace(ACCOUNT, REGION, vpc.eni("fn")) is None
    assert not (manager.netns_dir / vpc.eni("fn")).exists()
    vpc.remove_interface("db")
    assert manager.wait_idle(10)
    assert manager.vpcs() == [] and os.listdir(manager.netns_dir) == []


def test_a_burst_is_coalesced_and_the_latest_state_wins(ec2: FakeEc2, manager: DataplaneManager) -> None:
    vpc = Vpc(ec2)
    vpc.add_interface("db", "b", "10.40.2.10", "db")
    vpc.add_interface("fn", "a", "10.40.1.10", "fn")
    assert manager.wait_idle(10)
    syncs = manager.stats.syncs
    started = time.perf_counter()
    for i in range(200):
        vpc.allow_redis(i % 2 == 1)  # ends allowed
    heard = time.perf_counter() - started
    assert manager.wait_idle(10)
    took = time.perf_counter() - started
    done = manager.stats.syncs - syncs
    print(f"200 changes heard in {heard * 1000:.1f} ms, in force {took * 1000:.1f} ms later: {done} syncs")
    assert 1 <= done < 50
    db = manager.interface_namespace(ACCOUNT, REGION, vpc.eni("db"))
    fn = manager.interface_namespace(ACCOUNT, REGION, vpc.eni("fn"))
    assert db is not None and fn is not None
    listener = db.listen_tcp("10.40.2.10", 6379)
    try:
        assert reach(fn, "10.40.2.10", 6379) == "connected"
    finally:
        listener.close()


def test_one_change_is_in_force_within_100_ms(ec2: FakeEc2, manager: DataplaneManager) -> None:
    vpc = Vpc(ec2)
    vpc.add_interface("db", "b", "10.40.2.10", "db")
    vpc.add_interface("fn", "a", "10.40.1.10", "fn")
    assert manager.wait_idle(10)
    took = []
    for i in range(10):
        started = time.perf_counter()
        vpc.allow_redis(i % 2 == 0)
        assert manager.wait_idle(10)
        took.append(time.perf_counter() - started)
    print(
        f"security group change -> applied: median {sorted(took)[5] * 1000:.1f} ms, max {max(took) * 1000:.1f} ms"
    )
    assert max(took) < 2.0  # correctness bound; the 100 ms target is measured by bench/, not asserted


def test_reconcile_all_is_idempotent_and_ignores_empty_vpcs(ec2: FakeEc2, manager: DataplaneManager) -> None:
    empty, used = Vpc(ec2), Vpc(ec2)
    used.add_interface("db", "b", "10.40.2.10", "db")
    assert manager.reconcile_all(10)
    applies = manager.stats.applies
    reads = ec2.reads
    empty.group("db", [])  # no data plane: no need to read anything
    assert manager.wait_idle(10)
    assert ec2.reads == reads
    assert manager.reconcile_all(10)
    assert manager.stats.applies == applies
    assert manager.vpcs() == [(ACCOUNT, REGION, used.id)]


def test_an_interface_of_a_nat_gateway_is_not_a_host(ec2: FakeEc2, manager: DataplaneManager) -> None:
    vpc = Vpc(ec2)
    vpc.add_interface("nat", "a", "10.40.1.5", "db", kind="nat_gateway")
    assert manager.wait_idle(10)
    assert manager.vpcs() == [] and os.listdir(manager.netns_dir) == []


def test_a_failed_sync_is_retried(ec2: FakeEc2, manager: DataplaneManager) -> None:
    vpc = Vpc(ec2)
    ec2.remove("subnet", vpc.sub("b"))
    vpc.add_interface("db", "b", "10.40.2.10", "db")  # in a subnet the state does not have: refused
    assert manager.wait_idle(10)
    assert manager.stats.failures == 1 and manager.vpcs() == []
    ec2.put("subnet", vpc.sub("b"), {"SubnetId": vpc.sub("b"), "VpcId": vpc.id, "CidrBlock": "10.40.2.0/24"})
    ns = manager.wait_interface_namespace(ACCOUNT, REGION, vpc.eni("db"), 5.0)  # the retry, 0.5 s later
    assert ns is not None


def test_leftovers_of_a_crash_are_swept(ec2: FakeEc2, tmp_path: Path) -> None:
    netns = tmp_path / "run" / "netns"
    netns.mkdir(parents=True)
    with NetNamespace.create("stale") as ns:
        published.publish(netns, "eni-stale", ns.fd)
        inode = os.fstat(ns.fd).st_ino
    (netns / "eni-empty").touch()
    assert namespace_inode(netns / "eni-stale") == inode
    m = DataplaneManager(ec2, tmp_path / "run")
    m.start()
    try:
        assert os.listdir(netns) == [] and mounts.mount_points_under(netns) == []
    finally:
        m.close()
    assert not netns.exists()


def test_close_leaves_nothing_behind(ec2: FakeEc2, tmp_path: Path) -> None:
    m = DataplaneManager(ec2, tmp_path / "run")
    m.start()
    vpc = Vpc(ec2)
    try:
        vpc.add_interface("db", "b", "10.40.2.10", "db")
        ns = m.wait_interface_namespace(ACCOUNT, REGION, vpc.eni("db"), 10)
        assert ns is not None
        held = os.dup(ns.fd)
    finally:
        m.close()
    try:
        assert mounts.mount_points_under(tmp_path / "run") == []
        assert not (tmp_path / "run" / "netns").exists()
        # The namespace (only alive through ``held`` now) has no link left into a VPC.
        links = NetNamespace(held, "held").call(lambda: sorted(n for _, n in socket.if_nameindex()))
        assert links == ["lo"]
    finally:
        os.close(held)
    vpc.add_interface("fn", "a", "10.40.1.10", "fn")  # heard by nobody
    assert m.interface_namespace(ACCOUNT, REGION, vpc.eni("db")) is None
