"""VPC endpoints, endpoint services and prefix lists through boto3 and the AWS CLI against the real
server: shapes, filters, DryRun, EC2's errors, routes and interfaces they make, and accounts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client, run_aws

S3 = "com.amazonaws.us-east-1.s3"
LAMBDA = "com.amazonaws.us-east-1.lambda"


@pytest.fixture(scope="module")
def ec2(server: LaminaServer) -> Any:
    return client(server, "ec2")


def fails(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


@pytest.fixture
def net(ec2: Any) -> dict[str, Any]:
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})  # for private DNS
    a = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    b = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    rtb = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    sg = ec2.create_security_group(VpcId=vpc_id, GroupName="vpce", Description="endpoints")["GroupId"]
    return {"vpc": vpc_id, "a": a["SubnetId"], "b": b["SubnetId"], "rtb": rtb, "sg": sg}


def s3_prefix_list(ec2: Any) -> dict[str, Any]:
    lists = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [S3]}])["PrefixLists"]
    assert len(lists) == 1
    found: dict[str, Any] = lists[0]
    return found


def test_endpoint_services_and_prefix_lists(ec2: Any) -> None:
    services = ec2.describe_vpc_endpoint_services()
    names = services["ServiceNames"]
    for name in (
        S3,
        LAMBDA,
        "com.amazonaws.us-east-1.sts",
        "com.amazonaws.us-east-1.logs",
        "com.amazonaws.us-east-1.ec2",
    ):
        assert name in names
    s3_types = sorted(
        d["ServiceType"][0]["ServiceType"] for d in services["ServiceDetails"] if d["ServiceName"] == S3
    )
    assert s3_types == ["Gateway", "Interface"]
    lam = next(d for d in services["ServiceDetails"] if d["ServiceName"] == LAMBDA)
    assert lam["PrivateDnsName"] == "lambda.us-east-1.amazonaws.com"
    assert lam["Owner"] == "amazon" and lam["AcceptanceRequired"] is False
    gateway_only = ec2.describe_vpc_endpoint_services(
        Filters=[{"Name": "service-type", "Values": ["Gateway"]}]
    )
    assert gateway_only["ServiceNames"] == [S3]
    code, message = fails(ec2.describe_vpc_endpoint_services, ServiceNames=["com.amazonaws.us-east-1.nope"])
    assert (code, message) == (
        "InvalidServiceName",
        "The Vpc Endpoint Service 'com.amazonaws.us-east-1.nope' does not exist",
    )

    pl = s3_prefix_list(ec2)
    assert pl["PrefixListId"].startswith("pl-") and pl["Cidrs"] == ["198.51.100.251/32"]
    managed = ec2.describe_managed_prefix_lists(PrefixListIds=[pl["PrefixListId"]])["PrefixLists"][0]
    assert managed["OwnerId"] == "AWS" and managed["PrefixListName"] == S3
    assert managed["PrefixListArn"] == f"arn:aws:ec2:us-east-1:aws:prefix-list/{pl['PrefixListId']}"
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=pl["PrefixListId"])["Entries"]
    assert entries == [{"Cidr": "198.51.100.251/32"}]
    assert (
        fails(ec2.describe_prefix_lists, PrefixListIds=["pl-00000000"])[0] == "InvalidPrefixListId.NotFound"
    )


def test_prefix_list_is_per_region(server: LaminaServer, ec2: Any) -> None:
    west = client(server, "ec2", region="us-west-2")
    lists = west.describe_prefix_lists()["PrefixLists"]
    assert [p["PrefixListName"] for p in lists] == ["com.amazonaws.us-west-2.s3"]
    assert lists[0]["PrefixListId"] != s3_prefix_list(ec2)["PrefixListId"]


def test_gateway_endpoint_routes_and_deletion(ec2: Any, net: dict[str, Any]) -> None:
    pl_id = s3_prefix_list(ec2)["PrefixListId"]
    code, message = fails(
        ec2.create_vpc_endpoint, VpcId=net["vpc"], ServiceName=S3, RouteTableIds=[net["rtb"]], DryRun=True
    )
    assert (code, message) == ("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
    assert (
        ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])["VpcEndpoints"] == []
    )
    created = ec2.create_vpc_endpoint(
        VpcId=net["vpc"],
        ServiceName=S3,
        RouteTableIds=[net["rtb"]],
        TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": [{"Key": "team", "Value": "data"}]}],
    )["VpcEndpoint"]
    vpce = created["VpcEndpointId"]
    assert vpce.startswith("vpce-")
    assert created["VpcEndpointType"] == "Gateway" and created["State"] == "available"
    assert created["RouteTableIds"] == [net["rtb"]]
    assert json.loads(created["PolicyDocument"])["Statement"][0]["Effect"] == "Allow"
    assert created["Tags"] == [{"Key": "team", "Value": "data"}]

    table = ec2.describe_route_tables(RouteTableIds=[net["rtb"]])["RouteTables"][0]
    route = next(r for r in table["Routes"] if r.get("DestinationPrefixListId"))
    assert route == {
        "DestinationPrefixListId": pl_id,
        "GatewayId": vpce,
        "Origin": "CreateRoute",
        "State": "active",
    }
    by_filter = ec2.describe_route_tables(
        Filters=[{"Name": "route.destination-prefix-list-id", "Values": [pl_id]}]
    )
    assert [t["RouteTableId"] for t in by_filter["RouteTables"]] == [net["rtb"]]

    # One route per prefix list and table.
    code, message = fails(
        ec2.create_vpc_endpoint, VpcId=net["vpc"], ServiceName=S3, RouteTableIds=[net["rtb"]]
    )
    assert code == "RouteAlreadyExists"
    assert message == f"route table {net['rtb']} already has a route with destination-prefix-list-id {pl_id}"
    # Lambda has no gateway endpoint.
    code, message = fails(ec2.create_vpc_endpoint, VpcId=net["vpc"], ServiceName=LAMBDA)
    assert code == "InvalidParameter" and "Endpoint type (Gateway)" in message

    # A VPC with an endpoint cannot be deleted.
    for subnet in ("a", "b"):
        ec2.delete_subnet(SubnetId=net[subnet])
    ec2.delete_route_table(RouteTableId=net["rtb"])
    ec2.delete_security_group(GroupId=net["sg"])
    code, message = fails(ec2.delete_vpc, VpcId=net["vpc"])
    assert (code, message) == (
        "DependencyViolation",
        f"The vpc '{net['vpc']}' has dependencies and cannot be deleted.",
    )

    # Modify: policy, then reset it.
    policy = json.dumps(
        {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}
    )
    assert ec2.modify_vpc_endpoint(VpcEndpointId=vpce, PolicyDocument=policy)["Return"] is True
    assert ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]["PolicyDocument"] == policy
    ec2.modify_vpc_endpoint(VpcEndpointId=vpce, ResetPolicy=True)
    assert "Allow" in ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]["PolicyDocument"]

    gone = ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce, "vpce-0123456789abcdef0"])
    assert gone["Unsuccessful"] == [
        {
            "Error": {
                "Code": "InvalidVpcEndpoint.NotFound",
                "Message": "The Vpc Endpoint Id 'vpce-0123456789abcdef0' does not exist",
            },
            "ResourceId": "vpce-0123456789abcdef0",
        }
    ]
    code, message = fails(ec2.describe_vpc_endpoints, VpcEndpointIds=[vpce])
    assert (code, message) == ("InvalidVpcEndpointId.NotFound", f"The VpcEndpoint Id '{vpce}' does not exist")
    ec2.delete_vpc(VpcId=net["vpc"])


def test_modify_gateway_route_tables(ec2: Any, net: dict[str, Any]) -> None:
    vpce = ec2.create_vpc_endpoint(VpcId=net["vpc"], ServiceName=S3)["VpcEndpoint"]["VpcEndpointId"]
    main = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"][0]["RouteTableId"]
    ec2.modify_vpc_endpoint(VpcEndpointId=vpce, AddRouteTableIds=[net["rtb"], main])
    assert sorted(
        ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]["RouteTableIds"]
    ) == sorted([net["rtb"], main])
    ec2.modify_vpc_endpoint(VpcEndpointId=vpce, RemoveRouteTableIds=[main])
    # A route table deleted takes its endpoint route with it.
    extra = ec2.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    ec2.modify_vpc_endpoint(VpcEndpointId=vpce, AddRouteTableIds=[extra])
    ec2.delete_route_table(RouteTableId=extra)
    assert ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]["RouteTableIds"] == [
        net["rtb"]
    ]
    table = ec2.describe_route_tables(RouteTableIds=[main])["RouteTables"][0]
    assert not [r for r in table["Routes"] if r.get("DestinationPrefixListId")]
    other = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_route_table(VpcId=other)["RouteTable"]["RouteTableId"]
    assert (
        fails(ec2.modify_vpc_endpoint, VpcEndpointId=vpce, AddRouteTableIds=[foreign])[0]
        == "InvalidParameter"
    )
    assert (
        fails(ec2.modify_vpc_endpoint, VpcEndpointId=vpce, AddRouteTableIds=["rtb-0000000000000000a"])[0]
        == "InvalidRouteTableID.NotFound"
    )
    assert (
        fails(ec2.modify_vpc_endpoint, VpcEndpointId=vpce, AddSubnetIds=[net["a"]])[0] == "InvalidParameter"
    )
    ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce])


def test_interface_endpoint_interfaces_and_dns(ec2: Any, net: dict[str, Any]) -> None:
    before = ec2.describe_subnets(SubnetIds=[net["a"]])["Subnets"][0]["AvailableIpAddressCount"]
    created = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=net["vpc"],
        ServiceName=LAMBDA,
        SubnetIds=[net["a"], net["b"]],
        SecurityGroupIds=[net["sg"]],
    )["VpcEndpoint"]
    vpce = created["VpcEndpointId"]
    assert created["PrivateDnsEnabled"] is True
    assert created["Groups"] == [{"GroupId": net["sg"], "GroupName": "vpce"}]
    assert len(created["NetworkInterfaceIds"]) == 2
    names = [d["DnsName"] for d in created["DnsEntries"]]
    assert names[0].startswith(f"{vpce}-") and names[0].endswith(".lambda.us-east-1.vpce.amazonaws.com")
    assert "lambda.us-east-1.amazonaws.com" in names
    assert ec2.describe_subnets(SubnetIds=[net["a"]])["Subnets"][0]["AvailableIpAddressCount"] == before - 1
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=created["NetworkInterfaceIds"])[
        "NetworkInterfaces"
    ]
    for eni in enis:
        assert eni["InterfaceType"] == "vpc_endpoint"
        assert eni["RequesterManaged"] is True
        assert eni["Description"] == f"VPC Endpoint Interface {vpce}"
        assert [g["GroupId"] for g in eni["Groups"]] == [net["sg"]]
    code, _ = fails(ec2.delete_network_interface, NetworkInterfaceId=enis[0]["NetworkInterfaceId"])
    assert code == "InvalidNetworkInterface.InUse"

    # A second endpoint with private DNS for the same service conflicts; without, it does not.
    code, message = fails(
        ec2.create_vpc_endpoint,
        VpcEndpointType="Interface",
        VpcId=net["vpc"],
        ServiceName=LAMBDA,
        SubnetIds=[net["a"]],
    )
    assert (
        code == "InvalidParameter" and "conflicting DNS domain for lambda.us-east-1.amazonaws.com" in message
    )
    # Two subnets in one zone.
    c = ec2.create_subnet(VpcId=net["vpc"], CidrBlock="10.0.3.0/24", AvailabilityZone="us-east-1a")["Subnet"][
        "SubnetId"
    ]
    code, _ = fails(
        ec2.create_vpc_endpoint,
        VpcEndpointType="Interface",
        VpcId=net["vpc"],
        ServiceName="com.amazonaws.us-east-1.sts",
        SubnetIds=[net["a"], c],
    )
    assert code == "DuplicateSubnetsInSameZone"
    assert (
        fails(
            ec2.create_vpc_endpoint,
            VpcEndpointType="Interface",
            VpcId=net["vpc"],
            ServiceName=LAMBDA,
            RouteTableIds=[net["rtb"]],
        )[0]
        == "InvalidParameter"
    )

    # Modify: drop a subnet (its interface goes), swap the groups, turn private DNS off.
    ec2.modify_vpc_endpoint(
        VpcEndpointId=vpce, RemoveSubnetIds=[net["b"]], PrivateDnsEnabled=False, AddSecurityGroupIds=[]
    )
    now = ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]
    assert now["SubnetIds"] == [net["a"]] and len(now["NetworkInterfaceIds"]) == 1
    assert now["PrivateDnsEnabled"] is False
    assert "lambda.us-east-1.amazonaws.com" not in [d["DnsName"] for d in now["DnsEntries"]]
    gone = [e for e in created["NetworkInterfaceIds"] if e not in now["NetworkInterfaceIds"]][0]
    assert (
        fails(ec2.describe_network_interfaces, NetworkInterfaceIds=[gone])[0]
        == "InvalidNetworkInterfaceID.NotFound"
    )

    # Add a subnet back: a new interface in it, in the endpoint's groups.
    ec2.modify_vpc_endpoint(VpcEndpointId=vpce, AddSubnetIds=[net["b"]])
    again = ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]
    assert (
        sorted(again["SubnetIds"]) == sorted([net["a"], net["b"]]) and len(again["NetworkInterfaceIds"]) == 2
    )
    code, _ = fails(ec2.modify_vpc_endpoint, VpcEndpointId=vpce, AddSubnetIds=[c])  # zone a is taken
    assert code == "DuplicateSubnetsInSameZone"
    ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce])
    assert (
        ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])[
            "NetworkInterfaces"
        ]
        == []
    )
    assert ec2.describe_subnets(SubnetIds=[net["a"]])["Subnets"][0]["AvailableIpAddressCount"] == before


def test_errors_and_filters(ec2: Any, net: dict[str, Any]) -> None:
    code, message = fails(
        ec2.create_vpc_endpoint, VpcId=net["vpc"], ServiceName="com.amazonaws.us-east-1.foo"
    )
    assert (code, message) == (
        "InvalidServiceName",
        "The Vpc Endpoint Service 'com.amazonaws.us-east-1.foo' does not exist",
    )
    assert (
        fails(ec2.create_vpc_endpoint, VpcId="vpc-0000000000000000a", ServiceName=S3)[0]
        == "InvalidVpcID.NotFound"
    )
    assert (
        fails(ec2.create_vpc_endpoint, VpcId=net["vpc"], ServiceName=S3, PolicyDocument="{nope")[0]
        == "InvalidPolicyDocument"
    )
    gw = ec2.create_vpc_endpoint(VpcId=net["vpc"], ServiceName=S3)["VpcEndpoint"]["VpcEndpointId"]
    itf = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=net["vpc"],
        ServiceName="com.amazonaws.us-east-1.sts",
        SubnetIds=[net["a"]],
    )["VpcEndpoint"]
    # No groups: the VPC's default group.
    assert [g["GroupName"] for g in itf["Groups"]] == ["default"]
    listed = ec2.describe_vpc_endpoints(
        Filters=[
            {"Name": "vpc-id", "Values": [net["vpc"]]},
            {"Name": "vpc-endpoint-type", "Values": ["Interface"]},
        ]
    )["VpcEndpoints"]
    assert [e["VpcEndpointId"] for e in listed] == [itf["VpcEndpointId"]]
    named = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "service-name", "Values": ["*.s3"]}, {"Name": "vpc-id", "Values": [net["vpc"]]}]
    )
    assert [e["VpcEndpointId"] for e in named["VpcEndpoints"]] == [gw]
    assert (
        fails(ec2.describe_vpc_endpoints, Filters=[{"Name": "bogus", "Values": ["x"]}])[0]
        == "InvalidParameterValue"
    )
    ec2.create_tags(Resources=[gw], Tags=[{"Key": "k", "Value": "v"}])
    tagged = ec2.describe_vpc_endpoints(Filters=[{"Name": "tag:k", "Values": ["v"]}])["VpcEndpoints"]
    assert [e["VpcEndpointId"] for e in tagged] == [gw]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[gw, itf["VpcEndpointId"]])


def test_other_accounts_see_nothing(server: LaminaServer, ec2: Any, net: dict[str, Any]) -> None:
    vpce = ec2.create_vpc_endpoint(VpcId=net["vpc"], ServiceName=S3, RouteTableIds=[net["rtb"]])[
        "VpcEndpoint"
    ]["VpcEndpointId"]
    alice = client(server, "ec2", key="AKIDALICE111", secret="alice-secret")
    assert vpce not in [e["VpcEndpointId"] for e in alice.describe_vpc_endpoints()["VpcEndpoints"]]
    assert fails(alice.describe_vpc_endpoints, VpcEndpointIds=[vpce])[0] == "InvalidVpcEndpointId.NotFound"
    assert (
        fails(alice.modify_vpc_endpoint, VpcEndpointId=vpce, ResetPolicy=True)[0]
        == "InvalidVpcEndpointId.NotFound"
    )
    assert alice.delete_vpc_endpoints(VpcEndpointIds=[vpce])["Unsuccessful"][0]["ResourceId"] == vpce
    assert fails(alice.create_vpc_endpoint, VpcId=net["vpc"], ServiceName=S3)[0] == "InvalidVpcID.NotFound"
    assert ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]["State"] == "available"
    ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce])


def test_aws_cli(server: LaminaServer, ec2: Any, net: dict[str, Any]) -> None:
    made = run_aws(
        server,
        "ec2",
        "create-vpc-endpoint",
        "--vpc-id",
        net["vpc"],
        "--service-name",
        S3,
        "--route-table-ids",
        net["rtb"],
        "--output",
        "json",
    )
    assert made.returncode == 0, made.stderr
    vpce = json.loads(made.stdout)["VpcEndpoint"]["VpcEndpointId"]
    listed = run_aws(server, "ec2", "describe-vpc-endpoints", "--vpc-endpoint-ids", vpce, "--output", "json")
    assert listed.returncode == 0 and json.loads(listed.stdout)["VpcEndpoints"][0]["ServiceName"] == S3
    pls = run_aws(server, "ec2", "describe-prefix-lists", "--output", "json")
    assert pls.returncode == 0 and S3 in pls.stdout
    gone = run_aws(server, "ec2", "delete-vpc-endpoints", "--vpc-endpoint-ids", vpce, "--output", "json")
    assert gone.returncode == 0 and json.loads(gone.stdout)["Unsuccessful"] == []


def test_dns_records_of_a_vpc_follow_its_interface_endpoints(
    server: LaminaServer, ec2: Any, net: dict[str, Any]
) -> None:
    """The records the Amazon DNS server is given for lamina's names (``endpoint_names``), read
    from the server's own store."""
    from ipaddress import IPv4Address

    from lamina.domain import endpoints as P
    from lamina.services.ec2.endpoint_names import records_for
    from lamina.store import open_database
    from lamina.store.ec2 import Ec2Store

    db = open_database(server.database or server.data_dir / "lamina.db")
    try:
        store = Ec2Store(db)
        records = records_for(store, ["us-east-1", "eu-west-1"])
        key = ("000000000000", "us-east-1", net["vpc"])
        assert records(key)["lambda.us-east-1.amazonaws.com"] == (P.PUBLIC_API_ADDRESS,)
        assert records(None)["s3.eu-west-1.amazonaws.com"] == (P.PUBLIC_S3_ADDRESS,)
        made = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=net["vpc"], ServiceName=LAMBDA, SubnetIds=[net["a"]]
        )["VpcEndpoint"]
        eni = ec2.describe_network_interfaces(NetworkInterfaceIds=made["NetworkInterfaceIds"])[
            "NetworkInterfaces"
        ][0]
        address = (IPv4Address(eni["PrivateIpAddress"]),)
        assert records(key)["lambda.us-east-1.amazonaws.com"] == address
        assert records(key)[made["DnsEntries"][0]["DnsName"]] == address
        # Another VPC, another account: the public address.
        assert records(("111111111111", "us-east-1", net["vpc"]))["lambda.us-east-1.amazonaws.com"] == (
            P.PUBLIC_API_ADDRESS,
        )
        ec2.modify_vpc_endpoint(VpcEndpointId=made["VpcEndpointId"], PrivateDnsEnabled=False)
        assert records(key)["lambda.us-east-1.amazonaws.com"] == (P.PUBLIC_API_ADDRESS,)
        ec2.delete_vpc_endpoints(VpcEndpointIds=[made["VpcEndpointId"]])
    finally:
        db.close()


def test_private_dns_needs_the_vpcs_dns_support_and_hostnames(ec2: Any) -> None:
    """As EC2: an interface endpoint's private DNS needs both DNS attributes of its VPC on."""
    vpc_id = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]  # hostnames off, as any new VPC
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.3.1.0/24")["Subnet"]["SubnetId"]
    message = (
        "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes "
        f"set to true for {vpc_id}"
    )
    args = {"VpcEndpointType": "Interface", "VpcId": vpc_id, "ServiceName": LAMBDA, "SubnetIds": [subnet]}
    assert fails(ec2.create_vpc_endpoint, **args) == ("InvalidParameter", message)
    assert not ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    made = ec2.create_vpc_endpoint(**args, PrivateDnsEnabled=False)["VpcEndpoint"]
    vpce = made["VpcEndpointId"]
    assert fails(ec2.modify_vpc_endpoint, VpcEndpointId=vpce, PrivateDnsEnabled=True) == (
        "InvalidParameter",
        message,
    )
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    ec2.modify_vpc_endpoint(VpcEndpointId=vpce, PrivateDnsEnabled=True)
    assert ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]["PrivateDnsEnabled"] is True
    ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce])
