"""Unit tests for lamina.domain.ec2: ids, views, interface shapes, Elastic IP choice, the NAT
gateway state machine."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from lamina.domain import ec2 as E
from lamina.domain import secgroups as S
from lamina.errors import AwsError

SUBNET: dict[str, Any] = {
    "SubnetId": "subnet-1",
    "VpcId": "vpc-1",
    "CidrBlock": "10.0.0.0/28",
    "AvailabilityZone": "us-east-1a",
    "AvailabilityZoneId": "use1-az1",
    "_bookkeeping": True,
}
GROUP: dict[str, Any] = {"GroupId": "sg-1", "GroupName": "fn", "VpcId": "vpc-1"}


def codes(excinfo: pytest.ExceptionInfo[AwsError]) -> tuple[str, str]:
    return excinfo.value.code, excinfo.value.message


@pytest.mark.parametrize(
    ("resource_id", "kind"),
    [
        pytest.param("vpc-0123456789abcdef0", E.VPC, id="vpc"),
        pytest.param("eipalloc-0123", E.ELASTIC_IP, id="eip"),
        pytest.param("sgr-0123", E.SECURITY_GROUP_RULE, id="rule"),
        pytest.param("nope-0123", None, id="unknown"),
        pytest.param("vpc", None, id="no-dash"),
    ],
)
def test_kind_of(resource_id: str, kind: str | None) -> None:
    assert E.kind_of(resource_id) == kind


def test_kinds_are_plain_strings_at_run_time() -> None:
    # The store binds them as SQL parameters and compares them with stored text.
    assert E.NAT_GATEWAY == "natgateway" and hash(E.VPC) == hash("vpc")
    assert json.dumps([E.SUBNET]) == '["subnet"]' and f"{E.ELASTIC_IP}" == "elastic-ip"
    assert {kind: kind for kind in E.PREFIXES} == E.KINDS
    assert E.KINDS["route-table"] is E.ROUTE_TABLE


def test_public_forms_drop_only_bookkeeping_keys() -> None:
    nat: Any = {
        "NatGatewayId": "nat-1",
        "State": "pending",
        "_due_ms": 5,
        "_failure": ["C", "M"],
        "_gone_ms": 1,
    }
    assert E.public_nat(nat) == {"NatGatewayId": "nat-1", "State": "pending"}
    assert "_due_ms" in nat  # the stored body is left alone
    eip: Any = {"AllocationId": "eipalloc-1", "PublicIp": "203.0.113.1", "_nat": "nat-1"}
    assert E.public_address(eip) == {"AllocationId": "eipalloc-1", "PublicIp": "203.0.113.1"}
    vpc: Any = {"VpcId": "vpc-1", "_stray": 1}
    assert E.wire_copy(vpc) == {"VpcId": "vpc-1"} and vpc["_stray"] == 1


def test_new_ids_carry_their_kinds_prefix() -> None:
    assert E.new_id(E.NAT_GATEWAY, bytes(9)).startswith("nat-")
    assert E.kind_of(E.new_id(E.ROUTE_TABLE, bytes(range(9)))) == E.ROUTE_TABLE


def test_not_found_as_ec2_words_it() -> None:
    err = E.not_found(E.SUBNET, "subnet-9")
    assert (err.code, err.message, err.status, err.sender_fault) == (
        "InvalidSubnetID.NotFound",
        "The subnet ID 'subnet-9' does not exist",
        400,
        True,
    )


@pytest.mark.parametrize(
    ("region", "name"),
    [
        pytest.param("us-east-1", "ip-10-0-0-4.ec2.internal", id="us-east-1"),
        pytest.param("eu-west-1", "ip-10-0-0-4.eu-west-1.compute.internal", id="other-region"),
    ],
)
def test_private_dns_name(region: str, name: str) -> None:
    assert E.private_dns_name(IPv4Address("10.0.0.4"), region) == name


def test_views_hide_bookkeeping() -> None:
    view = E.subnet_view(SUBNET, addresses_in_use=3)
    assert "_bookkeeping" not in view and view["AvailableIpAddressCount"] == 16 - 5 - 3
    rule = S.Rule(S.Direction.INGRESS, "tcp", 443, 443, cidr_v4=IPv4Network("0.0.0.0/0"))
    group = E.group_view({**GROUP, "_x": 1}, [rule], "000000000000")
    assert "_x" not in group
    assert group["IpPermissions"][0]["FromPort"] == 443 and group["IpPermissionsEgress"] == []


def test_rules_round_trip_through_json() -> None:
    rule = S.Rule(
        S.Direction.EGRESS, "-1", -1, -1, group_id="sg-2", group_owner="000000000000", description="peers"
    )
    assert E.rule_from_json(E.rule_to_json(rule)) == rule


def test_routes_round_trip_through_items() -> None:
    table: dict[str, Any] = {
        "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "State": "active"}]
    }
    routes = E.routes_of(table)
    E.set_routes(table, routes)
    assert E.routes_of(table) == routes


def test_an_interface_of_lambda_is_in_use_and_attached() -> None:
    spec = E.InterfaceSpec("AWS Lambda VPC ENI-fn", "lambda", requester_managed=True)
    eni = E.new_interface(
        "eni-1",
        SUBNET,
        [GROUP],
        IPv4Address("10.0.0.4"),
        spec,
        account="000000000000",
        region="us-east-1",
        now_ms=0,
        random=bytes(range(14)),
    )
    assert (eni["Status"], eni["InterfaceType"], eni["RequesterManaged"]) == ("in-use", "lambda", True)
    assert eni["MacAddress"] == "02:00:01:02:03:04"
    assert eni["Attachment"]["AttachmentId"] == "ela-attach-" + bytes(range(5, 14)).hex()[:17]
    assert eni["Attachment"]["AttachTime"] == "1970-01-01T00:00:00+00:00"
    assert eni["Groups"] == [{"GroupId": "sg-1", "GroupName": "fn"}]
    assert eni["PrivateDnsName"] == "ip-10-0-0-4.ec2.internal"
    assert (eni["SubnetId"], eni["VpcId"], eni["AvailabilityZoneId"]) == ("subnet-1", "vpc-1", "use1-az1")


def test_a_customer_interface_is_available() -> None:
    eni = E.new_interface(
        "eni-1",
        SUBNET,
        [],
        IPv4Address("10.0.0.4"),
        E.InterfaceSpec("mine", tags=({"Key": "k", "Value": "v"},)),
        account="000000000000",
        region="us-east-1",
        now_ms=0,
        random=bytes(14),
    )
    assert eni["Status"] == "available" and "Attachment" not in eni
    assert eni["TagSet"] == [{"Key": "k", "Value": "v"}]


def test_interface_checks() -> None:
    with pytest.raises(AwsError) as caught:
        E.check_interface_group(SUBNET, {**GROUP, "VpcId": "vpc-2"})
    assert codes(caught) == (
        "InvalidParameter",
        "Security group sg-1 and subnet subnet-1 belong to different networks.",
    )
    assert E.requested_private_ip(None) is None
    assert E.requested_private_ip("10.0.0.9") == IPv4Address("10.0.0.9")
    with pytest.raises(AwsError) as caught:
        E.requested_private_ip("10.0.0")
    assert codes(caught) == (
        "InvalidParameterValue",
        "Value (10.0.0) for parameter privateIpAddress is invalid. Invalid format.",
    )


def test_public_addresses_come_from_the_pool() -> None:
    pool = IPv4Network("203.0.113.0/30")  # two hosts: .1 and .2
    assert E.choose_public_address(pool, set(), None) == "203.0.113.1"
    assert E.choose_public_address(pool, {"203.0.113.1"}, None) == "203.0.113.2"
    assert E.choose_public_address(pool, set(), "203.0.113.2") == "203.0.113.2"
    with pytest.raises(AwsError) as caught:
        E.choose_public_address(pool, {"203.0.113.1", "203.0.113.2"}, None)
    assert codes(caught) == ("AddressLimitExceeded", "The maximum number of addresses has been reached.")
    for taken_or_outside in ("203.0.113.1", "203.0.113.0", "198.51.100.1"):
        with pytest.raises(AwsError) as caught:
            E.choose_public_address(pool, {"203.0.113.1"}, taken_or_outside)
        assert codes(caught) == ("InvalidAddress.NotFound", f"Address '{taken_or_outside}' not found.")
    with pytest.raises(AwsError) as caught:
        E.choose_public_address(pool, set(), "x")
    assert codes(caught) == ("InvalidParameterValue", "Invalid value 'x' for address")


def nat(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "NatGatewayId": "nat-1",
        "VpcId": "vpc-1",
        "State": state,
        "NatGatewayAddresses": [{"AllocationId": "eipalloc-1"}],
        **extra,
    }


def test_a_nat_gateway_becomes_available_once_due() -> None:
    pending = nat("pending", _due_ms=1000)
    assert E.advance_nat_gateway(pending, 999, lambda vpc: True) is E.NatStep.UNCHANGED
    assert pending["State"] == "pending"
    assert E.advance_nat_gateway(pending, 1000, lambda vpc: True) is E.NatStep.AVAILABLE
    assert pending["State"] == "available"
    assert pending["NatGatewayAddresses"][0]["Status"] == "succeeded"


def test_a_public_nat_gateway_without_internet_gateway_fails() -> None:
    asked: list[str] = []
    pending = nat("pending")
    step = E.advance_nat_gateway(pending, 5000, lambda vpc: asked.append(vpc) is not None)
    assert (step, asked) == (E.NatStep.FAILED, ["vpc-1"])
    assert (pending["State"], pending["FailureCode"], pending["FailureMessage"]) == (
        "failed",
        "Gateway.NotAttached",
        "Network vpc-1 has no Internet gateway attached",
    )
    assert (pending["_gone_ms"], pending["DeleteTime"]) == (5000, "1970-01-01T00:00:05+00:00")
    assert pending["NatGatewayAddresses"][0]["Status"] == "failed"
    # A private NAT gateway needs none.
    private = nat("pending", ConnectivityType="private")
    assert E.advance_nat_gateway(private, 0, lambda vpc: False) is E.NatStep.AVAILABLE


def test_a_recorded_failure_wins() -> None:
    pending = nat("pending", _failure=["Resource.AlreadyAssociated", "taken"])
    assert E.advance_nat_gateway(pending, 0, lambda vpc: True) is E.NatStep.FAILED
    assert (pending["FailureCode"], "_failure" in pending) == ("Resource.AlreadyAssociated", False)


def test_deleted_nat_gateways_are_kept_an_hour() -> None:
    deleting = nat("deleting", _due_ms=10)
    assert E.advance_nat_gateway(deleting, 10, lambda vpc: True) is E.NatStep.DELETED
    assert (deleting["State"], deleting["_gone_ms"]) == ("deleted", 10)
    assert (
        E.advance_nat_gateway(deleting, 10 + E.NAT_GATEWAY_RETENTION_MS, lambda vpc: True)
        is E.NatStep.UNCHANGED
    )
    assert (
        E.advance_nat_gateway(deleting, 11 + E.NAT_GATEWAY_RETENTION_MS, lambda vpc: True)
        is E.NatStep.EXPIRED
    )
    assert E.advance_nat_gateway(nat("available"), 10**12, lambda vpc: True) is E.NatStep.UNCHANGED


def test_an_elastic_ip_is_released_only_by_its_nat_gateway() -> None:
    eip = {
        "AllocationId": "eipalloc-1",
        "AssociationId": "a",
        "PrivateIpAddress": "10.0.0.5",
        "_nat": "nat-1",
    }
    assert not E.release_from_nat(dict(eip), "nat-2")
    assert E.release_from_nat(eip, "nat-1")
    assert eip == {"AllocationId": "eipalloc-1"}
