"""lamina.domain.dns: the names a VPC's Amazon DNS server answers by itself, the DNS attributes,
DHCP option sets and what an environment's resolv.conf says."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from lamina.domain import dataplane as D
from lamina.domain import dns as N

A = IPv4Address
ON = N.VpcDnsAttributes(support=True, hostnames=True)


def zone(region: str = "us-east-1", attributes: N.VpcDnsAttributes = ON, **kw: object) -> N.Zone:
    return N.Zone.build(region, ["10.0.1.10", "10.0.2.20"], attributes, ["10.0.0.0/16"], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("region", "name"),
    [
        ("us-east-1", "ip-10-0-1-10.ec2.internal"),
        ("eu-west-1", "ip-10-0-1-10.eu-west-1.compute.internal"),
        ("ap-southeast-2", "ip-10-0-1-10.ap-southeast-2.compute.internal"),
    ],
    ids=["us-east-1", "eu-west-1", "ap-southeast-2"],
)
def test_private_names_by_region(region: str, name: str) -> None:
    assert N.private_dns_name("10.0.1.10", region) == name
    z = zone(region)
    assert z.lookup(name, "A") == N.Answer(N.Outcome.ANSWER, (A("10.0.1.10"),))
    assert z.lookup(name.upper() + ".", "A").addresses == (A("10.0.1.10"),)


def test_a_name_of_ours_without_an_interface_is_nxdomain() -> None:
    z = zone()
    assert z.lookup("ip-10-0-9-9.ec2.internal", "A").outcome is N.Outcome.NXDOMAIN
    assert z.lookup("www.ec2.internal", "A").outcome is N.Outcome.NXDOMAIN
    assert z.lookup("ip-010-0-1-10.ec2.internal", "A").outcome is N.Outcome.NXDOMAIN
    assert z.lookup("ip-10-0-1-300.ec2.internal", "A").outcome is N.Outcome.NXDOMAIN
    # Another region's private names are nobody's here, and never asked of the host's resolver.
    assert z.lookup("ip-10-0-1-10.eu-west-1.compute.internal", "A").outcome is N.Outcome.NXDOMAIN
    assert N.Zone(region="").lookup("ip-10-0-1-10.ec2.internal", "A").outcome is N.Outcome.NXDOMAIN


def test_other_types_of_an_existing_name_are_empty_answers() -> None:
    answer = zone().lookup("ip-10-0-1-10.ec2.internal", "AAAA")
    assert answer.outcome is N.Outcome.ANSWER and answer.addresses == ()


def test_reverse_names() -> None:
    z = zone()
    assert z.lookup("10.1.0.10.in-addr.arpa", "PTR").pointer == "ip-10-0-1-10.ec2.internal"
    assert z.lookup("99.9.0.10.in-addr.arpa.", "PTR").outcome is N.Outcome.NXDOMAIN
    # Outside the VPC's blocks: a private address is nobody's (the host's networks stay unknown),
    # a public one is the internet's.
    assert z.lookup("1.1.168.192.in-addr.arpa", "PTR").outcome is N.Outcome.NXDOMAIN
    assert z.lookup("1.0.20.172.in-addr.arpa", "PTR").outcome is N.Outcome.NXDOMAIN
    assert z.lookup("8.8.8.8.in-addr.arpa", "PTR").outcome is N.Outcome.FORWARD
    # A private range's zones (the host's split-horizon DNS would tell of its networks) end here
    # too; the public ones' do not.
    assert z.lookup("10.in-addr.arpa", "PTR").outcome is N.Outcome.NXDOMAIN
    assert z.lookup("x.1.1.168.192.in-addr.arpa", "PTR").outcome is N.Outcome.NXDOMAIN
    assert z.lookup("1.64.100.in-addr.arpa", "SOA").outcome is N.Outcome.NXDOMAIN
    assert z.lookup("d.f.ip6.arpa", "SOA").outcome is N.Outcome.NXDOMAIN
    assert z.lookup("192.in-addr.arpa", "SOA").outcome is N.Outcome.FORWARD
    assert z.lookup("0.6.8.4.1.0.0.2.ip6.arpa", "PTR").outcome is N.Outcome.FORWARD


def test_names_of_the_hosts_networks_are_not_forwarded() -> None:
    z = zone()
    for name in ("localhost", "_gateway", "myhost", "nas.lan", "printer.local", "x.internal", "r.home.arpa"):
        assert z.lookup(name, "A").outcome is N.Outcome.NXDOMAIN, name
    # A top-level domain's own records are the internet's.
    assert z.lookup("com", "NS").outcome is N.Outcome.FORWARD
    assert z.lookup("example.com", "A").outcome is N.Outcome.FORWARD
    assert z.lookup("localhost.example.com", "A").outcome is N.Outcome.FORWARD


@pytest.mark.parametrize(
    "attributes",
    [N.VpcDnsAttributes(support=True, hostnames=False), N.VpcDnsAttributes(support=False, hostnames=True)],
    ids=["hostnames-off", "support-off"],
)
def test_private_names_need_both_attributes(attributes: N.VpcDnsAttributes) -> None:
    z = zone(attributes=attributes)
    assert z.lookup("ip-10-0-1-10.ec2.internal", "A").outcome is N.Outcome.NXDOMAIN
    assert z.lookup("10.1.0.10.in-addr.arpa", "PTR").outcome is N.Outcome.NXDOMAIN
    assert z.lookup("example.com", "A").outcome is N.Outcome.FORWARD


def test_another_vpcs_interfaces_are_not_in_the_zone() -> None:
    other = N.Zone.build("us-east-1", ["10.0.1.11"], ON, ["10.0.0.0/16"])
    assert other.lookup("ip-10-0-1-10.ec2.internal", "A").outcome is N.Outcome.NXDOMAIN
    assert zone().lookup("ip-10-0-1-11.ec2.internal", "A").outcome is N.Outcome.NXDOMAIN


def test_extra_records_answer_first_and_wildcards() -> None:
    z = zone(
        extra={
            "lambda.us-east-1.amazonaws.com": ["10.0.1.50", "10.0.2.50"],
            "*.s3.us-east-1.amazonaws.com": ["10.0.1.60"],
            "ip-10-0-1-10.ec2.internal": ["10.0.1.99"],
        }
    )
    assert z.lookup("Lambda.us-east-1.amazonaws.com.", "A").addresses == (A("10.0.1.50"), A("10.0.2.50"))
    assert z.lookup("bucket.s3.us-east-1.amazonaws.com", "A").addresses == (A("10.0.1.60"),)
    assert z.lookup("a.b.s3.us-east-1.amazonaws.com", "A").outcome is N.Outcome.FORWARD
    assert z.lookup("lambda.us-east-1.amazonaws.com", "AAAA") == N.Answer(N.Outcome.ANSWER, ())
    assert z.lookup("ip-10-0-1-10.ec2.internal", "A").addresses == (A("10.0.1.99"),)


def test_public_names_are_forwarded() -> None:
    assert zone().lookup("example.com", "A").outcome is N.Outcome.FORWARD
    assert N.Zone(region="").lookup("example.com", "A").outcome is N.Outcome.FORWARD


def test_attributes_default_and_stored() -> None:
    assert N.VpcDnsAttributes.of({}) == N.VpcDnsAttributes(True, False, False)
    assert N.VpcDnsAttributes.of({"IsDefault": True}) == N.VpcDnsAttributes(True, True, False)
    stored = N.VpcDnsAttributes(False, True, True).stored()
    assert N.VpcDnsAttributes.of({N.ATTRIBUTES_KEY: stored}) == N.VpcDnsAttributes(False, True, True)


def test_resolver_address_is_the_primary_block_plus_two() -> None:
    assert N.resolver_address("10.0.0.0/16") == A("10.0.0.2")
    assert N.resolver_address(IPv4Network("172.31.0.0/16")) == A("172.31.0.2")


def test_resolv_conf_of_the_default_option_set() -> None:
    dhcp = N.DhcpSettings.of({"DhcpConfigurations": N.default_dhcp_configurations("us-east-1")})
    assert dhcp.amazon_dns
    assert N.vpc_resolv_conf(A("10.0.0.2"), dhcp) == (
        "search ec2.internal\noptions timeout:2 attempts:5\nnameserver 10.0.0.2\n"
    )


def test_resolv_conf_of_custom_servers_and_domains() -> None:
    options = {
        "DhcpConfigurations": [
            {"Key": "domain-name", "Values": [{"Value": "corp.example eu-west-1.compute.internal"}]},
            {
                "Key": "domain-name-servers",
                "Values": [{"Value": "192.0.2.53"}, {"Value": "AmazonProvidedDNS"}, {"Value": "192.0.2.54"}],
            },
        ]
    }
    text = N.vpc_resolv_conf(A("10.0.0.2"), N.DhcpSettings.of(options))
    assert text.splitlines() == [
        "search corp.example eu-west-1.compute.internal",
        "options timeout:2 attempts:5",
        "nameserver 192.0.2.53",
        "nameserver 10.0.0.2",
        "nameserver 192.0.2.54",
    ]


def test_no_option_set_hands_out_no_server() -> None:
    assert N.vpc_resolv_conf(A("10.0.0.2"), N.DhcpSettings.of(None)) == "options timeout:2 attempts:5\n"


def test_hosts_names_localhost_and_the_sandbox() -> None:
    lines = [line.split() for line in N.HOSTS.splitlines()]
    assert ["127.0.0.1", "sandbox.localdomain", "sandbox"] in lines
    assert lines[0][:2] == ["127.0.0.1", "localhost"]


def _plan(dns_support: bool) -> D.VpcPlan:
    vpc = {"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16"}
    subnet = {"SubnetId": "subnet-1", "VpcId": "vpc-1", "CidrBlock": "10.0.1.0/24"}
    eni = {
        "NetworkInterfaceId": "eni-1",
        "VpcId": "vpc-1",
        "SubnetId": "subnet-1",
        "PrivateIpAddress": "10.0.1.10",
        "Groups": [],
    }
    return D.plan_vpc(vpc, [subnet], [], [eni], [], dns_support=dns_support)


def test_the_router_lets_dns_in_only_with_dns_support() -> None:
    on, off = _plan(True), _plan(False)
    assert on.resolver == off.resolver == (A("10.0.0.2"), N.LINK_LOCAL_RESOLVER)
    rule = "ip daddr { 10.0.0.2, 169.254.169.253 } meta l4proto { tcp, udp } th dport 53 accept"
    assert rule in on.ruleset
    assert "dport 53" not in off.ruleset
    # Only from the VPC's own interfaces' addresses (the source check of the forward chain).
    assert "iifname . ip saddr @sources ip daddr" in on.ruleset


def test_the_regions_default_option_set() -> None:
    assert N.DhcpSettings.region_default("eu-west-1") == N.DhcpSettings(
        ("eu-west-1.compute.internal",), ("AmazonProvidedDNS",)
    )
