"""ec2 protocol: routing, parsing and serialising from botocore's EC2 model.

As for the query protocol, the key checks are round trips through botocore: its
``EC2Serializer`` output must parse back to the same parameters, and its ``EC2QueryParser``
must read our XML back to the same output -- for every EC2 operation with generated values,
and for the VPC operations lamina implements with realistic ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import botocore.session
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from protocol_samples import sampler

from lamina.api.http import Request
from lamina.api.protocols import Ec2Protocol, protocol_for
from lamina.api.validation import validate
from lamina.errors import (
    DRY_RUN_MESSAGE,
    AccessDeniedException,
    AwsError,
    ServiceException,
    UnrecognizedClientException,
    dry_run_error,
    is_dry_run,
)

SESSION = botocore.session.get_session()
MODEL = SESSION.get_service_model("ec2")
EC2 = protocol_for(MODEL)
WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
sample = sampler(WHEN)
REQUEST_ID = "59dbff89-35bd-4eac-99ed-be587EXAMPLE"
VERSION = "Version=2016-11-15"


# -- helpers -------------------------------------------------------------------------------------


def pruned(value: Any) -> Any:
    """``value`` without empty structures and lists, which EC2's wire format cannot carry."""
    if isinstance(value, dict):
        kept = {k: pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v != {} and v != []}
    if isinstance(value, list):
        return [v for v in map(pruned, value) if v != {} and v != []]
    return value


def to_request(operation: str, params: dict[str, Any]) -> Request:
    """What botocore sends for ``params``: its serializer, then its HTTP request preparation."""
    wire = create_serializer("ec2").serialize_to_request(params, MODEL.operation_model(operation))
    prepared = AWSRequest(
        method=wire["method"], url="http://127.0.0.1:4566/", data=wire["body"], headers=wire["headers"]
    ).prepare()
    body = prepared.body or b""
    return Request(
        method=prepared.method,
        raw_path="/",
        query_string="",
        headers={k.lower(): v for k, v in prepared.headers.items()},
        body=body.encode() if isinstance(body, str) else body,
    )


def form(body: str, method: str = "POST", query: str = "") -> Request:
    return Request(
        method=method,
        raw_path="/",
        query_string=query,
        headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
        body=body.encode(),
    )


def parse_form(body: str) -> dict[str, Any]:
    parsed: dict[str, Any] = EC2.parse(EC2.match(form(body)), form(body))
    return parsed


def parse_back(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    request = to_request(operation, params)
    match = EC2.match(request)
    assert match.operation.name == operation
    parsed: dict[str, Any] = EC2.parse(match, request)
    return parsed


def botocore_reads(operation: str, output: dict[str, Any]) -> dict[str, Any]:
    response = EC2.serialize(EC2.match(form(f"Action={operation}&{VERSION}")), output, REQUEST_ID)
    assert response.status == 200
    parsed: dict[str, Any] = create_parser("ec2").parse(
        {"body": response.body, "headers": dict(response.headers), "status_code": 200},
        MODEL.operation_model(operation).output_shape,
    )
    assert parsed.pop("ResponseMetadata")["RequestId"] == REQUEST_ID
    return parsed


def botocore_error(error: AwsError) -> tuple[int, dict[str, Any]]:
    response = EC2.serialize_error(error, REQUEST_ID)
    parsed = create_parser("ec2").parse(
        {"body": response.body, "headers": dict(response.headers), "status_code": response.status}, None
    )
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID
    return response.status, parsed["Error"]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def client_for(handler: Callable[[str, dict[str, Any]], dict[str, Any]]) -> Any:
    """A real botocore EC2 client answered in-process by the protocol and ``handler``."""
    client = SESSION.create_client(
        "ec2",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:4566",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )

    def before_send(request: Any, **_: Any) -> AWSResponse:
        url = urlsplit(request.url)
        body = request.body or b""
        incoming = Request(
            method=request.method,
            raw_path=url.path or "/",
            query_string=url.query,
            headers={
                k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
            },
            body=body.encode() if isinstance(body, str) else body,
        )
        try:
            match = EC2.match(incoming)
            params = EC2.parse(match, incoming)
            validate(match.operation.input_shape, params)
            response = EC2.serialize(match, handler(match.operation.name, params), REQUEST_ID)
        except AwsError as exc:
            response = EC2.serialize_error(exc, REQUEST_ID)
        return AWSResponse(request.url, response.status, dict(response.headers), _Raw(response.body))

    client.meta.events.register("before-send", before_send)
    return client


# -- routing -------------------------------------------------------------------------------------


def test_routing() -> None:
    assert EC2.routes_on_body is True
    assert isinstance(EC2, Ec2Protocol)
    assert EC2.match(form(f"Action=DescribeVpcs&{VERSION}")).operation.name == "DescribeVpcs"
    assert (
        EC2.match(form("", "GET", f"Action=CreateVpc&{VERSION}&CidrBlock=10.0.0.0/16")).operation.name
        == "CreateVpc"
    )


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        pytest.param(
            f"Action=DescribeVpc&{VERSION}",
            "InvalidAction",
            "The action DescribeVpc is not valid for this web service.",
            id="unknown-action",
        ),
        pytest.param(
            f"Action=ListRoles&{VERSION}",
            "InvalidAction",
            "The action ListRoles is not valid for this web service.",
            id="iam-action",
        ),
        pytest.param(
            "Action=DescribeVpcs&Version=2099-01-01",
            "NoSuchVersion",
            "The requested version (2099-01-01) is not valid.",
            id="unknown-version",
        ),
        pytest.param(
            "Action=DescribeVpcs",
            "MissingParameter",
            "The request must contain the parameter Version",
            id="no-version",
        ),
        pytest.param(VERSION, "MissingAction", "No action was supplied with this request.", id="no-action"),
    ],
)
def test_routing_errors(body: str, code: str, message: str) -> None:
    with pytest.raises(AwsError) as info:
        EC2.match(form(body))
    assert (info.value.code, info.value.status, info.value.message) == (code, 400, message)
    status, error = botocore_error(info.value)
    assert (status, error["Code"], error["Message"]) == (400, code, message)


# -- parsing: what botocore sends reads back to the same parameters ------------------------------

TAGS = [
    {
        "ResourceType": "vpc",
        "Tags": [{"Key": "Name", "Value": "main vpc"}, {"Key": "env", "Value": "a&b=c+d"}],
    }
]
PERMISSIONS = [
    {
        "IpProtocol": "tcp",
        "FromPort": 5432,
        "ToPort": 5432,
        "IpRanges": [{"CidrIp": "10.0.0.0/24", "Description": "app subnet"}, {"CidrIp": "10.0.1.0/24"}],
        "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
        "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0", "UserId": "000000000000"}],
        "PrefixListIds": [{"PrefixListId": "pl-12345678"}],
    },
    {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
]

REAL_INPUTS = [
    pytest.param("CreateVpc", {"CidrBlock": "10.0.0.0/16"}, id="CreateVpc"),
    pytest.param(
        "CreateVpc",
        {"CidrBlock": "10.0.0.0/16", "InstanceTenancy": "default", "TagSpecifications": TAGS, "DryRun": True},
        id="CreateVpc-tags-dryrun",
    ),
    pytest.param(
        "DescribeVpcs",
        {
            "VpcIds": ["vpc-1", "vpc-2"],
            "Filters": [
                {"Name": "cidr", "Values": ["10.0.0.0/16", "10.1.0.0/16"]},
                {"Name": "tag:Name", "Values": ["x"]},
            ],
            "MaxResults": 5,
            "NextToken": "t+/=",
        },
        id="DescribeVpcs-filters",
    ),
    pytest.param("DeleteVpc", {"VpcId": "vpc-1", "DryRun": False}, id="DeleteVpc"),
    pytest.param(
        "CreateSubnet",
        {"VpcId": "vpc-1", "CidrBlock": "10.0.1.0/28", "AvailabilityZone": "us-east-1a"},
        id="CreateSubnet",
    ),
    pytest.param(
        "DescribeSubnets",
        {"SubnetIds": ["subnet-1"], "Filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}]},
        id="DescribeSubnets",
    ),
    pytest.param(
        "CreateSecurityGroup",
        {"GroupName": "db", "Description": "database & co", "VpcId": "vpc-1", "TagSpecifications": TAGS},
        id="CreateSecurityGroup",
    ),
    pytest.param(
        "AuthorizeSecurityGroupIngress",
        {"GroupId": "sg-1", "IpPermissions": PERMISSIONS},
        id="AuthorizeSecurityGroupIngress-nested-lists",
    ),
    pytest.param(
        "RevokeSecurityGroupEgress",
        {"GroupId": "sg-1", "SecurityGroupRuleIds": ["sgr-1", "sgr-2"]},
        id="RevokeSecurityGroupEgress-rule-ids",
    ),
    pytest.param(
        "DescribeSecurityGroupRules",
        {"Filters": [{"Name": "group-id", "Values": ["sg-1"]}], "MaxResults": 100},
        id="DescribeSecurityGroupRules",
    ),
    pytest.param(
        "CreateInternetGateway",
        {"TagSpecifications": [{"ResourceType": "internet-gateway", "Tags": [{"Key": "k", "Value": ""}]}]},
        id="CreateInternetGateway",
    ),
    pytest.param(
        "AttachInternetGateway", {"InternetGatewayId": "igw-1", "VpcId": "vpc-1"}, id="AttachInternetGateway"
    ),
    pytest.param("AllocateAddress", {"Domain": "vpc"}, id="AllocateAddress"),
    pytest.param(
        "CreateNatGateway",
        {
            "SubnetId": "subnet-1",
            "AllocationId": "eipalloc-1",
            "ConnectivityType": "public",
            "ClientToken": "tok",
        },
        id="CreateNatGateway",
    ),
    pytest.param("CreateRouteTable", {"VpcId": "vpc-1"}, id="CreateRouteTable"),
    pytest.param(
        "CreateRoute",
        {"RouteTableId": "rtb-1", "DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1"},
        id="CreateRoute",
    ),
    pytest.param(
        "AssociateRouteTable", {"RouteTableId": "rtb-1", "SubnetId": "subnet-1"}, id="AssociateRouteTable"
    ),
    pytest.param(
        "CreateNetworkInterface",
        {
            "SubnetId": "subnet-1",
            "Description": "AWS Lambda VPC ENI-fn-1234",
            "Groups": ["sg-1", "sg-2"],
            "InterfaceType": "efa",
            "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.1.5", "Primary": True}],
        },
        id="CreateNetworkInterface",
    ),
    pytest.param(
        "DescribeNetworkInterfaces",
        {"Filters": [{"Name": "interface-type", "Values": ["lambda"]}], "NetworkInterfaceIds": ["eni-1"]},
        id="DescribeNetworkInterfaces",
    ),
    pytest.param(
        "DescribeAvailabilityZones",
        {"ZoneNames": ["us-east-1a"], "AllAvailabilityZones": False},
        id="DescribeAvailabilityZones",
    ),
    pytest.param(
        "CreateTags",
        {"Resources": ["vpc-1", "subnet-1"], "Tags": [{"Key": "Name", "Value": "x"}]},
        id="CreateTags",
    ),
    pytest.param("DeleteTags", {"Resources": ["vpc-1"], "Tags": [{"Key": "Name"}]}, id="DeleteTags"),
]


@pytest.mark.parametrize(("operation", "params"), REAL_INPUTS)
def test_parse_what_botocore_sends(operation: str, params: dict[str, Any]) -> None:
    assert parse_back(operation, params) == params


@pytest.mark.parametrize("operation", [pytest.param(name, id=name) for name in MODEL.operation_names])
def test_parse_round_trip_every_operation(operation: str) -> None:
    """Every member of every EC2 input shape, with generated values, reads back unchanged."""
    shape = MODEL.operation_model(operation).input_shape
    params = pruned(sample(shape, "v a&l=u+e%/ü")) if shape is not None else {}
    assert parse_back(operation, params) == params


def test_wire_keys() -> None:
    """EC2's own spelling: queryName / capitalised locationName, ``Name.N`` lists."""
    request = to_request(
        "CreateNetworkInterface",
        {"SubnetId": "subnet-1", "Groups": ["sg-1"], "TagSpecifications": TAGS, "DryRun": True},
    )
    keys = dict(parse_qsl(request.body.decode()))
    assert keys["SubnetId"] == "subnet-1"
    assert keys["SecurityGroupId.1"] == "sg-1"
    assert keys["TagSpecification.1.Tag.2.Key"] == "env"
    assert keys["DryRun"] == "true"


def test_parse_hand_written_request() -> None:
    """The form from EC2's API reference (no SDK), keys in any order."""
    body = (
        f"Action=DescribeVpcs&{VERSION}&Filter.1.Value.2=10.1.0.0%2F16&Filter.1.Name=cidr"
        "&Filter.1.Value.1=10.0.0.0%2F16&VpcId.2=vpc-b&VpcId.1=vpc-a&Filter.2.Name=state&Filter.2.Value.1=available"
        "&AWSAccessKeyId=AKIA&SignatureVersion=2&Timestamp=2026-01-01T00%3A00%3A00Z"
    )
    assert parse_form(body) == {
        "VpcIds": ["vpc-a", "vpc-b"],
        "Filters": [
            {"Name": "cidr", "Values": ["10.0.0.0/16", "10.1.0.0/16"]},
            {"Name": "state", "Values": ["available"]},
        ],
    }


def test_list_entries_in_numeric_order() -> None:
    body = f"Action=DescribeVpcs&{VERSION}&" + "&".join(f"VpcId.{i}=vpc-{i}" for i in (10, 9, 1, 2))
    assert parse_form(body)["VpcIds"] == ["vpc-1", "vpc-2", "vpc-9", "vpc-10"]


def test_dry_run_flag() -> None:
    params = parse_form(f"Action=CreateVpc&{VERSION}&CidrBlock=10.0.0.0%2F16&DryRun=true")
    assert params == {"CidrBlock": "10.0.0.0/16", "DryRun": True}
    assert is_dry_run(params)
    assert not is_dry_run({"CidrBlock": "10.0.0.0/16"})
    assert not is_dry_run({"DryRun": False})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            f"Action=CreateSecurityGroup&{VERSION}&GroupName=db",
            "The request must contain the parameter GroupDescription",
            id="location-name",
        ),
        pytest.param(
            f"Action=CreateTags&{VERSION}&Tag.1.Key=k",
            "The request must contain the parameter ResourceId",
            id="list",
        ),
        pytest.param(f"Action=DeleteVpc&{VERSION}&VpcId=", None, id="empty-is-present"),
        pytest.param(
            f"Action=CreateVpc&{VERSION}&VpcEncryptionControl.Bogus=1",
            "The request must contain the parameter VpcEncryptionControl.Mode",
            id="nested",
        ),
    ],
)
def test_missing_parameter(body: str, message: str | None) -> None:
    if message is None:
        assert parse_form(body) == {"VpcId": ""}
        return
    with pytest.raises(AwsError) as info:
        parse_form(body)
    assert (info.value.code, info.value.status, info.value.message) == ("MissingParameter", 400, message)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param(f"Action=DescribeVpcs&{VERSION}&MaxResults=ten", "MaxResults", id="integer"),
        pytest.param(f"Action=DescribeVpcs&{VERSION}&DryRun=1", "DryRun", id="boolean"),
        pytest.param(
            f"Action=AuthorizeSecurityGroupIngress&{VERSION}&GroupId=sg-1&IpPermissions.2.FromPort=x",
            "IpPermissions.2.FromPort",
            id="nested",
        ),
    ],
)
def test_type_errors(body: str, where: str) -> None:
    with pytest.raises(AwsError) as info:
        parse_form(body)
    assert (info.value.code, info.value.status) == ("InvalidParameterValue", 400)
    assert f"for parameter {where} is invalid" in info.value.message


# -- serialising: botocore reads back what we write ----------------------------------------------

VPC = {
    "VpcId": "vpc-0a1b2c3d4e5f60718",
    "State": "available",
    "CidrBlock": "10.0.0.0/16",
    "DhcpOptionsId": "dopt-1",
    "OwnerId": "000000000000",
    "InstanceTenancy": "default",
    "IsDefault": False,
    "CidrBlockAssociationSet": [
        {
            "AssociationId": "vpc-cidr-assoc-1",
            "CidrBlock": "10.0.0.0/16",
            "CidrBlockState": {"State": "associated"},
        }
    ],
    "Tags": [{"Key": "Name", "Value": "main <vpc>"}],
}
SUBNET = {
    "SubnetId": "subnet-1",
    "VpcId": VPC["VpcId"],
    "State": "available",
    "CidrBlock": "10.0.1.0/28",
    "AvailableIpAddressCount": 11,
    "AvailabilityZone": "us-east-1a",
    "AvailabilityZoneId": "use1-az1",
    "DefaultForAz": False,
    "MapPublicIpOnLaunch": False,
    "SubnetArn": "arn:aws:ec2:us-east-1:000000000000:subnet/subnet-1",
    "Ipv6CidrBlockAssociationSet": [],
    "Tags": [],
}
GROUP = {
    "GroupId": "sg-1",
    "GroupName": "default",
    "Description": "default VPC security group",
    "VpcId": VPC["VpcId"],
    "OwnerId": "000000000000",
    "SecurityGroupArn": "arn:aws:ec2:us-east-1:000000000000:security-group/sg-1",
    "IpPermissions": [
        {
            "IpProtocol": "-1",
            "UserIdGroupPairs": [{"GroupId": "sg-1", "UserId": "000000000000"}],
            "IpRanges": [],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
        },
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "IpRanges": [{"CidrIp": "10.0.0.0/24", "Description": "a"}, {"CidrIp": "10.0.1.0/24"}],
            "UserIdGroupPairs": [],
        },
    ],
    "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    "Tags": [{"Key": "k", "Value": "v"}],
}
ENI = {
    "NetworkInterfaceId": "eni-1",
    "SubnetId": "subnet-1",
    "VpcId": VPC["VpcId"],
    "AvailabilityZone": "us-east-1a",
    "Description": "AWS Lambda VPC ENI-fn-0b9e",
    "Groups": [{"GroupId": "sg-1", "GroupName": "default"}],
    "InterfaceType": "lambda",
    "Status": "in-use",
    "PrivateIpAddress": "10.0.1.4",
    "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.1.4", "Primary": True}],
    "RequesterId": "000000000000",
    "RequesterManaged": True,
    "SourceDestCheck": True,
    "MacAddress": "02:00:00:00:00:01",
    "OwnerId": "000000000000",
    "TagSet": [],
    "Attachment": {
        "AttachmentId": "ela-attach-1",
        "AttachTime": WHEN,
        "DeviceIndex": 1,
        "Status": "attached",
    },
}
ROUTE_TABLE = {
    "RouteTableId": "rtb-1",
    "VpcId": VPC["VpcId"],
    "OwnerId": "000000000000",
    "Routes": [
        {
            "DestinationCidrBlock": "10.0.0.0/16",
            "GatewayId": "local",
            "Origin": "CreateRouteTable",
            "State": "active",
        },
        {
            "DestinationCidrBlock": "0.0.0.0/0",
            "NatGatewayId": "nat-1",
            "Origin": "CreateRoute",
            "State": "blackhole",
        },
    ],
    "Associations": [
        {
            "Main": True,
            "RouteTableAssociationId": "rtbassoc-1",
            "RouteTableId": "rtb-1",
            "AssociationState": {"State": "associated"},
        }
    ],
    "PropagatingVgws": [],
    "Tags": [],
}

REAL_OUTPUTS = [
    pytest.param(
        "DescribeVpcs", {"Vpcs": [VPC, {**VPC, "VpcId": "vpc-2", "IsDefault": True}]}, id="DescribeVpcs"
    ),
    pytest.param("DescribeVpcs", {"Vpcs": [], "NextToken": "n"}, id="DescribeVpcs-empty"),
    pytest.param("CreateVpc", {"Vpc": {**VPC, "State": "pending"}}, id="CreateVpc"),
    pytest.param("DescribeSubnets", {"Subnets": [SUBNET]}, id="DescribeSubnets"),
    pytest.param("DescribeSecurityGroups", {"SecurityGroups": [GROUP]}, id="DescribeSecurityGroups"),
    pytest.param(
        "CreateSecurityGroup",
        {"GroupId": "sg-2", "Tags": [{"Key": "a", "Value": "b"}], "SecurityGroupArn": "arn"},
        id="CreateSecurityGroup",
    ),
    pytest.param(
        "AuthorizeSecurityGroupIngress",
        {
            "Return": True,
            "SecurityGroupRules": [
                {
                    "SecurityGroupRuleId": "sgr-1",
                    "GroupId": "sg-1",
                    "GroupOwnerId": "000000000000",
                    "IsEgress": False,
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "CidrIpv4": "10.0.0.0/8",
                }
            ],
        },
        id="AuthorizeSecurityGroupIngress",
    ),
    pytest.param("DescribeNetworkInterfaces", {"NetworkInterfaces": [ENI]}, id="DescribeNetworkInterfaces"),
    pytest.param("DescribeRouteTables", {"RouteTables": [ROUTE_TABLE]}, id="DescribeRouteTables"),
    pytest.param(
        "DescribeAvailabilityZones",
        {
            "AvailabilityZones": [
                {
                    "ZoneName": f"us-east-1{z}",
                    "ZoneId": f"use1-az{i}",
                    "State": "available",
                    "RegionName": "us-east-1",
                    "Messages": [],
                }
                for i, z in enumerate("abc", 1)
            ]
        },
        id="DescribeAvailabilityZones",
    ),
    pytest.param(
        "CreateNatGateway",
        {
            "NatGateway": {
                "NatGatewayId": "nat-1",
                "State": "pending",
                "SubnetId": "subnet-1",
                "VpcId": "vpc-1",
                "CreateTime": WHEN,
                "ConnectivityType": "public",
                "NatGatewayAddresses": [
                    {"AllocationId": "eipalloc-1", "PublicIp": "203.0.113.5", "IsPrimary": True}
                ],
            }
        },
        id="CreateNatGateway",
    ),
    pytest.param(
        "AllocateAddress",
        {
            "AllocationId": "eipalloc-1",
            "PublicIp": "203.0.113.5",
            "Domain": "vpc",
            "NetworkBorderGroup": "us-east-1",
        },
        id="AllocateAddress",
    ),
    pytest.param("DeleteNatGateway", {"NatGatewayId": "nat-1"}, id="DeleteNatGateway"),
]


@pytest.mark.parametrize(("operation", "output"), REAL_OUTPUTS)
def test_botocore_reads_what_we_write(operation: str, output: dict[str, Any]) -> None:
    assert botocore_reads(operation, output) == output


@pytest.mark.parametrize("operation", [pytest.param(name, id=name) for name in MODEL.operation_names])
def test_serialize_round_trip_every_operation(operation: str) -> None:
    shape = MODEL.operation_model(operation).output_shape
    output = sample(shape, "o<u&t>\"p'u\r\nt ü") if shape is not None else {}
    assert botocore_reads(operation, output) == output


def test_describe_vpcs_xml() -> None:
    output = {"Vpcs": [{"VpcId": "vpc-1", "State": "available", "IsDefault": False, "Tags": []}]}
    response = EC2.serialize(EC2.match(form(f"Action=DescribeVpcs&{VERSION}")), output, "rid")
    assert response.body.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>rid</requestId>'
        "<vpcSet><item><isDefault>false</isDefault><tagSet/><vpcId>vpc-1</vpcId><state>available</state></item></vpcSet>"
        "</DescribeVpcsResponse>"
    )
    assert ("Content-Type", "text/xml;charset=UTF-8") in response.headers


def test_timestamps_have_milliseconds() -> None:
    output = {"NatGateway": {"NatGatewayId": "nat-1", "CreateTime": WHEN}}
    body = EC2.serialize(EC2.match(form(f"Action=CreateNatGateway&{VERSION}")), output, "rid").body
    assert b"<createTime>2026-01-02T03:04:05.678Z</createTime>" in body


def test_operation_without_output_returns_true() -> None:
    response = EC2.serialize(EC2.match(form(f"Action=DeleteVpc&{VERSION}")), {}, "rid")
    assert response.body.decode().endswith(
        '<DeleteVpcResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        "<requestId>rid</requestId><return>true</return></DeleteVpcResponse>"
    )
    assert botocore_reads("DeleteVpc", {}) == {}


# -- errors --------------------------------------------------------------------------------------


def test_error_xml() -> None:
    error = AwsError(
        "The vpc ID 'vpc-1' does not exist", code="InvalidVpcID.NotFound", status=400, sender_fault=True
    )
    response = EC2.serialize_error(error, "rid")
    assert response.status == 400
    assert response.body.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code>"
        "<Message>The vpc ID 'vpc-1' does not exist</Message></Error></Errors>"
        "<RequestID>rid</RequestID></Response>"
    )


@pytest.mark.parametrize(
    ("error", "status", "code", "message"),
    [
        pytest.param(dry_run_error(), 412, "DryRunOperation", DRY_RUN_MESSAGE, id="dry-run"),
        pytest.param(
            AwsError(
                "The CIDR '10.0.0.0/8' is invalid.", code="InvalidVpc.Range", status=400, sender_fault=True
            ),
            400,
            "InvalidVpc.Range",
            "The CIDR '10.0.0.0/8' is invalid.",
            id="dotted-code",
        ),
        pytest.param(
            AwsError("a <b> & 'c'", code="DependencyViolation", status=400, sender_fault=True),
            400,
            "DependencyViolation",
            "a <b> & 'c'",
            id="escaped",
        ),
        pytest.param(
            ServiceException("An internal error occurred."),
            500,
            "InternalError",
            "An internal error occurred.",
            id="server",
        ),
        pytest.param(
            UnrecognizedClientException("The security token included in the request is invalid."),
            401,
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
            id="sigv4",
        ),
        pytest.param(
            AccessDeniedException("You are not authorized to perform this operation."),
            403,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
            id="unauthorized",
        ),
    ],
)
def test_botocore_reads_errors(error: AwsError, status: int, code: str, message: str) -> None:
    assert botocore_error(error) == (status, {"Code": code, "Message": message})


def test_validation_errors_become_invalid_parameter_value() -> None:
    request = to_request("DescribeVpcs", {"MaxResults": 1001})
    match = EC2.match(request)
    with pytest.raises(AwsError) as info:
        validate(match.operation.input_shape, EC2.parse(match, request))
    assert "at 'maxResults'" in info.value.message
    _, error = botocore_error(info.value)
    assert error["Code"] == "InvalidParameterValue"


# -- a real client, end to end ------------------------------------------------------------------


def handler(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    if is_dry_run(params):
        raise dry_run_error()
    if operation == "DescribeVpcs":
        return {"Vpcs": [VPC] if params.get("Filters", [{}])[0].get("Values") == ["10.0.0.0/16"] else []}
    if operation == "DescribeSecurityGroups":
        return {"SecurityGroups": [GROUP]}
    if operation == "DescribeNetworkInterfaces":
        return {"NetworkInterfaces": [ENI]}
    if operation == "DescribeRouteTables":
        return {"RouteTables": [ROUTE_TABLE]}
    if operation == "CreateVpc":
        return {"Vpc": {**VPC, "CidrBlock": params["CidrBlock"], "State": "pending"}}
    if operation == "DeleteVpc":
        raise AwsError(
            f"The vpc '{params['VpcId']}' has dependencies and cannot be deleted.",
            code="DependencyViolation",
            status=400,
            sender_fault=True,
        )
    raise AssertionError(operation)


def test_client_end_to_end() -> None:
    client = client_for(handler)
    got = client.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.0.0.0/16"]}])
    assert got["Vpcs"] == [VPC]
    assert got["ResponseMetadata"]["RequestId"] == REQUEST_ID
    assert client.describe_security_groups(GroupIds=["sg-1"])["SecurityGroups"] == [GROUP]
    assert client.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["CidrBlock"] == "10.9.0.0/16"
    with pytest.raises(ClientError) as dry:
        client.create_vpc(CidrBlock="10.9.0.0/16", DryRun=True)
    assert dry.value.response["Error"] == {"Code": "DryRunOperation", "Message": DRY_RUN_MESSAGE}
    assert dry.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as dependency:
        client.delete_vpc(VpcId="vpc-1")
    assert dependency.value.response["Error"]["Code"] == "DependencyViolation"
    assert client.describe_network_interfaces()["NetworkInterfaces"] == [ENI]
    assert client.describe_route_tables()["RouteTables"] == [ROUTE_TABLE]
