"""Attaching an execution environment to its function's Hyperplane network interface.

Facts (Linux 6.x) and the design they lead to:
- An environment has its own network namespace (only ``lo``: its Runtime API and the relay to
  lamina listen there). A VPC function reaches the VPC through a veth pair from its namespace
  into the interface's namespace, which forwards it out of ``eth0`` -- the interface's link into
  the VPC router -- masquerading it to the interface's address. So every environment sharing the
  interface appears in the VPC with that one address, as with Lambda's Hyperplane ENIs.
- Nothing enters an environment: the interface namespace forwards only flows an environment
  started (``ct state established,related``); a connection opened from the VPC towards the
  interface's address reaches no process (the interface namespace listens on nothing).
- Each attachment is a /30 from 169.254.0.0/16 (skipping 169.254.169.0/24, where Lambda and EC2
  keep their metadata addresses, and 169.254.168.0/24, lamina's own links between its namespaces,
  ``domain.dataplane.LINK_BLOCK``); the environment's default route points at the interface side.
- Functions without a VPC attach the same way to the *default network* namespace
  (``net.uplink``), whose ``eth0`` leads to the edge and out to the uplink.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from lamina.domain.overlay import RESERVED_SLOTS, SLOTS, attachment_link, slot_addresses
from lamina.linux import NetNamespace, links
from lamina.net import nftables, sysctl
from lamina.net.commands import DataplaneError, run

_SLOTS = SLOTS  # /30s in a /16
_RESERVED = RESERVED_SLOTS  # 169.254.168.0/24 (LINK_BLOCK) and 169.254.169.0/24

FORWARDER = {**sysctl.INTERFACE, "ipv4/ip_forward": "1", "ipv4/conf/all/rp_filter": "0"}

# The interface namespace's own table: forward environments' flows out of eth0 as the interface.
RULESET = """table inet lamina_eni
delete table inet lamina_eni
table inet lamina_eni {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "lme*" oifname "eth0" accept
    }
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        iifname "lme*" oifname "eth0" masquerade
    }
}
"""


class _Slots:
    def __init__(self) -> None:
        self._used: set[int] = set()
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            for _ in range(_SLOTS):
                slot = self._next
                self._next = (self._next + 1) % _SLOTS
                if slot not in self._used and slot not in _RESERVED and slot != 0:
                    self._used.add(slot)
                    return slot
        raise RuntimeError("no free attachment address (16383 environments attached)")

    def give(self, slot: int) -> None:
        with self._lock:
            self._used.discard(slot)


_slots = _Slots()


def take_slot() -> int:
    """An attachment /30 no other attachment of this process holds (``net.overlay``'s remote
    attachments come from the same pool as local ones, so an interface namespace never sees two
    links with one address)."""
    return _slots.take()


def give_slot(slot: int) -> None:
    """Return a slot from :func:`take_slot`."""
    _slots.give(slot)


_prepared_lock = threading.Lock()
# Interface namespaces already made forwarders, by object identity (held weakly: a closed namespace
# object goes). Not by inode number: a namespace's inode number is reused once it is freed, so a new
# interface namespace could otherwise pass for an old, already prepared one.
_prepared: weakref.WeakSet[NetNamespace] = weakref.WeakSet()


@dataclass
class Attachment:
    eni_ns: NetNamespace
    link: str
    slot: int
    cut: bool = False  # a local link is not cut from under an environment

    def close(self) -> None:
        """Remove the veth pair (both ends go with one delete); idempotent."""
        if self.slot < 0:
            return
        try:
            if not self.eni_ns.closed:
                run(self.eni_ns, ["ip", "link", "del", self.link])
        except Exception:  # the interface namespace may be gone already (interface deleted)
            pass
        finally:
            _slots.give(self.slot)
            self.slot = -1


def prepare_forwarder(eni_ns: NetNamespace) -> None:
    """Make ``eni_ns`` forward environments' flows out of its ``eth0`` (once per namespace)."""
    with _prepared_lock:
        if eni_ns in _prepared:
            return
        sysctl.configure(eni_ns, FORWARDER)
        nftables.load(eni_ns, RULESET)
        _prepared.add(eni_ns)


def attach(env_ns: NetNamespace, eni_ns: NetNamespace) -> Attachment:
    """Connect ``env_ns`` to the interface namespace ``eni_ns``; default route into the VPC.

    One ``ip`` process, in the environment's namespace, makes the pair (its peer born in
    ``eni_ns``) and configures the environment's end; the peer is configured by ioctls from a
    thread in ``eni_ns`` (``linux.links``, no process: this is on a cold start's path): a cold
    start pays for one process, not three.
    """
    prepare_forwarder(eni_ns)
    slot = _slots.take()
    gateway, address = slot_addresses(slot)
    link = attachment_link(slot)
    try:
        run(
            env_ns,
            ["ip", "-batch", "-"],
            stdin=(
                f"link add vpc0 type veth peer name {link} netns /proc/self/fd/{eni_ns.fd}\n"
                f"address add {address}/30 dev vpc0\n"
                "link set vpc0 up\n"
                f"route add default via {gateway} dev vpc0 onlink\n"
            ),
            pass_fds=(eni_ns.fd,),
        )
        try:
            eni_ns.call(lambda: links.set_ipv4(link, gateway, 30))
        except OSError as exc:
            raise DataplaneError(f"cannot configure {link} in {eni_ns.name!r}: {exc}") from exc
    except Exception:
        Attachment(eni_ns, link, slot).close()
        raise
    return Attachment(eni_ns, link, slot)
