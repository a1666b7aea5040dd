"""Network links configured with ioctls, in the calling thread's network namespace.

Facts about link ioctls (netdevice(7)):
- ``SIOCGIFFLAGS``/``SIOCSIFFLAGS``/``SIOCSIFADDR``/``SIOCSIFNETMASK`` act on the link of that name
  in the network namespace of the socket they are issued on, and a socket belongs to the
  namespace of the thread that created it: a thread switched into a namespace
  (``NetNamespace.call``) configures that namespace's links. No process is started, which is why
  the cold-start path uses them instead of ``ip``.
- Setting an address and netmask makes the kernel add the prefix route, as ``ip address add`` does.
- ``struct ifreq`` is 40 bytes: a 16-byte name, then a union (flags: a short; an address: a
  ``sockaddr_in``).
- Neighbour and forwarding-database entries have no ioctl: they are rtnetlink messages
  (rtnetlink(7)), ``RTM_NEWNEIGH``/``RTM_DELNEIGH`` with a ``struct ndmsg`` (12 bytes: family,
  3 pad bytes, ifindex, state, flags, type) and ``NDA_*`` attributes, sent on a ``NETLINK_ROUTE``
  socket, which, like any socket, belongs to the namespace of the thread that made it. An
  ``AF_INET`` entry is ``ip neigh``'s; an ``AF_BRIDGE`` entry flagged ``NTF_SELF`` on a VXLAN link
  is ``bridge fdb ... self``'s (``NDA_DST``: the remote end). With ``NLM_F_ACK`` the kernel answers
  every request with an ``NLMSG_ERROR`` whose error is 0 on success, ``-errno`` otherwise.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from ipaddress import IPv4Address, IPv4Network

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_SIOCSIFADDR = 0x8916
_SIOCSIFNETMASK = 0x891C
_IFF_UP = 0x1
_IFREQ_FLAGS = "16sH14x"
_IFREQ_ADDR = "16sH2x4s8x"


def _set_up(s: socket.socket, name: bytes) -> None:
    flags = struct.unpack(_IFREQ_FLAGS, fcntl.ioctl(s, _SIOCGIFFLAGS, struct.pack(_IFREQ_FLAGS, name, 0)))[1]
    fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack(_IFREQ_FLAGS, name, flags | _IFF_UP))


def set_up(link: str) -> None:
    """Bring ``link`` up (``ip link set LINK up``); raises OSError."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        _set_up(s, link.encode())


def set_ipv4(link: str, address: IPv4Address, prefix: int) -> None:
    """Give ``link`` the address ``address/prefix`` (replacing its IPv4 address) and bring it up."""
    name = link.encode()
    mask = IPv4Network(f"0.0.0.0/{prefix}").netmask
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for request, value in ((_SIOCSIFADDR, address), (_SIOCSIFNETMASK, mask)):
            fcntl.ioctl(s, request, struct.pack(_IFREQ_ADDR, name, socket.AF_INET, value.packed))
        _set_up(s, name)


_RTM_NEWNEIGH, _RTM_DELNEIGH = 28, 29
_NLMSG_ERROR = 2
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE, _NLM_F_REPLACE = 0x1, 0x4, 0x200, 0x400, 0x100
_NDA_DST, _NDA_LLADDR = 1, 2
_NUD_PERMANENT = 0x80
_NTF_SELF = 0x02
_AF_BRIDGE = 7


def _mac(mac: str) -> bytes:
    raw = bytes(int(part, 16) for part in mac.split(":"))
    if len(raw) != 6:
        raise ValueError(f"{mac!r} is not a MAC address")
    return raw


def _attribute(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("HH", length, kind) + value + bytes(-length % 4)


def neighbour_message(
    kind: int, flags: int, family: int, ifindex: int, ndm_flags: int, attributes: list[tuple[int, bytes]]
) -> bytes:
    """One rtnetlink neighbour request (sequence number 1): header, ``ndmsg``, attributes."""
    body = struct.pack("BxxxiHBB", family, ifindex, _NUD_PERMANENT, ndm_flags, 0)
    body += b"".join(_attribute(k, v) for k, v in attributes)
    return struct.pack("IHHII", 16 + len(body), kind, flags | _NLM_F_REQUEST | _NLM_F_ACK, 1, 0) + body


def _request(message: bytes) -> None:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.bind((0, 0))
        s.send(message)
        answer = s.recv(65536)
    kind = struct.unpack_from("H", answer, 4)[0]
    if kind != _NLMSG_ERROR:
        raise OSError(errno.EPROTO, f"unexpected rtnetlink answer {kind}")
    code = struct.unpack_from("i", answer, 16)[0]
    if code != 0:
        raise OSError(-code, os.strerror(-code))


def set_neighbour(link: str, address: IPv4Address, mac: str) -> None:
    """``ip neigh replace ADDRESS lladdr MAC dev LINK nud permanent``; raises OSError."""
    _request(
        neighbour_message(
            _RTM_NEWNEIGH,
            _NLM_F_CREATE | _NLM_F_REPLACE,
            socket.AF_INET,
            socket.if_nametoindex(link),
            0,
            [(_NDA_DST, address.packed), (_NDA_LLADDR, _mac(mac))],
        )
    )


def add_fdb(link: str, mac: str, dst: IPv4Address) -> None:
    """``bridge fdb add MAC dev LINK dst DST self permanent`` (LINK a VXLAN link): refused
    (``EEXIST``) if MAC has an entry already; raises OSError."""
    _request(
        neighbour_message(
            _RTM_NEWNEIGH,
            _NLM_F_CREATE | _NLM_F_EXCL,
            _AF_BRIDGE,
            socket.if_nametoindex(link),
            _NTF_SELF,
            [(_NDA_LLADDR, _mac(mac)), (_NDA_DST, dst.packed)],
        )
    )


def delete_fdb(link: str, mac: str, dst: IPv4Address) -> None:
    """``bridge fdb del MAC dev LINK dst DST self``; raises OSError."""
    _request(
        neighbour_message(
            _RTM_DELNEIGH,
            0,
            _AF_BRIDGE,
            socket.if_nametoindex(link),
            _NTF_SELF,
            [(_NDA_LLADDR, _mac(mac)), (_NDA_DST, dst.packed)],
        )
    )
