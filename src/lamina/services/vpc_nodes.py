"""VPCs across nodes (docs/overlay.md): each VPC's home node, and environments on other nodes
reaching their Hyperplane interface at home over the VPC's VXLAN tunnel (``net.overlay``).

- A VPC's **home** (table ``vpc_homes``) is claimed by the first node that needs its interfaces
  (the data plane syncing it, or an environment attaching) and kept while that node is live; a
  node that needs it while its home is dead takes it over. Only the home builds the VPC's
  interface namespaces, NAT gateways and uplink (``DataplaneManager.home``); other nodes build
  only its router namespace, when an environment of theirs needs the tunnel.
- **Attach** (:meth:`VpcNodes.attach`, the pool's attacher): a local namespace attaches as
  always (``net.attach``); a :class:`RemoteInterface` is resolved: homed here, its namespace is
  waited for and attached locally; homed on node H, this node asks H (``POST
  /_lamina-node/overlay/host``, signed with the cluster secret) to host a link for it, checks
  the ``RemoteLink`` H answers and joins it; closing the attachment leaves it here and asks H to
  release it (``/_lamina-node/overlay/release``).
- **Host** (:meth:`VpcNodes.host`, on the home): only from a live node with a registered
  underlay address, for a Hyperplane interface or a customer's own interface of this account and
  region that belongs to the VPC named, and only while this node is the VPC's home.
- **lamina vpc run** on a node that is not the VPC's home (:meth:`VpcNodes.run_join`): a
  namespace of this node's, attached as an environment's, published as the interface's own would
  be; released at ``Detach`` (:meth:`VpcNodes.run_leave`), when the interface is gone (at a
  heartbeat) or when the node stops.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address
from typing import TYPE_CHECKING, Any, Final

from lamina.domain.overlay import OverlayError, RemoteInterface, RemoteLink, valid_node_address
from lamina.errors import LaminaError
from lamina.linux import NetNamespace
from lamina.net import attach as local_attach
from lamina.net import published
from lamina.net.commands import DataplaneError
from lamina.net.manager import DataplaneManager, Ec2Source
from lamina.net.overlay import Hosted, Joined, Overlay, VpcTunnel
from lamina.runtime.target import NetworkAttachment
from lamina.store.hyperplane import HyperplaneStore
from lamina.store.overlay import HomeStore, VniStore

if TYPE_CHECKING:
    from lamina.services.cluster import Cluster

log = logging.getLogger("lamina.nodes")

HOST_PATH: Final = "/_lamina-node/overlay/host"
RELEASE_PATH: Final = "/_lamina-node/overlay/release"
WAIT_S: Final = 30.0  # for a namespace being built (a VPC's first sync may take seconds)
MAX_HOSTED: Final = 65536
_ID = re.compile(r"[a-z]+-[0-9a-f]{8,32}\Z")
_ACCOUNT = re.compile(r"[0-9]{12}\Z")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]\Z")
_NETWORK_INTERFACE = "network-interface"  # the EC2 store's kind
_HANDLE = re.compile(r"[0-9a-f]{32}\Z")


class Refused(LaminaError):
    """A node-to-node overlay request this node refuses (``status``: the HTTP status to answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(eq=False)
class RemoteAttachment:
    """An environment here joined to an interface homed on another node."""

    nodes: VpcNodes
    tunnel: VpcTunnel
    joined: Joined
    home: str
    home_instance: str  # the home's process when it hosted the link
    handle: str
    closed: bool = False
    cut: bool = False  # the home died or restarted: the link is gone

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.nodes.forget(self)
        self.tunnel.leave(self.joined)
        self.nodes.tell_release(self.home, self.handle)

    __hash__ = object.__hash__


class VpcNodes:
    """This node's part in VPCs spread over nodes. Blocking methods: call them off the loop."""

    def __init__(
        self,
        cluster: Cluster,
        dataplane: DataplaneManager,
        ec2: Ec2Source,
        hyperplane: HyperplaneStore,
        homes: HomeStore,
        vnis: VniStore,
        overlay: Overlay,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster = cluster
        self.dataplane = dataplane
        self.ec2 = ec2
        self.hyperplane = hyperplane
        self.homes = homes
        self.vnis = vnis
        self.overlay = overlay
        self.clock = clock
        self._lock = threading.Lock()
        # handle -> (tunnel, link, the node it is for, that node's process then)
        self._hosted: dict[str, tuple[VpcTunnel, Hosted, str, str]] = {}
        self._joined: set[RemoteAttachment] = set()
        # eni -> the namespace published for ``lamina vpc run`` here and its link to the home
        self._runs: dict[str, tuple[NetNamespace, RemoteAttachment, tuple[str, str, str]]] = {}
        self._joining: set[str] = set()  # run_join in progress

    @property
    def me(self) -> str:
        return self.cluster.name

    def start(self) -> None:
        """Publish this node's underlay address and make the data plane ask for homes."""
        self.homes.set_address(self.me, str(self.overlay.local))
        self.dataplane.home = self.is_home

    def close(self) -> None:
        self.dataplane.home = None
        with self._lock:
            runs = list(self._runs)
        for eni_id in runs:
            self.run_leave(eni_id)
        with self._lock:
            self._hosted.clear()
            self._joined.clear()
        self.overlay.close()

    # -- the registry ----------------------------------------------------------------------------

    def live(self) -> dict[str, str]:
        """The live nodes' names and process ids (read now: a node that just started counts)."""
        view = self.cluster.store.view(self.me, self.clock(), self.cluster.interval_s)
        return {**{n.name: n.instance for n in view.nodes}, self.me: self.cluster.instance}

    def addresses(self, live: Collection[str]) -> dict[str, IPv4Address]:
        """The underlay addresses of the live nodes, this one's left out."""
        found: dict[str, IPv4Address] = {}
        for name, text in self.homes.addresses().items():
            if name not in live or name == self.me:
                continue
            try:
                address = IPv4Address(text)
            except AddressValueError:
                continue
            if valid_node_address(address) and address != self.overlay.local:
                found[name] = address
        return found

    def is_home(self, key: tuple[str, str, str]) -> bool:
        """Whether this node is the VPC's home (claiming it when it has none, or a dead one)."""
        return self.homes.claim(key[2], self.me, set(self.live()), self.clock()) == self.me

    def follow(self) -> Callable[[], None]:
        """At each heartbeat while other nodes are live (off the loop): the tunnels follow the
        live nodes (attachments to dead ones go), and the VPCs built here are read back (changes
        made through other nodes: a security group, a new interface of a VPC homed here)."""
        live = self.live()
        self.overlay.set_peers(self.addresses(live).values())  # attachments to dead nodes go
        # A node started again (another process under its name) lost every link it held: the
        # attachments made with its previous process are removed here too.
        with self._lock:
            hosted = [h for h, (_, _, node, inst) in self._hosted.items() if live.get(node) != inst]
            stale_hosted = [self._hosted.pop(h) for h in hosted]
            joined = [a for a in self._joined if live.get(a.home) != a.home_instance]
            for a in joined:
                a.cut = True
                self._joined.discard(a)
        for tunnel, link, _, _ in stale_hosted:
            tunnel.release(link)
        for attachment in joined:
            attachment.tunnel.leave(attachment.joined)
        # ``lamina vpc run``'s interfaces deleted meanwhile (say, through another node): released.
        with self._lock:
            runs = [(eni, key) for eni, (_, _, key) in self._runs.items()]
        for eni_id, (account, region, vpc_id) in runs:
            listed = self.ec2.list_resources(account, region, _NETWORK_INTERFACE, vpc_id=vpc_id)
            if not any(i.get("NetworkInterfaceId") == eni_id for i in listed):
                self.run_leave(eni_id)
        self.dataplane.resync()
        return lambda: None

    # -- the environment's side ------------------------------------------------------------------

    def attach(self, env_ns: NetNamespace, eni: NetNamespace | RemoteInterface) -> NetworkAttachment:
        """The pool's attacher: a local interface namespace as ever, a remote interface through
        its VPC's home."""
        if isinstance(eni, NetNamespace):
            return local_attach.attach(env_ns, eni)
        key = (eni.account, eni.region, eni.vpc_id)
        live = self.live()
        home = self.homes.claim(eni.vpc_id, self.me, set(live), self.clock())
        if home == self.me:
            self.dataplane.resync([key])
            ns = self.dataplane.wait_interface_namespace(eni.account, eni.region, eni.eni_id, WAIT_S)
            if ns is None:
                raise DataplaneError(f"the interface {eni.eni_id} is not built on this node")
            return local_attach.attach(env_ns, ns)
        peers = self.addresses(live)
        if home not in peers:
            raise DataplaneError(f"the home of {eni.vpc_id}, node {home}, has no underlay address")
        router = self.dataplane.router_namespace(key, WAIT_S)
        if router is None:
            raise DataplaneError(f"no router namespace for {eni.vpc_id} on this node")
        tunnel = self.overlay.ensure(eni.vpc_id, router, self.vnis.vni(eni.vpc_id), peers.values())
        body = {
            "Account": eni.account,
            "Region": eni.region,
            "VpcId": eni.vpc_id,
            "NetworkInterfaceId": eni.eni_id,
            "Node": self.me,
        }
        try:
            status, answer = self.cluster.call(home, HOST_PATH, json.dumps(body).encode())
        except OSError as exc:
            raise DataplaneError(f"cannot reach node {home}, the home of {eni.vpc_id}: {exc}") from exc
        if status != 200:
            raise DataplaneError(f"node {home} would not host {eni.eni_id}: {status} {answer[:200]!r}")
        try:
            doc = json.loads(answer)
            handle = str(doc["Handle"])
            link = RemoteLink.from_json(str(doc["Link"]))
        except (ValueError, KeyError, TypeError, OverlayError) as exc:
            raise DataplaneError(f"node {home} answered an unusable link: {exc}") from exc
        try:
            if link.home != peers[home]:
                raise OverlayError(f"the link leads to {link.home}, not to node {home}")
            joined = tunnel.join(env_ns, link)
        except BaseException:
            self.tell_release(home, handle)
            raise
        attachment = RemoteAttachment(self, tunnel, joined, home, live[home], handle)
        with self._lock:
            self._joined.add(attachment)
        return attachment

    # -- lamina vpc run on a node that is not the VPC's home -------------------------------------

    def run_join(self, account: str, region: str, vpc_id: str, eni_id: str) -> tuple[str, str] | None:
        """A customer interface ``lamina vpc run`` uses through this node: if its VPC is homed
        elsewhere, a namespace of this node's joined to it at home (as an environment's, ``vpc0``)
        and published under the data plane's ``netns_dir`` as the interface's own would be; the
        link and its address there. None when the VPC is homed here (its namespace is built and
        published here as ever). Idempotent."""
        with self._lock:
            found = self._runs.get(eni_id)
            if found is not None:
                return _run_link(found[1])
            if eni_id in self._joining:
                raise DataplaneError(f"{eni_id} is being joined already")
            self._joining.add(eni_id)
        try:
            return self._run_join((account, region, vpc_id), eni_id)
        finally:
            with self._lock:
                self._joining.discard(eni_id)

    def _run_join(self, key: tuple[str, str, str], eni_id: str) -> tuple[str, str] | None:
        account, region, vpc_id = key
        if self.homes.claim(vpc_id, self.me, set(self.live()), self.clock()) == self.me:
            self.dataplane.resync([key])
            return None
        ns = NetNamespace.create(f"vpc-run/{eni_id}")
        try:
            attachment = self.attach(ns, RemoteInterface(account, region, vpc_id, eni_id))
            if not isinstance(attachment, RemoteAttachment):  # homed here meanwhile: built here
                attachment.close()
                ns.close()
                return None
            try:
                published.publish(self.dataplane.netns_dir, eni_id, ns.fd)
            except BaseException:
                attachment.close()
                raise
        except BaseException:
            ns.close()
            raise
        with self._lock:
            self._runs[eni_id] = (ns, attachment, key)
        return _run_link(attachment)

    def run_leave(self, eni_id: str) -> None:
        """``lamina vpc run`` is done with the interface: unpublish it here and release its link
        at home (idempotent; nothing when it was never joined here)."""
        with self._lock:
            found = self._runs.pop(eni_id, None)
        if found is None:
            return
        ns, attachment, _ = found
        try:
            published.unpublish(self.dataplane.netns_dir, eni_id)
        finally:
            attachment.close()
            ns.close()

    def forget(self, attachment: RemoteAttachment) -> None:
        with self._lock:
            self._joined.discard(attachment)

    def tell_release(self, home: str, handle: str) -> None:
        try:
            status, answer = self.cluster.call(
                home, RELEASE_PATH, json.dumps({"Handle": handle, "Node": self.me}).encode(), timeout_s=10.0
            )
        except OSError as exc:  # the home is gone: its attachments went with it
            log.info("releasing a link at node %s: %s", home, exc)
            return
        if status != 200:
            log.warning("node %s would not release a link: %s %r", home, status, answer[:200])

    # -- the home's side -------------------------------------------------------------------------

    def host(self, body: bytes) -> bytes:
        """A signed request from another node to host a link for one of its environments."""
        doc = _document(body, {"Account", "Region", "VpcId", "NetworkInterfaceId", "Node"})
        account, region = doc["Account"], doc["Region"]
        vpc_id, eni_id, node = doc["VpcId"], doc["NetworkInterfaceId"], doc["Node"]
        if not (
            _ACCOUNT.match(account)
            and _REGION.match(region)
            and _ID.match(vpc_id)
            and vpc_id.startswith("vpc-")
            and _ID.match(eni_id)
            and eni_id.startswith("eni-")
        ):
            raise Refused(400, "malformed request")
        live = self.live()
        peers = self.addresses(live)
        if node == self.me or node not in peers:
            raise Refused(403, f"node {node!r} is not a live node with an underlay address")
        lambda_interface = any(
            s.account == account and s.region == region and s.eni_id == eni_id for s in self.hyperplane.all()
        )
        found = [
            i
            for i in self.ec2.list_resources(account, region, _NETWORK_INTERFACE, vpc_id=vpc_id)
            if i.get("NetworkInterfaceId") == eni_id
        ]
        # A customer's own interface (``lamina vpc run`` on another node) is hosted as well.
        customer = any(
            not i.get("RequesterManaged") and i.get("InterfaceType", "interface") == "interface"
            for i in found
        )
        if not (found and (lambda_interface or customer)):
            raise Refused(404, f"{eni_id} is no Lambda or customer interface of {vpc_id}")
        if self.homes.home(vpc_id) != self.me:
            raise Refused(409, f"{vpc_id} is not homed on node {self.me}")
        key = (account, region, vpc_id)
        ns = self.dataplane.interface_namespace(account, region, eni_id)
        if ns is None:
            self.dataplane.resync([key])
            ns = self.dataplane.wait_interface_namespace(account, region, eni_id, WAIT_S)
        router = self.dataplane.router_namespace(key, WAIT_S)
        if ns is None or router is None:
            raise Refused(503, f"{eni_id} is not built on node {self.me} yet")
        with self._lock:
            if len(self._hosted) >= MAX_HOSTED:
                raise Refused(503, "too many remote attachments")
        try:
            tunnel = self.overlay.ensure(vpc_id, router, self.vnis.vni(vpc_id), peers.values())
            hosted = tunnel.host(ns, peers[node])
        except (OverlayError, DataplaneError) as exc:
            raise Refused(503, f"cannot host a link: {exc}") from exc
        handle = secrets.token_hex(16)
        with self._lock:
            self._hosted[handle] = (tunnel, hosted, node, live[node])
        return json.dumps({"Handle": handle, "Link": hosted.link.to_json()}).encode()

    def release(self, body: bytes) -> bytes:
        """A signed request from the node that asked for a link: it is no longer used."""
        doc = _document(body, {"Handle", "Node"})
        if not _HANDLE.match(doc["Handle"]):
            raise Refused(400, "malformed request")
        with self._lock:
            found = self._hosted.get(doc["Handle"])
            if found is None or found[2] != doc["Node"]:
                return b"{}"  # already gone (or never this node's): nothing to do
            del self._hosted[doc["Handle"]]
        found[0].release(found[1])
        return b"{}"


def _run_link(attachment: RemoteAttachment) -> tuple[str, str]:
    return "vpc0", str(attachment.joined.link.address)


def _document(body: bytes, keys: set[str]) -> dict[str, str]:
    """A JSON object with exactly these keys, each a short string."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        raise Refused(400, "malformed request") from None
    if not isinstance(doc, dict) or set(doc) != keys:
        raise Refused(400, "malformed request")
    if not all(isinstance(v, str) and 0 < len(v) <= 128 for v in doc.values()):
        raise Refused(400, "malformed request")
    return doc
