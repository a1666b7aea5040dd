"""DHCP option sets and the VPC's DNS attributes through boto3 and the AWS CLI against the real
server: shapes, the region's default option set, filters, tags, DryRun, EC2's errors, accounts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client, run_aws

from lamina.domain import dns as N
from lamina.domain import ec2 as E
from lamina.store import SqliteDatabase
from lamina.store.ec2 import Ec2Store


@pytest.fixture(scope="module")
def ec2(server: LaminaServer) -> Any:
    return client(server, "ec2")


def fails(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def values(options: dict[str, Any]) -> dict[str, list[str]]:
    return {c["Key"]: [v["Value"] for v in c["Values"]] for c in options["DhcpConfigurations"]}


def test_a_new_vpc_has_the_regions_default_option_set(server: LaminaServer) -> None:
    for region, domain in (("us-east-1", "ec2.internal"), ("eu-west-2", "eu-west-2.compute.internal")):
        ec2 = client(server, "ec2", region=region)
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]
        assert vpc["DhcpOptionsId"].startswith("dopt-")
        again = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]
        assert again["DhcpOptionsId"] == vpc["DhcpOptionsId"]
        (options,) = ec2.describe_dhcp_options(DhcpOptionsIds=[vpc["DhcpOptionsId"]])["DhcpOptions"]
        assert list(options) == ["OwnerId", "Tags", "DhcpOptionsId", "DhcpConfigurations"]
        assert values(options) == {"domain-name": [domain], "domain-name-servers": ["AmazonProvidedDNS"]}
        assert options["OwnerId"] == "000000000000"


def test_create_describe_filter_tag_delete(ec2: Any) -> None:
    created = ec2.create_dhcp_options(
        DhcpConfigurations=[
            {"Key": "domain-name", "Values": ["corp.example"]},
            {"Key": "domain-name-servers", "Values": ["192.0.2.53", "AmazonProvidedDNS"]},
            {"Key": "ntp-servers", "Values": ["192.0.2.123"]},
        ],
        TagSpecifications=[{"ResourceType": "dhcp-options", "Tags": [{"Key": "team", "Value": "dns"}]}],
    )["DhcpOptions"]
    options_id = created["DhcpOptionsId"]
    assert values(created) == {
        "domain-name": ["corp.example"],
        "domain-name-servers": ["192.0.2.53", "AmazonProvidedDNS"],
        "ntp-servers": ["192.0.2.123"],
    }
    assert created["Tags"] == [{"Key": "team", "Value": "dns"}]

    def ids(**kwargs: Any) -> list[str]:
        return [o["DhcpOptionsId"] for o in ec2.describe_dhcp_options(**kwargs)["DhcpOptions"]]

    assert options_id in ids()
    assert ids(Filters=[{"Name": "tag:team", "Values": ["dns"]}]) == [options_id]
    assert ids(Filters=[{"Name": "value", "Values": ["corp.example"]}]) == [options_id]
    assert options_id in ids(Filters=[{"Name": "key", "Values": ["ntp-servers"]}])
    assert ids(Filters=[{"Name": "dhcp-options-id", "Values": [options_id]}]) == [options_id]
    assert ids(Filters=[{"Name": "value", "Values": ["nothing.example"]}]) == []
    ec2.create_tags(Resources=[options_id], Tags=[{"Key": "stage", "Value": "test"}])
    assert ids(Filters=[{"Name": "tag:stage", "Values": ["test"]}]) == [options_id]

    ec2.delete_dhcp_options(DhcpOptionsId=options_id)
    assert fails(ec2.describe_dhcp_options, DhcpOptionsIds=[options_id]) == (
        "InvalidDhcpOptionID.NotFound",
        f"The dhcpOption ID '{options_id}' does not exist",
    )
    assert fails(ec2.delete_dhcp_options, DhcpOptionsId=options_id)[0] == "InvalidDhcpOptionID.NotFound"


@pytest.mark.parametrize(
    ("configurations", "code"),
    [
        ([{"Key": "domain-nam", "Values": ["x"]}], "InvalidParameterValue"),
        ([{"Key": "domain-name-servers", "Values": ["not-an-ip"]}], "InvalidParameterValue"),
        (
            [{"Key": "domain-name-servers", "Values": [f"192.0.2.{i}" for i in range(5)]}],
            "InvalidParameterValue",
        ),
        ([{"Key": "netbios-node-type", "Values": ["3"]}], "InvalidParameterValue"),
        ([{"Key": "domain-name", "Values": []}], "InvalidParameterValue"),
        (
            [{"Key": "domain-name", "Values": ["a"]}, {"Key": "domain-name", "Values": ["b"]}],
            "InvalidParameterValue",
        ),
        ([], "MissingParameter"),
    ],
    ids=["unknown-key", "bad-address", "five-servers", "netbios-type", "no-value", "twice", "none"],
)
def test_bad_options_are_refused_and_create_nothing(
    ec2: Any, configurations: list[dict[str, Any]], code: str
) -> None:
    before = len(ec2.describe_dhcp_options()["DhcpOptions"])
    assert fails(ec2.create_dhcp_options, DhcpConfigurations=configurations)[0] == code
    assert len(ec2.describe_dhcp_options()["DhcpOptions"]) == before


def test_associate_in_use_and_default(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    default_id = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["DhcpOptionsId"]
    options_id = ec2.create_dhcp_options(
        DhcpConfigurations=[{"Key": "domain-name", "Values": ["x.example"]}]
    )["DhcpOptions"]["DhcpOptionsId"]
    assert fails(ec2.associate_dhcp_options, DhcpOptionsId=options_id, VpcId=vpc_id, DryRun=True) == (
        "DryRunOperation",
        "Request would have succeeded, but DryRun flag is set.",
    )
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["DhcpOptionsId"] == default_id
    ec2.associate_dhcp_options(DhcpOptionsId=options_id, VpcId=vpc_id)
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["DhcpOptionsId"] == options_id
    listed = ec2.describe_vpcs(Filters=[{"Name": "dhcp-options-id", "Values": [options_id]}])["Vpcs"]
    assert [v["VpcId"] for v in listed] == [vpc_id]
    assert fails(ec2.delete_dhcp_options, DhcpOptionsId=options_id) == (
        "DependencyViolation",
        f"The dhcpOptions '{options_id}' has dependencies and cannot be deleted.",
    )
    ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=vpc_id)
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["DhcpOptionsId"] == "default"
    assert fails(ec2.delete_dhcp_options, DhcpOptionsId=options_id, DryRun=True)[0] == "DryRunOperation"
    ec2.delete_dhcp_options(DhcpOptionsId=options_id)
    assert fails(ec2.associate_dhcp_options, DhcpOptionsId=options_id, VpcId=vpc_id)[0] == (
        "InvalidDhcpOptionID.NotFound"
    )
    assert fails(ec2.associate_dhcp_options, DhcpOptionsId=default_id, VpcId="vpc-0123456789abcdef0") == (
        "InvalidVpcID.NotFound",
        "The vpc ID 'vpc-0123456789abcdef0' does not exist",
    )


def test_another_accounts_option_sets_do_not_exist(server: LaminaServer, ec2: Any) -> None:
    options_id = ec2.create_dhcp_options(
        DhcpConfigurations=[{"Key": "domain-name", "Values": ["mine.example"]}]
    )["DhcpOptions"]["DhcpOptionsId"]
    bob = client(server, "ec2", key="AKIDBOB22222", secret="bob-secret")
    vpc_id = bob.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    assert fails(bob.describe_dhcp_options, DhcpOptionsIds=[options_id])[0] == "InvalidDhcpOptionID.NotFound"
    assert fails(bob.associate_dhcp_options, DhcpOptionsId=options_id, VpcId=vpc_id)[0] == (
        "InvalidDhcpOptionID.NotFound"
    )
    assert fails(bob.delete_dhcp_options, DhcpOptionsId=options_id)[0] == "InvalidDhcpOptionID.NotFound"
    assert options_id not in [o["DhcpOptionsId"] for o in bob.describe_dhcp_options()["DhcpOptions"]]
    assert fails(ec2.describe_vpc_attribute, VpcId=vpc_id, Attribute="enableDnsSupport")[0] == (
        "InvalidVpcID.NotFound"
    )


def test_vpc_attributes(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]

    def attribute(name: str) -> bool:
        out = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=name)
        member = name[0].upper() + name[1:]
        assert set(out) - {"ResponseMetadata"} == {"VpcId", member}
        assert out["VpcId"] == vpc_id
        return bool(out[member]["Value"])

    assert attribute("enableDnsSupport") is True
    assert attribute("enableDnsHostnames") is False
    assert attribute("enableNetworkAddressUsageMetrics") is False
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    assert attribute("enableDnsHostnames") is True
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": False})
    assert attribute("enableDnsSupport") is False
    assert attribute("enableDnsHostnames") is True
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableNetworkAddressUsageMetrics={"Value": True})
    assert attribute("enableNetworkAddressUsageMetrics") is True
    # The attributes never show in DescribeVpcs (EC2's Vpc shape has no such member).
    assert "_dns_attributes" not in json.dumps(ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"])

    code, message = fails(
        ec2.modify_vpc_attribute,
        VpcId=vpc_id,
        EnableDnsSupport={"Value": True},
        EnableDnsHostnames={"Value": True},
    )
    assert (code, message) == (
        "InvalidParameterCombination",
        "Fields for multiple attribute types specified: enableDnsHostnames, enableDnsSupport",
    )
    assert attribute("enableDnsSupport") is False
    assert fails(ec2.modify_vpc_attribute, VpcId=vpc_id)[0] == "MissingParameter"
    assert fails(
        ec2.modify_vpc_attribute, VpcId="vpc-0123456789abcdef0", EnableDnsSupport={"Value": True}
    ) == (
        "InvalidVpcID.NotFound",
        "The vpc ID 'vpc-0123456789abcdef0' does not exist",
    )
    assert fails(ec2.describe_vpc_attribute, VpcId=vpc_id, Attribute="enableDnsSupport", DryRun=True)[0] == (
        "DryRunOperation"
    )


def test_the_aws_cli(server: LaminaServer) -> None:
    def aws(*args: str) -> Any:
        result = run_aws(server, "ec2", *args, "--output", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    options = aws("create-dhcp-options", "--dhcp-configurations", "Key=domain-name,Values=cli.example")
    options_id = options["DhcpOptions"]["DhcpOptionsId"]
    vpc_id = aws("create-vpc", "--cidr-block", "10.50.0.0/16")["Vpc"]["VpcId"]
    aws("associate-dhcp-options", "--dhcp-options-id", options_id, "--vpc-id", vpc_id)
    aws("modify-vpc-attribute", "--vpc-id", vpc_id, "--enable-dns-hostnames")
    aws("modify-vpc-attribute", "--vpc-id", vpc_id, "--no-enable-dns-support")
    assert aws("describe-vpc-attribute", "--vpc-id", vpc_id, "--attribute", "enableDnsHostnames") == {
        "VpcId": vpc_id,
        "EnableDnsHostnames": {"Value": True},
    }
    assert aws("describe-vpc-attribute", "--vpc-id", vpc_id, "--attribute", "enableDnsSupport")[
        "EnableDnsSupport"
    ] == {"Value": False}
    listed = aws("describe-dhcp-options", "--filters", "Name=value,Values=cli.example")["DhcpOptions"]
    assert [o["DhcpOptionsId"] for o in listed] == [options_id]
    refused = run_aws(server, "ec2", "delete-dhcp-options", "--dhcp-options-id", options_id)
    assert refused.returncode != 0 and "DependencyViolation" in refused.stderr


def test_the_store_tells_the_data_plane_each_vpcs_dns(tmp_path: Path) -> None:
    """``Ec2Store.vpc_dns``: attributes and what the option set hands out; a VPC stored before lamina
    had option sets (``DhcpOptionsId: default`` without the marker) has the region's default set."""
    metadata = SqliteDatabase(tmp_path / "lamina.db")
    try:
        store = Ec2Store(metadata)
        account, region = "000000000000", "eu-west-1"
        with store.transaction(account, region) as tx:
            legacy = tx.new_id(E.VPC)
            tx.put(E.VPC, legacy, {"VpcId": legacy, "CidrBlock": "10.0.0.0/16", "DhcpOptionsId": "default"})
        attributes, dhcp = store.vpc_dns(account, region, legacy) or (None, None)
        assert attributes == N.VpcDnsAttributes(support=True, hostnames=False)
        assert dhcp == N.DhcpSettings(("eu-west-1.compute.internal",), ("AmazonProvidedDNS",))
        assert store.vpc_dns(account, region, "vpc-0123456789abcdef0") is None
        assert store.vpc_dns("111111111111", region, legacy) is None
    finally:
        metadata.close()
