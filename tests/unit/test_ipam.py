"""Unit tests for lamina.domain.ipam: VPC/subnet blocks, reserved addresses, the allocator, ids."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

import pytest

from lamina.domain import ipam
from lamina.errors import AwsError

VPC = IPv4Network("10.0.0.0/16")


def aws_error(excinfo: pytest.ExceptionInfo[AwsError]) -> tuple[str, str, int, bool]:
    e = excinfo.value
    return e.code, e.message, e.status, e.sender_fault


# -- CIDR parsing and VPC blocks ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("10.0.0.0/16", "10.0.0.0/16", id="canonical-16"),
        pytest.param("10.0.0.1/16", "10.0.0.0/16", id="host-bits-cleared"),
        pytest.param("100.68.0.18/18", "100.68.0.0/18", id="aws-doc-example"),
        pytest.param("192.168.7.200/28", "192.168.7.192/28", id="host-bits-28"),
        pytest.param("172.31.255.255/20", "172.31.240.0/20", id="all-host-bits"),
    ],
)
def test_vpc_cidr_is_canonicalised(text: str, expected: str) -> None:
    assert ipam.validate_vpc_cidr(text) == IPv4Network(expected)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("10.0.0.0/8", id="too-big-8"),
        pytest.param("10.0.0.0/15", id="too-big-15"),
        pytest.param("10.0.0.0/29", id="too-small-29"),
        pytest.param("10.0.0.0/32", id="host-route"),
        pytest.param("0.0.0.0/0", id="everything"),
    ],
)
def test_vpc_cidr_out_of_range(text: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        ipam.validate_vpc_cidr(text)
    assert aws_error(excinfo) == ("InvalidVpc.Range", f"The CIDR '{text}' is invalid.", 400, True)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("10.0.0.0", id="no-prefix"),
        pytest.param("1000.1.0.0/20", id="bad-octet"),
        pytest.param("10.0.0.0/33", id="prefix-33"),
        pytest.param("10.0.0.0/", id="empty-prefix"),
        pytest.param("/16", id="empty-address"),
        pytest.param("10.0.0.0/255.255.0.0", id="netmask-form"),
        pytest.param("10.0.0.0/-1", id="negative-prefix"),
        pytest.param("2001:db8::/56", id="ipv6"),
        pytest.param("dsfre", id="garbage"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_cidr_is_invalid_parameter_value(text: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        ipam.validate_vpc_cidr(text)
    assert aws_error(excinfo) == (
        "InvalidParameterValue",
        f"Value ({text}) for parameter cidrBlock is invalid. This is not a valid CIDR block.",
        400,
        True,
    )


def test_parse_cidr_names_the_parameter() -> None:
    with pytest.raises(AwsError, match=r"for parameter destinationCidrBlock is invalid"):
        ipam.parse_cidr("nope", parameter="destinationCidrBlock")


def test_parse_cidr_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="16"):
        ipam.parse_cidr(16)  # type: ignore[arg-type]


# -- subnet blocks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("10.0.0.0/24", "10.0.0.0/24", id="first-24"),
        pytest.param("10.0.255.240/28", "10.0.255.240/28", id="last-28"),
        pytest.param("10.0.0.0/16", "10.0.0.0/16", id="whole-vpc"),
        pytest.param("10.0.1.5/24", "10.0.1.0/24", id="host-bits-cleared"),
    ],
)
def test_subnet_cidr_accepted(text: str, expected: str) -> None:
    assert ipam.validate_subnet_cidr(text, [VPC], []) == IPv4Network(expected)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("10.1.0.0/24", id="outside-vpc"),
        pytest.param("10.0.0.0/15", id="bigger-than-vpc"),
        pytest.param("10.0.0.0/29", id="too-small"),
        pytest.param("9.255.255.0/24", id="just-below"),
        pytest.param("10.0.0.0/8", id="too-big"),
    ],
)
def test_subnet_cidr_out_of_range(text: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        ipam.validate_subnet_cidr(text, [VPC], [])
    assert aws_error(excinfo) == ("InvalidSubnet.Range", f"The CIDR '{text}' is invalid.", 400, True)


def test_subnet_in_secondary_vpc_block() -> None:
    blocks = [VPC, IPv4Network("10.1.0.0/16")]
    assert ipam.validate_subnet_cidr("10.1.2.0/24", blocks, []) == IPv4Network("10.1.2.0/24")


def test_subnet_straddling_two_vpc_blocks_is_out_of_range() -> None:
    blocks = [IPv4Network("10.0.0.0/17"), IPv4Network("10.0.128.0/17")]
    with pytest.raises(AwsError) as excinfo:
        ipam.validate_subnet_cidr("10.0.0.0/16", blocks, [])
    assert excinfo.value.code == "InvalidSubnet.Range"


SIBLINGS = [IPv4Network("10.0.0.0/24"), IPv4Network("10.0.1.0/25")]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("10.0.0.0/24", id="identical"),
        pytest.param("10.0.0.128/25", id="inside-sibling"),
        pytest.param("10.0.0.0/23", id="contains-siblings"),
        pytest.param("10.0.1.0/24", id="contains-half-sibling"),
        pytest.param("10.0.1.112/28", id="inside-second-sibling"),
        pytest.param("10.0.0.17/28", id="host-bits-inside-sibling"),
    ],
)
def test_subnet_conflicts(text: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        ipam.validate_subnet_cidr(text, [VPC], SIBLINGS)
    assert aws_error(excinfo) == (
        "InvalidSubnet.Conflict",
        f"The CIDR '{text}' conflicts with another subnet",
        400,
        True,
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("10.0.1.128/25", id="adjacent-after-half"),
        pytest.param("10.0.2.0/24", id="next-24"),
        pytest.param("10.0.255.0/24", id="far-end"),
    ],
)
def test_subnet_next_to_siblings_is_fine(text: str) -> None:
    assert ipam.validate_subnet_cidr(text, [VPC], SIBLINGS) == IPv4Network(text)


def test_range_is_checked_before_conflict() -> None:
    with pytest.raises(AwsError) as excinfo:
        ipam.validate_subnet_cidr("10.0.0.0/29", [VPC], SIBLINGS)
    assert excinfo.value.code == "InvalidSubnet.Range"


# -- reserved addresses and counts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "reserved"),
    [
        pytest.param("10.0.0.0/24", ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.255"], id="24"),
        pytest.param(
            "10.0.0.16/28", ["10.0.0.16", "10.0.0.17", "10.0.0.18", "10.0.0.19", "10.0.0.31"], id="28"
        ),
        pytest.param(
            "10.0.0.0/16", ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.255.255"], id="16"
        ),
    ],
)
def test_reserved_addresses(cidr: str, reserved: list[str]) -> None:
    net = IPv4Network(cidr)
    assert ipam.reserved_addresses(net) == tuple(IPv4Address(a) for a in reserved)
    for address in net:
        assert ipam.is_reserved(net, address) is (str(address) in reserved)


@pytest.mark.parametrize(
    ("cidr", "usable", "first", "last"),
    [
        pytest.param("10.0.0.0/28", 11, "10.0.0.4", "10.0.0.14", id="28"),
        pytest.param("10.0.0.0/27", 27, "10.0.0.4", "10.0.0.30", id="27"),
        pytest.param("10.0.0.0/24", 251, "10.0.0.4", "10.0.0.254", id="24"),
        pytest.param("10.0.0.0/16", 65531, "10.0.0.4", "10.0.255.254", id="16"),
    ],
)
def test_usable_counts(cidr: str, usable: int, first: str, last: str) -> None:
    net = IPv4Network(cidr)
    assert ipam.usable_count(net) == usable
    assert ipam.available_count(net, 0) == usable
    assert ipam.usable_range(net) == (IPv4Address(first), IPv4Address(last))


@pytest.mark.parametrize(
    ("used", "available"),
    [
        pytest.param(0, 11, id="none-used"),
        pytest.param(1, 10, id="one-used"),
        pytest.param(11, 0, id="full"),
    ],
)
def test_available_count(used: int, available: int) -> None:
    assert ipam.available_count(IPv4Network("10.0.0.0/28"), used) == available


@pytest.mark.parametrize("used", [pytest.param(-1, id="negative"), pytest.param(12, id="more-than-usable")])
def test_available_count_rejects_impossible_usage(used: int) -> None:
    with pytest.raises(ValueError, match=repr(used)):
        ipam.available_count(IPv4Network("10.0.0.0/28"), used)


# -- the allocator --------------------------------------------------------------------------------

SUBNET = IPv4Network("10.0.0.0/28")
SUBNET_ID = "subnet-0123456789abcdef0"


def test_a_28_hands_out_eleven_addresses_then_runs_out() -> None:
    used: set[IPv4Address] = set()
    handed: list[IPv4Address] = []
    for _ in range(11):
        address = ipam.allocate(SUBNET, used, subnet_id=SUBNET_ID)
        assert address not in used
        assert not ipam.is_reserved(SUBNET, address)
        used.add(address)
        handed.append(address)
        assert ipam.available_count(SUBNET, len(used)) == 11 - len(used)
    assert handed == [IPv4Address(f"10.0.0.{n}") for n in range(4, 15)]
    with pytest.raises(AwsError) as excinfo:
        ipam.allocate(SUBNET, used, subnet_id=SUBNET_ID)
    assert aws_error(excinfo) == (
        "InsufficientFreeAddressesInSubnet",
        f"There are not enough free addresses in subnet '{SUBNET_ID}' to satisfy the requested number of instances.",
        400,
        True,
    )


@pytest.mark.parametrize(
    ("used", "expected"),
    [
        pytest.param([], "10.0.0.4", id="empty"),
        pytest.param(["10.0.0.4"], "10.0.0.5", id="first-taken"),
        pytest.param(["10.0.0.4", "10.0.0.6"], "10.0.0.5", id="hole-reused"),
        pytest.param(["10.0.0.5", "10.0.0.6"], "10.0.0.4", id="lowest-first"),
        pytest.param([f"10.0.0.{n}" for n in range(4, 14)], "10.0.0.14", id="last-one"),
    ],
)
def test_automatic_allocation_takes_lowest_free(used: list[str], expected: str) -> None:
    taken = {IPv4Address(a) for a in used}
    assert ipam.allocate(SUBNET, taken, subnet_id=SUBNET_ID) == IPv4Address(expected)


def test_released_address_is_reused() -> None:
    used = {IPv4Address(f"10.0.0.{n}") for n in range(4, 15)}
    used.discard(IPv4Address("10.0.0.9"))
    assert ipam.allocate(SUBNET, used, subnet_id=SUBNET_ID) == IPv4Address("10.0.0.9")


def test_allocation_in_a_big_busy_subnet_is_quick() -> None:
    net = IPv4Network("10.0.0.0/16")
    first, _ = ipam.usable_range(net)
    used = {IPv4Address(int(first) + i) for i in range(20_000)}
    assert ipam.allocate(net, used, subnet_id=SUBNET_ID) == IPv4Address(int(first) + 20_000)


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param("10.0.0.4", id="first-usable"),
        pytest.param("10.0.0.9", id="middle"),
        pytest.param("10.0.0.14", id="last-usable"),
    ],
)
def test_requested_address_is_granted(requested: str) -> None:
    assert ipam.allocate(SUBNET, set(), IPv4Address(requested), subnet_id=SUBNET_ID) == IPv4Address(requested)


@pytest.mark.parametrize(
    ("requested", "code", "message"),
    [
        pytest.param(
            "10.0.0.16",
            "InvalidParameterValue",
            "Address 10.0.0.16 does not fall within the subnet's address range",
            id="just-outside",
        ),
        pytest.param(
            "192.168.0.5",
            "InvalidParameterValue",
            "Address 192.168.0.5 does not fall within the subnet's address range",
            id="far-outside",
        ),
        pytest.param(
            "10.0.0.0",
            "InvalidParameterValue",
            "Address 10.0.0.0 is in subnet's reserved address range",
            id="network",
        ),
        pytest.param(
            "10.0.0.1",
            "InvalidParameterValue",
            "Address 10.0.0.1 is in subnet's reserved address range",
            id="router",
        ),
        pytest.param(
            "10.0.0.2",
            "InvalidParameterValue",
            "Address 10.0.0.2 is in subnet's reserved address range",
            id="dns",
        ),
        pytest.param(
            "10.0.0.3",
            "InvalidParameterValue",
            "Address 10.0.0.3 is in subnet's reserved address range",
            id="future",
        ),
        pytest.param(
            "10.0.0.15",
            "InvalidParameterValue",
            "Address 10.0.0.15 is in subnet's reserved address range",
            id="broadcast",
        ),
        pytest.param("10.0.0.7", "InvalidIPAddress.InUse", "Address 10.0.0.7 is in use.", id="in-use"),
    ],
)
def test_requested_address_refused(requested: str, code: str, message: str) -> None:
    with pytest.raises(AwsError) as excinfo:
        ipam.allocate(SUBNET, {IPv4Address("10.0.0.7")}, IPv4Address(requested), subnet_id=SUBNET_ID)
    assert aws_error(excinfo) == (code, message, 400, True)


def test_requested_address_in_a_full_subnet_is_in_use_not_insufficient() -> None:
    used = {IPv4Address(f"10.0.0.{n}") for n in range(4, 15)}
    with pytest.raises(AwsError) as excinfo:
        ipam.allocate(SUBNET, used, IPv4Address("10.0.0.4"), subnet_id=SUBNET_ID)
    assert excinfo.value.code == "InvalidIPAddress.InUse"


# -- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "rand", "expected"),
    [
        pytest.param("vpc", bytes(range(9)), "vpc-00010203040506070", id="vpc-9-bytes"),
        pytest.param("subnet", b"\xff" * 16, "subnet-fffffffffffffffff", id="subnet-extra-bytes"),
        pytest.param("sgr", bytes.fromhex("0a1b2c3d4e5f60718293"), "sgr-0a1b2c3d4e5f60718", id="sgr"),
        pytest.param("vpc-cidr-assoc", bytes(9), "vpc-cidr-assoc-00000000000000000", id="dashed-prefix"),
    ],
)
def test_new_id(prefix: str, rand: bytes, expected: str) -> None:
    assert ipam.new_id(prefix, rand) == expected
    assert re.fullmatch(rf"{prefix}-[0-9a-f]{{17}}", expected)


@pytest.mark.parametrize(
    ("prefix", "rand"),
    [
        pytest.param("vpc", bytes(8), id="too-few-bytes"),
        pytest.param("", bytes(9), id="empty-prefix"),
        pytest.param("vpc-", bytes(9), id="trailing-dash"),
        pytest.param("VPC", bytes(9), id="upper-case"),
    ],
)
def test_new_id_misuse(prefix: str, rand: bytes) -> None:
    with pytest.raises(ValueError):
        ipam.new_id(prefix, rand)
