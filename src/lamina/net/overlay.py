"""A VPC's VXLAN tunnel on this node, and remote attachments through it (docs/overlay.md).

Facts (Linux 6.x) this module relies on:
- A VXLAN link created with ``ip link add NAME netns TARGET type vxlan ...`` lives in ``TARGET``
  but keeps its UDP socket in the namespace ``ip`` ran in: the underlay is the node's namespace,
  the link is in the VPC's router namespace, and nothing of the VPC is routed in the underlay.
- ``nolearning`` and static FDB entries (``bridge fdb add MAC dev LINK dst ADDR self
  permanent``, made here as rtnetlink messages: ``linux.links.add_fdb``) send each frame, by destination MAC, to one peer by unicast; a frame whose MAC has
  no entry (and no all-zeros entry exists) is dropped: no flooding, no multicast group.
- An nftables ``netdev`` chain hooked at ``ingress`` sees a link's frames before the IP stack, and
  ``fwd to "LINK"`` transmits them out of another link as they are: the router namespace's routes
  and its ``inet lamina`` table never see overlay frames. A netdev chain names its links
  (``devices = { ... }``), which must exist when the table is loaded.
- Deleting a VXLAN link deletes its FDB entries; deleting one end of a veth deletes the other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address

from lamina.domain.overlay import (
    SWITCH_TABLE,
    TUNNEL_LINK,
    VXLAN_PORT,
    OverlayError,
    RemoteLink,
    SwitchPort,
    inner_mtu,
    mac_from_bytes,
    render_port_add,
    render_port_delete,
    render_switch,
    valid_node_address,
    valid_vni,
)
from lamina.linux import NetNamespace, links
from lamina.net import attach, iproute, nftables
from lamina.net.commands import DataplaneError, run

log = logging.getLogger("lamina.net")


@dataclass(frozen=True)
class Hosted:
    """A remote attachment as its interface's home node holds it."""

    link: RemoteLink  # what the environment's node needs (``RemoteLink.to_json``)
    remote: IPv4Address  # the environment's node
    eni_ns: NetNamespace


@dataclass(frozen=True)
class Joined:
    """A remote attachment as the environment's node holds it."""

    link: RemoteLink
    env_ns: NetNamespace


class VpcTunnel:
    """The VXLAN link of one VPC in its router namespace on this node, and the remote attachments
    through it: those hosted here (the interface is homed here, the environment is elsewhere) and
    those joined from here (the environment is here). Thread-safe; :meth:`close` removes all."""

    def __init__(
        self,
        router: NetNamespace,
        underlay: NetNamespace,
        vni: int,
        local: IPv4Address,
        peers: Iterable[IPv4Address] = (),
        *,
        port: int = VXLAN_PORT,
        underlay_mtu: int = 1500,
    ) -> None:
        """``router``: the VPC's router namespace here; ``underlay``: the node's own namespace,
        where the tunnel's UDP socket lives and ``local`` (this node's address) is; ``peers``:
        the other nodes' addresses, the only ones attachments may lead to."""
        if not valid_vni(vni):
            raise OverlayError(f"VNI {vni!r} is out of range")
        if not valid_node_address(local):
            raise OverlayError(f"{local!r} is not a node address")
        if not 0 < port < 65536:
            raise OverlayError(f"UDP port {port!r} is out of range")
        self.vni = vni
        self.local = local
        self.mtu = inner_mtu(underlay_mtu)
        self._router = router
        self._peers = frozenset(self._checked_peers(peers))
        self._lock = threading.Lock()
        self._hosted: dict[str, Hosted] = {}  # by environment MAC
        self._joined: dict[str, Joined] = {}
        self._closed = False
        run(
            underlay,
            [
                "ip", "link", "add", TUNNEL_LINK, "netns", f"/proc/self/fd/{router.fd}", "mtu", str(self.mtu),
                "type", "vxlan", "id", str(vni), "local", str(local), "dstport", str(port), "nolearning",
            ],
            pass_fds=(router.fd,),
        )  # fmt: skip
        try:
            iproute.batch(router, [f"link set {TUNNEL_LINK} up"])
            nftables.load(router, render_switch())
        except BaseException:
            self._delete_tunnel()
            raise

    def _checked_peers(self, peers: Iterable[IPv4Address]) -> set[IPv4Address]:
        checked = set(peers)
        for peer in checked:
            if not valid_node_address(peer) or peer == self.local:
                raise OverlayError(f"{peer!r} is not another node's address")
        return checked

    # -- peers ----------------------------------------------------------------------------------

    @property
    def peers(self) -> frozenset[IPv4Address]:
        return self._peers

    def set_peers(self, peers: Iterable[IPv4Address]) -> list[RemoteLink]:
        """Make ``peers`` the other nodes; attachments to a node no longer among them are
        removed (that node is gone: its environments, or its interfaces, with it). Returns them."""
        wanted = frozenset(self._checked_peers(peers))
        with self._lock:
            self._check_open()
            self._peers = wanted
            hosted = [h for h in self._hosted.values() if h.remote not in wanted]
            joined = [j for j in self._joined.values() if j.link.home not in wanted]
        for h in hosted:
            self.release(h)
        for j in joined:
            self.leave(j)
        return [h.link for h in hosted] + [j.link for j in joined]

    # -- the home side --------------------------------------------------------------------------

    def host(self, eni_ns: NetNamespace, remote: IPv4Address) -> Hosted:
        """Give an environment on node ``remote`` a link into the interface namespace ``eni_ns``
        (homed here): ``lmeNNNN`` in ``eni_ns``, numbered and ruled as a local attachment's."""
        attach.prepare_forwarder(eni_ns)
        with self._lock:
            self._check_open()
            if remote not in self._peers:
                raise OverlayError(f"{remote} is not a node this tunnel leads to")
            slot = attach.take_slot()
            try:
                link = RemoteLink(
                    self.vni,
                    self.local,
                    slot,
                    mac_from_bytes(os.urandom(6)),
                    mac_from_bytes(os.urandom(6)),
                    self.mtu,
                )
                if self._macs_in_use() & {link.env_mac, link.eni_mac}:
                    raise DataplaneError("a MAC drawn twice; try again")
                port = link.home_port
                iproute.batch(
                    self._router,
                    [
                        f"link add {port} mtu {link.mtu} type veth peer name {link.inner_link}"
                        f" address {link.eni_mac} mtu {link.mtu} netns /proc/self/fd/{eni_ns.fd}",
                        f"link set {port} up",
                    ],
                    pass_fds=(eni_ns.fd,),
                )
            except BaseException:
                attach.give_slot(slot)
                raise
            hosted = Hosted(link, remote, eni_ns)
            added = False
            try:
                self._configure_inner(eni_ns, link)
                self._fdb_add(link.env_mac, remote)
                added = True
                nftables.load(self._router, render_port_add(self._port_of(hosted)))
                self._hosted[link.env_mac] = hosted
            except BaseException:
                self._hosted.pop(link.env_mac, None)
                self._unlink(port, link.env_mac if added else None, remote)
                attach.give_slot(slot)
                raise
            return hosted

    def release(self, hosted: Hosted) -> None:
        """Remove a hosted attachment (idempotent)."""
        with self._lock:
            if self._hosted.get(hosted.link.env_mac) is not hosted:
                return
            del self._hosted[hosted.link.env_mac]
            self._switch_delete(self._port_of(hosted))
            self._unlink(hosted.link.home_port, hosted.link.env_mac, hosted.remote)
            attach.give_slot(hosted.link.slot)

    # -- the environment's side -----------------------------------------------------------------

    def join(self, env_ns: NetNamespace, link: RemoteLink) -> Joined:
        """Attach the environment namespace ``env_ns`` (here) to an interface homed on
        ``link.home``: ``vpc0`` in ``env_ns``, as :func:`lamina.net.attach.attach` makes it."""
        with self._lock:
            self._check_open()
            if link.vni != self.vni:
                raise OverlayError(f"VNI {link.vni} is not this VPC's ({self.vni})")
            if link.home not in self._peers:
                raise OverlayError(f"{link.home} is not a node this tunnel leads to")
            if link.mtu > self.mtu:
                raise OverlayError(f"MTU {link.mtu} does not fit this node's tunnel ({self.mtu})")
            # A MAC of another attachment here would take over its FDB entry or its switch rule.
            if self._macs_in_use() & {link.env_mac, link.eni_mac}:
                raise OverlayError("a MAC of this attachment is another attachment's on this node")
            port = link.remote_port
            joined = Joined(link, env_ns)
            added = False
            try:
                iproute.batch(
                    env_ns,
                    [
                        f"link add vpc0 address {link.env_mac} mtu {link.mtu} type veth peer name {port}"
                        f" mtu {link.mtu} netns /proc/self/fd/{self._router.fd}",
                        f"address add {link.address}/30 dev vpc0",
                        "link set vpc0 up",
                        f"neigh replace {link.gateway} lladdr {link.eni_mac} dev vpc0 nud permanent",
                        f"route add default via {link.gateway} dev vpc0 onlink",
                    ],
                    pass_fds=(self._router.fd,),
                )
                try:
                    self._router.call(lambda: links.set_up(port))  # an ioctl: no process
                except OSError as exc:
                    raise DataplaneError(f"cannot bring {port} up: {exc}") from exc
                self._fdb_add(link.eni_mac, link.home)
                added = True
                nftables.load(self._router, render_port_add(self._port_of(joined)))
                self._joined[link.env_mac] = joined
            except BaseException:
                self._joined.pop(link.env_mac, None)
                self._unlink(port, link.eni_mac if added else None, link.home)
                raise
            return joined

    def leave(self, joined: Joined) -> None:
        """Detach a joined environment (idempotent)."""
        with self._lock:
            if self._joined.get(joined.link.env_mac) is not joined:
                return
            del self._joined[joined.link.env_mac]
            self._switch_delete(self._port_of(joined))
            self._unlink(joined.link.remote_port, joined.link.eni_mac, joined.link.home)

    # -- plumbing -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise OverlayError(f"the tunnel of VNI {self.vni} is closed")

    @staticmethod
    def _port_of(attachment: Hosted | Joined) -> SwitchPort:
        link = attachment.link
        if isinstance(attachment, Hosted):
            return SwitchPort(link.home_port, link.eni_mac, link.env_mac)
        return SwitchPort(link.remote_port, link.env_mac, link.eni_mac)

    def _switch_delete(self, port: SwitchPort) -> None:
        try:
            nftables.load(self._router, render_port_delete(port))
        except DataplaneError as exc:  # its chains stay, unused, until the tunnel closes
            log.warning("removing %s from the overlay switch: %s", port.link, exc)

    @staticmethod
    def _configure_inner(eni_ns: NetNamespace, link: RemoteLink) -> None:
        """In the interface's namespace: the attachment's address (its /30), up, and the
        environment's MAC for its address. Ioctls and one rtnetlink message: no process."""

        def configure() -> None:
            links.set_ipv4(link.inner_link, link.gateway, 30)
            links.set_neighbour(link.inner_link, link.address, link.env_mac)

        try:
            eni_ns.call(configure)
        except OSError as exc:
            raise DataplaneError(f"cannot configure {link.inner_link} in {eni_ns.name!r}: {exc}") from exc

    def _fdb_add(self, mac: str, dst: IPv4Address) -> None:
        try:
            self._router.call(lambda: links.add_fdb(TUNNEL_LINK, mac, dst))
        except OSError as exc:
            raise DataplaneError(f"cannot add {mac} to the FDB of VNI {self.vni}: {exc}") from exc

    def _fdb_delete(self, mac: str, dst: IPv4Address) -> None:
        try:
            self._router.call(lambda: links.delete_fdb(TUNNEL_LINK, mac, dst))
        except OSError as exc:
            raise DataplaneError(f"cannot delete {mac} from the FDB of VNI {self.vni}: {exc}") from exc

    def _macs_in_use(self) -> set[str]:
        """The MACs of every attachment through this tunnel, both ends."""
        held = [h.link for h in self._hosted.values()] + [j.link for j in self._joined.values()]
        return {mac for link in held for mac in (link.env_mac, link.eni_mac)}

    def _unlink(self, port: str, mac: str | None, dst: IPv4Address) -> None:
        """Delete a port (its veth peer goes too) and its FDB entry (``mac``, None for none);
        what is already gone is fine."""
        try:
            iproute.batch(self._router, [f"link del {port}"])
        except DataplaneError as exc:
            log.debug("overlay teardown: %s", exc)
        if mac is None:
            return
        try:
            self._fdb_delete(mac, dst)
        except DataplaneError as exc:
            log.debug("overlay teardown: %s", exc)

    def _delete_tunnel(self) -> None:
        with contextlib.suppress(DataplaneError):
            iproute.batch(self._router, [f"link del {TUNNEL_LINK}"])

    def close(self) -> None:
        """Remove every attachment, the switch table and the tunnel (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            hosted, self._hosted = list(self._hosted.values()), {}
            joined, self._joined = list(self._joined.values()), {}
            if self._router.closed:
                for h in hosted:
                    attach.give_slot(h.link.slot)
                return
            with contextlib.suppress(DataplaneError):
                nftables.load(self._router, f"table {SWITCH_TABLE} {{}}\ndelete table {SWITCH_TABLE}\n")
            ports = [h.link.home_port for h in hosted] + [j.link.remote_port for j in joined]
            try:
                iproute.batch(
                    self._router, [*iproute.delete_links(ports), f"link del {TUNNEL_LINK}"], force=True
                )
            except DataplaneError as exc:
                log.warning("closing the tunnel of VNI %s: %s", self.vni, exc)
            finally:
                for h in hosted:
                    attach.give_slot(h.link.slot)

    def __enter__(self) -> VpcTunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<VpcTunnel vni={self.vni} local={self.local} hosted={len(self._hosted)} joined={len(self._joined)}>"


class Overlay:
    """This node's side of every VPC's tunnel: what the node layer calls.

    ``local`` is this node's underlay address (from the node registry); ``underlay`` the
    namespace the tunnels' UDP sockets live in: None for the namespace lamina runs in (the host
    network, production), a namespace standing for a host in tests.
    """

    def __init__(
        self,
        local: IPv4Address,
        underlay: NetNamespace | None = None,
        *,
        port: int = VXLAN_PORT,
        underlay_mtu: int = 1500,
    ) -> None:
        if not valid_node_address(local):
            raise OverlayError(f"{local!r} is not a node address")
        inner_mtu(underlay_mtu)
        self.local = local
        self._own = underlay is None
        self.underlay = underlay or NetNamespace(
            os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC), "node"
        )
        self._port = port
        self._underlay_mtu = underlay_mtu
        self._lock = threading.Lock()
        self._tunnels: dict[str, tuple[VpcTunnel, NetNamespace]] = {}

    def ensure(self, vpc_id: str, router: NetNamespace, vni: int, peers: Iterable[IPv4Address]) -> VpcTunnel:
        """The VPC's tunnel on this node, made if missing (or if the VPC's router or VNI changed),
        its peers made ``peers`` (attachments to nodes no longer among them are removed; this
        node's own address, if listed, is left out)."""
        wanted = [p for p in peers if p != self.local]
        with self._lock:
            found = self._tunnels.get(vpc_id)
            if found is not None and (found[0].vni != vni or found[1] is not router or router.closed):
                found[0].close()
                del self._tunnels[vpc_id]
                found = None
            if found is None:
                tunnel = VpcTunnel(
                    router,
                    self.underlay,
                    vni,
                    self.local,
                    wanted,
                    port=self._port,
                    underlay_mtu=self._underlay_mtu,
                )
                self._tunnels[vpc_id] = (tunnel, router)
                return tunnel
        found[0].set_peers(wanted)
        return found[0]

    def tunnel(self, vpc_id: str) -> VpcTunnel:
        with self._lock:
            found = self._tunnels.get(vpc_id)
        if found is None:
            raise OverlayError(f"no tunnel for {vpc_id} on this node")
        return found[0]

    def host(self, vpc_id: str, eni_ns: NetNamespace, remote: IPv4Address) -> Hosted:
        """Home side: a link into ``eni_ns`` for an environment on node ``remote``."""
        return self.tunnel(vpc_id).host(eni_ns, remote)

    def join(self, vpc_id: str, env_ns: NetNamespace, link: RemoteLink) -> Joined:
        """Environment side: attach ``env_ns`` to the interface ``link`` describes."""
        return self.tunnel(vpc_id).join(env_ns, link)

    def set_peers(self, peers: Iterable[IPv4Address]) -> list[RemoteLink]:
        """The other nodes changed (one joined, left or died): every tunnel follows; returns the
        attachments removed with the nodes gone (this node's own address, if listed, is left out)."""
        wanted = [p for p in peers if p != self.local]
        with self._lock:
            tunnels = [t for t, _ in self._tunnels.values()]
        return [link for t in tunnels for link in t.set_peers(wanted)]

    def remove(self, vpc_id: str) -> None:
        """Close the VPC's tunnel here (idempotent): the VPC is gone, or no longer used here."""
        with self._lock:
            found = self._tunnels.pop(vpc_id, None)
        if found is not None:
            found[0].close()

    def close(self) -> None:
        with self._lock:
            tunnels, self._tunnels = list(self._tunnels.values()), {}
        for tunnel, _ in tunnels:
            tunnel.close()
        if self._own:
            self.underlay.close()
