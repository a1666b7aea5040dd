"""The account's view of EC2: its default VPC, its attributes and the regions.

**The default VPC** (VPC user guide, "Default VPCs"): ``172.31.0.0/16``, ``IsDefault``, a default
``/20`` subnet per availability zone (``172.31.0.0/20`` in ``<region>a``, ``172.31.16.0/20`` in
``b``, ``172.31.32.0/20`` in ``c``; ``DefaultForAz``, ``MapPublicIpOnLaunch``), an internet
gateway attached to it, and ``0.0.0.0/0`` to that gateway in its main route table; its
``default`` security group and everything else a VPC comes with, since it is made by the code
path CreateVpc uses. AWS makes it when the account is created; lamina makes it the first time
an (account, region) is used at all, whatever the call (:meth:`lamina.store.ec2.Ec2Store.prepare`):
atomically, once ever, so a deleted default VPC stays deleted (``default-vpc`` is then ``none``)
until CreateDefaultVpc. An empty VPC has no data plane, so it costs nothing until an interface
is made in it.

**DescribeAccountAttributes** answers as AWS does for an account today (``supported-platforms``
``VPC``; 5 security groups per interface, 5 Elastic IPs); **DescribeRegions** lists the regions of
AWS's ``aws`` partition (from botocore's endpoint data) with their endpoints. lamina serves any
region, so the regions AWS makes accounts opt in to are ``opted-in`` here.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

from lamina.domain import ec2
from lamina.domain import routes as R
from lamina.domain.ec2 import error, routes_of, set_routes
from lamina.domain.ec2_models import InternetGateway, Subnet, Vpc
from lamina.services.base import RequestContext
from lamina.services.ec2.handlers_tags import apply_filters, dry_run, field, read, write
from lamina.services.ec2.handlers_vpcs import new_subnet, new_vpc, zones
from lamina.store.ec2 import Ec2Store, Ec2Tx

DEFAULT_VPC_CIDR = IPv4Network("172.31.0.0/16")
DEFAULT_SUBNET_PREFIX = 20

# The regions every account has without opting in (AWS General Reference, "Regions").
_ENABLED_BY_DEFAULT = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "eu-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-north-1",
        "sa-east-1",
    }
)

# DescribeAccountAttributes' answer, in the order AWS lists it.
MAX_INSTANCES = 20
MAX_ELASTIC_IPS = ec2.MAX_ELASTIC_IPS
MAX_GROUPS_PER_INTERFACE = 5


# -- the default VPC --------------------------------------------------------------------------------


def default_vpc_of(tx: Ec2Tx) -> Vpc | None:
    return next((v for v in tx.find(ec2.VPC) if v.get("IsDefault")), None)


def _free_default_block(tx: Ec2Tx, vpc: Vpc) -> IPv4Network | None:
    taken = [IPv4Network(s["CidrBlock"]) for s in tx.find(ec2.SUBNET, vpc_id=vpc["VpcId"])]
    for block in IPv4Network(vpc["CidrBlock"]).subnets(new_prefix=DEFAULT_SUBNET_PREFIX):
        if not any(block.overlaps(t) for t in taken):
            return block
    return None


def build_default_vpc(tx: Ec2Tx) -> Vpc:
    """The default VPC of ``tx``'s (account, region), with its subnets, internet gateway and route."""
    vpc = new_vpc(tx, DEFAULT_VPC_CIDR, [], is_default=True)
    vpc_id = vpc["VpcId"]
    igw_id = tx.new_id(ec2.INTERNET_GATEWAY)
    igw: InternetGateway = {
        "Attachments": [{"State": "available", "VpcId": vpc_id}],
        "InternetGatewayId": igw_id,
        "OwnerId": tx.account,
        "Tags": [],
    }
    tx.put(ec2.INTERNET_GATEWAY, igw_id, igw, vpc_id=vpc_id)
    tx.emit(ec2.VPC_CHANGED, igw)
    for table in tx.find(ec2.ROUTE_TABLE, vpc_id=vpc_id):
        routes = R.add_route(
            routes_of(table),
            IPv4Network("0.0.0.0/0"),
            R.TargetKind.INTERNET_GATEWAY,
            igw_id,
            ec2.vpc_cidrs(vpc),
        )
        set_routes(table, routes)
        tx.update(table["RouteTableId"], table)
        tx.emit(ec2.ROUTE_CHANGED, table)
    for zone in zones(tx.region):
        block = _free_default_block(tx, vpc)
        assert block is not None  # a /16 holds sixteen /20s
        new_subnet(tx, vpc, block, zone, [], default_for_az=True)
    return vpc


def create_default_vpc(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    with write(store, ctx) as tx:
        if default_vpc_of(tx) is not None:
            raise error(
                "DefaultVpcAlreadyExists",
                "A Default VPC already exists for this account in this region.",
            )
        dry_run(params)
        vpc = build_default_vpc(tx)
    return {"Vpc": {**vpc, "State": "pending"}}


def create_default_subnet(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("Ipv6Native"):
        raise error("UnsupportedOperation", "IPv6-only subnets are not supported by lamina.")
    name, zone_id = params.get("AvailabilityZone"), params.get("AvailabilityZoneId")
    if name is None and zone_id is None:
        raise error("MissingParameter", "The request must contain the parameter availabilityZone")
    zone = next(
        (
            z
            for z in zones(ctx.region)
            if (name is None or z[0] == name) and (zone_id is None or z[1] == zone_id)
        ),
        None,
    )
    if zone is None:
        raise error(
            "InvalidParameterValue",
            f"Value ({name if name is not None else zone_id}) for parameter availabilityZone is invalid. "
            f"Subnets can currently only be created in the following availability zones: "
            f"{', '.join(z[0] for z in zones(ctx.region))}.",
        )
    with write(store, ctx) as tx:
        vpc = default_vpc_of(tx)
        if vpc is None:
            raise error("DefaultVpcDoesNotExist", "No default VPC exists for this account in this region.")
        if any(
            s.get("DefaultForAz") and s["AvailabilityZone"] == zone[0]
            for s in tx.find(ec2.SUBNET, vpc_id=vpc["VpcId"])
        ):
            raise error(
                "DefaultSubnetAlreadyExistsInAvailabilityZone",
                f"A default subnet already exists in availability zone {zone[0]}.",
            )
        block = _free_default_block(tx, vpc)
        if block is None:
            raise error(
                "InsufficientFreeAddressesInSubnet",
                f"The default VPC {vpc['VpcId']} has no free /{DEFAULT_SUBNET_PREFIX} block left.",
            )
        dry_run(params)
        subnet: Subnet = new_subnet(tx, vpc, block, zone, [], default_for_az=True)
    return {"Subnet": subnet}


# -- account attributes ---------------------------------------------------------------------------


def describe_account_attributes(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    vpc = read(store, ctx, default_vpc_of)
    attributes: dict[str, list[str]] = {
        "vpc-max-security-groups-per-interface": [str(MAX_GROUPS_PER_INTERFACE)],
        "max-instances": [str(MAX_INSTANCES)],
        "supported-platforms": ["VPC"],
        "default-vpc": [vpc["VpcId"] if vpc is not None else "none"],
        "max-elastic-ips": [str(MAX_ELASTIC_IPS)],
        "vpc-max-elastic-ips": [str(MAX_ELASTIC_IPS)],
    }
    names = params.get("AttributeNames") or list(attributes)
    for name in names:
        if name not in attributes:
            raise error("InvalidParameter", f"Value ({name}) for parameter attributeName is invalid.")
    dry_run(params)
    return {
        "AccountAttributes": [
            {"AttributeName": n, "AttributeValues": [{"AttributeValue": v} for v in attributes[n]]}
            for n in dict.fromkeys(names)
        ]
    }


# -- regions --------------------------------------------------------------------------------------------


def aws_regions(loader: Any) -> list[str]:
    """The regions of AWS's ``aws`` partition, from botocore's endpoint data (``loader``: a
    botocore session)."""
    data = loader.get_data("endpoints")
    for partition in data.get("partitions", []):
        if partition.get("partition") == "aws":
            return sorted(partition.get("regions", {}))
    return sorted(_ENABLED_BY_DEFAULT)


_REGION_FILTERS = {
    "endpoint": field("Endpoint"),
    "opt-in-status": field("OptInStatus"),
    "region-name": field("RegionName"),
}


def regions_handler(names: list[str]) -> Any:
    """DescribeRegions over ``names`` (the partition's regions)."""

    def describe_regions(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        known = list(dict.fromkeys([*names, ctx.region]))
        listed = [
            {
                "OptInStatus": "opt-in-not-required" if name in _ENABLED_BY_DEFAULT else "opted-in",
                "RegionName": name,
                "Endpoint": f"ec2.{name}.amazonaws.com",
            }
            for name in known
        ]
        wanted = params.get("RegionNames")
        if wanted:
            unknown = [w for w in wanted if w not in known]
            if unknown:
                raise error("InvalidParameterValue", f"Invalid region names: [{', '.join(unknown)}]")
            listed = [r for r in listed if r["RegionName"] in wanted]
        listed = apply_filters(listed, params.get("Filters"), _REGION_FILTERS)
        dry_run(params)
        return {"Regions": listed}

    return describe_regions


HANDLERS = {
    "CreateDefaultVpc": create_default_vpc,
    "CreateDefaultSubnet": create_default_subnet,
    "DescribeAccountAttributes": describe_account_attributes,
}
