"""A VPC's data plane as a plan (pure): the namespaces, links, routes and nftables rules its EC2
state asks for. ``net/vpc.py`` makes the kernel match a plan; this module only decides.

The shape, and why (the kernel facts are in DESIGN.md "Kernel facts"):

- **Routed, never bridged.** Conntrack on bridged traffic is not available on these kernels and
  AWS's VPC is routed too: every packet goes through the "VPC router". One *router* namespace per
  VPC; every network interface is a namespace of its own, joined to the router by a veth pair.
- **Interface side** (``eth0`` in the interface's namespace): ``PrivateIpAddress/<subnet prefix>``
  added ``noprefixroute``, an on-link route to the gateway and a default route via it. The gateway
  is the subnet's base address + 1, the address EC2 reserves for the VPC router. Without the
  prefix route even same-subnet traffic goes to the router, where security groups are enforced.
- **Router side**: the gateway address as a /32 on every router link of the subnet (Linux allows
  one address on several links; ARP for it is answered on each), a /32 route to each interface's
  address over its link, and a blackhole per VPC block, so an address nobody holds goes nowhere.
- **Route tables** (EC2 "Route tables"): one kernel table per route table in use, chosen by
  ``ip rule from <subnet block>``. The ``local`` route is a ``throw`` route: lookup leaves the table
  and continues in ``main``, where the /32 routes live, so a more specific route in the table
  still wins, as longest prefix match requires. Blackhole routes are blackholes. A route to a
  network interface goes via its address; a route to a NAT gateway via the NAT gateway's
  private address; a route to the VPC's internet gateway out of the router's link to the
  *edge* (below). A target that is not realised here drops its traffic. Nothing gives a table a
  default route unless the route table has one; what no table routes ends in ``main``'s
  ``blackhole`` default and is dropped silently, as in AWS (:func:`unrouted_drops`).
- **Internet gateway** (EC2 "Internet gateways"): when one is attached and the platform has an
  uplink, the router gets one more veth, ``igw0``, into the platform's *edge* namespace (one per
  host, ``net.uplink``), numbered from ``LINK_BLOCK``: the same two link-local addresses on every
  VPC's link, routes ``onlink``. The edge forwards to the uplink only packets whose source is an
  Elastic IP of that VPC's NAT gateways (as an internet gateway translates only public
  addresses): a function, which never has a public address, gets nothing out of it directly.
- **NAT gateways** (EC2 "NAT gateways"): an ``available`` public NAT gateway of a VPC with an
  internet link is a namespace like an interface's, on its private address in its subnet, that
  forwards what the VPC sends it and SNATs it to its Elastic IP; its own default route is its
  subnet's gateway, so what it sends follows its subnet's route table (``ip rule from <EIP>``).
  The router routes the Elastic IP (/32, table ``main``) back to it; conntrack in the NAT
  namespace turns replies back into the VPC. It has no security groups (as in EC2): the router
  lets interfaces' flows (egress rules permitting) into it, lets its own new flows out only to
  the internet link, and lets nothing new come in from either.
- **Security groups** (EC2 "Security group rules"), as one nftables table ``inet lamina`` in the
  router, hooked at ``forward``: conntrack accepts replies (stateful, both ways); a new flow must
  pass the union of its *source* interface's egress rules and the union of its *destination*
  interface's ingress rules; everything else is dropped. A group peer is a named set of its
  members' addresses. Before anything, a packet's source address must be the address of the link
  it came in on (EC2's source/destination check), so no process in an interface namespace can
  borrow another group's identity. The VPC is IPv4-only, so IPv6 rules have nothing to match and
  IPv6 packets are dropped.
- **Network ACLs** (VPC User Guide, "network ACLs"; :mod:`lamina.domain.nacls`): stateless, at
  subnet boundaries. Every packet leaving a subnet by one of its links (interfaces and NAT
  gateways) is judged by its ACL's outbound rules, every packet entering a subnet by the inbound
  rules, in rule-number order, before conntrack accepts replies; traffic staying in a subnet is not
  judged. Their chains and the ``forward`` rules jumping to them are rendered there.

Everything is sorted (interfaces and groups by id, rules in their stored order) so the same state
always renders the same plan, byte for byte: reconciliation compares plans.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from lamina.domain import endpoints as P
from lamina.domain import nacls as N
from lamina.domain import secgroups as S
from lamina.domain.dns import LINK_LOCAL_RESOLVER, resolver_address

TABLE = "inet lamina"  # the nftables table (family and name) the router's rules live in
INNER_LINK = "eth0"  # the veth end inside an interface's namespace
MAIN_TABLE = 254  # the kernel's ``main`` routing table
FIRST_ROUTE_TABLE = 100  # kernel tables for route tables are numbered from here
FIRST_RULE_PRIORITY = 1000  # ``ip rule`` priorities for subnets, below ``main`` (32766)
ROUTE_PROTOCOL = 252  # rtnetlink protocol tag of everything lamina installs (not an IANA value)
FIRST_NAT_RULE_PRIORITY = 900  # ``ip rule from <Elastic IP>``: before the subnets' rules
_LINK_PREFIX = "lmv"  # router-side veth names: "lmv" + 12 hex digits = 15, IFNAMSIZ - 1
_EDGE_PREFIX = "lmi"  # edge-side names of VPCs' internet links: "lmi" + 12 hex digits

# Addresses of lamina's own links between its namespaces (link-local, never a VPC's: EC2 refuses
# 169.254.0.0/16 as a VPC block). ``net.attach`` keeps its environment links out of this block.
LINK_BLOCK = IPv4Network("169.254.168.0/24")
EDGE_ADDRESS = IPv4Address("169.254.168.1")  # the edge, on every VPC's internet link (/32)
ROUTER_INTERNET_ADDRESS = IPv4Address("169.254.168.2")  # a router, on its internet link (/32)
IGW_LINK = "igw0"  # a router's link to the edge

# Interfaces whose namespace a process outside lamina may live in (``lamina vpc run``): kept
# across server restarts. A Lambda interface's users are environments, restarted with the server.
KEPT_INTERFACE_TYPES = frozenset({"interface"})
# Interfaces realised by something else: a NAT gateway's interface belongs to its namespace.
_NOT_HOSTS = frozenset({"nat_gateway"})
_ID = re.compile(r"[a-z]+-[0-9A-Za-z]+")  # ids become nft identifiers: keep them plain


class RouteAction(enum.Enum):
    """What the router does with traffic matching a route."""

    CONNECTED = "connected"  # an interface's own address: out of its link
    LOCAL = "local"  # a route table's local route: continue in ``main`` (``throw``)
    BLACKHOLE = "blackhole"  # dropped (EC2 ``State: blackhole``, or no such address)
    INTERFACE = "interface"  # via an address on a router link (an ENI's or a NAT gateway's)
    GATEWAY = "gateway"  # out of the internet link, via the edge (a route to the internet gateway)
    ENDPOINT = "endpoint"  # a gateway endpoint's prefix list: delivered to the router's own listener


@dataclass(frozen=True)
class RouterRoute:
    """One route in the router namespace: kernel table, destination and what happens."""

    table: int
    destination: IPv4Network
    action: RouteAction
    target_id: str = ""
    via: IPv4Address | None = None
    link: str | None = None
    source: IPv4Address | None = None


@dataclass(frozen=True)
class SourceRule:
    """``ip rule``: traffic from a subnet's block looks up its route table's kernel table."""

    priority: int
    source: IPv4Network
    table: int
    subnet_id: str


class InterfaceKind(enum.Enum):
    """What sits behind a router link."""

    HOST = "host"  # a network interface processes and functions use
    NAT_GATEWAY = "nat_gateway"  # a NAT gateway: forwards, SNATs to its Elastic IP


@dataclass(frozen=True)
class InterfacePlan:
    """One network interface: its namespace, veth pair and addresses."""

    eni_id: str
    subnet_id: str
    address: IPv4Interface  # PrivateIpAddress with the subnet's prefix length
    gateway: IPv4Address  # the subnet's base address + 1
    router_link: str  # the veth end in the router namespace
    inner_link: str  # the veth end in the interface's namespace
    mac: str | None
    group_ids: tuple[str, ...]
    kind: InterfaceKind = InterfaceKind.HOST
    public_ip: IPv4Address | None = None  # a NAT gateway's Elastic IP
    nat_gateway_id: str = ""
    # A customer's interface (``InterfaceType: interface``, what ``lamina vpc run`` uses): its
    # namespace outlives the server while a process lives in it, and is re-attached on start.
    kept: bool = False

    @property
    def link_key(self) -> tuple[object, ...]:
        """What the links and addresses depend on: if it changes, the interface is rebuilt."""
        return (
            self.subnet_id,
            self.address,
            self.gateway,
            self.router_link,
            self.inner_link,
            self.mac,
            self.kind,
            self.public_ip,
        )


@dataclass(frozen=True)
class InternetLink:
    """A VPC's link to the edge, as its attached internet gateway (EC2 shows it as ``igw-...``)."""

    igw_id: str
    edge_link: str  # the veth end in the edge namespace
    public_ips: tuple[IPv4Address, ...]  # Elastic IPs in force: NAT gateways' and interfaces'
    router_link: str = IGW_LINK
    # Elastic IPs of interfaces (not NAT gateways): new flows from the internet may come in to them.
    inbound_ips: tuple[IPv4Address, ...] = ()


@dataclass(frozen=True)
class Match:
    """One security group rule, compiled: protocol, ports, and a peer CIDR or group."""

    protocol: str  # canonical, as secgroups stores it ("-1", "tcp", "udp", "icmp", or a number)
    from_port: int
    to_port: int
    cidr: IPv4Network | None = None
    group_id: str | None = None

    def nft(self, direction: S.Direction) -> str:
        """The nftables match expression (empty when it matches every IPv4 packet)."""
        parts: list[str] = []
        field_ = "saddr" if direction is S.Direction.INGRESS else "daddr"
        if self.group_id is not None:
            parts.append(f"ip {field_} @{set_name(self.group_id)}")
        elif self.cidr is not None and self.cidr.prefixlen > 0:
            parts.append(f"ip {field_} {self.cidr}")
        if self.protocol in (S.TCP, S.UDP):
            if (self.from_port, self.to_port) == (0, S.MAX_PORT):
                parts.append(f"meta l4proto {self.protocol}")
            elif self.from_port == self.to_port:
                parts.append(f"{self.protocol} dport {self.from_port}")
            else:
                parts.append(f"{self.protocol} dport {self.from_port}-{self.to_port}")
        elif self.protocol == S.ICMP:
            if self.from_port == -1:
                parts.append("meta l4proto icmp")
            else:
                parts.append(f"icmp type {self.from_port}")
                if self.to_port != -1:
                    parts.append(f"icmp code {self.to_port}")
        elif self.protocol != S.ALL:
            parts.append(f"meta l4proto {self.protocol}")
        return " ".join(parts)

    def matches(
        self,
        protocol: str,
        port: int | None,
        peer: IPv4Address,
        members: Mapping[str, Collection[IPv4Address]],
        icmp_code: int | None = None,
    ) -> bool:
        """What the rendered rule matches, evaluated here (for tests and explanations)."""
        if self.protocol != S.ALL:
            if self.protocol != S.normalise_protocol(protocol):
                return False
            if self.protocol in (S.TCP, S.UDP) and not (
                port is not None and self.from_port <= port <= self.to_port
            ):
                return False
            if self.protocol == S.ICMP:
                if self.from_port != -1 and port != self.from_port:
                    return False
                if self.to_port != -1 and icmp_code != self.to_port:
                    return False
        if self.group_id is not None:
            return peer in members.get(self.group_id, ())
        assert self.cidr is not None
        return peer in self.cidr


@dataclass(frozen=True)
class InterfaceFilter:
    """The security groups of one interface, compiled: the union of its groups' rules."""

    eni_id: str
    router_link: str
    address: IPv4Address
    egress: tuple[Match, ...]
    ingress: tuple[Match, ...]


@dataclass(frozen=True)
class VpcPlan:
    """Everything the data plane of one VPC consists of."""

    vpc_id: str
    router: str  # the router namespace's name (a label: namespaces are held by fd)
    cidrs: tuple[IPv4Network, ...]
    interfaces: tuple[InterfacePlan, ...]  # hosts: what processes and functions use
    routes: tuple[RouterRoute, ...]
    source_rules: tuple[SourceRule, ...]
    group_members: tuple[tuple[str, tuple[IPv4Address, ...]], ...]
    filters: tuple[InterfaceFilter, ...]
    ruleset: str = field(repr=False)  # an ``nft -f`` script replacing the table atomically
    nat_gateways: tuple[InterfacePlan, ...] = ()  # realised NAT gateways (kind NAT_GATEWAY)
    internet: InternetLink | None = None
    # (Elastic IP, private address) of interfaces with an Elastic IP: the internet gateway's
    # one-to-one translation, done by the router on its internet link.
    elastic_ips: tuple[tuple[IPv4Address, IPv4Address], ...] = ()
    acls: N.AclRuleset | None = None  # network ACLs at subnet boundaries (domain.nacls)
    # The Amazon DNS server's addresses, local to the router (``domain.dns``): the VPC's base + 2
    # and 169.254.169.253. DNS to them is let in only with ``enableDnsSupport`` (``dns``).
    resolver: tuple[IPv4Address, ...] = ()
    dns: bool = False
    # Addresses gateway endpoints deliver to the router itself (lamina's listeners take them).
    endpoint_addresses: tuple[IPv4Address, ...] = ()

    def interface(self, eni_id: str) -> InterfacePlan:
        for interface in (*self.interfaces, *self.nat_gateways):
            if interface.eni_id == eni_id:
                return interface
        raise KeyError(eni_id)

    @property
    def links(self) -> tuple[InterfacePlan, ...]:
        """Every interface with a namespace and a router link: hosts, then NAT gateways."""
        return self.interfaces + self.nat_gateways

    @property
    def routing(self) -> tuple[tuple[RouterRoute, ...], tuple[SourceRule, ...]]:
        return self.routes, self.source_rules


# -- names ----------------------------------------------------------------------------------------


def router_link_name(eni_id: str) -> str:
    """The router-side veth of an interface: 15 characters (IFNAMSIZ - 1), stable for the id."""
    return _LINK_PREFIX + hashlib.sha256(eni_id.encode()).hexdigest()[:12]


def edge_link_name(account: str, region: str, vpc_id: str) -> str:
    """The edge-side veth of a VPC's internet link: 15 characters, stable for the VPC (the edge
    is shared by every account and region)."""
    return _EDGE_PREFIX + hashlib.sha256(f"{account}/{region}/{vpc_id}".encode()).hexdigest()[:12]


def _plain(resource_id: str) -> str:
    if not _ID.fullmatch(resource_id):
        raise ValueError(f"resource id {resource_id!r} cannot name an nftables object")
    return resource_id


def set_name(group_id: str) -> str:
    """The nftables set holding a security group's member addresses."""
    return f"sg_{_plain(group_id)}"


def _chain(direction: S.Direction, eni_id: str) -> str:
    return f"{direction.value}_{_plain(eni_id)}"


# -- reading EC2 shapes ---------------------------------------------------------------------------


def _vpc_cidrs(vpc: Mapping[str, Any]) -> tuple[IPv4Network, ...]:
    blocks = [
        IPv4Network(a["CidrBlock"])
        for a in vpc.get("CidrBlockAssociationSet", [])
        if a.get("CidrBlockState", {}).get("State", "associated") == "associated"
    ]
    return tuple(blocks or [IPv4Network(vpc["CidrBlock"])])


def _rules(group: Mapping[str, Any]) -> tuple[S.Rule, ...]:
    return S.expand_permissions(S.Direction.INGRESS, group.get("IpPermissions", [])) + S.expand_permissions(
        S.Direction.EGRESS, group.get("IpPermissionsEgress", [])
    )


def _compile(rule: S.Rule) -> Match | None:
    """A rule's match, or None when it cannot match anything in an IPv4-only VPC."""
    if rule.cidr_v6 is not None or rule.protocol == S.ICMPV6:
        return None
    return Match(rule.protocol, rule.from_port, rule.to_port, cidr=rule.cidr_v4, group_id=rule.group_id)


def _union(groups: Iterable[Sequence[S.Rule]], direction: S.Direction) -> tuple[Match, ...]:
    found: dict[Match, None] = {}
    for rules in groups:
        for rule in rules:
            if rule.direction is direction and (match := _compile(rule)) is not None:
                found.setdefault(match)
    return tuple(found)


def _route_table_of(tables: Sequence[Mapping[str, Any]]) -> tuple[dict[str, str], str | None]:
    """subnet id -> route table id (explicit associations), and the main route table's id."""
    explicit: dict[str, str] = {}
    main: str | None = None
    for table in tables:
        for association in table.get("Associations", []):
            state = association.get("AssociationState", {}).get("State", "associated")
            if state != "associated":
                continue
            if association.get("Main"):
                main = table["RouteTableId"]
            elif association.get("SubnetId"):
                explicit[association["SubnetId"]] = table["RouteTableId"]
    return explicit, main


def _table_routes(
    number: int,
    table: Mapping[str, Any],
    hops: Mapping[str, InterfacePlan],
    internet: InternetLink | None,
) -> list[RouterRoute]:
    """A route table's routes; ``hops``: interfaces and NAT gateways in force, by the id a route
    names them with (``eni-...``, ``nat-...``)."""
    out = []
    for item in table.get("Routes", []):
        text = item.get("DestinationCidrBlock")
        if not text:
            continue  # IPv6 and prefix-list destinations: nothing to route in an IPv4-only VPC
        destination = IPv4Network(text)
        gateway_id = item.get("GatewayId")
        target = gateway_id or item.get("NatGatewayId") or item.get("NetworkInterfaceId") or ""
        hop = hops.get(target)
        if item.get("State") == "blackhole":
            out.append(RouterRoute(number, destination, RouteAction.BLACKHOLE, target))
        elif gateway_id == "local":
            out.append(RouterRoute(number, destination, RouteAction.LOCAL, "local"))
        elif internet is not None and gateway_id == internet.igw_id:
            out.append(
                RouterRoute(
                    number,
                    destination,
                    RouteAction.GATEWAY,
                    target,
                    via=EDGE_ADDRESS,
                    link=internet.router_link,
                )
            )
        elif hop is not None:
            out.append(
                RouterRoute(
                    number,
                    destination,
                    RouteAction.INTERFACE,
                    target,
                    via=hop.address.ip,
                    link=hop.router_link,
                )
            )
        else:  # not (yet) realised here: drop rather than fall through to a less specific route
            out.append(RouterRoute(number, destination, RouteAction.BLACKHOLE, target))
    return out


def _gateway_endpoint_routes(
    vpc_id: str, endpoints: Iterable[Mapping[str, Any]]
) -> dict[str, list[tuple[IPv4Network, str]]]:
    """Route table id -> (destination, endpoint id) of the gateway endpoints' prefix lists: a
    gateway endpoint's route (EC2 "Gateway endpoints") sends the service's public addresses to the
    endpoint, which here is the router delivering them to lamina's listener."""
    out: dict[str, list[tuple[IPv4Network, str]]] = {}
    for endpoint in sorted(endpoints, key=lambda e: str(e.get("VpcEndpointId"))):
        if (
            endpoint.get("VpcId") != vpc_id
            or endpoint.get("VpcEndpointType") != P.EndpointType.GATEWAY.value
            or endpoint.get("State") != "available"
        ):
            continue
        key = str(endpoint.get("ServiceName", "")).rsplit(".", 1)[-1]
        if key != "s3":
            continue
        for table_id in endpoint.get("RouteTableIds") or ():
            for cidr in P.prefix_list_cidrs(key):
                out.setdefault(str(table_id), []).append((cidr, str(endpoint["VpcEndpointId"])))
    return out


def _attached_gateway(vpc_id: str, gateways: Iterable[Mapping[str, Any]]) -> str | None:
    for gateway in sorted(gateways, key=lambda g: str(g.get("InternetGatewayId"))):
        for attachment in gateway.get("Attachments") or ():
            if attachment.get("VpcId") == vpc_id and attachment.get("State", "available") in (
                "available",
                "attached",
            ):
                return str(gateway["InternetGatewayId"])
    return None


def _nat_plans(
    vpc_id: str,
    nat_gateways: Iterable[Mapping[str, Any]],
    enis: Mapping[str, Mapping[str, Any]],
    subnet_by_id: Mapping[str, Mapping[str, Any]],
) -> list[InterfacePlan]:
    """The NAT gateways to realise: ``available``, public, with their interface and Elastic IP."""
    out = []
    for nat in sorted(nat_gateways, key=lambda n: str(n.get("NatGatewayId"))):
        if (
            nat.get("VpcId") != vpc_id
            or nat.get("State") != "available"
            or nat.get("ConnectivityType", "public") != "public"
        ):
            continue
        primary = [a for a in nat.get("NatGatewayAddresses") or () if a.get("IsPrimary", True)]
        if not primary or not primary[0].get("PublicIp"):
            continue
        eni = enis.get(str(primary[0].get("NetworkInterfaceId")))
        subnet = subnet_by_id.get(str(eni.get("SubnetId"))) if eni is not None else None
        if eni is None or subnet is None:
            continue  # its interface is gone (deleting): nothing to realise
        block = IPv4Network(subnet["CidrBlock"])
        out.append(
            InterfacePlan(
                eni_id=eni["NetworkInterfaceId"],
                subnet_id=subnet["SubnetId"],
                address=IPv4Interface(f"{eni['PrivateIpAddress']}/{block.prefixlen}"),
                gateway=block.network_address + 1,
                router_link=router_link_name(eni["NetworkInterfaceId"]),
                inner_link=INNER_LINK,
                mac=eni.get("MacAddress"),
                group_ids=(),
                kind=InterfaceKind.NAT_GATEWAY,
                public_ip=IPv4Address(primary[0]["PublicIp"]),
                nat_gateway_id=str(nat["NatGatewayId"]),
            )
        )
    return out


# -- the plan -------------------------------------------------------------------------------------

UNROUTED = "unrouted"  # the target id of the router's last-resort route


def unrouted_drops() -> list[RouterRoute]:
    """No route = silent drop, as in a VPC (the sender times out): a ``blackhole`` default route in
    ``main``, where every subnet's lookup ends when its route table has no match. Without it the
    router answers ICMP "network unreachable" and a connect() fails at once. (A forwarded packet
    that meets a ``blackhole`` route is dropped without ICMP; ``unreachable`` and ``prohibit``
    routes, and no route at all, answer with one.)"""
    return [RouterRoute(MAIN_TABLE, IPv4Network("0.0.0.0/0"), RouteAction.BLACKHOLE, UNROUTED)]


def plan_vpc(
    vpc: Mapping[str, Any],
    subnets: Iterable[Mapping[str, Any]],
    security_groups: Iterable[Mapping[str, Any]],
    interfaces: Iterable[Mapping[str, Any]],
    route_tables: Iterable[Mapping[str, Any]],
    nat_gateways: Iterable[Mapping[str, Any]] = (),
    internet_gateways: Iterable[Mapping[str, Any]] = (),
    *,
    edge_link: str | None = None,
    network_acls: Iterable[Mapping[str, Any]] = (),
    dns_support: bool = True,
    endpoints: Iterable[Mapping[str, Any]] = (),
) -> VpcPlan:
    """The data plane of one VPC from its EC2 state (dicts shaped as EC2's Describe* answers).

    ``edge_link``: the name of the VPC's link in the edge namespace when the platform has an
    uplink (:func:`edge_link_name`); without one, internet and NAT gateways are not realised and
    routes to them drop. ``network_acls``: the VPC's network ACLs (DescribeNetworkAcls shapes),
    enforced at the boundaries of the subnets with interfaces (:mod:`lamina.domain.nacls`).
    ``dns_support``: the VPC's ``enableDnsSupport`` (its Amazon DNS server
    answers, see ``domain.dns``).

    Resources of other VPCs are ignored, so whole-region listings can be passed in. An interface
    in a subnet that is not given is a ``ValueError`` (inconsistent state).
    """
    vpc_id: str = vpc["VpcId"]

    def mine(items: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        return [i for i in items if i.get("VpcId") == vpc_id]

    subnet_by_id = {s["SubnetId"]: s for s in mine(subnets)}
    group_rules = {g["GroupId"]: _rules(g) for g in sorted(mine(security_groups), key=lambda g: g["GroupId"])}

    hosts: list[InterfacePlan] = []
    host_public: list[tuple[IPv4Address, IPv4Address]] = []
    nat_enis: dict[str, Mapping[str, Any]] = {}
    for eni in sorted(mine(interfaces), key=lambda e: e["NetworkInterfaceId"]):
        if eni.get("InterfaceType") in _NOT_HOSTS:
            nat_enis[eni["NetworkInterfaceId"]] = eni
            continue
        eni_id = eni["NetworkInterfaceId"]
        subnet = subnet_by_id.get(eni["SubnetId"])
        if subnet is None:
            raise ValueError(f"interface {eni_id!r} is in subnet {eni['SubnetId']!r}, which is not given")
        block = IPv4Network(subnet["CidrBlock"])
        hosts.append(
            InterfacePlan(
                eni_id=eni_id,
                subnet_id=subnet["SubnetId"],
                address=IPv4Interface(f"{eni['PrivateIpAddress']}/{block.prefixlen}"),
                gateway=block.network_address + 1,
                router_link=router_link_name(eni_id),
                inner_link=INNER_LINK,
                mac=eni.get("MacAddress"),
                group_ids=tuple(sorted({g["GroupId"] for g in eni.get("Groups", [])})),
                kept=eni.get("InterfaceType", "interface") in KEPT_INTERFACE_TYPES,
            )
        )
        association = eni.get("Association") or {}
        if association.get("PublicIp"):
            host_public.append((IPv4Address(association["PublicIp"]), IPv4Address(eni["PrivateIpAddress"])))
    igw_id = _attached_gateway(vpc_id, internet_gateways) if edge_link is not None else None
    nats = _nat_plans(vpc_id, nat_gateways, nat_enis, subnet_by_id) if igw_id is not None else []
    # An interface's Elastic IP is realised only with an internet link (as in EC2, where an
    # address is associated only with an internet gateway attached).
    elastic = tuple(sorted(host_public)) if igw_id is not None else ()
    internet = (
        InternetLink(
            igw_id,
            edge_link,
            tuple(sorted({n.public_ip for n in nats if n.public_ip} | {p for p, _ in elastic})),
            inbound_ips=tuple(p for p, _ in elastic),
        )
        if igw_id is not None and edge_link is not None
        else None
    )
    links = [h.router_link for h in (*hosts, *nats)]
    if len(set(links)) != len(links) or IGW_LINK in links:
        raise ValueError(f"router link names collide in {vpc_id!r}: {links!r}")
    hops = {h.eni_id: h for h in hosts} | {n.nat_gateway_id: n for n in nats}

    # Group members: the addresses of this VPC's interfaces in each group, for every group that
    # exists or is named as a peer (a peer group with no member here is an empty set).
    members: dict[str, set[IPv4Address]] = {g: set() for g in group_rules}
    for rules in group_rules.values():
        for rule in rules:
            if rule.group_id is not None:
                members.setdefault(rule.group_id, set())
    for host in hosts:
        for group_id in host.group_ids:
            members.setdefault(group_id, set()).add(host.address.ip)
    group_members = tuple((g, tuple(sorted(members[g]))) for g in sorted(members))

    filters = tuple(
        InterfaceFilter(
            eni_id=h.eni_id,
            router_link=h.router_link,
            address=h.address.ip,
            egress=_union((group_rules.get(g, ()) for g in h.group_ids), S.Direction.EGRESS),
            ingress=_union((group_rules.get(g, ()) for g in h.group_ids), S.Direction.INGRESS),
        )
        for h in hosts
    )

    cidrs = _vpc_cidrs(vpc)
    routes: list[RouterRoute] = [
        RouterRoute(
            MAIN_TABLE,
            IPv4Network(h.address.ip),
            RouteAction.CONNECTED,
            h.eni_id,
            link=h.router_link,
            source=h.gateway,
        )
        for h in (*hosts, *nats)
    ]
    routes += [RouterRoute(MAIN_TABLE, c, RouteAction.BLACKHOLE, "vpc") for c in cidrs]
    routes += unrouted_drops()
    # Replies to a NAT gateway's Elastic IP go back to it, whatever their source.
    routes += [
        RouterRoute(
            MAIN_TABLE,
            IPv4Network(n.public_ip),
            RouteAction.INTERFACE,
            n.nat_gateway_id,
            via=n.address.ip,
            link=n.router_link,
        )
        for n in nats
        if n.public_ip is not None
    ]

    explicit, main = _route_table_of(mine(route_tables))
    tables = {t["RouteTableId"]: t for t in mine(route_tables)}
    subnet_tables = {
        s: rtb for s in subnet_by_id if (rtb := explicit.get(s, main)) is not None and rtb in tables
    }
    numbers = {rtb: FIRST_ROUTE_TABLE + i for i, rtb in enumerate(sorted(set(subnet_tables.values())))}
    endpoint_routes = _gateway_endpoint_routes(vpc_id, endpoints)
    endpoint_addresses: set[IPv4Address] = set()
    for rtb, number in numbers.items():
        table_routes = _table_routes(number, tables[rtb], hops, internet)
        via_endpoint = endpoint_routes.get(rtb, [])
        taken = {destination for destination, _ in via_endpoint}
        routes += [r for r in table_routes if r.destination not in taken]
        for destination, endpoint_id in via_endpoint:
            routes.append(RouterRoute(number, destination, RouteAction.ENDPOINT, endpoint_id))
            endpoint_addresses.update(destination)
    routed = sorted(
        (IPv4Network(subnet_by_id[s]["CidrBlock"]), s, numbers[rtb]) for s, rtb in subnet_tables.items()
    )
    source_rules = [
        SourceRule(FIRST_RULE_PRIORITY + i, block, number, subnet_id)
        for i, (block, subnet_id, number) in enumerate(routed)
    ]
    # What a NAT gateway sends (as its Elastic IP) follows its subnet's route table.
    nat_tables = sorted(
        (n.public_ip, n.subnet_id, numbers[subnet_tables[n.subnet_id]])
        for n in nats
        if n.public_ip is not None and n.subnet_id in subnet_tables
    )
    source_rules += [
        SourceRule(FIRST_NAT_RULE_PRIORITY + i, IPv4Network(ip), number, subnet_id)
        for i, (ip, subnet_id, number) in enumerate(nat_tables)
    ]

    plan_routes = tuple(sorted(routes, key=lambda r: (r.table, r.destination)))
    acls = _plan_acls(vpc_id, network_acls, (*hosts, *nats))
    resolver = (resolver_address(cidrs[0]), LINK_LOCAL_RESOLVER) if cidrs else ()
    return VpcPlan(
        vpc_id=vpc_id,
        router=f"{vpc_id}/router",
        cidrs=cidrs,
        interfaces=tuple(hosts),
        routes=plan_routes,
        source_rules=tuple(sorted(source_rules, key=lambda r: r.priority)),
        group_members=group_members,
        filters=filters,
        ruleset=render_ruleset(
            group_members,
            filters,
            nat_links=tuple(n.router_link for n in nats),
            internet_link=internet.router_link if internet is not None else None,
            elastic_ips=elastic,
            acls=acls,
            resolver=resolver if dns_support else (),
            endpoint_addresses=tuple(sorted(endpoint_addresses)),
        ),
        nat_gateways=tuple(nats),
        internet=internet,
        elastic_ips=elastic,
        acls=acls,
        resolver=resolver,
        dns=dns_support,
        endpoint_addresses=tuple(sorted(endpoint_addresses)),
    )


def _plan_acls(
    vpc_id: str, network_acls: Iterable[Mapping[str, Any]], links: Iterable[InterfacePlan]
) -> N.AclRuleset | None:
    """The VPC's network ACLs, for the subnets its router links are in."""
    by_subnet: dict[str, list[str]] = {}
    for link in links:
        by_subnet.setdefault(link.subnet_id, []).append(link.router_link)
    return N.plan_acls([a for a in network_acls if a.get("VpcId") == vpc_id], by_subnet)


# -- nftables -------------------------------------------------------------------------------------


def nft_elements(items: Sequence[str]) -> str:
    """An nft set's ``elements`` clause for ``items`` ("" for none: nft refuses an empty one)."""
    return f"; elements = {{ {', '.join(items)} }}" if items else ""


def _rule(expression: str, verdict: str) -> str:
    return f"\t\t{expression} {verdict}" if expression else f"\t\t{verdict}"


def _names(links: Iterable[str]) -> str:
    return ", ".join(f'"{link}"' for link in links)


def render_ruleset(
    group_members: Sequence[tuple[str, Sequence[IPv4Address]]],
    filters: Sequence[InterfaceFilter],
    *,
    nat_links: Sequence[str] = (),
    internet_link: str | None = None,
    elastic_ips: Sequence[tuple[IPv4Address, IPv4Address]] = (),
    acls: N.AclRuleset | None = None,
    resolver: Sequence[IPv4Address] = (),
    endpoint_addresses: Sequence[IPv4Address] = (),
) -> str:
    """An ``nft -f`` script that replaces table ``inet lamina`` in one transaction.

    ``table`` (creating it if missing), ``delete table`` and the new definition are one
    transaction: the kernel switches from the old rules to the new ones at once, and conntrack
    entries (which are not part of the table) survive, so established flows carry on.

    Gateways (``nat_links``, ``internet_link``) forward other addresses than their own, so the
    source check does not apply to them; no new flow comes in from them but a NAT gateway's
    towards the internet, and interfaces' flows go to them once their egress rules allow it.

    ``elastic_ips`` ((Elastic IP, private address) pairs) are translated one to one on the
    internet link, as an internet gateway does: what comes in for the Elastic IP goes to the
    private address (and is let in only as that interface's ingress rules allow), what the
    interface sends out of the link leaves as its Elastic IP.

    Network ACLs (``acls``) judge every packet crossing a subnet boundary, replies included
    (stateless), before conntrack and the security groups see it.

    ``resolver``: the Amazon DNS server's addresses, to which the VPC's interfaces may send DNS
    (UDP and TCP port 53) whatever their security groups: "security groups do not filter traffic
    destined to and from the Amazon DNS server" (VPC user guide, security group rules).
    """
    out = [f"table {TABLE} {{}}", f"delete table {TABLE}", f"table {TABLE} {{"]
    sources = [f'"{f.router_link}" . {f.address}' for f in filters]
    out.append(f"\tset sources {{ type ifname . ipv4_addr{nft_elements(sources)}; }}")
    for group_id, addresses in group_members:
        out.append(
            f"\tset {set_name(group_id)} {{ type ipv4_addr{nft_elements([str(a) for a in addresses])}; }}"
        )
    for f in filters:
        # Egress: a matching rule returns to ``forward`` for the ingress check; no match, drop.
        out.append(f"\tchain {_chain(S.Direction.EGRESS, f.eni_id)} {{")
        out += [_rule(m.nft(S.Direction.EGRESS), "return") for m in f.egress]
        out += ["\t\tdrop", "\t}"]
        out.append(f"\tchain {_chain(S.Direction.INGRESS, f.eni_id)} {{")
        out += [_rule(m.nft(S.Direction.INGRESS), "accept") for m in f.ingress]
        out += ["\t\tdrop", "\t}"]
    if acls is not None:
        out += N.render_chains(acls)
    # Gateways are named sets, present whenever the VPC has an internet link: NAT gateways coming
    # and going change set elements only (see :func:`set_updates`).
    gateways = [*nat_links, internet_link] if internet_link else []
    if gateways:
        out.append(f"\tset nat_links {{ type ifname{nft_elements([_names([n]) for n in nat_links])}; }}")
        out.append(f"\tset gateways {{ type ifname{nft_elements([_names([g]) for g in gateways])}; }}")
    # EC2's source/destination check: a packet's source is the address of the link it came from.
    check = "iifname . ip saddr != @sources drop"
    out += [
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy drop;",
        "\t\tmeta nfproto != ipv4 drop",
        f"\t\tiifname != @gateways {check}" if gateways else f"\t\t{check}",
        *(N.render_jumps(acls) if acls is not None else ()),
        "\t\tct state established,related accept",
        "\t\tct state invalid drop",
    ]
    if gateways:
        # A NAT gateway's flows (as its Elastic IP) go out to the internet, nowhere else; nothing
        # new comes in from a gateway.
        out.append(f'\t\tiifname @nat_links oifname "{internet_link}" accept')
        if elastic_ips and filters:
            # New flows to an interface's Elastic IP (translated in ``prerouting``) meet its
            # ingress rules.
            to_hosts = ", ".join(
                f'"{f.router_link}" : goto {_chain(S.Direction.INGRESS, f.eni_id)}' for f in filters
            )
            out.append(f'\t\tiifname "{internet_link}" ct status dnat oifname vmap {{ {to_hosts} }}')
        out.append("\t\tiifname @gateways drop")
    if filters:
        egress = ", ".join(
            f'"{f.router_link}" : jump {_chain(S.Direction.EGRESS, f.eni_id)}' for f in filters
        )
        ingress = ", ".join(
            f'"{f.router_link}" : goto {_chain(S.Direction.INGRESS, f.eni_id)}' for f in filters
        )
        out += [f"\t\tiifname vmap {{ {egress} }}", f"\t\toifname vmap {{ {ingress} }}"]
    if gateways:
        out.append("\t\toifname @gateways accept")
    out.append("\t}")
    if elastic_ips and internet_link:
        out += ["\tchain prerouting {", "\t\ttype nat hook prerouting priority dstnat; policy accept;"]
        out += [
            f'\t\tiifname "{internet_link}" ip daddr {public} dnat ip to {private}'
            for public, private in elastic_ips
        ]
        out += [
            "\t}",
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        ]
        out += [
            f'\t\toifname "{internet_link}" ip saddr {private} snat ip to {public}'
            for public, private in elastic_ips
        ]
        out.append("\t}")
    out += [
        # Nothing in a VPC talks to the router itself, but to a gateway endpoint's listener (the
        # routes decide which subnets get there; the source's egress rules apply, as in EC2).
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy drop;",
    ]
    endpoint_set = ", ".join(str(a) for a in endpoint_addresses)
    acl_jumps = N.render_jumps(acls) if acls is not None and endpoint_addresses else []
    if acl_jumps:
        # A gateway endpoint's traffic crosses its subnet's boundary too: its ACLs judge every
        # packet (stateless), on the way in here and on the way back in ``output``.
        out.append(f"\t\tip daddr {{ {endpoint_set} }} tcp dport {P.API_PORT} {acl_jumps[0].strip()}")
    out += [
        "\t\tct state established,related accept",
        '\t\tiifname "lo" accept',
    ]
    if resolver:
        daddrs = ", ".join(str(a) for a in resolver)
        out.append(
            f"\t\tiifname . ip saddr @sources ip daddr {{ {daddrs} }} meta l4proto {{ tcp, udp }} th dport 53 accept"
        )
    if endpoint_addresses and filters:
        to_endpoint = f"ip daddr {{ {endpoint_set} }} tcp dport {P.API_PORT} iifname . ip saddr @sources"
        egress = ", ".join(
            f'"{f.router_link}" : jump {_chain(S.Direction.EGRESS, f.eni_id)}' for f in filters
        )
        out += [f"\t\t{to_endpoint} iifname vmap {{ {egress} }}", f"\t\t{to_endpoint} accept"]
    out.append("\t}")
    if acl_jumps:
        out += [
            "\tchain output {",
            "\t\ttype filter hook output priority filter; policy accept;",
            f"\t\tip saddr {{ {endpoint_set} }} tcp sport {P.API_PORT} {acl_jumps[1].strip()}",
            "\t}",
        ]
    out.append("}")
    return "\n".join(out) + "\n"


_SET_LINE = re.compile(r"\tset (\S+) \{ type ([^;]+)(?:; elements = \{ (.*) \})?; \}")


def set_updates(old: str, new: str, table: str = TABLE) -> str | None:
    """An ``nft -f`` transaction turning the loaded ruleset ``old`` into ``new`` when they differ
    only in the elements of their sets (added, deleted), else None: replacing a table with base
    chains waits for an RCU grace period (some 15 ms), changing set elements does not."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    if len(old_lines) != len(new_lines):
        return None
    out = []
    for before, after in zip(old_lines, new_lines, strict=True):
        if before == after:
            continue
        was, now = _SET_LINE.fullmatch(before), _SET_LINE.fullmatch(after)
        if was is None or now is None or (was[1], was[2]) != (now[1], now[2]):
            return None
        had = was[3].split(", ") if was[3] else []
        has = now[3].split(", ") if now[3] else []
        gone = [e for e in had if e not in has]
        added = [e for e in has if e not in had]
        if gone:
            out.append(f"delete element {table} {was[1]} {{ {', '.join(gone)} }}")
        if added:
            out.append(f"add element {table} {was[1]} {{ {', '.join(added)} }}")
    return "\n".join(out) + "\n" if out else ""


# -- semantics ------------------------------------------------------------------------------------


def permits(
    plan: VpcPlan,
    source_eni: str,
    destination_eni: str,
    protocol: str,
    port: int | None,
    *,
    icmp_code: int | None = None,
) -> bool:
    """Whether the plan's rules let a new flow from one interface to another (the first packet).

    The source's egress union must match (peer: the destination's address) and the destination's
    ingress union must match (peer: the source's address), as the rendered ruleset does.
    """
    by_eni = {f.eni_id: f for f in plan.filters}
    source, destination = by_eni[source_eni], by_eni[destination_eni]
    members = {g: frozenset(a) for g, a in plan.group_members}
    out_ok = any(m.matches(protocol, port, destination.address, members, icmp_code) for m in source.egress)
    in_ok = any(m.matches(protocol, port, source.address, members, icmp_code) for m in destination.ingress)
    return out_ok and in_ok
