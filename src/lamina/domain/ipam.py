"""IPv4 address management for VPCs and subnets, as EC2 does it (pure).

Facts about EC2 addressing this module encodes (the VPC User Guide, "IP addressing for your VPCs
and subnets", and the CreateVpc/CreateSubnet API reference):

- A VPC or subnet IPv4 block is /16 to /28. EC2 *accepts* a block with host bits set and stores
  its canonical form ("if you specify 100.68.0.18/18, we modify it to 100.68.0.0/18").
- A subnet lies inside its VPC's block and overlaps no other subnet of the VPC.
- Every subnet reserves five addresses: the network address, +1 (VPC router), +2 (DNS),
  +3 (future use) and the broadcast address. A /28 therefore has 16 - 5 = 11 usable addresses.
- Resource ids are a prefix, a dash and 17 lowercase hex digits (``vpc-0a1b2c3d4e5f60718``).

Error codes and messages are EC2's own, as seen in real responses:
``InvalidVpc.Range`` / ``InvalidSubnet.Range`` "The CIDR '<cidr>' is invalid.",
``InvalidSubnet.Conflict`` "The CIDR '<cidr>' conflicts with another subnet",
``InvalidParameterValue`` "Value (<x>) for parameter cidrBlock is invalid. This is not a valid CIDR block.",
and for a requested private address (RunInstances/CreateNetworkInterface):
"Address <ip> does not fall within the subnet's address range",
"Address <ip> is in subnet's reserved address range", ``InvalidIPAddress.InUse`` "Address <ip> is in use.",
``InsufficientFreeAddressesInSubnet`` "There are not enough free addresses in subnet '<id>' to satisfy
the requested number of instances."
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from ipaddress import IPv4Address, IPv4Network, ip_network

from lamina.errors import AwsError

MIN_PREFIX = 16
MAX_PREFIX = 28
# network, +1 router, +2 DNS, +3 future use ... broadcast
RESERVED_HEAD = 4
RESERVED_TAIL = 1
RESERVED_PER_SUBNET = RESERVED_HEAD + RESERVED_TAIL

ID_HEX_DIGITS = 17
_ID_PREFIX = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def _invalid_cidr(text: str) -> str:
    return f"The CIDR '{text}' is invalid."


def _error(code: str, message: str) -> AwsError:
    return AwsError(message, code=code, status=400, sender_fault=True)


def parse_cidr(text: str, *, parameter: str = "cidrBlock") -> IPv4Network:
    """Parse an IPv4 CIDR block the way EC2 reads ``CidrBlock``: canonicalised, never a bare address.

    Host bits are cleared (``10.0.0.1/16`` -> ``10.0.0.0/16``), as the CreateVpc/CreateSubnet
    reference documents. Anything that is not ``a.b.c.d/n`` is ``InvalidParameterValue``.
    """
    if not isinstance(text, str):
        raise TypeError(f"CIDR block must be a str, not {text!r}")
    invalid = _error(
        "InvalidParameterValue",
        f"Value ({text}) for parameter {parameter} is invalid. This is not a valid CIDR block.",
    )
    address, slash, prefix = text.partition("/")
    # ipaddress would read a bare address as /32 and accepts "/255.255.0.0" netmasks; EC2 does neither.
    if not slash or not prefix.isdigit() or not address:
        raise invalid
    try:
        network = ip_network(text, strict=False)
    except ValueError:
        raise invalid from None
    if not isinstance(network, IPv4Network):
        raise invalid
    return network


def _prefix_in_range(network: IPv4Network) -> bool:
    return MIN_PREFIX <= network.prefixlen <= MAX_PREFIX


def validate_vpc_cidr(text: str) -> IPv4Network:
    """A CreateVpc ``CidrBlock``: canonical form of a /16../28 block, else ``InvalidVpc.Range``.

    The message quotes the block as the caller wrote it.
    """
    network = parse_cidr(text)
    if not _prefix_in_range(network):
        raise _error("InvalidVpc.Range", _invalid_cidr(text))
    return network


def validate_subnet_cidr(
    text: str,
    vpc_cidrs: Iterable[IPv4Network],
    siblings: Iterable[IPv4Network],
) -> IPv4Network:
    """A CreateSubnet ``CidrBlock``: canonical, /16../28, inside one of the VPC's blocks, and
    overlapping none of the VPC's other subnets.

    ``InvalidSubnet.Range`` for size or placement, ``InvalidSubnet.Conflict`` for an overlap
    (the range is checked first, so a block outside the VPC never reports a conflict).
    """
    network = parse_cidr(text)
    if not _prefix_in_range(network) or not any(network.subnet_of(vpc) for vpc in vpc_cidrs):
        raise _error("InvalidSubnet.Range", _invalid_cidr(text))
    if any(network.overlaps(other) for other in siblings):
        raise _error("InvalidSubnet.Conflict", f"The CIDR '{text}' conflicts with another subnet")
    return network


def reserved_addresses(cidr: IPv4Network) -> tuple[IPv4Address, ...]:
    """The five addresses EC2 keeps for itself in a subnet, lowest first."""
    base = int(cidr.network_address)
    head = tuple(IPv4Address(base + i) for i in range(RESERVED_HEAD))
    return (*head, cidr.broadcast_address)


def is_reserved(cidr: IPv4Network, address: IPv4Address) -> bool:
    """Whether ``address`` (inside ``cidr``) is one of the subnet's five reserved addresses."""
    offset = int(address) - int(cidr.network_address)
    return offset < RESERVED_HEAD or address == cidr.broadcast_address


def usable_range(cidr: IPv4Network) -> tuple[IPv4Address, IPv4Address]:
    """First and last address an interface may hold (``10.0.0.4`` .. ``10.0.0.254`` for a /24)."""
    first = IPv4Address(int(cidr.network_address) + RESERVED_HEAD)
    last = IPv4Address(int(cidr.broadcast_address) - RESERVED_TAIL)
    return first, last


def usable_count(cidr: IPv4Network) -> int:
    """Addresses a subnet can hand out in total: its size less the five reserved ones."""
    return cidr.num_addresses - RESERVED_PER_SUBNET


def available_count(cidr: IPv4Network, used: int) -> int:
    """``AvailableIpAddressCount``: size - 5 - addresses in use (``used`` is the allocator's count)."""
    total = usable_count(cidr)
    if not 0 <= used <= total:
        raise ValueError(f"{used!r} addresses in use does not fit {cidr} ({total} usable)")
    return total - used


def allocate(
    cidr: IPv4Network,
    used: Collection[IPv4Address],
    requested: IPv4Address | None = None,
    *,
    subnet_id: str,
) -> IPv4Address:
    """Pick the private address for a new interface in the subnet ``cidr``.

    Automatic (``requested`` None): the lowest usable address not in ``used``, else
    ``InsufficientFreeAddressesInSubnet``. Requested: it must fall inside the subnet, not be one of
    the reserved five, and not be in use (each with EC2's error). ``used`` holds the addresses
    already assigned in this subnet; the caller records the result.
    """
    if requested is not None:
        if requested not in cidr:
            raise _error(
                "InvalidParameterValue",
                f"Address {requested} does not fall within the subnet's address range",
            )
        if is_reserved(cidr, requested):
            raise _error(
                "InvalidParameterValue", f"Address {requested} is in subnet's reserved address range"
            )
        if requested in used:
            raise _error("InvalidIPAddress.InUse", f"Address {requested} is in use.")
        return requested
    first, last = usable_range(cidr)
    taken = {int(a) for a in used}
    # At most len(used) + 1 steps: every skipped candidate is a used address.
    for candidate in range(int(first), int(last) + 1):
        if candidate not in taken:
            return IPv4Address(candidate)
    raise _error(
        "InsufficientFreeAddressesInSubnet",
        f"There are not enough free addresses in subnet '{subnet_id}' to satisfy the requested number of instances.",
    )


def new_id(prefix: str, rand: bytes) -> str:
    """An EC2 resource id: ``<prefix>-`` and 17 lowercase hex digits taken from ``rand``.

    The caller supplies the randomness (``os.urandom(9)`` or more), keeping this module pure.
    """
    if not _ID_PREFIX.fullmatch(prefix):
        raise ValueError(f"not a resource id prefix: {prefix!r}")
    digits = rand.hex()
    if len(digits) < ID_HEX_DIGITS:
        raise ValueError(f"need at least 9 random bytes for an id, got {len(rand)!r}")
    return f"{prefix}-{digits[:ID_HEX_DIGITS]}"
