"""Route tables, as EC2 has them (pure).

Facts about EC2 routing this module encodes (VPC User Guide "Route tables", CreateRoute /
DeleteRoute / DescribeRouteTables API reference):

- Every route table holds a ``local`` route for each VPC CIDR block (``Origin: CreateRouteTable``,
  ``GatewayId: local``); it cannot be deleted.
- A destination appears at most once per table (``RouteAlreadyExists``, also for the local block).
- Traffic takes the most specific route that matches its destination (longest prefix match).
- A route whose NAT gateway (or interface) is deleted stays in the table with ``State: blackhole``:
  traffic matching it is dropped, it does not fall through to a less specific route.
- A route inside a VPC block (equal to it or more specific) may not target an internet gateway
  ("This route can target only an interface or an instance"); since 2021 EC2 accepts such
  "more specific" routes to NAT gateways and interfaces.
- A subnet is *public* when its route table has a direct route to an internet gateway.

Messages are EC2's, as seen in real responses: ``RouteAlreadyExists`` "The route identified by
<cidr> already exists.", ``InvalidRoute.NotFound`` "no route with destination-cidr-block <cidr> in
route table <rtb>", ``InvalidParameterValue`` "cannot remove local route <cidr> in route table <rtb>".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network

from lamina.domain.ec2_models import Route as RouteItem
from lamina.domain.ipam import parse_cidr
from lamina.errors import AwsError

LOCAL = "local"
DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")


class TargetKind(enum.Enum):
    LOCAL = "local"
    INTERNET_GATEWAY = "igw"
    NAT_GATEWAY = "nat"
    NETWORK_INTERFACE = "eni"


class RouteState(enum.Enum):
    ACTIVE = "active"
    BLACKHOLE = "blackhole"


class RouteOrigin(enum.Enum):
    CREATE_ROUTE_TABLE = "CreateRouteTable"
    CREATE_ROUTE = "CreateRoute"


@dataclass(frozen=True)
class Route:
    """A destination block and where traffic for it goes.

    ``target_id`` is ``"local"`` for a local route, else the gateway or interface id. A blackhole
    route keeps its target id (EC2 still shows the deleted ``NatGatewayId``).
    """

    destination: IPv4Network
    kind: TargetKind
    target_id: str
    state: RouteState = RouteState.ACTIVE
    origin: RouteOrigin = RouteOrigin.CREATE_ROUTE

    @property
    def is_blackhole(self) -> bool:
        return self.state is RouteState.BLACKHOLE


def _error(code: str, message: str) -> AwsError:
    return AwsError(message, code=code, status=400, sender_fault=True)


def local_routes(vpc_cidrs: Iterable[IPv4Network]) -> tuple[Route, ...]:
    """The routes a new route table starts with: one ``local`` route per VPC block."""
    return tuple(
        Route(cidr, TargetKind.LOCAL, LOCAL, origin=RouteOrigin.CREATE_ROUTE_TABLE) for cidr in vpc_cidrs
    )


def parse_destination(text: str) -> IPv4Network:
    """A ``DestinationCidrBlock``, canonicalised; ``InvalidParameterValue`` if it is not a CIDR block."""
    return parse_cidr(text, parameter="destinationCidrBlock")


def route_target(
    *,
    gateway_id: str | None = None,
    nat_gateway_id: str | None = None,
    network_interface_id: str | None = None,
) -> tuple[TargetKind, str]:
    """The target of a CreateRoute request: exactly one of the three target parameters.

    ``GatewayId`` must name an internet gateway (``igw-``); other gateway kinds (virtual private
    gateways, ...) are not part of lamina's EC2 subset.
    """
    given = [
        (kind, value)
        for kind, value in (
            (TargetKind.INTERNET_GATEWAY, gateway_id),
            (TargetKind.NAT_GATEWAY, nat_gateway_id),
            (TargetKind.NETWORK_INTERFACE, network_interface_id),
        )
        if value
    ]
    # No real EC2 text has been seen for these two; they follow EC2's wording for parameter errors.
    if not given:
        raise _error(
            "MissingParameter",
            "The request must contain exactly one of gatewayId, natGatewayId or networkInterfaceId",
        )
    if len(given) > 1:
        raise _error(
            "InvalidParameterCombination",
            "Only one of gatewayId, natGatewayId or networkInterfaceId may be specified",
        )
    kind, value = given[0]
    assert value is not None
    if kind is TargetKind.INTERNET_GATEWAY and not value.startswith("igw-"):
        raise _error("InvalidGatewayID.NotFound", f"The gateway ID '{value}' does not exist")
    return kind, value


def find_route(routes: Iterable[Route], destination: IPv4Network) -> Route | None:
    """The route with exactly this destination, if any."""
    for route in routes:
        if route.destination == destination:
            return route
    return None


def validate_new_route(
    routes: Sequence[Route], destination: IPv4Network, kind: TargetKind, vpc_cidrs: Iterable[IPv4Network]
) -> None:
    """CreateRoute's checks against the table: no duplicate destination, and no internet gateway
    route equal to or inside a VPC block."""
    if kind is TargetKind.LOCAL:
        raise ValueError("local routes come with the route table; they are not created")
    if find_route(routes, destination) is not None:
        raise _error("RouteAlreadyExists", f"The route identified by {destination} already exists.")
    if kind is TargetKind.INTERNET_GATEWAY and any(destination.subnet_of(vpc) for vpc in vpc_cidrs):
        raise _error(
            "InvalidParameterValue",
            f"The destination CIDR block {destination} is equal to or more specific than one of this VPC's "
            "CIDR blocks. This route can target only an interface or an instance.",
        )


def add_route(
    routes: Sequence[Route],
    destination: IPv4Network,
    kind: TargetKind,
    target_id: str,
    vpc_cidrs: Iterable[IPv4Network],
) -> tuple[Route, ...]:
    """CreateRoute: the table with the new route appended (after :func:`validate_new_route`)."""
    validate_new_route(routes, destination, kind, vpc_cidrs)
    return (*routes, Route(destination, kind, target_id))


def delete_route(
    routes: Sequence[Route], destination: IPv4Network, *, route_table_id: str
) -> tuple[Route, ...]:
    """DeleteRoute: the table without the route for ``destination``; local routes stay."""
    route = find_route(routes, destination)
    if route is None:
        raise _error(
            "InvalidRoute.NotFound",
            f"no route with destination-cidr-block {destination} in route table {route_table_id}",
        )
    if route.kind is TargetKind.LOCAL:
        raise _error(
            "InvalidParameterValue",
            f"cannot remove local route {destination} in route table {route_table_id}",
        )
    return tuple(r for r in routes if r.destination != destination)


def blackhole(routes: Sequence[Route], target_id: str) -> tuple[Route, ...]:
    """The table after ``target_id`` (a NAT gateway or interface) is deleted: its routes become
    ``blackhole`` and stay until someone deletes them."""
    return tuple(
        replace(r, state=RouteState.BLACKHOLE)
        if r.target_id == target_id and r.kind is not TargetKind.LOCAL
        else r
        for r in routes
    )


def route_for(routes: Iterable[Route], address: IPv4Address) -> Route | None:
    """Longest prefix match: the most specific route containing ``address``, or None.

    A blackhole route is returned like any other: it wins the match and the packet is dropped.
    """
    best: Route | None = None
    for route in routes:
        if address in route.destination and (
            best is None or route.destination.prefixlen > best.destination.prefixlen
        ):
            best = route
    return best


def is_public(routes: Iterable[Route]) -> bool:
    """Whether a subnet using this table is public: an active route straight to an internet
    gateway (normally ``0.0.0.0/0 -> igw-...``)."""
    return any(r.kind is TargetKind.INTERNET_GATEWAY and r.state is RouteState.ACTIVE for r in routes)


def has_default_route_to_igw(routes: Iterable[Route]) -> bool:
    """Whether ``0.0.0.0/0`` goes to an internet gateway (what a NAT gateway needs to reach out)."""
    route = find_route(routes, DEFAULT_ROUTE)
    return (
        route is not None and route.kind is TargetKind.INTERNET_GATEWAY and route.state is RouteState.ACTIVE
    )


def to_route_item(route: Route) -> RouteItem:
    """A route as DescribeRouteTables shows it."""
    item = RouteItem(
        DestinationCidrBlock=str(route.destination), Origin=route.origin.value, State=route.state.value
    )
    if route.kind in (TargetKind.LOCAL, TargetKind.INTERNET_GATEWAY):
        item["GatewayId"] = route.target_id
    elif route.kind is TargetKind.NAT_GATEWAY:
        item["NatGatewayId"] = route.target_id
    else:
        item["NetworkInterfaceId"] = route.target_id
    return item
