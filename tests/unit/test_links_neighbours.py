"""rtnetlink neighbour and FDB requests (linux.links): the bytes the kernel is sent."""

from __future__ import annotations

import socket
import struct

from lamina.linux.links import neighbour_message


def test_a_neighbour_request_is_header_ndmsg_and_padded_attributes() -> None:
    message = neighbour_message(
        28, 0x400 | 0x100, socket.AF_INET, 7, 0, [(1, bytes([169, 254, 0, 6])), (2, bytes(6))]
    )
    length, kind, flags, seq, pid = struct.unpack_from("IHHII", message)
    assert (length, kind, seq, pid) == (len(message), 28, 1, 0)
    assert flags == 0x400 | 0x100 | 0x1 | 0x4  # create, replace, request, ack
    family, ifindex, state, ndm_flags, ndm_type = struct.unpack_from("BxxxiHBB", message, 16)
    assert (family, ifindex, state, ndm_flags, ndm_type) == (socket.AF_INET, 7, 0x80, 0, 0)
    # NDA_DST (4 bytes: no padding), then NDA_LLADDR (6 bytes, padded to 8).
    assert message[28:36] == struct.pack("HH", 8, 1) + bytes([169, 254, 0, 6])
    assert message[36:48] == struct.pack("HH", 10, 2) + bytes(6) + bytes(2)
    assert len(message) == 48 and len(message) % 4 == 0


def test_an_fdb_request_is_a_bridge_family_self_entry() -> None:
    message = neighbour_message(28, 0x400 | 0x200, 7, 3, 0x02, [(2, bytes(6)), (1, bytes(4))])
    family, ifindex, state, ndm_flags, _ = struct.unpack_from("BxxxiHBB", message, 16)
    assert (family, ifindex, state, ndm_flags) == (7, 3, 0x80, 0x02)  # AF_BRIDGE, permanent, NTF_SELF
