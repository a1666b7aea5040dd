"""VPCs across nodes (pure): the VXLAN overlay's numbers, names and the router's switch ruleset.

An environment on one node reaches its Hyperplane interface on the interface's *home* node through
one VXLAN link per VPC (``TUNNEL_LINK``, the VPC's VNI) in each node's router namespace of that
VPC. A remote attachment is a pair of fixed MACs: the environment's ``vpc0`` on its node, the
``lmeNNNN`` link in the interface's namespace at home, with the same /30 numbering as a local
attachment (:func:`slot_addresses`). Each router namespace joins its ports and ``TUNNEL_LINK``
with an nftables ``netdev`` table (:func:`render_switch`, :func:`render_port_add`) that forwards a frame only along its
attachment's MAC pair: no bridge, no learning, no ARP (neighbours are static), no multicast.
docs/overlay.md has the design; ``net/overlay.py`` applies it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from lamina.errors import LaminaError

VXLAN_PORT = 4789  # IANA's VXLAN port
OVERHEAD = 50  # outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14)
FIRST_VNI = 4096  # VNIs below are left to whatever else the underlay carries
MAX_VNI = (1 << 24) - 1
TUNNEL_LINK = "lmx0"  # the VPC's VXLAN link, in its router namespace on each node
SWITCH_TABLE = "netdev lamina_overlay"
MIN_MTU = 576  # the inner MTU no IPv4 path may go below (RFC 791)

ATTACH_BASE = int(IPv4Address("169.254.0.0"))  # attachments' /30s (net.attach)
SLOTS = 16384  # /30s in 169.254.0.0/16
# 169.254.168.0/24 (lamina's own links, ``dataplane.LINK_BLOCK``) and 169.254.169.0/24 (metadata).
RESERVED_SLOTS = range(168 * 64, 170 * 64)

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


class OverlayError(LaminaError, ValueError):
    """A remote attachment's description is not one this node accepts."""


def inner_mtu(underlay_mtu: int) -> int:
    """The MTU of the tunnel and of every link of a remote attachment."""
    mtu = underlay_mtu - OVERHEAD
    if mtu < MIN_MTU:
        raise OverlayError(f"an underlay MTU of {underlay_mtu} leaves {mtu} bytes inside VXLAN")
    return mtu


def valid_vni(vni: object) -> bool:
    return isinstance(vni, int) and not isinstance(vni, bool) and FIRST_VNI <= vni <= MAX_VNI


def valid_slot(slot: object) -> bool:
    return (
        isinstance(slot, int)
        and not isinstance(slot, bool)
        and 0 < slot < SLOTS
        and slot not in RESERVED_SLOTS
    )


def slot_addresses(slot: int) -> tuple[IPv4Address, IPv4Address]:
    """An attachment's (interface side, environment side) addresses, each in the slot's /30."""
    base = ATTACH_BASE + slot * 4
    return IPv4Address(base + 1), IPv4Address(base + 2)


def attachment_link(slot: int) -> str:
    """The attachment's link in the interface's namespace (the same for local and remote)."""
    return f"lme{slot:04x}"


def valid_node_address(address: object) -> bool:
    """A unicast IPv4 address a node may have on the underlay."""
    return isinstance(address, IPv4Address) and not (
        address.is_multicast
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
    )


def valid_mac(mac: object) -> bool:
    """A unicast, locally administered MAC in lower case (what lamina gives attachments)."""
    if not isinstance(mac, str) or not _MAC.fullmatch(mac):
        return False
    first = int(mac[:2], 16)
    return first & 1 == 0 and first & 2 == 2


def mac_from_bytes(raw: bytes) -> str:
    """A unicast, locally administered MAC from 6 bytes (random ones, say)."""
    if len(raw) != 6:
        raise ValueError("a MAC is 6 bytes")
    first = (raw[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in (first, *raw[1:]))


def _hex(mac: str) -> str:
    return mac.replace(":", "")


@dataclass(frozen=True)
class RemoteLink:
    """One remote attachment, as the home node describes it to the environment's node."""

    vni: int
    home: IPv4Address  # the home node's underlay address
    slot: int  # the /30 in 169.254.0.0/16, allocated at home (no clash with local attachments)
    eni_mac: str  # of ``lmeNNNN`` in the interface's namespace
    env_mac: str  # of ``vpc0`` in the environment's namespace
    mtu: int

    def __post_init__(self) -> None:
        if not valid_vni(self.vni):
            raise OverlayError(f"VNI {self.vni!r} is not in {FIRST_VNI}..{MAX_VNI}")
        if not valid_node_address(self.home):
            raise OverlayError(f"{self.home!r} is not a node address")
        if not valid_slot(self.slot):
            raise OverlayError(f"slot {self.slot!r} is not an attachment slot")
        if not (valid_mac(self.eni_mac) and valid_mac(self.env_mac)) or self.eni_mac == self.env_mac:
            raise OverlayError("an attachment has two distinct unicast, locally administered MACs")
        if not isinstance(self.mtu, int) or isinstance(self.mtu, bool) or not MIN_MTU <= self.mtu <= 65535:
            raise OverlayError(f"MTU {self.mtu!r} is out of range")

    @property
    def gateway(self) -> IPv4Address:
        """The interface side's address (the environment's default gateway)."""
        return slot_addresses(self.slot)[0]

    @property
    def address(self) -> IPv4Address:
        """The environment's address on ``vpc0``."""
        return slot_addresses(self.slot)[1]

    @property
    def inner_link(self) -> str:
        return attachment_link(self.slot)

    @property
    def home_port(self) -> str:
        """The home router namespace's end of the pair whose other end is ``inner_link``."""
        return "lmt" + _hex(self.env_mac)

    @property
    def remote_port(self) -> str:
        """The remote router namespace's end of the pair whose other end is the environment's ``vpc0``."""
        return "lmr" + _hex(self.env_mac)

    def to_json(self) -> str:
        return json.dumps(
            {
                "Vni": self.vni,
                "Home": str(self.home),
                "Slot": self.slot,
                "EniMac": self.eni_mac,
                "EnvMac": self.env_mac,
                "Mtu": self.mtu,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> RemoteLink:
        """Parse and check a description (from another node: every field is validated)."""
        try:
            raw: Any = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise OverlayError(f"not a remote link: {exc}") from exc
        keys = {"Vni", "Home", "Slot", "EniMac", "EnvMac", "Mtu"}
        if not isinstance(raw, dict) or set(raw) != keys:
            raise OverlayError(f"a remote link has exactly the fields {sorted(keys)}")
        home = raw["Home"]
        if not isinstance(home, str):
            raise OverlayError("Home is an IPv4 address")
        try:
            address = IPv4Address(home)
        except ValueError as exc:
            raise OverlayError(f"Home: {exc}") from exc
        return cls(raw["Vni"], address, raw["Slot"], raw["EniMac"], raw["EnvMac"], raw["Mtu"])


@dataclass(frozen=True)
class SwitchPort:
    """One attachment's port in a router namespace: frames from ``local_mac`` (the end on this
    node) to ``remote_mac`` (the end on the other node) go out of the tunnel, and back."""

    link: str
    local_mac: str
    remote_mac: str


def render_switch(tunnel: str = TUNNEL_LINK) -> str:
    """An ``nft -f`` script making the router's overlay table with no attachment: frames from the
    tunnel go where the map of (source MAC, destination MAC) pairs sends them, or are dropped.

    Attachments come and go with :func:`render_port_add` and :func:`render_port_delete`: adding
    chains and map elements does not wait for an RCU grace period (deleting a base chain does),
    so an attachment on a cold start's path costs no wait."""
    return "\n".join(
        [
            f"table {SWITCH_TABLE} {{}}",
            f"delete table {SWITCH_TABLE}",
            f"table {SWITCH_TABLE} {{",
            "\tmap pairs { type ether_addr . ether_addr : verdict; }",
            "\tchain from_tunnel {",
            f'\t\ttype filter hook ingress devices = {{ "{tunnel}" }} priority filter; policy drop;',
            "\t\tether type ip ether saddr . ether daddr vmap @pairs",
            "\t}",
            "}",
            "",
        ]
    )


def render_port_add(port: SwitchPort, tunnel: str = TUNNEL_LINK) -> str:
    """Add one attachment's port: IPv4 from its local MAC to its remote MAC goes into the tunnel,
    IPv4 from the tunnel with the reverse pair goes to the port; nothing else moves."""
    return "\n".join(
        [
            f"table {SWITCH_TABLE} {{",
            f"\tchain to_{port.link} {{",
            f'\t\tfwd to "{port.link}"',
            "\t}",
            f"\tchain from_{port.link} {{",
            f'\t\ttype filter hook ingress devices = {{ "{port.link}" }} priority filter; policy drop;',
            f'\t\tether type ip ether saddr {port.local_mac} ether daddr {port.remote_mac} fwd to "{tunnel}"',
            "\t}",
            "}",
            f"add element {SWITCH_TABLE} pairs {{ {port.remote_mac} . {port.local_mac} : goto to_{port.link} }}",
            "",
        ]
    )


def render_port_delete(port: SwitchPort) -> str:
    """Remove one attachment's port from the switch (one transaction)."""
    return "\n".join(
        [
            f"delete element {SWITCH_TABLE} pairs {{ {port.remote_mac} . {port.local_mac} }}",
            f"delete chain {SWITCH_TABLE} from_{port.link}",
            f"delete chain {SWITCH_TABLE} to_{port.link}",
            "",
        ]
    )


@dataclass(frozen=True)
class RemoteInterface:
    """A Hyperplane interface whose namespace is not on this node (yet): what a VPC function's
    environment attaches to through the VPC's home node, resolved when it attaches (the home may
    be this node by then). ``closed`` as a namespace's: never (a cached Target keeps it)."""

    account: str
    region: str
    vpc_id: str
    eni_id: str
    closed: bool = False
