"""Unit tests for lamina.domain.dataplane (the VPC plan) and the pure parts of lamina.net.iproute."""

from __future__ import annotations

import itertools
import random
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

import pytest

from lamina.domain import dataplane as dp
from lamina.domain import edge
from lamina.domain import secgroups as S
from lamina.domain.dataplane import Match, RouteAction, RouterRoute, SourceRule
from lamina.net import iproute
from lamina.net.uplink import UplinkKind, UplinkSpec

VPC = "vpc-0a1b2c3d4e5f60718"
N = IPv4Network
ALL_OUT = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]


def sg(
    group_id: str, ingress: list[dict[str, Any]] | None = None, egress: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "GroupId": group_id,
        "GroupName": group_id,
        "VpcId": VPC,
        "IpPermissions": ingress or [],
        "IpPermissionsEgress": ALL_OUT if egress is None else egress,
    }


def eni(eni_id: str, subnet: str, ip: str, *groups: str, **extra: Any) -> dict[str, Any]:
    return {
        "NetworkInterfaceId": eni_id,
        "VpcId": VPC,
        "SubnetId": subnet,
        "PrivateIpAddress": ip,
        "Groups": [{"GroupId": g, "GroupName": g} for g in groups],
        **extra,
    }


def subnet(subnet_id: str, cidr: str) -> dict[str, Any]:
    return {"SubnetId": subnet_id, "VpcId": VPC, "CidrBlock": cidr}


def rtb(
    rtb_id: str, *routes: dict[str, Any], main: bool = False, subnets: tuple[str, ...] = ()
) -> dict[str, Any]:
    associations: list[dict[str, Any]] = [
        {"SubnetId": s, "AssociationState": {"State": "associated"}} for s in subnets
    ]
    if main:
        associations.append({"Main": True, "AssociationState": {"State": "associated"}})
    local = {"DestinationCidrBlock": "10.20.0.0/16", "GatewayId": "local", "State": "active"}
    return {"RouteTableId": rtb_id, "VpcId": VPC, "Associations": associations, "Routes": [local, *routes]}


REDIS = {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "UserIdGroupPairs": [{"GroupId": "sg-fn"}]}


def state(**overrides: Any) -> dict[str, Any]:
    """The VPC of the privileged tests: db (sg-db, subnet b) takes 6379 from sg-fn; fn and other in a."""
    base: dict[str, Any] = {
        "vpc": {"VpcId": VPC, "CidrBlock": "10.20.0.0/16"},
        "subnets": [subnet("subnet-a", "10.20.1.0/24"), subnet("subnet-b", "10.20.2.0/24")],
        "security_groups": [sg("sg-db", [REDIS]), sg("sg-fn"), sg("sg-other")],
        "interfaces": [
            eni("eni-db", "subnet-b", "10.20.2.10", "sg-db"),
            eni("eni-fn", "subnet-a", "10.20.1.10", "sg-fn"),
            eni("eni-other", "subnet-a", "10.20.1.11", "sg-other"),
        ],
        "route_tables": [rtb("rtb-main", main=True)],
    }
    base.update(overrides)
    return base


def plan(**overrides: Any) -> dp.VpcPlan:
    return dp.plan_vpc(**state(**overrides))


# -- interfaces -----------------------------------------------------------------------------------


def test_interfaces_get_their_address_gateway_and_links() -> None:
    p = plan()
    assert [i.eni_id for i in p.interfaces] == ["eni-db", "eni-fn", "eni-other"]
    db = p.interface("eni-db")
    assert db.address == IPv4Interface("10.20.2.10/24")
    assert db.gateway == IPv4Address("10.20.2.1")
    assert db.inner_link == "eth0"
    assert db.group_ids == ("sg-db",)
    links = [i.router_link for i in p.interfaces]
    assert all(len(name) <= 15 and name.startswith("lmv") for name in links)
    assert len(set(links)) == 3
    assert dp.router_link_name("eni-db") == db.router_link  # deterministic from the id
    assert p.router == f"{VPC}/router"


def test_resources_of_other_vpcs_and_nat_interfaces_are_left_out() -> None:
    other_vpc = {**eni("eni-elsewhere", "subnet-x", "10.9.0.5", "sg-x"), "VpcId": "vpc-other"}
    nat = eni("eni-nat", "subnet-a", "10.20.1.5", InterfaceType="nat_gateway")
    p = plan(interfaces=[*state()["interfaces"], other_vpc, nat])
    assert [i.eni_id for i in p.interfaces] == ["eni-db", "eni-fn", "eni-other"]


def test_interface_in_unknown_subnet_is_an_error() -> None:
    with pytest.raises(ValueError, match="subnet-gone"):
        plan(interfaces=[eni("eni-x", "subnet-gone", "10.20.3.4", "sg-fn")])


def test_same_state_in_any_order_gives_the_same_plan() -> None:
    first = plan()
    shuffled = state()
    rng = random.Random(7)
    for key in ("subnets", "security_groups", "interfaces"):
        rng.shuffle(shuffled[key])
    second = dp.plan_vpc(**shuffled)
    assert second == first
    assert second.ruleset == first.ruleset


# -- the ruleset ----------------------------------------------------------------------------------


def test_ruleset_replaces_the_table_and_holds_sets_and_chains() -> None:
    p = plan()
    text = p.ruleset
    lines = text.splitlines()
    assert lines[:3] == ["table inet lamina {}", "delete table inet lamina", "table inet lamina {"]
    assert "\tset sg_sg-db { type ipv4_addr; elements = { 10.20.2.10 }; }" in lines
    assert "\tset sg_sg-fn { type ipv4_addr; elements = { 10.20.1.10 }; }" in lines
    fn, db = p.interface("eni-fn"), p.interface("eni-db")
    assert f'"{fn.router_link}" . 10.20.1.10' in text  # the source/destination check
    ingress_db = text.split("chain ingress_eni-db {")[1].split("}")[0]
    assert ingress_db.split("\n")[1:-1] == ["\t\tip saddr @sg_sg-fn tcp dport 6379 accept", "\t\tdrop"]
    egress_fn = text.split("chain egress_eni-fn {")[1].split("}")[0]
    assert egress_fn.split("\n")[1:-1] == ["\t\treturn", "\t\tdrop"]
    forward = text.split("chain forward {")[1]
    order = [
        "policy drop",
        "meta nfproto != ipv4 drop",
        "iifname . ip saddr != @sources drop",
        "ct state established,related accept",
        "ct state invalid drop",
        f'"{db.router_link}" : jump egress_eni-db',
        f'"{db.router_link}" : goto ingress_eni-db',
    ]
    positions = [forward.index(item) for item in order]
    assert positions == sorted(positions)


def test_ruleset_without_interfaces_has_no_empty_maps() -> None:
    text = plan(interfaces=[]).ruleset
    assert "vmap" not in text
    assert "\tset sources { type ifname . ipv4_addr; }" in text


def test_referenced_group_without_members_is_an_empty_set() -> None:
    groups = [sg("sg-db", [{**REDIS, "UserIdGroupPairs": [{"GroupId": "sg-nobody"}]}])]
    p = plan(security_groups=groups, interfaces=[eni("eni-db", "subnet-b", "10.20.2.10", "sg-db")])
    assert "\tset sg_sg-nobody { type ipv4_addr; }" in p.ruleset
    assert dict(p.group_members)["sg-nobody"] == ()


def test_union_of_groups_and_duplicates_once() -> None:
    web = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.20.0.0/16"}]}
    groups = [sg("sg-a", [web]), sg("sg-b", [web, REDIS])]
    p = plan(security_groups=groups, interfaces=[eni("eni-x", "subnet-a", "10.20.1.9", "sg-b", "sg-a")])
    (f,) = p.filters
    assert [m.nft(S.Direction.INGRESS) for m in f.ingress] == [
        "ip saddr 10.20.0.0/16 tcp dport 80",
        "ip saddr @sg_sg-fn tcp dport 6379",
    ]
    assert f.egress == (Match("-1", -1, -1, cidr=N("0.0.0.0/0")),)


def test_ipv6_rules_have_nothing_to_match() -> None:
    v6 = [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        {"IpProtocol": "icmpv6", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ]
    p = plan(security_groups=[sg("sg-db", v6)], interfaces=[eni("eni-db", "subnet-b", "10.20.2.10", "sg-db")])
    assert p.filters[0].ingress == ()


@pytest.mark.parametrize(
    ("match", "direction", "expected"),
    [
        pytest.param(
            Match("tcp", 6379, 6379, group_id="sg-fn"),
            "ingress",
            "ip saddr @sg_sg-fn tcp dport 6379",
            id="tcp-port-group",
        ),
        pytest.param(
            Match("tcp", 1000, 2000, cidr=N("10.0.0.0/8")),
            "egress",
            "ip daddr 10.0.0.0/8 tcp dport 1000-2000",
            id="tcp-range-egress",
        ),
        pytest.param(
            Match("udp", 0, 65535, cidr=N("0.0.0.0/0")),
            "ingress",
            "meta l4proto udp",
            id="udp-all-ports-anywhere",
        ),
        pytest.param(
            Match("icmp", -1, -1, cidr=N("10.20.1.7/32")),
            "ingress",
            "ip saddr 10.20.1.7/32 meta l4proto icmp",
            id="icmp-all",
        ),
        pytest.param(Match("icmp", 8, -1, cidr=N("0.0.0.0/0")), "ingress", "icmp type 8", id="icmp-type"),
        pytest.param(
            Match("icmp", 3, 4, cidr=N("0.0.0.0/0")),
            "ingress",
            "icmp type 3 icmp code 4",
            id="icmp-type-code",
        ),
        pytest.param(Match("-1", -1, -1, cidr=N("0.0.0.0/0")), "egress", "", id="everything"),
        pytest.param(
            Match("47", -1, -1, group_id="sg-x"),
            "egress",
            "ip daddr @sg_sg-x meta l4proto 47",
            id="protocol-number",
        ),
    ],
)
def test_match_renders_as_nftables(match: Match, direction: str, expected: str) -> None:
    assert match.nft(S.Direction(direction)) == expected


def test_odd_ids_cannot_become_nft_names() -> None:
    with pytest.raises(ValueError, match="sg-a b"):
        dp.set_name("sg-a b")


# -- the plan means what security groups mean -----------------------------------------------------


RICH_GROUPS = [
    sg(
        "sg-db",
        [
            REDIS,
            {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "10.20.1.0/24"}]},
        ],
    ),
    sg(
        "sg-fn",
        egress=[
            {"IpProtocol": "tcp", "FromPort": 6000, "ToPort": 6999, "IpRanges": [{"CidrIp": "10.20.2.0/24"}]}
        ],
    ),
    sg(
        "sg-other",
        [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-other"}]}],
        egress=[
            {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "UserIdGroupPairs": [{"GroupId": "sg-db"}]}
        ],
    ),
    sg("sg-gre", [{"IpProtocol": "47", "IpRanges": [{"CidrIp": "10.20.1.11/32"}]}]),
]
RICH_INTERFACES = [
    eni("eni-db", "subnet-b", "10.20.2.10", "sg-db", "sg-gre"),
    eni("eni-fn", "subnet-a", "10.20.1.10", "sg-fn"),
    eni("eni-other", "subnet-a", "10.20.1.11", "sg-other", "sg-fn"),
    eni("eni-peer", "subnet-b", "10.20.2.11", "sg-other"),
]
FLOWS = [
    ("tcp", 6379, None),
    ("tcp", 6500, None),
    ("tcp", 7000, None),
    ("udp", 53, None),
    ("icmp", 8, 0),
    ("icmp", 0, 0),
    ("47", None, None),
]


def test_plan_permits_exactly_what_the_groups_allow() -> None:
    p = plan(security_groups=RICH_GROUPS, interfaces=RICH_INTERFACES)
    rules = {
        g["GroupId"]: S.expand_permissions(S.Direction.INGRESS, g["IpPermissions"])
        + S.expand_permissions(S.Direction.EGRESS, g["IpPermissionsEgress"])
        for g in RICH_GROUPS
    }
    by_eni = {e["NetworkInterfaceId"]: e for e in RICH_INTERFACES}
    checked = 0
    for (src, dst), (protocol, port, code) in itertools.product(itertools.permutations(by_eni, 2), FLOWS):
        src_groups = [g["GroupId"] for g in by_eni[src]["Groups"]]
        dst_groups = [g["GroupId"] for g in by_eni[dst]["Groups"]]
        src_ip, dst_ip = (IPv4Address(by_eni[e]["PrivateIpAddress"]) for e in (src, dst))
        out_rules = [r for g in src_groups for r in rules[g]]
        in_rules = [r for g in dst_groups for r in rules[g]]
        expected = S.allowed(
            out_rules, S.Direction.EGRESS, protocol, port, dst_ip, dst_groups, icmp_code=code
        ) and S.allowed(in_rules, S.Direction.INGRESS, protocol, port, src_ip, src_groups, icmp_code=code)
        assert dp.permits(p, src, dst, protocol, port, icmp_code=code) == expected, (src, dst, protocol, port)
        checked += expected
    assert checked >= 4  # the grid is not all "no"


# -- routes ---------------------------------------------------------------------------------------


def test_main_table_holds_each_interface_and_drops_the_rest_of_the_vpc() -> None:
    p = plan()
    main = [r for r in p.routes if r.table == dp.MAIN_TABLE]
    fn = p.interface("eni-fn")
    assert (
        RouterRoute(
            254,
            N("10.20.1.10/32"),
            RouteAction.CONNECTED,
            "eni-fn",
            link=fn.router_link,
            source=IPv4Address("10.20.1.1"),
        )
        in main
    )
    assert RouterRoute(254, N("10.20.0.0/16"), RouteAction.BLACKHOLE, "vpc") in main
    # No route = silent drop: the lookup of every subnet ends in main's blackhole default.
    assert RouterRoute(254, N("0.0.0.0/0"), RouteAction.BLACKHOLE, "unrouted") in main
    assert len(main) == 5


def test_route_tables_become_kernel_tables_chosen_by_source() -> None:
    private = rtb(
        "rtb-private",
        {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "State": "active"},
        {"DestinationCidrBlock": "10.20.9.0/24", "NetworkInterfaceId": "eni-gone", "State": "blackhole"},
        {"DestinationCidrBlock": "192.168.0.0/16", "NetworkInterfaceId": "eni-other", "State": "active"},
        subnets=("subnet-b",),
    )
    p = plan(route_tables=[rtb("rtb-main", main=True), private])
    assert p.source_rules == (
        SourceRule(1000, N("10.20.1.0/24"), 100, "subnet-a"),
        SourceRule(1001, N("10.20.2.0/24"), 101, "subnet-b"),
    )
    other = p.interface("eni-other")
    assert [r for r in p.routes if r.table == 101] == [
        RouterRoute(101, N("0.0.0.0/0"), RouteAction.BLACKHOLE, "nat-1"),  # no such NAT gateway here
        RouterRoute(101, N("10.20.0.0/16"), RouteAction.LOCAL, "local"),
        RouterRoute(101, N("10.20.9.0/24"), RouteAction.BLACKHOLE, "eni-gone"),
        RouterRoute(
            101,
            N("192.168.0.0/16"),
            RouteAction.INTERFACE,
            "eni-other",
            via=IPv4Address("10.20.1.11"),
            link=other.router_link,
        ),
    ]
    # The main route table has no default route, so its kernel table has none either.
    assert [r.destination for r in p.routes if r.table == 100] == [N("10.20.0.0/16")]


def test_subnet_without_any_route_table_has_no_rule() -> None:
    assert plan(route_tables=[]).source_rules == ()


# -- iproute lines --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "line"),
    [
        pytest.param(
            RouterRoute(
                254,
                N("10.20.1.10/32"),
                RouteAction.CONNECTED,
                "eni-a",
                link="lmv0",
                source=IPv4Address("10.20.1.1"),
            ),
            "route replace 10.20.1.10/32 dev lmv0 scope link src 10.20.1.1 proto 252 table 254",
            id="connected",
        ),
        pytest.param(
            RouterRoute(100, N("10.20.0.0/16"), RouteAction.LOCAL, "local"),
            "route replace throw 10.20.0.0/16 proto 252 table 100",
            id="local",
        ),
        pytest.param(
            RouterRoute(100, N("10.9.0.0/16"), RouteAction.BLACKHOLE),
            "route replace blackhole 10.9.0.0/16 proto 252 table 100",
            id="blackhole",
        ),
        pytest.param(
            RouterRoute(
                100, N("0.0.0.0/0"), RouteAction.GATEWAY, "igw-1", via=dp.EDGE_ADDRESS, link=dp.IGW_LINK
            ),
            "route replace 0.0.0.0/0 via 169.254.168.1 dev igw0 onlink proto 252 table 100",
            id="gateway",
        ),
        pytest.param(
            RouterRoute(
                100,
                N("192.168.0.0/16"),
                RouteAction.INTERFACE,
                "eni-b",
                via=IPv4Address("10.20.1.11"),
                link="lmv1",
            ),
            "route replace 192.168.0.0/16 via 10.20.1.11 dev lmv1 onlink proto 252 table 100",
            id="interface",
        ),
    ],
)
def test_route_lines(route: RouterRoute, line: str) -> None:
    assert iproute.route_line(route) == line


def test_routing_changes_delete_what_is_no_longer_planned() -> None:
    routes = [RouterRoute(100, N("10.20.0.0/16"), RouteAction.LOCAL, "local")]
    rules = [
        SourceRule(1000, N("10.20.1.0/24"), 100, "subnet-a"),
        SourceRule(1001, N("10.20.2.0/24"), 100, "subnet-b"),
    ]
    current_routes = [
        {"type": "throw", "dst": "10.20.0.0/16", "table": "100", "flags": []},
        {"type": "blackhole", "dst": "default", "table": "101", "flags": []},
        {"dst": "10.20.1.10", "dev": "lmv0", "scope": "link", "flags": []},
    ]
    current_rules = [
        {"priority": 0, "src": "all", "table": "local"},
        {"priority": 1000, "src": "10.20.1.0", "srclen": 24, "table": "100", "protocol": "252"},
        {"priority": 1001, "src": "10.20.2.0", "srclen": 24, "table": "101", "protocol": "252"},
        {"priority": 32766, "src": "all", "table": "main"},
    ]
    assert iproute.routing_changes(current_routes, current_rules, routes, rules) == [
        "rule del pref 1001 from 10.20.2.0/24 lookup 101",
        "route replace throw 10.20.0.0/16 proto 252 table 100",
        "route del blackhole 0.0.0.0/0 table 101",
        "route del 10.20.1.10/32 table 254",
        "rule add from 10.20.2.0/24 lookup 100 pref 1001 protocol 252",
    ]


def test_interface_lines_route_everything_through_the_gateway() -> None:
    fn = plan().interface("eni-fn")
    assert iproute.interface_side(fn) == [
        "address add 10.20.1.10/24 dev eth0 noprefixroute",
        "link set eth0 up",
        "route add 10.20.1.1/32 dev eth0 scope link",
        "route add default via 10.20.1.1 dev eth0",
    ]
    assert (
        iproute.router_side(fn, 7)[0]
        == f"link add {fn.router_link} group 252 type veth peer name eth0 netns /proc/self/fd/7"
    )


# -- the way out: internet gateway, NAT gateways, edge, uplink --------------------------------------

EDGE = "lmi0123456789ab"
IGW = {"InternetGatewayId": "igw-1", "Attachments": [{"VpcId": VPC, "State": "available"}]}
IGW_ELSEWHERE = {"InternetGatewayId": "igw-9", "Attachments": [{"VpcId": "vpc-other", "State": "available"}]}
TO_IGW = {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "State": "active"}
TO_NAT = {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "State": "active"}
NAT_ENI = eni("eni-nat", "subnet-a", "10.20.1.5", InterfaceType="nat_gateway", MacAddress="02:00:00:00:00:05")


def nat_gateway(state: str = "available", **extra: Any) -> dict[str, Any]:
    address = {
        "IsPrimary": True,
        "NetworkInterfaceId": "eni-nat",
        "PrivateIp": "10.20.1.5",
        "PublicIp": "203.0.113.7",
    }
    return {
        "NatGatewayId": "nat-1",
        "VpcId": VPC,
        "SubnetId": "subnet-a",
        "State": state,
        "ConnectivityType": "public",
        "NatGatewayAddresses": [address],
        **extra,
    }


def outside(**overrides: Any) -> dict[str, Any]:
    """subnet-a public (its table routes to igw-1) with NAT gateway nat-1; subnet-b private (-> nat-1)."""
    base = state(
        interfaces=[*state()["interfaces"], NAT_ENI],
        route_tables=[
            rtb("rtb-public", TO_IGW, main=True),
            rtb("rtb-private", TO_NAT, subnets=("subnet-b",)),
        ],
        nat_gateways=[nat_gateway()],
        internet_gateways=[IGW, IGW_ELSEWHERE],
        edge_link=EDGE,
    )
    base.update(overrides)
    return base


def test_an_attached_internet_gateway_is_a_link_to_the_edge() -> None:
    p = dp.plan_vpc(**outside())
    assert p.internet == dp.InternetLink("igw-1", EDGE, (IPv4Address("203.0.113.7"),))
    assert (
        RouterRoute(101, N("0.0.0.0/0"), RouteAction.GATEWAY, "igw-1", via=dp.EDGE_ADDRESS, link=dp.IGW_LINK)
        in p.routes
    )
    assert dp.edge_link_name("000000000000", "us-east-1", VPC) == dp.edge_link_name(
        "000000000000", "us-east-1", VPC
    )
    assert dp.edge_link_name("000000000000", "us-east-1", VPC) != dp.edge_link_name(
        "111111111111", "us-east-1", VPC
    )
    assert len(dp.edge_link_name("000000000000", "us-east-1", VPC)) == 15


def test_a_nat_gateway_is_an_interface_that_the_private_table_routes_to() -> None:
    p = dp.plan_vpc(**outside())
    (nat,) = p.nat_gateways
    assert (nat.eni_id, nat.kind, nat.public_ip, nat.nat_gateway_id) == (
        "eni-nat",
        dp.InterfaceKind.NAT_GATEWAY,
        IPv4Address("203.0.113.7"),
        "nat-1",
    )
    assert (nat.address, nat.gateway, nat.mac, nat.group_ids) == (
        IPv4Interface("10.20.1.5/24"),
        IPv4Address("10.20.1.1"),
        "02:00:00:00:00:05",
        (),
    )
    assert [i.eni_id for i in p.interfaces] == ["eni-db", "eni-fn", "eni-other"]  # hosts only
    assert [i.eni_id for i in p.links] == ["eni-db", "eni-fn", "eni-other", "eni-nat"]
    assert p.interface("eni-nat") == nat
    via_nat = RouterRoute(
        100,
        N("0.0.0.0/0"),
        RouteAction.INTERFACE,
        "nat-1",
        via=IPv4Address("10.20.1.5"),
        link=nat.router_link,
    )
    assert via_nat in p.routes
    # Replies to the Elastic IP go back to the NAT gateway; what it sends follows subnet a's table.
    assert (
        RouterRoute(
            254,
            N("203.0.113.7/32"),
            RouteAction.INTERFACE,
            "nat-1",
            via=IPv4Address("10.20.1.5"),
            link=nat.router_link,
        )
        in p.routes
    )
    assert (
        RouterRoute(
            254,
            N("10.20.1.5/32"),
            RouteAction.CONNECTED,
            "eni-nat",
            link=nat.router_link,
            source=IPv4Address("10.20.1.1"),
        )
        in p.routes
    )
    assert p.source_rules[0] == SourceRule(dp.FIRST_NAT_RULE_PRIORITY, N("203.0.113.7/32"), 101, "subnet-a")
    assert [r.priority for r in p.source_rules] == [900, 1000, 1001]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"edge_link": None}, id="no-uplink"),
        pytest.param({"internet_gateways": [IGW_ELSEWHERE]}, id="no-internet-gateway"),
        pytest.param({"internet_gateways": [{**IGW, "Attachments": []}]}, id="detached"),
    ],
)
def test_without_a_way_out_gateways_are_not_realised_and_their_routes_drop(overrides: dict[str, Any]) -> None:
    p = dp.plan_vpc(**outside(**overrides))
    assert p.internet is None and p.nat_gateways == ()
    defaults = [r for r in p.routes if r.destination == N("0.0.0.0/0")]
    assert defaults == [
        RouterRoute(100, N("0.0.0.0/0"), RouteAction.BLACKHOLE, "nat-1"),  # rtb-private
        RouterRoute(101, N("0.0.0.0/0"), RouteAction.BLACKHOLE, "igw-1"),  # rtb-public
        RouterRoute(254, N("0.0.0.0/0"), RouteAction.BLACKHOLE, "unrouted"),  # no route at all
    ]
    assert all(r.destination != N("203.0.113.7/32") for r in p.routes)
    assert "gateways" not in p.ruleset
    assert (
        dp.plan_vpc(**outside(**overrides)).ruleset
        == dp.plan_vpc(**{**outside(**overrides), "nat_gateways": [], "internet_gateways": []}).ruleset
    )


@pytest.mark.parametrize(
    "nat",
    [
        pytest.param(nat_gateway("pending"), id="pending"),
        pytest.param(nat_gateway("failed"), id="failed"),
        pytest.param(nat_gateway("deleting"), id="deleting"),
        pytest.param(nat_gateway(ConnectivityType="private"), id="private"),
        pytest.param({**nat_gateway(), "VpcId": "vpc-other"}, id="another-vpc"),
        pytest.param(
            nat_gateway(NatGatewayAddresses=[{"IsPrimary": True, "NetworkInterfaceId": "eni-nat"}]),
            id="no-elastic-ip",
        ),
        pytest.param(
            nat_gateway(
                NatGatewayAddresses=[
                    {"IsPrimary": True, "NetworkInterfaceId": "eni-gone", "PublicIp": "203.0.113.7"}
                ]
            ),
            id="interface-gone",
        ),
    ],
)
def test_only_available_public_nat_gateways_are_realised(nat: dict[str, Any]) -> None:
    p = dp.plan_vpc(**outside(nat_gateways=[nat]))
    assert p.nat_gateways == () and p.internet is not None and p.internet.public_ips == ()
    assert RouterRoute(100, N("0.0.0.0/0"), RouteAction.BLACKHOLE, "nat-1") in p.routes


def test_the_router_lets_gateways_forward_but_opens_nothing_from_them() -> None:
    p = dp.plan_vpc(**outside())
    (nat,) = p.nat_gateways
    forward = p.ruleset.split("chain forward {")[1].split("\t}")[0]
    assert f'\tset gateways {{ type ifname; elements = {{ "{nat.router_link}", "igw0" }}; }}' in p.ruleset
    assert f'\tset nat_links {{ type ifname; elements = {{ "{nat.router_link}" }}; }}' in p.ruleset
    order = [
        "iifname != @gateways iifname . ip saddr != @sources drop",
        "ct state established,related accept",
        'iifname @nat_links oifname "igw0" accept',
        "iifname @gateways drop",
        "iifname vmap",
        "oifname vmap",
        "oifname @gateways accept",
    ]
    positions = [forward.index(item) for item in order]
    assert positions == sorted(positions)
    # The NAT gateway's own address is no source to check, nor a member of any group.
    assert "10.20.1.5" not in p.ruleset


def test_plans_with_gateways_are_stable() -> None:
    shuffled = outside()
    rng = random.Random(11)
    for key in ("subnets", "security_groups", "interfaces", "internet_gateways"):
        rng.shuffle(shuffled[key])
    assert dp.plan_vpc(**shuffled) == dp.plan_vpc(**outside())


def test_nat_gateway_ruleset_snats_forwarded_flows_to_its_elastic_ip() -> None:
    text = edge.render_nat_ruleset(IPv4Address("203.0.113.7"))
    assert text.splitlines()[0] == "table inet lamina_nat {"  # made once, in a new namespace
    assert '\t\toifname "eth0" snat ip to 203.0.113.7' in text
    forward = text.split("chain forward {")[1].split("}")[0]
    assert (
        forward.index("established,related accept")
        < forward.index("ip daddr 203.0.113.7 drop")
        < forward.index('iifname "eth0" oifname "eth0" accept')
    )


def test_edge_ruleset_lets_out_only_elastic_ips_and_the_default_network() -> None:
    text = edge.render_edge_ruleset(
        [("lmib", IPv4Address("203.0.113.9")), ("lmia", IPv4Address("203.0.113.7"))]
    )
    assert (
        '\tset public { type ifname . ipv4_addr; elements = { "lmia" . 203.0.113.7, "lmib" . 203.0.113.9 }; }'
        in text
    )
    forward = text.split("chain forward {")[1].split("}")[0].splitlines()[1:]
    assert [line.strip() for line in forward if line.strip()] == [
        "type filter hook forward priority filter; policy drop;",
        "meta nfproto != ipv4 drop",
        "ct state established,related accept",
        "ct state invalid drop",
        'iifname "uplink0" oifname . ip daddr @inbound accept',
        'oifname != "uplink0" drop',
        "iifname . ip saddr @public accept",
        'iifname "default0" ip saddr 169.254.168.6 accept',
    ]
    assert '\t\tiifname "default0" oifname "uplink0" masquerade' in text
    assert "\tset public { type ifname . ipv4_addr; }" in edge.render_edge_ruleset([])
    assert "\tset inbound { type ifname . ipv4_addr; }" in edge.render_edge_ruleset([])
    inbound = edge.render_edge_ruleset(
        [("lmia", IPv4Address("203.0.113.7"))], [("lmia", IPv4Address("203.0.113.7"))]
    )
    assert '\tset inbound { type ifname . ipv4_addr; elements = { "lmia" . 203.0.113.7 }; }' in inbound


def test_edge_sets_change_by_elements() -> None:
    text = edge.render_edge_public(
        [("lmia", IPv4Address("203.0.113.7")), ("lmia", IPv4Address("203.0.113.8"))],
        [("lmia", IPv4Address("203.0.113.8"))],
    )
    assert text.splitlines() == [
        "flush set inet lamina_edge public",
        'add element inet lamina_edge public { "lmia" . 203.0.113.7, "lmia" . 203.0.113.8 }',
        "flush set inet lamina_edge inbound",
        'add element inet lamina_edge inbound { "lmia" . 203.0.113.8 }',
    ]


def test_uplink_ruleset_masquerades_only_lamina_sources_leaving_by_another_link() -> None:
    text = edge.render_uplink_ruleset("inet lamina_uplink_0badcafe", "lmup0badcafe", N("203.0.113.0/24"))
    assert text.splitlines()[:3] == [
        "table inet lamina_uplink_0badcafe {}",
        "delete table inet lamina_uplink_0badcafe",
        "table inet lamina_uplink_0badcafe {",
    ]
    (rule,) = [line.strip() for line in text.splitlines() if "masquerade" in line]
    assert (
        rule
        == 'iifname "lmup0badcafe" oifname != "lmup0badcafe" ip saddr { 169.254.168.9, 203.0.113.0/24 } masquerade'
    )
    # The only filter judges what comes from lamina's own link, nothing of the host's traffic.
    (egress,) = [i for i, line in enumerate(text.splitlines()) if "type filter" in line]
    assert text.splitlines()[egress + 1].strip() == 'iifname != "lmup0badcafe" accept'


def test_uplink_ruleset_refuses_private_destinations_and_with_host_the_host_itself() -> None:
    def chain(text: str) -> list[str]:
        lines = [line.strip() for line in text.splitlines()]
        start = lines.index("chain egress {")
        return lines[start + 1 : lines.index("}", start)]

    netns = edge.render_uplink_ruleset("inet lamina_uplink_0badcafe", "lmup0badcafe")
    assert chain(netns) == [
        "type filter hook prerouting priority dstnat - 10; policy accept;",
        'iifname != "lmup0badcafe" accept',
        "ct state established,related accept",
        "ip daddr @egress_allowed accept",
        "ip daddr @egress_refused drop",
    ]
    assert "set egress_allowed { type ipv4_addr; flags interval; auto-merge; }" in netns
    for block in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "127.0.0.0/8",
    ):
        assert N(block) in edge.EGRESS_REFUSED
    host = edge.render_uplink_ruleset(
        "inet lamina_uplink_0badcafe", "lmup0badcafe", allowed=[N("10.0.0.5/32")], refuse_local=True
    )
    assert "fib daddr type local drop" in chain(host)
    assert chain(host).index("ip daddr @egress_allowed accept") < chain(host).index(
        "fib daddr type local drop"
    )
    assert (
        "set egress_allowed { type ipv4_addr; flags interval; auto-merge; elements = { 10.0.0.5/32 }; }"
        in host
    )


def test_lamina_link_addresses_stay_in_their_block() -> None:
    for address in (
        dp.EDGE_ADDRESS,
        dp.ROUTER_INTERNET_ADDRESS,
        edge.EDGE_DEFAULT_ADDRESS.ip,
        edge.DEFAULT_ADDRESS.ip,
        edge.EDGE_UPLINK_ADDRESS.ip,
        edge.UPLINK_ADDRESS.ip,
    ):
        assert address in dp.LINK_BLOCK
    assert edge.EDGE_UPLINK_ADDRESS.network == edge.UPLINK_ADDRESS.network
    assert edge.EDGE_DEFAULT_ADDRESS.network == edge.DEFAULT_ADDRESS.network


def test_link_route_changes_touch_only_routes_through_the_link() -> None:
    wanted = [
        RouterRoute(
            254,
            N("203.0.113.7/32"),
            RouteAction.INTERFACE,
            "edge",
            via=IPv4Address("169.254.168.9"),
            link="lmupx",
        )
    ]
    current = [{"dst": "203.0.113.7", "flags": []}, {"dst": "203.0.113.8", "flags": []}]
    assert iproute.link_route_changes("lmupx", current, wanted) == [
        "route replace 203.0.113.7/32 via 169.254.168.9 dev lmupx onlink proto 252 table 254",
        "route del 203.0.113.8/32 dev lmupx table 254",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("host", UplinkSpec(UplinkKind.HOST), id="host"),
        pytest.param("none", UplinkSpec(UplinkKind.NONE), id="none"),
        pytest.param("netns:lmtest-1a2b", UplinkSpec(UplinkKind.NETNS, "lmtest-1a2b"), id="netns"),
    ],
)
def test_uplink_spec(text: str, expected: UplinkSpec) -> None:
    spec = UplinkSpec.parse(text)
    assert spec == expected and str(spec) == text
    if spec.kind is UplinkKind.NETNS:
        assert str(spec.path) == "/run/netns/lmtest-1a2b"


@pytest.mark.parametrize(
    "text", ["", "eth0", "netns:", "netns:../x", "netns:a/b", "netns:..", "netns"], ids=repr
)
def test_bad_uplink_specs(text: str) -> None:
    with pytest.raises(ValueError):
        UplinkSpec.parse(text)


def test_a_nat_gateway_coming_or_going_changes_set_elements_only() -> None:
    without = dp.plan_vpc(**outside(nat_gateways=[]))
    with_nat = dp.plan_vpc(**outside())
    (nat,) = with_nat.nat_gateways
    link = f'"{nat.router_link}"'
    assert dp.set_updates(without.ruleset, with_nat.ruleset) == (
        f"add element inet lamina nat_links {{ {link} }}\nadd element inet lamina gateways {{ {link} }}\n"
    )
    assert dp.set_updates(with_nat.ruleset, without.ruleset) == (
        f"delete element inet lamina nat_links {{ {link} }}\ndelete element inet lamina gateways {{ {link} }}\n"
    )
    assert dp.set_updates(with_nat.ruleset, with_nat.ruleset) == ""


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(lambda: dp.plan_vpc(**outside(internet_gateways=[])), id="internet-link-gone"),
        pytest.param(lambda: plan(interfaces=state()["interfaces"][:2]), id="interface-gone"),
        pytest.param(
            lambda: plan(security_groups=[sg("sg-db"), sg("sg-fn"), sg("sg-other")]), id="rule-gone"
        ),
    ],
)
def test_anything_but_set_elements_needs_the_whole_table(other: Any) -> None:
    assert dp.set_updates(dp.plan_vpc(**outside()).ruleset, other().ruleset) is None


def test_a_new_address_is_a_set_update() -> None:
    hosts = list(state()["interfaces"])
    before = plan(interfaces=hosts)
    hosts[2] = eni("eni-other", "subnet-a", "10.20.1.12", "sg-other")
    link = f'"{before.interface("eni-other").router_link}"'
    assert dp.set_updates(before.ruleset, plan(interfaces=hosts).ruleset) == (
        f"delete element inet lamina sources {{ {link} . 10.20.1.11 }}\n"
        f"add element inet lamina sources {{ {link} . 10.20.1.12 }}\n"
        "delete element inet lamina sg_sg-other { 10.20.1.11 }\n"
        "add element inet lamina sg_sg-other { 10.20.1.12 }\n"
    )


def test_route_changes_from_what_is_installed() -> None:
    via = IPv4Address("169.254.168.2")
    a = RouterRoute(254, N("203.0.113.7/32"), RouteAction.INTERFACE, "lmia", via=via, link="lmia")
    b = RouterRoute(254, N("203.0.113.8/32"), RouteAction.INTERFACE, "lmib", via=via, link="lmib")
    moved = RouterRoute(254, N("203.0.113.7/32"), RouteAction.INTERFACE, "lmic", via=via, link="lmic")
    assert iproute.route_changes([a, b], [a, b]) == []
    assert iproute.route_changes([a, b], [moved]) == [
        "route replace 203.0.113.7/32 via 169.254.168.2 dev lmic onlink proto 252 table 254",
        "route del 203.0.113.8/32 dev lmib table 254",
    ]


# -- Elastic IPs on interfaces ----------------------------------------------------------------------

WITH_EIP = eni(
    "eni-fn",
    "subnet-a",
    "10.20.1.10",
    "sg-fn",
    Association={"PublicIp": "203.0.113.20", "AllocationId": "eipalloc-1"},
)


def test_an_interface_elastic_ip_is_translated_on_the_internet_link() -> None:
    interfaces = [eni("eni-db", "subnet-b", "10.20.2.10", "sg-db"), WITH_EIP, NAT_ENI]
    p = dp.plan_vpc(**outside(interfaces=interfaces))
    assert p.elastic_ips == ((IPv4Address("203.0.113.20"), IPv4Address("10.20.1.10")),)
    assert p.internet is not None
    assert p.internet.public_ips == (IPv4Address("203.0.113.7"), IPv4Address("203.0.113.20"))
    assert p.internet.inbound_ips == (IPv4Address("203.0.113.20"),)  # not the NAT gateway's
    prerouting = p.ruleset.split("chain prerouting {")[1].split("}")[0]
    assert 'iifname "igw0" ip daddr 203.0.113.20 dnat ip to 10.20.1.10' in prerouting
    postrouting = p.ruleset.split("chain postrouting {")[1].split("}")[0]
    assert 'oifname "igw0" ip saddr 10.20.1.10 snat ip to 203.0.113.20' in postrouting
    forward = p.ruleset.split("chain forward {")[1].split("\t}")[0]
    # New flows to the Elastic IP meet the interface's ingress rules, before gateways' new flows drop.
    fn_link = p.interface("eni-fn").router_link
    assert forward.index(
        f'iifname "igw0" ct status dnat oifname vmap {{ "{p.interface("eni-db").router_link}"'
    ) < (forward.index("iifname @gateways drop"))
    assert f'"{fn_link}" : goto ingress_eni-fn' in forward


def test_an_elastic_ip_without_an_internet_link_is_not_realised() -> None:
    p = plan(interfaces=[WITH_EIP])
    assert p.elastic_ips == () and p.internet is None
    assert "dnat" not in p.ruleset and "snat" not in p.ruleset
    # Detached gateway: same.
    q = dp.plan_vpc(**outside(interfaces=[WITH_EIP], internet_gateways=[IGW_ELSEWHERE]))
    assert q.elastic_ips == () and "nat hook" not in q.ruleset
