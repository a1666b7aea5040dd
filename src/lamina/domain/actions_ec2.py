"""EC2's rows of the authorization table (pure), for the VPC subset lamina serves.

Facts from the Service Authorization Reference, "Actions, resources, and condition keys for Amazon
EC2": resources are ``arn:aws:ec2:REGION:ACCOUNT:TYPE/ID`` with the types ``vpc``, ``subnet``,
``security-group``, ``network-interface``, ``route-table``, ``internet-gateway``, ``natgateway`` and
``elastic-ip`` (an Elastic IP by its allocation id); Describe* actions take no resource; a Create*
call is authorized on the type of what it creates with "*" for the id it has not got yet
(``arn:aws:ec2:R:A:vpc/*``); ``ec2:Vpc`` and ``ec2:Subnet`` hold the ARN of the VPC or subnet a new
resource goes into; tags set by ``TagSpecifications`` or ``CreateTags`` give ``aws:RequestTag/*`` and
``aws:TagKeys``. One check names the operation's primary resource (CreateTags and DeleteTags: each
resource they tag). Without a ``GroupId`` (a security group by name), an ``AllocationId`` (an address
by public IP) or a route table (DisassociateRouteTable's association id) the id reads as "*".
"""

from __future__ import annotations

from collections.abc import Mapping

from lamina.domain.actions_spec import (
    Call,
    Context,
    ContextValue,
    Resource,
    Spec,
    multi,
    request_tags,
    tag_pairs,
)
from lamina.domain.arns import PARTITION

# The resource type of an id, by the prefix EC2 gives its ids.
ID_TYPES = {
    "vpc": "vpc",
    "subnet": "subnet",
    "sg": "security-group",
    "sgr": "security-group-rule",
    "eni": "network-interface",
    "rtb": "route-table",
    "igw": "internet-gateway",
    "nat": "natgateway",
    "eipalloc": "elastic-ip",
    "acl": "network-acl",
    "dopt": "dhcp-options",
    "vpce": "vpc-endpoint",
}


def ec2_arn(call: Call, kind: str, resource_id: str) -> str:
    return f"arn:{PARTITION}:ec2:{call.region}:{call.account}:{kind}/{resource_id}"


def by_id(kind: str, key: str) -> Resource:
    """The existing ``kind`` whose id is the parameter ``key`` ("*" when the request has none)."""
    return lambda call: ec2_arn(call, kind, call.text(key) or "*")


def new(kind: str) -> Resource:
    """What a Create* call makes: its type, no id yet."""
    return lambda call: ec2_arn(call, kind, "*")


def tagged(call: Call) -> tuple[str, ...]:
    """Each resource of CreateTags/DeleteTags, typed by its id's prefix."""
    ids = call.texts("Resources") or ("*",)
    return tuple(ec2_arn(call, ID_TYPES.get(i.split("-", 1)[0], "*"), i) for i in ids)


def endpoints_named(call: Call) -> tuple[str, ...]:
    """Each endpoint of DeleteVpcEndpoints."""
    ids = call.texts("VpcEndpointIds") or ("*",)
    return tuple(ec2_arn(call, "vpc-endpoint", i) for i in ids)


def vpc_key(call: Call) -> Mapping[str, ContextValue]:
    """``ec2:Vpc``: the ARN of the VPC named by ``VpcId``."""
    vpc_id = call.text("VpcId")
    return {"ec2:Vpc": ec2_arn(call, "vpc", vpc_id)} if vpc_id else {}


def subnet_keys(call: Call) -> Mapping[str, ContextValue]:
    """``ec2:Subnet`` and ``ec2:Vpc`` for a resource made in the subnet ``SubnetId``."""
    subnet_id = call.text("SubnetId")
    if not subnet_id:
        return {}
    context: dict[str, ContextValue] = {"ec2:Subnet": ec2_arn(call, "subnet", subnet_id)}
    vpc_id = call.lookups.subnet_vpc(call.account, call.region, subnet_id)
    if vpc_id:
        context["ec2:Vpc"] = ec2_arn(call, "vpc", vpc_id)
    return context


def creation_tags(call: Call) -> Mapping[str, ContextValue]:
    """The tags of ``TagSpecifications`` (every specification's)."""
    specs = call.params.get("TagSpecifications")
    pairs = []
    for spec in specs if isinstance(specs, list | tuple) else ():
        if isinstance(spec, Mapping):
            pairs.extend(tag_pairs(spec.get("Tags")))
    return request_tags(pairs)


def set_tags(call: Call) -> Mapping[str, ContextValue]:
    return request_tags(tag_pairs(call.params.get("Tags")))


def removed_tag_keys(call: Call) -> Mapping[str, ContextValue]:
    return multi("aws:TagKeys", (key for key, _ in tag_pairs(call.params.get("Tags"))))


def _create(action: str, kind: str, *context: Context) -> Spec:
    return Spec(action, new(kind), context=(*context, creation_tags))


def dhcp_association(call: Call) -> tuple[str, ...]:
    """AssociateDhcpOptions acts on the option set (none for ``default``) and on the VPC."""
    options = call.text("DhcpOptionsId") or "*"
    vpc = ec2_arn(call, "vpc", call.text("VpcId") or "*")
    return (vpc,) if options == "default" else (ec2_arn(call, "dhcp-options", options), vpc)


SECURITY_GROUP = by_id("security-group", "GroupId")
ROUTE_TABLE = by_id("route-table", "RouteTableId")
INTERNET_GATEWAY = by_id("internet-gateway", "InternetGatewayId")
NETWORK_ACL = by_id("network-acl", "NetworkAclId")

TABLE: Mapping[str, Spec] = {
    # VPCs and subnets
    "CreateVpc": _create("ec2:CreateVpc", "vpc"),
    "DescribeVpcs": Spec("ec2:DescribeVpcs"),
    "DeleteVpc": Spec("ec2:DeleteVpc", by_id("vpc", "VpcId")),
    "CreateSubnet": _create("ec2:CreateSubnet", "subnet", vpc_key),
    "DescribeSubnets": Spec("ec2:DescribeSubnets"),
    "DeleteSubnet": Spec("ec2:DeleteSubnet", by_id("subnet", "SubnetId")),
    "DescribeAvailabilityZones": Spec("ec2:DescribeAvailabilityZones"),
    # Security groups
    "CreateSecurityGroup": _create("ec2:CreateSecurityGroup", "security-group", vpc_key),
    "DescribeSecurityGroups": Spec("ec2:DescribeSecurityGroups"),
    "DeleteSecurityGroup": Spec("ec2:DeleteSecurityGroup", SECURITY_GROUP),
    "AuthorizeSecurityGroupIngress": Spec("ec2:AuthorizeSecurityGroupIngress", SECURITY_GROUP),
    "AuthorizeSecurityGroupEgress": Spec("ec2:AuthorizeSecurityGroupEgress", SECURITY_GROUP),
    "RevokeSecurityGroupIngress": Spec("ec2:RevokeSecurityGroupIngress", SECURITY_GROUP),
    "RevokeSecurityGroupEgress": Spec("ec2:RevokeSecurityGroupEgress", SECURITY_GROUP),
    "DescribeSecurityGroupRules": Spec("ec2:DescribeSecurityGroupRules"),
    # Gateways and addresses
    "CreateInternetGateway": _create("ec2:CreateInternetGateway", "internet-gateway"),
    "AttachInternetGateway": Spec("ec2:AttachInternetGateway", INTERNET_GATEWAY, context=(vpc_key,)),
    "DetachInternetGateway": Spec("ec2:DetachInternetGateway", INTERNET_GATEWAY, context=(vpc_key,)),
    "DeleteInternetGateway": Spec("ec2:DeleteInternetGateway", INTERNET_GATEWAY),
    "DescribeInternetGateways": Spec("ec2:DescribeInternetGateways"),
    "AllocateAddress": _create("ec2:AllocateAddress", "elastic-ip"),
    "ReleaseAddress": Spec("ec2:ReleaseAddress", by_id("elastic-ip", "AllocationId")),
    "DescribeAddresses": Spec("ec2:DescribeAddresses"),
    "CreateNatGateway": _create("ec2:CreateNatGateway", "natgateway", subnet_keys),
    "DescribeNatGateways": Spec("ec2:DescribeNatGateways"),
    "DeleteNatGateway": Spec("ec2:DeleteNatGateway", by_id("natgateway", "NatGatewayId")),
    # Route tables
    "CreateRouteTable": _create("ec2:CreateRouteTable", "route-table", vpc_key),
    "DeleteRouteTable": Spec("ec2:DeleteRouteTable", ROUTE_TABLE),
    "DescribeRouteTables": Spec("ec2:DescribeRouteTables"),
    "CreateRoute": Spec("ec2:CreateRoute", ROUTE_TABLE),
    "DeleteRoute": Spec("ec2:DeleteRoute", ROUTE_TABLE),
    "AssociateRouteTable": Spec("ec2:AssociateRouteTable", ROUTE_TABLE),
    "DisassociateRouteTable": Spec("ec2:DisassociateRouteTable", ROUTE_TABLE),
    # Network ACLs
    "CreateNetworkAcl": _create("ec2:CreateNetworkAcl", "network-acl", vpc_key),
    "DeleteNetworkAcl": Spec("ec2:DeleteNetworkAcl", NETWORK_ACL),
    "CreateNetworkAclEntry": Spec("ec2:CreateNetworkAclEntry", NETWORK_ACL),
    "ReplaceNetworkAclEntry": Spec("ec2:ReplaceNetworkAclEntry", NETWORK_ACL),
    "DeleteNetworkAclEntry": Spec("ec2:DeleteNetworkAclEntry", NETWORK_ACL),
    "ReplaceNetworkAclAssociation": Spec("ec2:ReplaceNetworkAclAssociation", NETWORK_ACL),
    "DescribeNetworkAcls": Spec("ec2:DescribeNetworkAcls"),
    # Network interfaces
    "CreateNetworkInterface": _create("ec2:CreateNetworkInterface", "network-interface", subnet_keys),
    "DescribeNetworkInterfaces": Spec("ec2:DescribeNetworkInterfaces"),
    "DeleteNetworkInterface": Spec(
        "ec2:DeleteNetworkInterface", by_id("network-interface", "NetworkInterfaceId")
    ),
    # DNS: DHCP option sets and the VPC's attributes
    "CreateDhcpOptions": _create("ec2:CreateDhcpOptions", "dhcp-options"),
    "DescribeDhcpOptions": Spec("ec2:DescribeDhcpOptions"),
    "DeleteDhcpOptions": Spec("ec2:DeleteDhcpOptions", by_id("dhcp-options", "DhcpOptionsId")),
    "AssociateDhcpOptions": Spec("ec2:AssociateDhcpOptions", dhcp_association),
    "DescribeVpcAttribute": Spec("ec2:DescribeVpcAttribute", by_id("vpc", "VpcId")),
    "ModifyVpcAttribute": Spec("ec2:ModifyVpcAttribute", by_id("vpc", "VpcId")),
    # VPC endpoints and prefix lists
    "CreateVpcEndpoint": _create("ec2:CreateVpcEndpoint", "vpc-endpoint", vpc_key),
    "DescribeVpcEndpoints": Spec("ec2:DescribeVpcEndpoints"),
    "ModifyVpcEndpoint": Spec("ec2:ModifyVpcEndpoint", by_id("vpc-endpoint", "VpcEndpointId")),
    "DeleteVpcEndpoints": Spec("ec2:DeleteVpcEndpoints", endpoints_named),
    "DescribeVpcEndpointServices": Spec("ec2:DescribeVpcEndpointServices"),
    "DescribePrefixLists": Spec("ec2:DescribePrefixLists"),
    "DescribeManagedPrefixLists": Spec("ec2:DescribeManagedPrefixLists"),
    "GetManagedPrefixListEntries": Spec("ec2:GetManagedPrefixListEntries"),
    # Tags
    "CreateTags": Spec("ec2:CreateTags", tagged, context=(set_tags,)),
    "DeleteTags": Spec("ec2:DeleteTags", tagged, context=(removed_tag_keys,)),
    # The default VPC, the account, and what changes resources in place
    "CreateDefaultVpc": _create("ec2:CreateDefaultVpc", "vpc"),
    "CreateDefaultSubnet": _create("ec2:CreateDefaultSubnet", "subnet"),
    "DescribeAccountAttributes": Spec("ec2:DescribeAccountAttributes"),
    "DescribeRegions": Spec("ec2:DescribeRegions"),
    "DescribeTags": Spec("ec2:DescribeTags"),
    "ReplaceRoute": Spec("ec2:ReplaceRoute", ROUTE_TABLE),
    "ReplaceRouteTableAssociation": Spec("ec2:ReplaceRouteTableAssociation", ROUTE_TABLE),
    "ModifySubnetAttribute": Spec("ec2:ModifySubnetAttribute", by_id("subnet", "SubnetId")),
    "ModifySecurityGroupRules": Spec("ec2:ModifySecurityGroupRules", SECURITY_GROUP),
    "UpdateSecurityGroupRuleDescriptionsIngress": Spec(
        "ec2:UpdateSecurityGroupRuleDescriptionsIngress", SECURITY_GROUP
    ),
    "UpdateSecurityGroupRuleDescriptionsEgress": Spec(
        "ec2:UpdateSecurityGroupRuleDescriptionsEgress", SECURITY_GROUP
    ),
    "AssociateAddress": Spec("ec2:AssociateAddress", by_id("elastic-ip", "AllocationId")),
    "DisassociateAddress": Spec("ec2:DisassociateAddress", by_id("elastic-ip", "AllocationId")),
    "ModifyNetworkInterfaceAttribute": Spec(
        "ec2:ModifyNetworkInterfaceAttribute", by_id("network-interface", "NetworkInterfaceId")
    ),
    "DescribeNetworkInterfaceAttribute": Spec("ec2:DescribeNetworkInterfaceAttribute"),
}
