"""VPCs, subnets and availability zones.

A new VPC comes with its main route table (a ``local`` route per CIDR block), its
``default`` security group (all inbound from itself, all outbound) and its default network ACL
(all allowed both ways; a new subnet is associated with it), as in EC2. A subnet lies in
one of the region's zones ``<region>a``, ``b`` and ``c``, its block inside the VPC's and
overlapping no sibling; its ``AvailableIpAddressCount`` is the allocator's truth (size - 5 -
addresses in use).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import IPv4Network
from typing import Any

from lamina.domain import ec2, ipam
from lamina.domain import routes as R
from lamina.domain import secgroups as S
from lamina.domain.ec2 import error, public, set_routes
from lamina.domain.ec2_models import Ec2Tag, RouteTable, SecurityGroup, Subnet, Vpc
from lamina.services.base import RequestContext
from lamina.services.ec2 import handlers_nacls
from lamina.services.ec2.handlers_tags import (
    apply_filters,
    by_ids,
    dry_run,
    field,
    listing,
    paginate,
    read,
    required,
    spec_tags,
    with_token,
    write,
)
from lamina.store.ec2 import Ec2Store, Ec2Tx

ZONE_LETTERS = ("a", "b", "c")
_COMPASS = {"northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw"}


def zones(region: str) -> list[tuple[str, str]]:
    """The region's availability zones as (name, id): ``us-east-1a`` / ``use1-az1``, ..."""
    parts = region.split("-")
    if len(parts) >= 3:
        middle = "".join(_COMPASS.get(p, p[:1]) for p in parts[1:-1])
        short = f"{parts[0]}{middle}{parts[-1]}"
    else:
        short = region.replace("-", "")
    return [(f"{region}{letter}", f"{short}-az{n}") for n, letter in enumerate(ZONE_LETTERS, 1)]


def _suffix() -> str:
    return os.urandom(9).hex()[:17]


def dependency(kind: str, resource_id: str) -> Exception:
    return error("DependencyViolation", f"The {kind} '{resource_id}' has dependencies and cannot be deleted.")


# -- VPCs -----------------------------------------------------------------------------------------


def create_vpc(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    text = required(params, "CidrBlock")
    cidr = ipam.validate_vpc_cidr(text)
    tags = spec_tags(params, ec2.VPC)
    dry_run(params)
    with write(store, ctx) as tx:
        vpc = new_vpc(tx, cidr, tags, tenancy=params.get("InstanceTenancy") or "default")
    # EC2 answers CreateVpc while the VPC is still being set up.
    return {"Vpc": {**vpc, "State": "pending"}}


def new_vpc(
    tx: Ec2Tx, cidr: IPv4Network, tags: list[Ec2Tag], *, tenancy: str = "default", is_default: bool = False
) -> Vpc:
    """A VPC with what every VPC comes with (CreateVpc's, and the default VPC's, code path)."""
    vpc_id = tx.new_id(ec2.VPC)
    vpc: Vpc = {
        "CidrBlock": str(cidr),
        "DhcpOptionsId": tx.default_dhcp_options(),
        "State": "available",
        "VpcId": vpc_id,
        "OwnerId": tx.account,
        "InstanceTenancy": tenancy,
        "Ipv6CidrBlockAssociationSet": [],
        "CidrBlockAssociationSet": [
            {
                "AssociationId": f"vpc-cidr-assoc-{_suffix()}",
                "CidrBlock": str(cidr),
                "CidrBlockState": {"State": "associated"},
            }
        ],
        "IsDefault": is_default,
        "Tags": tags,
    }
    tx.put(ec2.VPC, vpc_id, vpc, vpc_id=vpc_id)
    _create_main_route_table(tx, vpc)
    _create_default_group(tx, vpc)
    handlers_nacls.create_default_acl(tx, vpc)
    tx.emit(ec2.VPC_CHANGED, vpc)
    return vpc


def _create_main_route_table(tx: Ec2Tx, vpc: Vpc) -> None:
    table_id = tx.new_id(ec2.ROUTE_TABLE)
    table: RouteTable = {
        "Associations": [
            {
                "Main": True,
                "RouteTableAssociationId": f"rtbassoc-{_suffix()}",
                "RouteTableId": table_id,
                "AssociationState": {"State": "associated"},
            }
        ],
        "PropagatingVgws": [],
        "RouteTableId": table_id,
        "Routes": [],
        "Tags": [],
        "VpcId": vpc["VpcId"],
        "OwnerId": tx.account,
    }
    set_routes(table, R.local_routes(ec2.vpc_cidrs(vpc)))
    tx.put(ec2.ROUTE_TABLE, table_id, table, vpc_id=vpc["VpcId"])
    tx.emit(ec2.ROUTE_CHANGED, table)


def new_group(tx: Ec2Tx, vpc_id: str, name: str, description: str, tags: list[Ec2Tag]) -> SecurityGroup:
    group_id = tx.new_id(ec2.SECURITY_GROUP)
    group: SecurityGroup = {
        "GroupId": group_id,
        "GroupName": name,
        "Description": description,
        "VpcId": vpc_id,
        "OwnerId": tx.account,
        "SecurityGroupArn": f"arn:aws:ec2:{tx.region}:{tx.account}:security-group/{group_id}",
        "Tags": tags,
    }
    tx.put(ec2.SECURITY_GROUP, group_id, group, vpc_id=vpc_id)
    return group


def _create_default_group(tx: Ec2Tx, vpc: Vpc) -> None:
    group = new_group(tx, vpc["VpcId"], "default", "default VPC security group", [])
    tx.add_rules(group["GroupId"], S.default_group_rules(group["GroupId"], tx.account))
    tx.emit(ec2.SECURITY_GROUP_CHANGED, tx.group_view(group))


_VPC_FILTERS = {
    "vpc-id": field("VpcId"),
    "cidr": field("CidrBlock"),
    "cidr-block": field("CidrBlock"),
    "cidr-block-association.cidr-block": field("CidrBlockAssociationSet", "CidrBlock"),
    "cidr-block-association.association-id": field("CidrBlockAssociationSet", "AssociationId"),
    "cidr-block-association.state": field("CidrBlockAssociationSet", "CidrBlockState", "State"),
    "state": field("State"),
    "is-default": field("IsDefault"),
    "isDefault": field("IsDefault"),
    "owner-id": field("OwnerId"),
    "dhcp-options-id": field("DhcpOptionsId"),
    "instance-tenancy": field("InstanceTenancy"),
}


def describe_vpcs(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    def run(tx: Ec2Tx) -> list[Vpc]:
        found = by_ids(tx, ec2.VPC, params.get("VpcIds"))
        return [ec2.wire_copy(v) for v in (found if found is not None else tx.find(ec2.VPC))]

    vpcs = apply_filters(read(store, ctx, run), params.get("Filters"), _VPC_FILTERS)
    dry_run(params)
    page, token = paginate(vpcs, params)
    return with_token({"Vpcs": page}, token)


def delete_vpc(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    vpc_id = params["VpcId"]
    with write(store, ctx) as tx:
        vpc = tx.require(ec2.VPC, vpc_id)
        tables = tx.find(ec2.ROUTE_TABLE, vpc_id=vpc_id)
        groups = tx.find(ec2.SECURITY_GROUP, vpc_id=vpc_id)
        live_nats = [
            n for n in tx.find(ec2.NAT_GATEWAY, vpc_id=vpc_id) if n["State"] not in ("deleted", "failed")
        ]
        if (
            bool(tx.find(ec2.SUBNET, vpc_id=vpc_id))
            or tx.attached_gateway(vpc_id) is not None
            or bool(tx.find(ec2.NETWORK_INTERFACE, vpc_id=vpc_id))
            or bool(live_nats)
            or bool(tx.find(ec2.VPC_ENDPOINT, vpc_id=vpc_id))
            or any(not _is_main(t) for t in tables)
            or any(g["GroupName"] != "default" for g in groups)
        ):
            raise dependency("vpc", vpc_id)
        handlers_nacls.check_vpc_deletable(tx, vpc_id)
        dry_run(params)
        handlers_nacls.delete_vpc_acls(tx, vpc_id)
        for table in tables:
            tx.remove(table["RouteTableId"])
            tx.emit(ec2.ROUTE_CHANGED, {**public(table), "Routes": [], "Associations": [], "Deleted": True})
        for group in groups:
            tx.remove_rules(r.rule_id for r in tx.rules(group["GroupId"]))
            tx.remove(group["GroupId"])
            tx.emit(ec2.SECURITY_GROUP_CHANGED, {**public(group), "Deleted": True})
        for nat in tx.find(ec2.NAT_GATEWAY, vpc_id=vpc_id):
            tx.remove(nat["NatGatewayId"])
        tx.remove(vpc_id)
        tx.emit(ec2.VPC_CHANGED, {**public(vpc), "State": "deleted"})
    return {}


def _is_main(table: RouteTable) -> bool:
    return any(a.get("Main") for a in table.get("Associations", []))


# -- subnets -------------------------------------------------------------------------------------


def _zone(region: str, params: dict[str, Any]) -> tuple[str, str]:
    known = zones(region)
    name = params.get("AvailabilityZone")
    zone_id = params.get("AvailabilityZoneId")
    if name is None and zone_id is None:
        return known[0]
    for candidate in known:
        if (name is None or candidate[0] == name) and (zone_id is None or candidate[1] == zone_id):
            return candidate
    parameter, value, listed = (
        ("availabilityZone", name, [z[0] for z in known])
        if name is not None
        else ("availabilityZoneId", zone_id, [z[1] for z in known])
    )
    raise error(
        "InvalidParameterValue",
        f"Value ({value}) for parameter {parameter} is invalid. Subnets can currently only be created in "
        f"the following availability zones: {', '.join(listed)}.",
    )


def create_subnet(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    text = required(params, "CidrBlock")
    zone_name, zone_id = _zone(ctx.region, params)
    tags = spec_tags(params, ec2.SUBNET)
    with write(store, ctx) as tx:
        vpc = tx.require(ec2.VPC, params["VpcId"])
        siblings = [IPv4Network(s["CidrBlock"]) for s in tx.find(ec2.SUBNET, vpc_id=vpc["VpcId"])]
        cidr = ipam.validate_subnet_cidr(text, ec2.vpc_cidrs(vpc), siblings)
        dry_run(params)
        view = new_subnet(tx, vpc, cidr, (zone_name, zone_id), tags)
    return {"Subnet": view}


def new_subnet(
    tx: Ec2Tx,
    vpc: Vpc,
    cidr: IPv4Network,
    zone: tuple[str, str],
    tags: list[Ec2Tag],
    *,
    default_for_az: bool = False,
) -> Subnet:
    """A subnet (CreateSubnet's, and the default subnets', code path), as DescribeSubnets shows it.
    A default subnet maps public addresses on launch, as EC2's do."""
    subnet_id = tx.new_id(ec2.SUBNET)
    subnet: Subnet = {
        "AvailabilityZone": zone[0],
        "AvailabilityZoneId": zone[1],
        "CidrBlock": str(cidr),
        "DefaultForAz": default_for_az,
        "MapPublicIpOnLaunch": default_for_az,
        "MapCustomerOwnedIpOnLaunch": False,
        "State": "available",
        "SubnetId": subnet_id,
        "VpcId": vpc["VpcId"],
        "OwnerId": tx.account,
        "AssignIpv6AddressOnCreation": False,
        "Ipv6CidrBlockAssociationSet": [],
        "Ipv6Native": False,
        "EnableDns64": False,
        "SubnetArn": f"arn:aws:ec2:{tx.region}:{tx.account}:subnet/{subnet_id}",
        "PrivateDnsNameOptionsOnLaunch": {
            "HostnameType": "ip-name",
            "EnableResourceNameDnsARecord": False,
            "EnableResourceNameDnsAAAARecord": False,
        },
        "Tags": tags,
    }
    tx.put(ec2.SUBNET, subnet_id, subnet, vpc_id=vpc["VpcId"], subnet_id=subnet_id)
    handlers_nacls.associate_default_acl(tx, subnet)
    view = tx.subnet_view(subnet)
    tx.emit(ec2.VPC_CHANGED, view)
    return view


_SUBNET_FILTERS = {
    "subnet-id": field("SubnetId"),
    "vpc-id": field("VpcId"),
    "cidr-block": field("CidrBlock"),
    "cidr": field("CidrBlock"),
    "cidrBlock": field("CidrBlock"),
    "availability-zone": field("AvailabilityZone"),
    "availabilityZone": field("AvailabilityZone"),
    "availability-zone-id": field("AvailabilityZoneId"),
    "availabilityZoneId": field("AvailabilityZoneId"),
    "available-ip-address-count": field("AvailableIpAddressCount"),
    "state": field("State"),
    "default-for-az": field("DefaultForAz"),
    "defaultForAz": field("DefaultForAz"),
    "map-public-ip-on-launch": field("MapPublicIpOnLaunch"),
    "owner-id": field("OwnerId"),
    "subnet-arn": field("SubnetArn"),
    "ipv6-native": field("Ipv6Native"),
    "enable-dns64": field("EnableDns64"),
    "assign-ipv6-address-on-creation": field("AssignIpv6AddressOnCreation"),
    "private-dns-name-options-on-launch.hostname-type": field(
        "PrivateDnsNameOptionsOnLaunch", "HostnameType"
    ),
    "private-dns-name-options-on-launch.enable-resource-name-dns-a-record": field(
        "PrivateDnsNameOptionsOnLaunch", "EnableResourceNameDnsARecord"
    ),
}


# Filters the store applies in SQL (the resource's columns).
_SUBNET_COLUMNS = {"subnet-id": "id", "vpc-id": "vpc_id"}


def describe_subnets(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    def run(tx: Ec2Tx) -> tuple[list[Subnet], list[Mapping[str, Any]]]:
        found, filters = listing(
            tx, ec2.SUBNET, params.get("SubnetIds"), params.get("Filters"), _SUBNET_COLUMNS
        )
        return tx.subnet_views(found), filters

    found, filters = read(store, ctx, run)
    subnets = apply_filters(found, filters, _SUBNET_FILTERS)
    dry_run(params)
    page, token = paginate(subnets, params)
    return with_token({"Subnets": page}, token)


def delete_subnet(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    subnet_id = params["SubnetId"]
    with write(store, ctx) as tx:
        subnet = tx.require(ec2.SUBNET, subnet_id)
        live_nats = [
            n
            for n in tx.find(ec2.NAT_GATEWAY, subnet_id=subnet_id)
            if n["State"] not in ("deleted", "failed")
        ]
        if tx.find(ec2.NETWORK_INTERFACE, subnet_id=subnet_id) or live_nats or tx.address_count(subnet_id):
            raise dependency("subnet", subnet_id)
        dry_run(params)
        for table in tx.find(ec2.ROUTE_TABLE, vpc_id=subnet["VpcId"]):
            kept = [a for a in table["Associations"] if a.get("SubnetId") != subnet_id]
            if len(kept) != len(table["Associations"]):
                table["Associations"] = kept
                tx.update(table["RouteTableId"], table)
                tx.emit(ec2.ROUTE_CHANGED, table)
        handlers_nacls.forget_subnet(tx, subnet)
        tx.remove(subnet_id)
        tx.emit(ec2.VPC_CHANGED, {**public(subnet), "State": "deleted"})
    return {}


_SUBNET_BOOLEANS = {
    "MapPublicIpOnLaunch": ("MapPublicIpOnLaunch",),
    "AssignIpv6AddressOnCreation": ("AssignIpv6AddressOnCreation",),
    "EnableDns64": ("EnableDns64",),
    "MapCustomerOwnedIpOnLaunch": ("MapCustomerOwnedIpOnLaunch",),
    "EnableResourceNameDnsARecordOnLaunch": ("PrivateDnsNameOptionsOnLaunch", "EnableResourceNameDnsARecord"),
    "EnableResourceNameDnsAAAARecordOnLaunch": (
        "PrivateDnsNameOptionsOnLaunch",
        "EnableResourceNameDnsAAAARecord",
    ),
}
# Attributes that need what lamina's VPCs have not got (IPv6 blocks, Outposts).
_NEEDS_IPV6 = ("AssignIpv6AddressOnCreation", "EnableResourceNameDnsAAAARecordOnLaunch")
_UNSUPPORTED_SUBNET = ("CustomerOwnedIpv4Pool", "EnableLniAtDeviceIndex", "DisableLniAtDeviceIndex")


def modify_subnet_attribute(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """ModifySubnetAttribute: one attribute per call, as EC2 takes them; DescribeSubnets shows it."""
    for name in _UNSUPPORTED_SUBNET:
        if params.get(name) is not None:
            raise error("UnsupportedOperation", f"{name} is not supported by lamina.")
    given = [n for n in (*_SUBNET_BOOLEANS, "PrivateDnsHostnameTypeOnLaunch") if params.get(n) is not None]
    if not given:
        raise error("MissingParameter", "The request must contain exactly one attribute to modify.")
    if len(given) > 1:
        raise error("InvalidParameterCombination", "Only one attribute can be modified at a time.")
    name = given[0]
    with write(store, ctx) as tx:
        subnet = tx.require(ec2.SUBNET, params["SubnetId"])
        if name == "PrivateDnsHostnameTypeOnLaunch":
            value = params[name]
            if value not in ("ip-name", "resource-name"):
                raise error(
                    "InvalidParameterValue",
                    f"Value ({value}) for parameter privateDnsHostnameTypeOnLaunch is invalid.",
                )
            options = dict(subnet.get("PrivateDnsNameOptionsOnLaunch") or {})
            options["HostnameType"] = value
            subnet["PrivateDnsNameOptionsOnLaunch"] = options  # type: ignore[typeddict-item]
        else:
            flag = params[name].get("Value")
            if flag is None:
                raise error("MissingParameter", f"The request must contain the parameter {name}.Value")
            flag = bool(flag)
            if flag and name in _NEEDS_IPV6 and not subnet.get("Ipv6CidrBlockAssociationSet"):
                raise error(
                    "InvalidParameterValue",
                    f"Invalid value 'true' for {name[0].lower() + name[1:]}. "
                    f"Subnet {subnet['SubnetId']} has no IPv6 CIDR block.",
                )
            if flag and name == "MapCustomerOwnedIpOnLaunch":
                raise error(
                    "UnsupportedOperation", "Customer-owned addresses (Outposts) are not supported by lamina."
                )
            path = _SUBNET_BOOLEANS[name]
            if len(path) == 1:
                subnet[path[0]] = flag  # type: ignore[literal-required]
            else:
                options = dict(subnet.get("PrivateDnsNameOptionsOnLaunch") or {})
                options[path[1]] = flag
                subnet["PrivateDnsNameOptionsOnLaunch"] = options  # type: ignore[typeddict-item]
        dry_run(params)
        tx.update(subnet["SubnetId"], subnet)
        tx.emit(ec2.VPC_CHANGED, tx.subnet_view(subnet))
    return {}


# -- availability zones ---------------------------------------------------------------------------------


_ZONE_FILTERS = {
    "zone-name": field("ZoneName"),
    "zone-id": field("ZoneId"),
    "region-name": field("RegionName"),
    "state": field("State"),
    "zone-type": field("ZoneType"),
    "group-name": field("GroupName"),
    "opt-in-status": field("OptInStatus"),
    "network-border-group": field("NetworkBorderGroup"),
}


def describe_availability_zones(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    listed = [
        {
            "State": "available",
            "OptInStatus": "opt-in-not-required",
            "Messages": [],
            "RegionName": ctx.region,
            "ZoneName": name,
            "ZoneId": zone_id,
            "GroupName": ctx.region,
            "NetworkBorderGroup": ctx.region,
            "ZoneType": "availability-zone",
        }
        for name, zone_id in zones(ctx.region)
    ]
    for key, param in (("ZoneName", "ZoneNames"), ("ZoneId", "ZoneIds")):
        wanted = params.get(param)
        if wanted:
            known = {z[key] for z in listed}
            unknown = [w for w in wanted if w not in known]
            if unknown:
                raise error("InvalidParameterValue", f"Invalid availability zone: [{', '.join(unknown)}]")
            listed = [z for z in listed if z[key] in wanted]
    listed = apply_filters(listed, params.get("Filters"), _ZONE_FILTERS)
    dry_run(params)
    return {"AvailabilityZones": listed}


HANDLERS = {
    "CreateVpc": create_vpc,
    "DescribeVpcs": describe_vpcs,
    "DeleteVpc": delete_vpc,
    "CreateSubnet": create_subnet,
    "DescribeSubnets": describe_subnets,
    "DeleteSubnet": delete_subnet,
    "ModifySubnetAttribute": modify_subnet_attribute,
    "DescribeAvailabilityZones": describe_availability_zones,
}
