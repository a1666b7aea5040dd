"""EC2 (the VPC subset): resource kinds and ids, EC2's errors, and the rules that shape resources.

Pure: no database, no I/O; times (``now_ms``) and random bytes are passed in. The store
(:mod:`lamina.store.ec2`) keeps resources as the AWS-shaped dicts EC2 describes (keys starting
with ``_`` are lamina's own bookkeeping and never leave the server) and applies these rules
inside its transactions; the EC2 handlers (``services/ec2``) use them too. Each resource kind
(:class:`Kind`) carries the TypedDicts (:mod:`lamina.domain.ec2_models`) of what the store keeps
and of what EC2 describes.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any, Final, Generic, TypedDict, TypeVar, cast

from lamina.domain import ipam
from lamina.domain import routes as R
from lamina.domain import secgroups as S
from lamina.domain.ec2_models import (
    Address,
    DhcpOptions,
    Ec2Tag,
    GroupIdentifier,
    InternetGateway,
    NatGateway,
    NetworkAcl,
    NetworkInterface,
    NetworkInterfaceAssociation,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    StoredAddress,
    StoredDhcpOptions,
    StoredNatGateway,
    Subnet,
    Vpc,
)
from lamina.domain.ec2_models import Route as RouteItem
from lamina.errors import AwsError

Stored = TypeVar("Stored")
Wire = TypeVar("Wire")


class Kind(str, Generic[Stored, Wire]):
    """A resource kind: EC2's ResourceType name (``vpc``, ``subnet``, ...; a plain string at run
    time), typed by the body the store keeps for it (``Stored``) and the one EC2 describes
    (``Wire``: the same but for lamina's ``_`` bookkeeping keys)."""

    __slots__ = ()


# Resource kinds: EC2's ResourceType names (TagSpecifications use them).
VPC: Final[Kind[Vpc, Vpc]] = Kind("vpc")
SUBNET: Final[Kind[Subnet, Subnet]] = Kind("subnet")
SECURITY_GROUP: Final[Kind[SecurityGroup, SecurityGroup]] = Kind("security-group")
INTERNET_GATEWAY: Final[Kind[InternetGateway, InternetGateway]] = Kind("internet-gateway")
ELASTIC_IP: Final[Kind[StoredAddress, Address]] = Kind("elastic-ip")
NAT_GATEWAY: Final[Kind[StoredNatGateway, NatGateway]] = Kind("natgateway")
ROUTE_TABLE: Final[Kind[RouteTable, RouteTable]] = Kind("route-table")
NETWORK_INTERFACE: Final[Kind[NetworkInterface, NetworkInterface]] = Kind("network-interface")
NETWORK_ACL: Final[Kind[NetworkAcl, NetworkAcl]] = Kind("network-acl")
# Rules have a table of their own (:class:`StoredRule`); the kind names their ids and errors.
SECURITY_GROUP_RULE: Final[Kind[SecurityGroupRule, SecurityGroupRule]] = Kind("security-group-rule")
DHCP_OPTIONS: Final[Kind[StoredDhcpOptions, DhcpOptions]] = Kind("dhcp-options")
# VPC endpoints (``domain.endpoints``): stored as EC2 describes them.
VPC_ENDPOINT: Final[Kind[dict[str, Any], dict[str, Any]]] = Kind("vpc-endpoint")

PREFIXES: Final[dict[Kind[Any, Any], str]] = {
    VPC: "vpc",
    SUBNET: "subnet",
    SECURITY_GROUP: "sg",
    INTERNET_GATEWAY: "igw",
    ELASTIC_IP: "eipalloc",
    NAT_GATEWAY: "nat",
    ROUTE_TABLE: "rtb",
    NETWORK_INTERFACE: "eni",
    SECURITY_GROUP_RULE: "sgr",
    NETWORK_ACL: "acl",
    DHCP_OPTIONS: "dopt",
    VPC_ENDPOINT: "vpce",
}
# Every kind by its name.
KINDS: Final[dict[str, Kind[Any, Any]]] = {kind: kind for kind in PREFIXES}
_KIND_OF_PREFIX: Final[dict[str, Kind[Any, Any]]] = {prefix: kind for kind, prefix in PREFIXES.items()}

# EC2's NotFound errors, as real EC2 words them.
_NOT_FOUND: Final[dict[str, tuple[str, str]]] = {
    VPC: ("InvalidVpcID.NotFound", "The vpc ID '{}' does not exist"),
    SUBNET: ("InvalidSubnetID.NotFound", "The subnet ID '{}' does not exist"),
    SECURITY_GROUP: ("InvalidGroup.NotFound", "The security group '{}' does not exist"),
    INTERNET_GATEWAY: ("InvalidInternetGatewayID.NotFound", "The internetGateway ID '{}' does not exist"),
    ELASTIC_IP: ("InvalidAllocationID.NotFound", "The allocation ID '{}' does not exist"),
    NAT_GATEWAY: ("NatGatewayNotFound", "NAT gateway {} was not found"),
    ROUTE_TABLE: ("InvalidRouteTableID.NotFound", "The routeTable ID '{}' does not exist"),
    NETWORK_INTERFACE: ("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '{}' does not exist"),
    NETWORK_ACL: ("InvalidNetworkAclID.NotFound", "The networkAcl ID '{}' does not exist"),
    VPC_ENDPOINT: ("InvalidVpcEndpointId.NotFound", "The VpcEndpoint Id '{}' does not exist"),
    SECURITY_GROUP_RULE: (
        "InvalidSecurityGroupRuleId.NotFound",
        "The security group rule ID '{}' does not exist",
    ),
    DHCP_OPTIONS: ("InvalidDhcpOptionID.NotFound", "The dhcpOption ID '{}' does not exist"),
}

DEFAULT_PUBLIC_POOL: Final = IPv4Network("203.0.113.0/24")  # TEST-NET-3 (RFC 5737)
#: Elastic IP addresses an account may hold in a region (EC2's quota, "EC2-VPC Elastic IPs": 5):
#: the pool is shared by every account, and one must not take it all.
MAX_ELASTIC_IPS: Final = 5
# EC2 keeps deleted (and failed) NAT gateways visible for about an hour.
NAT_GATEWAY_RETENTION_MS: Final = 3600_000

# Changes the store tells its listeners of, after the commit.
INTERFACE_CREATED: Final = "interface-created"
INTERFACE_DELETED: Final = "interface-deleted"
SECURITY_GROUP_CHANGED: Final = "security-group-changed"
ROUTE_CHANGED: Final = "route-changed"
VPC_CHANGED: Final = "vpc-changed"  # VPCs, subnets, internet and NAT gateways come and go
INTERFACE_CHANGED: Final = "interface-changed"  # an interface's groups or Elastic IP changed
NETWORK_ACL_CHANGED: Final = "network-acl-changed"  # entries or associations (domain.nacls)

# Interface types a customer creates (``available`` until attached); any other type belongs to a
# service (``lambda``, ``nat_gateway``) and is ``in-use`` from the start.
_CUSTOMER_INTERFACE_TYPES: Final = frozenset({"interface", "efa", "efa-only", "branch", "trunk"})


def error(code: str, message: str) -> AwsError:
    """An EC2 client error (400)."""
    return AwsError(message, code=code, status=400, sender_fault=True)


def not_found(kind: str, resource_id: str) -> AwsError:
    """EC2's NotFound error for a resource id of ``kind``."""
    code, message = _NOT_FOUND[kind]
    return error(code, message.format(resource_id))


def new_id(kind: Kind[Any, Any], random: bytes) -> str:
    """A new id of ``kind`` (``vpc-...``) from 9 random bytes."""
    return ipam.new_id(PREFIXES[kind], random)


def kind_of(resource_id: str) -> Kind[Any, Any] | None:
    """The kind of resource an id names, from its prefix (``vpc-...`` -> ``vpc``)."""
    prefix, dash, _ = resource_id.rpartition("-")
    return _KIND_OF_PREFIX.get(prefix) if dash else None


def public(body: Mapping[str, Any]) -> dict[str, Any]:
    """A stored resource without lamina's bookkeeping keys, untyped (what listeners are told)."""
    return {k: v for k, v in body.items() if not k.startswith("_")}


# The kinds whose stored body is their wire body (no bookkeeping key is declared for them).
Plain = TypeVar(
    "Plain", Vpc, Subnet, SecurityGroup, InternetGateway, RouteTable, NetworkInterface, NetworkAcl
)


def wire_copy(body: Plain) -> Plain:
    """A copy of a resource whose stored body is its wire body, as EC2 describes it: a stray ``_``
    key (none is declared for these kinds) still never leaves the server."""
    # What ``public`` removes is no key of ``Plain``: the copy is one.
    return cast(Plain, public(body))


def public_nat(nat: StoredNatGateway) -> NatGateway:
    """A stored NAT gateway as EC2 describes it (a new dict)."""
    out = nat.copy()
    out.pop("_due_ms", None)
    out.pop("_failure", None)
    out.pop("_gone_ms", None)
    return out


def public_address(eip: StoredAddress) -> Address:
    """A stored Elastic IP as EC2 describes it (a new dict)."""
    out = eip.copy()
    out.pop("_nat", None)
    return out


def iso(ms: int) -> str:
    """A time (epoch milliseconds) as lamina stores it: ``datetime.isoformat()`` in UTC."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


# -- security group rules as JSON ---------------------------------------------------------------


# A security group rule as the store keeps it (``ec2_sg_rules.body``): lamina's own format, not an
# AWS shape ("from" is a keyword, hence the functional form).
RuleBody = TypedDict(
    "RuleBody",
    {
        "direction": str,
        "protocol": str,
        "from": int,
        "to": int,
        "cidr_v4": str | None,
        "cidr_v6": str | None,
        "group_id": str | None,
        "group_owner": str | None,
        "description": str | None,
        "tags": list[Ec2Tag],
    },
    total=False,
)


def rule_to_json(rule: S.Rule) -> RuleBody:
    """A rule as the store keeps it."""
    return {
        "direction": rule.direction.value,
        "protocol": rule.protocol,
        "from": rule.from_port,
        "to": rule.to_port,
        "cidr_v4": None if rule.cidr_v4 is None else str(rule.cidr_v4),
        "cidr_v6": None if rule.cidr_v6 is None else str(rule.cidr_v6),
        "group_id": rule.group_id,
        "group_owner": rule.group_owner,
        "description": rule.description,
    }


def rule_from_json(data: RuleBody) -> S.Rule:
    """A stored rule back into the domain's Rule."""
    v4 = data.get("cidr_v4")
    v6 = data.get("cidr_v6")
    return S.Rule(
        S.Direction(data["direction"]),
        data["protocol"],
        int(data["from"]),
        int(data["to"]),
        cidr_v4=IPv4Network(v4) if v4 else None,
        cidr_v6=IPv6Network(v6) if v6 else None,
        group_id=data.get("group_id"),
        group_owner=data.get("group_owner"),
        description=data.get("description"),
    )


@dataclass(frozen=True)
class StoredRule:
    """A security group rule with its id and tags."""

    rule_id: str
    group_id: str
    rule: S.Rule
    tags: list[Ec2Tag] = field(default_factory=list)


# -- routes as JSON (the AWS Route items) ---------------------------------------------------------


def route_from_item(item: RouteItem) -> R.Route:
    """A DescribeRouteTables ``Route`` back into the domain's Route."""
    if item.get("NatGatewayId"):
        kind, target = R.TargetKind.NAT_GATEWAY, item["NatGatewayId"]
    elif item.get("NetworkInterfaceId"):
        kind, target = R.TargetKind.NETWORK_INTERFACE, item["NetworkInterfaceId"]
    elif item.get("GatewayId") == R.LOCAL:
        kind, target = R.TargetKind.LOCAL, R.LOCAL
    else:
        kind, target = R.TargetKind.INTERNET_GATEWAY, item["GatewayId"]
    return R.Route(
        IPv4Network(item["DestinationCidrBlock"]),
        kind,
        target,
        R.RouteState(item.get("State", "active")),
        R.RouteOrigin(item.get("Origin", "CreateRoute")),
    )


def routes_of(table: RouteTable) -> tuple[R.Route, ...]:
    """A route table's routes."""
    return tuple(route_from_item(item) for item in table.get("Routes", []))


def set_routes(table: RouteTable, routes: Iterable[R.Route]) -> None:
    """Replace a route table's routes (in place)."""
    table["Routes"] = [R.to_route_item(r) for r in routes]


def vpc_cidrs(vpc: Vpc) -> list[IPv4Network]:
    """Every IPv4 block of a VPC (its primary one first)."""
    return [IPv4Network(a["CidrBlock"]) for a in vpc.get("CidrBlockAssociationSet", [])] or [
        IPv4Network(vpc["CidrBlock"])
    ]


@functools.lru_cache(maxsize=4096)
def network(cidr: str) -> IPv4Network:
    """A subnet's block, parsed once (networks are immutable; parsing costs microseconds)."""
    return IPv4Network(cidr)


# -- views: resources as Describe* shows them -----------------------------------------------------


def subnet_view(subnet: Subnet, addresses_in_use: int) -> Subnet:
    """A subnet as DescribeSubnets shows it (a new dict): ``AvailableIpAddressCount`` from the
    allocator."""
    out = wire_copy(subnet)
    out["AvailableIpAddressCount"] = available_addresses(subnet, addresses_in_use)
    return out


def available_addresses(subnet: Subnet, addresses_in_use: int) -> int:
    """A subnet's ``AvailableIpAddressCount`` when ``addresses_in_use`` of its addresses are taken."""
    return ipam.available_count(network(subnet["CidrBlock"]), addresses_in_use)


def group_view(group: SecurityGroup, rules: Sequence[S.Rule], account: str) -> SecurityGroup:
    """A security group as DescribeSecurityGroups shows it (a new dict), its rules grouped into
    permissions."""
    out = wire_copy(group)
    out["IpPermissions"] = S.to_ip_permissions(rules, S.Direction.INGRESS, owner_id=account)
    out["IpPermissionsEgress"] = S.to_ip_permissions(rules, S.Direction.EGRESS, owner_id=account)
    return out


def default_group(groups: Iterable[SecurityGroup]) -> SecurityGroup | None:
    """The ``default`` group among a VPC's security groups."""
    return next((g for g in groups if g["GroupName"] == "default"), None)


# -- addresses ----------------------------------------------------------------------------------


def private_dns_name(address: IPv4Address, region: str) -> str:
    """EC2's private DNS name for an address (us-east-1 uses ``ec2.internal``)."""
    host = "ip-" + str(address).replace(".", "-")
    return f"{host}.ec2.internal" if region == "us-east-1" else f"{host}.{region}.compute.internal"


def requested_private_ip(text: str | None) -> IPv4Address | None:
    """A requested private address (``privateIpAddress``), or EC2's error for a malformed one."""
    if text is None:
        return None
    try:
        return IPv4Address(text)
    except ValueError:
        raise error(
            "InvalidParameterValue",
            f"Value ({text}) for parameter privateIpAddress is invalid. Invalid format.",
        ) from None


def choose_public_address(pool: IPv4Network, taken: Collection[str], requested: str | None) -> str:
    """The Elastic IP address to allocate from ``pool``: ``requested`` if free, else the lowest free
    one; EC2's errors for a malformed, unknown or taken request and for an exhausted pool."""
    if requested is not None:
        try:
            wanted = IPv4Address(requested)
        except ValueError:
            raise error("InvalidParameterValue", f"Invalid value '{requested}' for address") from None
        if (
            wanted not in pool
            or str(wanted) in taken
            or wanted in (pool.network_address, pool.broadcast_address)
        ):
            raise error("InvalidAddress.NotFound", f"Address '{requested}' not found.")
        return str(wanted)
    choice = next((str(a) for a in pool.hosts() if str(a) not in taken), None)
    if choice is None:
        raise error("AddressLimitExceeded", "The maximum number of addresses has been reached.")
    return choice


# -- network interfaces -------------------------------------------------------------------------


def check_interface_group(subnet: Subnet, group: SecurityGroup) -> None:
    """An interface's security group must be in its subnet's VPC."""
    if group["VpcId"] != subnet["VpcId"]:
        raise error(
            "InvalidParameter",
            f"Security group {group['GroupId']} and subnet {subnet['SubnetId']} belong to different networks.",
        )


@dataclass(frozen=True)
class InterfaceSpec:
    """What a new network interface is made of (besides its subnet, groups and address)."""

    description: str
    interface_type: str = "interface"
    requester_managed: bool = False
    tags: Sequence[Ec2Tag] = ()


def new_interface(
    eni_id: str,
    subnet: Subnet,
    groups: Sequence[SecurityGroup],
    address: IPv4Address,
    spec: InterfaceSpec,
    *,
    account: str,
    region: str,
    now_ms: int,
    random: bytes,
) -> NetworkInterface:
    """A new network interface as EC2 describes it. Interfaces of other services (``lambda``,
    ``nat_gateway``) and requester-managed ones are ``in-use`` and attached, as EC2 shows them.

    ``random``: 14 random bytes (the MAC address and the attachment id).
    """
    dns = private_dns_name(address, region)
    in_use = spec.requester_managed or spec.interface_type not in _CUSTOMER_INTERFACE_TYPES
    eni: NetworkInterface = {"AvailabilityZone": subnet["AvailabilityZone"]}
    zone_id = subnet.get("AvailabilityZoneId")
    if zone_id is not None:  # every subnet EC2 creates has one
        eni["AvailabilityZoneId"] = zone_id
    eni.update(
        {
            "Description": spec.description,
            "Groups": [GroupIdentifier(GroupId=g["GroupId"], GroupName=g["GroupName"]) for g in groups],
            "InterfaceType": spec.interface_type,
            "Ipv6Addresses": [],
            "MacAddress": "02:" + ":".join(f"{b:02x}" for b in random[:5]),
            "NetworkInterfaceId": eni_id,
            "OwnerId": account,
            "PrivateDnsName": dns,
            "PrivateIpAddress": str(address),
            "PrivateIpAddresses": [
                {"Primary": True, "PrivateIpAddress": str(address), "PrivateDnsName": dns}
            ],
            "RequesterManaged": spec.requester_managed,
            "SourceDestCheck": True,
            "Status": "in-use" if in_use else "available",
            "SubnetId": subnet["SubnetId"],
            "TagSet": list(spec.tags),
            "VpcId": subnet["VpcId"],
        }
    )
    if in_use:
        eni["Attachment"] = {
            "AttachmentId": "ela-attach-" + random[5:14].hex()[:17],
            "AttachTime": iso(now_ms),
            "DeleteOnTermination": False,
            "DeviceIndex": 1,
            "InstanceOwnerId": "amazon-aws",
            "Status": "attached",
        }
    return eni


# -- NAT gateway lifecycle ------------------------------------------------------------------------


class NatStep(enum.Enum):
    """What :func:`advance_nat_gateway` did to a NAT gateway."""

    UNCHANGED = "unchanged"
    AVAILABLE = "available"  # pending -> available
    FAILED = "failed"  # pending -> failed: its interface and Elastic IP go, routes to it blackhole
    DELETED = "deleted"  # deleting -> deleted
    EXPIRED = "expired"  # deleted or failed long enough ago: forget it


def advance_nat_gateway(
    nat: StoredNatGateway, now_ms: int, gateway_attached: Callable[[str], bool]
) -> NatStep:
    """Move a NAT gateway (in place) along its states once its delay (``_due_ms``) has passed:
    ``pending`` -> ``available`` (or ``failed`` with EC2's reason: a public NAT gateway needs an
    internet gateway on its VPC, asked of ``gateway_attached(vpc_id)``), ``deleting`` ->
    ``deleted``; deleted and failed ones expire after :data:`NAT_GATEWAY_RETENTION_MS`."""
    state = nat["State"]
    due = int(nat.get("_due_ms", 0)) <= now_ms
    if state == "pending" and due:
        failure = nat.pop("_failure", None)
        public_nat = nat.get("ConnectivityType", "public") == "public"
        if failure is None and public_nat and not gateway_attached(nat["VpcId"]):
            failure = ["Gateway.NotAttached", f"Network {nat['VpcId']} has no Internet gateway attached"]
        if failure is None:
            nat["State"] = "available"
            for address in nat.get("NatGatewayAddresses", []):
                address["Status"] = "succeeded"
            return NatStep.AVAILABLE
        nat["State"] = "failed"
        nat["FailureCode"], nat["FailureMessage"] = failure
        nat["DeleteTime"] = iso(now_ms)
        nat["_gone_ms"] = now_ms
        for address in nat.get("NatGatewayAddresses", []):
            address["Status"] = "failed"
            address["FailureMessage"] = failure[1]
        return NatStep.FAILED
    if state == "deleting" and due:
        nat["State"] = "deleted"
        nat["_gone_ms"] = now_ms
        return NatStep.DELETED
    if state in ("deleted", "failed") and now_ms - int(nat.get("_gone_ms", 0)) > NAT_GATEWAY_RETENTION_MS:
        return NatStep.EXPIRED
    return NatStep.UNCHANGED


def public_dns_name(public_ip: str, region: str) -> str:
    """The public DNS name EC2 gives a public address: ``ec2-203-0-113-5.compute-1.amazonaws.com``
    in us-east-1, ``ec2-....<region>.compute.amazonaws.com`` elsewhere."""
    label = "ec2-" + public_ip.replace(".", "-")
    if region == "us-east-1":
        return f"{label}.compute-1.amazonaws.com"
    return f"{label}.{region}.compute.amazonaws.com"


def associate_with_interface(
    eip: StoredAddress, eni: NetworkInterface, association_id: str, *, account: str, region: str
) -> None:
    """Associate an Elastic IP with an interface's primary address (both changed in place)."""
    eip["AssociationId"] = association_id
    eip["NetworkInterfaceId"] = eni["NetworkInterfaceId"]
    eip["NetworkInterfaceOwnerId"] = eni.get("OwnerId", account)
    eip["PrivateIpAddress"] = eni["PrivateIpAddress"]
    association: NetworkInterfaceAssociation = {
        "AllocationId": eip["AllocationId"],
        "AssociationId": association_id,
        "IpOwnerId": account,
        "PublicDnsName": public_dns_name(eip["PublicIp"], region),
        "PublicIp": eip["PublicIp"],
    }
    eni["Association"] = association
    for private in eni.get("PrivateIpAddresses", []):
        if private.get("Primary"):
            private["Association"] = association


def dissociate(eip: StoredAddress, eni: NetworkInterface | None) -> None:
    """Undo :func:`associate_with_interface` (in place; ``eni`` None when it is gone)."""
    for key in ("AssociationId", "NetworkInterfaceId", "NetworkInterfaceOwnerId", "PrivateIpAddress"):
        eip.pop(key, None)  # type: ignore[misc]  # (the keys are literal; mypy cannot tell in a loop)
    if eni is not None:
        eni.pop("Association", None)
        for private in eni.get("PrivateIpAddresses", []):
            private.pop("Association", None)


def release_from_nat(eip: StoredAddress, nat_id: str) -> bool:
    """Drop an Elastic IP's association with NAT gateway ``nat_id`` (in place: what the
    association added to it); False if it was not associated with it."""
    if eip.get("_nat") != nat_id:
        return False
    eip.pop("AssociationId", None)
    eip.pop("NetworkInterfaceId", None)
    eip.pop("NetworkInterfaceOwnerId", None)
    eip.pop("PrivateIpAddress", None)
    eip.pop("_nat", None)
    return True
