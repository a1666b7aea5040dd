"""The Amazon-provided DNS server of every VPC (and of the default network), served by the lamina
server itself: no daemon, no process per VPC.

Facts and design:
- A socket stays in the network namespace it was made in: for each VPC, UDP and TCP sockets on
  port 53 are made inside its router namespace (``NetNamespace.call``), bound to the VPC's base
  address + 2 and to 169.254.169.253, both local addresses of the router's ``lo`` (``net.vpc``);
  the router's ``input`` chain lets DNS in from the VPC's interfaces only when ``enableDnsSupport``
  is on (``domain.dataplane``). Each site's sockets are bound to its own addresses so that replies
  leave from the address asked.
- Every site is served by one thread (``lamina-dns``) running its own asyncio loop: the API's
  event loop never waits on DNS, and DNS never waits on the API. A private name is answered from
  the site's :class:`~lamina.domain.dns.Zone` (a frozen value, replaced whole when the VPC
  changes) without leaving that thread.
- Any other name is forwarded to the upstream resolvers (``--dns-upstream``; by default the
  host's ``/etc/resolv.conf`` servers) from sockets made by that thread, that is in the server's
  own namespace, whatever the VPC's routes, as Route 53 Resolver resolves public names for a VPC
  with no way out. Bounded: ``timeout_s`` per upstream, at most ``max_inflight`` forwarded
  queries at once (``per_site_inflight`` per VPC, ``per_source_inflight`` per source address;
  past any of them a query gets SERVFAIL at once), and
  each source address (a network interface: AWS allows 1024 packets per second per interface)
  may send ``rate`` packets per second and the whole site (a VPC) ``SITE_RATE_FACTOR`` times that
  (token buckets): past either, queries are dropped unanswered, as AWS drops them.
- dnspython parses and renders every message; malformed packets are dropped (FORMERR when the
  header can be read and is a query's), and so are responses (a packet with QR set).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from lamina.domain.dns import Answer, Outcome, Zone
from lamina.linux import NetNamespace

log = logging.getLogger("lamina.net")

PORT = 53
#: Seconds one upstream resolver is given to answer a forwarded query.
UPSTREAM_TIMEOUT_S = 2.0
#: Forwarded queries in flight at once, over every site / per site / per source address (one
#: interface asking for names whose servers never answer must not take its site's whole share).
MAX_INFLIGHT = 256
PER_SITE_INFLIGHT = 64
PER_SOURCE_INFLIGHT = 16
#: Packets per second one source address may send (AWS: 1024 per network interface), and the
#: bucket's depth; a whole site (every source of a VPC, or the default network) gets this many times.
RATE_PER_S = 1024.0
SITE_RATE_FACTOR = 4
_MAX_SOURCES = 4096  # buckets kept per site; past it, full (idle) ones are forgotten
#: Open TCP connections per site and per source address (one interface must not take them all),
#: and how long one may stay idle.
MAX_TCP_CONNECTIONS = 32
MAX_TCP_PER_SOURCE = 4
TCP_IDLE_S = 10.0
_UDP_BATCH = 64  # datagrams read per readiness event
_IP_FREEBIND = 15  # linux/in.h: bind to an address the namespace does not have (yet)


@dataclass(frozen=True)
class Upstream:
    """A resolver public names are forwarded to (``--dns-upstream IP[:port]``)."""

    address: IPv4Address
    port: int = PORT

    @classmethod
    def parse(cls, text: str) -> Upstream:
        """``IP`` or ``IP:port``; ``ValueError`` otherwise."""
        host, colon, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
        try:
            number = int(port) if colon else PORT
            if not 0 < number < 65536:
                raise ValueError
            return cls(IPv4Address(host), number)
        except ValueError:
            raise ValueError(f"expected IP or IP:PORT (IPv4), got {text!r}") from None

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


def host_upstreams(path: Path = Path("/etc/resolv.conf")) -> tuple[Upstream, ...]:
    """The IPv4 ``nameserver`` lines of the host's resolv.conf (none: no forwarding)."""
    found: list[Upstream] = []
    try:
        text = path.read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            with contextlib.suppress(ValueError):
                found.append(Upstream(IPv4Address(parts[1])))
    return tuple(found)


@dataclass
class Stats:
    answered: int = 0  # answered from a zone
    forwarded: int = 0  # answered by an upstream
    servfail: int = 0
    dropped: int = 0  # over the rate, or malformed


@dataclass
class _Site:
    key: Hashable
    zone: Zone
    ns: NetNamespace  # sockets are in it: a new namespace (a rebuilt router) needs new ones
    addresses: tuple[IPv4Address, ...] = ()
    udp: list[socket.socket] = field(default_factory=list)
    servers: list[asyncio.Server] = field(default_factory=list)
    bucket: _Bucket = field(default_factory=lambda: _Bucket(0.0, time.monotonic()))
    sources: dict[str, _Bucket] = field(default_factory=dict)
    inflight: int = 0
    source_inflight: dict[str, int] = field(default_factory=dict)
    tcp: dict[asyncio.StreamWriter, str] = field(default_factory=dict)  # open TCP connections' sources

    def admit(self, source: str, rate: float) -> bool:
        """Whether a packet from ``source`` is within its own rate and the site's."""
        now = time.monotonic()
        bucket = self.sources.get(source)
        if bucket is None:
            if len(self.sources) >= _MAX_SOURCES:
                self.sources = {k: b for k, b in self.sources.items() if not b.full(now, rate)}
            bucket = self.sources[source] = _Bucket(rate, now)
        return bucket.take(now, rate) and self.bucket.take(now, rate * SITE_RATE_FACTOR)


@dataclass
class _Bucket:
    tokens: float
    refilled: float

    def full(self, now: float, rate: float) -> bool:
        return self.tokens + (now - self.refilled) * rate >= rate

    def take(self, now: float, rate: float) -> bool:
        self.tokens = min(rate, self.tokens + (now - self.refilled) * rate)
        self.refilled = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class DnsServer:
    """Serves the DNS sites (one per VPC with a data plane, plus the default network's).

    Thread-safe: :meth:`serve` and :meth:`stop` are called by the data plane's worker; the sites
    run on this server's own thread.
    """

    def __init__(
        self,
        upstreams: Sequence[Upstream],
        *,
        timeout_s: float = UPSTREAM_TIMEOUT_S,
        max_inflight: int = MAX_INFLIGHT,
        per_site_inflight: int = PER_SITE_INFLIGHT,
        per_source_inflight: int = PER_SOURCE_INFLIGHT,
        rate: float = RATE_PER_S,
    ) -> None:
        self.upstreams = tuple(upstreams)
        self.timeout_s = timeout_s
        self.max_inflight = max_inflight
        self.per_site_inflight = per_site_inflight
        self.per_source_inflight = per_source_inflight
        self.rate = rate
        self.stats = Stats()
        self._inflight = 0
        self._sites: dict[Hashable, _Site] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="lamina-dns", daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, fn: Any, *args: Any) -> Any:
        """Run a coroutine function on the DNS loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(fn(*args), self._loop).result()

    # -- sites ------------------------------------------------------------------------------------

    def serve(self, key: Hashable, ns: NetNamespace, addresses: Sequence[IPv4Address], zone: Zone) -> None:
        """Answer on port 53 of ``addresses`` inside ``ns`` with ``zone`` (idempotent: a site
        already served keeps its sockets and only takes the new zone)."""
        with self._lock:
            if self._closed:
                return
            site = self._sites.get(key)
            if site is not None and site.addresses == tuple(addresses) and site.ns is ns:
                site.zone = zone  # one reference swap, read by the DNS thread
                return
        if site is not None:
            self.stop(key)
        udp, tcp = ns.call(lambda: _sockets(addresses))
        site = _Site(key, zone, ns, tuple(addresses), udp)
        site.bucket.tokens = self.rate * SITE_RATE_FACTOR
        try:
            self._call(self._start_site, site, tcp)
        except BaseException:
            for s in (*udp, *tcp):
                s.close()
            raise
        with self._lock:
            self._sites[key] = site

    def set_zone(self, key: Hashable, zone: Zone) -> None:
        """Replace a served site's zone (nothing if the site is not served)."""
        with self._lock:
            site = self._sites.get(key)
            if site is not None:
                site.zone = zone

    def zone(self, key: Hashable) -> Zone | None:
        with self._lock:
            site = self._sites.get(key)
        return site.zone if site is not None else None

    def sites(self) -> list[Hashable]:
        with self._lock:
            return list(self._sites)

    def stop(self, key: Hashable) -> None:
        """Stop answering for a site (idempotent)."""
        with self._lock:
            site = self._sites.pop(key, None)
        if site is not None and not self._loop.is_closed():
            self._call(self._stop_site, site)

    async def _start_site(self, site: _Site, tcp: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for sock in site.udp:
            loop.add_reader(sock.fileno(), self._udp_ready, site, sock)
        for sock in tcp:

            async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter, site: _Site = site) -> None:
                await self._tcp_client(site, r, w)

            site.servers.append(await asyncio.start_server(handle, sock=sock))

    async def _stop_site(self, site: _Site) -> None:
        loop = asyncio.get_running_loop()
        for sock in site.udp:
            loop.remove_reader(sock.fileno())
            sock.close()
        for server in site.servers:
            server.close()
        # Accepted connections are sockets in the site's namespace too: they go with it.
        for writer in list(site.tcp):
            writer.transport.abort()

    # -- UDP --------------------------------------------------------------------------------------

    def _udp_ready(self, site: _Site, sock: socket.socket) -> None:
        for _ in range(_UDP_BATCH):
            try:
                data, peer = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not site.admit(peer[0], self.rate):
                self.stats.dropped += 1
                continue
            reply = self._handle(site, data, peer, sock, tcp=False)
            if reply is not None:
                with contextlib.suppress(OSError):
                    sock.sendto(reply, peer)

    # -- TCP --------------------------------------------------------------------------------------

    async def _tcp_client(
        self, site: _Site, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) else "?"
        mine = sum(1 for s in site.tcp.values() if s == source)
        if len(site.tcp) >= MAX_TCP_CONNECTIONS or mine >= MAX_TCP_PER_SOURCE:
            writer.transport.abort()
            return
        site.tcp[writer] = source
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_S)
                data = await asyncio.wait_for(reader.readexactly(struct.unpack("!H", head)[0]), TCP_IDLE_S)
                if not site.admit(source, self.rate):
                    self.stats.dropped += 1
                    continue
                request = _parse(data)
                if request is None:
                    return
                reply = self._answer(site, request, tcp=True)
                if reply is None:
                    reply = await self._forward(site, request, source, tcp=True)
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            site.tcp.pop(writer, None)
            writer.transport.abort()

    # -- answering --------------------------------------------------------------------------------

    def _handle(self, site: _Site, data: bytes, peer: Any, sock: socket.socket, *, tcp: bool) -> bytes | None:
        request = _parse(data)
        if request is None:
            self.stats.dropped += 1
            return _formerr(data)
        reply = self._answer(site, request, tcp=tcp)
        if reply is not None:
            return reply
        task = self._loop.create_task(self._forward_udp(site, request, peer, sock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    def _answer(self, site: _Site, request: dns.message.Message, *, tcp: bool) -> bytes | None:
        """The reply from the site's zone, or None: forward it."""
        response = dns.message.make_response(request)
        response.flags |= dns.flags.RA
        if request.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return _wire(response, request, tcp)
        if len(request.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return _wire(response, request, tcp)
        question = request.question[0]
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return _wire(response, request, tcp)
        answer = site.zone.lookup(question.name.to_text(), dns.rdatatype.to_text(question.rdtype))
        if answer.outcome is Outcome.FORWARD:
            return None
        self.stats.answered += 1
        _fill(response, question.name, answer)
        return _wire(response, request, tcp)

    async def _forward_udp(
        self, site: _Site, request: dns.message.Message, peer: Any, sock: socket.socket
    ) -> None:
        reply = await self._forward(site, request, str(peer[0]), tcp=False)
        with contextlib.suppress(OSError):
            sock.sendto(reply, peer)

    async def _forward(self, site: _Site, request: dns.message.Message, source: str, *, tcp: bool) -> bytes:
        response = dns.message.make_response(request)
        response.flags |= dns.flags.RA
        mine = site.source_inflight.get(source, 0)
        if (
            self._inflight >= self.max_inflight
            or site.inflight >= self.per_site_inflight
            or mine >= self.per_source_inflight
        ):
            self.stats.servfail += 1
            response.set_rcode(dns.rcode.SERVFAIL)
            return _wire(response, request, tcp)
        self._inflight += 1
        site.inflight += 1
        site.source_inflight[source] = mine + 1
        try:
            question = request.question[0]
            query = dns.message.make_query(question.name, question.rdtype, question.rdclass, use_edns=0)
            query.flags |= dns.flags.RD if request.flags & dns.flags.RD else 0
            for upstream in self.upstreams:
                try:
                    # UDP, then TCP if the answer is truncated (whichever way the client asked).
                    got, _ = await dns.asyncquery.udp_with_fallback(
                        query, str(upstream.address), timeout=self.timeout_s, port=upstream.port
                    )
                except (dns.exception.DNSException, OSError, EOFError):
                    continue
                self.stats.forwarded += 1
                response.set_rcode(got.rcode())
                response.answer = got.answer
                response.authority = got.authority
                return _wire(response, request, tcp)
            self.stats.servfail += 1
            response.set_rcode(dns.rcode.SERVFAIL)
            return _wire(response, request, tcp)
        finally:
            self._inflight -= 1
            site.inflight -= 1
            left = site.source_inflight.pop(source) - 1
            if left:
                site.source_inflight[source] = left

    # -- teardown ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every site and the DNS thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sites, self._sites = list(self._sites.values()), {}
        for site in sites:
            with contextlib.suppress(concurrent.futures.CancelledError, RuntimeError):
                self._call(self._stop_site, site)

        async def cancel() -> None:
            # Forwarded queries still waiting on an upstream: cancelled, and waited for (a task
            # left pending when the loop closes is destroyed with an error in the log).
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=self.timeout_s) if tasks else None

        with contextlib.suppress(RuntimeError):
            self._call(cancel)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    def __repr__(self) -> str:
        return f"<DnsServer sites={len(self._sites)} upstreams={[str(u) for u in self.upstreams]}>"


def _sockets(addresses: Sequence[IPv4Address]) -> tuple[list[socket.socket], list[socket.socket]]:
    """UDP and TCP sockets on port 53 of each address (run inside the site's namespace)."""
    udp: list[socket.socket] = []
    tcp: list[socket.socket] = []
    try:
        for address in addresses:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.append(u)
            u.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
            u.bind((str(address), PORT))
            u.setblocking(False)
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.append(t)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
            t.bind((str(address), PORT))
            t.listen(128)
            t.setblocking(False)
    except BaseException:
        for s in (*udp, *tcp):
            s.close()
        raise
    return udp, tcp


def _parse(data: bytes) -> dns.message.Message | None:
    """The query in ``data``, or None: malformed, or not a query (a response sent to port 53 is
    never answered: answering one would let a spoofed source bounce packets between two servers,
    or two addresses of one site, for ever)."""
    try:
        message = dns.message.from_wire(data)
    except Exception:  # noqa: BLE001 - any malformed packet: dnspython raises many kinds
        return None
    return None if message.flags & dns.flags.QR else message


def _formerr(data: bytes) -> bytes | None:
    """FORMERR for a packet whose header is readable (and is a query), else nothing."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    # id, QR + the query's opcode and RD, RA, rcode 1 (FORMERR), no records.
    flags = 0x8000 | (data[2] & 0x79) << 8 | 0x80 | 1
    return struct.pack("!HHHHHH", struct.unpack("!H", data[:2])[0], flags, 0, 0, 0, 0)


def _fill(response: dns.message.Message, name: dns.name.Name, answer: Answer) -> None:
    if answer.outcome is Outcome.NXDOMAIN:
        response.set_rcode(dns.rcode.NXDOMAIN)
        return
    if answer.outcome is Outcome.REFUSE:
        response.set_rcode(dns.rcode.REFUSED)
        return
    response.flags |= dns.flags.AA
    if answer.addresses:
        response.answer.append(
            dns.rrset.from_text(name, answer.ttl, "IN", "A", *[str(a) for a in answer.addresses])
        )
    if answer.pointer is not None:
        response.answer.append(dns.rrset.from_text(name, answer.ttl, "IN", "PTR", answer.pointer + "."))


def _wire(response: dns.message.Message, request: dns.message.Message, tcp: bool) -> bytes:
    limit = 65535 if tcp else max(512, request.payload if request.edns >= 0 else 512)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer, response.authority, response.additional = [], [], []
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=limit)
