"""Attacks on the Amazon-provided DNS server (net.dns on a real kernel, a site in a namespace made
here and closed in a ``finally``): hostile packets (responses sent as queries, which two sites'
sockets would bounce between them forever; other opcodes, classes, question counts, TSIG,
oversized EDNS, zone transfers, TCP pipelining) are answered or dropped without an exception in the
server's log, and the site keeps answering; names about the host's own networks (special-use
names, its LAN's domains, partial and IPv6 reverse names of private ranges) never reach the
host's resolver."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from typing import Any, TypeVar

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from lamina.domain.dns import LINK_LOCAL_RESOLVER, VpcDnsAttributes, Zone
from lamina.linux import NetNamespace
from lamina.net import iproute
from lamina.net.dns import DnsServer, Upstream

pytestmark = pytest.mark.privileged

T = TypeVar("T")
RESOLVER = IPv4Address("10.70.0.2")
ZONE = Zone.build("eu-west-1", ["10.70.1.10"], VpcDnsAttributes(True, True), ["10.70.0.0/16"])
PRIVATE = "ip-10-70-1-10.eu-west-1.compute.internal"


class RecordingUpstream:
    """A resolver on the test's loopback that answers every A question with 192.0.2.1 (but never
    names under ``slow.example``) and remembers every name it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
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
            self.asked.append(name.lower())
            if name.lower().endswith(".slow.example."):
                continue  # an attacker's own domain, whose servers never answer
            response = dns.message.make_response(query)
            if query.question[0].rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.1"))
            self.sock.sendto(response.to_wire(), peer)


@pytest.fixture
def site(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[NetNamespace, DnsServer, RecordingUpstream]]:
    caplog.set_level(logging.WARNING)
    upstream = RecordingUpstream()
    ns = NetNamespace.create("lmtest-dnsatk")
    server = DnsServer([Upstream(IPv4Address("127.0.0.1"), upstream.port)], timeout_s=0.5, rate=500)
    try:
        iproute.batch(
            ns, [f"address add {RESOLVER}/32 dev lo", f"address add {LINK_LOCAL_RESOLVER}/32 dev lo"]
        )
        server.serve("vpc", ns, [RESOLVER, LINK_LOCAL_RESOLVER], ZONE)
        yield ns, server, upstream
    finally:
        server.close()
        ns.close()
        upstream.sock.close()
    records = caplog.get_records("setup") + caplog.get_records("call")
    failures = [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
    assert failures == [], [r.getMessage() for r in failures]


def inside(ns: NetNamespace, fn: Callable[[], T]) -> T:
    return ns.call(fn)


def ask(ns: NetNamespace, name: str, rdtype: str = "A", *, tcp: bool = False) -> Any:
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return inside(ns, lambda: send(query, str(RESOLVER), timeout=2.0))


def still_answers(ns: NetNamespace) -> None:
    answer = ask(ns, PRIVATE)
    assert [r.to_text() for rrset in answer.answer for r in rrset] == ["10.70.1.10"]


def udp_exchange(
    ns: NetNamespace, packet: bytes, *, target: IPv4Address = RESOLVER, wait: float = 0.4
) -> bytes | None:
    def run() -> bytes | None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(wait)
        try:
            s.sendto(packet, (str(target), 53))
            try:
                return s.recv(65535)
            except TimeoutError:
                return None
        finally:
            s.close()

    return inside(ns, run)


def test_a_response_is_never_answered_so_two_sites_cannot_bounce_it(
    site: tuple[NetNamespace, DnsServer, RecordingUpstream],
) -> None:
    ns, server, _ = site
    query = dns.message.make_query(PRIVATE, "A")
    response = dns.message.make_response(query).to_wire()
    assert udp_exchange(ns, response) is None

    # A response "from" the site's other address to this one (what a spoofing host would send):
    # answering it would start a loop between the site's own two sockets.
    def spoofed() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND; the port is taken: use another
            s.bind((str(LINK_LOCAL_RESOLVER), 5353))
            s.sendto(response, (str(RESOLVER), 53))
        finally:
            s.close()

    inside(ns, spoofed)
    before = server.stats.answered
    still_answers(ns)
    assert server.stats.answered == before + 1

    # Over TCP too: the connection is closed, nothing answers it.
    def tcp_response() -> bytes:
        with socket.create_connection((str(RESOLVER), 53), timeout=2) as s:
            s.sendall(struct.pack("!H", len(response)) + response)
            return s.recv(4096)

    assert inside(ns, tcp_response) == b""
    still_answers(ns)


def test_hostile_queries_are_answered_or_dropped_without_an_error(
    site: tuple[NetNamespace, DnsServer, RecordingUpstream],
) -> None:
    ns, _, _ = site
    q = dns.message.make_query(PRIVATE, "A")
    # Another opcode: NOTIMP.
    q.set_opcode(dns.opcode.UPDATE)
    reply = udp_exchange(ns, q.to_wire())
    assert reply is not None and dns.message.from_wire(reply).rcode() in (dns.rcode.NOTIMP, dns.rcode.FORMERR)
    q.set_opcode(dns.opcode.NOTIFY)
    reply = udp_exchange(ns, q.to_wire())
    assert reply is not None and dns.message.from_wire(reply).rcode() == dns.rcode.NOTIMP
    # Another class (version.bind in CHAOS): REFUSED.
    chaos = dns.message.make_query("version.bind", "TXT", rdclass=dns.rdataclass.CH)
    reply = udp_exchange(ns, chaos.to_wire())
    assert reply is not None and dns.message.from_wire(reply).rcode() == dns.rcode.REFUSED
    # No question, two questions: FORMERR.
    empty = dns.message.Message()
    reply = udp_exchange(ns, empty.to_wire())
    assert reply is not None and dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR
    two = dns.message.make_query(PRIVATE, "A")
    two.question.append(dns.rrset.RRset(dns.name.from_text(PRIVATE), dns.rdataclass.IN, dns.rdatatype.AAAA))
    reply = udp_exchange(ns, two.to_wire())
    assert reply is not None and dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR
    # Truncated, empty and oversized packets, a TSIG-signed query (no key is known): dropped or FORMERR.
    for packet in (b"", b"\x00", q.to_wire()[:13], b"\x00\x01\x01\x00" + b"\x00" * 60000):
        reply = udp_exchange(ns, packet)
        assert reply is None or reply[3] & 0x0F == dns.rcode.FORMERR
    # EDNS asking for 65535-byte answers and zone transfers / ANY of private names.
    big = dns.message.make_query(PRIVATE, "ANY", use_edns=0, payload=65535)
    reply = udp_exchange(ns, big.to_wire())
    assert reply is not None and dns.message.from_wire(reply).rcode() == dns.rcode.NOERROR
    axfr = ask(ns, "eu-west-1.compute.internal", "AXFR", tcp=True)
    assert axfr.rcode() == dns.rcode.NXDOMAIN and axfr.answer == []
    # Pipelined TCP: many queries in one write, each answered in turn on the same connection.
    wire = dns.message.make_query(PRIVATE, "A").to_wire()

    def pipelined() -> int:
        with socket.create_connection((str(RESOLVER), 53), timeout=3) as s:
            s.sendall((struct.pack("!H", len(wire)) + wire) * 50)
            got = b""
            answers = 0
            while answers < 50:
                chunk = s.recv(65535)
                if not chunk:
                    break
                got += chunk
                while len(got) >= 2 and len(got) >= 2 + struct.unpack("!H", got[:2])[0]:
                    got = got[2 + struct.unpack("!H", got[:2])[0] :]
                    answers += 1
            return answers

    assert inside(ns, pipelined) == 50

    # A TCP client announcing 65535 bytes and sending two is cut off after the idle time; the
    # site meanwhile answers others.
    def slow() -> None:
        with socket.create_connection((str(RESOLVER), 53), timeout=3) as s:
            s.sendall(b"\xff\xff\x00\x00")
            answer = dns.query.udp(dns.message.make_query(PRIVATE, "A"), str(RESOLVER), timeout=2.0)
            assert answer.rcode() == dns.rcode.NOERROR

    inside(ns, slow)
    assert ask(ns, PRIVATE, tcp=True).rcode() == dns.rcode.NOERROR


@pytest.mark.parametrize(
    "name",
    [
        "localhost",
        "db.localhost",
        "_gateway",
        "myhost",
        "printer.local",
        "nas.lan",
        "router.home.arpa",
        "anything.internal",
        "metadata.google.internal",
        "kubernetes.default.svc.cluster.local",
        "168.192.in-addr.arpa",
        "1.168.192.in-addr.arpa",
        "x.5.1.168.192.in-addr.arpa",
        "10.in-addr.arpa",
        "127.in-addr.arpa",
        "1.0.0.127.in-addr.arpa",
        "254.169.in-addr.arpa",
        "d.f.ip6.arpa",
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
        "0.8.e.f.ip6.arpa",
        "invalid",
        "a.test.invalid",
    ],
)
def test_names_about_the_hosts_networks_never_reach_its_resolver(
    site: tuple[NetNamespace, DnsServer, RecordingUpstream], name: str
) -> None:
    ns, _, upstream = site
    # A single label (no TLD has an address of its own) is asked as a host, other names any way.
    for rdtype in ("A", "AAAA") if "." not in name else ("A", "PTR", "SOA"):
        answer = ask(ns, name, rdtype)
        assert answer.rcode() == dns.rcode.NXDOMAIN, (name, rdtype)
    assert upstream.asked == []
    # A public name still goes out, and its answer comes back.
    assert [r.to_text() for rrset in ask(ns, "example.com").answer for r in rrset] == ["192.0.2.1"]
    assert upstream.asked == ["example.com."]


def test_public_reverse_names_are_still_forwarded(
    site: tuple[NetNamespace, DnsServer, RecordingUpstream],
) -> None:
    ns, _, upstream = site
    for name in ("8.8.8.8.in-addr.arpa", "8.in-addr.arpa", "in-addr.arpa", "0.6.8.4.1.0.0.2.ip6.arpa"):
        assert ask(ns, name, "PTR").rcode() == dns.rcode.NOERROR, name
    assert upstream.asked == [
        "8.8.8.8.in-addr.arpa.",
        "8.in-addr.arpa.",
        "in-addr.arpa.",
        "0.6.8.4.1.0.0.2.ip6.arpa.",
    ]


@pytest.mark.parametrize("rdtype", [0, 41, 250, 251, 252, 253, 254, 255, 65535])
def test_odd_question_types_are_answered_without_an_error(
    site: tuple[NetNamespace, DnsServer, RecordingUpstream], rdtype: int
) -> None:
    ns, _, _ = site
    for name in ("example.com", PRIVATE, "weird\\000name\\255.example.org"):
        query = dns.message.make_query(name, rdtype)
        for tcp in (False, True):
            wire = query.to_wire()

            def exchange(wire: bytes = wire, tcp: bool = tcp) -> bytes | None:
                if tcp:
                    with socket.create_connection((str(RESOLVER), 53), timeout=3) as s:
                        s.sendall(struct.pack("!H", len(wire)) + wire)
                        head = s.recv(2)
                        return s.recv(65535) if head else None
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(3)
                try:
                    s.sendto(wire, (str(RESOLVER), 53))
                    return s.recv(65535)
                finally:
                    s.close()

            reply = inside(ns, exchange)
            assert reply is not None, (name, rdtype, tcp)
            assert reply[:2] == wire[:2]
    still_answers(ns)


def test_one_source_asking_names_that_never_answer_does_not_starve_the_others(
    site: tuple[NetNamespace, DnsServer, RecordingUpstream],
) -> None:
    """Forwarded queries in flight are bounded per site (and overall); one interface asking for
    names whose servers never answer (its owner's own domain) holds at most its share of them,
    so the site's other interfaces (in the default network: other accounts' functions) still get
    public names answered."""
    ns, server, _ = site
    iproute.batch(ns, ["address add 10.70.1.30/32 dev lo", "address add 10.70.1.31/32 dev lo"])

    def flood_then_ask() -> Any:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("10.70.1.30", 0))
        try:
            for i in range(300):
                s.sendto(dns.message.make_query(f"n{i}.slow.example", "A").to_wire(), (str(RESOLVER), 53))
            time.sleep(0.05)
            query = dns.message.make_query("example.com", "A")
            return dns.query.udp(query, str(RESOLVER), timeout=2.0, source="10.70.1.31")
        finally:
            s.close()

    answer = inside(ns, flood_then_ask)
    assert answer.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(answer.rcode())
    assert [r.to_text() for rrset in answer.answer for r in rrset] == ["192.0.2.1"]
    assert server.stats.servfail > 0  # the flooding source did meet its own limit


def test_one_source_holding_tcp_connections_does_not_lock_the_others_out(
    site: tuple[NetNamespace, DnsServer, RecordingUpstream],
) -> None:
    """Open TCP connections are bounded per site and per source address: one interface opening
    (and keeping) as many as it can leaves room for the site's other interfaces."""
    ns, _, _ = site
    iproute.batch(ns, ["address add 10.70.1.40/32 dev lo", "address add 10.70.1.41/32 dev lo"])

    def hold_then_ask() -> tuple[int, Any]:
        held: list[socket.socket] = []
        try:
            for _ in range(64):
                s = socket.create_connection((str(RESOLVER), 53), timeout=2, source_address=("10.70.1.40", 0))
                held.append(s)
            time.sleep(0.1)
            alive = 0
            for s in held:  # those the site keeps answer a query
                wire = dns.message.make_query(PRIVATE, "A").to_wire()
                try:
                    s.settimeout(0.3)
                    s.sendall(struct.pack("!H", len(wire)) + wire)
                    alive += bool(s.recv(2))
                except OSError:
                    pass
            query = dns.message.make_query(PRIVATE, "A")
            return alive, dns.query.tcp(query, str(RESOLVER), timeout=2.0, source="10.70.1.41")
        finally:
            for s in held:
                s.close()

    alive, answer = inside(ns, hold_then_ask)
    assert 1 <= alive < 32, alive
    assert [r.to_text() for rrset in answer.answer for r in rrset] == ["10.70.1.10"]


def test_closing_with_queries_in_flight_leaves_nothing_pending(caplog: pytest.LogCaptureFixture) -> None:
    """A server stopping while forwarded queries wait on an upstream that never answers: they are
    cancelled and waited for, and nothing is left for the garbage collector to complain about."""
    import gc

    caplog.set_level(logging.WARNING)
    upstream = RecordingUpstream()
    ns = NetNamespace.create("lmtest-dnsatk")
    server = DnsServer([Upstream(IPv4Address("127.0.0.1"), upstream.port)], timeout_s=5.0)
    try:
        iproute.batch(ns, [f"address add {RESOLVER}/32 dev lo"])
        server.serve("vpc", ns, [RESOLVER], ZONE)

        def ask_slow() -> None:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                for i in range(10):
                    s.sendto(dns.message.make_query(f"n{i}.slow.example", "A").to_wire(), (str(RESOLVER), 53))
            finally:
                s.close()

        inside(ns, ask_slow)
        deadline = time.monotonic() + 2
        while len(upstream.asked) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(upstream.asked) == 10
    finally:
        server.close()
        ns.close()
        upstream.sock.close()
    del server  # its tasks go with it
    gc.collect()
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == []
