"""The data plane of every VPC on this host, kept equal to the EC2 state in the database.

How changes flow: the EC2 store tells its listeners after each commit; the manager marks the
(account, region, VPC) the change belongs to and returns at once (the request that committed is
not held up). One worker thread takes marked VPCs in turn, reads the VPC's whole state back from
the store, plans it (``domain.dataplane.plan_vpc``) and applies the plan (``net.vpc``). Reading
after the commit makes it "latest wins": a burst of changes to one VPC while the worker is busy
is one more apply, and the state applied is never older than the last event heard.

Which VPCs have a data plane: those with at least one network interface realised as a host
(not a NAT gateway's). A VPC without interfaces carries no traffic, so creating thousands of
empty VPCs costs no namespaces; a VPC loses its data plane with its last interface or when it
is deleted.

Each interface's namespace is also published at ``<state_dir>/netns/<eni-id>`` (a bind mount,
see ``net.published``) for other root processes, such as ``lamina vpc run``.

Restarts and ``lamina vpc run``: a customer's interface (``InterfaceType: interface``, what
``vpc run`` creates) may have a process living in its namespace, which must keep its address when
the server restarts. So:
- a clean stop unpublishes every namespace but those of customer interfaces a process lives in:
  those mounts stay (the namespace keeps only ``lo`` once the router goes);
- a crash leaves every mount;
- a start opens what is published (:func:`net.published.adopt`), and a customer interface still in
  the database is re-attached to its old namespace (a new veth, its address and routes again):
  the process carries on at the same address. Whatever no interface took is unpublished once
  the data plane is rebuilt, so a namespace nobody uses goes with the next start at the latest.

With an uplink (``net.uplink``: the host's network, or a named namespace standing for the
internet), the manager also owns the edge and the default network: a VPC with an attached
internet gateway gets a link to the edge, its ``available`` NAT gateways get namespaces and their
Elastic IPs are routed back to them; functions without a VPC attach to
:meth:`DataplaneManager.default_network`. A detached internet gateway's event names no VPC, so
the manager remembers which VPC each gateway it realised belongs to.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Protocol

from lamina.domain import dns as N
from lamina.domain import endpoints as P
from lamina.domain.dataplane import edge_link_name, plan_vpc
from lamina.linux import NetNamespace, NetNamespaceError, affinity
from lamina.linux.namespaces import namespace_in_use
from lamina.net import iproute, published
from lamina.net.commands import DataplaneError
from lamina.net.dns import DnsServer, Upstream
from lamina.net.uplink import Uplink, UplinkKind, UplinkSpec, instance_tag
from lamina.net.vpc import VpcDataplane

log = logging.getLogger("lamina.net")

Key = tuple[str, str, str]  # (account, region, VpcId)

# The EC2 resource kinds the manager reads (``store.ec2``'s constants, spelled out: net/ does not
# import the store).
_VPC = "vpc"
_SUBNET = "subnet"
_SECURITY_GROUP = "security-group"
_NETWORK_INTERFACE = "network-interface"
_ROUTE_TABLE = "route-table"
_NAT_GATEWAY = "natgateway"
_INTERNET_GATEWAY = "internet-gateway"
_NETWORK_ACL = "network-acl"
_VPC_ENDPOINT = "vpc-endpoint"
_ENDPOINT_INTERFACE = "vpc_endpoint"  # an interface endpoint's network interface
PUBLIC_OWNER = "public"  # the owner of the public API's listeners in the edge
DEFAULT_NETWORK_OWNER = "default-network"  # ... and in the default network (a source: an environment)

# Where lamina's API should listen: (namespace, address, transparent, the VPC endpoints behind it)
# per owner (see ``runtime.public_api.PublicApi.set``; the port is ``domain.endpoints.API_PORT``).
ApiPlaces = Sequence[tuple[NetNamespace, IPv4Address, bool, P.EndpointOrigin | None]]
ApiListeners = Callable[[str, ApiPlaces], None]
_INTERFACE_CREATED = "interface-created"
_NOT_HOSTS = frozenset({"nat_gateway"})  # as domain.dataplane: realised by their gateway

RETRY_FIRST_S = 0.5  # after a failed apply; doubled on each failure, up to RETRY_MAX_S
RETRY_MAX_S = 30.0
RECONCILE_TIMEOUT_S = 120.0


class Ec2Source(Protocol):
    """What the manager needs of the EC2 store (``lamina.store.ec2.Ec2Store``)."""

    @property
    def partition_listeners(self) -> list[Callable[[str, str, str, dict[str, Any]], None]]: ...

    def list_resources(
        self, account: str, region: str, kind: str, *, vpc_id: str | None = None
    ) -> list[dict[str, Any]]: ...

    def vpc_locations(self) -> list[tuple[str, str, str]]: ...

    def vpc_dns(
        self, account: str, region: str, vpc_id: str
    ) -> tuple[N.VpcDnsAttributes, N.DhcpSettings] | None: ...


#: The hook that adds names to the Amazon DNS server's answers (see :class:`DataplaneManager`):
#: called with (account, region, VpcId) for a VPC, or None for the default network; returns
#: fully qualified names (no trailing dot; ``*.name`` for a wildcard) and their IPv4 addresses.
ExtraRecords = Callable[[Key | None], Mapping[str, Sequence[IPv4Address]]]
DEFAULT_SITE = ("", "", "default-network")  # the DNS site of the default network


@dataclass
class Stats:
    """Counters, and the latency from a change being heard to it being in force."""

    syncs: int = 0  # VPC states read and planned
    applies: int = 0  # plans that changed the kernel
    failures: int = 0
    last_latency_s: float = 0.0
    max_latency_s: float = 0.0


def _vpc_ids(obj: Mapping[str, Any]) -> set[str]:
    """The VPCs an event's object belongs to (an internet gateway names them in its attachments)."""
    found = {obj["VpcId"]} if isinstance(obj.get("VpcId"), str) and obj["VpcId"] else set()
    for attachment in obj.get("Attachments") or ():
        if isinstance(attachment, Mapping) and attachment.get("VpcId"):
            found.add(str(attachment["VpcId"]))
    return found


class DataplaneManager:
    """Keeps a :class:`VpcDataplane` per (account, region, VPC) in step with the EC2 store.

    Thread-safe. :meth:`close` removes every namespace, link, rule and published file it made.
    """

    def __init__(
        self,
        ec2: Ec2Source,
        state_dir: Path,
        uplink: UplinkSpec | None = None,
        public_pool: IPv4Network | None = None,
        dns_upstreams: Sequence[Upstream] | None = None,
        extra_records: ExtraRecords | None = None,
        allow_egress_to: Sequence[IPv4Network] = (),
        api_listeners: ApiListeners | None = None,
    ) -> None:
        """``uplink``: the way out (None or ``none``: no internet gateway, NAT gateway or default
        network is realised), ``public_pool`` the Elastic IP pool, ``allow_egress_to`` private
        destinations the uplink lets through all the same. An uplink that cannot be set up is
        logged and left out.

        ``dns_upstreams``: where every VPC's Amazon DNS server (``net.dns``) forwards public names
        (None: no DNS server at all). ``extra_records``: more names it answers, per VPC and for the
        default network (:data:`ExtraRecords`); asked on every sync of a VPC (any change the EC2
        store tells of, in that VPC) and by :meth:`refresh_dns`. ``api_listeners``: told where
        lamina's API listens (its public addresses, VPC endpoints: :data:`ApiListeners`)."""
        self._ec2 = ec2
        self._api_listeners = api_listeners
        self._api_owners: set[str] = set()
        self.dns: DnsServer | None = DnsServer(dns_upstreams) if dns_upstreams is not None else None
        self._extra_records = extra_records
        # (account, region, VpcId) -> the resolv.conf its DHCP option set hands out, as of its last sync.
        self._resolv: dict[Key, str] = {}
        self.netns_dir = state_dir / "netns"
        self.uplink: Uplink | None = None
        if uplink is not None and uplink.kind is not UplinkKind.NONE:
            try:
                self.uplink = Uplink(uplink, instance_tag(state_dir), public_pool, allow_egress_to)
            except (DataplaneError, NetNamespaceError, OSError) as exc:
                log.error("no way out of the VPCs and the default network (uplink %s): %s", uplink, exc)
        # (account, region, igw) -> the VPC it was realised for (a detach event names no VPC).
        self._gateways: dict[tuple[str, str, str], Key] = {}
        self._cond = threading.Condition()
        self._dirty: dict[Key, float] = {}  # VPC -> when the oldest change not yet applied was heard
        self._retry: dict[Key, tuple[float, float]] = {}  # VPC -> (when to retry, next delay)
        self._busy: Key | None = None
        self._planes: dict[Key, VpcDataplane] = {}
        self._published: dict[str, tuple[Key, int, bool]] = {}  # eni -> (its VPC, inode, kept)
        # eni -> fd: namespaces a previous server left published (kept interfaces a process lives
        # in, or anything after a crash), to re-attach rather than replace; see :meth:`start`.
        self._adopted: dict[str, int] = {}
        # (account, region, eni) -> its namespace, as of the last sync of its VPC: lookups never
        # wait for an apply in progress.
        self._namespaces: dict[tuple[str, str, str], tuple[Key, NetNamespace]] = {}
        # VPCs across nodes (docs/overlay.md): ``home`` tells whether this node is a VPC's home
        # (claiming it when it has none, or a dead one); None: every VPC is homed here (one node).
        # ``_routers``: VPCs homed elsewhere whose router namespace this node's environments need.
        self.home: Callable[[Key], bool] | None = None
        self._routers: set[Key] = set()
        self._closed = False
        self.stats = Stats()
        self._worker = threading.Thread(target=self._run, name="lamina-dataplane")

    def start(self) -> None:
        """Listen to the EC2 store, start applying, and rebuild every VPC's data plane from the
        database (the supervisor calls this before anything may change EC2 state). Namespaces a
        crashed server left published are swept first."""
        self._adopted = published.adopt(self.netns_dir)
        if self._adopted:
            log.info("found %d published namespaces in %s", len(self._adopted), self.netns_dir)
        self._serve_default_network()
        self._ec2.partition_listeners.append(self._heard)
        uplink = self.uplink
        if uplink is not None and uplink.default_network is not None:
            self._listen(PUBLIC_OWNER, [(uplink.edge, a, False, None) for a in P.PUBLIC_ADDRESSES])
            self._listen(
                DEFAULT_NETWORK_OWNER, [(uplink.default_network, a, False, None) for a in P.PUBLIC_ADDRESSES]
            )
        self._worker.start()
        if not self.reconcile_all():
            log.warning("the VPC data plane is still being rebuilt from the database")
            return
        with self._cond:
            if self._retry:  # a VPC whose interfaces may still want their namespaces
                return
        self._release_adopted()

    def _adopt(self, eni_id: str) -> NetNamespace | None:
        """A reference of its own to the namespace a previous server published for ``eni_id``."""
        with self._cond:
            fd = self._adopted.get(eni_id)
            return None if fd is None else NetNamespace(os.dup(fd), eni_id)

    def _release_adopted(self, names: Collection[str] | None = None) -> None:
        """Drop the references to adopted namespaces (``names``, or all); an adopted namespace that
        no interface took is unpublished, so it goes (unless a process lives in it)."""
        with self._cond:
            chosen = list(self._adopted) if names is None else [n for n in names if n in self._adopted]
            fds = [(n, self._adopted.pop(n)) for n in chosen]
            mine = set(self._published)
        for name, fd in fds:
            os.close(fd)
            if name not in mine:
                log.info("removing the stale published namespace %s", name)
                self._unpublish(name)

    # -- hearing of changes -----------------------------------------------------------------------

    def _heard(self, account: str, region: str, event: str, obj: dict[str, Any]) -> None:
        """A store listener: runs on the committing thread, so it only marks and returns."""
        now = time.monotonic()
        with self._cond:
            if self._closed:
                return
            marked = False
            vpc_ids = _vpc_ids(obj)
            igw = obj.get("InternetGatewayId")
            if isinstance(igw, str) and (owner := self._gateways.get((account, region, igw))) is not None:
                vpc_ids.add(owner[2])
            for vpc_id in vpc_ids:
                key = (account, region, vpc_id)
                # Without a data plane, a VPC needs one only once a host interface appears.
                if (
                    key in self._planes
                    or key in self._dirty
                    or key in self._retry
                    or key == self._busy
                    or (event == _INTERFACE_CREATED and obj.get("InterfaceType") not in _NOT_HOSTS)
                ):
                    self._dirty.setdefault(key, now)
                    marked = True
            if marked:
                self._cond.notify_all()

    def reconcile_all(self, timeout_s: float = RECONCILE_TIMEOUT_S) -> bool:
        """Rebuild every VPC from the database (idempotent: VPCs already in step change nothing);
        return once done, or False if ``timeout_s`` passed first."""
        now = time.monotonic()
        with self._cond:
            for key in self._ec2.vpc_locations():
                self._dirty.setdefault(key, now)
            # VPCs with a data plane that the database no longer has.
            for key in self._planes:
                self._dirty.setdefault(key, now)
            self._cond.notify_all()
        return self.wait_idle(timeout_s)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every change heard so far is applied (or has failed and awaits its retry)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closed or not (self._dirty or self._busy), timeout_s)

    # -- the worker -------------------------------------------------------------------------------

    def _next(self) -> tuple[Key, float] | None:
        """The next VPC to sync (None once closed); called with the condition held."""
        while not self._closed:
            now = time.monotonic()
            for key, (at, _) in list(self._retry.items()):
                if at <= now:
                    self._dirty.setdefault(key, now)
            if self._dirty:
                key = next(iter(self._dirty))
                return key, self._dirty.pop(key)
            waits = [at - now for at, _ in self._retry.values()]
            self._cond.wait(timeout=min(waits) if waits else None)
        return None

    def _run(self) -> None:
        affinity.release_thread()  # started from a pinned I/O worker: nft and ip may use any CPU
        while True:
            with self._cond:
                item = self._next()
                if item is None:
                    return
                key, heard = item
                self._busy = key
            try:
                self._sync(key)
            except Exception as exc:  # noqa: BLE001 - logged; retried with backoff
                with self._cond:
                    self.stats.failures += 1
                    delay = self._retry.get(key, (0.0, RETRY_FIRST_S))[1]
                    self._retry[key] = (time.monotonic() + delay, min(delay * 2, RETRY_MAX_S))
                level = logging.WARNING if isinstance(exc, DataplaneError | ValueError) else logging.ERROR
                log.log(
                    level,
                    "data plane of %s/%s/%s: %s (retry in %.1f s)",
                    *key,
                    exc,
                    delay,
                    exc_info=level == logging.ERROR,
                )
            else:
                with self._cond:
                    self._retry.pop(key, None)
                    latency = time.monotonic() - heard
                    self.stats.last_latency_s = latency
                    self.stats.max_latency_s = max(self.stats.max_latency_s, latency)
            finally:
                with self._cond:
                    self._busy = None
                    self._cond.notify_all()

    def _sync(self, key: Key) -> None:
        """Make one VPC's data plane match the database (runs on the worker only)."""
        account, region, vpc_id = key
        self.stats.syncs += 1
        read = self._ec2.list_resources
        all_interfaces = read(account, region, _NETWORK_INTERFACE, vpc_id=vpc_id)
        interfaces = [i for i in all_interfaces if i.get("InterfaceType") not in _NOT_HOSTS]
        kinds = {str(i.get("NetworkInterfaceId")): i.get("InterfaceType") for i in interfaces}
        # Homed on another node (docs/overlay.md): nothing here but, while this node's environments
        # need it, the VPC's router namespace for their tunnel.
        router_only = False
        if interfaces and self.home is not None and not self.home(key):
            with self._cond:
                wanted = key in self._routers
            if not wanted:
                self._drop(key)
                return
            router_only = True
        vpcs = read(account, region, _VPC, vpc_id=vpc_id) if interfaces else []
        if not vpcs:
            self._drop(key)
            return
        # Separate reads may straddle a commit; an inconsistent mix raises ValueError and is retried,
        # and the commit in between has marked the VPC again anyway.
        uplink = self.uplink
        dns_settings = self._ec2.vpc_dns(account, region, vpc_id)
        if dns_settings is None:
            self._drop(key)
            return
        attributes, dhcp = dns_settings
        endpoints = read(account, region, _VPC_ENDPOINT, vpc_id=vpc_id)
        full = uplink is not None and not router_only
        plan = plan_vpc(
            vpcs[0],
            read(account, region, _SUBNET, vpc_id=vpc_id),
            read(account, region, _SECURITY_GROUP, vpc_id=vpc_id),
            [] if router_only else all_interfaces,
            read(account, region, _ROUTE_TABLE, vpc_id=vpc_id),
            read(account, region, _NAT_GATEWAY, vpc_id=vpc_id) if full else (),
            read(account, region, _INTERNET_GATEWAY, vpc_id=vpc_id) if full else (),
            edge_link=edge_link_name(account, region, vpc_id) if full else None,
            network_acls=read(account, region, _NETWORK_ACL, vpc_id=vpc_id),
            dns_support=attributes.support,
            endpoints=[] if router_only else endpoints,
        )
        if not plan.interfaces and not router_only:
            self._drop(key)
            return
        with self._cond:
            if self._closed:
                return
            plane = self._planes.get(key)
        self._set_gateway(key, plan.internet.igw_id if plan.internet is not None else None)
        if plane is None:
            plane = VpcDataplane(plan, uplink, self._adopt)
            with self._cond:
                if self._closed:
                    plane.close()
                    return
                self._planes[key] = plane
            self.stats.applies += 1
        elif plane.apply(plan).changed:
            self.stats.applies += 1
        # Known before any interface is published: `lamina vpc run` asks for it once its namespace is.
        with self._cond:
            self._resolv[key] = (
                N.vpc_resolv_conf(plan.resolver[0], dhcp) if plan.resolver else N.resolv_conf([])
            )
        if router_only:
            # The VPC's DNS server, endpoints and published namespaces are its home's.
            self._listen("/".join(key), [])
            self._set_namespaces(key, {})
            self._publish(key, {})
            if self.dns is not None:
                self.dns.stop(key)
            return
        live = {i.eni_id: plane.interface_namespace(i.eni_id) for i in plan.interfaces}
        self._set_namespaces(key, live)
        self._publish(key, live, {i.eni_id for i in plan.interfaces if i.kept})
        self._release_adopted(live)
        # lamina's API inside the VPC: a gateway endpoint's addresses in the router, an interface
        # endpoint's on each of its interfaces.
        gateways = tuple(
            str(e["VpcEndpointId"])
            for e in endpoints
            if e.get("VpcEndpointType") == P.EndpointType.GATEWAY.value and e.get("RouteTableIds")
        )
        owners = {
            str(eni): str(e["VpcEndpointId"]) for e in endpoints for eni in e.get("NetworkInterfaceIds") or ()
        }

        def origin(*ids: str) -> P.EndpointOrigin:
            return P.EndpointOrigin(account, region, vpc_id, ids)

        places: list[tuple[NetNamespace, IPv4Address, bool, P.EndpointOrigin | None]] = [
            (plane.router_namespace, address, True, origin(*gateways)) for address in plan.endpoint_addresses
        ]
        places += [
            (live[i.eni_id], i.address.ip, False, origin(owners[i.eni_id]) if i.eni_id in owners else None)
            for i in plan.interfaces
            if kinds.get(i.eni_id) == _ENDPOINT_INTERFACE and i.eni_id in live
        ]
        self._listen("/".join(key), places)
        if self.dns is not None and plan.resolver:
            zone = N.Zone.build(
                region,
                [i["PrivateIpAddress"] for i in all_interfaces if i.get("PrivateIpAddress")],
                attributes,
                plan.cidrs,
                self._extra(key),
            )
            self.dns.serve(key, plane.router_namespace, plan.resolver, zone)

    def _extra(self, key: Key | None) -> Mapping[str, Sequence[IPv4Address]]:
        if self._extra_records is None:
            return {}
        try:
            return self._extra_records(key)
        except Exception:  # noqa: BLE001 - another part's hook must not stop the data plane
            log.exception("extra DNS records of %s", key)
            return {}

    def _serve_default_network(self) -> None:
        """The Amazon DNS server of functions without a VPC: 169.254.169.253 in the default network."""
        default = self.default_network()
        if self.dns is None or default is None:
            return
        try:
            iproute.batch(default, [f"address add {N.LINK_LOCAL_RESOLVER}/32 dev lo"])
            self.dns.serve(DEFAULT_SITE, default, (N.LINK_LOCAL_RESOLVER,), self._default_zone())
        except (DataplaneError, OSError) as exc:
            log.error("no DNS server for functions without a VPC: %s", exc)

    def _default_zone(self) -> N.Zone:
        """The default network's zone: no private names (it is no VPC), the extra records."""
        return N.Zone.build("", (), N.VpcDnsAttributes(), (), self._extra(None))

    def refresh_dns(self, key: Key | None = None) -> None:
        """Ask :data:`ExtraRecords` again: for one VPC (a sync of it), or None: the default network
        and every VPC."""
        if key is None:
            if self.dns is not None and self.dns.zone(DEFAULT_SITE) is not None:
                self.dns.set_zone(DEFAULT_SITE, self._default_zone())
            keys = self.vpcs()
        else:
            keys = [key]
        now = time.monotonic()
        with self._cond:
            for k in keys:
                self._dirty.setdefault(k, now)
            self._cond.notify_all()

    def resolv_conf(self, account: str, region: str, vpc_id: str | None) -> str:
        """The ``/etc/resolv.conf`` of an environment: its VPC's (the DHCP option set's servers and
        search domains), or for a function without a VPC the default network's DNS server; with no
        DNS server, one naming none (lookups fail at once: nothing answers on the loopback)."""
        if vpc_id is not None:
            with self._cond:
                found = self._resolv.get((account, region, vpc_id))
            if found is not None:
                return found
            return N.resolv_conf([])
        if self.dns is not None and self.dns.zone(DEFAULT_SITE) is not None:
            return N.resolv_conf([N.LINK_LOCAL_RESOLVER])
        return N.resolv_conf([])

    def _set_namespaces(self, key: Key, live: Mapping[str, NetNamespace]) -> None:
        account, region, _ = key
        with self._cond:
            for name, (owner, _) in list(self._namespaces.items()):
                if owner == key and name[2] not in live:
                    del self._namespaces[name]
            for eni, ns in live.items():
                self._namespaces[(account, region, eni)] = (key, ns)

    def _set_gateway(self, key: Key, igw_id: str | None) -> None:
        account, region, _ = key
        with self._cond:
            for name, owner in list(self._gateways.items()):
                if owner == key and name[2] != igw_id:
                    del self._gateways[name]
            if igw_id is not None:
                self._gateways[(account, region, igw_id)] = key

    def _listen(self, owner: str, places: ApiPlaces) -> None:
        """Tell the API's listeners where ``owner`` wants them (nothing without a listener)."""
        if self._api_listeners is None or (not places and owner not in self._api_owners):
            return
        if places:
            self._api_owners.add(owner)
        else:
            self._api_owners.discard(owner)
        self._api_listeners(owner, places)

    def _drop(self, key: Key) -> None:
        """A VPC without interfaces (or deleted): no data plane."""
        self._listen("/".join(key), [])
        self._set_gateway(key, None)
        self._set_namespaces(key, {})
        self._publish(key, {})
        if self.dns is not None:
            self.dns.stop(key)
        with self._cond:
            plane = self._planes.pop(key, None)
            self._resolv.pop(key, None)
        if plane is not None:
            plane.close()
            self.stats.applies += 1

    def _publish(self, key: Key, live: Mapping[str, NetNamespace], kept: Collection[str] = ()) -> None:
        """Make ``<netns_dir>/<eni>`` the namespaces of exactly ``live``, for this VPC's interfaces
        (``kept``: those that may outlive the server, see :meth:`close`)."""
        for eni, (owner, _, _) in list(self._published.items()):
            if owner == key and eni not in live:
                self._unpublish(eni)
        for eni, ns in live.items():
            inode = os.fstat(ns.fd).st_ino
            entry = (key, inode, eni in kept)
            if self._published.get(eni) == entry:
                continue
            self._published.pop(eni, None)
            # Re-attached: already published by the server before (a ``vpc run`` watching it
            # sees the same namespace throughout).
            if published.published_inode(self.netns_dir, eni) != inode:
                published.publish(self.netns_dir, eni, ns.fd)
            self._published[eni] = entry

    def _unpublish(self, eni: str) -> None:
        self._published.pop(eni, None)
        try:
            published.unpublish(self.netns_dir, eni)
        except DataplaneError as exc:
            log.warning("%s", exc)

    # -- for the Lambda side ----------------------------------------------------------------------

    def interface_namespace(self, account: str, region: str, eni_id: str) -> NetNamespace | None:
        """The namespace of a network interface once its data plane is in force, else None.

        The namespace stays the data plane's: it is closed when the interface goes.
        """
        with self._cond:
            found = self._namespaces.get((account, region, eni_id))
        return None if found is None or found[1].closed else found[1]

    def wait_interface_namespace(
        self, account: str, region: str, eni_id: str, timeout_s: float
    ) -> NetNamespace | None:
        """:meth:`interface_namespace`, waiting up to ``timeout_s`` for the interface to be in force
        (woken by the worker after each sync, no polling)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                found = self.interface_namespace(account, region, eni_id)
                left = deadline - time.monotonic()
                if found is not None or self._closed or left <= 0:
                    return found
                self._cond.wait(left)  # notified after every sync

    def resync(self, keys: Collection[Key] | None = None) -> None:
        """Read these VPCs (None: every VPC with a data plane here) back from the database and
        apply them: changes made through other nodes, which this node's store did not hear."""
        now = time.monotonic()
        with self._cond:
            for key in self._planes if keys is None else keys:
                self._dirty.setdefault(key, now)
            self._cond.notify_all()

    def router_namespace(self, key: Key, timeout_s: float) -> NetNamespace | None:
        """The VPC's router namespace on this node, built (if the VPC is homed elsewhere: the
        router alone, for the tunnel to its home) and kept while this node lives; waits up to
        ``timeout_s`` for it. None if the VPC has no interface (or not in time)."""
        now = time.monotonic()
        with self._cond:
            self._routers.add(key)
            self._dirty.setdefault(key, now)
            self._cond.notify_all()
            deadline = now + timeout_s
            while True:
                plane = self._planes.get(key)
                settled = key not in self._dirty and self._busy != key
                left = deadline - time.monotonic()
                if (plane is not None and settled) or self._closed or left <= 0:
                    break
                if settled and key not in self._retry:
                    break  # synced and dropped: no interface
                self._cond.wait(left)
        if plane is None or plane.router_namespace.closed:
            return None
        return plane.router_namespace

    def default_network(self) -> NetNamespace | None:
        """The namespace environments of functions without a VPC attach to (``net.attach``), or
        None without an uplink: then they have only their loopback."""
        uplink = self.uplink
        return uplink.default_network if uplink is not None else None

    def vpcs(self) -> list[Key]:
        """The VPCs that have a data plane."""
        with self._cond:
            return sorted(self._planes)

    # -- teardown ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening, then remove every VPC's namespaces, links, rules and published files."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        with contextlib.suppress(ValueError):
            self._ec2.partition_listeners.remove(self._heard)
        if self._worker.is_alive():
            self._worker.join()  # finishes the VPC it is on, takes no more
        for owner in list(self._api_owners):
            self._listen(owner, [])
        # A kept interface's namespace a process lives in stays published (the mount holds it):
        # the next start re-attaches it, so ``lamina vpc run`` survives a restart. Anything else
        # goes, so nothing is left of an interface nobody uses.
        kept = {eni: inode for eni, (_, inode, keep) in self._published.items() if keep}
        with self._cond:
            adopted, self._adopted = dict(self._adopted), {}
        for eni, fd in adopted.items():
            kept.setdefault(eni, os.fstat(fd).st_ino)
            os.close(fd)
        for eni in sorted(set(self._published) | set(adopted)):
            inode = kept.get(eni)
            if inode is not None and namespace_in_use(inode):
                log.info("leaving %s published: a process lives in it", eni)
                self._published.pop(eni, None)
                continue
            self._unpublish(eni)
        with self._cond:
            planes, self._planes = list(self._planes.values()), {}
            self._namespaces.clear()
        if self.dns is not None:
            self.dns.close()
        for plane in planes:
            plane.close()
        if self.uplink is not None:
            self.uplink.close()
        with contextlib.suppress(OSError):
            self.netns_dir.rmdir()

    def __repr__(self) -> str:
        return f"<DataplaneManager vpcs={len(self._planes)} published={len(self._published)}>"
