"""lamina's API as a VPC sees it (pure): service names and addresses, the S3 prefix list, what a
VPC's resolver answers, and a gateway endpoint in a VPC's data plane plan."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest
from test_dataplane import VPC, plan, rtb

from lamina.domain import endpoints as P
from lamina.domain.dataplane import RouteAction, RouterRoute
from lamina.domain.evaluation import Caller, Decision, PolicyType, PrincipalKind, endpoint_decision
from lamina.domain.policy import PolicyKind, normalise_context, parse_policy
from lamina.net import iproute

S3_ADDRESS = P.PUBLIC_S3_ADDRESS


def test_s3_has_its_own_address_and_the_others_share_one() -> None:
    assert P.PUBLIC_S3_ADDRESS != P.PUBLIC_API_ADDRESS
    assert {s.public_address for s in P.SERVICES if s.key != "s3"} == {P.PUBLIC_API_ADDRESS}
    assert all(a in IPv4Network("198.51.100.0/24") for a in P.PUBLIC_ADDRESSES)  # TEST-NET-2


@pytest.mark.parametrize(
    ("key", "name", "host"),
    [
        pytest.param(
            "lambda", "com.amazonaws.eu-west-1.lambda", "lambda.eu-west-1.amazonaws.com", id="lambda"
        ),
        pytest.param("s3", "com.amazonaws.eu-west-1.s3", "s3.eu-west-1.amazonaws.com", id="s3"),
        pytest.param("logs", "com.amazonaws.eu-west-1.logs", "logs.eu-west-1.amazonaws.com", id="logs"),
        pytest.param("iam", "com.amazonaws.iam", "iam.amazonaws.com", id="iam-global"),
    ],
)
def test_service_names(key: str, name: str, host: str) -> None:
    s = P.service(key)
    assert (s.service_name("eu-west-1"), s.host("eu-west-1")) == (name, host)
    assert P.service_by_name("eu-west-1", name) is s
    assert P.service_by_name("us-east-1", "com.amazonaws.us-east-1.dynamodb") is None


def test_prefix_list_is_stable_per_region_and_holds_s3s_address() -> None:
    assert P.prefix_list_id("us-east-1") == P.prefix_list_id("us-east-1")
    assert P.prefix_list_id("us-east-1") != P.prefix_list_id("us-west-2")
    assert P.prefix_list_id("us-east-1").startswith("pl-") and len(P.prefix_list_id("us-east-1")) == 11
    assert P.gateway_route_destinations("us-east-1") == {
        P.prefix_list_id("us-east-1"): (IPv4Network(S3_ADDRESS),)
    }


def test_dns_entries_name_the_endpoint_then_each_zone() -> None:
    names = P.dns_entries("vpce-0abc", P.service("sts"), "us-east-1", ["us-east-1b", "us-east-1a"])
    regional, *zonal = names
    assert regional.startswith("vpce-0abc-") and regional.endswith(".sts.us-east-1.vpce.amazonaws.com")
    assert [z.split(".")[0].rsplit("-", 3)[-3:] for z in zonal] == [
        ["us", "east", "1a"],
        ["us", "east", "1b"],
    ]


def _endpoint(eid: str, key: str, private_dns: bool, enis: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "VpcEndpointId": eid,
        "VpcEndpointType": "Interface",
        "ServiceName": f"com.amazonaws.us-east-1.{key}",
        "State": "available",
        "PrivateDnsEnabled": private_dns,
        "NetworkInterfaceIds": enis,
        "DnsEntries": [{"DnsName": f"{eid}-x.{key}.us-east-1.vpce.amazonaws.com"}],
        **extra,
    }


def test_resolver_answers_public_addresses_or_private_dns_endpoints() -> None:
    public = P.service_addresses("us-east-1")
    assert public["lambda.us-east-1.amazonaws.com"] == (P.PUBLIC_API_ADDRESS,)
    assert public["s3.us-east-1.amazonaws.com"] == (S3_ADDRESS,)
    assert public["*.s3.us-east-1.amazonaws.com"] == (S3_ADDRESS,)
    assert public["iam.amazonaws.com"] == (P.PUBLIC_API_ADDRESS,)

    interfaces = [
        {"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.1.20"},
        {"NetworkInterfaceId": "eni-2", "PrivateIpAddress": "10.0.2.20"},
        {"NetworkInterfaceId": "eni-3", "PrivateIpAddress": "10.0.1.30"},
    ]
    endpoints = [
        _endpoint("vpce-lam", "lambda", True, ["eni-2", "eni-1"]),
        _endpoint("vpce-sts", "sts", False, ["eni-3"]),
        _endpoint("vpce-gone", "logs", True, ["eni-9"], State="deleting"),
        {
            "VpcEndpointId": "vpce-gw",
            "VpcEndpointType": "Gateway",
            "ServiceName": "com.amazonaws.us-east-1.s3",
            "State": "available",
        },
    ]
    found = P.interface_endpoints(endpoints, interfaces, "us-east-1")
    assert [e.endpoint_id for e in found] == ["vpce-lam", "vpce-sts"]
    answers = P.service_addresses("us-east-1", found)
    lam = (IPv4Address("10.0.1.20"), IPv4Address("10.0.2.20"))
    assert answers["lambda.us-east-1.amazonaws.com"] == lam  # private DNS: the endpoint's addresses
    assert answers["vpce-lam-x.lambda.us-east-1.vpce.amazonaws.com"] == lam
    # Without private DNS the public name stays public; the endpoint's own name answers it.
    assert answers["sts.us-east-1.amazonaws.com"] == (P.PUBLIC_API_ADDRESS,)
    assert answers["vpce-sts-x.sts.us-east-1.vpce.amazonaws.com"] == (IPv4Address("10.0.1.30"),)
    assert answers["logs.us-east-1.amazonaws.com"] == (P.PUBLIC_API_ADDRESS,)  # not available: public
    assert answers["s3.us-east-1.amazonaws.com"] == (S3_ADDRESS,)  # a gateway endpoint changes no name


def test_certificate_covers_every_name_functions_use() -> None:
    names, addresses = P.certificate_names(["us-east-1"])
    for s in P.SERVICES:
        assert s.host("us-east-1") in names
    assert "*.s3.us-east-1.amazonaws.com" in names and "*.lambda.us-east-1.vpce.amazonaws.com" in names
    assert addresses == [str(a) for a in P.PUBLIC_ADDRESSES]


# -- a gateway endpoint in the data plane ---------------------------------------------------------


def _gateway(tables: list[str], state: str = "available", service: str = "s3") -> dict[str, Any]:
    return {
        "VpcEndpointId": "vpce-gw",
        "VpcEndpointType": "Gateway",
        "VpcId": VPC,
        "ServiceName": f"com.amazonaws.us-east-1.{service}",
        "State": state,
        "RouteTableIds": tables,
    }


def test_a_gateway_endpoint_delivers_s3s_address_to_the_router_for_its_tables_only() -> None:
    tables = [rtb("rtb-main", main=True), rtb("rtb-b", subnets=("subnet-b",))]
    p = plan(route_tables=tables, endpoints=[_gateway(["rtb-b"])])
    ours = [r for r in p.routes if r.action is RouteAction.ENDPOINT]
    numbers = {r.table for r in p.source_rules if r.subnet_id == "subnet-b"}
    assert ours == [RouterRoute(numbers.pop(), IPv4Network(S3_ADDRESS), RouteAction.ENDPOINT, "vpce-gw")]
    assert p.endpoint_addresses == (S3_ADDRESS,)
    assert iproute.route_line(ours[0]).startswith(f"route replace local {S3_ADDRESS}/32 dev lo ")
    # The router takes 443 on it only from interfaces, after their egress rules.
    assert f"ip daddr {{ {S3_ADDRESS} }} tcp dport 443 iifname . ip saddr @sources iifname vmap" in p.ruleset
    assert f"ip daddr {{ {S3_ADDRESS} }} tcp dport 443 iifname . ip saddr @sources accept" in p.ruleset


@pytest.mark.parametrize(
    "endpoint",
    [
        pytest.param(_gateway(["rtb-main"], state="deleting"), id="not-available"),
        pytest.param(_gateway(["rtb-other"]), id="table-not-in-use"),
        pytest.param({**_gateway(["rtb-main"]), "VpcId": "vpc-other"}, id="other-vpc"),
        pytest.param({**_gateway(["rtb-main"]), "VpcEndpointType": "Interface"}, id="interface"),
    ],
)
def test_gateway_endpoints_that_route_nothing(endpoint: dict[str, Any]) -> None:
    p = plan(endpoints=[endpoint])
    assert not [r for r in p.routes if r.action is RouteAction.ENDPOINT]
    assert p.endpoint_addresses == () and "tcp dport 443" not in p.ruleset


# -- endpoint policies ------------------------------------------------------------------------------

ROLE_SESSION = Caller(
    PrincipalKind.ROLE_SESSION,
    "000000000000",
    "arn:aws:sts::000000000000:assumed-role/r/s",
    "arn:aws:iam::000000000000:role/r",
)
ROOT = Caller(PrincipalKind.ROOT, "000000000000", "arn:aws:iam::000000000000:root")


def _decide(caller: Caller, action: str, resource: str, statements: list[dict[str, Any]]) -> Decision:
    doc = parse_policy(json.dumps({"Statement": statements}), PolicyKind.RESOURCE)
    return endpoint_decision(caller, action, resource, doc, normalise_context({"aws:SourceVpce": "vpce-1"}))


ALL = {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}


@pytest.mark.parametrize(
    ("statements", "caller", "allowed", "explicit"),
    [
        pytest.param([ALL], ROLE_SESSION, True, False, id="full-access"),
        pytest.param([ALL], ROOT, True, False, id="full-access-root"),
        pytest.param(
            [{"Effect": "Deny", "Principal": "*", "Action": "ec2:*", "Resource": "*"}],
            ROLE_SESSION,
            False,
            False,
            id="no-allow",
        ),
        pytest.param(
            [ALL, {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"}],
            ROOT,
            False,
            True,
            id="deny-wins-even-for-root",
        ),
        pytest.param(
            [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}],
            ROLE_SESSION,
            False,
            False,
            id="other-action",
        ),
        pytest.param(
            [{"Effect": "Allow", "Principal": {"AWS": "111111111111"}, "Action": "*", "Resource": "*"}],
            ROLE_SESSION,
            False,
            False,
            id="other-account-only",
        ),
        pytest.param(
            [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::000000000000:role/r"},
                    "Action": "*",
                    "Resource": "*",
                }
            ],
            ROLE_SESSION,
            True,
            False,
            id="the-role",
        ),
        pytest.param(
            [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-2"}},
                }
            ],
            ROLE_SESSION,
            False,
            False,
            id="condition-on-another-endpoint",
        ),
    ],
)
def test_endpoint_policy_decides_on_its_own(
    statements: list[dict[str, Any]], caller: Caller, allowed: bool, explicit: bool
) -> None:
    decision = _decide(caller, "s3:PutObject", "arn:aws:s3:::b/k", statements)
    assert (decision.allowed, decision.explicit) == (allowed, explicit)
    if not allowed:
        assert decision.denied_by is PolicyType.VPC_ENDPOINT
        reason = decision.reason("s3:PutObject")
        assert reason in (
            "with an explicit deny in a VPC endpoint policy",
            "because no VPC endpoint policy allows the s3:PutObject action",
        )


def test_origin_keys() -> None:
    assert P.EndpointOrigin("a", "r", "vpc-1", ("vpce-1",)).condition_keys() == {
        "aws:SourceVpc": "vpc-1",
        "aws:SourceVpce": "vpce-1",
    }
    assert P.EndpointOrigin("a", "r", "vpc-1", ("vpce-1", "vpce-2")).condition_keys() == {
        "aws:SourceVpc": "vpc-1"
    }
