"""The way out of lamina's namespaces: the uplink ("the internet"), the edge namespace between it
and every VPC, and the default network of functions without a VPC.

The shape (addresses in ``domain.dataplane`` and ``domain.edge``, all from ``LINK_BLOCK``)::

    uplink namespace (the host's, or a named one in tests)
        | lmup<tag>  169.254.168.10/30            routes: each Elastic IP in force (/32) via the edge
        | uplink0    169.254.168.9/30
    edge namespace (one per server, held by fd)   routes: default via the uplink; each Elastic IP via
        | lmi<hash>  169.254.168.1/32 (every VPC)         its VPC's link
        | igw0       169.254.168.2/32 (every VPC's router; made by ``net.vpc`` through :meth:`connect`)
    ...
        | default0   169.254.168.5/30
        | eth0       169.254.168.6/30
    default network namespace (held by fd)        environments of functions without a VPC attach
                                                  here (``net.attach``), as VPC functions do to
                                                  their Hyperplane interface's namespace

Facts this relies on (Linux 6.x):
- The uplink is entered like any namespace (``setns`` on a helper thread): the host's own is the
  server's ``/proc/self/ns/net``; a named one is the file ``ip netns add`` bind-mounts under
  ``/run/netns``. lamina only holds it open; it never creates, deletes or renames it, and in it
  touches only its veth end (with the /32 routes through it, which go with the link) and its
  own nftables table ``inet lamina_uplink_<tag>``: a masquerade of lamina's own sources (the
  edge's address, which the default network leaves as, and the Elastic IP pool) when they leave
  by another link, so that in production they reach the internet as the host, without the pool
  having to be routed to it. It never changes the uplink's sysctls: in host mode
  ``net.ipv4.ip_forward`` must already be 1 for anything to go further than the host itself.
- Egress limits: nothing lamina forwards may reach a private destination (RFC 1918,
  100.64.0.0/10, 169.254.0.0/16, loopback, multicast) through the uplink, nor, with the host as
  the uplink, any address of the host itself, unless the operator allows it
  (``--allow-egress-to``): a Lambda function never reaches the machine it runs on or its LAN.
  The check sits in lamina's own table in the uplink, at ``prerouting`` before the host's DNAT
  (``domain.edge.render_egress_limits``). With ``netns:NAME`` the namespace *is* the
  internet: its own addresses are the internet's hosts, and only the private ranges are refused.
- The edge and default namespaces are held only by fds: if the server dies, they go, and with
  them every veth into them (deleting one end of a veth pair deletes the other), so the link in
  the uplink disappears by itself. Only the uplink's nftables table outlives a crash; the next
  start replaces it (``table; delete table; table {...}`` in one transaction).
- The edge is a stateful border: it forwards new flows only towards the uplink, from a VPC's
  link only when their source is an Elastic IP of that VPC, and from the default network
  (masqueraded to its uplink address); replies return by conntrack, nothing else comes in. An
  interface in a "public" subnet, whose packets leave with its private address, gets nothing.
- In a named uplink the fake internet hosts are local addresses of that namespace: packets to
  them are delivered, not forwarded, so the namespace needs no forwarding and the hosts see the
  real source (an Elastic IP, or the edge's uplink address for the default network).
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import ipaddress
import logging
import os
import re
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from lamina.domain import dataplane as D
from lamina.domain import edge as E
from lamina.domain import endpoints as P
from lamina.linux import NetNamespace, namespaces
from lamina.net import attach, iproute, nftables, sysctl
from lamina.net.commands import DataplaneError, run

log = logging.getLogger("lamina.net")

NETNS_DIR = Path("/run/netns")  # where ``ip netns add`` puts named namespaces
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DEFAULT_NETWORK = {**attach.FORWARDER, "ipv4/conf/default/rp_filter": "0"}


def host_holds(address: str) -> bool:
    """Whether ``address`` is this host's: a loopback address, or one a socket in the server's
    own network namespace can be bound to (a caller from it runs on this host)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if parsed.is_loopback:
        return True
    if parsed.is_unspecified or parsed.is_multicast:
        return False  # bindable, never a peer's source
    family = socket.AF_INET if parsed.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(parsed), 0))
    except OSError:
        return False
    return True


class UplinkKind(enum.Enum):
    HOST = "host"  # the host's own network (production)
    NETNS = "netns"  # a named namespace standing for the internet (tests)
    NONE = "none"  # no way out: internet gateways and the default network are not realised


@dataclass(frozen=True)
class UplinkSpec:
    """``--uplink``: ``host``, ``netns:NAME`` or ``none``."""

    kind: UplinkKind
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> UplinkSpec:
        """``ValueError`` with the reason for anything else."""
        if text in (UplinkKind.HOST.value, UplinkKind.NONE.value):
            return cls(UplinkKind(text))
        kind, colon, name = text.partition(":")
        if kind == UplinkKind.NETNS.value and colon:
            if not _NAME.fullmatch(name) or name in (".", ".."):
                raise ValueError(f"not a network namespace name: {name!r}")
            return cls(UplinkKind.NETNS, name)
        raise ValueError(f"expected host, none or netns:NAME, got {text!r}")

    @property
    def path(self) -> Path:
        """The namespace file to open."""
        return NETNS_DIR / self.name if self.kind is UplinkKind.NETNS else Path("/proc/self/ns/net")

    def __str__(self) -> str:
        return f"netns:{self.name}" if self.kind is UplinkKind.NETNS else self.kind.value


def open_uplink(spec: UplinkSpec) -> NetNamespace:
    """Hold the uplink namespace open (``DataplaneError`` if it is not a network namespace)."""
    if spec.kind is UplinkKind.NONE:
        raise ValueError("no uplink to open")
    try:
        fd = os.open(spec.path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise DataplaneError(f"cannot open the uplink {spec}: {exc}") from exc
    if os.fstat(fd).st_dev != namespaces.nsfs_device():
        os.close(fd)
        raise DataplaneError(f"the uplink {spec}: {spec.path} is not a network namespace")
    return NetNamespace(fd, str(spec))


def instance_tag(state_dir: Path) -> str:
    """8 hex digits naming this server's objects in the uplink (its link and table)."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]


class Uplink:
    """The uplink, the edge and the default network of one server; :meth:`close` removes them.

    Thread-safe. VPC data planes join the edge with :meth:`connect` / :meth:`disconnect` and say
    which Elastic IPs they answer for with :meth:`set_public`.
    """

    def __init__(
        self,
        spec: UplinkSpec,
        tag: str,
        public_pool: IPv4Network | None = None,
        allow_egress_to: Sequence[IPv4Network] = (),
    ) -> None:
        """``public_pool``: the Elastic IP pool, masqueraded like the default network when it
        leaves the uplink by another link; ``allow_egress_to``: private destinations (or the
        host's own) let through all the same."""
        self.spec = spec
        self.public_pool = public_pool
        self.allow_egress_to = tuple(allow_egress_to)
        self.link = f"lmup{tag}"
        self.table = f"inet lamina_uplink_{tag}"
        self._lock = threading.Lock()
        self._public: dict[str, tuple[IPv4Address, ...]] = {}  # edge link -> Elastic IPs behind it
        self._inbound: dict[str, tuple[IPv4Address, ...]] = {}  # edge link -> interfaces' Elastic IPs
        self._edge_routes: tuple[D.RouterRoute, ...] | None = None
        self._uplink_routes: tuple[D.RouterRoute, ...] | None = None
        # The sets' elements: (public, inbound).
        self._edge_public: (
            tuple[tuple[tuple[str, IPv4Address], ...], tuple[tuple[str, IPv4Address], ...]] | None
        ) = None
        self._closed = False
        self._edge: NetNamespace | None = None
        self._default: NetNamespace | None = None
        self._table_loaded = False
        self.uplink = open_uplink(spec)
        try:
            self._build()
            self._sync()
        except BaseException:
            self.close()
            raise
        if spec.kind is UplinkKind.HOST and self._read_uplink("ipv4/ip_forward") != "1":
            log.warning(
                "net.ipv4.ip_forward is 0 on the host: NAT gateways and functions without a VPC reach "
                "the host itself but nothing beyond it (lamina does not change host settings)"
            )

    def _read_uplink(self, key: str) -> str:
        return self.uplink.call(lambda: Path("/proc/sys/net", key).read_text().strip())

    def _build(self) -> None:
        self._edge = edge = NetNamespace.create("edge")
        sysctl.configure(edge, sysctl.EDGE)
        self._default = default = NetNamespace.create("default-network")
        sysctl.configure(default, DEFAULT_NETWORK)
        # A link of this name is a previous server's on the same state directory: it normally
        # goes with that server's edge, but a server still running elsewhere would keep it.
        with contextlib.suppress(DataplaneError):
            run(self.uplink, ["ip", "link", "del", self.link])
        peer = f"/proc/self/fd/{self.uplink.fd}"
        iproute.batch(
            edge,
            [
                f"link add {E.EDGE_UPLINK_LINK} type veth peer name {self.link} netns {peer}",
                f"address add {E.EDGE_UPLINK_ADDRESS} dev {E.EDGE_UPLINK_LINK}",
                f"link set {E.EDGE_UPLINK_LINK} up",
                f"link add {E.EDGE_DEFAULT_LINK} type veth peer name {E.DEFAULT_LINK} netns /proc/self/fd/{default.fd}",
                f"address add {E.EDGE_DEFAULT_ADDRESS} dev {E.EDGE_DEFAULT_LINK}",
                f"link set {E.EDGE_DEFAULT_LINK} up",
            ],
            pass_fds=[self.uplink.fd, default.fd],
        )
        # IPv4 only, as everything behind it: no IPv6 address, neighbour discovery or router
        # solicitations from lamina's link in the uplink (the setting is the link's own).
        sysctl.configure(self.uplink, {f"ipv6/conf/{self.link}/disable_ipv6": "1"})
        iproute.batch(
            self.uplink, [f"address add {E.UPLINK_ADDRESS} dev {self.link}", f"link set {self.link} up"]
        )
        # lamina's public API addresses (``domain.endpoints``): the edge's own, so a VPC reaches
        # them through its internet gateway as an Elastic IP; and the default network's, so each
        # environment there arrives with its own address (caps count per source).
        public_api = [f"address add {a}/32 dev lo" for a in P.PUBLIC_ADDRESSES]
        iproute.batch(edge, public_api)
        iproute.batch(
            default,
            [
                *public_api,
                f"address add {E.DEFAULT_ADDRESS} dev {E.DEFAULT_LINK}",
                f"link set {E.DEFAULT_LINK} up",
                f"route add default via {E.EDGE_DEFAULT_ADDRESS.ip} dev {E.DEFAULT_LINK}",
            ],
        )
        attach.prepare_forwarder(default)
        self._table_loaded = True  # from here on, close() deletes it (even if loading fails half way)
        nftables.load(
            self.uplink,
            E.render_uplink_ruleset(
                self.table,
                self.link,
                self.public_pool,
                self.allow_egress_to,
                refuse_local=self.spec.kind is UplinkKind.HOST,
            ),
        )

    # -- for VPC data planes ----------------------------------------------------------------------

    @property
    def edge(self) -> NetNamespace:
        if self._edge is None:
            raise ValueError("the uplink is closed")
        return self._edge

    @property
    def default_network(self) -> NetNamespace | None:
        """The namespace environments of functions without a VPC attach to (None once closed)."""
        return self._default

    def connect(self, router: NetNamespace, link: D.InternetLink) -> None:
        """Make a VPC router's link to the edge (``igw0`` there, ``link.edge_link`` here)."""
        with self._lock:
            edge = self.edge
            if link.edge_link in self._public:  # a link left behind: replace it
                self._delete(link.edge_link)
            iproute.batch(
                router,
                [
                    f"link add {link.router_link} group {iproute.LINK_GROUP} type veth peer name {link.edge_link}"
                    f" netns /proc/self/fd/{edge.fd}",
                    f"address add {D.ROUTER_INTERNET_ADDRESS}/32 dev {link.router_link}",
                    f"link set {link.router_link} up",
                ],
                pass_fds=[edge.fd],
            )
            try:
                iproute.batch(
                    edge,
                    [
                        f"address add {D.EDGE_ADDRESS}/32 dev {link.edge_link}",
                        f"link set {link.edge_link} up",
                    ],
                )
            except BaseException:
                with contextlib.suppress(DataplaneError):
                    run(edge, ["ip", "link", "del", link.edge_link])
                raise
            self._public[link.edge_link] = ()

    def set_public(
        self, edge_link: str, addresses: Sequence[IPv4Address], inbound: Sequence[IPv4Address] = ()
    ) -> None:
        """The Elastic IPs a connected VPC answers for: routed to it from the uplink and the edge,
        and let out of it by the edge; ``inbound`` (some of them: interfaces' Elastic IPs) also
        take new flows from the internet, as an instance's public address does."""
        with self._lock:
            if edge_link not in self._public:
                raise ValueError(f"no VPC link {edge_link!r} on the edge")
            self._public[edge_link] = tuple(sorted(set(addresses)))
            self._inbound[edge_link] = tuple(sorted(set(inbound) & set(addresses)))
            self._sync()

    def disconnect(self, edge_link: str) -> None:
        """Remove a VPC's link to the edge (both ends) and the routes to its Elastic IPs; idempotent."""
        with self._lock:
            if self._closed or edge_link not in self._public:
                return
            self._delete(edge_link)
            self._sync()

    def _delete(self, edge_link: str) -> None:
        self._public.pop(edge_link, None)
        self._inbound.pop(edge_link, None)
        if self._edge_routes is not None:  # the kernel drops the routes through the link with it
            self._edge_routes = tuple(r for r in self._edge_routes if r.link != edge_link)
        try:
            run(self.edge, ["ip", "link", "del", edge_link])
        except DataplaneError as exc:
            log.warning("removing the VPC link %s from the edge: %s", edge_link, exc)

    def _sync(self) -> None:
        """Make the edge's routes and rules and the uplink's routes match ``_public``.

        What was installed is remembered (the edge and the link are lamina's alone), so a change
        is one ``ip -batch`` per namespace and one set update; after a failure, or the first time,
        the state is read back from the kernel instead.
        """
        owner: dict[IPv4Address, str] = {}
        for link, addresses in sorted(self._public.items()):
            for address in addresses:
                owner.setdefault(address, link)  # one VPC per Elastic IP (the store sees to it)
        edge_routes = (
            D.RouterRoute(
                D.MAIN_TABLE,
                IPv4Network("0.0.0.0/0"),
                D.RouteAction.GATEWAY,
                "uplink",
                via=E.UPLINK_ADDRESS.ip,
                link=E.EDGE_UPLINK_LINK,
            ),
            *(
                D.RouterRoute(
                    D.MAIN_TABLE,
                    IPv4Network(address),
                    D.RouteAction.INTERFACE,
                    link,
                    via=D.ROUTER_INTERNET_ADDRESS,
                    link=link,
                )
                for address, link in sorted(owner.items())
            ),
        )
        public = tuple((link, address) for address, link in sorted(owner.items()))
        inbound = tuple(
            (link, address)
            for address, link in sorted(owner.items())
            if address in self._inbound.get(link, ())
        )
        uplink_routes = tuple(
            D.RouterRoute(
                D.MAIN_TABLE,
                IPv4Network(address),
                D.RouteAction.INTERFACE,
                "edge",
                via=E.EDGE_UPLINK_ADDRESS.ip,
                link=self.link,
            )
            for address in sorted(owner)
        )
        # Addresses withdrawn stop being routed from the uplink first; addresses added are routed
        # there last, once the edge routes them and lets them through.
        if self._uplink_routes is not None and uplink_routes != self._uplink_routes:
            installed = self._uplink_routes
            keep = {r.destination for r in uplink_routes}
            remaining = tuple(r for r in installed if r.destination in keep)
            if remaining != installed:
                self._uplink_routes = None
                iproute.batch(self.uplink, iproute.route_changes(installed, remaining))
                self._uplink_routes = remaining
        if edge_routes != self._edge_routes:
            installed_edge, self._edge_routes = self._edge_routes, None
            if installed_edge is None:
                iproute.reconcile_routing(self.edge, edge_routes, ())
            else:
                iproute.batch(self.edge, iproute.route_changes(installed_edge, edge_routes))
            self._edge_routes = edge_routes
        if (public, inbound) != self._edge_public:
            loaded, self._edge_public = self._edge_public, None
            if loaded is None:
                nftables.load(self.edge, E.render_edge_ruleset(public, inbound))
            else:
                nftables.load(self.edge, E.render_edge_public(public, inbound))
            self._edge_public = (public, inbound)
        if uplink_routes != self._uplink_routes:
            installed_uplink, self._uplink_routes = self._uplink_routes, None
            if installed_uplink is None:
                iproute.reconcile_link_routes(self.uplink, self.link, uplink_routes)
            else:
                iproute.batch(self.uplink, iproute.route_changes(installed_uplink, uplink_routes))
            self._uplink_routes = uplink_routes

    def public_addresses(self) -> dict[str, tuple[IPv4Address, ...]]:
        with self._lock:
            return dict(self._public)

    # -- teardown -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Remove the link and the table from the uplink, then the edge and the default network
        (and every VPC link with them); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._public.clear()
            self._inbound.clear()
            edge, self._edge = self._edge, None
            default, self._default = self._default, None
            try:
                if edge is not None:
                    # Deleting the edge's end deletes the uplink's, and every route through it.
                    with contextlib.suppress(DataplaneError):
                        run(edge, ["ip", "link", "del", E.EDGE_UPLINK_LINK])
                if self._table_loaded:
                    family, name = self.table.split()
                    try:
                        run(self.uplink, ["nft", "delete", "table", family, name])
                    except DataplaneError as exc:
                        log.warning("removing %s from the uplink %s: %s", self.table, self.spec, exc)
            finally:
                if default is not None:
                    default.close()
                if edge is not None:
                    edge.close()
                self.uplink.close()

    def __repr__(self) -> str:
        return f"<Uplink {self.spec} vpcs={len(self._public)}>"
