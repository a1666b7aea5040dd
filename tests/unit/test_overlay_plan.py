"""The overlay's pure parts (domain.overlay): a remote attachment's description, checked field by
field as it arrives from another node; MTU; the router's switch ruleset."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

import pytest

from lamina.domain.overlay import (
    FIRST_VNI,
    MAX_VNI,
    OverlayError,
    RemoteLink,
    SwitchPort,
    inner_mtu,
    mac_from_bytes,
    render_port_add,
    render_port_delete,
    render_switch,
    slot_addresses,
    valid_mac,
)

GOOD = RemoteLink(FIRST_VNI, IPv4Address("10.0.0.1"), 5, "02:00:00:00:00:01", "06:00:00:00:00:02", 1450)


def test_a_link_round_trips_and_derives_its_addresses_and_names() -> None:
    assert RemoteLink.from_json(GOOD.to_json()) == GOOD
    assert (GOOD.gateway, GOOD.address) == (IPv4Address("169.254.0.21"), IPv4Address("169.254.0.22"))
    assert GOOD.inner_link == "lme0005"
    assert GOOD.home_port == "lmt060000000002" and GOOD.remote_port == "lmr060000000002"
    assert all(len(name) <= 15 for name in (GOOD.inner_link, GOOD.home_port, GOOD.remote_port))


def test_slots_share_the_local_attachments_numbering() -> None:
    assert slot_addresses(1) == (IPv4Address("169.254.0.5"), IPv4Address("169.254.0.6"))
    assert slot_addresses(16383) == (IPv4Address("169.254.255.253"), IPv4Address("169.254.255.254"))


def _with(**changes: object) -> str:
    raw = json.loads(GOOD.to_json())
    raw.update(changes)
    return json.dumps(raw)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "null",
        '"x"',
        _with(Vni=0),
        _with(Vni=FIRST_VNI - 1),
        _with(Vni=MAX_VNI + 1),
        _with(Vni=True),
        _with(Vni="4096"),
        _with(Vni=4096.0),
        _with(Home="127.0.0.1"),
        _with(Home="0.0.0.0"),
        _with(Home="224.0.0.1"),
        _with(Home="169.254.1.1"),
        _with(Home="::1"),
        _with(Home="10.0.0.1; rm -rf /"),
        _with(Home=167772161),
        _with(Slot=0),
        _with(Slot=16384),
        _with(Slot=168 * 64),  # 169.254.168.0/24: lamina's own links
        _with(Slot=169 * 64 + 63),  # 169.254.169.252/30: the metadata block
        _with(Slot=-1),
        _with(EniMac="01:00:00:00:00:01"),  # multicast
        _with(EniMac="00:11:22:33:44:55"),  # globally administered: could be a real card's
        _with(EniMac="02:00:00:00:00:01 dev lo"),
        _with(EnvMac="02:00:00:00:00:01"),  # the same MAC on both ends
        _with(EnvMac="FF:FF:FF:FF:FF:FF"),
        _with(Mtu=100),
        _with(Mtu=70000),
        _with(Extra=1),
        json.dumps({k: v for k, v in json.loads(GOOD.to_json()).items() if k != "Mtu"}),
    ],
)
def test_a_bad_description_is_refused(text: str) -> None:
    with pytest.raises(OverlayError):
        RemoteLink.from_json(text)


def test_mtu_takes_off_the_vxlan_overhead() -> None:
    assert inner_mtu(1500) == 1450
    assert inner_mtu(9000) == 8950
    with pytest.raises(OverlayError):
        inner_mtu(600)


def test_random_macs_are_unicast_and_local() -> None:
    for raw in (b"\xff" * 6, b"\x00" * 6, bytes(range(6))):
        assert valid_mac(mac_from_bytes(raw))
    with pytest.raises(ValueError):
        mac_from_bytes(b"\x00" * 5)


def test_the_switch_forwards_only_along_each_attachments_mac_pair() -> None:
    base = render_switch()
    assert base.startswith("table netdev lamina_overlay {}\ndelete table netdev lamina_overlay\n")
    assert 'devices = { "lmx0" }' in base and "policy drop;" in base
    assert "ether type ip ether saddr . ether daddr vmap @pairs" in base
    assert "fwd" not in base  # nothing goes anywhere before an attachment is added
    port = SwitchPort("lmtb", "02:00:00:00:00:0b", "06:00:00:00:00:0b")
    add = render_port_add(port)
    assert "delete" not in add  # only additions: no RCU grace period on a cold start's path
    assert 'devices = { "lmtb" }' in add and "policy drop;" in add
    assert 'ether type ip ether saddr 02:00:00:00:00:0b ether daddr 06:00:00:00:00:0b fwd to "lmx0"' in add
    assert "pairs { 06:00:00:00:00:0b . 02:00:00:00:00:0b : goto to_lmtb }" in add
    delete = render_port_delete(port)
    assert delete.splitlines() == [
        "delete element netdev lamina_overlay pairs { 06:00:00:00:00:0b . 02:00:00:00:00:0b }",
        "delete chain netdev lamina_overlay from_lmtb",
        "delete chain netdev lamina_overlay to_lmtb",
    ]


def test_the_node_side_refuses_bad_settings_before_touching_the_kernel() -> None:
    from lamina.linux import NetNamespace
    from lamina.net.overlay import Overlay, VpcTunnel

    for local in (IPv4Address("127.0.0.1"), IPv4Address("0.0.0.0"), IPv4Address("239.1.1.1")):
        with pytest.raises(OverlayError):
            Overlay(local)
    with pytest.raises(OverlayError):
        Overlay(IPv4Address("10.0.0.1"), underlay_mtu=600)
    unused = NetNamespace(-1, "never used")  # any use of its fd would fail
    for vni, local in ((0, "10.0.0.1"), (MAX_VNI + 1, "10.0.0.1"), (FIRST_VNI, "224.0.0.1")):
        with pytest.raises(OverlayError):
            VpcTunnel(unused, unused, vni, IPv4Address(local))
    with pytest.raises(OverlayError):
        VpcTunnel(unused, unused, FIRST_VNI, IPv4Address("10.0.0.1"), port=0)
    with pytest.raises(OverlayError):  # itself as its own peer
        VpcTunnel(unused, unused, FIRST_VNI, IPv4Address("10.0.0.1"), [IPv4Address("10.0.0.1")])
    node = Overlay(IPv4Address("10.0.0.1"))  # this process's own namespace as the underlay
    try:
        with pytest.raises(OverlayError):
            node.tunnel("vpc-none")
        assert node.set_peers([IPv4Address("10.0.0.2")]) == []
        node.remove("vpc-none")
    finally:
        node.close()
    assert node.underlay.closed
