"""EC2 (VPC subset) through boto3 against the real server: VPCs, subnets, address exhaustion,
security groups, gateways, NAT, route tables, interfaces, tags, filters, DryRun, EC2's errors;
and the store's Python API the Lambda side uses for Hyperplane interfaces."""

from __future__ import annotations

import threading
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client, run_aws

from lamina.domain import ec2 as ec2_store
from lamina.errors import AwsError
from lamina.store import SqliteDatabase
from lamina.store.ec2 import Ec2Store

# Runs on both metadata backends (SQLite and PostgreSQL): a representative part of the API.
pytestmark = pytest.mark.backends


@pytest.fixture(scope="module")
def ec2(server: LaminaServer) -> Any:
    return client(server, "ec2")


@pytest.fixture
def vpc(ec2: Any) -> dict[str, Any]:
    vpc: dict[str, Any] = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]
    return vpc


def fails(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    """(code, message) of the ClientError ``call(**kwargs)`` raises."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def subnet_in(ec2: Any, vpc: dict[str, Any], cidr: str, **kwargs: Any) -> dict[str, Any]:
    subnet: dict[str, Any] = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=cidr, **kwargs)["Subnet"]
    return subnet


def available(ec2: Any, subnet_id: str) -> int:
    return int(ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["AvailableIpAddressCount"])


def main_table(ec2: Any, vpc_id: str) -> dict[str, Any]:
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"]
    assert len(tables) == 1
    table: dict[str, Any] = tables[0]
    return table


def default_group(ec2: Any, vpc_id: str) -> dict[str, Any]:
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    assert len(groups) == 1
    group: dict[str, Any] = groups[0]
    return group


# -- VPCs ---------------------------------------------------------------------------------------------


def test_new_vpc_has_main_route_table_and_default_group(ec2: Any) -> None:
    created = ec2.create_vpc(CidrBlock="10.1.2.3/16")["Vpc"]
    vpc_id = created["VpcId"]
    assert vpc_id.startswith("vpc-") and len(vpc_id) == 21
    assert created["CidrBlock"] == "10.1.0.0/16"  # canonicalised, as EC2 does
    assert created["State"] == "pending"
    described = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    assert described["State"] == "available"
    assert described["IsDefault"] is False
    assert described["CidrBlockAssociationSet"][0]["CidrBlockState"]["State"] == "associated"

    table = main_table(ec2, vpc_id)
    assert table["Routes"] == [
        {
            "DestinationCidrBlock": "10.1.0.0/16",
            "GatewayId": "local",
            "Origin": "CreateRouteTable",
            "State": "active",
        }
    ]
    assert table["Associations"][0]["Main"] is True
    assert table["Associations"][0]["RouteTableAssociationId"].startswith("rtbassoc-")

    group = default_group(ec2, vpc_id)
    assert group["Description"] == "default VPC security group"
    assert group["IpPermissions"] == [
        {
            "IpProtocol": "-1",
            "IpRanges": [],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [{"GroupId": group["GroupId"], "UserId": "000000000000"}],
        }
    ]
    assert group["IpPermissionsEgress"] == [
        {
            "IpProtocol": "-1",
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        }
    ]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group["GroupId"]]}])[
        "SecurityGroupRules"
    ]
    assert sorted(r["IsEgress"] for r in rules) == [False, True]
    assert all(r["SecurityGroupRuleId"].startswith("sgr-") for r in rules)
    ingress = next(r for r in rules if not r["IsEgress"])
    assert ingress["ReferencedGroupInfo"]["GroupId"] == group["GroupId"]
    assert ingress["FromPort"] == -1 and ingress["ToPort"] == -1


@pytest.mark.parametrize(
    ("cidr", "code", "message"),
    [
        ("10.0.0.0/15", "InvalidVpc.Range", "The CIDR '10.0.0.0/15' is invalid."),
        ("10.0.0.0/29", "InvalidVpc.Range", "The CIDR '10.0.0.0/29' is invalid."),
        (
            "10.0.0.0",
            "InvalidParameterValue",
            "Value (10.0.0.0) for parameter cidrBlock is invalid. This is not a valid CIDR block.",
        ),
    ],
    ids=["too-big", "too-small", "no-prefix"],
)
def test_vpc_cidr_is_checked(ec2: Any, cidr: str, code: str, message: str) -> None:
    assert fails(ec2.create_vpc, CidrBlock=cidr) == (code, message)


def test_delete_vpc_with_dependencies(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    subnet = subnet_in(ec2, vpc, "10.0.1.0/24")
    expected = ("DependencyViolation", f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")
    assert fails(ec2.delete_vpc, VpcId=vpc_id) == expected
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])

    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    assert fails(ec2.delete_vpc, VpcId=vpc_id) == expected
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)

    group = ec2.create_security_group(VpcId=vpc_id, GroupName="extra", Description="d")["GroupId"]
    assert fails(ec2.delete_vpc, VpcId=vpc_id) == expected
    ec2.delete_security_group(GroupId=group)

    table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    assert fails(ec2.delete_vpc, VpcId=vpc_id) == expected
    ec2.delete_route_table(RouteTableId=table)

    main = main_table(ec2, vpc_id)["RouteTableId"]
    default = default_group(ec2, vpc_id)["GroupId"]
    ec2.delete_vpc(VpcId=vpc_id)
    assert fails(ec2.describe_vpcs, VpcIds=[vpc_id]) == (
        "InvalidVpcID.NotFound",
        f"The vpc ID '{vpc_id}' does not exist",
    )
    # The main route table and the default group go with their VPC.
    assert fails(ec2.describe_route_tables, RouteTableIds=[main])[0] == "InvalidRouteTableID.NotFound"
    assert fails(ec2.describe_security_groups, GroupIds=[default])[0] == "InvalidGroup.NotFound"


# -- subnets and addresses -----------------------------------------------------------------------------


def test_subnet_zones_and_cidr_checks(ec2: Any, vpc: dict[str, Any]) -> None:
    first = subnet_in(ec2, vpc, "10.0.1.0/24")
    assert first["AvailabilityZone"] == "us-east-1a"
    assert first["AvailableIpAddressCount"] == 251
    assert first["State"] == "available"
    assert first["SubnetArn"].endswith(f":subnet/{first['SubnetId']}")
    second = subnet_in(ec2, vpc, "10.0.2.0/24", AvailabilityZone="us-east-1c")
    assert second["AvailabilityZone"] == "us-east-1c"

    assert fails(ec2.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/25") == (
        "InvalidSubnet.Conflict",
        "The CIDR '10.0.1.0/25' conflicts with another subnet",
    )
    assert fails(ec2.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.1.0.0/24") == (
        "InvalidSubnet.Range",
        "The CIDR '10.1.0.0/24' is invalid.",
    )
    assert fails(ec2.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.0.9.0/29") == (
        "InvalidSubnet.Range",
        "The CIDR '10.0.9.0/29' is invalid.",
    )
    code, message = fails(
        ec2.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.0.3.0/24", AvailabilityZone="us-east-1z"
    )
    assert code == "InvalidParameterValue"
    assert "us-east-1a, us-east-1b, us-east-1c" in message
    assert fails(ec2.create_subnet, VpcId="vpc-0123456789abcdef0", CidrBlock="10.0.3.0/24") == (
        "InvalidVpcID.NotFound",
        "The vpc ID 'vpc-0123456789abcdef0' does not exist",
    )

    found = ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
            {"Name": "availability-zone", "Values": ["us-east-1c"]},
        ]
    )["Subnets"]
    assert [s["SubnetId"] for s in found] == [second["SubnetId"]]


def test_slash28_runs_out_of_addresses(ec2: Any, vpc: dict[str, Any]) -> None:
    subnet = subnet_in(ec2, vpc, "10.0.5.0/28")
    subnet_id = subnet["SubnetId"]
    assert subnet["AvailableIpAddressCount"] == 11  # 16 - network, router, DNS, future, broadcast

    interfaces = [ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"] for _ in range(11)]
    # The lowest free address each time: .4 (after the reserved .0-.3) to .14 (.15 is broadcast).
    assert [i["PrivateIpAddress"] for i in interfaces] == [f"10.0.5.{n}" for n in range(4, 15)]
    assert available(ec2, subnet_id) == 0

    assert fails(ec2.create_network_interface, SubnetId=subnet_id) == (
        "InsufficientFreeAddressesInSubnet",
        f"There are not enough free addresses in subnet '{subnet_id}' to satisfy the requested number of instances.",
    )
    ec2.delete_network_interface(NetworkInterfaceId=interfaces[3]["NetworkInterfaceId"])
    assert available(ec2, subnet_id) == 1
    again = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]
    assert again["PrivateIpAddress"] == "10.0.5.7"
    assert available(ec2, subnet_id) == 0


def test_concurrent_allocation_never_hands_out_an_address_twice(
    server: LaminaServer, vpc: dict[str, Any]
) -> None:
    ec2 = client(server, "ec2")
    subnet_id = subnet_in(ec2, vpc, "10.0.6.0/28")["SubnetId"]
    results: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def create() -> None:
        own = client(server, "ec2")
        try:
            address = own.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["PrivateIpAddress"]
            with lock:
                results.append(address)
        except ClientError as exc:
            with lock:
                errors.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=create) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 11 and len(set(results)) == 11
    assert errors == ["InsufficientFreeAddressesInSubnet"] * 5
    assert available(ec2, subnet_id) == 0


@pytest.mark.parametrize(
    ("address", "code", "message"),
    [
        ("10.0.7.4", "InvalidIPAddress.InUse", "Address 10.0.7.4 is in use."),
        ("10.0.7.2", "InvalidParameterValue", "Address 10.0.7.2 is in subnet's reserved address range"),
        (
            "10.0.8.9",
            "InvalidParameterValue",
            "Address 10.0.8.9 does not fall within the subnet's address range",
        ),
    ],
    ids=["in-use", "reserved", "outside"],
)
def test_requested_private_address(
    ec2: Any, vpc: dict[str, Any], address: str, code: str, message: str
) -> None:
    subnet_id = subnet_in(ec2, vpc, "10.0.7.0/24")["SubnetId"]
    ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="10.0.7.4")
    assert fails(ec2.create_network_interface, SubnetId=subnet_id, PrivateIpAddress=address) == (
        code,
        message,
    )


def test_delete_subnet_with_an_interface(ec2: Any, vpc: dict[str, Any]) -> None:
    subnet_id = subnet_in(ec2, vpc, "10.0.1.0/24")["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    assert fails(ec2.delete_subnet, SubnetId=subnet_id) == (
        "DependencyViolation",
        f"The subnet '{subnet_id}' has dependencies and cannot be deleted.",
    )
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_subnet(SubnetId=subnet_id)
    assert fails(ec2.describe_subnets, SubnetIds=[subnet_id]) == (
        "InvalidSubnetID.NotFound",
        f"The subnet ID '{subnet_id}' does not exist",
    )


def test_availability_zones(ec2: Any, server: LaminaServer) -> None:
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [(z["ZoneName"], z["ZoneId"], z["State"]) for z in zones] == [
        ("us-east-1a", "use1-az1", "available"),
        ("us-east-1b", "use1-az2", "available"),
        ("us-east-1c", "use1-az3", "available"),
    ]
    only_b = ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": ["*b"]}])[
        "AvailabilityZones"
    ]
    assert [z["ZoneName"] for z in only_b] == ["us-east-1b"]
    assert fails(ec2.describe_availability_zones, ZoneNames=["us-east-1z"]) == (
        "InvalidParameterValue",
        "Invalid availability zone: [us-east-1z]",
    )
    west = client(server, "ec2", region="eu-west-1").describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in west] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


# -- security groups ------------------------------------------------------------------------------------


def test_security_group_names_and_defaults(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    created = ec2.create_security_group(VpcId=vpc_id, GroupName="web", Description="web servers")
    group_id = created["GroupId"]
    assert group_id.startswith("sg-")
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group["IpPermissions"] == []  # a new group lets nothing in ...
    assert group["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]  # ... and everything out
    assert fails(ec2.create_security_group, VpcId=vpc_id, GroupName="web", Description="again") == (
        "InvalidGroup.Duplicate",
        f"The security group 'web' already exists for VPC '{vpc_id}'",
    )
    assert fails(ec2.create_security_group, VpcId=vpc_id, GroupName="default", Description="x")[0] == (
        "InvalidGroup.Duplicate"
    )
    other = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.create_security_group(VpcId=other, GroupName="web", Description="same name, other VPC")
    assert fails(ec2.create_security_group, VpcId=vpc_id, GroupName="sg-123", Description="x")[0] == (
        "InvalidParameterValue"
    )


def test_security_group_description_is_required(server: LaminaServer, vpc: dict[str, Any]) -> None:
    # botocore checks required members itself; the server's answer is what raw clients see.
    raw = client(server, "ec2", parameter_validation=False)
    assert fails(raw.create_security_group, VpcId=vpc["VpcId"], GroupName="x") == (
        "MissingParameter",
        "The request must contain the parameter GroupDescription",
    )


def test_authorize_and_revoke(ec2: Any, vpc: dict[str, Any]) -> None:
    group_id = ec2.create_security_group(VpcId=vpc["VpcId"], GroupName="db", Description="database")[
        "GroupId"
    ]
    ssh = {
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "vpc"}],
    }
    out = ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[ssh])
    assert out["Return"] is True
    [rule] = out["SecurityGroupRules"]
    assert rule["SecurityGroupRuleId"].startswith("sgr-")
    assert (rule["IsEgress"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"], rule["CidrIpv4"]) == (
        False,
        "tcp",
        22,
        22,
        "10.0.0.0/16",
    )
    assert fails(ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=[ssh]) == (
        "InvalidPermission.Duplicate",
        'the specified rule "peer: 10.0.0.0/16, TCP, from port: 22, to port: 22, ALLOW" already exists',
    )
    pg = {"IpProtocol": "6", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": group_id}]}
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[pg])
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group["IpPermissions"] == [
        {
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "vpc"}],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        },
        {
            "IpProtocol": "tcp",
            "FromPort": 5432,
            "ToPort": 5432,
            "IpRanges": [],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [{"GroupId": group_id, "UserId": "000000000000"}],
        },
    ]
    missing = {
        "IpProtocol": "tcp",
        "FromPort": 1,
        "ToPort": 1,
        "UserIdGroupPairs": [{"GroupId": "sg-0000000000000000f"}],
    }
    assert fails(ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=[missing]) == (
        "InvalidGroup.NotFound",
        "The security group 'sg-0000000000000000f' does not exist",
    )

    revoked = ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[ssh])
    assert revoked["Return"] is True
    assert [r["SecurityGroupRuleId"] for r in revoked["RevokedSecurityGroupRules"]] == [
        rule["SecurityGroupRuleId"]
    ]
    assert fails(ec2.revoke_security_group_ingress, GroupId=group_id, IpPermissions=[ssh]) == (
        "InvalidPermission.NotFound",
        "The specified rule does not exist in this security group.",
    )
    pg_rule = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}, {"Name": "is-egress", "Values": ["false"]}]
    )["SecurityGroupRules"][0]
    ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=[pg_rule["SecurityGroupRuleId"]])
    assert ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"] == []

    everything_out = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[everything_out])
    assert ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissionsEgress"] == []
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    assert ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[https])["SecurityGroupRules"][
        0
    ]["IsEgress"]
    # The older flat form of the parameters works too.
    ec2.authorize_security_group_ingress(
        GroupId=group_id, IpProtocol="udp", FromPort=53, ToPort=53, CidrIp="10.0.0.0/8"
    )
    assert any(
        p["IpProtocol"] == "udp"
        for p in ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"]
    )


def test_default_group_cannot_be_deleted(ec2: Any, vpc: dict[str, Any]) -> None:
    group_id = default_group(ec2, vpc["VpcId"])["GroupId"]
    assert fails(ec2.delete_security_group, GroupId=group_id) == (
        "CannotDelete",
        f'the specified group: "{group_id}" name: "default" cannot be deleted by a user',
    )


def test_group_in_use_or_referenced_cannot_be_deleted(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    subnet_id = subnet_in(ec2, vpc, "10.0.1.0/24")["SubnetId"]
    app = ec2.create_security_group(VpcId=vpc_id, GroupName="app", Description="app")["GroupId"]
    db = ec2.create_security_group(VpcId=vpc_id, GroupName="db", Description="db")["GroupId"]

    eni = ec2.create_network_interface(SubnetId=subnet_id, Groups=[app])["NetworkInterface"]
    assert eni["Groups"] == [{"GroupId": app, "GroupName": "app"}]
    dependent = ("DependencyViolation", f"resource {app} has a dependent object")
    assert fails(ec2.delete_security_group, GroupId=app) == dependent
    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])

    from_app = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": app}]}
    ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[from_app])
    assert fails(ec2.delete_security_group, GroupId=app) == dependent
    ec2.revoke_security_group_ingress(GroupId=db, IpPermissions=[from_app])
    deleted = ec2.delete_security_group(GroupId=app)
    assert (deleted["Return"], deleted["GroupId"]) == (True, app)
    assert fails(ec2.describe_security_groups, GroupIds=[app]) == (
        "InvalidGroup.NotFound",
        f"The security group '{app}' does not exist",
    )


def test_interface_groups(ec2: Any, vpc: dict[str, Any]) -> None:
    subnet_id = subnet_in(ec2, vpc, "10.0.1.0/24")["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet_id, Description="no groups given")["NetworkInterface"]
    assert [g["GroupName"] for g in eni["Groups"]] == ["default"]
    assert eni["Status"] == "available" and eni["InterfaceType"] == "interface"
    assert eni["AvailabilityZone"] == "us-east-1a"
    assert eni["PrivateDnsName"] == f"ip-{eni['PrivateIpAddress'].replace('.', '-')}.ec2.internal"

    other = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_security_group(VpcId=other, GroupName="foreign", Description="x")["GroupId"]
    assert fails(ec2.create_network_interface, SubnetId=subnet_id, Groups=[foreign]) == (
        "InvalidParameter",
        f"Security group {foreign} and subnet {subnet_id} belong to different networks.",
    )
    six = [
        ec2.create_security_group(VpcId=vpc["VpcId"], GroupName=f"g{n}", Description="x")["GroupId"]
        for n in range(6)
    ]
    assert (
        fails(ec2.create_network_interface, SubnetId=subnet_id, Groups=six)[0]
        == "SecurityGroupsPerInterfaceLimitExceeded"
    )


# -- internet gateways and Elastic IPs -------------------------------------------------------------------------


def test_internet_gateway_lifecycle(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]
    igw_id = igw["InternetGatewayId"]
    assert igw_id.startswith("igw-") and igw["Attachments"] == []
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    described = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])[
        "InternetGateways"
    ]
    assert [(g["InternetGatewayId"], g["Attachments"]) for g in described] == [
        (igw_id, [{"State": "available", "VpcId": vpc_id}])
    ]
    assert fails(ec2.attach_internet_gateway, InternetGatewayId=igw_id, VpcId=vpc_id) == (
        "Resource.AlreadyAssociated",
        f"resource {igw_id} is already attached to network {vpc_id}",
    )
    second = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    assert fails(ec2.attach_internet_gateway, InternetGatewayId=second, VpcId=vpc_id) == (
        "InvalidParameterValue",
        f"Network {vpc_id} already has an internet gateway attached",
    )
    assert fails(ec2.delete_internet_gateway, InternetGatewayId=igw_id) == (
        "DependencyViolation",
        f"The internetGateway '{igw_id}' has dependencies and cannot be deleted.",
    )
    assert fails(ec2.detach_internet_gateway, InternetGatewayId=second, VpcId=vpc_id) == (
        "Gateway.NotAttached",
        f"resource {second} is not attached to network {vpc_id}",
    )
    ec2.detach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    ec2.delete_internet_gateway(InternetGatewayId=igw_id)
    assert fails(ec2.describe_internet_gateways, InternetGatewayIds=[igw_id]) == (
        "InvalidInternetGatewayID.NotFound",
        f"The internetGateway ID '{igw_id}' does not exist",
    )


def test_elastic_ips(ec2: Any) -> None:
    allocated = ec2.allocate_address(Domain="vpc")
    assert allocated["AllocationId"].startswith("eipalloc-")
    assert allocated["Domain"] == "vpc"
    assert allocated["PublicIp"].startswith("203.0.113.")
    found = ec2.describe_addresses(AllocationIds=[allocated["AllocationId"]])["Addresses"]
    assert [a["PublicIp"] for a in found] == [allocated["PublicIp"]]
    assert (
        ec2.describe_addresses(PublicIps=[allocated["PublicIp"]])["Addresses"][0]["AllocationId"]
        == allocated["AllocationId"]
    )
    other = ec2.allocate_address(Domain="vpc")
    assert other["PublicIp"] != allocated["PublicIp"]
    ec2.release_address(AllocationId=allocated["AllocationId"])
    assert fails(ec2.release_address, AllocationId=allocated["AllocationId"]) == (
        "InvalidAllocationID.NotFound",
        f"The allocation ID '{allocated['AllocationId']}' does not exist",
    )
    ec2.release_address(AllocationId=other["AllocationId"])


# -- NAT gateways ------------------------------------------------------------------------------------------------


def test_nat_gateway_fails_without_an_internet_gateway(ec2: Any, vpc: dict[str, Any]) -> None:
    subnet_id = subnet_in(ec2, vpc, "10.0.10.0/28")["SubnetId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=allocation)["NatGateway"]
    assert nat["NatGatewayId"].startswith("nat-")
    assert nat["State"] == "pending"
    assert available(ec2, subnet_id) == 10  # its interface holds an address while pending
    failed = ec2.describe_nat_gateways(NatGatewayIds=[nat["NatGatewayId"]])["NatGateways"][0]
    assert failed["State"] == "failed"
    assert failed["FailureCode"] == "Gateway.NotAttached"
    assert failed["FailureMessage"] == f"Network {vpc['VpcId']} has no Internet gateway attached"
    assert available(ec2, subnet_id) == 11  # and gives it back once failed
    table_id = main_table(ec2, vpc["VpcId"])["RouteTableId"]
    route = {
        "RouteTableId": table_id,
        "DestinationCidrBlock": "0.0.0.0/0",
        "NatGatewayId": nat["NatGatewayId"],
    }
    assert fails(ec2.create_route, **route) == (
        "InvalidNatGatewayID.NotFound",
        f"The natGateway ID '{nat['NatGatewayId']}' does not exist",
    )
    address = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
    assert "AssociationId" not in address
    ec2.release_address(AllocationId=allocation)


def test_nat_gateway_available_then_deleted_leaves_blackhole(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    public_subnet = subnet_in(ec2, vpc, "10.0.20.0/28")["SubnetId"]
    private_subnet = subnet_in(ec2, vpc, "10.0.21.0/24")["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    public_table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=public_table, SubnetId=public_subnet)

    allocated = ec2.allocate_address(Domain="vpc")
    nat = ec2.create_nat_gateway(
        SubnetId=public_subnet,
        AllocationId=allocated["AllocationId"],
        TagSpecifications=[{"ResourceType": "natgateway", "Tags": [{"Key": "Name", "Value": "out"}]}],
    )["NatGateway"]
    nat_id = nat["NatGatewayId"]
    assert nat["State"] == "pending"
    ec2.get_waiter("nat_gateway_available").wait(
        NatGatewayIds=[nat_id], WaiterConfig={"Delay": 1, "MaxAttempts": 5}
    )
    ready = ec2.describe_nat_gateways(Filter=[{"Name": "tag:Name", "Values": ["out"]}])["NatGateways"]
    assert [n["NatGatewayId"] for n in ready] == [nat_id]
    [address] = ready[0]["NatGatewayAddresses"]
    assert address["AllocationId"] == allocated["AllocationId"]
    assert address["PublicIp"] == allocated["PublicIp"]
    assert address["PrivateIp"] == "10.0.20.4"
    assert available(ec2, public_subnet) == 10  # the NAT gateway takes one address of its subnet

    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[address["NetworkInterfaceId"]])[
        "NetworkInterfaces"
    ][0]
    assert (eni["InterfaceType"], eni["RequesterManaged"], eni["Status"]) == ("nat_gateway", True, "in-use")
    eip = ec2.describe_addresses(AllocationIds=[allocated["AllocationId"]])["Addresses"][0]
    assert eip["NetworkInterfaceId"] == eni["NetworkInterfaceId"]
    assert eip["PrivateIpAddress"] == "10.0.20.4"
    assert eip["AssociationId"].startswith("eipassoc-")
    assert fails(ec2.release_address, AllocationId=allocated["AllocationId"])[0] == "InvalidIPAddress.InUse"
    assert fails(ec2.delete_network_interface, NetworkInterfaceId=eni["NetworkInterfaceId"])[0] == (
        "InvalidNetworkInterface.InUse"
    )
    assert fails(ec2.detach_internet_gateway, InternetGatewayId=igw, VpcId=vpc_id) == (
        "DependencyViolation",
        f"Network {vpc_id} has some mapped public address(es). Please unmap those public address(es) before "
        "detaching the gateway.",
    )

    private_table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=private_table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat_id)
    ec2.associate_route_table(RouteTableId=private_table, SubnetId=private_subnet)

    assert ec2.delete_nat_gateway(NatGatewayId=nat_id)["NatGatewayId"] == nat_id
    ec2.get_waiter("nat_gateway_deleted").wait(
        NatGatewayIds=[nat_id], WaiterConfig={"Delay": 1, "MaxAttempts": 5}
    )
    routes = ec2.describe_route_tables(RouteTableIds=[private_table])["RouteTables"][0]["Routes"]
    assert {
        "DestinationCidrBlock": "0.0.0.0/0",
        "NatGatewayId": nat_id,
        "Origin": "CreateRoute",
        "State": "blackhole",
    } in routes
    blackholed = ec2.describe_route_tables(Filters=[{"Name": "route.state", "Values": ["blackhole"]}])[
        "RouteTables"
    ]
    assert private_table in [t["RouteTableId"] for t in blackholed]
    assert available(ec2, public_subnet) == 11
    assert (
        "AssociationId"
        not in ec2.describe_addresses(AllocationIds=[allocated["AllocationId"]])["Addresses"][0]
    )
    ec2.release_address(AllocationId=allocated["AllocationId"])
    # The blackhole route stays until deleted.
    ec2.delete_route(RouteTableId=private_table, DestinationCidrBlock="0.0.0.0/0")


def test_nat_gateway_errors(ec2: Any, vpc: dict[str, Any]) -> None:
    subnet_id = subnet_in(ec2, vpc, "10.0.30.0/24")["SubnetId"]
    assert fails(ec2.create_nat_gateway, SubnetId=subnet_id, AllocationId="eipalloc-0123456789abcdef0") == (
        "InvalidAllocationID.NotFound",
        "The allocation ID 'eipalloc-0123456789abcdef0' does not exist",
    )
    assert fails(ec2.describe_nat_gateways, NatGatewayIds=["nat-0123456789abcdef0"]) == (
        "NatGatewayNotFound",
        "NAT gateway nat-0123456789abcdef0 was not found",
    )
    assert fails(ec2.delete_nat_gateway, NatGatewayId="nat-0123456789abcdef0")[0] == "NatGatewayNotFound"


# -- route tables --------------------------------------------------------------------------------------------------


def test_routes_and_associations(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    subnet_id = subnet_in(ec2, vpc, "10.0.40.0/24")["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]
    table_id = table["RouteTableId"]
    assert table["Associations"] == [] and table["Routes"][0]["GatewayId"] == "local"

    assert fails(
        ec2.create_route, RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw
    ) == (
        "InvalidParameterValue",
        f"route table {table_id} and network gateway {igw} belong to different networks",
    )
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    assert (
        ec2.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)["Return"]
        is True
    )
    assert fails(
        ec2.create_route, RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw
    ) == (
        "RouteAlreadyExists",
        "The route identified by 0.0.0.0/0 already exists.",
    )
    assert fails(ec2.create_route, RouteTableId=table_id, DestinationCidrBlock="10.0.99.0/24", GatewayId=igw)[
        0
    ] == ("InvalidParameterValue")
    eni = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    ec2.create_route(RouteTableId=table_id, DestinationCidrBlock="192.168.0.0/16", NetworkInterfaceId=eni)

    association = ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)
    assert association["AssociationId"].startswith("rtbassoc-")
    assert association["AssociationState"] == {"State": "associated"}
    assert (
        fails(ec2.associate_route_table, RouteTableId=table_id, SubnetId=subnet_id)[0]
        == "Resource.AlreadyAssociated"
    )
    by_subnet = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])[
        "RouteTables"
    ]
    assert [t["RouteTableId"] for t in by_subnet] == [table_id]
    via_igw = ec2.describe_route_tables(Filters=[{"Name": "route.gateway-id", "Values": [igw]}])[
        "RouteTables"
    ]
    assert [t["RouteTableId"] for t in via_igw] == [table_id]

    # Deleting a route's interface leaves the route, as a blackhole.
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    routes = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]["Routes"]
    assert next(r for r in routes if r["DestinationCidrBlock"] == "192.168.0.0/16")["State"] == "blackhole"

    assert fails(ec2.delete_route, RouteTableId=table_id, DestinationCidrBlock="10.0.0.0/16") == (
        "InvalidParameterValue",
        f"cannot remove local route 10.0.0.0/16 in route table {table_id}",
    )
    assert fails(ec2.delete_route, RouteTableId=table_id, DestinationCidrBlock="172.16.0.0/12") == (
        "InvalidRoute.NotFound",
        f"no route with destination-cidr-block 172.16.0.0/12 in route table {table_id}",
    )
    ec2.delete_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0")

    main_association = main_table(ec2, vpc_id)["Associations"][0]["RouteTableAssociationId"]
    assert fails(ec2.disassociate_route_table, AssociationId=main_association)[0] == "InvalidParameterValue"
    assert fails(ec2.disassociate_route_table, AssociationId="rtbassoc-0123456789abcdef0") == (
        "InvalidAssociationID.NotFound",
        "The association ID 'rtbassoc-0123456789abcdef0' does not exist",
    )
    assert fails(ec2.delete_route_table, RouteTableId=table_id)[0] == "DependencyViolation"
    ec2.disassociate_route_table(AssociationId=association["AssociationId"])
    ec2.delete_route_table(RouteTableId=table_id)
    assert fails(ec2.describe_route_tables, RouteTableIds=[table_id]) == (
        "InvalidRouteTableID.NotFound",
        f"The routeTable ID '{table_id}' does not exist",
    )


# -- errors, DryRun, tags, filters, partitioning ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "kwargs", "code", "message"),
    [
        (
            "describe_vpcs",
            {"VpcIds": ["vpc-0000000000000000a"]},
            "InvalidVpcID.NotFound",
            "The vpc ID 'vpc-0000000000000000a' does not exist",
        ),
        (
            "delete_vpc",
            {"VpcId": "vpc-0000000000000000a"},
            "InvalidVpcID.NotFound",
            "The vpc ID 'vpc-0000000000000000a' does not exist",
        ),
        (
            "describe_subnets",
            {"SubnetIds": ["subnet-0000000000000000a"]},
            "InvalidSubnetID.NotFound",
            "The subnet ID 'subnet-0000000000000000a' does not exist",
        ),
        (
            "delete_subnet",
            {"SubnetId": "subnet-0000000000000000a"},
            "InvalidSubnetID.NotFound",
            "The subnet ID 'subnet-0000000000000000a' does not exist",
        ),
        (
            "describe_security_groups",
            {"GroupIds": ["sg-0000000000000000a"]},
            "InvalidGroup.NotFound",
            "The security group 'sg-0000000000000000a' does not exist",
        ),
        (
            "delete_security_group",
            {"GroupId": "sg-0000000000000000a"},
            "InvalidGroup.NotFound",
            "The security group 'sg-0000000000000000a' does not exist",
        ),
        (
            "describe_network_interfaces",
            {"NetworkInterfaceIds": ["eni-0000000000000000a"]},
            "InvalidNetworkInterfaceID.NotFound",
            "The networkInterface ID 'eni-0000000000000000a' does not exist",
        ),
        (
            "delete_network_interface",
            {"NetworkInterfaceId": "eni-0000000000000000a"},
            "InvalidNetworkInterfaceID.NotFound",
            "The networkInterface ID 'eni-0000000000000000a' does not exist",
        ),
        (
            "describe_internet_gateways",
            {"InternetGatewayIds": ["igw-0000000000000000a"]},
            "InvalidInternetGatewayID.NotFound",
            "The internetGateway ID 'igw-0000000000000000a' does not exist",
        ),
        (
            "describe_addresses",
            {"AllocationIds": ["eipalloc-0000000000000000a"]},
            "InvalidAllocationID.NotFound",
            "The allocation ID 'eipalloc-0000000000000000a' does not exist",
        ),
        (
            "describe_route_tables",
            {"RouteTableIds": ["rtb-0000000000000000a"]},
            "InvalidRouteTableID.NotFound",
            "The routeTable ID 'rtb-0000000000000000a' does not exist",
        ),
        (
            "describe_nat_gateways",
            {"NatGatewayIds": ["nat-0000000000000000a"]},
            "NatGatewayNotFound",
            "NAT gateway nat-0000000000000000a was not found",
        ),
        (
            "create_tags",
            {"Resources": ["vpc-0000000000000000a"], "Tags": [{"Key": "k", "Value": "v"}]},
            "InvalidVpcID.NotFound",
            "The vpc ID 'vpc-0000000000000000a' does not exist",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and "_" in value else None,
)
def test_not_found_errors(ec2: Any, operation: str, kwargs: dict[str, Any], code: str, message: str) -> None:
    assert fails(getattr(ec2, operation), **kwargs) == (code, message)


def _counts(ec2: Any) -> tuple[int, ...]:
    return (
        len(ec2.describe_vpcs()["Vpcs"]),
        len(ec2.describe_subnets()["Subnets"]),
        len(ec2.describe_security_groups()["SecurityGroups"]),
        len(ec2.describe_network_interfaces()["NetworkInterfaces"]),
        len(ec2.describe_internet_gateways()["InternetGateways"]),
        len(ec2.describe_addresses()["Addresses"]),
        len(ec2.describe_route_tables()["RouteTables"]),
        len(ec2.describe_security_group_rules()["SecurityGroupRules"]),
    )


def test_dry_run_checks_then_changes_nothing(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    subnet_id = subnet_in(ec2, vpc, "10.0.50.0/28")["SubnetId"]
    group_id = default_group(ec2, vpc_id)["GroupId"]
    table_id = main_table(ec2, vpc_id)["RouteTableId"]
    eni_id = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    spare_group = ec2.create_security_group(VpcId=vpc_id, GroupName="spare", Description="d")["GroupId"]
    spare_subnet = subnet_in(ec2, vpc, "10.0.52.0/24")["SubnetId"]
    calls: list[tuple[str, dict[str, Any]]] = [
        ("create_vpc", {"CidrBlock": "10.3.0.0/16"}),
        ("describe_vpcs", {}),
        ("describe_subnets", {"SubnetIds": [subnet_id]}),
        ("create_subnet", {"VpcId": vpc_id, "CidrBlock": "10.0.51.0/24"}),
        ("create_security_group", {"VpcId": vpc_id, "GroupName": "dry", "Description": "d"}),
        (
            "authorize_security_group_ingress",
            {
                "GroupId": group_id,
                "IpPermissions": [
                    {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "1.2.3.4/32"}]}
                ],
            },
        ),
        ("create_network_interface", {"SubnetId": subnet_id}),
        ("create_internet_gateway", {}),
        ("allocate_address", {"Domain": "vpc"}),
        ("create_route_table", {"VpcId": vpc_id}),
        (
            "create_route",
            {"RouteTableId": table_id, "DestinationCidrBlock": "1.0.0.0/8", "NetworkInterfaceId": eni_id},
        ),
        ("describe_route_tables", {}),
        ("delete_network_interface", {"NetworkInterfaceId": eni_id}),
        ("delete_security_group", {"GroupId": spare_group}),
        ("delete_subnet", {"SubnetId": spare_subnet}),
        ("create_tags", {"Resources": [vpc_id], "Tags": [{"Key": "dry", "Value": "run"}]}),
        ("describe_availability_zones", {}),
        ("describe_nat_gateways", {}),
        ("describe_security_group_rules", {}),
    ]
    before = _counts(ec2)
    for operation, kwargs in calls:
        code, message = fails(getattr(ec2, operation), DryRun=True, **kwargs)
        assert (operation, code, message) == (
            operation,
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        )
    assert _counts(ec2) == before
    assert available(ec2, subnet_id) == 10
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["Tags"] == []
    assert len(main_table(ec2, vpc_id)["Routes"]) == 1
    # A request that would fail answers its error, not DryRunOperation.
    assert fails(ec2.delete_vpc, VpcId=vpc_id, DryRun=True)[0] == "DependencyViolation"
    assert (
        fails(ec2.delete_subnet, SubnetId="subnet-0000000000000000a", DryRun=True)[0]
        == "InvalidSubnetID.NotFound"
    )
    assert fails(ec2.create_vpc, CidrBlock="10.0.0.0/8", DryRun=True)[0] == "InvalidVpc.Range"


def test_tags_and_tag_filters(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(
        CidrBlock="10.4.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "team", "Value": "blue"}]}],
    )["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(
        VpcId=vpc_id,
        CidrBlock="10.4.1.0/24",
        TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "tier", "Value": "private"}]}],
    )["Subnet"]
    assert subnet["Tags"] == [{"Key": "tier", "Value": "private"}]
    eni = ec2.create_network_interface(
        SubnetId=subnet["SubnetId"],
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": [{"Key": "role", "Value": "db"}]}],
    )["NetworkInterface"]
    assert eni["TagSet"] == [{"Key": "role", "Value": "db"}]

    ec2.create_tags(
        Resources=[vpc_id, subnet["SubnetId"]],
        Tags=[{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "red"}],
    )
    vpcs = ec2.describe_vpcs(
        Filters=[{"Name": "tag:team", "Values": ["red"]}, {"Name": "tag-key", "Values": ["env"]}]
    )["Vpcs"]
    assert [v["VpcId"] for v in vpcs] == [vpc_id]
    assert {t["Key"]: t["Value"] for t in vpcs[0]["Tags"]} == {"team": "red", "env": "test"}
    assert (
        ec2.describe_vpcs(
            Filters=[{"Name": "tag:team", "Values": ["blue"]}, {"Name": "vpc-id", "Values": [vpc_id]}]
        )["Vpcs"]
        == []
    )
    found = ec2.describe_subnets(
        Filters=[{"Name": "tag:tier", "Values": ["priv*"]}, {"Name": "vpc-id", "Values": [vpc_id]}]
    )["Subnets"]
    assert [s["SubnetId"] for s in found] == [subnet["SubnetId"]]
    by_tag = ec2.describe_network_interfaces(Filters=[{"Name": "tag:role", "Values": ["db"]}])[
        "NetworkInterfaces"
    ]
    assert [e["NetworkInterfaceId"] for e in by_tag] == [eni["NetworkInterfaceId"]]

    ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": "team", "Value": "not-this-value"}, {"Key": "env"}])
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["Tags"] == [{"Key": "team", "Value": "red"}]
    ec2.delete_tags(Resources=[vpc_id])
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["Tags"] == []

    code, message = fails(
        ec2.create_vpc,
        CidrBlock="10.5.0.0/16",
        TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "a", "Value": "b"}]}],
    )
    assert (code, message) == (
        "InvalidParameterValue",
        "'subnet' is not a valid taggable resource type for this operation.",
    )


def test_filters(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    subnet = subnet_in(ec2, vpc, "10.0.60.0/24", AvailabilityZone="us-east-1b")
    eni = ec2.create_network_interface(SubnetId=subnet["SubnetId"], Description="the one")["NetworkInterface"]
    by_cidr = ec2.describe_vpcs(
        Filters=[{"Name": "cidr", "Values": ["10.0.0.0/16"]}, {"Name": "vpc-id", "Values": [vpc_id]}]
    )
    assert [v["VpcId"] for v in by_cidr["Vpcs"]] == [vpc_id]
    assert (
        ec2.describe_subnets(
            Filters=[
                {"Name": "cidr-block", "Values": ["10.0.60.0/24"]},
                {"Name": "vpc-id", "Values": [vpc_id]},
            ]
        )["Subnets"][0]["SubnetId"]
        == subnet["SubnetId"]
    )
    assert (
        ec2.describe_subnets(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "available-ip-address-count", "Values": ["250"]},
            ]
        )["Subnets"][0]["SubnetId"]
        == subnet["SubnetId"]
    )
    interfaces = ec2.describe_network_interfaces(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "description", "Values": ["the *"]},
            {"Name": "group-name", "Values": ["default"]},
            {"Name": "interface-type", "Values": ["interface"]},
            {"Name": "status", "Values": ["available"]},
            {"Name": "availability-zone", "Values": ["us-east-1b"]},
            {"Name": "private-ip-address", "Values": [eni["PrivateIpAddress"]]},
        ]
    )["NetworkInterfaces"]
    assert [i["NetworkInterfaceId"] for i in interfaces] == [eni["NetworkInterfaceId"]]
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "egress.ip-permission.cidr", "Values": ["0.0.0.0/0"]},
        ]
    )["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["default"]
    assert fails(ec2.describe_vpcs, Filters=[{"Name": "bogus", "Values": ["x"]}]) == (
        "InvalidParameterValue",
        "The filter 'bogus' is invalid",
    )


def test_pagination(ec2: Any) -> None:
    for n in range(6):
        ec2.create_vpc(
            CidrBlock=f"10.{100 + n}.0.0/16",
            TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "page", "Value": "yes"}]}],
        )
    first = ec2.describe_vpcs(MaxResults=5, Filters=[{"Name": "tag:page", "Values": ["yes"]}])
    assert len(first["Vpcs"]) == 5 and "NextToken" in first
    paginator = ec2.get_paginator("describe_vpcs")
    pages = list(
        paginator.paginate(
            Filters=[{"Name": "tag:page", "Values": ["yes"]}], PaginationConfig={"PageSize": 5}
        )
    )
    assert sum(len(p["Vpcs"]) for p in pages) == 6


def test_state_is_per_account_and_region(server: LaminaServer, ec2: Any, vpc: dict[str, Any]) -> None:
    west = client(server, "ec2", region="us-west-2")
    alice = client(server, "ec2", key="AKIDALICE111", secret="alice-secret")
    for other in (west, alice):
        assert vpc["VpcId"] not in [v["VpcId"] for v in other.describe_vpcs()["Vpcs"]]
        assert fails(other.describe_vpcs, VpcIds=[vpc["VpcId"]])[0] == "InvalidVpcID.NotFound"
    subnet = west.create_subnet(
        VpcId=west.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"], CidrBlock="10.0.0.0/24"
    )["Subnet"]
    assert subnet["AvailabilityZone"] == "us-west-2a"
    eni = west.create_network_interface(SubnetId=subnet["SubnetId"])["NetworkInterface"]
    assert eni["PrivateDnsName"].endswith(".us-west-2.compute.internal")


def test_aws_cli_speaks_to_it(server: LaminaServer) -> None:
    result = run_aws(server, "ec2", "create-vpc", "--cidr-block", "10.77.0.0/16", "--output", "json")
    assert result.returncode == 0, result.stderr
    assert '"CidrBlock": "10.77.0.0/16"' in result.stdout
    listed = run_aws(
        server,
        "ec2",
        "describe-vpcs",
        "--filters",
        "Name=cidr,Values=10.77.0.0/16",
        "--query",
        "Vpcs[].CidrBlock",
        "--output",
        "text",
    )
    assert listed.stdout.strip() == "10.77.0.0/16"


# -- the Python API the Lambda side uses ----------------------------------------------------------------------------


def test_store_api_for_hyperplane_interfaces(tmp_path: Path, server: LaminaServer) -> None:
    # The store is shared with the server process only through its database: use a fresh one here.
    metadata = SqliteDatabase(tmp_path / "lamina.db")
    try:
        store = Ec2Store(metadata)
        events: list[tuple[str, dict[str, Any]]] = []
        store.listeners.append(lambda event, obj: events.append((event, obj)))
        account, region = "000000000000", "us-east-1"
        with store.transaction(account, region) as tx:
            vpc_id = tx.new_id(ec2_store.VPC)
            tx.put(ec2_store.VPC, vpc_id, {"VpcId": vpc_id, "CidrBlock": "10.0.0.0/16"}, vpc_id=vpc_id)
            subnet_id = tx.new_id(ec2_store.SUBNET)
            subnet = {
                "SubnetId": subnet_id,
                "VpcId": vpc_id,
                "CidrBlock": "10.0.0.0/28",
                "AvailabilityZone": "us-east-1a",
            }
            tx.put(ec2_store.SUBNET, subnet_id, subnet, vpc_id=vpc_id, subnet_id=subnet_id)
            group_id = tx.new_id(ec2_store.SECURITY_GROUP)
            group = {"GroupId": group_id, "GroupName": "fn", "VpcId": vpc_id, "Description": "x"}
            tx.put(ec2_store.SECURITY_GROUP, group_id, group, vpc_id=vpc_id)

        assert store.get_subnet(account, region, subnet_id)["AvailableIpAddressCount"] == 11
        assert store.get_security_group(account, region, group_id)["GroupName"] == "fn"
        eni = store.create_interface(account, region, subnet_id, [group_id], "AWS Lambda VPC ENI-f-1234")
        assert (eni["InterfaceType"], eni["Status"], eni["RequesterManaged"]) == ("lambda", "in-use", True)
        assert eni["Groups"] == [{"GroupId": group_id, "GroupName": "fn"}]
        assert store.get_subnet(account, region, subnet_id)["AvailableIpAddressCount"] == 10
        assert store.group_members(account, region, group_id) == [IPv4Address(eni["PrivateIpAddress"])]
        assert events == [("interface-created", eni)]

        with pytest.raises(AwsError) as caught:
            store.create_interface(account, region, "subnet-0000000000000000a", [group_id], "x")
        assert (caught.value.code, caught.value.message) == (
            "InvalidSubnetID.NotFound",
            "The subnet ID 'subnet-0000000000000000a' does not exist",
        )
        with pytest.raises(AwsError) as caught:
            store.get_security_group(account, region, "sg-0000000000000000a")
        assert caught.value.code == "InvalidGroup.NotFound"
        for _ in range(10):
            store.create_interface(account, region, subnet_id, [group_id], "x")
        with pytest.raises(AwsError) as caught:
            store.create_interface(account, region, subnet_id, [group_id], "x")
        assert caught.value.code == "InsufficientFreeAddressesInSubnet"

        store.delete_interface(account, region, eni["NetworkInterfaceId"])
        assert events[-1] == ("interface-deleted", eni)
        assert store.get_subnet(account, region, subnet_id)["AvailableIpAddressCount"] == 1
        with pytest.raises(AwsError) as caught:
            store.delete_interface(account, region, eni["NetworkInterfaceId"])
        assert caught.value.code == "InvalidNetworkInterfaceID.NotFound"
        # Another region of the same account sees none of it.
        with pytest.raises(AwsError):
            store.get_subnet(account, "eu-west-1", subnet_id)
    finally:
        metadata.close()


def test_nat_gateway_delay_and_failure_blackholes_routes(tmp_path: Path) -> None:
    # In-process, with a NAT gateway delay and the request clock under the test's control.

    from lamina.services.base import RequestContext
    from lamina.services.ec2 import handlers_gateways as gateways
    from lamina.services.ec2 import handlers_routes as routes
    from lamina.services.ec2 import handlers_vpcs as vpcs

    metadata = SqliteDatabase(tmp_path / "lamina.db")
    try:
        store = Ec2Store(metadata, nat_delay_ms=60_000)
        events: list[str] = []
        store.listeners.append(lambda event, obj: events.append(event))

        def at(ms: int) -> RequestContext:
            return RequestContext("000000000000", "us-east-1", "req", "http://x", now_ms=ms)

        vpc_id = vpcs.create_vpc(store, at(1000), {"CidrBlock": "10.0.0.0/16"})["Vpc"]["VpcId"]
        subnet_id = vpcs.create_subnet(store, at(1000), {"VpcId": vpc_id, "CidrBlock": "10.0.0.0/24"})[
            "Subnet"
        ]["SubnetId"]
        allocation = gateways.allocate_address(store, at(1000), {})["AllocationId"]
        nat_id = gateways.create_nat_gateway(
            store, at(1000), {"SubnetId": subnet_id, "AllocationId": allocation}
        )["NatGateway"]["NatGatewayId"]
        table_id = routes.describe_route_tables(store, at(1000), {})["RouteTables"][0]["RouteTableId"]
        routes.create_route(
            store,
            at(2000),
            {"RouteTableId": table_id, "DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": nat_id},
        )

        def nat_state(ms: int) -> str:
            nats = gateways.describe_nat_gateways(store, at(ms), {"NatGatewayIds": [nat_id]})["NatGateways"]
            return str(nats[0]["State"])

        assert nat_state(30_000) == "pending"  # still within its delay
        events.clear()
        assert nat_state(61_000) == "failed"
        table = routes.describe_route_tables(store, at(61_000), {"RouteTableIds": [table_id]})["RouteTables"][
            0
        ]
        assert [r["State"] for r in table["Routes"] if r.get("NatGatewayId") == nat_id] == ["blackhole"]
        assert "interface-deleted" in events and "route-changed" in events
    finally:
        metadata.close()
