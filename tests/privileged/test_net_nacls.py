"""Network ACLs on a real kernel: namespaces, the router's nftables, real TCP connections.

The VPC (unique ids, namespaces held by fds, closed in a ``finally``; nothing in the host's own
namespace): 10.31.0.0/16, subnet a 10.31.1.0/24 holds fn and other, subnet b 10.31.2.0/24 holds db.
Every security group allows everything in and out, so whatever is dropped here is dropped by an ACL.
Subnet a uses the default ACL (all allowed); subnet b uses ``acl-b``, whose entries each test sets.
"""

from __future__ import annotations

import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lamina.domain import nacls as N
from lamina.domain.dataplane import VpcPlan, plan_vpc
from lamina.linux import NetNamespace
from lamina.net import VpcDataplane

pytestmark = pytest.mark.privileged

DROPPED_AFTER_S = 0.25  # an allowed connection completes in well under a millisecond here
DB, FN, OTHER = "10.31.2.10", "10.31.1.10", "10.31.1.11"
EVERYTHING = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
EPHEMERAL = {"Protocol": "6", "PortRange": {"From": 1024, "To": 65535}}


def tcp(port: int) -> dict[str, Any]:
    return {"Protocol": "6", "PortRange": {"From": port, "To": port}}


def rule(
    number: int, egress: bool, action: str = "allow", cidr: str = "0.0.0.0/0", **kw: Any
) -> dict[str, Any]:
    return {
        "RuleNumber": number,
        "Egress": egress,
        "RuleAction": action,
        "Protocol": "-1",
        "CidrBlock": cidr,
        **kw,
    }


@dataclass
class Vpc:
    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    a_entries: list[dict[str, Any]] = field(default_factory=lambda: list(N.initial_entries(default=True)))
    b_entries: list[dict[str, Any]] = field(default_factory=lambda: list(N.initial_entries(default=True)))

    def id(self, kind: str, name: str) -> str:
        return f"{kind}-{name}{self.uid}"

    def plan(self) -> VpcPlan:
        vpc_id = self.id("vpc", "")

        def interface(name: str, subnet: str, address: str) -> dict[str, Any]:
            return {
                "NetworkInterfaceId": self.id("eni", name),
                "VpcId": vpc_id,
                "SubnetId": self.id("subnet", subnet),
                "PrivateIpAddress": address,
                "Groups": [{"GroupId": self.id("sg", "open")}],
            }

        def acl(name: str, subnet: str, entries: list[dict[str, Any]], default: bool) -> dict[str, Any]:
            return {
                "NetworkAclId": self.id("acl", name),
                "VpcId": vpc_id,
                "IsDefault": default,
                "Entries": entries,
                "Associations": [{"SubnetId": self.id("subnet", subnet)}],
            }

        return plan_vpc(
            {"VpcId": vpc_id, "CidrBlock": "10.31.0.0/16"},
            [
                {"SubnetId": self.id("subnet", s), "VpcId": vpc_id, "CidrBlock": f"10.31.{n}.0/24"}
                for s, n in (("a", 1), ("b", 2))
            ],
            [
                {
                    "GroupId": self.id("sg", "open"),
                    "VpcId": vpc_id,
                    "IpPermissions": EVERYTHING,
                    "IpPermissionsEgress": EVERYTHING,
                }
            ],
            [interface("db", "b", DB), interface("fn", "a", FN), interface("other", "a", OTHER)],
            [
                {
                    "RouteTableId": self.id("rtb", "main"),
                    "VpcId": vpc_id,
                    "Associations": [{"Main": True}],
                    "Routes": [
                        {"DestinationCidrBlock": "10.31.0.0/16", "GatewayId": "local", "State": "active"}
                    ],
                }
            ],
            network_acls=[acl("a", "a", self.a_entries, True), acl("b", "b", self.b_entries, False)],
        )

    def set_b(self, *entries: dict[str, Any]) -> None:
        self.b_entries = [*entries, *N.initial_entries(default=False)]

    def set_a(self, *entries: dict[str, Any]) -> None:
        self.a_entries = [*entries, *N.initial_entries(default=False)]


class Echo:
    """A TCP echo server in a namespace."""

    def __init__(self, ns: NetNamespace, host: str, port: int) -> None:
        self.sock = ns.listen_tcp(host, port)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def dial(dp: VpcDataplane, eni_id: str, host: str, port: int) -> socket.socket:
    def make() -> socket.socket:
        s = socket.socket()
        s.settimeout(DROPPED_AFTER_S)
        try:
            s.connect((host, port))
        except BaseException:
            s.close()
            raise
        return s

    return dp.interface_namespace(eni_id).call(make)


def outcome(dp: VpcDataplane, eni_id: str, host: str, port: int) -> str:
    """``echoed``, ``dropped`` (the handshake timed out) or the error."""
    try:
        s = dial(dp, eni_id, host, port)
    except TimeoutError:
        return "dropped"
    except OSError as exc:
        return f"error {exc.errno}"
    with s:
        s.sendall(b"ping")
        try:
            return "echoed" if s.recv(16) == b"ping" else "no reply"
        except TimeoutError:
            return "no reply"


@pytest.fixture
def vpc() -> Vpc:
    return Vpc()


@pytest.fixture
def dataplane(vpc: Vpc) -> Iterator[VpcDataplane]:
    dp = VpcDataplane(vpc.plan())
    made: list[Echo] = []
    try:
        db = dp.interface_namespace(vpc.id("eni", "db"))
        made += [Echo(db, DB, 6379), Echo(db, DB, 7000)]
        made.append(Echo(dp.interface_namespace(vpc.id("eni", "fn")), FN, 8080))
        made.append(Echo(dp.interface_namespace(vpc.id("eni", "other")), OTHER, 8080))
        yield dp
    finally:
        for server in made:
            server.close()
        dp.close()


def test_the_default_acl_allows_everything(vpc: Vpc, dataplane: VpcDataplane) -> None:
    fn, db = vpc.id("eni", "fn"), vpc.id("eni", "db")
    assert outcome(dataplane, fn, DB, 6379) == "echoed"
    assert outcome(dataplane, db, FN, 8080) == "echoed"


def test_a_deny_rule_blocks_what_security_groups_allow_inbound(vpc: Vpc, dataplane: VpcDataplane) -> None:
    fn = vpc.id("eni", "fn")
    vpc.set_b(rule(50, False, "deny", "10.31.1.0/24", **tcp(6379)), rule(100, False), rule(100, True))
    dataplane.apply(vpc.plan())
    assert outcome(dataplane, fn, DB, 6379) == "dropped"
    assert outcome(dataplane, fn, DB, 7000) == "echoed"


def test_a_deny_rule_blocks_what_security_groups_allow_outbound(vpc: Vpc, dataplane: VpcDataplane) -> None:
    fn, db = vpc.id("eni", "fn"), vpc.id("eni", "db")
    # Out of subnet a towards db's 7000: denied by a's outbound rules.
    vpc.set_a(rule(10, True, "deny", f"{DB}/32", **tcp(7000)), rule(100, True), rule(100, False))
    dataplane.apply(vpc.plan())
    assert outcome(dataplane, fn, DB, 7000) == "dropped"
    assert outcome(dataplane, fn, DB, 6379) == "echoed"
    # Out of subnet b: db may not open connections to subnet a at all.
    vpc.set_b(rule(10, True, "deny", "10.31.1.0/24", **tcp(8080)), rule(100, True), rule(100, False))
    dataplane.apply(vpc.plan())
    assert outcome(dataplane, db, FN, 8080) == "dropped"


def test_the_lower_rule_number_wins(vpc: Vpc, dataplane: VpcDataplane) -> None:
    fn = vpc.id("eni", "fn")
    vpc.set_b(rule(10, False, "allow", **tcp(6379)), rule(20, False, "deny", **tcp(6379)), rule(100, True))
    dataplane.apply(vpc.plan())
    assert outcome(dataplane, fn, DB, 6379) == "echoed"
    vpc.set_b(rule(10, False, "deny", **tcp(6379)), rule(20, False, "allow", **tcp(6379)), rule(100, True))
    dataplane.apply(vpc.plan())
    assert outcome(dataplane, fn, DB, 6379) == "dropped"


def test_stateless_replies_need_the_ephemeral_ports(vpc: Vpc, dataplane: VpcDataplane) -> None:
    fn = vpc.id("eni", "fn")
    # In: 6379 only; out: 6379 only -- the server's SYN-ACK goes to the client's ephemeral port.
    vpc.set_b(rule(100, False, "allow", **tcp(6379)), rule(100, True, "allow", **tcp(6379)))
    dataplane.apply(vpc.plan())
    assert outcome(dataplane, fn, DB, 6379) == "dropped"
    vpc.set_b(rule(100, False, "allow", **tcp(6379)), rule(110, True, "allow", "10.31.1.0/24", **EPHEMERAL))
    dataplane.apply(vpc.plan())
    assert outcome(dataplane, fn, DB, 6379) == "echoed"


def test_an_established_connection_is_cut_when_its_replies_are_denied(
    vpc: Vpc, dataplane: VpcDataplane
) -> None:
    """Unlike a security group (stateful), an ACL judges every packet of a tracked connection."""
    established = dial(dataplane, vpc.id("eni", "fn"), DB, 6379)
    try:
        established.sendall(b"one")
        assert established.recv(16) == b"one"
        vpc.set_b(rule(100, False), rule(100, True, "deny", **EPHEMERAL), rule(200, True))
        dataplane.apply(vpc.plan())
        established.sendall(b"two")
        with pytest.raises(TimeoutError):
            established.recv(16)
    finally:
        established.close()


def test_traffic_within_a_subnet_is_not_judged(vpc: Vpc, dataplane: VpcDataplane) -> None:
    fn = vpc.id("eni", "fn")
    vpc.set_a()  # subnet a's ACL allows nothing at all
    dataplane.apply(vpc.plan())
    assert outcome(dataplane, fn, OTHER, 8080) == "echoed"
    assert outcome(dataplane, fn, DB, 6379) == "dropped"


def ping(dp: VpcDataplane, eni_id: str, host: str) -> bool:
    """One ICMP echo request from an interface's namespace (a raw socket: root); True if the echo
    reply came back."""

    def run() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
            s.settimeout(DROPPED_AFTER_S)
            header = struct.pack("!BBHHH", 8, 0, 0, 0x4C4D, 1) + b"lamina"
            total = sum(struct.unpack(f"!{len(header) // 2}H", header))
            total = (total >> 16) + (total & 0xFFFF)
            checksum = ~(total + (total >> 16)) & 0xFFFF
            s.sendto(header[:2] + struct.pack("!H", checksum) + header[4:], (host, 0))
            try:
                while True:
                    packet, (peer, _) = s.recvfrom(1024)
                    icmp = packet[(packet[0] & 0x0F) * 4 :]
                    if peer == host and icmp[0] == 0 and icmp[4:6] == b"LM":
                        return True
            except TimeoutError:
                return False

    return bool(dp.interface_namespace(eni_id).call(run))


def test_icmp_types_are_judged_each_way(vpc: Vpc, dataplane: VpcDataplane) -> None:
    fn = vpc.id("eni", "fn")
    assert ping(dataplane, fn, DB)
    request = {"Protocol": "1", "IcmpTypeCode": {"Type": 8, "Code": -1}}
    reply = {"Protocol": "1", "IcmpTypeCode": {"Type": 0, "Code": 0}}
    vpc.set_b(rule(100, False, **request), rule(100, True, **reply))
    dataplane.apply(vpc.plan())
    assert ping(dataplane, fn, DB)
    vpc.set_b(rule(100, False, **request), rule(100, True, **request))  # echo replies may not leave
    dataplane.apply(vpc.plan())
    assert not ping(dataplane, fn, DB)


def test_every_entry_form_loads_into_nftables(vpc: Vpc) -> None:
    """Each kind of entry renders into rules the kernel accepts (a fresh router per plan)."""
    vpc.set_b(
        rule(1, False, "deny", "10.31.1.0/24", **tcp(6379)),
        rule(2, False, "allow", **EPHEMERAL),
        rule(3, False, "allow", Protocol="17", PortRange={"From": 53, "To": 53}),
        rule(4, False, "allow", Protocol="17", PortRange={"From": 0, "To": 65535}),
        rule(5, False, "allow", Protocol="1", IcmpTypeCode={"Type": -1, "Code": -1}),
        rule(6, False, "allow", Protocol="1", IcmpTypeCode={"Type": 3, "Code": 4}),
        rule(7, False, "deny", Protocol="47"),
        {"RuleNumber": 8, "Egress": False, "RuleAction": "allow", "Protocol": "-1", "Ipv6CidrBlock": "::/0"},
        rule(9, True, "allow", "10.0.0.0/8", Protocol="6", PortRange={"From": 0, "To": 65535}),
    )
    dp = VpcDataplane(vpc.plan())
    dp.close()
