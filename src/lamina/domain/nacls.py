"""Network ACLs (pure): entries, their checks and EC2's errors, how they judge a packet, and the
nftables chains that enforce them in a VPC's router.

What AWS documents ("Control subnet traffic with network access control lists", VPC User Guide)
and this module follows:

- Every VPC has a *default* network ACL: rule 100 allows all traffic in and out; a new (custom)
  ACL allows nothing. Both end with the ``*`` rule, shown by DescribeNetworkAcls as rule number
  32767 (``deny``, ``0.0.0.0/0``, protocol ``-1``), which cannot be changed or deleted.
- A subnet is associated with exactly one ACL (its VPC's default one when created).
- Rules are evaluated in rule-number order, lowest first; the first rule that matches decides
  (``allow`` or ``deny``); nothing matching = the ``*`` rule, deny.
- Stateless: replies are judged like any packet, so the ephemeral ports a client uses
  (1024-65535 covers every client) must be allowed explicitly in the other direction.
- Enforced at a subnet's boundary: a packet leaving a subnet is judged by its ACL's outbound
  (``Egress``) rules on the *destination* address, a packet entering a subnet by the inbound
  rules on the *source* address; both match the *destination* port. Traffic within one subnet
  is not judged.
- Rule numbers 1-32766; protocol ``-1`` (all) or a number (``tcp``/``udp``/``icmp`` are accepted
  and stored as 6/17/1); a port range for 6 and 17, an ICMP type and code (-1: any) for 1; 20
  rules per direction per ACL by default (a quota AWS raises on request: configurable here).

In the router (see :mod:`lamina.domain.dataplane`), each ACL in use is two nftables chains, one per
direction, whose rules ``return`` (allow: go on to the security groups) or ``drop``; each subnet
with interfaces has a chain per direction that skips traffic staying in the subnet and goes to
its ACL's chain. The router's ``forward`` chain jumps to them by the packet's in and out links,
before conntrack lets replies through: ACLs see every packet, security groups only new flows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_network
from typing import Any, Final

from lamina.domain.ec2_models import NetworkAclEntry
from lamina.errors import AwsError, missing_parameter

MIN_RULE_NUMBER: Final = 1
MAX_RULE_NUMBER: Final = 32766
DEFAULT_RULE_NUMBER: Final = 32767  # the ``*`` rule, as DescribeNetworkAcls shows it
DEFAULT_ENTRY_LIMIT: Final = 20  # rules per direction per ACL (VPC quotas: "Rules per network ACL")
ALLOW_ALL_RULE_NUMBER: Final = 100  # the default ACL's allow-all rules
MAX_PORT: Final = 65535

ALL: Final = "-1"
TCP: Final = "6"
UDP: Final = "17"
ICMP: Final = "1"
_NAMES: Final = {"all": ALL, "-1": ALL, "tcp": TCP, "udp": UDP, "icmp": ICMP, "icmpv6": "58"}
PROTOCOL_NAMES: Final = {TCP: "tcp", UDP: "udp", ICMP: "icmp"}
_ID: Final = re.compile(r"[a-z]+-[0-9A-Za-z]+")


# -- errors ------------------------------------------------------------------------------------------


def _error(code: str, message: str) -> AwsError:
    return AwsError(message, code=code, status=400, sender_fault=True)


def association_not_found(association_id: str) -> AwsError:
    return _error("InvalidAssociationID.NotFound", f"The association ID '{association_id}' does not exist")


def _invalid(name: str, value: object, why: str) -> AwsError:
    return _error("InvalidParameterValue", f"Value ({value}) for parameter {name} is invalid. {why}")


# -- entries -----------------------------------------------------------------------------------------


def check_rule_number(number: int) -> int:
    """A rule number a caller may set or delete (the ``*`` rule is neither)."""
    if not MIN_RULE_NUMBER <= number <= MAX_RULE_NUMBER:
        raise _invalid(
            "ruleNumber", number, f"Rulenumber must be in range {MIN_RULE_NUMBER}..{MAX_RULE_NUMBER}"
        )
    return number


def normalise_protocol(text: str) -> str:
    """``-1`` or a protocol number as text (``tcp`` -> ``6``), as EC2 stores it."""
    value = str(text).strip().lower()
    if value in _NAMES:
        return _NAMES[value]
    if value.isdigit() and 0 <= int(value) <= 255:
        return str(int(value))
    raise _invalid("protocol", text, "Protocol must be tcp, udp, icmp, all, -1 or a number from 0 to 255.")


def _port(value: Any, name: str) -> int:
    if value is None:
        raise missing_parameter(name)
    number = int(value)
    if not 0 <= number <= MAX_PORT:
        raise _invalid(name, number, f"Port must be in range 0..{MAX_PORT}")
    return number


def _icmp(value: Any, name: str) -> int:
    if value is None:
        raise missing_parameter(name)
    number = int(value)
    if not -1 <= number <= 255:
        raise _invalid(name, number, "ICMP type and code must be in range -1..255")
    return number


def entry_from_params(params: Mapping[str, Any]) -> NetworkAclEntry:
    """A new entry from CreateNetworkAclEntry / ReplaceNetworkAclEntry's parameters, checked and
    as DescribeNetworkAcls shows it (the ports or ICMP fields only where they mean something)."""
    number = check_rule_number(int(params["RuleNumber"]))
    protocol = normalise_protocol(params["Protocol"])
    action = str(params["RuleAction"])
    if action not in ("allow", "deny"):
        raise _invalid("ruleAction", action, "Rule action must be allow or deny.")
    entry: NetworkAclEntry = {}
    cidr, cidr_v6 = params.get("CidrBlock"), params.get("Ipv6CidrBlock")
    if cidr and cidr_v6:
        raise _error(
            "InvalidParameterCombination", "Only one of cidrBlock or ipv6CidrBlock may be specified."
        )
    if cidr:
        try:
            block = ip_network(str(cidr), strict=False)
        except ValueError:
            raise _invalid("cidrBlock", cidr, "This is not a valid CIDR block.") from None
        if not isinstance(block, IPv4Network):
            raise _invalid("cidrBlock", cidr, "This is not a valid IPv4 CIDR block.")
        entry["CidrBlock"] = str(block)
    elif cidr_v6:
        try:
            block6 = ip_network(str(cidr_v6), strict=False)
        except ValueError:
            raise _invalid("ipv6CidrBlock", cidr_v6, "This is not a valid CIDR block.") from None
        if not isinstance(block6, IPv6Network):
            raise _invalid("ipv6CidrBlock", cidr_v6, "This is not a valid IPv6 CIDR block.")
    else:
        raise missing_parameter("cidrBlock")
    entry["Egress"] = bool(params["Egress"])
    if protocol == ICMP:
        icmp = params.get("IcmpTypeCode")
        if not icmp:
            raise missing_parameter("icmpTypeCode")
        entry["IcmpTypeCode"] = {
            "Code": _icmp(icmp.get("Code"), "icmpTypeCode.code"),
            "Type": _icmp(icmp.get("Type"), "icmpTypeCode.type"),
        }
    if cidr_v6 and not cidr:
        entry["Ipv6CidrBlock"] = str(ip_network(str(cidr_v6), strict=False))
    if protocol in (TCP, UDP):
        ports = params.get("PortRange")
        if not ports:
            raise missing_parameter("portRange")
        low, high = _port(ports.get("From"), "portRange.from"), _port(ports.get("To"), "portRange.to")
        if low > high:
            raise _invalid(
                "portRange", f"{low}-{high}", "The from port must not be greater than the to port."
            )
        entry["PortRange"] = {"From": low, "To": high}
    entry["Protocol"] = protocol
    entry["RuleAction"] = action
    entry["RuleNumber"] = number
    return entry


def _catch_all(egress: bool, action: str, number: int) -> NetworkAclEntry:
    return {
        "CidrBlock": "0.0.0.0/0",
        "Egress": egress,
        "Protocol": ALL,
        "RuleAction": action,
        "RuleNumber": number,
    }


def initial_entries(*, default: bool) -> list[NetworkAclEntry]:
    """A new ACL's entries: the default ACL allows everything (rule 100) both ways; every ACL ends
    with the ``*`` rule (32767, deny) both ways. Outbound first, as EC2 lists them."""
    out = []
    for egress in (True, False):
        if default:
            out.append(_catch_all(egress, "allow", ALLOW_ALL_RULE_NUMBER))
        out.append(_catch_all(egress, "deny", DEFAULT_RULE_NUMBER))
    return out


def _ordered(entries: Iterable[NetworkAclEntry]) -> list[NetworkAclEntry]:
    return sorted(entries, key=lambda e: (not e.get("Egress"), int(e["RuleNumber"])))


def _same(entry: NetworkAclEntry, number: int, egress: bool) -> bool:
    return int(entry["RuleNumber"]) == number and bool(entry.get("Egress")) == egress


def _direction(egress: bool) -> str:
    return "egress" if egress else "ingress"


def add_entry(
    entries: Sequence[NetworkAclEntry], new: NetworkAclEntry, limit: int = DEFAULT_ENTRY_LIMIT
) -> list[NetworkAclEntry]:
    """CreateNetworkAclEntry: ``NetworkAclEntryAlreadyExists`` for a taken (number, direction);
    ``NetworkAclEntryLimitExceeded`` past ``limit`` rules in that direction (``*`` not counted)."""
    number, egress = int(new["RuleNumber"]), bool(new["Egress"])
    if any(_same(e, number, egress) for e in entries):
        raise _error(
            "NetworkAclEntryAlreadyExists", f"The network acl entry identified by {number} already exists."
        )
    used = sum(
        1 for e in entries if bool(e.get("Egress")) == egress and int(e["RuleNumber"]) <= MAX_RULE_NUMBER
    )
    if used >= limit:
        raise _error(
            "NetworkAclEntryLimitExceeded", "The maximum number of network acl entries has been reached."
        )
    return _ordered([*entries, new])


def replace_entry(entries: Sequence[NetworkAclEntry], new: NetworkAclEntry) -> list[NetworkAclEntry]:
    """ReplaceNetworkAclEntry: the entry with the same number and direction must exist."""
    number, egress = int(new["RuleNumber"]), bool(new["Egress"])
    if not any(_same(e, number, egress) for e in entries):
        raise entry_not_found(number, egress)
    return _ordered([new if _same(e, number, egress) else e for e in entries])


def delete_entry(entries: Sequence[NetworkAclEntry], number: int, egress: bool) -> list[NetworkAclEntry]:
    """DeleteNetworkAclEntry."""
    check_rule_number(number)
    if not any(_same(e, number, egress) for e in entries):
        raise entry_not_found(number, egress)
    return [e for e in entries if not _same(e, number, egress)]


def entry_not_found(number: int, egress: bool) -> AwsError:
    return _error("InvalidNetworkAclEntry.NotFound", f"no {_direction(egress)} entry with number {number}")


# -- judging packets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One entry, compiled: what it matches and whether it allows."""

    number: int
    egress: bool
    allow: bool
    protocol: str  # "-1" or a number
    cidr: IPv4Network | None  # None: an IPv6 entry, which matches nothing in an IPv4 VPC
    from_port: int = 0
    to_port: int = MAX_PORT
    icmp_type: int = -1
    icmp_code: int = -1

    @classmethod
    def of(cls, entry: NetworkAclEntry) -> Rule:
        ports = entry.get("PortRange") or {}
        icmp = entry.get("IcmpTypeCode") or {}
        cidr = entry.get("CidrBlock")
        return cls(
            number=int(entry["RuleNumber"]),
            egress=bool(entry.get("Egress")),
            allow=entry.get("RuleAction") == "allow",
            protocol=str(entry.get("Protocol", ALL)),
            cidr=IPv4Network(cidr) if cidr else None,
            from_port=int(ports.get("From", 0)),
            to_port=int(ports.get("To", MAX_PORT)),
            icmp_type=int(icmp.get("Type", -1)),
            icmp_code=int(icmp.get("Code", -1)),
        )

    def matches(
        self, protocol: str, port: int | None, peer: IPv4Address, icmp_code: int | None = None
    ) -> bool:
        """Whether a packet matches: ``peer`` is its destination (outbound) or source (inbound);
        ``port`` its destination port, or its ICMP type (with ``icmp_code``)."""
        if self.cidr is None or peer not in self.cidr:
            return False
        if self.protocol == ALL:
            return True
        if self.protocol != normalise_protocol(protocol):
            return False
        if self.protocol in (TCP, UDP):
            return port is not None and self.from_port <= port <= self.to_port
        if self.protocol == ICMP:
            return (self.icmp_type == -1 or port == self.icmp_type) and (
                self.icmp_type == -1 or self.icmp_code == -1 or icmp_code == self.icmp_code
            )
        return True

    def nft(self) -> str:
        """The nftables match expression (empty: every IPv4 packet)."""
        parts: list[str] = []
        assert self.cidr is not None
        if self.cidr.prefixlen > 0:
            parts.append(f"ip {'daddr' if self.egress else 'saddr'} {self.cidr}")
        if self.protocol in (TCP, UDP):
            name = PROTOCOL_NAMES[self.protocol]
            if (self.from_port, self.to_port) == (0, MAX_PORT):
                parts.append(f"meta l4proto {name}")
            elif self.from_port == self.to_port:
                parts.append(f"{name} dport {self.from_port}")
            else:
                parts.append(f"{name} dport {self.from_port}-{self.to_port}")
        elif self.protocol == ICMP:
            if self.icmp_type == -1:
                parts.append("meta l4proto icmp")
            else:
                parts.append(f"icmp type {self.icmp_type}")
                if self.icmp_code != -1:
                    parts.append(f"icmp code {self.icmp_code}")
        elif self.protocol != ALL:
            parts.append(f"meta l4proto {self.protocol}")
        return " ".join(parts)


def rules_of(entries: Iterable[NetworkAclEntry], egress: bool) -> tuple[Rule, ...]:
    """One direction's rules that can match an IPv4 packet, in evaluation order (the ``*`` rule
    is the chain's final drop, not a rule)."""
    compiled = [Rule.of(e) for e in entries if bool(e.get("Egress")) == egress]
    return tuple(
        sorted(
            (r for r in compiled if r.cidr is not None and r.number <= MAX_RULE_NUMBER),
            key=lambda r: r.number,
        )
    )


def allows(
    rules: Sequence[Rule], protocol: str, port: int | None, peer: IPv4Address, icmp_code: int | None = None
) -> bool:
    """What one direction of an ACL decides for a packet: the first matching rule, else deny."""
    for rule in rules:
        if rule.matches(protocol, port, peer, icmp_code):
            return rule.allow
    return False


# -- the plan and its nftables chains ----------------------------------------------------------------


@dataclass(frozen=True)
class AclPlan:
    """One ACL in use in a VPC's router: its rules per direction."""

    acl_id: str
    outbound: tuple[Rule, ...]
    inbound: tuple[Rule, ...]


@dataclass(frozen=True)
class SubnetAcl:
    """A subnet with router links, and the ACL that judges what crosses its boundary."""

    subnet_id: str
    acl_id: str
    links: tuple[str, ...]  # router-side links of its interfaces and NAT gateways, sorted


@dataclass(frozen=True)
class AclRuleset:
    """The ACLs of one VPC's router, ready to render into its ``inet lamina`` table."""

    acls: tuple[AclPlan, ...]
    subnets: tuple[SubnetAcl, ...]

    def allows(
        self,
        source: tuple[str | None, IPv4Address],
        destination: tuple[str | None, IPv4Address],
        protocol: str,
        port: int | None,
        icmp_code: int | None = None,
    ) -> bool:
        """Whether a packet from (subnet, address) to (subnet, address) crosses the ACLs, as the
        rendered chains decide (subnet None: the internet side, which has no ACL)."""
        acl_of = {s.subnet_id: s.acl_id for s in self.subnets}
        by_acl = {a.acl_id: a for a in self.acls}
        if source[0] is not None and source[0] == destination[0]:
            return True  # within a subnet: not judged
        leaving, entering = acl_of.get(source[0] or ""), acl_of.get(destination[0] or "")
        if leaving is not None and not allows(
            by_acl[leaving].outbound, protocol, port, destination[1], icmp_code
        ):
            return False
        return entering is None or allows(by_acl[entering].inbound, protocol, port, source[1], icmp_code)


def _plain(resource_id: str) -> str:
    if not _ID.fullmatch(resource_id):
        raise ValueError(f"resource id {resource_id!r} cannot name an nftables object")
    return resource_id


def acl_chain(acl_id: str, egress: bool) -> str:
    return f"nacl_{'out' if egress else 'in'}_{_plain(acl_id)}"


def subnet_chain(subnet_id: str, egress: bool) -> str:
    return f"nacl_{'from' if egress else 'to'}_{_plain(subnet_id)}"


def plan_acls(
    network_acls: Iterable[Mapping[str, Any]], links_by_subnet: Mapping[str, Sequence[str]]
) -> AclRuleset | None:
    """The ACL ruleset of a VPC: every subnet with router links, judged by its associated ACL (a
    subnet with no association -- a state no EC2 call leaves -- by the VPC's default ACL). None
    when no ACL is known (nothing is judged)."""
    acls = sorted(network_acls, key=lambda a: str(a["NetworkAclId"]))
    if not acls:
        return None
    default = next((str(a["NetworkAclId"]) for a in acls if a.get("IsDefault")), None)
    of_subnet: dict[str, str] = {}
    for acl in acls:
        for association in acl.get("Associations") or ():
            if association.get("SubnetId"):
                of_subnet[str(association["SubnetId"])] = str(acl["NetworkAclId"])
    subnets = []
    for subnet_id in sorted(links_by_subnet):
        acl_id = of_subnet.get(subnet_id, default)
        links = tuple(sorted(links_by_subnet[subnet_id]))
        if acl_id is None or not links:
            continue
        subnets.append(SubnetAcl(subnet_id, acl_id, links))
    used = {s.acl_id for s in subnets}
    plans = tuple(
        AclPlan(
            str(a["NetworkAclId"]),
            rules_of(a.get("Entries") or (), egress=True),
            rules_of(a.get("Entries") or (), egress=False),
        )
        for a in acls
        if a["NetworkAclId"] in used
    )
    return AclRuleset(plans, tuple(subnets))


def _names(links: Iterable[str]) -> str:
    return ", ".join(f'"{link}"' for link in links)


def render_chains(ruleset: AclRuleset) -> list[str]:
    """The ACL and subnet chains (lines of the router's table)."""
    out: list[str] = []
    for acl in ruleset.acls:
        for egress, rules in ((True, acl.outbound), (False, acl.inbound)):
            out.append(f"\tchain {acl_chain(acl.acl_id, egress)} {{")
            for rule in rules:
                match = rule.nft()
                verdict = "return" if rule.allow else "drop"
                out.append(f"\t\t{match} {verdict}" if match else f"\t\t{verdict}")
            out += ["\t\tdrop", "\t}"]  # the ``*`` rule
    for subnet in ruleset.subnets:
        links = _names(subnet.links)
        # Traffic staying in the subnet is not judged; the rest goes to the ACL (``goto``: its
        # ``return`` goes back to ``forward``).
        out += [
            f"\tchain {subnet_chain(subnet.subnet_id, True)} {{",
            f"\t\toifname {{ {links} }} return",
            f"\t\tgoto {acl_chain(subnet.acl_id, True)}",
            "\t}",
            f"\tchain {subnet_chain(subnet.subnet_id, False)} {{",
            f"\t\tiifname {{ {links} }} return",
            f"\t\tgoto {acl_chain(subnet.acl_id, False)}",
            "\t}",
        ]
    return out


def render_jumps(ruleset: AclRuleset) -> list[str]:
    """The ``forward`` chain's rules sending every packet through the ACLs of the subnet it leaves
    (by its in link) and of the subnet it enters (by its out link)."""
    if not ruleset.subnets:
        return []
    leaving = ", ".join(
        f'"{link}" : jump {subnet_chain(s.subnet_id, True)}' for s in ruleset.subnets for link in s.links
    )
    entering = ", ".join(
        f'"{link}" : jump {subnet_chain(s.subnet_id, False)}' for s in ruleset.subnets for link in s.links
    )
    return [f"\t\tiifname vmap {{ {leaving} }}", f"\t\toifname vmap {{ {entering} }}"]
