"""Unit tests for lamina.domain.routes: local routes, CreateRoute/DeleteRoute rules, LPM, blackholes."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from lamina.domain import routes as rt
from lamina.domain.routes import Route, RouteOrigin, RouteState, TargetKind
from lamina.errors import AwsError

VPC = IPv4Network("10.0.0.0/16")
RTB = "rtb-0123456789abcdef0"
IGW = "igw-0123456789abcdef0"
NAT = "nat-0123456789abcdef0"
ENI = "eni-0123456789abcdef0"
N = IPv4Network


def aws_error(excinfo: pytest.ExceptionInfo[AwsError]) -> tuple[str, str]:
    assert excinfo.value.status == 400 and excinfo.value.sender_fault
    return excinfo.value.code, excinfo.value.message


def table(*extra: Route) -> tuple[Route, ...]:
    return (*rt.local_routes([VPC]), *extra)


def test_local_routes_one_per_vpc_block() -> None:
    blocks = [VPC, N("10.1.0.0/16")]
    assert rt.local_routes(blocks) == (
        Route(VPC, TargetKind.LOCAL, "local", origin=RouteOrigin.CREATE_ROUTE_TABLE),
        Route(N("10.1.0.0/16"), TargetKind.LOCAL, "local", origin=RouteOrigin.CREATE_ROUTE_TABLE),
    )


# -- targets and destinations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"gateway_id": IGW}, (TargetKind.INTERNET_GATEWAY, IGW), id="igw"),
        pytest.param({"nat_gateway_id": NAT}, (TargetKind.NAT_GATEWAY, NAT), id="nat"),
        pytest.param({"network_interface_id": ENI}, (TargetKind.NETWORK_INTERFACE, ENI), id="eni"),
        pytest.param(
            {"gateway_id": "", "nat_gateway_id": NAT}, (TargetKind.NAT_GATEWAY, NAT), id="empty-ignored"
        ),
    ],
)
def test_route_target(kwargs: dict[str, str], expected: tuple[TargetKind, str]) -> None:
    assert rt.route_target(**kwargs) == expected


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        pytest.param({}, "MissingParameter", id="none"),
        pytest.param({"gateway_id": IGW, "nat_gateway_id": NAT}, "InvalidParameterCombination", id="two"),
        pytest.param(
            {"gateway_id": IGW, "nat_gateway_id": NAT, "network_interface_id": ENI},
            "InvalidParameterCombination",
            id="three",
        ),
        pytest.param({"gateway_id": "vgw-0123"}, "InvalidGatewayID.NotFound", id="not-an-igw"),
        pytest.param({"gateway_id": "local"}, "InvalidGatewayID.NotFound", id="local"),
    ],
)
def test_route_target_refused(kwargs: dict[str, str], code: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        rt.route_target(**kwargs)
    assert excinfo.value.code == code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("0.0.0.0/0", "0.0.0.0/0", id="default"),
        pytest.param("192.168.1.0/24", "192.168.1.0/24", id="24"),
        pytest.param("192.168.1.7/24", "192.168.1.0/24", id="host-bits-cleared"),
        pytest.param("8.8.8.8/32", "8.8.8.8/32", id="host"),
    ],
)
def test_parse_destination(text: str, expected: str) -> None:
    assert rt.parse_destination(text) == N(expected)


@pytest.mark.parametrize("text", [pytest.param("8.8.8.8", id="no-prefix"), pytest.param("x/8", id="garbage")])
def test_parse_destination_refused(text: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        rt.parse_destination(text)
    assert aws_error(excinfo) == (
        "InvalidParameterValue",
        f"Value ({text}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block.",
    )


# -- CreateRoute ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "kind", "target"),
    [
        pytest.param("0.0.0.0/0", TargetKind.INTERNET_GATEWAY, IGW, id="default-to-igw"),
        pytest.param("0.0.0.0/0", TargetKind.NAT_GATEWAY, NAT, id="default-to-nat"),
        pytest.param("192.168.0.0/16", TargetKind.NETWORK_INTERFACE, ENI, id="onprem-to-eni"),
        pytest.param("10.0.0.0/8", TargetKind.INTERNET_GATEWAY, IGW, id="less-specific-than-vpc"),
        pytest.param("10.0.1.0/24", TargetKind.NETWORK_INTERFACE, ENI, id="more-specific-to-eni"),
        pytest.param("10.0.1.0/24", TargetKind.NAT_GATEWAY, NAT, id="more-specific-to-nat"),
    ],
)
def test_add_route(destination: str, kind: TargetKind, target: str) -> None:
    routes = rt.add_route(table(), N(destination), kind, target, [VPC])
    assert routes[-1] == Route(N(destination), kind, target, RouteState.ACTIVE, RouteOrigin.CREATE_ROUTE)
    assert routes[:-1] == table()


@pytest.mark.parametrize(
    ("existing", "destination"),
    [
        pytest.param(
            table(Route(N("0.0.0.0/0"), TargetKind.NAT_GATEWAY, NAT)), "0.0.0.0/0", id="default-route"
        ),
        pytest.param(table(), "10.0.0.0/16", id="local-route"),
        pytest.param(
            table(Route(N("0.0.0.0/0"), TargetKind.NAT_GATEWAY, NAT, RouteState.BLACKHOLE)),
            "0.0.0.0/0",
            id="blackhole-still-occupies",
        ),
    ],
)
def test_route_already_exists(existing: tuple[Route, ...], destination: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        rt.add_route(existing, N(destination), TargetKind.INTERNET_GATEWAY, IGW, [VPC])
    assert aws_error(excinfo) == (
        "RouteAlreadyExists",
        f"The route identified by {destination} already exists.",
    )


@pytest.mark.parametrize(
    "destination",
    [
        pytest.param("10.0.1.0/24", id="subnet-block"),
        pytest.param("10.0.0.0/17", id="half-vpc"),
        pytest.param("10.0.5.5/32", id="host"),
    ],
)
def test_igw_route_inside_vpc_block_refused(destination: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        rt.add_route(table(), N(destination), TargetKind.INTERNET_GATEWAY, IGW, [VPC])
    assert aws_error(excinfo) == (
        "InvalidParameterValue",
        f"The destination CIDR block {destination} is equal to or more specific than one of this VPC's CIDR "
        "blocks. This route can target only an interface or an instance.",
    )


def test_local_routes_are_not_created() -> None:
    with pytest.raises(ValueError, match="local"):
        rt.add_route(table(), N("10.9.0.0/16"), TargetKind.LOCAL, "local", [VPC])


# -- DeleteRoute ----------------------------------------------------------------------------------


def test_delete_route() -> None:
    default = Route(N("0.0.0.0/0"), TargetKind.INTERNET_GATEWAY, IGW)
    other = Route(N("192.168.0.0/16"), TargetKind.NETWORK_INTERFACE, ENI)
    assert rt.delete_route(table(default, other), N("0.0.0.0/0"), route_table_id=RTB) == table(other)


def test_delete_missing_route() -> None:
    with pytest.raises(AwsError) as excinfo:
        rt.delete_route(table(), N("0.0.0.0/0"), route_table_id=RTB)
    assert aws_error(excinfo) == (
        "InvalidRoute.NotFound",
        f"no route with destination-cidr-block 0.0.0.0/0 in route table {RTB}",
    )


def test_delete_local_route_refused() -> None:
    with pytest.raises(AwsError) as excinfo:
        rt.delete_route(table(), VPC, route_table_id=RTB)
    assert aws_error(excinfo) == (
        "InvalidParameterValue",
        f"cannot remove local route 10.0.0.0/16 in route table {RTB}",
    )


# -- longest prefix match -------------------------------------------------------------------------

LPM_TABLE = table(
    Route(N("0.0.0.0/0"), TargetKind.NAT_GATEWAY, NAT),
    Route(N("192.168.0.0/16"), TargetKind.NETWORK_INTERFACE, ENI),
    Route(N("192.168.7.0/24"), TargetKind.INTERNET_GATEWAY, IGW),
    Route(N("10.0.9.0/24"), TargetKind.NETWORK_INTERFACE, "eni-inspect"),
    Route(N("203.0.113.5/32"), TargetKind.NETWORK_INTERFACE, "eni-host"),
)


@pytest.mark.parametrize(
    ("address", "target"),
    [
        pytest.param("10.0.3.4", "local", id="vpc-local"),
        pytest.param("10.0.9.200", "eni-inspect", id="more-specific-than-local"),
        pytest.param("192.168.1.1", ENI, id="16-beats-default"),
        pytest.param("192.168.7.1", IGW, id="24-beats-16"),
        pytest.param("203.0.113.5", "eni-host", id="host-route"),
        pytest.param("203.0.113.6", NAT, id="neighbour-of-host-route"),
        pytest.param("8.8.8.8", NAT, id="default"),
        pytest.param("0.0.0.0", NAT, id="zero-address"),
        pytest.param("255.255.255.255", NAT, id="all-ones"),
    ],
)
def test_route_for(address: str, target: str) -> None:
    route = rt.route_for(LPM_TABLE, IPv4Address(address))
    assert route is not None
    assert route.target_id == target


def test_route_for_order_does_not_matter() -> None:
    for address in ("10.0.3.4", "192.168.7.1", "8.8.8.8", "203.0.113.5"):
        ip = IPv4Address(address)
        assert rt.route_for(tuple(reversed(LPM_TABLE)), ip) == rt.route_for(LPM_TABLE, ip)


@pytest.mark.parametrize(
    "address",
    [pytest.param("8.8.8.8", id="internet"), pytest.param("10.1.0.1", id="next-to-vpc")],
)
def test_no_route_without_default(address: str) -> None:
    assert rt.route_for(table(), IPv4Address(address)) is None


def test_blackhole_route_still_wins_the_match() -> None:
    routes = rt.blackhole(table(Route(N("0.0.0.0/0"), TargetKind.NAT_GATEWAY, NAT)), NAT)
    route = rt.route_for(routes, IPv4Address("8.8.8.8"))
    assert route is not None
    assert route.is_blackhole
    assert route.target_id == NAT


# -- blackholes and public subnets ----------------------------------------------------------------


def test_deleting_a_nat_gateway_blackholes_its_routes_only() -> None:
    mine = Route(N("0.0.0.0/0"), TargetKind.NAT_GATEWAY, NAT)
    also_mine = Route(N("172.16.0.0/12"), TargetKind.NAT_GATEWAY, NAT)
    other = Route(N("192.168.0.0/16"), TargetKind.NAT_GATEWAY, "nat-other")
    after = rt.blackhole(table(mine, also_mine, other), NAT)
    assert [r.state for r in after] == [
        RouteState.ACTIVE,
        RouteState.BLACKHOLE,
        RouteState.BLACKHOLE,
        RouteState.ACTIVE,
    ]
    assert after[1].target_id == NAT
    assert rt.to_route_item(after[1]) == {
        "DestinationCidrBlock": "0.0.0.0/0",
        "NatGatewayId": NAT,
        "Origin": "CreateRoute",
        "State": "blackhole",
    }


def test_blackhole_never_touches_local_routes() -> None:
    assert rt.blackhole(table(), "local") == table()


def test_blackhole_route_can_be_deleted() -> None:
    routes = rt.blackhole(table(Route(N("0.0.0.0/0"), TargetKind.NAT_GATEWAY, NAT)), NAT)
    assert rt.delete_route(routes, N("0.0.0.0/0"), route_table_id=RTB) == table()


@pytest.mark.parametrize(
    ("routes", "public", "default_to_igw"),
    [
        pytest.param(table(), False, False, id="local-only"),
        pytest.param(
            table(Route(N("0.0.0.0/0"), TargetKind.INTERNET_GATEWAY, IGW)), True, True, id="default-igw"
        ),
        pytest.param(
            table(Route(N("0.0.0.0/0"), TargetKind.NAT_GATEWAY, NAT)), False, False, id="default-nat"
        ),
        pytest.param(
            table(Route(N("198.51.100.0/24"), TargetKind.INTERNET_GATEWAY, IGW)),
            True,
            False,
            id="partial-igw",
        ),
        pytest.param(
            table(Route(N("0.0.0.0/0"), TargetKind.INTERNET_GATEWAY, IGW, RouteState.BLACKHOLE)),
            False,
            False,
            id="blackholed-igw",
        ),
        pytest.param(
            table(Route(N("0.0.0.0/0"), TargetKind.NETWORK_INTERFACE, ENI)), False, False, id="default-eni"
        ),
    ],
)
def test_is_public(routes: tuple[Route, ...], public: bool, default_to_igw: bool) -> None:
    assert rt.is_public(routes) is public
    assert rt.has_default_route_to_igw(routes) is default_to_igw


# -- rendering ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        pytest.param(
            rt.local_routes([VPC])[0],
            {
                "DestinationCidrBlock": "10.0.0.0/16",
                "GatewayId": "local",
                "Origin": "CreateRouteTable",
                "State": "active",
            },
            id="local",
        ),
        pytest.param(
            Route(N("0.0.0.0/0"), TargetKind.INTERNET_GATEWAY, IGW),
            {
                "DestinationCidrBlock": "0.0.0.0/0",
                "GatewayId": IGW,
                "Origin": "CreateRoute",
                "State": "active",
            },
            id="igw",
        ),
        pytest.param(
            Route(N("0.0.0.0/0"), TargetKind.NAT_GATEWAY, NAT),
            {
                "DestinationCidrBlock": "0.0.0.0/0",
                "NatGatewayId": NAT,
                "Origin": "CreateRoute",
                "State": "active",
            },
            id="nat",
        ),
        pytest.param(
            Route(N("192.168.0.0/16"), TargetKind.NETWORK_INTERFACE, ENI),
            {
                "DestinationCidrBlock": "192.168.0.0/16",
                "NetworkInterfaceId": ENI,
                "Origin": "CreateRoute",
                "State": "active",
            },
            id="eni",
        ),
    ],
)
def test_to_route_item(route: Route, expected: dict[str, str]) -> None:
    assert rt.to_route_item(route) == expected
