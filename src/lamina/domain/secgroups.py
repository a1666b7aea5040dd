"""The security group rule model, as EC2 has it (pure).

Facts about EC2 security groups this module encodes (VPC User Guide "Security group rules",
AuthorizeSecurityGroupIngress/Egress and DescribeSecurityGroupRules API reference):

- Allow rules only; a group's rules are unioned, and so are the groups of one interface.
- A rule is (direction, protocol, port range, one peer). A peer is an IPv4 CIDR, an IPv6 CIDR
  or a security group (= the private addresses of its members). An ``IpPermission`` on the wire
  bundles one protocol/port range with many peers; EC2 stores one rule per peer and groups them
  back when it describes the group.
- Protocol: ``tcp``, ``udp``, ``icmp``, ``icmpv6``, or an IANA number 0-255; ``6``/``17``/``1``/``58``
  are stored as their names. ``-1`` is every protocol; ``all`` is refused. For ``-1`` and numbered
  protocols other than those four, ports do not apply and are stored as -1.
- tcp/udp ports are 0-65535 with from <= to; for ICMP FromPort is the type and ToPort the code,
  each -1..255, -1 meaning all (all types implies all codes).
- Descriptions play no part in identity: authorizing a rule that differs only in its description
  is a duplicate; revoking matches without it.
- 60 inbound and 60 outbound rules per group, counted separately for IPv4 and IPv6; a rule whose
  peer is a group counts towards both. At most 5 groups per network interface.
- A new group has one outbound rule allowing everything to 0.0.0.0/0 and no inbound rule; a VPC's
  ``default`` group also allows all inbound traffic from itself.

Messages are EC2's, as seen in real responses, e.g.
``the specified rule "peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW" already exists``,
``the specified rule "peer: sg-1, ALL, ALLOW" already exists``,
``the specified rule "peer: 0.0.0.0/0, ICMP, type: ALL, code: ALL, ALLOW" already exists``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from lamina.domain.ec2_models import (
    IpPermission,
    IpRange,
    Ipv6Range,
    ReferencedSecurityGroup,
    SecurityGroupRule,
    UserIdGroupPair,
)
from lamina.errors import AwsError

RULES_PER_DIRECTION = 60
GROUPS_PER_INTERFACE = 5

ALL = "-1"
TCP = "tcp"
UDP = "udp"
ICMP = "icmp"
ICMPV6 = "icmpv6"
_NAMED = {"6": TCP, "17": UDP, "1": ICMP, "58": ICMPV6}
_PORTED = (TCP, UDP)
_ICMPS = (ICMP, ICMPV6)
MAX_PORT = 65535
MAX_ICMP = 255
ANY_V4 = IPv4Network("0.0.0.0/0")


class Direction(enum.Enum):
    INGRESS = "ingress"
    EGRESS = "egress"


class Family(enum.Enum):
    """The address family a rule counts against for the per-group rule limit."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"


def _icmp_code_out_of_range(code: int) -> Exception:
    return _error("InvalidParameterValue", f"ICMP code ({code}) out of range")


def _error(code: str, message: str) -> AwsError:
    return AwsError(message, code=code, status=400, sender_fault=True)


# -- the model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One security group rule: one direction, protocol, port range and peer.

    ``protocol`` is canonical (see :func:`normalise_protocol`); ports are -1 where they do not
    apply. Exactly one of ``cidr_v4``, ``cidr_v6`` and ``group_id`` is set; ``group_owner`` is the
    referenced group's account (``UserId``) when one was given.
    """

    direction: Direction
    protocol: str
    from_port: int
    to_port: int
    cidr_v4: IPv4Network | None = None
    cidr_v6: IPv6Network | None = None
    group_id: str | None = None
    group_owner: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        peers = [p for p in (self.cidr_v4, self.cidr_v6, self.group_id) if p is not None]
        if len(peers) != 1:
            raise ValueError(f"a rule has exactly one peer: {self!r}")

    @property
    def key(self) -> tuple[object, ...]:
        """What makes two rules the same rule (the description is not part of it)."""
        return (
            self.direction,
            self.protocol,
            self.from_port,
            self.to_port,
            self.cidr_v4,
            self.cidr_v6,
            self.group_id,
        )

    @property
    def peer(self) -> str:
        """The peer as EC2 writes it: a CIDR or a group id."""
        if self.cidr_v4 is not None:
            return str(self.cidr_v4)
        if self.cidr_v6 is not None:
            return str(self.cidr_v6)
        assert self.group_id is not None
        return self.group_id

    @property
    def families(self) -> frozenset[Family]:
        """The rule-limit counters this rule takes a place in."""
        if self.cidr_v4 is not None:
            return frozenset({Family.IPV4})
        if self.cidr_v6 is not None:
            return frozenset({Family.IPV6})
        return frozenset(Family)

    def describe(self) -> str:
        """The rule as EC2 quotes it in ``InvalidPermission.Duplicate``."""
        if self.protocol in _PORTED:
            what = f"{self.protocol.upper()}, from port: {self.from_port}, to port: {self.to_port}"
        elif self.protocol in _ICMPS:
            kind = "ALL" if self.from_port == -1 else str(self.from_port)
            code = "ALL" if self.to_port == -1 else str(self.to_port)
            what = f"{self.protocol.upper()}, type: {kind}, code: {code}"
        elif self.protocol == ALL:
            what = "ALL"
        else:
            what = self.protocol
        return f"peer: {self.peer}, {what}, ALLOW"


@dataclass(frozen=True)
class Revocation:
    """The outcome of a revoke: the rules that stay, and the stored rules that were removed."""

    remaining: tuple[Rule, ...]
    removed: tuple[Rule, ...]


# -- parsing IpPermissions --------------------------------------------------------------------


def normalise_protocol(value: object) -> str:
    """EC2's canonical ``IpProtocol``: names lower-cased, 6/17/1/58 named, other numbers as digits.

    ``InvalidParameterValue`` "Invalid value '<x>' for IP protocol. Unknown protocol." otherwise
    (``all`` included: EC2 wants ``-1``).
    """
    text = str(value).strip()
    lowered = text.lower()
    if lowered in (TCP, UDP, ICMP, ICMPV6, ALL):
        return lowered
    if lowered.isdigit() and int(lowered) <= 255:
        number = str(int(lowered))
        return _NAMED.get(number, number)
    raise _error("InvalidParameterValue", f"Invalid value '{text}' for IP protocol. Unknown protocol.")


def _optional_int(permission: Mapping[str, object], key: str) -> int | None:
    value = permission.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} must be an int, not {value!r}")
    return value


def _ports(protocol: str, from_port: int | None, to_port: int | None) -> tuple[int, int]:
    """Validate the port range of an IpPermission and return it as stored."""
    if protocol in _PORTED:
        if from_port is None or to_port is None:
            raise _error(
                "InvalidParameterValue",
                "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.",
            )
        for end, port in (("from", from_port), ("to", to_port)):
            if not 0 <= port <= MAX_PORT:
                raise _error("InvalidParameterValue", f"TCP/UDP ({end}) port ({port}) out of range")
        if from_port > to_port:
            # No EC2 text for this case has been seen; same shape as its other port errors.
            raise _error("InvalidParameterValue", f"Invalid TCP/UDP port range ({from_port} > {to_port})")
        return from_port, to_port
    if protocol in _ICMPS:
        if from_port is None or to_port is None:
            raise _error(
                "InvalidParameterValue",
                "Invalid value 'Must specify both from and to ports with ICMP.' for portRange.",
            )
        if not -1 <= from_port <= MAX_ICMP:
            raise _error("InvalidParameterValue", f"ICMP type ({from_port}) out of range")
        if not -1 <= to_port <= MAX_ICMP:
            raise _icmp_code_out_of_range(to_port)
        if from_port == -1 and to_port != -1:
            # "If you specify all ICMP types, you must specify all ICMP codes" (API reference); the
            # message text is lamina's own.
            raise _icmp_code_out_of_range(to_port)
        return from_port, to_port
    # -1 and other protocol numbers: every port, whatever was given.
    return -1, -1


def _entries(permission: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    value = permission.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(e, Mapping) for e in value):
        raise TypeError(f"{key} must be a list of dicts, not {value!r}")
    return value


def _text(entry: Mapping[str, object], key: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a str, not {value!r}")
    return value


def _malformed(text: str) -> AwsError:
    return _error("InvalidParameterValue", f"CIDR block {text} is malformed")


def _cidr_v4(text: str) -> IPv4Network:
    if "/" not in text:
        raise _malformed(text)
    try:
        network = ip_network(text, strict=False)
    except ValueError:
        raise _malformed(text) from None
    if not isinstance(network, IPv4Network):
        raise _malformed(text)
    return network


def _cidr_v6(text: str) -> IPv6Network:
    if "/" not in text:
        raise _malformed(text)
    try:
        network = ip_network(text, strict=False)
    except ValueError:
        raise _malformed(text) from None
    if not isinstance(network, IPv6Network):
        raise _malformed(text)
    return network


def expand_permissions(direction: Direction, permissions: Sequence[Mapping[str, object]]) -> tuple[Rule, ...]:
    """Turn an ``IpPermissions`` list (dicts keyed as AWS) into individual rules, in order.

    Each permission yields one rule per ``IpRanges``, ``Ipv6Ranges`` and ``UserIdGroupPairs`` entry
    (a permission with no peer yields nothing, as EC2 then adds nothing). CIDRs are canonicalised.
    The same rule twice in one request is ``InvalidParameterValue`` "The same permission must not
    appear multiple times". Prefix lists do not exist here: ``InvalidPrefixListID.NotFound``.
    """
    rules: list[Rule] = []
    seen: set[tuple[object, ...]] = set()
    for permission in permissions:
        raw_protocol = permission.get("IpProtocol")
        if raw_protocol is None:
            raise _error("MissingParameter", "The request must contain the parameter ipProtocol")
        protocol = normalise_protocol(raw_protocol)
        from_port, to_port = _ports(
            protocol, _optional_int(permission, "FromPort"), _optional_int(permission, "ToPort")
        )
        for entry in _entries(permission, "PrefixListIds"):
            raise _error(
                "InvalidPrefixListID.NotFound",
                f"The prefix list ID '{_text(entry, 'PrefixListId')}' does not exist",
            )
        found: list[Rule] = []
        for entry in _entries(permission, "IpRanges"):
            text = _text(entry, "CidrIp") or ""
            found.append(
                Rule(
                    direction,
                    protocol,
                    from_port,
                    to_port,
                    cidr_v4=_cidr_v4(text),
                    description=_text(entry, "Description"),
                )
            )
        for entry in _entries(permission, "Ipv6Ranges"):
            text = _text(entry, "CidrIpv6") or ""
            found.append(
                Rule(
                    direction,
                    protocol,
                    from_port,
                    to_port,
                    cidr_v6=_cidr_v6(text),
                    description=_text(entry, "Description"),
                )
            )
        for entry in _entries(permission, "UserIdGroupPairs"):
            group_id = _text(entry, "GroupId")
            if not group_id:
                # Source groups by name are an EC2-Classic/default-VPC convenience; ids are required here.
                raise _error("MissingParameter", "The request must contain the parameter groupId")
            found.append(
                Rule(
                    direction,
                    protocol,
                    from_port,
                    to_port,
                    group_id=group_id,
                    group_owner=_text(entry, "UserId"),
                    description=_text(entry, "Description"),
                )
            )
        for rule in found:
            if rule.key in seen:
                raise _error("InvalidParameterValue", "The same permission must not appear multiple times")
            seen.add(rule.key)
            rules.append(rule)
    return tuple(rules)


# -- authorize / revoke -----------------------------------------------------------------------


def _count(rules: Iterable[Rule], direction: Direction, family: Family) -> int:
    return sum(1 for r in rules if r.direction is direction and family in r.families)


def authorize(
    existing: Sequence[Rule], new: Sequence[Rule], *, limit: int = RULES_PER_DIRECTION
) -> tuple[Rule, ...]:
    """Check that ``new`` may be added to a group holding ``existing``; return the rules to add.

    All or nothing, as EC2: any rule already present is ``InvalidPermission.Duplicate`` (quoting the
    first such rule); going past ``limit`` rules in a direction and family is
    ``RulesPerSecurityGroupLimitExceeded``.
    """
    present = {r.key for r in existing}
    for rule in new:
        if rule.key in present:
            raise _error(
                "InvalidPermission.Duplicate", f'the specified rule "{rule.describe()}" already exists'
            )
    combined = [*existing, *new]
    for direction in {r.direction for r in new}:
        for family in Family:
            if _count(combined, direction, family) > limit:
                raise _error(
                    "RulesPerSecurityGroupLimitExceeded",
                    "The maximum number of rules per security group has been reached.",
                )
    return tuple(new)


def revoke(existing: Sequence[Rule], to_remove: Sequence[Rule]) -> Revocation:
    """Remove the rules matching ``to_remove`` (ignoring descriptions) from ``existing``.

    All or nothing: if any does not match a stored rule, ``InvalidPermission.NotFound`` and nothing
    is removed (EC2's behaviour for a non-default VPC).
    """
    index = {r.key: r for r in existing}
    removed: list[Rule] = []
    for rule in to_remove:
        match = index.get(rule.key)
        if match is None:
            raise _error(
                "InvalidPermission.NotFound", "The specified rule does not exist in this security group."
            )
        removed.append(match)
    gone = {r.key for r in removed}
    return Revocation(tuple(r for r in existing if r.key not in gone), tuple(removed))


def check_groups_per_interface(group_ids: Collection[str], *, limit: int = GROUPS_PER_INTERFACE) -> None:
    """At most ``limit`` distinct security groups on one network interface."""
    if len(set(group_ids)) > limit:
        # The limit's code is EC2's; no real message text has been seen, this one mirrors the rules limit's.
        raise _error(
            "SecurityGroupsPerInterfaceLimitExceeded",
            "The maximum number of security groups per interface has been reached.",
        )


# -- defaults ---------------------------------------------------------------------------------


def default_egress() -> Rule:
    """The outbound rule every new group starts with: all traffic to 0.0.0.0/0."""
    return Rule(Direction.EGRESS, ALL, -1, -1, cidr_v4=ANY_V4)


def new_group_rules() -> tuple[Rule, ...]:
    """A new (non-default) group: no inbound rules, one outbound allow-all."""
    return (default_egress(),)


def default_group_rules(group_id: str, owner_id: str) -> tuple[Rule, ...]:
    """A VPC's ``default`` group: all inbound from the group itself, all outbound."""
    return (
        Rule(Direction.INGRESS, ALL, -1, -1, group_id=group_id, group_owner=owner_id),
        default_egress(),
    )


# -- rendering --------------------------------------------------------------------------------


def _has_ports(protocol: str) -> bool:
    return protocol in _PORTED or protocol in _ICMPS


def to_ip_permissions(rules: Iterable[Rule], direction: Direction, *, owner_id: str) -> list[IpPermission]:
    """``IpPermissions`` / ``IpPermissionsEgress`` of DescribeSecurityGroups for one direction.

    Rules sharing protocol and ports are grouped into one permission, in order of first appearance,
    as EC2 does. ``FromPort``/``ToPort`` are left out where ports do not apply; a group peer
    without a recorded owner is shown as owned by ``owner_id``.
    """
    grouped: dict[tuple[str, int, int], IpPermission] = {}
    for rule in rules:
        if rule.direction is not direction:
            continue
        slot = (rule.protocol, rule.from_port, rule.to_port)
        permission = grouped.get(slot)
        if permission is None:
            permission = IpPermission(
                IpProtocol=rule.protocol, IpRanges=[], Ipv6Ranges=[], PrefixListIds=[], UserIdGroupPairs=[]
            )
            if _has_ports(rule.protocol):
                permission["FromPort"] = rule.from_port
                permission["ToPort"] = rule.to_port
            grouped[slot] = permission
        if rule.cidr_v4 is not None:
            ip_range = IpRange(CidrIp=str(rule.cidr_v4))
            if rule.description is not None:
                ip_range["Description"] = rule.description
            permission["IpRanges"].append(ip_range)
        elif rule.cidr_v6 is not None:
            ipv6_range = Ipv6Range(CidrIpv6=str(rule.cidr_v6))
            if rule.description is not None:
                ipv6_range["Description"] = rule.description
            permission["Ipv6Ranges"].append(ipv6_range)
        else:
            assert rule.group_id is not None
            pair = UserIdGroupPair(GroupId=rule.group_id, UserId=rule.group_owner or owner_id)
            if rule.description is not None:
                pair["Description"] = rule.description
            permission["UserIdGroupPairs"].append(pair)
    return list(grouped.values())


def to_rule_item(rule_id: str, rule: Rule, *, group_id: str, owner_id: str) -> SecurityGroupRule:
    """One ``SecurityGroupRule`` of DescribeSecurityGroupRules (and of Authorize* responses).

    Ports are always present there, -1 where they do not apply.
    """
    item = SecurityGroupRule(
        SecurityGroupRuleId=rule_id,
        GroupId=group_id,
        GroupOwnerId=owner_id,
        IsEgress=rule.direction is Direction.EGRESS,
        IpProtocol=rule.protocol,
        FromPort=rule.from_port,
        ToPort=rule.to_port,
        Tags=[],
    )
    if rule.cidr_v4 is not None:
        item["CidrIpv4"] = str(rule.cidr_v4)
    elif rule.cidr_v6 is not None:
        item["CidrIpv6"] = str(rule.cidr_v6)
    else:
        assert rule.group_id is not None
        item["ReferencedGroupInfo"] = ReferencedSecurityGroup(
            GroupId=rule.group_id, UserId=rule.group_owner or owner_id
        )
    if rule.description is not None:
        item["Description"] = rule.description
    return item


# -- semantics --------------------------------------------------------------------------------


def _port_matches(rule: Rule, port: int | None, icmp_code: int | None) -> bool:
    if rule.protocol in _PORTED:
        return port is not None and rule.from_port <= port <= rule.to_port
    if rule.protocol in _ICMPS:
        type_ok = rule.from_port == -1 or port == rule.from_port
        code_ok = rule.to_port == -1 or icmp_code == rule.to_port
        return type_ok and code_ok
    return True


def _peer_matches(rule: Rule, peer_ip: IPv4Address | IPv6Address, peer_groups: Collection[str]) -> bool:
    if rule.cidr_v4 is not None:
        return isinstance(peer_ip, IPv4Address) and peer_ip in rule.cidr_v4
    if rule.cidr_v6 is not None:
        return isinstance(peer_ip, IPv6Address) and peer_ip in rule.cidr_v6
    return rule.group_id in peer_groups


def allowed(
    rules: Iterable[Rule],
    direction: Direction,
    protocol: str,
    port: int | None,
    peer_ip: IPv4Address | IPv6Address,
    peer_groups: Collection[str] = (),
    *,
    icmp_code: int | None = None,
) -> bool:
    """Whether the union of ``rules`` allows a new flow (the stateless question; replies to an
    allowed flow are the data plane's conntrack business).

    ``direction`` INGRESS asks about traffic arriving from ``peer_ip``, EGRESS about traffic sent to
    it. ``port`` is the destination port for tcp/udp and the ICMP type for icmp (``icmp_code`` the
    code). ``peer_groups`` are the security groups of the peer's interface: a rule naming one of
    them matches.
    """
    wanted = normalise_protocol(protocol)
    for rule in rules:
        if rule.direction is not direction:
            continue
        if rule.protocol != ALL and rule.protocol != wanted:
            continue
        if rule.protocol != ALL and not _port_matches(rule, port, icmp_code):
            continue
        if _peer_matches(rule, peer_ip, peer_groups):
            return True
    return False
