"""Unit tests for lamina.domain.nacls: entries and their checks, evaluation (rule-number order, first
match, stateless), and the nftables chains the router plan gets."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from lamina.domain import dataplane as dp
from lamina.domain import nacls as N
from lamina.errors import AwsError

VPC = "vpc-0a1b2c3d4e5f60718"
A, B = "subnet-aaaa", "subnet-bbbb"
IP = IPv4Address


def entry(number: int, egress: bool, action: str = "allow", **kw: Any) -> dict[str, Any]:
    return {
        "RuleNumber": number,
        "Egress": egress,
        "RuleAction": action,
        "Protocol": "-1",
        "CidrBlock": "0.0.0.0/0",
    } | kw


def acl(
    acl_id: str, entries: list[Any], subnets: tuple[str, ...] = (), default: bool = False
) -> dict[str, Any]:
    return {
        "NetworkAclId": acl_id,
        "VpcId": VPC,
        "IsDefault": default,
        "Entries": [*entries, *N.initial_entries(default=False)],
        "Associations": [
            {"NetworkAclAssociationId": f"aclassoc-{s}", "NetworkAclId": acl_id, "SubnetId": s}
            for s in subnets
        ],
    }


def compiled(*entries: dict[str, Any], egress: bool = False) -> tuple[N.Rule, ...]:
    return N.rules_of([N.entry_from_params(e) for e in entries], egress)


# -- entries -------------------------------------------------------------------------------------------


def test_initial_entries_as_ec2_lists_them() -> None:
    assert [(e["Egress"], e["RuleNumber"], e["RuleAction"]) for e in N.initial_entries(default=True)] == [
        (True, 100, "allow"),
        (True, 32767, "deny"),
        (False, 100, "allow"),
        (False, 32767, "deny"),
    ]
    assert [(e["Egress"], e["RuleNumber"]) for e in N.initial_entries(default=False)] == [
        (True, 32767),
        (False, 32767),
    ]


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("tcp", "6"),
        ("TCP", "6"),
        ("udp", "17"),
        ("icmp", "1"),
        ("all", "-1"),
        ("-1", "-1"),
        ("47", "47"),
        ("006", "6"),
    ],
)
def test_protocols_are_stored_as_numbers(protocol: str, expected: str) -> None:
    assert N.normalise_protocol(protocol) == expected


def test_entry_shapes_keep_only_what_means_something() -> None:
    tcp = N.entry_from_params(
        entry(5, False, Protocol="tcp", PortRange={"From": 1, "To": 2}, IcmpTypeCode={"Type": 1, "Code": 1})
    )
    assert tcp == {
        "CidrBlock": "0.0.0.0/0",
        "Egress": False,
        "PortRange": {"From": 1, "To": 2},
        "Protocol": "6",
        "RuleAction": "allow",
        "RuleNumber": 5,
    }
    everything = N.entry_from_params(entry(5, True, PortRange={"From": 1, "To": 2}, CidrBlock="10.1.2.3/8"))
    assert everything == {
        "CidrBlock": "10.0.0.0/8",
        "Egress": True,
        "Protocol": "-1",
        "RuleAction": "allow",
        "RuleNumber": 5,
    }
    v6 = N.entry_from_params({**entry(5, True), "CidrBlock": None, "Ipv6CidrBlock": "2001:db8::/32"})
    assert v6["Ipv6CidrBlock"] == "2001:db8::/32" and "CidrBlock" not in v6


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"RuleNumber": 0}, "InvalidParameterValue"),
        ({"RuleNumber": 32767}, "InvalidParameterValue"),
        ({"Protocol": "xyz"}, "InvalidParameterValue"),
        ({"Protocol": "6"}, "MissingParameter"),
        ({"Protocol": "17", "PortRange": {"From": 5}}, "MissingParameter"),
        ({"Protocol": "1"}, "MissingParameter"),
        ({"Protocol": "1", "IcmpTypeCode": {"Type": 300, "Code": 0}}, "InvalidParameterValue"),
        ({"CidrBlock": "nonsense"}, "InvalidParameterValue"),
        ({"CidrBlock": "::/0"}, "InvalidParameterValue"),
        ({"CidrBlock": None}, "MissingParameter"),
        ({"Ipv6CidrBlock": "::/0"}, "InvalidParameterCombination"),
    ],
    ids=lambda v: str(v),
)
def test_bad_entries(changes: dict[str, Any], code: str) -> None:
    with pytest.raises(AwsError) as caught:
        N.entry_from_params({k: v for k, v in (entry(10, True) | changes).items() if v is not None})
    assert caught.value.code == code


def test_add_replace_delete() -> None:
    entries = N.initial_entries(default=True)
    entries = N.add_entry(entries, N.entry_from_params(entry(50, False, "deny")))
    assert [(e["Egress"], e["RuleNumber"]) for e in entries] == [
        (True, 100),
        (True, 32767),
        (False, 50),
        (False, 100),
        (False, 32767),
    ]
    with pytest.raises(AwsError, match="identified by 50 already exists"):
        N.add_entry(entries, N.entry_from_params(entry(50, False)))
    entries = N.replace_entry(entries, N.entry_from_params(entry(50, False, "allow")))
    assert entries[2]["RuleAction"] == "allow"
    with pytest.raises(AwsError, match="no egress entry with number 50"):
        N.replace_entry(entries, N.entry_from_params(entry(50, True)))
    entries = N.delete_entry(entries, 50, False)
    assert entries == N.initial_entries(default=True)
    with pytest.raises(AwsError, match="no ingress entry with number 50"):
        N.delete_entry(entries, 50, False)


def test_the_limit_is_per_direction_and_ignores_the_star_rule() -> None:
    entries = N.initial_entries(default=False)
    for number in range(1, 4):
        entries = N.add_entry(entries, N.entry_from_params(entry(number, True)), limit=3)
    with pytest.raises(AwsError) as caught:
        N.add_entry(entries, N.entry_from_params(entry(9, True)), limit=3)
    assert caught.value.code == "NetworkAclEntryLimitExceeded"
    N.add_entry(entries, N.entry_from_params(entry(9, False)), limit=3)


# -- evaluation --------------------------------------------------------------------------------------------


def test_the_lowest_matching_rule_decides() -> None:
    ssh = {"Protocol": "6", "PortRange": {"From": 22, "To": 22}}
    rules = compiled(
        entry(200, False, "allow", **ssh), entry(100, False, "deny", **ssh, CidrBlock="10.0.1.0/24")
    )
    assert not N.allows(rules, "tcp", 22, IP("10.0.1.5"))  # rule 100 first
    assert N.allows(rules, "tcp", 22, IP("10.0.2.5"))  # 100 does not match, 200 does
    assert not N.allows(rules, "tcp", 23, IP("10.0.2.5"))  # nothing matches: the * rule
    assert not N.allows(rules, "udp", 22, IP("10.0.2.5"))


def test_icmp_type_and_code() -> None:
    rules = compiled(entry(1, False, "allow", Protocol="1", IcmpTypeCode={"Type": 8, "Code": -1}))
    assert N.allows(rules, "icmp", 8, IP("1.2.3.4"), icmp_code=0)
    assert not N.allows(rules, "icmp", 0, IP("1.2.3.4"), icmp_code=0)
    rules = compiled(entry(1, False, "allow", Protocol="1", IcmpTypeCode={"Type": 3, "Code": 4}))
    assert N.allows(rules, "icmp", 3, IP("1.2.3.4"), icmp_code=4)
    assert not N.allows(rules, "icmp", 3, IP("1.2.3.4"), icmp_code=1)
    rules = compiled(entry(1, False, "allow", Protocol="1", IcmpTypeCode={"Type": -1, "Code": -1}))
    assert N.allows(rules, "icmp", 11, IP("1.2.3.4"), icmp_code=0)


def test_ipv6_entries_match_nothing() -> None:
    rules = compiled({**entry(1, False, "allow"), "CidrBlock": None, "Ipv6CidrBlock": "::/0"})
    assert rules == ()


def plan(acls: list[dict[str, Any]]) -> dp.VpcPlan:
    return dp.plan_vpc(
        {"VpcId": VPC, "CidrBlock": "10.0.0.0/16"},
        [
            {"SubnetId": A, "VpcId": VPC, "CidrBlock": "10.0.1.0/24"},
            {"SubnetId": B, "VpcId": VPC, "CidrBlock": "10.0.2.0/24"},
            {"SubnetId": "subnet-empty", "VpcId": VPC, "CidrBlock": "10.0.3.0/24"},
        ],
        [{"GroupId": "sg-all", "VpcId": VPC, "IpPermissions": [], "IpPermissionsEgress": []}],
        [
            {
                "NetworkInterfaceId": "eni-fn",
                "VpcId": VPC,
                "SubnetId": A,
                "PrivateIpAddress": "10.0.1.10",
                "Groups": [{"GroupId": "sg-all"}],
            },
            {
                "NetworkInterfaceId": "eni-other",
                "VpcId": VPC,
                "SubnetId": A,
                "PrivateIpAddress": "10.0.1.11",
                "Groups": [{"GroupId": "sg-all"}],
            },
            {
                "NetworkInterfaceId": "eni-db",
                "VpcId": VPC,
                "SubnetId": B,
                "PrivateIpAddress": "10.0.2.10",
                "Groups": [{"GroupId": "sg-all"}],
            },
        ],
        [],
        network_acls=acls,
    )


def test_a_request_and_its_reply_are_judged_both_ways_at_both_boundaries() -> None:
    """fn (subnet a) connects to db (subnet b) on 6379 from ephemeral port 40000."""
    web = acl("acl-a", [], (A,), default=True)
    web["Entries"] = N.initial_entries(default=True)
    db_only = [
        entry(
            100, False, "allow", Protocol="6", PortRange={"From": 6379, "To": 6379}, CidrBlock="10.0.1.0/24"
        ),
        entry(
            100, True, "allow", Protocol="6", PortRange={"From": 6379, "To": 6379}, CidrBlock="10.0.1.0/24"
        ),
    ]
    rules = plan([web, acl("acl-b", db_only, (B,))]).acls
    assert rules is not None
    fn, db = (A, IP("10.0.1.10")), (B, IP("10.0.2.10"))
    assert rules.allows(fn, db, "tcp", 6379)  # the request
    assert not rules.allows(db, fn, "tcp", 40000)  # the reply: ephemeral ports not allowed out of b
    fixed = [*db_only, entry(110, True, "allow", Protocol="6", PortRange={"From": 1024, "To": 65535})]
    rules = plan([web, acl("acl-b", fixed, (B,))]).acls
    assert rules is not None and rules.allows(db, fn, "tcp", 40000)
    # Within one subnet nothing is judged, even by an ACL that allows nothing.
    closed = plan([acl("acl-a", [], (A,), default=True), acl("acl-b", fixed, (B,))]).acls
    assert closed is not None
    assert closed.allows(fn, (A, IP("10.0.1.11")), "tcp", 8080)
    assert not closed.allows(fn, db, "tcp", 6379)


def test_plan_holds_only_subnets_with_links_and_acls_in_use() -> None:
    default = acl("acl-default", [], (A, "subnet-empty"), default=True)
    unused = acl("acl-unused", [entry(1, True)])
    rules = plan([default, unused, acl("acl-b", [], (B,))]).acls
    assert rules is not None
    assert [s.subnet_id for s in rules.subnets] == [A, B]
    assert [a.acl_id for a in rules.acls] == ["acl-b", "acl-default"]
    assert rules.subnets[0].links == tuple(
        sorted((dp.router_link_name("eni-fn"), dp.router_link_name("eni-other")))
    )
    # A subnet without an association falls back to the VPC's default ACL.
    rules = plan([acl("acl-default", [], (), default=True)]).acls
    assert rules is not None and {s.acl_id for s in rules.subnets} == {"acl-default"}
    assert plan([]).acls is None


def test_rendered_chains_and_where_they_are_jumped_to() -> None:
    entries = [
        entry(10, False, "deny", Protocol="6", PortRange={"From": 6379, "To": 6379}, CidrBlock="10.0.1.0/24"),
        entry(20, False, "allow", Protocol="17", PortRange={"From": 1024, "To": 65535}),
        entry(30, False, "allow", Protocol="1", IcmpTypeCode={"Type": 8, "Code": 0}),
        entry(40, False, "allow", Protocol="47"),
        entry(10, True, "allow", Protocol="6", PortRange={"From": 0, "To": 65535}, CidrBlock="10.0.0.0/16"),
    ]
    built = plan(
        [acl("acl-a", [entry(100, True), entry(100, False)], (A,), default=True), acl("acl-b", entries, (B,))]
    )
    text = built.ruleset
    inbound = text.split("\tchain nacl_in_acl-b {\n", 1)[1].split("\t}\n", 1)[0]
    assert inbound.splitlines() == [
        "\t\tip saddr 10.0.1.0/24 tcp dport 6379 drop",
        "\t\tudp dport 1024-65535 return",
        "\t\ticmp type 8 icmp code 0 return",
        "\t\tmeta l4proto 47 return",
        "\t\tdrop",
    ]
    outbound = text.split("\tchain nacl_out_acl-b {\n", 1)[1].split("\t}\n", 1)[0]
    assert outbound.splitlines() == ["\t\tip daddr 10.0.0.0/16 meta l4proto tcp return", "\t\tdrop"]
    link_a = dp.router_link_name("eni-fn")
    assert f'"{link_a}" : jump nacl_from_{A}' in text and f'"{link_a}" : jump nacl_to_{A}' in text
    subnet_from = text.split(f"\tchain nacl_from_{B} {{\n", 1)[1].split("\t}\n", 1)[0]
    assert subnet_from.splitlines() == [
        f'\t\toifname {{ "{dp.router_link_name("eni-db")}" }} return',
        "\t\tgoto nacl_out_acl-b",
    ]
    # ACLs come before conntrack lets replies through (stateless) and before the security groups.
    forward = text.split("\tchain forward {\n", 1)[1]
    assert forward.index("jump nacl_from_") < forward.index("ct state established,related accept")
    assert forward.index("jump nacl_to_") < forward.index("jump egress_")


def test_without_acls_the_ruleset_is_as_before() -> None:
    assert "nacl_" not in plan([]).ruleset


def test_an_acl_change_is_not_mistaken_for_a_set_update() -> None:
    before = plan([acl("acl-a", [entry(1, True)], (A, B), default=True)])
    after = plan([acl("acl-a", [entry(1, True, "deny")], (A, B), default=True)])
    assert dp.set_updates(before.ruleset, after.ruleset) is None
    assert dp.set_updates(before.ruleset, before.ruleset) == ""


def test_odd_ids_cannot_become_chain_names() -> None:
    with pytest.raises(ValueError, match="cannot name an nftables object"):
        N.acl_chain("acl-x; flush ruleset", True)


def test_the_internet_side_is_judged_only_at_the_subnet_it_enters_or_leaves() -> None:
    web = [
        entry(100, False, "allow", Protocol="6", PortRange={"From": 443, "To": 443}),
        entry(
            110,
            False,
            "allow",
            Protocol="6",
            PortRange={"From": 1024, "To": 65535},
            CidrBlock="198.51.100.0/24",
        ),
        entry(100, True, "allow", Protocol="6", PortRange={"From": 1024, "To": 65535}),
    ]
    rules = plan([acl("acl-a", web, (A,), default=True), acl("acl-b", [], (B,))]).acls
    assert rules is not None
    internet, fn = (None, IP("203.0.113.9")), (A, IP("10.0.1.10"))
    assert rules.allows(internet, fn, "tcp", 443)
    assert not rules.allows(internet, fn, "tcp", 22)
    assert rules.allows(fn, internet, "tcp", 50000)  # the replies
    assert not rules.allows(fn, internet, "tcp", 443)  # fn's own connections out: not allowed
    assert rules.allows((None, IP("198.51.100.1")), fn, "tcp", 40000)
