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
  network interface goes via its address. Internet and NAT gateways are not realised yet: their
  routes drop (a later step gives them namespaces). Nothing gives a table a default route unless
  the route table has one.
- **Security groups** (EC2 "Security group rules"), as one nftables table ``inet lamina`` in the
  router, hooked at ``forward``: conntrack accepts replies (stateful, both ways); a new flow must
  pass the union of its *source* interface's egress rules and the union of its *destination*
  interface's ingress rules; everything else is dropped. A group peer is a named set of its
  members' addresses. Before anything, a packet's source address must be the address of the link
  it came in on (EC2's source/destination check), so no process in an interface namespace can
  borrow another group's identity. The VPC is IPv4-only, so IPv6 rules have nothing to match and
  IPv6 packets are dropped.

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

from lamina.domain import secgroups as S

TABLE = "inet lamina"  # the nftables table (family and name) the router's rules live in
INNER_LINK = "eth0"  # the veth end inside an interface's namespace
MAIN_TABLE = 254  # the kernel's ``main`` routing table
FIRST_ROUTE_TABLE = 100  # kernel tables for route tables are numbered from here
FIRST_RULE_PRIORITY = 1000  # ``ip rule`` priorities for subnets, below ``main`` (32766)
ROUTE_PROTOCOL = 252  # rtnetlink protocol tag of everything lamina installs (not an IANA value)
_LINK_PREFIX = "lmv"  # router-side veth names: "lmv" + 12 hex digits = 15, IFNAMSIZ - 1

# Interfaces realised by something else: a NAT gateway's interface belongs to its namespace.
_NOT_HOSTS = frozenset({"nat_gateway"})
_ID = re.compile(r"[a-z]+-[0-9A-Za-z]+")  # ids become nft identifiers: keep them plain


class RouteAction(enum.Enum):
    """What the router does with traffic matching a route."""

    CONNECTED = "connected"  # an interface's own address: out of its link
    LOCAL = "local"  # a route table's local route: continue in ``main`` (``throw``)
    BLACKHOLE = "blackhole"  # dropped (EC2 ``State: blackhole``, or no such address)
    INTERFACE = "interface"  # via a network interface's address (a route targeting an ENI)
    GATEWAY = "gateway"  # an internet or NAT gateway: not realised yet, so dropped


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

    @property
    def link_key(self) -> tuple[object, ...]:
        """What the links and addresses depend on: if it changes, the interface is rebuilt."""
        return (self.subnet_id, self.address, self.gateway, self.router_link, self.inner_link, self.mac)


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
    interfaces: tuple[InterfacePlan, ...]
    routes: tuple[RouterRoute, ...]
    source_rules: tuple[SourceRule, ...]
    group_members: tuple[tuple[str, tuple[IPv4Address, ...]], ...]
    filters: tuple[InterfaceFilter, ...]
    ruleset: str = field(repr=False)  # an ``nft -f`` script replacing the table atomically

    def interface(self, eni_id: str) -> InterfacePlan:
        for interface in self.interfaces:
            if interface.eni_id == eni_id:
                return interface
        raise KeyError(eni_id)

    @property
    def routing(self) -> tuple[tuple[RouterRoute, ...], tuple[SourceRule, ...]]:
        return self.routes, self.source_rules


# -- names ----------------------------------------------------------------------------------------


def router_link_name(eni_id: str) -> str:
    """The router-side veth of an interface: 15 characters (IFNAMSIZ - 1), stable for the id."""
    return _LINK_PREFIX + hashlib.sha256(eni_id.encode()).hexdigest()[:12]


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
    number: int, table: Mapping[str, Any], addresses: Mapping[str, InterfacePlan]
) -> list[RouterRoute]:
    out = []
    for item in table.get("Routes", []):
        text = item.get("DestinationCidrBlock")
        if not text:
            continue  # IPv6 and prefix-list destinations: nothing to route in an IPv4-only VPC
        destination = IPv4Network(text)
        eni_id = item.get("NetworkInterfaceId")
        target = item.get("GatewayId") or item.get("NatGatewayId") or eni_id or ""
        if item.get("State") == "blackhole":
            out.append(RouterRoute(number, destination, RouteAction.BLACKHOLE, target))
        elif item.get("GatewayId") == "local":
            out.append(RouterRoute(number, destination, RouteAction.LOCAL, "local"))
        elif eni_id:
            hop = addresses.get(eni_id)
            if hop is None:  # not (yet) realised here: drop rather than fall through
                out.append(RouterRoute(number, destination, RouteAction.BLACKHOLE, eni_id))
            else:
                out.append(
                    RouterRoute(
                        number,
                        destination,
                        RouteAction.INTERFACE,
                        eni_id,
                        via=hop.address.ip,
                        link=hop.router_link,
                    )
                )
        else:
            out.append(RouterRoute(number, destination, RouteAction.GATEWAY, target))
    return out


# -- the plan -------------------------------------------------------------------------------------


def plan_vpc(
    vpc: Mapping[str, Any],
    subnets: Iterable[Mapping[str, Any]],
    security_groups: Iterable[Mapping[str, Any]],
    interfaces: Iterable[Mapping[str, Any]],
    route_tables: Iterable[Mapping[str, Any]],
) -> VpcPlan:
    """The data plane of one VPC from its EC2 state (dicts shaped as EC2's Describe* answers).

    Resources of other VPCs are ignored, so whole-region listings can be passed in. An interface
    in a subnet that is not given is a ``ValueError`` (inconsistent state).
    """
    vpc_id: str = vpc["VpcId"]

    def mine(items: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        return [i for i in items if i.get("VpcId") == vpc_id]

    subnet_by_id = {s["SubnetId"]: s for s in mine(subnets)}
    group_rules = {g["GroupId"]: _rules(g) for g in sorted(mine(security_groups), key=lambda g: g["GroupId"])}

    hosts: list[InterfacePlan] = []
    for eni in sorted(mine(interfaces), key=lambda e: e["NetworkInterfaceId"]):
        if eni.get("InterfaceType") in _NOT_HOSTS:
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
            )
        )
    links = [h.router_link for h in hosts]
    if len(set(links)) != len(links):
        raise ValueError(f"router link names collide in {vpc_id!r}: {links!r}")
    by_eni = {h.eni_id: h for h in hosts}

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
        for h in hosts
    ]
    routes += [RouterRoute(MAIN_TABLE, c, RouteAction.BLACKHOLE, "vpc") for c in cidrs]

    explicit, main = _route_table_of(mine(route_tables))
    tables = {t["RouteTableId"]: t for t in mine(route_tables)}
    subnet_tables = {
        s: rtb for s in subnet_by_id if (rtb := explicit.get(s, main)) is not None and rtb in tables
    }
    numbers = {rtb: FIRST_ROUTE_TABLE + i for i, rtb in enumerate(sorted(set(subnet_tables.values())))}
    for rtb, number in numbers.items():
        routes += _table_routes(number, tables[rtb], by_eni)
    routed = sorted(
        (IPv4Network(subnet_by_id[s]["CidrBlock"]), s, numbers[rtb]) for s, rtb in subnet_tables.items()
    )
    source_rules = tuple(
        SourceRule(FIRST_RULE_PRIORITY + i, block, number, subnet_id)
        for i, (block, subnet_id, number) in enumerate(routed)
    )

    plan_routes = tuple(sorted(routes, key=lambda r: (r.table, r.destination)))
    return VpcPlan(
        vpc_id=vpc_id,
        router=f"{vpc_id}/router",
        cidrs=cidrs,
        interfaces=tuple(hosts),
        routes=plan_routes,
        source_rules=source_rules,
        group_members=group_members,
        filters=filters,
        ruleset=render_ruleset(group_members, filters),
    )


# -- nftables -------------------------------------------------------------------------------------


def _elements(items: Sequence[str]) -> str:
    return f"; elements = {{ {', '.join(items)} }}" if items else ""


def _rule(expression: str, verdict: str) -> str:
    return f"\t\t{expression} {verdict}" if expression else f"\t\t{verdict}"


def render_ruleset(
    group_members: Sequence[tuple[str, Sequence[IPv4Address]]], filters: Sequence[InterfaceFilter]
) -> str:
    """An ``nft -f`` script that replaces table ``inet lamina`` in one transaction.

    ``table`` (creating it if missing), ``delete table`` and the new definition are one
    transaction: the kernel switches from the old rules to the new ones at once, and conntrack
    entries (which are not part of the table) survive, so established flows carry on.
    """
    out = [f"table {TABLE} {{}}", f"delete table {TABLE}", f"table {TABLE} {{"]
    sources = [f'"{f.router_link}" . {f.address}' for f in filters]
    out.append(f"\tset sources {{ type ifname . ipv4_addr{_elements(sources)}; }}")
    for group_id, addresses in group_members:
        out.append(
            f"\tset {set_name(group_id)} {{ type ipv4_addr{_elements([str(a) for a in addresses])}; }}"
        )
    for f in filters:
        # Egress: a matching rule returns to ``forward`` for the ingress check; no match, drop.
        out.append(f"\tchain {_chain(S.Direction.EGRESS, f.eni_id)} {{")
        out += [_rule(m.nft(S.Direction.EGRESS), "return") for m in f.egress]
        out += ["\t\tdrop", "\t}"]
        out.append(f"\tchain {_chain(S.Direction.INGRESS, f.eni_id)} {{")
        out += [_rule(m.nft(S.Direction.INGRESS), "accept") for m in f.ingress]
        out += ["\t\tdrop", "\t}"]
    out += [
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy drop;",
        "\t\tmeta nfproto != ipv4 drop",
        # EC2's source/destination check: a packet's source is the address of the link it came from.
        "\t\tiifname . ip saddr != @sources drop",
        "\t\tct state established,related accept",
        "\t\tct state invalid drop",
    ]
    if filters:
        egress = ", ".join(
            f'"{f.router_link}" : jump {_chain(S.Direction.EGRESS, f.eni_id)}' for f in filters
        )
        ingress = ", ".join(
            f'"{f.router_link}" : goto {_chain(S.Direction.INGRESS, f.eni_id)}' for f in filters
        )
        out += [f"\t\tiifname vmap {{ {egress} }}", f"\t\toifname vmap {{ {ingress} }}"]
    out += [
        "\t}",
        # Nothing in a VPC talks to the router itself.
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy drop;",
        "\t\tct state established,related accept",
        '\t\tiifname "lo" accept',
        "\t}",
        "}",
    ]
    return "\n".join(out) + "\n"


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
