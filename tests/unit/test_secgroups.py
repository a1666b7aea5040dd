"""Unit tests for lamina.domain.secgroups: IpPermissions in and out, limits, and what a rule allows."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from lamina.domain import secgroups as sg
from lamina.domain.secgroups import Direction, Rule
from lamina.errors import AwsError

IN = Direction.INGRESS
OUT = Direction.EGRESS
OWNER = "000000000000"
GROUP = "sg-0123456789abcdef0"
OTHER = "sg-0fedcba9876543210"


def perm(
    protocol: object,
    from_port: int | None = None,
    to_port: int | None = None,
    *,
    cidrs: list[str] | None = None,
    cidrs6: list[str] | None = None,
    groups: list[str] | None = None,
    description: str | None = None,
) -> dict[str, object]:
    p: dict[str, object] = {"IpProtocol": protocol}
    if from_port is not None:
        p["FromPort"] = from_port
    if to_port is not None:
        p["ToPort"] = to_port

    def with_description(entry: dict[str, object]) -> dict[str, object]:
        if description is not None:
            entry["Description"] = description
        return entry

    if cidrs is not None:
        p["IpRanges"] = [with_description({"CidrIp": c}) for c in cidrs]
    if cidrs6 is not None:
        p["Ipv6Ranges"] = [with_description({"CidrIpv6": c}) for c in cidrs6]
    if groups is not None:
        p["UserIdGroupPairs"] = [with_description({"GroupId": g}) for g in groups]
    return p


def one(direction: Direction, permission: Mapping[str, object]) -> Rule:
    rules = sg.expand_permissions(direction, [permission])
    assert len(rules) == 1
    return rules[0]


def tcp(port: int, cidr: str = "10.0.0.0/16", direction: Direction = IN) -> Rule:
    return Rule(direction, "tcp", port, port, cidr_v4=IPv4Network(cidr))


def aws_error(excinfo: pytest.ExceptionInfo[AwsError]) -> tuple[str, str]:
    assert excinfo.value.status == 400 and excinfo.value.sender_fault
    return excinfo.value.code, excinfo.value.message


# -- protocols ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        pytest.param("tcp", "tcp", id="tcp"),
        pytest.param("TCP", "tcp", id="upper-tcp"),
        pytest.param("udp", "udp", id="udp"),
        pytest.param("icmp", "icmp", id="icmp"),
        pytest.param("icmpv6", "icmpv6", id="icmpv6"),
        pytest.param("-1", "-1", id="all"),
        pytest.param(-1, "-1", id="all-int"),
        pytest.param("6", "tcp", id="6-is-tcp"),
        pytest.param("17", "udp", id="17-is-udp"),
        pytest.param("1", "icmp", id="1-is-icmp"),
        pytest.param("58", "icmpv6", id="58-is-icmpv6"),
        pytest.param("50", "50", id="esp-number"),
        pytest.param("050", "50", id="leading-zero"),
        pytest.param("0", "0", id="zero"),
        pytest.param("255", "255", id="max"),
    ],
)
def test_normalise_protocol(given: object, canonical: str) -> None:
    assert sg.normalise_protocol(given) == canonical


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("all", id="all-word"),
        pytest.param("256", id="too-big"),
        pytest.param("esp", id="esp-name"),
        pytest.param("-2", id="minus-two"),
        pytest.param("", id="empty"),
    ],
)
def test_unknown_protocol(given: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        sg.normalise_protocol(given)
    assert aws_error(excinfo) == (
        "InvalidParameterValue",
        f"Invalid value '{given}' for IP protocol. Unknown protocol.",
    )


# -- parsing IpPermissions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permission", "expected"),
    [
        pytest.param(
            perm("tcp", 22, 22, cidrs=["10.0.0.0/16"]),
            Rule(IN, "tcp", 22, 22, cidr_v4=IPv4Network("10.0.0.0/16")),
            id="tcp-22",
        ),
        pytest.param(
            perm("6", 80, 443, cidrs=["0.0.0.0/0"]),
            Rule(IN, "tcp", 80, 443, cidr_v4=IPv4Network("0.0.0.0/0")),
            id="protocol-number-6",
        ),
        pytest.param(
            perm("udp", 0, 65535, cidrs=["192.168.1.7/32"]),
            Rule(IN, "udp", 0, 65535, cidr_v4=IPv4Network("192.168.1.7/32")),
            id="udp-all-ports",
        ),
        pytest.param(
            perm("tcp", 22, 22, cidrs=["92.68.201.91/29"]),
            Rule(IN, "tcp", 22, 22, cidr_v4=IPv4Network("92.68.201.88/29")),
            id="cidr-canonicalised",
        ),
        pytest.param(
            perm("-1", cidrs=["0.0.0.0/0"]),
            Rule(IN, "-1", -1, -1, cidr_v4=IPv4Network("0.0.0.0/0")),
            id="all-no-ports",
        ),
        pytest.param(
            perm("-1", 22, 80, cidrs=["0.0.0.0/0"]),
            Rule(IN, "-1", -1, -1, cidr_v4=IPv4Network("0.0.0.0/0")),
            id="all-ports-ignored",
        ),
        pytest.param(
            perm("50", 1, 2, cidrs=["10.0.0.0/8"]),
            Rule(IN, "50", -1, -1, cidr_v4=IPv4Network("10.0.0.0/8")),
            id="numbered-protocol-ports-ignored",
        ),
        pytest.param(
            perm("icmp", -1, -1, cidrs=["0.0.0.0/0"]),
            Rule(IN, "icmp", -1, -1, cidr_v4=IPv4Network("0.0.0.0/0")),
            id="icmp-all",
        ),
        pytest.param(
            perm("icmp", 8, -1, cidrs=["0.0.0.0/0"]),
            Rule(IN, "icmp", 8, -1, cidr_v4=IPv4Network("0.0.0.0/0")),
            id="icmp-echo-any-code",
        ),
        pytest.param(
            perm("icmp", 3, 4, cidrs=["0.0.0.0/0"]),
            Rule(IN, "icmp", 3, 4, cidr_v4=IPv4Network("0.0.0.0/0")),
            id="icmp-frag-needed",
        ),
        pytest.param(
            perm("tcp", 5432, 5432, groups=[OTHER]),
            Rule(IN, "tcp", 5432, 5432, group_id=OTHER),
            id="group-peer",
        ),
        pytest.param(
            perm("-1", cidrs6=["::/0"]),
            Rule(IN, "-1", -1, -1, cidr_v6=IPv6Network("::/0")),
            id="ipv6-peer",
        ),
        pytest.param(
            perm("tcp", 443, 443, cidrs=["10.0.0.0/16"], description="https"),
            Rule(IN, "tcp", 443, 443, cidr_v4=IPv4Network("10.0.0.0/16"), description="https"),
            id="description",
        ),
    ],
)
def test_expand_one(permission: dict[str, object], expected: Rule) -> None:
    assert one(IN, permission) == expected


def test_expand_many_peers_and_permissions_in_order() -> None:
    rules = sg.expand_permissions(
        OUT,
        [
            perm("tcp", 443, 443, cidrs=["10.0.0.0/16", "10.1.0.0/16"], groups=[OTHER]),
            {
                **perm("udp", 53, 53, cidrs=["10.0.0.2/32"]),
                "UserIdGroupPairs": [{"GroupId": GROUP, "UserId": OWNER}],
            },
        ],
    )
    assert rules == (
        Rule(OUT, "tcp", 443, 443, cidr_v4=IPv4Network("10.0.0.0/16")),
        Rule(OUT, "tcp", 443, 443, cidr_v4=IPv4Network("10.1.0.0/16")),
        Rule(OUT, "tcp", 443, 443, group_id=OTHER),
        Rule(OUT, "udp", 53, 53, cidr_v4=IPv4Network("10.0.0.2/32")),
        Rule(OUT, "udp", 53, 53, group_id=GROUP, group_owner=OWNER),
    )


def test_permission_without_peers_adds_nothing() -> None:
    assert sg.expand_permissions(IN, [perm("tcp", 22, 22)]) == ()


@pytest.mark.parametrize(
    ("permission", "code", "message"),
    [
        pytest.param(
            perm("tcp", cidrs=["0.0.0.0/0"]),
            "InvalidParameterValue",
            "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.",
            id="tcp-no-ports",
        ),
        pytest.param(
            perm("udp", 53, cidrs=["0.0.0.0/0"]),
            "InvalidParameterValue",
            "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.",
            id="udp-no-to-port",
        ),
        pytest.param(
            perm("tcp", -1, 80, cidrs=["0.0.0.0/0"]),
            "InvalidParameterValue",
            "TCP/UDP (from) port (-1) out of range",
            id="tcp-from-minus-one",
        ),
        pytest.param(
            perm("tcp", 80, 70000, cidrs=["0.0.0.0/0"]),
            "InvalidParameterValue",
            "TCP/UDP (to) port (70000) out of range",
            id="tcp-to-too-big",
        ),
        pytest.param(
            perm("tcp", 80, 70, cidrs=["0.0.0.0/0"]),
            "InvalidParameterValue",
            "Invalid TCP/UDP port range (80 > 70)",
            id="tcp-reversed",
        ),
        pytest.param(
            perm("icmp", cidrs=["0.0.0.0/0"]),
            "InvalidParameterValue",
            "Invalid value 'Must specify both from and to ports with ICMP.' for portRange.",
            id="icmp-no-type-code",
        ),
        pytest.param(
            perm("icmp", 256, 0, cidrs=["0.0.0.0/0"]),
            "InvalidParameterValue",
            "ICMP type (256) out of range",
            id="icmp-type-too-big",
        ),
        pytest.param(
            perm("icmp", 0, 65535, cidrs=["0.0.0.0/0"]),
            "InvalidParameterValue",
            "ICMP code (65535) out of range",
            id="icmp-code-too-big",
        ),
        pytest.param(
            perm("icmp", -1, 0, cidrs=["0.0.0.0/0"]),
            "InvalidParameterValue",
            "ICMP code (0) out of range",
            id="icmp-all-types-one-code",
        ),
        pytest.param(
            perm("tcp", 22, 22, cidrs=["10.0.0.0/33"]),
            "InvalidParameterValue",
            "CIDR block 10.0.0.0/33 is malformed",
            id="cidr-33",
        ),
        pytest.param(
            perm("tcp", 22, 22, cidrs=["10.0.0.1"]),
            "InvalidParameterValue",
            "CIDR block 10.0.0.1 is malformed",
            id="cidr-no-prefix",
        ),
        pytest.param(
            perm("tcp", 443, 443, cidrs=["::/0"]),
            "InvalidParameterValue",
            "CIDR block ::/0 is malformed",
            id="ipv6-in-ipranges",
        ),
        pytest.param(
            perm("tcp", 443, 443, cidrs6=["0.0.0.0/0"]),
            "InvalidParameterValue",
            "CIDR block 0.0.0.0/0 is malformed",
            id="ipv4-in-ipv6ranges",
        ),
        pytest.param(
            perm("tcp", 443, 443, cidrs6=["2001:db8::/129"]),
            "InvalidParameterValue",
            "CIDR block 2001:db8::/129 is malformed",
            id="ipv6-129",
        ),
        pytest.param(
            perm("tcp", 22, 22, cidrs=["10.0.0.0/16", "10.0.0.0/16"]),
            "InvalidParameterValue",
            "The same permission must not appear multiple times",
            id="same-cidr-twice",
        ),
        pytest.param(
            perm("tcp", 22, 22, cidrs=["10.0.0.0/16", "10.0.0.1/16"]),
            "InvalidParameterValue",
            "The same permission must not appear multiple times",
            id="same-after-canonicalising",
        ),
        pytest.param(
            {**perm("tcp", 22, 22), "PrefixListIds": [{"PrefixListId": "pl-0123"}]},
            "InvalidPrefixListID.NotFound",
            "The prefix list ID 'pl-0123' does not exist",
            id="prefix-list",
        ),
        pytest.param(
            {**perm("tcp", 22, 22), "UserIdGroupPairs": [{"GroupName": "web"}]},
            "MissingParameter",
            "The request must contain the parameter groupId",
            id="group-by-name",
        ),
        pytest.param(
            {"FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            "MissingParameter",
            "The request must contain the parameter ipProtocol",
            id="no-protocol",
        ),
    ],
)
def test_expand_refuses(permission: dict[str, object], code: str, message: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        sg.expand_permissions(IN, [permission])
    assert aws_error(excinfo) == (code, message)


def test_same_permission_across_two_ippermissions_is_refused() -> None:
    with pytest.raises(AwsError, match="The same permission must not appear multiple times"):
        sg.expand_permissions(
            IN, [perm("tcp", 22, 22, cidrs=["0.0.0.0/0"]), perm("6", 22, 22, cidrs=["0.0.0.0/0"])]
        )


@pytest.mark.parametrize(
    "permission",
    [
        pytest.param({"IpProtocol": "tcp", "FromPort": "22", "ToPort": 22}, id="port-as-str"),
        pytest.param({"IpProtocol": "tcp", "FromPort": True, "ToPort": 22}, id="port-as-bool"),
        pytest.param(
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": "0.0.0.0/0"}, id="ranges-str"
        ),
        pytest.param(
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": 1}]}, id="cidr-int"
        ),
    ],
)
def test_misshapen_input_is_a_programming_error(permission: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        sg.expand_permissions(IN, [permission])


def test_rule_needs_exactly_one_peer() -> None:
    with pytest.raises(ValueError, match="exactly one peer"):
        Rule(IN, "tcp", 22, 22)
    with pytest.raises(ValueError, match="exactly one peer"):
        Rule(IN, "tcp", 22, 22, cidr_v4=IPv4Network("10.0.0.0/8"), group_id=GROUP)


# -- duplicates, limits and revoke ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        pytest.param(
            tcp(22),
            'the specified rule "peer: 10.0.0.0/16, TCP, from port: 22, to port: 22, ALLOW" already exists',
            id="tcp-cidr",
        ),
        pytest.param(
            Rule(IN, "udp", 0, 65535, group_id="sg-1b20b867"),
            'the specified rule "peer: sg-1b20b867, UDP, from port: 0, to port: 65535, ALLOW" already exists',
            id="udp-group",
        ),
        pytest.param(
            Rule(OUT, "-1", -1, -1, cidr_v4=IPv4Network("0.0.0.0/0")),
            'the specified rule "peer: 0.0.0.0/0, ALL, ALLOW" already exists',
            id="all-cidr",
        ),
        pytest.param(
            Rule(IN, "-1", -1, -1, group_id=GROUP),
            f'the specified rule "peer: {GROUP}, ALL, ALLOW" already exists',
            id="all-group",
        ),
        pytest.param(
            Rule(IN, "icmp", -1, -1, cidr_v4=IPv4Network("0.0.0.0/0")),
            'the specified rule "peer: 0.0.0.0/0, ICMP, type: ALL, code: ALL, ALLOW" already exists',
            id="icmp-all",
        ),
        pytest.param(
            Rule(IN, "icmp", 8, 0, cidr_v4=IPv4Network("0.0.0.0/0")),
            'the specified rule "peer: 0.0.0.0/0, ICMP, type: 8, code: 0, ALLOW" already exists',
            id="icmp-echo",
        ),
        pytest.param(
            Rule(IN, "tcp", 443, 443, cidr_v6=IPv6Network("::/0")),
            'the specified rule "peer: ::/0, TCP, from port: 443, to port: 443, ALLOW" already exists',
            id="ipv6",
        ),
        pytest.param(
            Rule(IN, "50", -1, -1, cidr_v4=IPv4Network("10.0.0.0/8")),
            'the specified rule "peer: 10.0.0.0/8, 50, ALLOW" already exists',
            id="numbered-protocol",
        ),
    ],
)
def test_duplicate_message(rule: Rule, message: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        sg.authorize([rule], [rule])
    assert aws_error(excinfo) == ("InvalidPermission.Duplicate", message)


def test_description_does_not_make_a_rule_new() -> None:
    existing = [tcp(22)]
    again = Rule(IN, "tcp", 22, 22, cidr_v4=IPv4Network("10.0.0.0/16"), description="ssh")
    with pytest.raises(AwsError, match="InvalidPermission.Duplicate|already exists"):
        sg.authorize(existing, [again])


def test_default_egress_cannot_be_authorized_again() -> None:
    new = sg.expand_permissions(OUT, [perm("-1", cidrs=["0.0.0.0/0"])])
    with pytest.raises(AwsError) as excinfo:
        sg.authorize(sg.new_group_rules(), new)
    assert aws_error(excinfo) == (
        "InvalidPermission.Duplicate",
        'the specified rule "peer: 0.0.0.0/0, ALL, ALLOW" already exists',
    )


@pytest.mark.parametrize(
    "new",
    [
        pytest.param(tcp(22, direction=OUT), id="other-direction"),
        pytest.param(tcp(23), id="other-port"),
        pytest.param(tcp(22, "10.1.0.0/16"), id="other-cidr"),
        pytest.param(Rule(IN, "udp", 22, 22, cidr_v4=IPv4Network("10.0.0.0/16")), id="other-protocol"),
        pytest.param(Rule(IN, "tcp", 22, 22, group_id=GROUP), id="group-peer"),
        pytest.param(Rule(IN, "tcp", 22, 23, cidr_v4=IPv4Network("10.0.0.0/16")), id="wider-range"),
    ],
)
def test_distinct_rules_are_added(new: Rule) -> None:
    assert sg.authorize([tcp(22)], [new]) == (new,)


def test_duplicate_check_is_all_or_nothing() -> None:
    with pytest.raises(AwsError, match="from port: 22"):
        sg.authorize([tcp(22)], [tcp(80), tcp(22)])


def test_sixty_inbound_rules_then_the_limit() -> None:
    rules: list[Rule] = []
    for port in range(1, 61):
        rules.extend(sg.authorize(rules, [tcp(port)]))
    assert len(rules) == 60
    with pytest.raises(AwsError) as excinfo:
        sg.authorize(rules, [tcp(61)])
    assert aws_error(excinfo) == (
        "RulesPerSecurityGroupLimitExceeded",
        "The maximum number of rules per security group has been reached.",
    )
    # The outbound allowance is separate.
    assert sg.authorize([*rules, sg.default_egress()], [tcp(1, direction=OUT)]) == (tcp(1, direction=OUT),)


def test_limit_counts_the_whole_request() -> None:
    existing = [tcp(p) for p in range(1, 59)]
    with pytest.raises(AwsError, match="maximum number of rules"):
        sg.authorize(existing, [tcp(100), tcp(101), tcp(102)])
    assert len(sg.authorize(existing, [tcp(100), tcp(101)])) == 2


def test_ipv4_and_ipv6_rules_are_counted_separately() -> None:
    v4 = [tcp(p) for p in range(1, 61)]
    v6 = Rule(IN, "tcp", 1, 1, cidr_v6=IPv6Network("::/0"))
    assert sg.authorize(v4, [v6]) == (v6,)


def test_group_rules_count_towards_both_families() -> None:
    v6 = [Rule(IN, "tcp", p, p, cidr_v6=IPv6Network("::/0")) for p in range(1, 61)]
    with pytest.raises(AwsError, match="maximum number of rules"):
        sg.authorize(v6, [Rule(IN, "tcp", 1, 1, group_id=GROUP)])


def test_limit_is_configurable() -> None:
    with pytest.raises(AwsError, match="maximum number of rules"):
        sg.authorize([tcp(1)], [tcp(2)], limit=1)


def test_revoke_removes_matching_rules_ignoring_description() -> None:
    described = Rule(IN, "tcp", 22, 22, cidr_v4=IPv4Network("10.0.0.0/16"), description="ssh")
    existing = [described, tcp(80), tcp(443)]
    revocation = sg.revoke(existing, sg.expand_permissions(IN, [perm("6", 22, 22, cidrs=["10.0.0.0/16"])]))
    assert revocation.removed == (described,)
    assert revocation.remaining == (tcp(80), tcp(443))


@pytest.mark.parametrize(
    "missing",
    [
        pytest.param(tcp(23), id="other-port"),
        pytest.param(tcp(22, direction=OUT), id="other-direction"),
        pytest.param(Rule(IN, "tcp", 0, 65535, cidr_v4=IPv4Network("10.0.0.0/16")), id="covering-range"),
    ],
)
def test_revoke_unknown_rule(missing: Rule) -> None:
    with pytest.raises(AwsError) as excinfo:
        sg.revoke([tcp(22), tcp(80)], [tcp(80), missing])
    assert aws_error(excinfo) == (
        "InvalidPermission.NotFound",
        "The specified rule does not exist in this security group.",
    )


@pytest.mark.parametrize(
    ("groups", "ok"),
    [
        pytest.param([], True, id="none"),
        pytest.param([f"sg-{i}" for i in range(5)], True, id="five"),
        pytest.param([*(f"sg-{i}" for i in range(5)), "sg-0"], True, id="five-distinct-one-repeated"),
        pytest.param([f"sg-{i}" for i in range(6)], False, id="six"),
    ],
)
def test_groups_per_interface(groups: list[str], ok: bool) -> None:
    if ok:
        sg.check_groups_per_interface(groups)
        return
    with pytest.raises(AwsError) as excinfo:
        sg.check_groups_per_interface(groups)
    assert excinfo.value.code == "SecurityGroupsPerInterfaceLimitExceeded"


# -- defaults -------------------------------------------------------------------------------------


def test_new_group_rules() -> None:
    assert sg.new_group_rules() == (Rule(OUT, "-1", -1, -1, cidr_v4=IPv4Network("0.0.0.0/0")),)


def test_default_group_rules() -> None:
    assert sg.default_group_rules(GROUP, OWNER) == (
        Rule(IN, "-1", -1, -1, group_id=GROUP, group_owner=OWNER),
        Rule(OUT, "-1", -1, -1, cidr_v4=IPv4Network("0.0.0.0/0")),
    )


# -- rendering ----------------------------------------------------------------------------------


def test_default_group_renders_as_ec2_describes_it() -> None:
    rules = sg.default_group_rules(GROUP, OWNER)
    assert sg.to_ip_permissions(rules, IN, owner_id=OWNER) == [
        {
            "IpProtocol": "-1",
            "IpRanges": [],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [{"GroupId": GROUP, "UserId": OWNER}],
        }
    ]
    assert sg.to_ip_permissions(rules, OUT, owner_id=OWNER) == [
        {
            "IpProtocol": "-1",
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        }
    ]


def test_rules_with_same_protocol_and_ports_are_grouped() -> None:
    rules = sg.expand_permissions(
        IN,
        [
            perm("tcp", 22, 22, cidrs=["10.0.0.0/16"], description="office"),
            perm("tcp", 443, 443, cidrs=["0.0.0.0/0"]),
            perm("icmp", 8, -1, cidrs=["10.0.0.0/8"]),
            perm("tcp", 22, 22, cidrs=["10.9.0.0/16"], groups=[OTHER], cidrs6=["2001:db8::/32"]),
            perm("udp", 22, 22, cidrs=["10.0.0.0/16"]),
            perm("50", cidrs=["10.0.0.0/8"]),
        ],
    )
    rendered = sg.to_ip_permissions(list(rules) + [sg.default_egress()], IN, owner_id=OWNER)
    assert rendered == [
        {
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "office"}, {"CidrIp": "10.9.0.0/16"}],
            "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}],
            "PrefixListIds": [],
            "UserIdGroupPairs": [{"GroupId": OTHER, "UserId": OWNER}],
        },
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        },
        {
            "IpProtocol": "icmp",
            "FromPort": 8,
            "ToPort": -1,
            "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        },
        {
            "IpProtocol": "udp",
            "FromPort": 22,
            "ToPort": 22,
            "IpRanges": [{"CidrIp": "10.0.0.0/16"}],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        },
        {
            "IpProtocol": "50",
            "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        },
    ]


def test_rendering_round_trips_through_expand() -> None:
    original = sg.expand_permissions(
        IN,
        [
            perm("tcp", 22, 22, cidrs=["10.0.0.0/16", "10.1.0.0/16"], description="ssh"),
            perm("-1", groups=[GROUP]),
            perm("icmp", 3, 4, cidrs=["0.0.0.0/0"]),
        ],
    )
    rendered = sg.to_ip_permissions(original, IN, owner_id=OWNER)
    again = sg.expand_permissions(IN, [dict(p) for p in rendered])
    assert {r.key for r in again} == {r.key for r in original}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param(
            Rule(IN, "tcp", 22, 22, cidr_v4=IPv4Network("10.0.0.0/16"), description="ssh"),
            {
                "CidrIpv4": "10.0.0.0/16",
                "Description": "ssh",
                "IsEgress": False,
                "FromPort": 22,
                "ToPort": 22,
            },
            id="cidr-v4",
        ),
        pytest.param(
            Rule(OUT, "-1", -1, -1, cidr_v4=IPv4Network("0.0.0.0/0")),
            {"CidrIpv4": "0.0.0.0/0", "IsEgress": True, "FromPort": -1, "ToPort": -1, "IpProtocol": "-1"},
            id="all-egress",
        ),
        pytest.param(
            Rule(IN, "-1", -1, -1, cidr_v6=IPv6Network("::/0")),
            {"CidrIpv6": "::/0", "IsEgress": False},
            id="cidr-v6",
        ),
        pytest.param(
            Rule(IN, "-1", -1, -1, group_id=OTHER),
            {"ReferencedGroupInfo": {"GroupId": OTHER, "UserId": OWNER}},
            id="group-owner-defaulted",
        ),
        pytest.param(
            Rule(IN, "tcp", 1, 2, group_id=OTHER, group_owner="111122223333"),
            {"ReferencedGroupInfo": {"GroupId": OTHER, "UserId": "111122223333"}},
            id="group-other-account",
        ),
    ],
)
def test_security_group_rule_item(rule: Rule, expected: dict[str, object]) -> None:
    item = sg.to_rule_item("sgr-0123456789abcdef0", rule, group_id=GROUP, owner_id=OWNER)
    assert item["SecurityGroupRuleId"] == "sgr-0123456789abcdef0"
    assert item["GroupId"] == GROUP
    assert item["GroupOwnerId"] == OWNER
    assert item["Tags"] == []
    assert item["IpProtocol"] == rule.protocol
    for key, value in expected.items():
        assert item[key] == value  # type: ignore[literal-required]
    peers = {"CidrIpv4", "CidrIpv6", "ReferencedGroupInfo"} & item.keys()
    assert len(peers) == 1
    assert ("Description" in item) is (rule.description is not None)


# -- what the rules allow -------------------------------------------------------------------------

WEB = (
    Rule(IN, "tcp", 80, 80, cidr_v4=IPv4Network("0.0.0.0/0")),
    Rule(IN, "tcp", 8000, 8999, cidr_v4=IPv4Network("10.0.0.0/16")),
    Rule(IN, "tcp", 5432, 5432, group_id=OTHER),
    Rule(IN, "udp", 53, 53, cidr_v4=IPv4Network("10.0.0.2/32")),
    Rule(IN, "icmp", 8, -1, cidr_v4=IPv4Network("10.0.0.0/16")),
    Rule(IN, "icmp", 3, 4, cidr_v4=IPv4Network("0.0.0.0/0")),
    Rule(IN, "tcp", 443, 443, cidr_v6=IPv6Network("2001:db8::/32")),
    Rule(OUT, "-1", -1, -1, cidr_v4=IPv4Network("0.0.0.0/0")),
)
V4 = IPv4Address


@pytest.mark.parametrize(
    ("direction", "protocol", "port", "peer", "groups", "code", "expected"),
    [
        pytest.param(IN, "tcp", 80, V4("203.0.113.9"), (), None, True, id="http-from-anywhere"),
        pytest.param(IN, "tcp", 81, V4("203.0.113.9"), (), None, False, id="port-81-closed"),
        pytest.param(IN, "udp", 80, V4("203.0.113.9"), (), None, False, id="udp-80-closed"),
        pytest.param(IN, "tcp", 8000, V4("10.0.3.4"), (), None, True, id="range-low-end"),
        pytest.param(IN, "tcp", 8999, V4("10.0.3.4"), (), None, True, id="range-high-end"),
        pytest.param(IN, "tcp", 9000, V4("10.0.3.4"), (), None, False, id="range-past-end"),
        pytest.param(IN, "tcp", 8500, V4("10.1.3.4"), (), None, False, id="range-wrong-source"),
        pytest.param(IN, "tcp", 5432, V4("10.0.9.9"), (OTHER,), None, True, id="group-member"),
        pytest.param(IN, "tcp", 5432, V4("10.0.9.9"), (GROUP,), None, False, id="not-group-member"),
        pytest.param(IN, "tcp", 5432, V4("10.0.9.9"), (), None, False, id="no-groups"),
        pytest.param(IN, "6", 5432, V4("10.0.9.9"), (OTHER,), None, True, id="protocol-number"),
        pytest.param(IN, "udp", 53, V4("10.0.0.2"), (), None, True, id="dns-from-resolver"),
        pytest.param(IN, "udp", 53, V4("10.0.0.3"), (), None, False, id="dns-from-elsewhere"),
        pytest.param(IN, "icmp", 8, V4("10.0.0.9"), (), 0, True, id="ping-in-vpc"),
        pytest.param(IN, "icmp", 8, V4("8.8.8.8"), (), 0, False, id="ping-from-outside"),
        pytest.param(IN, "icmp", 3, V4("8.8.8.8"), (), 4, True, id="frag-needed"),
        pytest.param(IN, "icmp", 3, V4("8.8.8.8"), (), 3, False, id="port-unreachable"),
        pytest.param(IN, "tcp", 443, IPv6Address("2001:db8::1"), (), None, True, id="ipv6-peer"),
        pytest.param(IN, "tcp", 443, V4("10.0.0.9"), (), None, False, id="ipv6-rule-not-ipv4"),
        pytest.param(IN, "tcp", 80, IPv6Address("2001:db8::1"), (), None, False, id="ipv4-rule-not-ipv6"),
        pytest.param(OUT, "tcp", 25, V4("198.51.100.1"), (), None, True, id="egress-all"),
        pytest.param(OUT, "47", None, V4("198.51.100.1"), (), None, True, id="egress-gre"),
        pytest.param(IN, "47", None, V4("10.0.0.9"), (), None, False, id="ingress-gre-closed"),
    ],
)
def test_allowed(
    direction: Direction,
    protocol: str,
    port: int | None,
    peer: IPv4Address | IPv6Address,
    groups: tuple[str, ...],
    code: int | None,
    expected: bool,
) -> None:
    assert sg.allowed(WEB, direction, protocol, port, peer, groups, icmp_code=code) is expected


def test_nothing_allowed_without_rules() -> None:
    assert not sg.allowed([], IN, "tcp", 22, V4("10.0.0.1"))


def test_new_group_allows_no_inbound_and_all_outbound() -> None:
    rules = sg.new_group_rules()
    assert not sg.allowed(rules, IN, "tcp", 22, V4("10.0.0.1"))
    assert sg.allowed(rules, OUT, "udp", 123, V4("192.0.2.1"))


def test_default_group_allows_its_own_members_only() -> None:
    rules = sg.default_group_rules(GROUP, OWNER)
    assert sg.allowed(rules, IN, "tcp", 22, V4("10.0.0.5"), [GROUP])
    assert sg.allowed(rules, IN, "icmp", 8, V4("10.0.0.5"), [OTHER, GROUP], icmp_code=0)
    assert not sg.allowed(rules, IN, "tcp", 22, V4("10.0.0.5"), [OTHER])


def test_rules_of_several_groups_are_unioned() -> None:
    ssh = [tcp(22)]
    web = [Rule(IN, "tcp", 80, 80, cidr_v4=IPv4Network("0.0.0.0/0"))]
    union = [*ssh, *web]
    assert sg.allowed(union, IN, "tcp", 22, V4("10.0.0.1"))
    assert sg.allowed(union, IN, "tcp", 80, V4("192.0.2.1"))
    assert not sg.allowed(union, IN, "tcp", 22, V4("192.0.2.1"))
