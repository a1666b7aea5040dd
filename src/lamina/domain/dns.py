"""DNS in a VPC as the Amazon-provided resolver answers it (pure): the private DNS names of a
VPC's network interfaces, the VPC's DNS attributes, DHCP option sets, and what an execution
environment's ``/etc/resolv.conf`` and ``/etc/hosts`` say. ``net.dns`` serves a :class:`Zone`
built here; nothing here touches a socket or the wire format (dnspython does that in ``net``).

What AWS documents and this follows (VPC user guide, "DNS attributes for your VPC", "DHCP option
sets", "Amazon DNS server"):

- The Amazon DNS server (Route 53 Resolver) is at the base of the VPC's primary IPv4 block plus
  two, and at 169.254.169.253. It answers the private DNS names of the VPC's interfaces,
  ``ip-10-0-1-10.ec2.internal`` in us-east-1 and ``ip-10-0-1-10.<region>.compute.internal``
  elsewhere (A, and PTR for the reverse), and resolves public names through the internet.
- ``enableDnsSupport`` (default true): false, and queries to the Amazon DNS server get no answer.
  ``enableDnsHostnames`` (default false, true in a default VPC): "if both attributes are true, the
  Amazon Route 53 Resolver server can resolve Amazon-provided private DNS hostnames"; if either is
  false it cannot. Public names resolve whenever ``enableDnsSupport`` is true.
- A DHCP option set gives ``domain-name`` (the search domain instances get) and
  ``domain-name-servers`` (``AmazonProvidedDNS`` or up to four addresses): what the VPC's hosts
  put in their resolv.conf. A custom ``domain-name`` does not make the Amazon DNS server answer
  names under it (that takes a private hosted zone): it is the search list only.
- Private names of one VPC never answer in another VPC or account: a zone is built per VPC, from
  that VPC's interfaces only. Names under ``ec2.internal`` and ``compute.internal`` that are not
  the zone's, and reverse names of private addresses outside the VPC, are NXDOMAIN, never
  forwarded: the host's resolver must not tell a function about the host's own networks.

Extra records (the hook other parts use, e.g. VPC endpoints' private DNS names and lamina's own
API names): a zone takes ``extra``, a mapping of fully qualified names to IPv4 addresses, which
answer before anything else (exact names; a wildcard is written ``*.name``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any, Final

from lamina.domain.ec2_models import DhcpConfiguration

#: The Amazon DNS server's link-local address, reachable from every VPC (and, in lamina, from
#: every function without a VPC).
LINK_LOCAL_RESOLVER: Final = IPv4Address("169.254.169.253")
#: The DHCP option value meaning "the VPC's Amazon DNS server".
AMAZON_PROVIDED_DNS: Final = "AmazonProvidedDNS"
#: The ``DhcpOptionsId`` of a VPC associated with no DHCP option set.
NO_DHCP_OPTIONS: Final = "default"
#: The domains of Amazon-provided private names: never asked of the internet (on an EC2 host, its
#: resolver would answer them with the host's own VPC).
INTERNAL_DOMAINS: Final = ("ec2.internal", "compute.internal")
#: Domains that name things on the host's own networks, never the internet's (RFC 6761
#: special-use names, mDNS's ``local``, ``home.arpa``, ICANN's private-use ``internal``, and the
#: domains home and office networks use): NXDOMAIN, never asked of the host's resolver.
HOST_DOMAINS: Final = (
    "localhost",
    "localdomain",
    "local",
    "invalid",
    "test",
    "home.arpa",
    "internal",
    "lan",
    "home",
    "corp",
    "intranet",
    "private",
)
#: Address ranges of the host's own networks (beyond what ``ipaddress`` calls private: the
#: shared address space of carrier-grade NAT and VPN overlays): their reverse names end here.
_HOST_RANGES: Final = (IPv4Network("100.64.0.0/10"),)
#: Seconds a private name's answer may be cached (Route 53 Resolver answers private names with 60).
PRIVATE_TTL: Final = 60
#: The bookkeeping key of a VPC's DNS attributes in its stored body (never shown by EC2).
ATTRIBUTES_KEY: Final = "_dns_attributes"
#: The bookkeeping key set on a VPC associated with ``default`` (no option set) by
#: AssociateDhcpOptions. A VPC whose ``DhcpOptionsId`` is ``default`` without it was stored before
#: lamina had option sets (or by code that does not make one): it has the region's default set.
NO_OPTIONS_KEY: Final = "_no_dhcp_options"
#: DHCP option keys EC2 accepts (CreateDhcpOptions).
DHCP_KEYS: Final = frozenset(
    {
        "domain-name",
        "domain-name-servers",
        "ntp-servers",
        "netbios-name-servers",
        "netbios-node-type",
        "ipv6-address-preferred-lease-time",
    }
)
#: How many addresses ``domain-name-servers`` (and the NTP and NetBIOS servers) may list.
MAX_SERVERS: Final = 4
#: The ``/etc/hosts`` of every execution environment. The Runtime API is at 127.0.0.1:9001, and
#: ``sandbox.localdomain`` names the environment itself, as in AWS Lambda.
HOSTS: Final = (
    "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4\n"
    "::1         localhost localhost.localdomain localhost6 localhost6.localdomain6\n"
    "127.0.0.1   sandbox.localdomain sandbox\n"
)
#: resolv.conf options, as AWS Lambda's own resolv.conf has them.
RESOLV_OPTIONS: Final = "options timeout:2 attempts:5"


def default_domain(region: str) -> str:
    """The domain of Amazon-provided private DNS names in ``region`` (EC2 "Amazon EC2 instance
    hostname types"): ``ec2.internal`` in us-east-1, ``<region>.compute.internal`` elsewhere."""
    return "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"


def private_dns_name(address: IPv4Address | str, region: str) -> str:
    """``ip-10-0-1-10.ec2.internal`` (no trailing dot), the interface's ``PrivateDnsName``."""
    return f"ip-{str(address).replace('.', '-')}.{default_domain(region)}"


def resolver_address(primary_cidr: IPv4Network | str) -> IPv4Address:
    """The Amazon DNS server's address in a VPC: the base of its primary IPv4 block plus two."""
    return IPv4Network(primary_cidr).network_address + 2


def reverse_name(address: IPv4Address) -> str:
    """``10.1.0.10.in-addr.arpa`` (no trailing dot)."""
    return address.reverse_pointer


# -- the VPC's DNS attributes ---------------------------------------------------------------------


@dataclass(frozen=True)
class VpcDnsAttributes:
    """``enableDnsSupport``, ``enableDnsHostnames`` and ``enableNetworkAddressUsageMetrics``."""

    support: bool = True
    hostnames: bool = False
    address_usage_metrics: bool = False

    @classmethod
    def of(cls, vpc: Mapping[str, Any]) -> VpcDnsAttributes:
        """The attributes of a stored VPC body (a default VPC has hostnames on, as in EC2)."""
        stored = vpc.get(ATTRIBUTES_KEY)
        default = cls(hostnames=bool(vpc.get("IsDefault")))
        if not isinstance(stored, Mapping):
            return default
        return cls(
            support=bool(stored.get("support", default.support)),
            hostnames=bool(stored.get("hostnames", default.hostnames)),
            address_usage_metrics=bool(stored.get("address_usage_metrics", default.address_usage_metrics)),
        )

    def stored(self) -> dict[str, bool]:
        """The value kept under :data:`ATTRIBUTES_KEY`."""
        return {
            "support": self.support,
            "hostnames": self.hostnames,
            "address_usage_metrics": self.address_usage_metrics,
        }


# -- DHCP option sets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DhcpSettings:
    """What a VPC's DHCP option set hands its hosts, as far as DNS goes."""

    domain_names: tuple[str, ...]  # the search list (``domain-name``, space separated)
    servers: tuple[str, ...]  # ``AmazonProvidedDNS`` and/or addresses, in order

    @classmethod
    def of(cls, options: Mapping[str, Any] | None) -> DhcpSettings:
        """From a DhcpOptions body (``DhcpConfigurations``); None: no option set (``default``):
        hosts get no search domain and no name server from DHCP."""
        if options is None:
            return cls((), ())
        values = dhcp_values(options)
        names = tuple(n for v in values.get("domain-name", ()) for n in v.split())
        return cls(names, tuple(values.get("domain-name-servers", ())))

    @classmethod
    def region_default(cls, region: str) -> DhcpSettings:
        """What the option set EC2 makes for the region hands out."""
        return cls.of({"DhcpConfigurations": default_dhcp_configurations(region)})

    @property
    def amazon_dns(self) -> bool:
        """Whether the hosts use the Amazon DNS server."""
        return AMAZON_PROVIDED_DNS in self.servers


def dhcp_values(options: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{key: [values]}`` of a DhcpOptions body."""
    out: dict[str, list[str]] = {}
    for conf in options.get("DhcpConfigurations") or ():
        out[str(conf.get("Key"))] = [str(v.get("Value")) for v in conf.get("Values") or ()]
    return out


def default_dhcp_configurations(region: str) -> list[DhcpConfiguration]:
    """The ``DhcpConfigurations`` of the option set EC2 creates in every region and associates
    with new VPCs."""
    return [
        {"Key": "domain-name", "Values": [{"Value": default_domain(region)}]},
        {"Key": "domain-name-servers", "Values": [{"Value": AMAZON_PROVIDED_DNS}]},
    ]


# -- what an environment sees ---------------------------------------------------------------------


def resolv_conf(nameservers: Sequence[IPv4Address | str], search: Sequence[str] = ()) -> str:
    """An environment's ``/etc/resolv.conf``."""
    lines = [f"search {' '.join(search)}"] if search else []
    lines.append(RESOLV_OPTIONS)
    lines += [f"nameserver {server}" for server in nameservers]
    return "\n".join(lines) + "\n"


def vpc_resolv_conf(resolver: IPv4Address, dhcp: DhcpSettings) -> str:
    """The resolv.conf a VPC's DHCP hands out: its DHCP option set's name servers (the VPC's
    Amazon DNS server for ``AmazonProvidedDNS``; glibc reads at most three) and search domains."""
    servers = [str(resolver) if s == AMAZON_PROVIDED_DNS else s for s in dhcp.servers]
    return resolv_conf(list(dict.fromkeys(servers))[:3], dhcp.domain_names)


# -- the zone -------------------------------------------------------------------------------------


class Outcome(enum.Enum):
    ANSWER = "answer"  # records follow (maybe none: the name exists, not with that type)
    NXDOMAIN = "nxdomain"  # a name of ours that does not exist
    FORWARD = "forward"  # not ours: ask the internet
    REFUSE = "refuse"  # not answered at all


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    addresses: tuple[IPv4Address, ...] = ()  # A records
    pointer: str | None = None  # a PTR record's target (fully qualified, no trailing dot)
    ttl: int = PRIVATE_TTL


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


@dataclass(frozen=True)
class Zone:
    """What the Amazon DNS server of one VPC (or of the default network) answers by itself.

    ``hosts``: private addresses of the VPC's interfaces; ``private``: whether their names answer
    (both DNS attributes on); ``cidrs``: the VPC's blocks (their reverse names are ours);
    ``extra``: further names (lowercase, no trailing dot) to IPv4 addresses.
    """

    region: str
    hosts: frozenset[IPv4Address] = frozenset()
    private: bool = False
    cidrs: tuple[IPv4Network, ...] = ()
    extra: Mapping[str, tuple[IPv4Address, ...]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        region: str,
        addresses: Iterable[IPv4Address | str],
        attributes: VpcDnsAttributes,
        cidrs: Iterable[IPv4Network | str] = (),
        extra: Mapping[str, Iterable[IPv4Address | str]] | None = None,
    ) -> Zone:
        """A VPC's zone from its interfaces' private addresses and its attributes."""
        return cls(
            region=region,
            hosts=frozenset(IPv4Address(a) for a in addresses),
            private=attributes.support and attributes.hostnames,
            cidrs=tuple(IPv4Network(c) for c in cidrs),
            extra={_norm(k): tuple(IPv4Address(a) for a in v) for k, v in (extra or {}).items()},
        )

    @property
    def domain(self) -> str:
        return default_domain(self.region)

    def lookup(self, qname: str, qtype: str) -> Answer:
        """The answer to a question (``qtype`` as text: ``A``, ``AAAA``, ``PTR``...)."""
        name = _norm(qname)
        if name in self.extra:
            return Answer(Outcome.ANSWER, self.extra[name] if qtype in ("A", "ANY") else ())
        _, dot, parent = name.partition(".")
        if dot and f"*.{parent}" in self.extra:
            wild = self.extra[f"*.{parent}"]
            return Answer(Outcome.ANSWER, wild if qtype in ("A", "ANY") else ())
        if self.region and (name == self.domain or name.endswith("." + self.domain)):
            return self._private(name, qtype)
        if any(name == d or name.endswith("." + d) for d in INTERNAL_DOMAINS):
            return Answer(Outcome.NXDOMAIN)  # another region's (or, outside a VPC, any) private names
        if name.endswith(".in-addr.arpa"):
            return self._reverse(name, qtype)
        if _host_network_name(name, qtype):
            return Answer(Outcome.NXDOMAIN)
        return Answer(Outcome.FORWARD)

    def _private(self, name: str, qtype: str) -> Answer:
        if not self.private:
            return Answer(Outcome.NXDOMAIN)
        label = name[: -len(self.domain) - 1] if name != self.domain else ""
        address = _address_of_label(label)
        if address is None or address not in self.hosts:
            return Answer(Outcome.NXDOMAIN)
        return Answer(Outcome.ANSWER, (address,) if qtype in ("A", "ANY") else ())

    def _reverse(self, name: str, qtype: str) -> Answer:
        parts = name[: -len(".in-addr.arpa")].split(".")
        try:
            address = IPv4Address(".".join(reversed(parts))) if len(parts) == 4 else None
        except ValueError:
            address = None
        if address is None:
            # A zone or a longer name under a private range is the host's business as much.
            return Answer(Outcome.NXDOMAIN if _host_network_name(name, qtype) else Outcome.FORWARD)
        if not any(address in c for c in self.cidrs):
            # The host's own networks are nobody's business: private ranges end here.
            private = address.is_private or any(address in r for r in _HOST_RANGES)
            return Answer(Outcome.NXDOMAIN if private else Outcome.FORWARD)
        if not self.private or address not in self.hosts:
            return Answer(Outcome.NXDOMAIN)
        pointer = private_dns_name(address, self.region)
        return Answer(Outcome.ANSWER, pointer=pointer if qtype in ("PTR", "ANY") else None)


def _address_of_label(label: str) -> IPv4Address | None:
    """``ip-10-0-1-10`` -> 10.0.1.10 (anything else: None)."""
    if not label.startswith("ip-") or "." in label:
        return None
    parts = label[3:].split("-")
    if len(parts) != 4 or not all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts):
        return None
    try:
        return IPv4Address(".".join(parts))
    except ValueError:
        return None


def _host_network_name(name: str, qtype: str) -> bool:
    """Whether ``name`` (normalized) is about the host's own networks: a single label asked as a
    host (the host's resolver would answer its own name, ``_gateway``, or ask the LAN by LLMNR;
    no top-level domain has an address), a name under :data:`HOST_DOMAINS`, or a reverse name
    (IPv4 or IPv6) under a private range."""
    if "." not in name:
        return qtype in ("A", "AAAA", "ANY", "PTR")
    if any(name == d or name.endswith("." + d) for d in HOST_DOMAINS):
        return True
    if name.endswith(".in-addr.arpa"):
        labels = name[: -len(".in-addr.arpa")].split(".")[::-1][:4]
        if not all(label.isdigit() and int(label) < 256 for label in labels):
            return False
        octets = [int(label) for label in labels]
        network = IPv4Network((bytes(octets + [0] * (4 - len(octets))), 8 * len(octets)))
        return network.is_private or any(network.subnet_of(r) for r in _HOST_RANGES)
    if name.endswith(".ip6.arpa"):
        nibbles = name[: -len(".ip6.arpa")].split(".")[::-1][:32]
        if not all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
            return False
        bits = int("".join(nibbles).ljust(32, "0"), 16)
        return IPv6Network((bits, 4 * len(nibbles))).is_private
    return False
