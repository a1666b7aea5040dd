"""One VPC's data plane on this host: a router namespace, a namespace per network interface, the
veth pairs between them, the router's routes and its nftables rules, kept equal to a plan.

Facts this module relies on (details in ``commands``, ``iproute``, ``nftables``, ``sysctl``):
- Every namespace is held by an fd (``NetNamespace``): nothing is registered on the host, and the
  whole VPC disappears with the process (but for the namespaces of customer interfaces that a
  ``lamina vpc run`` process lives in: the manager keeps them published, and they are handed back
  to be re-attached). After a restart it is rebuilt from the database, so what
  this object remembers having done is, with the kernel's routing state, the truth to diff
  against; the routing state is read back from the kernel each time it is reconciled.
- A namespace lives while anything uses it: a process started in an interface's namespace keeps
  that namespace alive after the interface is deleted. Its veth is deleted explicitly, so such a
  process is left without a network rather than attached to a VPC that no longer has it.
- Security group changes are one ``nft -f`` transaction (a few milliseconds), synchronous: when
  :meth:`VpcDataplane.apply` returns, the new rules decide every new packet. A change that only
  adds or deletes set elements (a NAT gateway coming or going) is loaded as just that.
- The router holds the VPC's Amazon DNS server addresses (base + 2, 169.254.169.253) on its
  ``lo``; ``net.dns`` serves them from sockets made in the router namespace.
- A NAT gateway is an interface namespace of its own kind: forwarding, no redirects, its own
  SNAT table. The router's link to the edge (``igw0``) is made and removed through the
  :class:`~lamina.net.uplink.Uplink`, which also routes the VPC's Elastic IPs to it.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from lamina.domain.dataplane import (
    InterfaceKind,
    InterfacePlan,
    RouterRoute,
    SourceRule,
    VpcPlan,
    set_updates,
)
from lamina.domain.edge import render_nat_ruleset
from lamina.linux import NetNamespace
from lamina.net import iproute, nftables, sysctl
from lamina.net.commands import DataplaneError
from lamina.net.uplink import Uplink

log = logging.getLogger("lamina.net")


@dataclass(frozen=True)
class Applied:
    """What one :meth:`VpcDataplane.apply` changed."""

    created: tuple[str, ...] = ()  # interfaces whose namespace and veth pair were made
    removed: tuple[str, ...] = ()  # interfaces taken away (or rebuilt: in both lists)
    routing: bool = False  # the router's routes and rules were reconciled
    ruleset: bool = False  # the nftables ruleset was reloaded
    internet: bool = False  # the link to the edge was made or removed

    @property
    def changed(self) -> bool:
        return bool(self.created or self.removed or self.routing or self.ruleset or self.internet)


@dataclass
class _Live:
    plan: InterfacePlan
    ns: NetNamespace


class VpcDataplane:
    """The kernel side of one VPC, built from a plan and reconciled with :meth:`apply`.

    Thread-safe; :meth:`close` removes every namespace, link and rule it made.
    """

    def __init__(
        self,
        plan: VpcPlan,
        uplink: Uplink | None = None,
        adopt: Callable[[str], NetNamespace | None] | None = None,
    ) -> None:
        """``adopt``: for a kept interface (``InterfacePlan.kept``), an existing namespace to
        re-attach (a reference of the caller's own, closed with the interface), else None."""
        self.vpc_id = plan.vpc_id
        self._uplink = uplink
        self._adopt = adopt
        self._lock = threading.Lock()
        self._router: NetNamespace | None = None
        self._interfaces: dict[str, _Live] = {}
        self._internet: str | None = None  # the edge link in force
        # The Elastic IPs the uplink knows: (all, those taking new flows in).
        self._public: tuple[tuple[IPv4Address, ...], tuple[IPv4Address, ...]] | None = None
        self._routing: tuple[tuple[RouterRoute, ...], tuple[SourceRule, ...]] | None = None
        self._ruleset: str | None = None
        self._closed = False
        try:
            self.apply(plan)
        except BaseException:
            self.close()
            raise

    # -- reconciliation -------------------------------------------------------------------------

    def apply(self, plan: VpcPlan) -> Applied:
        """Make the kernel match ``plan``; idempotent (applying the same plan again changes nothing).

        On failure the error is a :class:`DataplaneError` and what failed is redone by the next
        call: interfaces are recorded only once complete, routing and rules only once loaded.
        """
        if plan.vpc_id != self.vpc_id:
            raise ValueError(f"plan for {plan.vpc_id!r} given to the data plane of {self.vpc_id!r}")
        if plan.internet is not None and self._uplink is None:
            raise ValueError(f"the plan of {self.vpc_id!r} has an internet link but there is no uplink")
        with self._lock:
            if self._closed:
                raise ValueError(f"the data plane of {self.vpc_id!r} is closed")
            router = self._ensure_router(plan)
            wanted = {i.eni_id: i for i in plan.links}
            # Interfaces rebuilt go first (their names are taken again); interfaces gone go last,
            # once no route or rule names their links: deleting a link waits for an RCU grace
            # period, and the routes' and rules' change is what is in force.
            rebuilt = [
                eni
                for eni, live in self._interfaces.items()
                if eni in wanted and live.plan.link_key != wanted[eni].link_key
            ]
            gone = [eni for eni in self._interfaces if eni not in wanted]
            self._remove(router, rebuilt)
            new = [i for i in plan.links if i.eni_id not in self._interfaces]
            self._add(router, new)
            for interface in plan.links:
                self._interfaces[interface.eni_id].plan = interface
            internet = self._connect(router, plan)
            if plan.internet is not None and self._uplink is not None:
                # Before the router routes to a new NAT gateway, the edge lets its address out.
                public = (plan.internet.public_ips, plan.internet.inbound_ips)
                if internet or self._public != public:
                    self._public = None
                    self._uplink.set_public(plan.internet.edge_link, *public)
                    self._public = public
            routing = bool(rebuilt or gone or new or internet) or self._routing != plan.routing
            if routing:
                self._routing = None
                iproute.reconcile_routing(router, plan.routes, plan.source_rules)
                self._routing = plan.routing
            reload = self._ruleset != plan.ruleset
            if reload:
                loaded, self._ruleset = self._ruleset, None
                update = set_updates(loaded, plan.ruleset) if loaded is not None else None
                if update != "":  # "": the same sets in another order, nothing to load
                    nftables.load(router, plan.ruleset if update is None else update)
                self._ruleset = plan.ruleset
            self._remove(router, gone)
            return Applied(tuple(i.eni_id for i in new), tuple(rebuilt + gone), routing, reload, internet)

    def _connect(self, router: NetNamespace, plan: VpcPlan) -> bool:
        """Make or remove the router's link to the edge as the plan says; whether it changed."""
        wanted = plan.internet.edge_link if plan.internet is not None else None
        if wanted == self._internet:
            return False
        if self._internet is not None and self._uplink is not None:
            self._uplink.disconnect(self._internet)
            self._internet, self._public = None, None
        if plan.internet is not None and self._uplink is not None:
            self._uplink.connect(router, plan.internet)
            self._internet = plan.internet.edge_link
        return True

    def _ensure_router(self, plan: VpcPlan) -> NetNamespace:
        if self._router is None:
            router = NetNamespace.create(plan.router)
            try:
                sysctl.configure(router, sysctl.ROUTER)
                # The Amazon DNS server's addresses are the router's own (``net.dns`` listens on
                # them); whether DNS may reach them is the ruleset's ``input`` chain.
                if plan.resolver:
                    iproute.batch(router, [f"address add {a}/32 dev lo" for a in plan.resolver])
            except BaseException:
                router.close()
                raise
            self._router = router
        return self._router

    def _add(self, router: NetNamespace, new: Sequence[InterfacePlan]) -> None:
        if not new:
            return
        made: dict[str, NetNamespace] = {}
        try:
            for interface in new:
                ns = self._adopted(interface)
                if ns is None:
                    ns = NetNamespace.create(f"{self.vpc_id}/{interface.eni_id}")
                made[interface.eni_id] = ns
                nat = interface.kind is InterfaceKind.NAT_GATEWAY
                sysctl.configure(ns, sysctl.NAT_GATEWAY if nat else sysctl.INTERFACE)
            lines = [line for i in new for line in iproute.router_side(i, made[i.eni_id].fd)]
            iproute.batch(router, lines, pass_fds=[ns.fd for ns in made.values()])
            for interface in new:
                iproute.batch(made[interface.eni_id], iproute.interface_side(interface))
                if interface.kind is InterfaceKind.NAT_GATEWAY and interface.public_ip is not None:
                    nftables.load(made[interface.eni_id], render_nat_ruleset(interface.public_ip))
        except BaseException:
            # Links that were never made cannot be deleted: that failure is expected.
            with contextlib.suppress(DataplaneError):
                iproute.batch(router, iproute.delete_links(i.router_link for i in new), force=True)
            for ns in made.values():
                ns.close()
            raise
        for interface in new:
            self._interfaces[interface.eni_id] = _Live(interface, made[interface.eni_id])

    def _adopted(self, interface: InterfacePlan) -> NetNamespace | None:
        """An existing namespace to re-attach ``interface`` to (its process kept its address
        across a server restart), cleared of a link its last router may have left in it."""
        if not interface.kept or self._adopt is None:
            return None
        ns = self._adopt(interface.eni_id)
        if ns is not None:
            # The old veth went with the old router namespace (destroyed asynchronously after a
            # crash); if it is still there, its deletion is what makes the name free.
            with contextlib.suppress(DataplaneError):
                iproute.batch(ns, iproute.delete_links([interface.inner_link]))
            log.info("re-attaching %s to its existing namespace", interface.eni_id)
        return ns

    def _remove(self, router: NetNamespace, eni_ids: Sequence[str]) -> None:
        if not eni_ids:
            return
        gone = [self._interfaces.pop(eni) for eni in eni_ids]
        try:
            # Deleting the router end deletes the peer too, even if a process keeps the namespace.
            iproute.batch(router, iproute.delete_links(live.plan.router_link for live in gone), force=True)
        except DataplaneError as exc:
            log.warning("deleting interfaces of %s: %s", self.vpc_id, exc)
        finally:
            for live in gone:
                live.ns.close()

    # -- using the interfaces -------------------------------------------------------------------

    def interface_namespace(self, eni_id: str) -> NetNamespace:
        """The namespace of a network interface (sockets made with its ``call`` are in the VPC)."""
        with self._lock:
            live = self._interfaces.get(eni_id)
            if live is None:
                raise ValueError(f"no interface {eni_id!r} in the data plane of {self.vpc_id!r}")
            return live.ns

    @property
    def router_namespace(self) -> NetNamespace:
        if self._router is None:
            raise ValueError(f"the data plane of {self.vpc_id!r} has no router")
        return self._router

    def spawn_in_interface(self, eni_id: str, argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside an interface's namespace (as a VPC host); ``popen`` goes to Popen.

        The process is the caller's: deleting the interface cuts it off the VPC but does not end it.
        """
        ns = self.interface_namespace(eni_id)
        return ns.call(lambda: subprocess.Popen(list(argv), **popen))

    # -- teardown -------------------------------------------------------------------------------

    def close(self) -> None:
        """Remove every link, rule and namespace of this VPC (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            router, self._router = self._router, None
            gone, self._interfaces = list(self._interfaces.values()), {}
            if self._internet is not None and self._uplink is not None:
                try:
                    self._uplink.disconnect(self._internet)
                except DataplaneError as exc:
                    log.warning("disconnecting %s from the edge: %s", self.vpc_id, exc)
                self._internet = None
            try:
                if router is not None and gone:
                    iproute.batch(router, iproute.delete_all_links())
            except DataplaneError as exc:
                log.warning("closing the data plane of %s: %s", self.vpc_id, exc)
            finally:
                for live in gone:
                    live.ns.close()
                if router is not None:
                    # The ruleset and routes live in the router namespace and go with it.
                    router.close()

    def __enter__(self) -> VpcDataplane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<VpcDataplane {self.vpc_id!r} interfaces={sorted(self._interfaces)!r}>"
