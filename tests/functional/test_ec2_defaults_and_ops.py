"""The default VPC and the EC2 operations that change resources in place, through boto3 and the
AWS CLI against the real server: CreateDefaultVpc/Subnet, DescribeAccountAttributes,
DescribeRegions, ReplaceRoute, ReplaceRouteTableAssociation, ModifySubnetAttribute,
Modify/DescribeNetworkInterfaceAttribute, ModifySecurityGroupRules,
UpdateSecurityGroupRuleDescriptionsIngress/Egress, DescribeTags, Associate/DisassociateAddress;
their filters, errors, DryRun and refusal of other accounts' resources."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client, run_aws


@pytest.fixture(scope="module")
def ec2(server: LaminaServer) -> Any:
    return client(server, "ec2")


@pytest.fixture(scope="module")
def alice(server: LaminaServer) -> Any:
    return client(server, "ec2", key="AKIDALICE111", secret="alice-secret")


def fails(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def dry(call: Callable[..., Any], **kwargs: Any) -> None:
    assert fails(call, DryRun=True, **kwargs) == (
        "DryRunOperation",
        "Request would have succeeded, but DryRun flag is set.",
    )


def cli(server: LaminaServer, *args: str, region: str | None = None) -> Any:
    extra = ["--region", region] if region else []
    result = run_aws(server, "ec2", *args, "--output", "json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def default_vpc(ec2: Any) -> dict[str, Any]:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1
    vpc: dict[str, Any] = vpcs[0]
    return vpc


def attribute(ec2: Any, name: str) -> list[str]:
    found = ec2.describe_account_attributes(AttributeNames=[name])["AccountAttributes"]
    return [v["AttributeValue"] for v in found[0]["AttributeValues"]]


# -- the default VPC -----------------------------------------------------------------------------------


def test_default_vpc_as_aws_creates_it(server: LaminaServer) -> None:
    ec2 = client(server, "ec2", region="eu-west-3")
    vpc = default_vpc(ec2)
    vpc_id = vpc["VpcId"]
    assert vpc["CidrBlock"] == "172.31.0.0/16" and vpc["IsDefault"] is True and vpc["State"] == "available"
    assert attribute(ec2, "default-vpc") == [vpc_id]

    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert [(s["AvailabilityZone"], s["CidrBlock"]) for s in subnets] == [
        ("eu-west-3a", "172.31.0.0/20"),
        ("eu-west-3b", "172.31.16.0/20"),
        ("eu-west-3c", "172.31.32.0/20"),
    ]
    assert all(s["DefaultForAz"] and s["MapPublicIpOnLaunch"] for s in subnets)
    assert all(s["AvailableIpAddressCount"] == 4091 for s in subnets)
    defaults = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    assert len(defaults) == 3

    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])
    (igw,) = igws["InternetGateways"]
    assert igw["Attachments"] == [{"State": "available", "VpcId": vpc_id}]

    (table,) = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    assert table["Associations"][0]["Main"] is True
    assert table["Routes"] == [
        {
            "DestinationCidrBlock": "172.31.0.0/16",
            "GatewayId": "local",
            "Origin": "CreateRouteTable",
            "State": "active",
        },
        {
            "DestinationCidrBlock": "0.0.0.0/0",
            "GatewayId": igw["InternetGatewayId"],
            "Origin": "CreateRoute",
            "State": "active",
        },
    ]
    (group,) = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "SecurityGroups"
    ]
    assert group["GroupName"] == "default"
    # A group name alone means the default VPC's group, as in EC2.
    assert (
        ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
        == group["GroupId"]
    )
    made = ec2.create_security_group(GroupName="web", Description="w")["GroupId"]
    assert ec2.describe_security_groups(GroupIds=[made])["SecurityGroups"][0]["VpcId"] == vpc_id
    ec2.delete_security_group(GroupName="web")


def test_default_vpc_is_made_once_even_under_concurrency(server: LaminaServer) -> None:
    ec2s = [client(server, "ec2", region="ap-south-1") for _ in range(6)]
    results: list[list[str]] = []

    def look(c: Any) -> None:
        results.append([v["VpcId"] for v in c.describe_vpcs()["Vpcs"]])

    threads = [threading.Thread(target=look, args=(c,)) for c in ec2s]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all(len(r) == 1 and r == results[0] for r in results)


def test_deleted_default_vpc_stays_deleted_until_create_default_vpc(server: LaminaServer) -> None:
    ec2 = client(server, "ec2", region="ca-central-1")
    vpc_id = default_vpc(ec2)["VpcId"]
    assert fails(ec2.create_default_vpc) == (
        "DefaultVpcAlreadyExists",
        "A Default VPC already exists for this account in this region.",
    )
    assert fails(ec2.create_default_subnet, AvailabilityZone="ca-central-1a")[0] == (
        "DefaultSubnetAlreadyExistsInAvailabilityZone"
    )
    # Delete it as a user must: subnets, gateway, then the VPC.
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    (igw,) = ec2.describe_internet_gateways()["InternetGateways"]
    ec2.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc_id)
    ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
    ec2.delete_vpc(VpcId=vpc_id)

    assert ec2.describe_vpcs()["Vpcs"] == []
    assert attribute(ec2, "default-vpc") == ["none"]
    assert fails(ec2.create_default_subnet, AvailabilityZone="ca-central-1a")[0] == "DefaultVpcDoesNotExist"
    # A new client (a new connection, the same partition) does not bring it back.
    assert client(server, "ec2", region="ca-central-1").describe_vpcs()["Vpcs"] == []

    dry(ec2.create_default_vpc)
    assert ec2.describe_vpcs()["Vpcs"] == []
    made = ec2.create_default_vpc()["Vpc"]
    assert made["IsDefault"] is True and made["CidrBlock"] == "172.31.0.0/16" and made["State"] == "pending"
    assert attribute(ec2, "default-vpc") == [made["VpcId"]]
    assert len(ec2.describe_subnets()["Subnets"]) == 3

    # One default subnet deleted, CreateDefaultSubnet puts one back (the first free /20).
    first = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["ca-central-1b"]}])
    ec2.delete_subnet(SubnetId=first["Subnets"][0]["SubnetId"])
    dry(ec2.create_default_subnet, AvailabilityZone="ca-central-1b")
    subnet = ec2.create_default_subnet(AvailabilityZone="ca-central-1b")["Subnet"]
    assert (
        subnet["CidrBlock"] == "172.31.16.0/20" and subnet["DefaultForAz"] and subnet["MapPublicIpOnLaunch"]
    )
    assert fails(ec2.create_default_subnet, AvailabilityZone="ca-central-1z")[0] == "InvalidParameterValue"


def test_default_vpc_through_the_cli(server: LaminaServer) -> None:
    out = cli(server, "describe-vpcs", "--filters", "Name=isDefault,Values=true", region="sa-east-1")
    assert [v["CidrBlock"] for v in out["Vpcs"]] == ["172.31.0.0/16"]
    for args, code in (
        (("create-default-vpc",), "DefaultVpcAlreadyExists"),
        (
            ("create-default-subnet", "--availability-zone", "sa-east-1a"),
            "DefaultSubnetAlreadyExistsInAvailabilityZone",
        ),
    ):
        result = run_aws(server, "ec2", *args, "--region", "sa-east-1")
        assert result.returncode != 0 and f"({code})" in result.stderr


# -- account attributes and regions ----------------------------------------------------------------------


def test_describe_account_attributes(ec2: Any, server: LaminaServer) -> None:
    everything = ec2.describe_account_attributes()["AccountAttributes"]
    values = {a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]] for a in everything}
    assert list(values) == [
        "vpc-max-security-groups-per-interface",
        "max-instances",
        "supported-platforms",
        "default-vpc",
        "max-elastic-ips",
        "vpc-max-elastic-ips",
    ]
    assert values["supported-platforms"] == ["VPC"]
    assert values["vpc-max-security-groups-per-interface"] == ["5"]
    assert values["max-elastic-ips"] == values["vpc-max-elastic-ips"] == ["5"]
    assert values["default-vpc"] == [default_vpc(ec2)["VpcId"]]
    assert attribute(ec2, "supported-platforms") == ["VPC"]
    dry(ec2.describe_account_attributes)
    # Every account has its own.
    theirs = client(server, "ec2", key="AKIDALICE111", secret="alice-secret")
    assert attribute(theirs, "default-vpc") == [default_vpc(theirs)["VpcId"]] != values["default-vpc"]
    out = cli(server, "describe-account-attributes", "--attribute-names", "default-vpc")
    assert out["AccountAttributes"][0]["AttributeValues"] == [{"AttributeValue": values["default-vpc"][0]}]


def test_describe_regions(ec2: Any, server: LaminaServer) -> None:
    regions = ec2.describe_regions()["Regions"]
    by_name = {r["RegionName"]: r for r in regions}
    assert by_name["us-east-1"] == {
        "OptInStatus": "opt-in-not-required",
        "RegionName": "us-east-1",
        "Endpoint": "ec2.us-east-1.amazonaws.com",
    }
    assert {"eu-west-1", "ap-northeast-1", "sa-east-1", "af-south-1"} <= set(by_name)
    assert by_name["af-south-1"]["OptInStatus"] == "opted-in"
    assert len(ec2.describe_regions(AllRegions=True)["Regions"]) == len(regions)
    named = ec2.describe_regions(RegionNames=["eu-west-1", "us-west-2"])["Regions"]
    assert sorted(r["RegionName"] for r in named) == ["eu-west-1", "us-west-2"]
    filtered = ec2.describe_regions(Filters=[{"Name": "region-name", "Values": ["eu-*"]}])["Regions"]
    assert filtered and all(r["RegionName"].startswith("eu-") for r in filtered)
    opted = ec2.describe_regions(Filters=[{"Name": "opt-in-status", "Values": ["opted-in"]}])["Regions"]
    assert "us-east-1" not in {r["RegionName"] for r in opted} and "af-south-1" in {
        r["RegionName"] for r in opted
    }
    assert fails(ec2.describe_regions, RegionNames=["mars-north-1"])[0] == "InvalidParameterValue"
    assert (
        fails(ec2.describe_regions, Filters=[{"Name": "nope", "Values": ["x"]}])[0] == "InvalidParameterValue"
    )
    dry(ec2.describe_regions)
    out = cli(server, "describe-regions", "--all-regions", "--region-names", "eu-north-1")
    assert out["Regions"] == [
        {
            "OptInStatus": "opt-in-not-required",
            "RegionName": "eu-north-1",
            "Endpoint": "ec2.eu-north-1.amazonaws.com",
        }
    ]


# -- routes -----------------------------------------------------------------------------------------------------


def _network(ec2: Any, cidr: str = "10.40.0.0/16") -> dict[str, Any]:
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.split(".0.0/")[0]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.1.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    return {"vpc": vpc, "subnet": subnet, "igw": igw, "table": table, "eni": eni}


def _routes(ec2: Any, table: str) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0][
        "Routes"
    ]
    return routes


def test_replace_route(ec2: Any, alice: Any, server: LaminaServer) -> None:
    net = _network(ec2)
    table = net["table"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"])
    dry(
        ec2.replace_route, RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=net["eni"]
    )
    assert _routes(ec2, table)[1]["GatewayId"] == net["igw"]
    ec2.replace_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=net["eni"])
    assert _routes(ec2, table)[1] == {
        "DestinationCidrBlock": "0.0.0.0/0",
        "NetworkInterfaceId": net["eni"],
        "Origin": "CreateRoute",
        "State": "active",
    }
    filtered = ec2.describe_route_tables(
        Filters=[{"Name": "route.network-interface-id", "Values": [net["eni"]]}]
    )["RouteTables"]
    assert [t["RouteTableId"] for t in filtered] == [table]
    assert fails(
        ec2.replace_route, RouteTableId=table, DestinationCidrBlock="10.9.0.0/16", GatewayId=net["igw"]
    ) == (
        "InvalidParameterValue",
        "There is no route defined for '10.9.0.0/16' in the route table. Use CreateRoute instead.",
    )
    assert (
        fails(
            ec2.replace_route,
            RouteTableId=table,
            DestinationCidrBlock="0.0.0.0/0",
            NatGatewayId="nat-0123456789abcdef0",
        )[0]
        == "InvalidNatGatewayID.NotFound"
    )
    assert (
        fails(
            ec2.replace_route, RouteTableId=table, DestinationCidrBlock="10.40.0.0/16", GatewayId=net["igw"]
        )[0]
        == "UnsupportedOperation"
    )
    # Another account's table is not there.
    assert (
        fails(
            alice.replace_route, RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"]
        )[0]
        == "InvalidRouteTableID.NotFound"
    )
    cli(
        server,
        "replace-route",
        "--route-table-id",
        table,
        "--destination-cidr-block",
        "0.0.0.0/0",
        "--gateway-id",
        net["igw"],
    )
    assert _routes(ec2, table)[1]["GatewayId"] == net["igw"]


def test_replace_route_table_association(ec2: Any, alice: Any, server: LaminaServer) -> None:
    net = _network(ec2, "10.41.0.0/16")
    association = ec2.associate_route_table(RouteTableId=net["table"], SubnetId=net["subnet"])[
        "AssociationId"
    ]
    second = ec2.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    dry(ec2.replace_route_table_association, AssociationId=association, RouteTableId=second)
    out = ec2.replace_route_table_association(AssociationId=association, RouteTableId=second)
    assert out["NewAssociationId"].startswith("rtbassoc-") and out["NewAssociationId"] != association
    assert out["AssociationState"] == {"State": "associated"}
    tables = {
        t["RouteTableId"]: t
        for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])[
            "RouteTables"
        ]
    }
    assert tables[net["table"]]["Associations"] == []
    assert [(a["SubnetId"], a["RouteTableAssociationId"]) for a in tables[second]["Associations"]] == [
        (net["subnet"], out["NewAssociationId"])
    ]
    # The main association moves too: the new table becomes the VPC's main table.
    main = next(t for t in tables.values() if any(a.get("Main") for a in t["Associations"]))
    main_association = main["Associations"][0]["RouteTableAssociationId"]
    moved = cli(
        server,
        "replace-route-table-association",
        "--association-id",
        main_association,
        "--route-table-id",
        net["table"],
    )
    mains = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"]
    assert [t["RouteTableId"] for t in mains] == [net["table"]]
    assert mains[0]["Associations"][0]["RouteTableAssociationId"] == moved["NewAssociationId"]
    assert fails(
        ec2.replace_route_table_association, AssociationId="rtbassoc-0123456789abcdef0", RouteTableId=second
    ) == (
        "InvalidAssociationID.NotFound",
        "The association ID 'rtbassoc-0123456789abcdef0' does not exist",
    )
    other = ec2.create_route_table(VpcId=default_vpc(ec2)["VpcId"])["RouteTable"]["RouteTableId"]
    assert (
        fails(ec2.replace_route_table_association, AssociationId=out["NewAssociationId"], RouteTableId=other)[
            0
        ]
        == "InvalidParameterValue"
    )
    ec2.delete_route_table(RouteTableId=other)
    assert (
        fails(
            alice.replace_route_table_association, AssociationId=out["NewAssociationId"], RouteTableId=second
        )[0]
        == "InvalidRouteTableID.NotFound"
    )


# -- subnets ----------------------------------------------------------------------------------------------------


def test_modify_subnet_attribute(ec2: Any, alice: Any, server: LaminaServer) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]

    def shown() -> dict[str, Any]:
        found: dict[str, Any] = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]
        return found

    assert shown()["MapPublicIpOnLaunch"] is False  # (ModifySubnetAttribute takes no DryRun)
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    assert shown()["MapPublicIpOnLaunch"] is True
    assert [
        s["SubnetId"]
        for s in ec2.describe_subnets(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc]},
                {"Name": "map-public-ip-on-launch", "Values": ["true"]},
            ]
        )["Subnets"]
    ] == [subnet]
    ec2.modify_subnet_attribute(SubnetId=subnet, EnableDns64={"Value": True})
    ec2.modify_subnet_attribute(SubnetId=subnet, PrivateDnsHostnameTypeOnLaunch="resource-name")
    ec2.modify_subnet_attribute(SubnetId=subnet, EnableResourceNameDnsARecordOnLaunch={"Value": True})
    after = shown()
    assert after["EnableDns64"] is True
    assert after["PrivateDnsNameOptionsOnLaunch"] == {
        "HostnameType": "resource-name",
        "EnableResourceNameDnsARecord": True,
        "EnableResourceNameDnsAAAARecord": False,
    }
    cli(server, "modify-subnet-attribute", "--subnet-id", subnet, "--no-map-public-ip-on-launch")
    assert shown()["MapPublicIpOnLaunch"] is False
    # No IPv6 block: nothing to assign.
    assert fails(ec2.modify_subnet_attribute, SubnetId=subnet, AssignIpv6AddressOnCreation={"Value": True})[
        0
    ] == ("InvalidParameterValue")
    assert shown()["AssignIpv6AddressOnCreation"] is False
    assert (
        fails(
            ec2.modify_subnet_attribute,
            SubnetId=subnet,
            MapPublicIpOnLaunch={"Value": True},
            EnableDns64={"Value": False},
        )[0]
        == "InvalidParameterCombination"
    )
    assert fails(ec2.modify_subnet_attribute, SubnetId=subnet, PrivateDnsHostnameTypeOnLaunch="x")[0] == (
        "InvalidParameterValue"
    )
    assert fails(alice.modify_subnet_attribute, SubnetId=subnet, MapPublicIpOnLaunch={"Value": True}) == (
        "InvalidSubnetID.NotFound",
        f"The subnet ID '{subnet}' does not exist",
    )


# -- network interfaces -----------------------------------------------------------------------------------------


def test_network_interface_attributes(ec2: Any, alice: Any, server: LaminaServer) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.43.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.43.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Description="before")["NetworkInterface"]
    eni_id = eni["NetworkInterfaceId"]
    web = ec2.create_security_group(GroupName="web", Description="w", VpcId=vpc)["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="d", VpcId=vpc)["GroupId"]

    def attribute_of(name: str) -> dict[str, Any]:
        out: dict[str, Any] = ec2.describe_network_interface_attribute(
            NetworkInterfaceId=eni_id, Attribute=name
        )
        out.pop("ResponseMetadata")
        return out

    assert attribute_of("description") == {"NetworkInterfaceId": eni_id, "Description": {"Value": "before"}}
    assert attribute_of("sourceDestCheck") == {
        "NetworkInterfaceId": eni_id,
        "SourceDestCheck": {"Value": True},
    }
    assert attribute_of("groupSet")["Groups"] == eni["Groups"]
    assert attribute_of("attachment") == {"NetworkInterfaceId": eni_id}

    dry(ec2.modify_network_interface_attribute, NetworkInterfaceId=eni_id, Description={"Value": "after"})
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Description={"Value": "after"})
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, SourceDestCheck={"Value": False})
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=[web, db])
    described = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    assert described["Description"] == "after" and described["SourceDestCheck"] is False
    assert [g["GroupId"] for g in described["Groups"]] == [web, db]
    assert [g["GroupName"] for g in attribute_of("groupSet")["Groups"]] == ["web", "db"]
    # The groups are in use now: the default group is no longer, web is.
    assert fails(ec2.delete_security_group, GroupId=web)[0] == "DependencyViolation"
    by_group = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [db]}])[
        "NetworkInterfaces"
    ]
    assert [e["NetworkInterfaceId"] for e in by_group] == [eni_id]

    cli(server, "modify-network-interface-attribute", "--network-interface-id", eni_id, "--groups", web)
    out = cli(
        server,
        "describe-network-interface-attribute",
        "--network-interface-id",
        eni_id,
        "--attribute",
        "groupSet",
    )
    assert [g["GroupId"] for g in out["Groups"]] == [web]
    ec2.delete_security_group(GroupId=db)

    other_vpc = ec2.create_vpc(CidrBlock="10.44.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_security_group(GroupName="x", Description="x", VpcId=other_vpc)["GroupId"]
    assert fails(ec2.modify_network_interface_attribute, NetworkInterfaceId=eni_id, Groups=[foreign])[0] == (
        "InvalidParameter"
    )
    assert (
        fails(
            ec2.modify_network_interface_attribute, NetworkInterfaceId=eni_id, Groups=["sg-0123456789abcdef0"]
        )[0]
        == "InvalidGroup.NotFound"
    )
    assert (
        fails(
            ec2.modify_network_interface_attribute,
            NetworkInterfaceId=eni_id,
            Description={"Value": "a"},
            SourceDestCheck={"Value": True},
        )[0]
        == "InvalidParameterCombination"
    )
    assert fails(ec2.describe_network_interface_attribute, NetworkInterfaceId=eni_id, Attribute="nope")[
        0
    ] == ("InvalidParameterValue")
    assert fails(
        alice.modify_network_interface_attribute, NetworkInterfaceId=eni_id, Description={"Value": "x"}
    ) == (
        "InvalidNetworkInterfaceID.NotFound",
        f"The networkInterface ID '{eni_id}' does not exist",
    )
    assert (
        fails(alice.describe_network_interface_attribute, NetworkInterfaceId=eni_id, Attribute="description")[
            0
        ]
        == "InvalidNetworkInterfaceID.NotFound"
    )
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0][
        "Description"
    ] == ("after")


# -- security group rules -------------------------------------------------------------------------------------


def test_security_group_rule_changes(ec2: Any, alice: Any, server: LaminaServer) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.45.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="app", Description="a", VpcId=vpc)["GroupId"]
    added = ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
        ],
    )["SecurityGroupRules"]
    rule_id = added[0]["SecurityGroupRuleId"]

    def rule() -> dict[str, Any]:
        found: dict[str, Any] = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])[
            "SecurityGroupRules"
        ][0]
        return found

    permission = {
        "IpProtocol": "tcp",
        "FromPort": 80,
        "ToPort": 80,
        "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "web"}],
    }
    dry(ec2.update_security_group_rule_descriptions_ingress, GroupId=group, IpPermissions=[permission])
    assert "Description" not in rule()
    assert ec2.update_security_group_rule_descriptions_ingress(GroupId=group, IpPermissions=[permission])[
        "Return"
    ]
    assert rule()["Description"] == "web"
    ec2.update_security_group_rule_descriptions_ingress(
        GroupId=group,
        SecurityGroupRuleDescriptions=[{"SecurityGroupRuleId": rule_id, "Description": "by id"}],
    )
    assert rule()["Description"] == "by id"
    missing = {**permission, "FromPort": 81, "ToPort": 81}
    assert fails(ec2.update_security_group_rule_descriptions_ingress, GroupId=group, IpPermissions=[missing])[
        0
    ] == ("InvalidPermission.NotFound")
    # The egress rule (all traffic to 0.0.0.0/0) gets one too.
    egress = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "out"}]}
    ec2.update_security_group_rule_descriptions_egress(GroupId=group, IpPermissions=[egress])
    group_view = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    assert group_view["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0", "Description": "out"}]
    cli(
        server,
        "update-security-group-rule-descriptions-ingress",
        "--group-id",
        group,
        "--security-group-rule-descriptions",
        f"SecurityGroupRuleId={rule_id},Description=cli",
    )
    assert rule()["Description"] == "cli"

    new_rule = {
        "IpProtocol": "tcp",
        "FromPort": 443,
        "ToPort": 443,
        "CidrIpv4": "192.168.0.0/16",
        "Description": "tls",
    }
    dry(
        ec2.modify_security_group_rules,
        GroupId=group,
        SecurityGroupRules=[{"SecurityGroupRuleId": rule_id, "SecurityGroupRule": new_rule}],
    )
    assert ec2.modify_security_group_rules(
        GroupId=group, SecurityGroupRules=[{"SecurityGroupRuleId": rule_id, "SecurityGroupRule": new_rule}]
    )["Return"]
    changed = rule()
    assert (
        changed["FromPort"],
        changed["ToPort"],
        changed["CidrIpv4"],
        changed["Description"],
        changed["IsEgress"],
    ) == (
        443,
        443,
        "192.168.0.0/16",
        "tls",
        False,
    )
    ingress = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    assert ingress == [
        {
            "FromPort": 443,
            "IpProtocol": "tcp",
            "IpRanges": [{"CidrIp": "192.168.0.0/16", "Description": "tls"}],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "ToPort": 443,
            "UserIdGroupPairs": [],
        }
    ]
    assert (
        fails(
            ec2.modify_security_group_rules,
            GroupId=group,
            SecurityGroupRules=[
                {"SecurityGroupRuleId": "sgr-0123456789abcdef0", "SecurityGroupRule": new_rule}
            ],
        )[0]
        == "InvalidSecurityGroupRuleId.NotFound"
    )
    assert (
        fails(
            alice.modify_security_group_rules,
            GroupId=group,
            SecurityGroupRules=[{"SecurityGroupRuleId": rule_id, "SecurityGroupRule": new_rule}],
        )[0]
        == "InvalidGroup.NotFound"
    )
    assert (
        fails(
            alice.update_security_group_rule_descriptions_ingress, GroupId=group, IpPermissions=[permission]
        )[0]
        == "InvalidGroup.NotFound"
    )


# -- DescribeTags -----------------------------------------------------------------------------------------------


def test_describe_tags(server: LaminaServer) -> None:
    ec2 = client(server, "ec2", region="eu-south-1")
    vpc = ec2.create_vpc(
        CidrBlock="10.46.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "main"}]}],
    )["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.46.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    rule = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
        "SecurityGroupRules"
    ][0]
    ec2.create_tags(
        Resources=[subnet, eni, eip, rule["SecurityGroupRuleId"]], Tags=[{"Key": "team", "Value": "blue"}]
    )
    ec2.create_tags(Resources=[eni], Tags=[{"Key": "Name", "Value": "host"}])

    tags = ec2.describe_tags()["Tags"]
    assert {"Key": "Name", "ResourceId": vpc, "ResourceType": "vpc", "Value": "main"} in tags
    blue = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["team"]}])["Tags"]
    assert sorted((t["ResourceType"], t["ResourceId"]) for t in blue) == sorted(
        [
            ("subnet", subnet),
            ("network-interface", eni),
            ("elastic-ip", eip),
            ("security-group-rule", rule["SecurityGroupRuleId"]),
        ]
    )
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [eni]}])["Tags"] == [
        {"Key": "team", "ResourceId": eni, "ResourceType": "network-interface", "Value": "blue"},
        {"Key": "Name", "ResourceId": eni, "ResourceType": "network-interface", "Value": "host"},
    ]
    assert [
        t["ResourceId"]
        for t in ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["vpc"]}])["Tags"]
    ] == [vpc]
    assert [
        t["ResourceId"] for t in ec2.describe_tags(Filters=[{"Name": "tag:Name", "Values": ["ho*"]}])["Tags"]
    ] == [eni]
    assert [
        t["ResourceId"] for t in ec2.describe_tags(Filters=[{"Name": "value", "Values": ["main"]}])["Tags"]
    ] == [vpc]
    pages = list(ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 5}))
    assert sum(len(p["Tags"]) for p in pages) == len(tags) == 6
    assert (
        fails(ec2.describe_tags, Filters=[{"Name": "bogus", "Values": ["x"]}])[0] == "InvalidParameterValue"
    )
    dry(ec2.describe_tags)
    out = cli(server, "describe-tags", "--filters", "Name=resource-type,Values=subnet", region="eu-south-1")
    assert out["Tags"] == [{"Key": "team", "ResourceId": subnet, "ResourceType": "subnet", "Value": "blue"}]
    # Another account sees none of them.
    alice = client(server, "ec2", key="AKIDALICE111", secret="alice-secret", region="eu-south-1")
    assert alice.describe_tags()["Tags"] == []


# -- Elastic IPs on network interfaces ------------------------------------------------------------------------


def test_associate_address_with_interface(ec2: Any, alice: Any, server: LaminaServer) -> None:
    net = _network(ec2, "10.47.0.0/16")
    eni = net["eni"]
    allocation = ec2.allocate_address(Domain="vpc")
    dry(ec2.associate_address, AllocationId=allocation["AllocationId"], NetworkInterfaceId=eni)
    association = ec2.associate_address(AllocationId=allocation["AllocationId"], NetworkInterfaceId=eni)[
        "AssociationId"
    ]
    assert association.startswith("eipassoc-")
    address = ec2.describe_addresses(AllocationIds=[allocation["AllocationId"]])["Addresses"][0]
    described = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    assert address["AssociationId"] == association and address["NetworkInterfaceId"] == eni
    assert address["PrivateIpAddress"] == described["PrivateIpAddress"]
    assert address["NetworkInterfaceOwnerId"] == "000000000000"
    public_ip = allocation["PublicIp"]
    expected = {
        "AllocationId": allocation["AllocationId"],
        "AssociationId": association,
        "IpOwnerId": "000000000000",
        "PublicDnsName": f"ec2-{public_ip.replace('.', '-')}.compute-1.amazonaws.com",
        "PublicIp": public_ip,
    }
    assert described["Association"] == expected
    assert described["PrivateIpAddresses"][0]["Association"] == expected
    by_ip = ec2.describe_network_interfaces(
        Filters=[{"Name": "association.public-ip", "Values": [public_ip]}]
    )
    assert [e["NetworkInterfaceId"] for e in by_ip["NetworkInterfaces"]] == [eni]
    assert [
        a["PublicIp"]
        for a in ec2.describe_addresses(Filters=[{"Name": "association-id", "Values": [association]}])[
            "Addresses"
        ]
    ] == [public_ip]

    # Already associated: another interface needs AllowReassociation.
    other = ec2.create_network_interface(SubnetId=net["subnet"])["NetworkInterface"]["NetworkInterfaceId"]
    code, message = fails(
        ec2.associate_address, AllocationId=allocation["AllocationId"], NetworkInterfaceId=other
    )
    assert code == "Resource.AlreadyAssociated" and association in message
    moved = ec2.associate_address(
        AllocationId=allocation["AllocationId"], NetworkInterfaceId=other, AllowReassociation=True
    )["AssociationId"]
    assert (
        "Association"
        not in ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    )
    assert ec2.describe_addresses(PublicIps=[public_ip])["Addresses"][0]["NetworkInterfaceId"] == other
    assert fails(ec2.release_address, AllocationId=allocation["AllocationId"])[0] == "InvalidIPAddress.InUse"

    assert fails(alice.disassociate_address, AssociationId=moved)[0] == "InvalidAssociationID.NotFound"
    dry(ec2.disassociate_address, AssociationId=moved)
    ec2.disassociate_address(AssociationId=moved)
    assert "AssociationId" not in ec2.describe_addresses(PublicIps=[public_ip])["Addresses"][0]
    assert (
        "Association"
        not in ec2.describe_network_interfaces(NetworkInterfaceIds=[other])["NetworkInterfaces"][0]
    )
    assert fails(ec2.disassociate_address, AssociationId=moved) == (
        "InvalidAssociationID.NotFound",
        f"The association ID '{moved}' does not exist",
    )

    # Through the CLI, by public IP; deleting the interface lets go of the address.
    out = cli(server, "associate-address", "--public-ip", public_ip, "--network-interface-id", other)
    assert out["AssociationId"].startswith("eipassoc-")
    ec2.delete_network_interface(NetworkInterfaceId=other)
    assert "AssociationId" not in ec2.describe_addresses(PublicIps=[public_ip])["Addresses"][0]

    # No internet gateway, no public address.
    bare_vpc = ec2.create_vpc(CidrBlock="10.48.0.0/16")["Vpc"]["VpcId"]
    bare_subnet = ec2.create_subnet(VpcId=bare_vpc, CidrBlock="10.48.1.0/24")["Subnet"]["SubnetId"]
    bare = ec2.create_network_interface(SubnetId=bare_subnet)["NetworkInterface"]["NetworkInterfaceId"]
    assert fails(ec2.associate_address, AllocationId=allocation["AllocationId"], NetworkInterfaceId=bare) == (
        "Gateway.NotAttached",
        f"Network {bare_vpc} is not attached to any internet gateway",
    )
    # Other accounts' addresses and interfaces do not exist.
    assert fails(alice.associate_address, AllocationId=allocation["AllocationId"], NetworkInterfaceId=eni)[
        0
    ] == ("InvalidAllocationID.NotFound")
    theirs = alice.allocate_address(Domain="vpc")["AllocationId"]
    assert fails(alice.associate_address, AllocationId=theirs, NetworkInterfaceId=eni)[0] == (
        "InvalidNetworkInterfaceID.NotFound"
    )
    alice.release_address(AllocationId=theirs)
    assert (
        fails(
            ec2.associate_address,
            AllocationId=allocation["AllocationId"],
            NetworkInterfaceId=eni,
            PrivateIpAddress="10.47.1.200",
        )[0]
        == "InvalidParameterValue"
    )
    ec2.release_address(AllocationId=allocation["AllocationId"])


def test_requester_managed_interfaces_are_refused(ec2: Any) -> None:
    net = _network(ec2, "10.49.0.0/16")
    eip = ec2.allocate_address(Domain="vpc")
    nat = ec2.create_nat_gateway(SubnetId=net["subnet"], AllocationId=eip["AllocationId"])["NatGateway"]
    nat_eni = nat["NatGatewayAddresses"][0]["NetworkInterfaceId"]
    refusal = ("AuthFailure", "You do not have permission to access the specified resource.")
    assert (
        fails(ec2.modify_network_interface_attribute, NetworkInterfaceId=nat_eni, Description={"Value": "x"})
        == refusal
    )
    other = ec2.allocate_address(Domain="vpc")
    assert (
        fails(ec2.associate_address, AllocationId=other["AllocationId"], NetworkInterfaceId=nat_eni)
        == refusal
    )
    # The NAT gateway's own address cannot be taken away from it.
    association = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"][0]["AssociationId"]
    assert fails(ec2.disassociate_address, AssociationId=association) == refusal
    assert (
        fails(
            ec2.associate_address,
            AllocationId=eip["AllocationId"],
            NetworkInterfaceId=net["eni"],
            AllowReassociation=True,
        )[0]
        == "Resource.AlreadyAssociated"
    )
    ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    ec2.release_address(AllocationId=other["AllocationId"])


def test_new_operations_are_authorized_by_iam(server: LaminaServer, ec2: Any) -> None:
    iam = client(server, "iam")
    iam.create_user(UserName="reader")
    iam.put_user_policy(
        UserName="reader",
        PolicyName="describe",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}],
            }
        ),
    )
    made = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = client(server, "ec2", key=made["AccessKeyId"], secret=made["SecretAccessKey"])
    assert reader.describe_account_attributes()["AccountAttributes"]
    assert reader.describe_regions(RegionNames=["us-east-1"])["Regions"]
    reader.describe_tags()
    net = _network(ec2, "10.50.0.0/16")
    for call, kwargs, action in (
        (
            reader.replace_route,
            {"RouteTableId": net["table"], "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": net["igw"]},
            "ec2:ReplaceRoute",
        ),
        (
            reader.modify_network_interface_attribute,
            {"NetworkInterfaceId": net["eni"], "Description": {"Value": "x"}},
            "ec2:ModifyNetworkInterfaceAttribute",
        ),
        (reader.create_default_vpc, {}, "ec2:CreateDefaultVpc"),
    ):
        code, message = fails(call, **kwargs)
        assert code == "UnauthorizedOperation" and f"is not authorized to perform: {action}" in message
    assert (
        ec2.describe_network_interfaces(NetworkInterfaceIds=[net["eni"]])["NetworkInterfaces"][0][
            "Description"
        ]
        == ""
    )
