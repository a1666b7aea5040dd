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
"""

from __future__ import annotations

import fcntl
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
