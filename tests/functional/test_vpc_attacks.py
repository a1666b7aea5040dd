"""Attacks on the VPC features of issue 18 as a hostile tenant makes them, against the real server:
another account's DNS option sets, network ACLs, associations, route tables, Elastic IPs,
interfaces and tags; ``POST /_lamina/vpc-run`` with other accounts' and service-managed
interfaces, malformed and path-like ids, bad signatures; a principal allowed only
``ec2:Describe*`` calling every new mutating operation (with and without DryRun); malformed input
to every new operation (never a 500, the server keeps serving); concurrent first use of a region
and concurrent Associate/DisassociateAddress."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client

ALICE = {"access_key_id": "AKIDALICE111", "secret_access_key": "alice-secret"}
DRY_OK = ("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")


@pytest.fixture(scope="module")
def ec2(server: LaminaServer) -> Any:
    return client(server, "ec2")


@pytest.fixture(scope="module")
def mallory(server: LaminaServer) -> Any:
    """Another account's client."""
    return client(server, "ec2", key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])


def fails(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def network(ec2: Any, cidr: str) -> dict[str, str]:
    """A VPC with a subnet, an interface, an internet gateway and a route table of its own."""
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.split("/")[0].rsplit(".", 2)[0]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    association = ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)["AssociationId"]
    acl = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"][0]
    return {
        "vpc": vpc,
        "subnet": subnet,
        "eni": eni,
        "igw": igw,
        "table": table,
        "association": association,
        "acl": acl["NetworkAclId"],
        "acl_association": acl["Associations"][0]["NetworkAclAssociationId"],
    }


def raw_ec2(
    server: LaminaServer, params: dict[str, str], key: str = "test", secret: str = "test"
) -> tuple[int, str]:
    """An EC2 query-protocol request exactly as given (no botocore validation): (status, body)."""
    from urllib.parse import urlencode

    body = urlencode({"Version": "2016-11-15", **params}).encode()
    request = AWSRequest(
        "POST",
        server.url + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials(key, secret), "ec2", "us-east-1").add_auth(request)
    http = urllib.request.Request(server.url + "/", data=body, headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(http, timeout=30) as answer:
            return int(answer.status), answer.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


def vpc_run(
    server: LaminaServer,
    document: dict[str, Any] | bytes,
    *,
    service: str = "ec2",
    region: str = "us-east-1",
    keys: tuple[str, str] | None = ("test", "test"),
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """A POST to lamina's vpc-run route, signed (or not: ``keys`` None) as asked."""
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    url = server.url + "/_lamina/vpc-run"
    request = AWSRequest(
        "POST", url, data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    if keys is not None:
        SigV4Auth(Credentials(*keys), service, region).add_auth(request)
    http = urllib.request.Request(url, data=body, headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(http, timeout=30) as answer:
            status, text = int(answer.status), answer.read()
    except urllib.error.HTTPError as exc:
        status, text = int(exc.code), exc.read()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = {"raw": text.decode(errors="replace")}
    return status, parsed


def healthy(server: LaminaServer, ec2: Any) -> None:
    """The server still serves and says nothing went wrong inside it."""
    assert ec2.describe_vpcs()["Vpcs"] is not None
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


# -- other accounts' resources ----------------------------------------------------------------------


def test_another_accounts_dns_option_sets_acls_and_tags_do_not_exist(ec2: Any, mallory: Any) -> None:
    victim = network(ec2, "10.60.0.0/16")
    ec2.create_tags(Resources=[victim["vpc"], victim["acl"]], Tags=[{"Key": "secret", "Value": "victim"}])
    options = ec2.create_dhcp_options(
        DhcpConfigurations=[{"Key": "domain-name", "Values": ["corp.victim"]}],
        TagSpecifications=[{"ResourceType": "dhcp-options", "Tags": [{"Key": "secret", "Value": "victim"}]}],
    )["DhcpOptions"]["DhcpOptionsId"]
    # The same CIDR in the attacker's account: ids, not addresses, are what name resources.
    mine = network(mallory, "10.60.0.0/16")

    # Nothing of the victim's is listed, by filter or by id.
    tags = mallory.describe_tags(Filters=[{"Name": "key", "Values": ["secret"]}])["Tags"]
    assert tags == []
    tags = mallory.describe_tags(Filters=[{"Name": "resource-id", "Values": [victim["vpc"], victim["acl"]]}])
    assert tags["Tags"] == []
    assert (
        fails(mallory.describe_network_acls, NetworkAclIds=[victim["acl"]])[0]
        == "InvalidNetworkAclID.NotFound"
    )
    listed = mallory.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [victim["vpc"]]}])
    assert listed["NetworkAcls"] == []
    listed = mallory.describe_network_acls(
        Filters=[{"Name": "association.association-id", "Values": [victim["acl_association"]]}]
    )
    assert listed["NetworkAcls"] == []
    assert fails(mallory.describe_dhcp_options, DhcpOptionsIds=[options])[0] == "InvalidDhcpOptionID.NotFound"
    listed = mallory.describe_dhcp_options(Filters=[{"Name": "value", "Values": ["corp.victim"]}])
    assert listed["DhcpOptions"] == []
    assert all(o["OwnerId"] == "111111111111" for o in mallory.describe_dhcp_options()["DhcpOptions"])

    # Nothing of the victim's can be used or changed.
    code, _ = fails(mallory.associate_dhcp_options, DhcpOptionsId=options, VpcId=mine["vpc"])
    assert code == "InvalidDhcpOptionID.NotFound"
    code, _ = fails(mallory.associate_dhcp_options, DhcpOptionsId="default", VpcId=victim["vpc"])
    assert code == "InvalidVpcID.NotFound"
    assert fails(mallory.delete_dhcp_options, DhcpOptionsId=options)[0] == "InvalidDhcpOptionID.NotFound"
    code, _ = fails(
        mallory.replace_network_acl_association,
        AssociationId=victim["acl_association"],
        NetworkAclId=mine["acl"],
    )
    assert code == "InvalidAssociationID.NotFound"
    code, _ = fails(
        mallory.replace_network_acl_association,
        AssociationId=mine["acl_association"],
        NetworkAclId=victim["acl"],
    )
    assert code == "InvalidNetworkAclID.NotFound"
    for call in (mallory.create_network_acl_entry, mallory.replace_network_acl_entry):
        code, _ = fails(
            call,
            NetworkAclId=victim["acl"],
            RuleNumber=100,
            Protocol="-1",
            RuleAction="deny",
            Egress=False,
            CidrBlock="0.0.0.0/0",
        )
        assert code == "InvalidNetworkAclID.NotFound"
    code, _ = fails(
        mallory.delete_network_acl_entry, NetworkAclId=victim["acl"], RuleNumber=100, Egress=False
    )
    assert code == "InvalidNetworkAclID.NotFound"
    assert fails(mallory.create_network_acl, VpcId=victim["vpc"])[0] == "InvalidVpcID.NotFound"
    code, _ = fails(
        mallory.replace_route,
        RouteTableId=victim["table"],
        DestinationCidrBlock="0.0.0.0/0",
        GatewayId=mine["igw"],
    )
    assert code == "InvalidRouteTableID.NotFound"
    code, _ = fails(
        mallory.replace_route,
        RouteTableId=mine["table"],
        DestinationCidrBlock="0.0.0.0/0",
        GatewayId=victim["igw"],
    )
    assert code == "InvalidGatewayID.NotFound"
    code, _ = fails(
        mallory.replace_route,
        RouteTableId=mine["table"],
        DestinationCidrBlock="0.0.0.0/0",
        NetworkInterfaceId=victim["eni"],
    )
    assert code == "InvalidNetworkInterfaceID.NotFound"
    code, _ = fails(
        mallory.replace_route_table_association,
        AssociationId=victim["association"],
        RouteTableId=mine["table"],
    )
    assert code == "InvalidAssociationID.NotFound"
    code, _ = fails(
        mallory.replace_route_table_association,
        AssociationId=mine["association"],
        RouteTableId=victim["table"],
    )
    assert code == "InvalidRouteTableID.NotFound"
    code, _ = fails(
        mallory.modify_network_interface_attribute,
        NetworkInterfaceId=victim["eni"],
        Description={"Value": "mine now"},
    )
    assert code == "InvalidNetworkInterfaceID.NotFound"
    code, _ = fails(
        mallory.describe_network_interface_attribute,
        NetworkInterfaceId=victim["eni"],
        Attribute="description",
    )
    assert code == "InvalidNetworkInterfaceID.NotFound"
    code, _ = fails(
        mallory.modify_subnet_attribute, SubnetId=victim["subnet"], MapPublicIpOnLaunch={"Value": True}
    )
    assert code == "InvalidSubnetID.NotFound"
    code, _ = fails(mallory.describe_vpc_attribute, VpcId=victim["vpc"], Attribute="enableDnsSupport")
    assert code == "InvalidVpcID.NotFound"
    code, _ = fails(mallory.modify_vpc_attribute, VpcId=victim["vpc"], EnableDnsSupport={"Value": False})
    assert code == "InvalidVpcID.NotFound"
    # My own interface cannot be put in the victim's security group either.
    victim_group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [victim["vpc"]]}])[
        "SecurityGroups"
    ][0]["GroupId"]
    code, _ = fails(
        mallory.modify_network_interface_attribute, NetworkInterfaceId=mine["eni"], Groups=[victim_group]
    )
    assert code == "InvalidGroup.NotFound"
    group_rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [victim_group]}])[
        "SecurityGroupRules"
    ]
    code, _ = fails(
        mallory.modify_security_group_rules,
        GroupId=victim_group,
        SecurityGroupRules=[
            {
                "SecurityGroupRuleId": group_rules[0]["SecurityGroupRuleId"],
                "SecurityGroupRule": {"IpProtocol": "-1", "CidrIpv4": "0.0.0.0/0"},
            }
        ],
    )
    assert code == "InvalidGroup.NotFound"

    # And the victim's resources are as they were.
    acl = ec2.describe_network_acls(NetworkAclIds=[victim["acl"]])["NetworkAcls"][0]
    assert [a["NetworkAclAssociationId"] for a in acl["Associations"]] == [victim["acl_association"]]
    assert len(acl["Entries"]) == 4
    routes = ec2.describe_route_tables(RouteTableIds=[victim["table"]])["RouteTables"][0]["Routes"]
    assert [r.get("GatewayId") for r in routes if r["DestinationCidrBlock"] == "0.0.0.0/0"] == [victim["igw"]]
    assert ec2.describe_vpc_attribute(VpcId=victim["vpc"], Attribute="enableDnsSupport")[
        "EnableDnsSupport"
    ] == {"Value": True}


def test_elastic_ips_cannot_cross_accounts(ec2: Any, mallory: Any) -> None:
    victim = network(ec2, "10.61.0.0/16")
    mine = network(mallory, "10.61.0.0/16")
    victim_eip = ec2.allocate_address(Domain="vpc")
    my_eip = mallory.allocate_address(Domain="vpc")
    # My address on the victim's interface; the victim's address on my interface.
    code, _ = fails(
        mallory.associate_address, AllocationId=my_eip["AllocationId"], NetworkInterfaceId=victim["eni"]
    )
    assert code == "InvalidNetworkInterfaceID.NotFound"
    code, _ = fails(
        mallory.associate_address, AllocationId=victim_eip["AllocationId"], NetworkInterfaceId=mine["eni"]
    )
    assert code == "InvalidAllocationID.NotFound"
    code, _ = fails(
        mallory.associate_address,
        AllocationId=my_eip["AllocationId"],
        NetworkInterfaceId=mine["eni"],
        PrivateIpAddress="10.61.1.99",
    )
    assert code in ("InvalidParameterValue", "InvalidIPAddress.NotFound", "InvalidParameterCombination")
    # The victim's association cannot be undone by me.
    association = ec2.associate_address(
        AllocationId=victim_eip["AllocationId"], NetworkInterfaceId=victim["eni"]
    )["AssociationId"]
    code, _ = fails(mallory.disassociate_address, AssociationId=association)
    assert code == "InvalidAssociationID.NotFound"
    # Nor taken over with AllowReassociation onto my interface.
    code, _ = fails(
        mallory.associate_address,
        AllocationId=victim_eip["AllocationId"],
        NetworkInterfaceId=mine["eni"],
        AllowReassociation=True,
    )
    assert code == "InvalidAllocationID.NotFound"
    [address] = ec2.describe_addresses(AllocationIds=[victim_eip["AllocationId"]])["Addresses"]
    assert (address["AssociationId"], address["NetworkInterfaceId"]) == (association, victim["eni"])
    assert (
        mallory.describe_addresses(Filters=[{"Name": "public-ip", "Values": [victim_eip["PublicIp"]]}])[
            "Addresses"
        ]
        == []
    )
    ec2.disassociate_address(AssociationId=association)
    ec2.release_address(AllocationId=victim_eip["AllocationId"])
    mallory.release_address(AllocationId=my_eip["AllocationId"])


# -- the vpc-run route -------------------------------------------------------------------------------


def test_vpc_run_route_refuses_other_accounts_and_service_interfaces(
    server: LaminaServer, ec2: Any, mallory: Any
) -> None:
    victim = network(ec2, "10.62.0.0/16")
    eip = ec2.allocate_address(Domain="vpc")
    nat = ec2.create_nat_gateway(SubnetId=victim["subnet"], AllocationId=eip["AllocationId"])["NatGateway"]
    nat_eni = nat["NatGatewayAddresses"][0]["NetworkInterfaceId"]
    keys = (ALICE["access_key_id"], ALICE["secret_access_key"])

    # Another account's interface does not exist.
    status, answer = vpc_run(
        server, {"Action": "Attach", "Region": "us-east-1", "NetworkInterfaceId": victim["eni"]}, keys=keys
    )
    assert (status, answer["Error"]["Code"]) == (400, "InvalidNetworkInterfaceID.NotFound")
    status, answer = vpc_run(
        server, {"Action": "Detach", "Region": "us-east-1", "NetworkInterfaceId": victim["eni"]}, keys=keys
    )
    assert (status, answer["Error"]["Code"]) == (400, "InvalidNetworkInterfaceID.NotFound")
    status, answer = vpc_run(
        server, {"Action": "Join", "Region": "us-east-1", "NetworkInterfaceId": victim["eni"]}, keys=keys
    )
    assert (status, answer["Error"]["Code"]) == (400, "InvalidNetworkInterfaceID.NotFound")
    # A NAT gateway's interface (and any requester-managed one) is no customer's to attach.
    status, answer = vpc_run(server, {"Action": "Join", "Region": "us-east-1", "NetworkInterfaceId": nat_eni})
    assert (status, answer["Error"]["Code"]) == (400, "InvalidNetworkInterface.InUse")
    status, answer = vpc_run(
        server, {"Action": "Attach", "Region": "us-east-1", "NetworkInterfaceId": nat_eni}
    )
    assert (status, answer["Error"]["Code"]) == (400, "InvalidNetworkInterface.InUse")
    status, answer = vpc_run(
        server, {"Action": "Detach", "Region": "us-east-1", "NetworkInterfaceId": nat_eni}
    )
    assert (status, answer["Error"]["Code"]) == (400, "InvalidNetworkInterface.InUse")
    # Malformed and path-like ids never reach the store, nor become paths.
    for bad in (
        "../../etc/passwd",
        "eni-../../x",
        "eni-0123456789abcdef0/..",
        "eni-XYZ",
        "",
        None,
        7,
        ["eni-1"],
        "eni-0123456789abcdef0\n",
        "eni-" + "a" * 40,
        "éni-01234567",
    ):
        status, answer = vpc_run(
            server, {"Action": "Attach", "Region": "us-east-1", "NetworkInterfaceId": bad}
        )
        assert (status, answer["Error"]["Code"]) == (400, "InvalidNetworkInterfaceID.Malformed"), bad
    # Malformed documents and regions.
    for document in (
        b"",
        b"[]",
        b"null",
        b"{",
        b"\xff\xfe",
        b'{"Action": "Where"}',
        b'{"Action": "Where", "Region": "../x"}',
        b'{"Action": "Rm", "Region": "us-east-1"}',
        b'{"Action": ["Where"], "Region": "us-east-1"}',
    ):
        status, answer = vpc_run(server, document)
        assert status in (400, 403) and answer["Error"]["Code"], document
    # Too big a body.
    status, _ = vpc_run(server, b'{"Action": "Where", "Region": "us-east-1", "x": "' + b"a" * 10000 + b'"}')
    assert status == 413
    # Unsigned, signed for another service or another Region than the document's, wrong key.
    where = {"Action": "Where", "Region": "us-east-1"}
    status, answer = vpc_run(server, where, keys=None)
    assert status in (401, 403) and answer["Error"]["Code"] and "NetnsDir" not in answer
    status, answer = vpc_run(server, where, service="lambda")
    assert status == 403 and "NetnsDir" not in answer
    status, answer = vpc_run(server, where, region="eu-west-1")
    assert status in (400, 403) and "NetnsDir" not in answer, answer
    status, answer = vpc_run(server, where, keys=("test", "wrong"))
    assert (
        status in (401, 403)
        and answer["Error"]["Code"] in ("AuthFailure", "SignatureDoesNotMatch")
        and "NetnsDir" not in answer
    )
    # Nothing changed.
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[victim["eni"]])["NetworkInterfaces"][0]
    assert eni["Status"] == "available" and "Attachment" not in eni
    ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    healthy(server, ec2)


def test_vpc_run_route_tells_no_host_path_to_a_remote_caller() -> None:
    """``Where`` (and Attach/Detach's answers) name a host path only to a caller on the host."""
    from pathlib import Path

    from lamina.net.uplink import host_holds
    from lamina.services.base import Principal
    from lamina.services.ec2.vpc_run import VpcRunFront
    from lamina.store.ec2 import Ec2Store

    netns = "/srv/lamina/run/netns"
    front = VpcRunFront(
        Ec2Store.__new__(Ec2Store), lambda request: None, Path(netns), lambda: 0.0, local=host_holds
    )
    principal = Principal("000000000000", "test", "arn:aws:iam::000000000000:root")
    body = json.dumps({"Action": "Where", "Region": "us-east-1"}).encode()
    for source in ("127.0.0.1", "127.9.9.9", "::1"):
        assert front.handle(body, lambda region: principal, source) == {"NetnsDir": netns}, source
    for source in ("203.0.113.9", "192.0.2.1", "", "not-an-address", "0.0.0.0"):
        assert front.handle(body, lambda region: principal, source) == {"NetnsDir": None}, source
    # The server's own predicate: lamina's relays (functions reaching the API) are not the host.
    from lamina.server import on_this_host

    assert on_this_host("127.0.0.1") and not on_this_host("127.100.0.7") and not on_this_host("192.0.2.1")


# -- a principal allowed only ec2:Describe* ------------------------------------------------------------


@pytest.fixture(scope="module")
def reader(server: LaminaServer) -> Any:
    iam = client(server, "iam")
    iam.create_user(UserName="attack-reader")
    iam.put_user_policy(
        UserName="attack-reader",
        PolicyName="describe",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}],
            }
        ),
    )
    made = iam.create_access_key(UserName="attack-reader")["AccessKey"]
    return client(server, "ec2", key=made["AccessKeyId"], secret=made["SecretAccessKey"])


def test_a_describe_only_principal_changes_nothing(server: LaminaServer, ec2: Any, reader: Any) -> None:
    net = network(ec2, "10.63.0.0/16")
    eip = ec2.allocate_address(Domain="vpc")
    options = ec2.create_dhcp_options(
        DhcpConfigurations=[{"Key": "domain-name", "Values": ["corp.example"]}]
    )["DhcpOptions"]["DhcpOptionsId"]
    custom_acl = ec2.create_network_acl(VpcId=net["vpc"])["NetworkAcl"]["NetworkAclId"]
    group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])[
        "SecurityGroups"
    ][0]["GroupId"]
    rule = next(
        r
        for r in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
            "SecurityGroupRules"
        ]
        if r["IsEgress"]
    )
    entry = {
        "RuleNumber": 10,
        "Protocol": "-1",
        "RuleAction": "deny",
        "Egress": False,
        "CidrBlock": "0.0.0.0/0",
    }
    calls: list[tuple[str, dict[str, Any]]] = [
        ("create_dhcp_options", {"DhcpConfigurations": [{"Key": "domain-name", "Values": ["x.example"]}]}),
        ("associate_dhcp_options", {"DhcpOptionsId": options, "VpcId": net["vpc"]}),
        ("delete_dhcp_options", {"DhcpOptionsId": options}),
        ("modify_vpc_attribute", {"VpcId": net["vpc"], "EnableDnsSupport": {"Value": False}}),
        ("create_network_acl", {"VpcId": net["vpc"]}),
        ("delete_network_acl", {"NetworkAclId": custom_acl}),
        ("create_network_acl_entry", {"NetworkAclId": net["acl"], **entry}),
        ("replace_network_acl_entry", {"NetworkAclId": net["acl"], **entry, "RuleNumber": 100}),
        ("delete_network_acl_entry", {"NetworkAclId": net["acl"], "RuleNumber": 100, "Egress": False}),
        (
            "replace_network_acl_association",
            {"AssociationId": net["acl_association"], "NetworkAclId": custom_acl},
        ),
        ("create_default_vpc", {}),
        ("create_default_subnet", {"AvailabilityZone": "us-east-1a"}),
        (
            "replace_route",
            {
                "RouteTableId": net["table"],
                "DestinationCidrBlock": "0.0.0.0/0",
                "NetworkInterfaceId": net["eni"],
            },
        ),
        (
            "replace_route_table_association",
            {"AssociationId": net["association"], "RouteTableId": net["table"]},
        ),
        ("modify_subnet_attribute", {"SubnetId": net["subnet"], "MapPublicIpOnLaunch": {"Value": True}}),
        (
            "modify_network_interface_attribute",
            {"NetworkInterfaceId": net["eni"], "SourceDestCheck": {"Value": False}},
        ),
        (
            "modify_security_group_rules",
            {
                "GroupId": group,
                "SecurityGroupRules": [
                    {
                        "SecurityGroupRuleId": rule["SecurityGroupRuleId"],
                        "SecurityGroupRule": {
                            "IpProtocol": "tcp",
                            "FromPort": 1,
                            "ToPort": 2,
                            "CidrIpv4": "0.0.0.0/0",
                        },
                    }
                ],
            },
        ),
        (
            "update_security_group_rule_descriptions_egress",
            {
                "GroupId": group,
                "SecurityGroupRuleDescriptions": [
                    {"SecurityGroupRuleId": rule["SecurityGroupRuleId"], "Description": "x"}
                ],
            },
        ),
        ("associate_address", {"AllocationId": eip["AllocationId"], "NetworkInterfaceId": net["eni"]}),
        ("disassociate_address", {"AssociationId": "eipassoc-0123456789abcdef0"}),
    ]
    before = {
        "acls": ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])[
            "NetworkAcls"
        ],
        "vpcs": ec2.describe_vpcs()["Vpcs"],
        "tables": ec2.describe_route_tables(RouteTableIds=[net["table"]])["RouteTables"],
        "enis": ec2.describe_network_interfaces(NetworkInterfaceIds=[net["eni"]])["NetworkInterfaces"],
        "options": ec2.describe_dhcp_options()["DhcpOptions"],
        "rules": ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
            "SecurityGroupRules"
        ],
        "addresses": ec2.describe_addresses()["Addresses"],
        "subnets": ec2.describe_subnets()["Subnets"],
    }
    for name, kwargs in calls:
        operation = "".join(part.title() for part in name.split("_"))
        has_dry_run = "DryRun" in reader.meta.service_model.operation_model(operation).input_shape.members
        for dry_run in (False, True) if has_dry_run else (None,):
            extra = {} if dry_run is None else {"DryRun": dry_run}
            code, message = fails(getattr(reader, name), **extra, **kwargs)
            assert code == "UnauthorizedOperation", (name, dry_run, code, message)
            assert f"is not authorized to perform: ec2:{operation}" in message, (name, message)
        # The owner's DryRun of the same call would succeed.
        if has_dry_run and name not in (
            "create_default_vpc",
            "create_default_subnet",
            "disassociate_address",
        ):
            assert fails(getattr(ec2, name), DryRun=True, **kwargs) == DRY_OK, name
    after = {
        "acls": ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])[
            "NetworkAcls"
        ],
        "vpcs": ec2.describe_vpcs()["Vpcs"],
        "tables": ec2.describe_route_tables(RouteTableIds=[net["table"]])["RouteTables"],
        "enis": ec2.describe_network_interfaces(NetworkInterfaceIds=[net["eni"]])["NetworkInterfaces"],
        "options": ec2.describe_dhcp_options()["DhcpOptions"],
        "rules": ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
            "SecurityGroupRules"
        ],
        "addresses": ec2.describe_addresses()["Addresses"],
        "subnets": ec2.describe_subnets()["Subnets"],
    }
    assert after == before
    # What it may do, it may dry-run.
    for name, kwargs in (
        ("describe_network_acls", {}),
        ("describe_dhcp_options", {}),
        ("describe_tags", {}),
        ("describe_vpc_attribute", {"VpcId": net["vpc"], "Attribute": "enableDnsHostnames"}),
        ("describe_network_interface_attribute", {"NetworkInterfaceId": net["eni"], "Attribute": "groupSet"}),
    ):
        assert fails(getattr(reader, name), DryRun=True, **kwargs) == DRY_OK, name
    ec2.release_address(AllocationId=eip["AllocationId"])


# -- malformed input -----------------------------------------------------------------------------------

HUGE = "x" * 70000
BAD_IDS = ["", "acl-", "acl-zz", "../../etc/passwd", "é" * 20, "acl-" + "0" * 500, "%00", "default", "-1"]
BAD_NUMBERS = ["-1", "0", "32767", "32768", "65536", "99999999999999999999", "1e3", "abc", "", " 10", "0x10"]
BAD_CIDRS = [
    "",
    "0.0.0.0/33",
    "10.0.0.0/-1",
    "10.0.0.256/24",
    "::/0",
    "10.0.0.0/8/8",
    "١٠.0.0.0/8",
    "10.0.0.0 /8",
    "x",
]


def hostile_requests(net: dict[str, str]) -> list[dict[str, str]]:
    acl, vpc, eni = net["acl"], net["vpc"], net["eni"]
    out: list[dict[str, str]] = []
    entry = {
        "NetworkAclId": acl,
        "RuleNumber": "50",
        "Protocol": "6",
        "RuleAction": "deny",
        "Egress": "false",
        "CidrBlock": "0.0.0.0/0",
        "PortRange.From": "1",
        "PortRange.To": "2",
    }
    for action in ("CreateNetworkAclEntry", "ReplaceNetworkAclEntry"):
        for number in BAD_NUMBERS:
            out.append({"Action": action, **entry, "RuleNumber": number})
            out.append({"Action": action, **entry, "PortRange.From": number, "PortRange.To": number})
            out.append({"Action": action, **entry, "Protocol": "1", "Icmp.Type": number, "Icmp.Code": number})
            out.append({"Action": action, **entry, "Protocol": number})
        for cidr in BAD_CIDRS:
            out.append({"Action": action, **entry, "CidrBlock": cidr})
        out += [
            {"Action": action, **entry, "RuleAction": "maybe"},
            {"Action": action, **entry, "Egress": "perhaps"},
            {"Action": action, **entry, "Protocol": "tcp", "PortRange.From": "10", "PortRange.To": "1"},
            {"Action": action, **entry, "Protocol": "-1", "Ipv6CidrBlock": "::/0"},
            {"Action": action, **entry, "Protocol": "1"},
            {"Action": action, **{k: v for k, v in entry.items() if k != "CidrBlock"}},
            {"Action": action, **{k: v for k, v in entry.items() if k != "RuleNumber"}},
            {"Action": action, **entry, "Protocol": "icmp", "Icmp.Type": "-1", "Icmp.Code": "256"},
        ]
    for bad in BAD_IDS:
        out += [
            {"Action": "DeleteNetworkAcl", "NetworkAclId": bad},
            {"Action": "DeleteNetworkAclEntry", "NetworkAclId": bad, "RuleNumber": "1", "Egress": "true"},
            {"Action": "ReplaceNetworkAclAssociation", "AssociationId": bad, "NetworkAclId": acl},
            {
                "Action": "ReplaceNetworkAclAssociation",
                "AssociationId": net["acl_association"],
                "NetworkAclId": bad,
            },
            {"Action": "DescribeNetworkAcls", "NetworkAclId.1": bad},
            {"Action": "AssociateDhcpOptions", "DhcpOptionsId": bad, "VpcId": vpc},
            {"Action": "AssociateDhcpOptions", "DhcpOptionsId": "default", "VpcId": bad},
            {"Action": "DeleteDhcpOptions", "DhcpOptionsId": bad},
            {"Action": "DescribeDhcpOptions", "DhcpOptionsId.1": bad},
            {"Action": "DescribeVpcAttribute", "VpcId": bad, "Attribute": "enableDnsSupport"},
            {"Action": "ModifyVpcAttribute", "VpcId": bad, "EnableDnsSupport.Value": "true"},
            {"Action": "AssociateAddress", "AllocationId": bad, "NetworkInterfaceId": eni},
            {"Action": "AssociateAddress", "PublicIp": bad, "NetworkInterfaceId": eni},
            {"Action": "DisassociateAddress", "AssociationId": bad},
            {"Action": "DisassociateAddress", "PublicIp": bad},
            {
                "Action": "ModifyNetworkInterfaceAttribute",
                "NetworkInterfaceId": bad,
                "Description.Value": "x",
            },
            {
                "Action": "ModifyNetworkInterfaceAttribute",
                "NetworkInterfaceId": eni,
                "SecurityGroupId.1": bad,
            },
            {
                "Action": "DescribeNetworkInterfaceAttribute",
                "NetworkInterfaceId": bad,
                "Attribute": "description",
            },
            {
                "Action": "ReplaceRoute",
                "RouteTableId": bad,
                "DestinationCidrBlock": "0.0.0.0/0",
                "GatewayId": net["igw"],
            },
            {
                "Action": "ReplaceRoute",
                "RouteTableId": net["table"],
                "DestinationCidrBlock": "0.0.0.0/0",
                "GatewayId": bad,
            },
            {"Action": "ReplaceRouteTableAssociation", "AssociationId": bad, "RouteTableId": net["table"]},
            {"Action": "ModifySubnetAttribute", "SubnetId": bad, "MapPublicIpOnLaunch.Value": "true"},
            {
                "Action": "ModifySecurityGroupRules",
                "GroupId": bad,
                "SecurityGroupRule.1.SecurityGroupRuleId": bad,
            },
            {
                "Action": "UpdateSecurityGroupRuleDescriptionsIngress",
                "GroupId": bad,
                "SecurityGroupRuleDescription.1.SecurityGroupRuleId": bad,
                "SecurityGroupRuleDescription.1.Description": "x",
            },
            {"Action": "DescribeTags", "Filter.1.Name": "resource-id", "Filter.1.Value.1": bad},
            {"Action": "CreateDefaultSubnet", "AvailabilityZone": bad},
            {"Action": "DescribeRegions", "RegionName.1": bad},
            {"Action": "DescribeAccountAttributes", "AttributeName.1": bad},
        ]
    for cidr in BAD_CIDRS:
        out += [
            {
                "Action": "ReplaceRoute",
                "RouteTableId": net["table"],
                "DestinationCidrBlock": cidr,
                "GatewayId": net["igw"],
            },
            {
                "Action": "CreateDhcpOptions",
                "DhcpConfiguration.1.Key": "domain-name-servers",
                "DhcpConfiguration.1.Value.1": cidr,
            },
        ]
    out += [
        {
            "Action": "CreateDhcpOptions",
            "DhcpConfiguration.1.Key": "domain-name",
            "DhcpConfiguration.1.Value.1": HUGE,
        },
        {
            "Action": "CreateDhcpOptions",
            "DhcpConfiguration.1.Key": "domain-name",
            "DhcpConfiguration.1.Value.1": "a\nnameserver 6.6.6.6",
        },
        {
            "Action": "CreateDhcpOptions",
            "DhcpConfiguration.1.Key": "domain-name",
            "DhcpConfiguration.1.Value.1": "ünïcode.example",
        },
        {
            "Action": "CreateDhcpOptions",
            "DhcpConfiguration.1.Key": "domain-name-servers",
            **{f"DhcpConfiguration.1.Value.{i}": f"10.0.0.{i}" for i in range(1, 9)},
        },
        {
            "Action": "CreateDhcpOptions",
            "DhcpConfiguration.1.Key": "x" * 300,
            "DhcpConfiguration.1.Value.1": "y",
        },
        {"Action": "CreateDhcpOptions"},
        {"Action": "ModifyVpcAttribute", "VpcId": vpc, "EnableDnsSupport.Value": "maybe"},
        {"Action": "ModifyVpcAttribute", "VpcId": vpc},
        {
            "Action": "ModifyVpcAttribute",
            "VpcId": vpc,
            "EnableDnsSupport.Value": "true",
            "EnableDnsHostnames.Value": "true",
        },
        {"Action": "DescribeVpcAttribute", "VpcId": vpc, "Attribute": "../../etc"},
        {"Action": "DescribeNetworkInterfaceAttribute", "NetworkInterfaceId": eni, "Attribute": "x"},
        {"Action": "ModifyNetworkInterfaceAttribute", "NetworkInterfaceId": eni},
        {"Action": "ModifyNetworkInterfaceAttribute", "NetworkInterfaceId": eni, "Description.Value": HUGE},
        {
            "Action": "ModifyNetworkInterfaceAttribute",
            "NetworkInterfaceId": eni,
            **{f"SecurityGroupId.{i}": f"sg-{i:017x}" for i in range(1, 40)},
        },
        {
            "Action": "ModifyNetworkInterfaceAttribute",
            "NetworkInterfaceId": eni,
            "SourceDestCheck.Value": "yes please",
        },
        {
            "Action": "ModifyNetworkInterfaceAttribute",
            "NetworkInterfaceId": eni,
            "Attachment.AttachmentId": "eni-attach-0",
            "Attachment.DeleteOnTermination": "true",
        },
        {"Action": "AssociateAddress", "NetworkInterfaceId": eni},
        {
            "Action": "AssociateAddress",
            "AllocationId": "eipalloc-0123456789abcdef0",
            "NetworkInterfaceId": eni,
            "PrivateIpAddress": "999.1.1.1",
        },
        {
            "Action": "AssociateAddress",
            "AllocationId": "eipalloc-0123456789abcdef0",
            "InstanceId": "i-0123456789abcdef0",
        },
        {"Action": "DisassociateAddress"},
        {"Action": "ReplaceRoute", "RouteTableId": net["table"], "DestinationCidrBlock": "0.0.0.0/0"},
        {
            "Action": "ReplaceRoute",
            "RouteTableId": net["table"],
            "DestinationCidrBlock": "0.0.0.0/0",
            "GatewayId": net["igw"],
            "NetworkInterfaceId": eni,
        },
        {
            "Action": "ReplaceRoute",
            "RouteTableId": net["table"],
            "DestinationCidrBlock": "10.63.0.0/16",
            "GatewayId": "local",
        },
        {
            "Action": "ReplaceRoute",
            "RouteTableId": net["table"],
            "DestinationIpv6CidrBlock": "::/0",
            "GatewayId": net["igw"],
        },
        {
            "Action": "ReplaceRoute",
            "RouteTableId": net["table"],
            "DestinationPrefixListId": "pl-63a5400a",
            "GatewayId": net["igw"],
        },
        {"Action": "ModifySubnetAttribute", "SubnetId": net["subnet"]},
        {
            "Action": "ModifySubnetAttribute",
            "SubnetId": net["subnet"],
            "MapPublicIpOnLaunch.Value": "true",
            "AssignIpv6AddressOnCreation.Value": "true",
        },
        {
            "Action": "ModifySubnetAttribute",
            "SubnetId": net["subnet"],
            "PrivateDnsHostnameTypeOnLaunch": "bogus",
        },
        {"Action": "ModifySecurityGroupRules", "GroupId": "sg-0123456789abcdef0"},
        {
            "Action": "DescribeTags",
            **{f"Filter.{i}.Name": "key" for i in range(1, 300)},
            **{f"Filter.{i}.Value.1": "x" for i in range(1, 300)},
        },
        {
            "Action": "DescribeTags",
            "Filter.1.Name": "key",
            **{f"Filter.1.Value.{i}": f"v{i}" for i in range(1, 2000)},
        },
        {"Action": "DescribeTags", "Filter.1.Name": "resource-type", "Filter.1.Value.1": "*"},
        {"Action": "DescribeTags", "Filter.1.Name": "bogus", "Filter.1.Value.1": "x"},
        {"Action": "DescribeTags", "MaxResults": "0"},
        {"Action": "DescribeTags", "MaxResults": "-5"},
        {"Action": "DescribeTags", "MaxResults": "99999999999999999999"},
        {"Action": "DescribeTags", "NextToken": "../../../etc/passwd"},
        {"Action": "DescribeTags", "NextToken": "é" * 100},
        {"Action": "DescribeTags", "NextToken": HUGE},
        {"Action": "DescribeNetworkAcls", "MaxResults": "3"},
        {"Action": "DescribeNetworkAcls", "MaxResults": "5", "NextToken": "garbage"},
        {"Action": "DescribeNetworkAcls", "Filter.1.Name": "entry.rule-number", "Filter.1.Value.1": "abc"},
        {"Action": "DescribeNetworkAcls", "Filter.1.Name": "entry.cidr", "Filter.1.Value.1": "[a-"},
        {"Action": "DescribeNetworkAcls", "Filter.1.Name": "tag:*", "Filter.1.Value.1": "*?*[*"},
        {"Action": "DescribeDhcpOptions", "MaxResults": "4", "NextToken": "\x00"},
        {
            "Action": "CreateNetworkAcl",
            "VpcId": vpc,
            "TagSpecification.1.ResourceType": "vpc",
            "TagSpecification.1.Tag.1.Key": "k",
        },
        {
            "Action": "CreateNetworkAcl",
            "VpcId": vpc,
            "TagSpecification.1.ResourceType": "network-acl",
            "TagSpecification.1.Tag.1.Key": "aws:x",
        },
        {"Action": "CreateDefaultSubnet"},
        {"Action": "CreateDefaultSubnet", "AvailabilityZoneId": "use1-az999"},
        {"Action": "DescribeRegions", "Filter.1.Name": "region-name", "Filter.1.Value.1": "*" * 5000},
        {
            "Action": "DescribeAccountAttributes",
            **{f"AttributeName.{i}": "default-vpc" for i in range(1, 500)},
        },
    ]
    return out


def test_malformed_input_is_an_ec2_error_never_a_500(server: LaminaServer, ec2: Any) -> None:
    net = network(ec2, "10.64.0.0/16")
    before = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])["NetworkAcls"]
    broken = []
    for params in hostile_requests(net):
        status, body = raw_ec2(server, params)
        if status >= 500 or "<Code>" not in body and status != 200 or "Traceback" in body:
            broken.append((params.get("Action"), {k: v[:40] for k, v in params.items()}, status, body[:300]))
    assert broken == []
    # What was refused changed nothing: the entries in the ACL are sound ones.
    after = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])["NetworkAcls"]
    added = [e for a in after for e in a["Entries"] if e not in [x for b in before for x in b["Entries"]]]
    for entry in added:
        assert 1 <= entry["RuleNumber"] <= 32766 and entry["CidrBlock"] == "0.0.0.0/0"
        assert entry["Protocol"] == "-1" or 0 <= int(entry["Protocol"]) <= 255
        if "PortRange" in entry:
            assert 0 <= entry["PortRange"]["From"] <= entry["PortRange"]["To"] <= 65535
        if "IcmpTypeCode" in entry:
            assert -1 <= entry["IcmpTypeCode"]["Type"] <= 255 and -1 <= entry["IcmpTypeCode"]["Code"] <= 255
    healthy(server, ec2)


# -- concurrency ---------------------------------------------------------------------------------------


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` at once; each one's result or exception."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the result under test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.parametrize("region", ["xx-fake-1", "zz-nowhere-9", "us-east-99"])
def test_an_invented_region_is_no_fresh_set_of_quotas(server: LaminaServer, region: str) -> None:
    """Each region has its own default VPC and Elastic IP quota, taken from the one shared pool: a
    region name outside AWS's partition answers AuthFailure, as EC2 does in a region an account
    cannot use, and gets nothing (no default VPC, no address)."""
    invented = client(server, "ec2", region=region)
    for call, kwargs in [
        (invented.allocate_address, {"Domain": "vpc"}),
        (invented.describe_vpcs, {}),
        (invented.create_vpc, {"CidrBlock": "10.0.0.0/16"}),
        (invented.describe_account_attributes, {}),
    ]:
        with pytest.raises(ClientError) as caught:
            call(**kwargs)
        error = caught.value.response["Error"]
        assert (error["Code"], error["Message"]) == (
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        )
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    # A real region still works, and the invented one made nothing.
    real = client(server, "ec2", region="eu-west-3")
    assert [v["CidrBlock"] for v in real.describe_vpcs()["Vpcs"] if v["IsDefault"]] == ["172.31.0.0/16"]
    regions = [r["RegionName"] for r in real.describe_regions(AllRegions=True)["Regions"]]
    assert region not in regions and "eu-west-3" in regions


def test_concurrent_first_use_of_a_region_makes_one_default_vpc(server: LaminaServer) -> None:
    clients = [client(server, "ec2", region="ap-south-2") for _ in range(8)]
    results = race([c.describe_vpcs for c in clients] + [c.create_default_vpc for c in clients[:4]])
    assert not any(isinstance(r, Exception) and "DefaultVpcAlreadyExists" not in str(r) for r in results), (
        results
    )
    vpcs = clients[0].describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1
    assert (
        len(clients[0].describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"])
        == 3
    )


def test_concurrent_associate_and_disassociate_keep_one_association(server: LaminaServer, ec2: Any) -> None:
    net = network(ec2, "10.65.0.0/16")
    other = ec2.create_network_interface(SubnetId=net["subnet"])["NetworkInterface"]["NetworkInterfaceId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    clients = [client(server, "ec2") for _ in range(6)]
    for _ in range(3):
        results = race(
            [
                lambda c=c, eni=eni: c.associate_address(
                    AllocationId=eip, NetworkInterfaceId=eni, AllowReassociation=True
                )
                for c, eni in zip(clients, [net["eni"], other] * 3, strict=True)
            ]
        )
        assert all(not isinstance(r, Exception) or "Resource.AlreadyAssociated" in str(r) for r in results), (
            results
        )
        [address] = ec2.describe_addresses(AllocationIds=[eip])["Addresses"]
        holders = [
            i["NetworkInterfaceId"]
            for i in ec2.describe_network_interfaces(NetworkInterfaceIds=[net["eni"], other])[
                "NetworkInterfaces"
            ]
            if i.get("Association", {}).get("PublicIp") == address["PublicIp"]
        ]
        assert holders == [address["NetworkInterfaceId"]]
        association = address["AssociationId"]
        results = race([lambda c=c, a=association: c.disassociate_address(AssociationId=a) for c in clients])
        assert sum(not isinstance(r, Exception) for r in results) >= 1
        assert all(
            not isinstance(r, Exception) or "InvalidAssociationID.NotFound" in str(r) for r in results
        ), results
        [address] = ec2.describe_addresses(AllocationIds=[eip])["Addresses"]
        assert "AssociationId" not in address and "NetworkInterfaceId" not in address
        for i in ec2.describe_network_interfaces(NetworkInterfaceIds=[net["eni"], other])[
            "NetworkInterfaces"
        ]:
            assert "Association" not in i
    ec2.release_address(AllocationId=eip)
    healthy(server, ec2)


def test_dhcp_domain_names_are_domain_names(ec2: Any) -> None:
    """``domain-name`` becomes the ``search`` line of every environment's /etc/resolv.conf in the
    VPC: what is not a list of domain names (line breaks included) is refused, and creates
    nothing."""
    before = ec2.describe_dhcp_options()["DhcpOptions"]
    for value in (
        "corp.example\nnameserver 203.0.113.66",
        "corp.example\roptions ndots:15",
        "corp.example\tother.example",
        "corp.example  other.example",
        " corp.example",
        "",
        "a" * 64 + ".example",
        ("a" * 60 + ".") * 5 + "example",
        "ünïcode.example",
        "bad..example",
        "-bad.example",
        "corp.example;rm",
    ):
        code, message = fails(
            ec2.create_dhcp_options, DhcpConfigurations=[{"Key": "domain-name", "Values": [value]}]
        )
        assert code == "InvalidParameterValue" and "domain-name" in message, (value, code, message)
    assert ec2.describe_dhcp_options()["DhcpOptions"] == before
    # What EC2 takes: names, several separated by spaces, a trailing dot, underscores.
    for value in ("corp.example", "corp.example other.example", "corp.example.", "_srv.corp.example", "x"):
        made = ec2.create_dhcp_options(DhcpConfigurations=[{"Key": "domain-name", "Values": [value]}])
        ec2.delete_dhcp_options(DhcpOptionsId=made["DhcpOptions"]["DhcpOptionsId"])


def test_concurrent_acl_association_changes_leave_one_association_per_subnet(
    server: LaminaServer, ec2: Any
) -> None:
    net = network(ec2, "10.66.0.0/16")
    clients = [client(server, "ec2") for _ in range(6)]
    for _ in range(3):
        acls = [ec2.create_network_acl(VpcId=net["vpc"])["NetworkAcl"]["NetworkAclId"] for _ in range(3)]
        [current] = [
            a["NetworkAclAssociationId"]
            for acl in ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])[
                "NetworkAcls"
            ]
            for a in acl["Associations"]
            if a["SubnetId"] == net["subnet"]
        ]
        # Three move the subnet to a new ACL with the same association id, three delete those ACLs.
        calls: list[Callable[[], Any]] = [
            lambda c=c, acl=acl, a=current: c.replace_network_acl_association(
                AssociationId=a, NetworkAclId=acl
            )
            for c, acl in zip(clients[:3], acls, strict=True)
        ] + [
            lambda c=c, acl=acl: c.delete_network_acl(NetworkAclId=acl)
            for c, acl in zip(clients[3:], acls, strict=True)
        ]
        results = race(calls)
        replaced = [r for r in results[:3] if not isinstance(r, Exception)]
        assert len(replaced) <= 1, results
        for r in results:
            if isinstance(r, Exception):
                assert r.response["Error"]["Code"] in (  # type: ignore[attr-defined]
                    "InvalidAssociationID.NotFound",
                    "InvalidNetworkAclID.NotFound",
                    "DependencyViolation",
                ), r
        listed = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])[
            "NetworkAcls"
        ]
        holders = [
            acl["NetworkAclId"]
            for acl in listed
            for a in acl["Associations"]
            if a["SubnetId"] == net["subnet"]
        ]
        assert len(holders) == 1, listed  # never none, never two, never a deleted ACL
        for acl in listed:
            if acl["NetworkAclId"] in acls and not acl["Associations"]:
                ec2.delete_network_acl(NetworkAclId=acl["NetworkAclId"])
    healthy(server, ec2)


def test_another_accounts_elastic_ip_by_its_public_address(ec2: Any, mallory: Any) -> None:
    victim = network(ec2, "10.67.0.0/16")
    mine = network(mallory, "10.67.0.0/16")
    eip = ec2.allocate_address(Domain="vpc")
    association = ec2.associate_address(AllocationId=eip["AllocationId"], NetworkInterfaceId=victim["eni"])[
        "AssociationId"
    ]
    code, _ = fails(mallory.associate_address, PublicIp=eip["PublicIp"], NetworkInterfaceId=mine["eni"])
    assert code in (
        "InvalidAddress.NotFound",
        "AuthFailure",
        "InvalidParameterValue",
        "InvalidParameterCombination",
    )
    code, _ = fails(
        mallory.associate_address,
        PublicIp=eip["PublicIp"],
        NetworkInterfaceId=mine["eni"],
        AllowReassociation=True,
    )
    assert code in (
        "InvalidAddress.NotFound",
        "AuthFailure",
        "InvalidParameterValue",
        "InvalidParameterCombination",
    )
    code, _ = fails(mallory.disassociate_address, PublicIp=eip["PublicIp"])
    assert code in (
        "InvalidAddress.NotFound",
        "AuthFailure",
        "InvalidParameterValue",
        "InvalidParameterCombination",
    )
    code, _ = fails(mallory.release_address, PublicIp=eip["PublicIp"])
    assert code in (
        "InvalidAddress.NotFound",
        "AuthFailure",
        "InvalidParameterValue",
        "InvalidParameterCombination",
    )
    [address] = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"]
    assert (address["AssociationId"], address["NetworkInterfaceId"]) == (association, victim["eni"])
    ec2.disassociate_address(AssociationId=association)
    ec2.release_address(AllocationId=eip["AllocationId"])


def test_an_interface_cannot_join_another_vpcs_group_or_route_to_another_vpcs_interface(ec2: Any) -> None:
    """Resources of one VPC are not usable in another of the same account: a security group of
    another VPC on an interface, another VPC's interface or gateway as a route's target."""
    one = network(ec2, "10.68.0.0/16")
    two = network(ec2, "10.69.0.0/16")
    their_group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [two["vpc"]]}])[
        "SecurityGroups"
    ][0]["GroupId"]
    code, _ = fails(
        ec2.modify_network_interface_attribute, NetworkInterfaceId=one["eni"], Groups=[their_group]
    )
    assert code in ("InvalidParameter", "InvalidParameterValue", "InvalidGroup.NotFound")
    code, _ = fails(
        ec2.replace_route,
        RouteTableId=one["table"],
        DestinationCidrBlock="0.0.0.0/0",
        NetworkInterfaceId=two["eni"],
    )
    assert code in (
        "InvalidParameterValue",
        "InvalidNetworkInterfaceID.NotFound",
        "InvalidParameterCombination",
    )
    code, _ = fails(
        ec2.replace_route, RouteTableId=one["table"], DestinationCidrBlock="0.0.0.0/0", GatewayId=two["igw"]
    )
    assert code in ("InvalidParameterValue", "InvalidGatewayID.NotFound", "Gateway.NotAttached")
    code, _ = fails(
        ec2.replace_route_table_association, AssociationId=one["association"], RouteTableId=two["table"]
    )
    assert code in ("InvalidParameterValue", "InvalidRouteTableID.NotFound", "InvalidParameterCombination")
    code, _ = fails(
        ec2.replace_network_acl_association, AssociationId=one["acl_association"], NetworkAclId=two["acl"]
    )
    assert code in ("InvalidParameterValue", "InvalidNetworkAclID.NotFound", "InvalidParameterCombination")
    options_free = ec2.describe_network_interfaces(NetworkInterfaceIds=[one["eni"]])["NetworkInterfaces"][0]
    assert their_group not in [g["GroupId"] for g in options_free["Groups"]]
    acl = ec2.describe_network_acls(NetworkAclIds=[one["acl"]])["NetworkAcls"][0]
    assert [a["SubnetId"] for a in acl["Associations"]] == [one["subnet"]]
    routes = ec2.describe_route_tables(RouteTableIds=[one["table"]])["RouteTables"][0]
    assert [r.get("GatewayId") for r in routes["Routes"] if r["DestinationCidrBlock"] == "0.0.0.0/0"] == [
        one["igw"]
    ]
    assert [a.get("SubnetId") for a in routes["Associations"]] == [one["subnet"]]


def test_rules_cannot_reference_another_accounts_group(ec2: Any, mallory: Any) -> None:
    victim = network(ec2, "10.70.0.0/16")
    mine = network(mallory, "10.70.0.0/16")
    victim_group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [victim["vpc"]]}])[
        "SecurityGroups"
    ][0]["GroupId"]
    my_group = mallory.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [mine["vpc"]]}])[
        "SecurityGroups"
    ][0]["GroupId"]
    rules = mallory.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [my_group]}])[
        "SecurityGroupRules"
    ]
    before = sorted(rules, key=lambda r: r["SecurityGroupRuleId"])
    for rule in rules:
        code, _ = fails(
            mallory.modify_security_group_rules,
            GroupId=my_group,
            SecurityGroupRules=[
                {
                    "SecurityGroupRuleId": rule["SecurityGroupRuleId"],
                    "SecurityGroupRule": {"IpProtocol": "-1", "ReferencedGroupId": victim_group},
                }
            ],
        )
        assert code in ("InvalidGroup.NotFound", "InvalidParameterValue"), code
    after = mallory.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [my_group]}])[
        "SecurityGroupRules"
    ]
    assert sorted(after, key=lambda r: r["SecurityGroupRuleId"]) == before


def test_the_default_acl_and_its_last_rules_stay(ec2: Any) -> None:
    net = network(ec2, "10.71.0.0/16")
    before = ec2.describe_network_acls(NetworkAclIds=[net["acl"]])["NetworkAcls"][0]
    for egress in (True, False):
        code, _ = fails(
            ec2.delete_network_acl_entry, NetworkAclId=net["acl"], RuleNumber=32767, Egress=egress
        )
        assert code in ("InvalidParameterValue", "InvalidNetworkAclEntry.NotFound", "InvalidParameter"), code
        code, _ = fails(
            ec2.replace_network_acl_entry,
            NetworkAclId=net["acl"],
            RuleNumber=32767,
            Egress=egress,
            Protocol="-1",
            RuleAction="allow",
            CidrBlock="0.0.0.0/0",
        )
        assert code in ("InvalidParameterValue", "InvalidNetworkAclEntry.NotFound", "InvalidParameter"), code
    code, _ = fails(ec2.delete_network_acl, NetworkAclId=net["acl"])
    assert code in (
        "InvalidParameterValue",
        "OperationNotPermitted",
        "DependencyViolation",
        "InvalidParameter",
    ), code
    after = ec2.describe_network_acls(NetworkAclIds=[net["acl"]])["NetworkAcls"][0]
    assert after == before


def test_one_account_cannot_take_the_shared_elastic_ip_pool(
    server: LaminaServer, ec2: Any, mallory: Any
) -> None:
    """The public pool is every account's: an account holds at most 5 Elastic IPs in a region
    (EC2's quota, as DescribeAccountAttributes says), so the others can still allocate."""
    region = client(
        server, "ec2", key=ALICE["access_key_id"], secret=ALICE["secret_access_key"], region="ca-west-1"
    )
    held = [region.allocate_address(Domain="vpc")["AllocationId"] for _ in range(5)]
    code, message = fails(region.allocate_address, Domain="vpc")
    assert (code, message) == ("AddressLimitExceeded", "The maximum number of addresses has been reached.")
    attributes = region.describe_account_attributes()["AccountAttributes"]
    limit = next(a for a in attributes if a["AttributeName"] == "vpc-max-elastic-ips")
    assert limit["AttributeValues"] == [{"AttributeValue": "5"}]
    # Another account, same region: its own five.
    other = client(server, "ec2", region="ca-west-1")
    mine = other.allocate_address(Domain="vpc")["AllocationId"]
    other.release_address(AllocationId=mine)
    # A released address makes room again.
    region.release_address(AllocationId=held.pop())
    held.append(region.allocate_address(Domain="vpc")["AllocationId"])
    for allocation in held:
        region.release_address(AllocationId=allocation)
