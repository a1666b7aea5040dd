"""net.dns.DnsServer on a real kernel: a site in a namespace of its own (made here, closed in a
``finally``), asked over UDP and TCP from inside that namespace with dnspython; its zone's
answers, forwarding to an upstream on the test's loopback (answering, silent, absent), the rate
limit, malformed packets, replacing the zone, stopping a site."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from typing import Any, TypeVar

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from lamina.domain.dns import VpcDnsAttributes, Zone
from lamina.linux import NetNamespace
from lamina.net import iproute
from lamina.net.dns import DnsServer, Upstream

pytestmark = pytest.mark.privileged

T = TypeVar("T")
RESOLVER = IPv4Address("10.60.0.2")
ZONE = Zone.build(
    "eu-west-1",
    ["10.60.1.10"],
    VpcDnsAttributes(True, True),
    ["10.60.0.0/16"],
    {"api.example": ["10.60.1.99"]},
)


class Upstream_:
    """A resolver on the test's loopback: example.com is 192.0.2.1, ``silent.example`` never
    answers, anything else NXDOMAIN."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            name = query.question[0].name.to_text()
            if name == "silent.example.":
                continue
            response = dns.message.make_response(query)
            if name == "example.com.":
                response.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.1"))
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), peer)


@pytest.fixture
def site() -> Iterator[tuple[NetNamespace, DnsServer]]:
    upstream = Upstream_()
    ns = NetNamespace.create("lmtest-dns")
    server = DnsServer([Upstream(IPv4Address("127.0.0.1"), upstream.port)], timeout_s=0.3, rate=200)
    try:
        iproute.batch(ns, [f"address add {RESOLVER}/32 dev lo"])
        server.serve("vpc", ns, [RESOLVER], ZONE)
        yield ns, server
    finally:
        server.close()
        ns.close()
        upstream.sock.close()


def inside(ns: NetNamespace, fn: Callable[[], T]) -> T:
    return ns.call(fn)


def ask(ns: NetNamespace, name: str, rdtype: str = "A", *, tcp: bool = False, timeout: float = 2.0) -> Any:
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return inside(ns, lambda: send(query, str(RESOLVER), timeout=timeout))


def addresses(response: Any) -> list[str]:
    return sorted(r.to_text() for rrset in response.answer for r in rrset)


def test_private_names_extra_names_and_reverse(site: tuple[NetNamespace, DnsServer]) -> None:
    ns, _ = site
    answer = ask(ns, "ip-10-60-1-10.eu-west-1.compute.internal")
    assert answer.rcode() == dns.rcode.NOERROR and answer.flags & dns.flags.AA
    assert addresses(answer) == ["10.60.1.10"]
    assert answer.answer[0].ttl == 60
    assert addresses(ask(ns, "API.example.")) == ["10.60.1.99"]
    assert addresses(ask(ns, "10.1.60.10.in-addr.arpa", "PTR")) == [
        "ip-10-60-1-10.eu-west-1.compute.internal."
    ]
    assert ask(ns, "ip-10-60-1-11.eu-west-1.compute.internal").rcode() == dns.rcode.NXDOMAIN
    assert addresses(ask(ns, "ip-10-60-1-10.eu-west-1.compute.internal", tcp=True)) == ["10.60.1.10"]


def test_forwarding(site: tuple[NetNamespace, DnsServer]) -> None:
    ns, server = site
    answer = ask(ns, "example.com")
    assert addresses(answer) == ["192.0.2.1"] and answer.flags & dns.flags.RA
    assert ask(ns, "nothing.example").rcode() == dns.rcode.NXDOMAIN
    assert addresses(ask(ns, "example.com", tcp=True)) == ["192.0.2.1"]
    started = time.monotonic()
    assert ask(ns, "silent.example").rcode() == dns.rcode.SERVFAIL
    assert time.monotonic() - started < 2.0
    assert server.stats.forwarded >= 3 and server.stats.servfail >= 1


def test_no_upstream_is_servfail() -> None:
    ns = NetNamespace.create("lmtest-dns")
    # Nothing listens on port 9 of the loopback: refused at once.
    server = DnsServer([Upstream(IPv4Address("127.0.0.1"), 9)], timeout_s=0.3)
    try:
        iproute.batch(ns, [f"address add {RESOLVER}/32 dev lo"])
        server.serve("vpc", ns, [RESOLVER], ZONE)
        assert ask(ns, "example.com").rcode() == dns.rcode.SERVFAIL
        assert addresses(ask(ns, "ip-10-60-1-10.eu-west-1.compute.internal")) == ["10.60.1.10"]
    finally:
        server.close()
        ns.close()


def test_malformed_packets_are_dropped_and_the_site_goes_on(site: tuple[NetNamespace, DnsServer]) -> None:
    ns, _ = site

    def send_garbage() -> bytes | None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.3)
        try:
            s.sendto(b"\x12\x34" + b"\x01\x00" + b"\xff" * 30, (str(RESOLVER), 53))
            try:
                return s.recv(512)
            except TimeoutError:
                return None
        finally:
            s.close()

    reply = inside(ns, send_garbage)
    assert reply is None or (reply[:2] == b"\x12\x34" and reply[3] & 0x0F == dns.rcode.FORMERR)
    assert addresses(ask(ns, "ip-10-60-1-10.eu-west-1.compute.internal")) == ["10.60.1.10"]


def test_the_rate_limit_drops_past_it(site: tuple[NetNamespace, DnsServer]) -> None:
    ns, server = site
    query = dns.message.make_query("ip-10-60-1-10.eu-west-1.compute.internal", "A").to_wire()

    def flood() -> int:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            for _ in range(1000):
                s.sendto(query, (str(RESOLVER), 53))
            answered = 0
            while True:
                try:
                    s.recv(512)
                except TimeoutError:
                    return answered
                answered += 1
        finally:
            s.close()

    answered = inside(ns, flood)
    # The bucket holds 200 and refills at 200/s: a burst of 1000 gets some 200, not 1000 (what
    # the socket's receive buffer could not hold the kernel dropped before the site saw it).
    assert 150 <= answered <= 300, answered
    assert server.stats.dropped > 0
    # Another source (another interface) has its own bucket: it is answered at once.
    iproute.batch(ns, ["address add 10.60.0.3/32 dev lo"])

    def from_another() -> Any:
        q = dns.message.make_query("ip-10-60-1-10.eu-west-1.compute.internal", "A")
        return dns.query.udp(q, str(RESOLVER), timeout=1, source="10.60.0.3")

    assert addresses(inside(ns, from_another)) == ["10.60.1.10"]


def test_a_new_zone_and_stopping(site: tuple[NetNamespace, DnsServer]) -> None:
    ns, server = site
    server.serve(
        "vpc", ns, [RESOLVER], Zone.build("eu-west-1", ["10.60.1.10"], VpcDnsAttributes(True, False))
    )
    assert ask(ns, "ip-10-60-1-10.eu-west-1.compute.internal").rcode() == dns.rcode.NXDOMAIN
    idle = inside(ns, lambda: socket.create_connection((str(RESOLVER), 53), timeout=2))
    try:
        time.sleep(0.1)  # accepted by the site
        server.stop("vpc")
        # An open TCP connection is a socket in the site's namespace: it goes with the site.
        with contextlib.suppress(ConnectionResetError):  # closed, or reset: gone either way
            assert idle.recv(16) == b""
    finally:
        idle.close()
    with pytest.raises(dns.exception.Timeout):
        ask(ns, "example.com", timeout=0.3)


# -- through the data plane manager: the hook for extra names, and teardown ------------------------


def test_the_manager_serves_each_vpc_with_its_extra_records(tmp_path: Any) -> None:
    from test_net_manager import ACCOUNT, REGION, FakeEc2, Vpc

    from lamina.net.manager import DataplaneManager

    ec2 = FakeEc2()
    records: dict[str, list[IPv4Address]] = {"lambda.us-east-1.amazonaws.com": [IPv4Address("10.40.1.50")]}
    asked: list[Any] = []

    def extra(key: Any) -> dict[str, list[IPv4Address]]:
        asked.append(key)
        return dict(records) if key is not None else {}

    manager = DataplaneManager(ec2, tmp_path / "run", dns_upstreams=(), extra_records=extra)
    manager.start()
    try:
        vpc = Vpc(ec2)
        vpc.add_interface("fn", "a", "10.40.1.10", "fn")
        assert manager.wait_idle(10)
        key = (ACCOUNT, REGION, vpc.id)
        assert key in asked
        fn = manager.interface_namespace(ACCOUNT, REGION, vpc.eni("fn"))
        assert fn is not None

        def query(name: str, server: str = "10.40.0.2") -> Any:
            q = dns.message.make_query(name, "A")
            return fn.call(lambda: dns.query.udp(q, server, timeout=2))

        assert addresses(query("lambda.us-east-1.amazonaws.com")) == ["10.40.1.50"]
        assert addresses(query("lambda.us-east-1.amazonaws.com", "169.254.169.253")) == ["10.40.1.50"]
        # Hostnames are off (a new VPC's default): the interface's own name is not answered.
        assert query("ip-10-40-1-10.ec2.internal").rcode() == dns.rcode.NXDOMAIN
        # No upstream: public names get SERVFAIL at once.
        assert query("example.com").rcode() == dns.rcode.SERVFAIL
        records["lambda.us-east-1.amazonaws.com"] = [IPv4Address("10.40.1.51")]
        manager.refresh_dns(key)
        assert manager.wait_idle(10)
        assert addresses(query("lambda.us-east-1.amazonaws.com")) == ["10.40.1.51"]
        assert (
            manager.resolv_conf(ACCOUNT, REGION, vpc.id) == "options timeout:2 attempts:5\n"
        )  # no option set
        assert manager.dns is not None and manager.dns.sites() == [key]
        vpc.remove_interface("fn")
        assert manager.wait_idle(10)
        assert manager.dns.sites() == []  # no data plane, no DNS site
    finally:
        manager.close()
