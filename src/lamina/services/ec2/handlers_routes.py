"""Route tables, routes and subnet associations.

Route semantics (local routes, duplicates, longest prefix match, blackholes, what makes a subnet
public) are :mod:`lamina.domain.routes`; targets here are internet gateways (``GatewayId``), NAT
gateways and network interfaces of the table's VPC. A subnet without an explicit association
uses its VPC's main route table. ReplaceRoute and ReplaceRouteTableAssociation change them in
place; like every route change they reach the data plane (``ROUTE_CHANGED``) at once.
"""

from __future__ import annotations

import os
from typing import Any

from lamina.domain import ec2
from lamina.domain import routes as R
from lamina.domain.ec2 import error, public, routes_of, set_routes
from lamina.domain.ec2_models import (
    RouteTable,
    RouteTableAssociation,
    RouteTableAssociationState,
    Subnet,
)
from lamina.services.base import RequestContext
from lamina.services.ec2.handlers_endpoints import gateway_routes
from lamina.services.ec2.handlers_tags import (
    apply_filters,
    by_ids,
    dry_run,
    field,
    paginate,
    read,
    required,
    spec_tags,
    with_token,
    write,
)
from lamina.services.ec2.handlers_vpcs import dependency
from lamina.store.ec2 import Ec2Store, Ec2Tx

_UNSUPPORTED_TARGETS = (
    "InstanceId",
    "VpcPeeringConnectionId",
    "TransitGatewayId",
    "LocalGatewayId",
    "CarrierGatewayId",
    "EgressOnlyInternetGatewayId",
    "VpcEndpointId",
    "CoreNetworkArn",
    "OdbNetworkArn",
    "DestinationPrefixListId",
    "DestinationIpv6CidrBlock",
)


def _suffix() -> str:
    return os.urandom(9).hex()[:17]


def table_for_subnet(tx: Ec2Tx, subnet: Subnet) -> RouteTable | None:
    """The route table a subnet uses: its explicit association, else the VPC's main table."""
    main = None
    for table in tx.find(ec2.ROUTE_TABLE, vpc_id=subnet["VpcId"]):
        for association in table.get("Associations", []):
            if association.get("SubnetId") == subnet["SubnetId"]:
                return table
            if association.get("Main"):
                main = table
    return main


def is_public_subnet(tx: Ec2Tx, subnet: Subnet) -> bool:
    """A subnet is public when its route table routes to an internet gateway."""
    table = table_for_subnet(tx, subnet)
    return table is not None and R.is_public(routes_of(table))


def create_route_table(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    tags = spec_tags(params, ec2.ROUTE_TABLE)
    with write(store, ctx) as tx:
        vpc = tx.require(ec2.VPC, params["VpcId"])
        dry_run(params)
        table_id = tx.new_id(ec2.ROUTE_TABLE)
        table: RouteTable = {
            "Associations": [],
            "PropagatingVgws": [],
            "RouteTableId": table_id,
            "Routes": [],
            "Tags": tags,
            "VpcId": vpc["VpcId"],
            "OwnerId": ctx.account_id,
        }
        set_routes(table, R.local_routes(ec2.vpc_cidrs(vpc)))
        tx.put(ec2.ROUTE_TABLE, table_id, table, vpc_id=vpc["VpcId"])
        tx.emit(ec2.ROUTE_CHANGED, table)
    out: dict[str, Any] = {"RouteTable": table}
    if params.get("ClientToken"):
        out["ClientToken"] = params["ClientToken"]
    return out


def delete_route_table(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    table_id = params["RouteTableId"]
    with write(store, ctx) as tx:
        table = tx.require(ec2.ROUTE_TABLE, table_id)
        if table.get("Associations"):
            raise dependency("routeTable", table_id)
        dry_run(params)
        tx.remove(table_id)
        tx.emit(ec2.ROUTE_CHANGED, {**public(table), "Routes": [], "Deleted": True})
    return {}


_TABLE_FILTERS = {
    "route-table-id": field("RouteTableId"),
    "vpc-id": field("VpcId"),
    "owner-id": field("OwnerId"),
    "association.route-table-association-id": field("Associations", "RouteTableAssociationId"),
    "association.route-table-id": field("Associations", "RouteTableId"),
    "association.subnet-id": field("Associations", "SubnetId"),
    "association.gateway-id": field("Associations", "GatewayId"),
    "association.main": field("Associations", "Main"),
    "route.destination-cidr-block": field("Routes", "DestinationCidrBlock"),
    "route.destination-prefix-list-id": field("Routes", "DestinationPrefixListId"),
    "route.gateway-id": field("Routes", "GatewayId"),
    "route.nat-gateway-id": field("Routes", "NatGatewayId"),
    "route.network-interface-id": field("Routes", "NetworkInterfaceId"),
    "route.origin": field("Routes", "Origin"),
    "route.state": field("Routes", "State"),
}


def describe_route_tables(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    def run(tx: Ec2Tx) -> list[RouteTable]:
        found = by_ids(tx, ec2.ROUTE_TABLE, params.get("RouteTableIds"))
        tables = [ec2.wire_copy(t) for t in (found if found is not None else tx.find(ec2.ROUTE_TABLE))]
        endpoint_routes = gateway_routes(tx)
        for table in tables:  # a gateway endpoint's prefix-list routes (kept by the endpoint)
            table["Routes"] = [*table.get("Routes", []), *endpoint_routes.get(table["RouteTableId"], [])]
        return tables

    tables = apply_filters(read(store, ctx, run), params.get("Filters"), _TABLE_FILTERS)
    dry_run(params)
    page, token = paginate(tables, params)
    return with_token({"RouteTables": page}, token)


def _different_networks(table_id: str, what: str, target_id: str) -> Exception:
    return error(
        "InvalidParameterValue", f"route table {table_id} and {what} {target_id} belong to different networks"
    )


def _check_target(tx: Ec2Tx, table: RouteTable, kind: R.TargetKind, target_id: str) -> None:
    vpc_id, table_id = table["VpcId"], table["RouteTableId"]
    if kind is R.TargetKind.INTERNET_GATEWAY:
        igw = tx.get(target_id, ec2.INTERNET_GATEWAY)
        if igw is None:
            raise error("InvalidGatewayID.NotFound", f"The gateway ID '{target_id}' does not exist")
        if [a.get("VpcId") for a in igw.get("Attachments", [])] != [vpc_id]:
            raise _different_networks(table_id, "network gateway", target_id)
    elif kind is R.TargetKind.NAT_GATEWAY:
        tx.advance_nat_gateways()
        nat = tx.get(target_id, ec2.NAT_GATEWAY)
        if nat is None or nat["State"] in ("deleting", "deleted", "failed"):
            raise error("InvalidNatGatewayID.NotFound", f"The natGateway ID '{target_id}' does not exist")
        if nat["VpcId"] != vpc_id:
            raise _different_networks(table_id, "network gateway", target_id)
    else:
        eni = tx.require(ec2.NETWORK_INTERFACE, target_id)
        if eni["VpcId"] != vpc_id:
            raise _different_networks(table_id, "interface", target_id)


def create_route(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    for name in _UNSUPPORTED_TARGETS:
        if params.get(name):
            raise error(
                "UnsupportedOperation",
                f"{name} is not supported by lamina: routes go to internet gateways, NAT gateways and network interfaces.",
            )
    destination = R.parse_destination(required(params, "DestinationCidrBlock", "destinationCidrBlock"))
    kind, target_id = R.route_target(
        gateway_id=params.get("GatewayId"),
        nat_gateway_id=params.get("NatGatewayId"),
        network_interface_id=params.get("NetworkInterfaceId"),
    )
    with write(store, ctx) as tx:
        table = tx.require(ec2.ROUTE_TABLE, params["RouteTableId"])
        vpc = tx.require(ec2.VPC, table["VpcId"])
        _check_target(tx, table, kind, target_id)
        routes = R.add_route(routes_of(table), destination, kind, target_id, ec2.vpc_cidrs(vpc))
        dry_run(params)
        set_routes(table, routes)
        tx.update(table["RouteTableId"], table)
        tx.emit(ec2.ROUTE_CHANGED, table)
    return {"Return": True}


def delete_route(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    destination = R.parse_destination(required(params, "DestinationCidrBlock", "destinationCidrBlock"))
    with write(store, ctx) as tx:
        table = tx.require(ec2.ROUTE_TABLE, params["RouteTableId"])
        routes = R.delete_route(routes_of(table), destination, route_table_id=table["RouteTableId"])
        dry_run(params)
        set_routes(table, routes)
        tx.update(table["RouteTableId"], table)
        tx.emit(ec2.ROUTE_CHANGED, table)
    return {}


def associate_route_table(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("GatewayId"):
        raise error("UnsupportedOperation", "Gateway route table associations are not supported by lamina.")
    subnet_id = required(params, "SubnetId")
    with write(store, ctx) as tx:
        table = tx.require(ec2.ROUTE_TABLE, params["RouteTableId"])
        subnet = tx.require(ec2.SUBNET, subnet_id)
        table_id = table["RouteTableId"]
        if subnet["VpcId"] != table["VpcId"]:
            raise _different_networks(table_id, "subnet", subnet_id)
        for other in tx.find(ec2.ROUTE_TABLE, vpc_id=table["VpcId"]):
            if any(a.get("SubnetId") == subnet_id for a in other.get("Associations", [])):
                raise error(
                    "Resource.AlreadyAssociated",
                    f"the specified association for route table {table_id} conflicts with an existing association",
                )
        dry_run(params)
        association_id = f"rtbassoc-{_suffix()}"
        state = RouteTableAssociationState(State="associated")
        table["Associations"].append(
            {
                "Main": False,
                "RouteTableAssociationId": association_id,
                "RouteTableId": table_id,
                "SubnetId": subnet_id,
                "AssociationState": state,
            }
        )
        tx.update(table_id, table)
        tx.emit(ec2.ROUTE_CHANGED, table)
    return {"AssociationId": association_id, "AssociationState": state}


def disassociate_route_table(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    association_id = params["AssociationId"]
    with write(store, ctx) as tx:
        for table in tx.find(ec2.ROUTE_TABLE):
            association = next(
                (a for a in table["Associations"] if a["RouteTableAssociationId"] == association_id), None
            )
            if association is not None:
                break
        else:
            raise error(
                "InvalidAssociationID.NotFound", f"The association ID '{association_id}' does not exist"
            )
        if association.get("Main"):
            raise error(
                "InvalidParameterValue",
                f"cannot disassociate the main route table association {association_id}",
            )
        dry_run(params)
        table["Associations"] = [a for a in table["Associations"] if a is not association]
        tx.update(table["RouteTableId"], table)
        tx.emit(ec2.ROUTE_CHANGED, table)
    return {}


def replace_route(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """ReplaceRoute: the route for a destination goes to another target (``Origin`` stays, the
    state follows the new target); the data plane follows, as for CreateRoute."""
    for name in _UNSUPPORTED_TARGETS:
        if params.get(name):
            raise error(
                "UnsupportedOperation",
                f"{name} is not supported by lamina: routes go to internet gateways, NAT gateways and network interfaces.",
            )
    destination = R.parse_destination(required(params, "DestinationCidrBlock", "destinationCidrBlock"))
    local_target = bool(params.get("LocalTarget"))
    with write(store, ctx) as tx:
        table = tx.require(ec2.ROUTE_TABLE, params["RouteTableId"])
        routes = routes_of(table)
        current = R.find_route(routes, destination)
        if current is None:
            raise error(
                "InvalidParameterValue",
                f"There is no route defined for '{destination}' in the route table. Use CreateRoute instead.",
            )
        if current.kind is R.TargetKind.LOCAL or local_target:
            if current.kind is R.TargetKind.LOCAL and local_target:
                dry_run(params)
                return {}  # the local route already goes where LocalTarget says
            raise error(
                "UnsupportedOperation",
                "Routes more specific than or equal to a VPC block (local routes) cannot be replaced in lamina.",
            )
        kind, target_id = R.route_target(
            gateway_id=params.get("GatewayId"),
            nat_gateway_id=params.get("NatGatewayId"),
            network_interface_id=params.get("NetworkInterfaceId"),
        )
        vpc = tx.require(ec2.VPC, table["VpcId"])
        _check_target(tx, table, kind, target_id)
        others = tuple(r for r in routes if r.destination != destination)
        R.validate_new_route(others, destination, kind, ec2.vpc_cidrs(vpc))
        dry_run(params)
        replaced = R.Route(destination, kind, target_id, origin=current.origin)
        set_routes(table, tuple(replaced if r.destination == destination else r for r in routes))
        tx.update(table["RouteTableId"], table)
        tx.emit(ec2.ROUTE_CHANGED, table)
    return {}


def replace_route_table_association(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    """ReplaceRouteTableAssociation: a subnet (or the VPC's main association) moves to another
    table of the VPC, under a new association id."""
    association_id = params["AssociationId"]
    with write(store, ctx) as tx:
        new_table = tx.require(ec2.ROUTE_TABLE, params["RouteTableId"])
        for old_table in tx.find(ec2.ROUTE_TABLE):
            association = next(
                (a for a in old_table["Associations"] if a["RouteTableAssociationId"] == association_id), None
            )
            if association is not None:
                break
        else:
            raise error(
                "InvalidAssociationID.NotFound", f"The association ID '{association_id}' does not exist"
            )
        new_id = new_table["RouteTableId"]
        if old_table["VpcId"] != new_table["VpcId"]:
            raise _different_networks(new_id, "association", association_id)
        dry_run(params)
        old_table["Associations"] = [a for a in old_table["Associations"] if a is not association]
        tx.update(old_table["RouteTableId"], old_table)
        if old_table["RouteTableId"] == new_id:
            new_table = old_table
        new_association_id = f"rtbassoc-{_suffix()}"
        state = RouteTableAssociationState(State="associated")
        moved: RouteTableAssociation = {
            "Main": bool(association.get("Main")),
            "RouteTableAssociationId": new_association_id,
            "RouteTableId": new_id,
            "AssociationState": state,
        }
        if association.get("SubnetId"):
            moved["SubnetId"] = association["SubnetId"]
        new_table["Associations"].append(moved)
        tx.update(new_id, new_table)
        if old_table is not new_table:
            tx.emit(ec2.ROUTE_CHANGED, old_table)
        tx.emit(ec2.ROUTE_CHANGED, new_table)
    return {"NewAssociationId": new_association_id, "AssociationState": state}


HANDLERS = {
    "ReplaceRoute": replace_route,
    "ReplaceRouteTableAssociation": replace_route_table_association,
    "CreateRouteTable": create_route_table,
    "DeleteRouteTable": delete_route_table,
    "DescribeRouteTables": describe_route_tables,
    "CreateRoute": create_route,
    "DeleteRoute": delete_route,
    "AssociateRouteTable": associate_route_table,
    "DisassociateRouteTable": disassociate_route_table,
}
