"""The rulesets of lamina's way out (pure): a NAT gateway's own table, the edge namespace between
every VPC and the uplink, and lamina's table in the uplink (its masquerade and the egress limits).

The shape and the addresses are in :mod:`lamina.net.uplink`'s docstring; the VPC routers' own
plans and rulesets are in :mod:`lamina.domain.dataplane`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from lamina.domain import endpoints as P
from lamina.domain.dataplane import INNER_LINK, nft_elements

NAT_TABLE = "inet lamina_nat"  # in a NAT gateway's namespace
EDGE_TABLE = "inet lamina_edge"  # in the edge namespace
EDGE_UPLINK_LINK = "uplink0"  # the edge's link to the uplink
EDGE_DEFAULT_LINK = "default0"  # the edge's link to the default network
# The default network's link to the edge has an interface's name: ``net.attach`` forwards
# environments' flows out of ``eth0``, in an interface's namespace as in this one.
DEFAULT_LINK = INNER_LINK
EDGE_DEFAULT_ADDRESS = IPv4Interface("169.254.168.5/30")
DEFAULT_ADDRESS = IPv4Interface("169.254.168.6/30")  # what the default network's flows leave as
EDGE_UPLINK_ADDRESS = IPv4Interface("169.254.168.9/30")  # the edge's flows reach the uplink as this
UPLINK_ADDRESS = IPv4Interface("169.254.168.10/30")  # lamina's only address in the uplink namespace


def _replace(table: str, body: Sequence[str]) -> str:
    return "\n".join([f"table {table} {{}}", f"delete table {table}", f"table {table} {{", *body, "}"]) + "\n"


def render_nat_ruleset(public_ip: IPv4Address) -> str:
    """A NAT gateway's own table: forward what comes from the VPC back out to the router as
    ``public_ip`` (SNAT, so conntrack turns replies back); nothing is opened towards it.

    Loaded once, into the NAT gateway's new namespace (a different address is a new namespace):
    it creates the table rather than replacing one, which would wait for an RCU grace period."""
    return (
        "\n".join(
            [
                f"table {NAT_TABLE} {{",
                "\tchain forward {",
                "\t\ttype filter hook forward priority filter; policy drop;",
                "\t\tmeta nfproto != ipv4 drop",
                "\t\tct state established,related accept",
                "\t\tct state invalid drop",
                f"\t\tip daddr {public_ip} drop",
                f'\t\tiifname "{INNER_LINK}" oifname "{INNER_LINK}" accept',
                "\t}",
                "\tchain postrouting {",
                "\t\ttype nat hook postrouting priority srcnat; policy accept;",
                f'\t\toifname "{INNER_LINK}" snat ip to {public_ip}',
                "\t}",
                "\tchain input {",
                "\t\ttype filter hook input priority filter; policy drop;",
                "\t\tct state established,related accept",
                '\t\tiifname "lo" accept',
                "\t}",
                "}",
            ]
        )
        + "\n"
    )


def render_edge_ruleset(
    public: Sequence[tuple[str, IPv4Address]], inbound: Sequence[tuple[str, IPv4Address]] = ()
) -> str:
    """The edge's table (an internet gateway for every VPC, and the default network's way out).

    New flows go out to the uplink: from a VPC's link when their source is an Elastic IP of
    that VPC (``public``: (edge link, address) pairs), from the default network masqueraded to
    the edge's uplink address. New flows come in only to the Elastic IPs of interfaces
    (``inbound``), towards their VPC's link (its router applies their security groups); replies
    come back by conntrack. lamina's public API addresses (on the edge's ``lo``) take TCP 443
    from the same sources that may go out.
    """
    api = f"ip daddr {{ {', '.join(str(a) for a in P.PUBLIC_ADDRESSES)} }} tcp dport {P.API_PORT}"
    return _replace(
        EDGE_TABLE,
        [
            f"\tset public {{ type ifname . ipv4_addr{nft_elements(_public_elements(public))}; }}",
            f"\tset inbound {{ type ifname . ipv4_addr{nft_elements(_public_elements(inbound))}; }}",
            "\tchain forward {",
            "\t\ttype filter hook forward priority filter; policy drop;",
            "\t\tmeta nfproto != ipv4 drop",
            "\t\tct state established,related accept",
            "\t\tct state invalid drop",
            f'\t\tiifname "{EDGE_UPLINK_LINK}" oifname . ip daddr @inbound accept',
            f'\t\toifname != "{EDGE_UPLINK_LINK}" drop',
            "\t\tiifname . ip saddr @public accept",
            f'\t\tiifname "{EDGE_DEFAULT_LINK}" ip saddr {DEFAULT_ADDRESS.ip} accept',
            "\t}",
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f'\t\tiifname "{EDGE_DEFAULT_LINK}" oifname "{EDGE_UPLINK_LINK}" masquerade',
            "\t}",
            "\tchain input {",
            "\t\ttype filter hook input priority filter; policy drop;",
            "\t\tct state established,related accept",
            '\t\tiifname "lo" accept',
            # lamina's public API: from a VPC as one of its Elastic IPs (an internet gateway
            # passes only public addresses), and from the default network.
            f"\t\t{api} iifname . ip saddr @public accept",
            f'\t\t{api} iifname "{EDGE_DEFAULT_LINK}" ip saddr {DEFAULT_ADDRESS.ip} accept',
            "\t}",
        ],
    )


def _public_elements(public: Sequence[tuple[str, IPv4Address]]) -> list[str]:
    return [f'"{link}" . {ip}' for link, ip in sorted(public)]


def render_edge_public(
    public: Sequence[tuple[str, IPv4Address]], inbound: Sequence[tuple[str, IPv4Address]] = ()
) -> str:
    """An ``nft -f`` transaction making the edge's ``public`` and ``inbound`` sets exactly
    these: a set's elements change at once, without the RCU grace period that replacing a
    table's base chains costs (some 15 ms)."""
    lines = []
    for name, pairs in (("public", public), ("inbound", inbound)):
        elements = _public_elements(pairs)
        lines.append(f"flush set {EDGE_TABLE} {name}")
        if elements:
            lines.append(f"add element {EDGE_TABLE} {name} {{ {', '.join(elements)} }}")
    return "\n".join(lines) + "\n"


# Destinations nothing behind the uplink may reach unless the operator allows them
# (``--allow-egress-to``): a Lambda function never reaches its host or the host's private networks.
EGRESS_REFUSED = tuple(
    IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local: lamina's own links, a cloud's instance metadata
        "172.16.0.0/12",  # RFC 1918
        "192.168.0.0/16",  # RFC 1918
        "224.0.0.0/3",  # multicast, reserved, broadcast
    )
)


def _interval_set(name: str, blocks: Iterable[IPv4Network]) -> str:
    elements = nft_elements([str(b) for b in sorted(set(blocks))])
    return f"\tset {name} {{ type ipv4_addr; flags interval; auto-merge{elements}; }}"


def render_egress_limits(
    link: str, allowed: Sequence[IPv4Network] = (), *, refuse_local: bool = False
) -> list[str]:
    """The uplink table's sets and chain that keep what comes out of lamina's ``link`` from
    private destinations (:data:`EGRESS_REFUSED`) and, with ``refuse_local`` (the host as the
    uplink), from every address of the uplink namespace itself, whatever link it is on (``fib
    daddr type local``: addresses the host gains later included) -- unless ``allowed``.

    At ``prerouting``, before any DNAT the host's own rules may apply (a port published to a
    container is the host's address rewritten into a private one). Only new flows from lamina's
    link are looked at; what lamina serves itself (the API, the resolver) sits in its own
    namespaces, before the uplink, and is not concerned."""
    refuse = ["\t\tfib daddr type local drop"] if refuse_local else []
    return [
        _interval_set("egress_allowed", allowed),
        _interval_set("egress_refused", EGRESS_REFUSED),
        "\tchain egress {",
        "\t\ttype filter hook prerouting priority dstnat - 10; policy accept;",
        f'\t\tiifname != "{link}" accept',
        "\t\tct state established,related accept",
        "\t\tip daddr @egress_allowed accept",
        *refuse,
        "\t\tip daddr @egress_refused drop",
        "\t}",
    ]


def render_uplink_ruleset(
    table: str,
    link: str,
    public_pool: IPv4Network | None = None,
    allowed: Sequence[IPv4Network] = (),
    *,
    refuse_local: bool = False,
) -> str:
    """lamina's only rules in the uplink namespace (the host's, in production): what comes from
    lamina's link as lamina's own addresses -- the edge's (the default network's flows) and the
    Elastic IP pool's -- and leaves by another link is masqueraded to that link's address, as a
    host's NAT. Traffic for the uplink namespace itself is delivered as it came: a fake internet
    host in a test namespace sees the Elastic IP. Private destinations, and with
    ``refuse_local`` the uplink's own addresses, are refused (:func:`render_egress_limits`)."""
    sources = [str(EDGE_UPLINK_ADDRESS.ip), *([str(public_pool)] if public_pool is not None else [])]
    return _replace(
        table,
        [
            *render_egress_limits(link, allowed, refuse_local=refuse_local),
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f'\t\tiifname "{link}" oifname != "{link}" ip saddr {{ {", ".join(sources)} }} masquerade',
            "\t}",
        ],
    )
