"""Links, addresses, routes and policy rules through iproute2 (``ip -batch``, ``ip -json``).

Facts about the kernel's routing, as the VPC router uses it (ip-route(8), ip-rule(8)):
- A ``throw`` route ends the lookup in its table as if nothing had matched, and the next
  ``ip rule`` is tried: a route table's ``local`` route hands over to ``main`` that way.
- One address may sit on several links of a namespace (each gets its own ``local`` route): the
  gateway address is on every router link of its subnet, and answers ARP on each.
- Deleting one end of a veth pair deletes the other, and every route through either.
  Destroying a namespace destroys the veths in it (virtual links are not handed back to the host).
- Deleting a link waits for an RCU grace period, some 15-25 ms each; deleting a whole link group
  (``ip link del group N``) is one batch with one wait: 20 veths go in ~25 ms instead of ~330 ms.
  Router links are put in group ``LINK_GROUP`` for that.
- Routes and rules carry a protocol tag (``proto``); lamina's are ``252``, so what it installed
  can be listed and told apart from the kernel's own (``proto kernel``) routes.
- ``ip -json route show`` writes ``dst`` as ``default``, a bare address for a /32 or a CIDR, and
  ``table`` only for tables other than ``main``; ``ip -json rule show`` writes ``src``/``srclen``.
- ``ip route replace`` is idempotent: it adds the route or overwrites the one with the same table,
  destination, TOS and metric, whatever its type.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network
from typing import Any

from lamina.domain.dataplane import (
    MAIN_TABLE,
    ROUTE_PROTOCOL,
    InterfacePlan,
    RouteAction,
    RouterRoute,
    SourceRule,
)
from lamina.linux import NetNamespace
from lamina.net import commands

LINK_GROUP = ROUTE_PROTOCOL  # the link group of every router-side veth


def batch(
    ns: NetNamespace, lines: Sequence[str], *, pass_fds: Sequence[int] = (), force: bool = False
) -> None:
    """Run ``ip -batch -`` with ``lines`` inside ``ns`` (``force``: carry on past failing lines,
    still raising at the end if any failed)."""
    if not lines:
        return
    argv = ["ip", "-force", "-batch", "-"] if force else ["ip", "-batch", "-"]
    commands.run(ns, argv, stdin="\n".join(lines) + "\n", pass_fds=pass_fds)


# -- links ----------------------------------------------------------------------------------------


def router_side(interface: InterfacePlan, peer_ns_fd: int) -> list[str]:
    """Create the veth pair from the router, its peer born inside the interface's namespace
    (``peer_ns_fd`` is passed to ``ip``); give the router end the gateway address."""
    peer = f"peer name {interface.inner_link}"
    if interface.mac:
        peer += f" address {interface.mac}"
    return [
        f"link add {interface.router_link} group {LINK_GROUP} type veth {peer} netns /proc/self/fd/{peer_ns_fd}",
        f"address add {interface.gateway}/32 dev {interface.router_link}",
        f"link set {interface.router_link} up",
    ]


def interface_side(interface: InterfacePlan) -> list[str]:
    """Inside the interface's namespace: its address without a prefix route, and everything via
    the gateway, so even same-subnet traffic crosses the router and its security groups."""
    link = interface.inner_link
    return [
        f"address add {interface.address} dev {link} noprefixroute",
        f"link set {link} up",
        f"route add {interface.gateway}/32 dev {link} scope link",
        f"route add default via {interface.gateway} dev {link}",
    ]


def delete_links(names: Iterable[str]) -> list[str]:
    return [f"link del {name}" for name in names]


def delete_all_links() -> list[str]:
    """Every router-side veth (and so every peer) in one batch."""
    return [f"link del group {LINK_GROUP}"]


# -- routes and rules -----------------------------------------------------------------------------


def route_line(route: RouterRoute) -> str:
    """``route replace ...`` for one planned route."""
    tail = f"proto {ROUTE_PROTOCOL} table {route.table}"
    dst = route.destination
    match route.action:
        case RouteAction.CONNECTED:
            return f"route replace {dst} dev {route.link} scope link src {route.source} {tail}"
        case RouteAction.LOCAL:
            return f"route replace throw {dst} {tail}"
        case RouteAction.INTERFACE | RouteAction.GATEWAY:
            return f"route replace {dst} via {route.via} dev {route.link} onlink {tail}"
        case RouteAction.BLACKHOLE:
            return f"route replace blackhole {dst} {tail}"
        case RouteAction.ENDPOINT:  # delivered here, to a transparent listener (runtime.public_api)
            return f"route replace local {dst} dev lo {tail}"
    raise AssertionError(route.action)


def rule_line(verb: str, rule: SourceRule) -> str:
    return (
        f"rule {verb} from {rule.source} lookup {rule.table} pref {rule.priority} protocol {ROUTE_PROTOCOL}"
    )


def _table(entry: dict[str, Any]) -> int:
    name = str(entry.get("table", "main"))
    return MAIN_TABLE if name == "main" else int(name)


def _destination(entry: dict[str, Any]) -> IPv4Network:
    dst = str(entry["dst"])
    return IPv4Network("0.0.0.0/0" if dst == "default" else dst)


def routing_changes(
    current_routes: Iterable[dict[str, Any]],
    current_rules: Iterable[dict[str, Any]],
    routes: Sequence[RouterRoute],
    rules: Sequence[SourceRule],
) -> list[str]:
    """The ``ip -batch`` lines that turn the router's lamina routes and rules (``ip -json`` output,
    routes already filtered to lamina's protocol) into the planned ones.

    Every planned route is written with ``replace`` (idempotent, and it corrects a route whose
    target changed); routes and rules no longer planned are deleted.
    """
    wanted_routes = {(r.table, r.destination) for r in routes}
    wanted_rules = {(r.priority, r.source, r.table) for r in rules}
    have_rules = set()
    lines = []
    for entry in current_rules:
        if str(entry.get("protocol")) != str(ROUTE_PROTOCOL):
            continue
        key = (
            int(entry["priority"]),
            IPv4Network(f"{entry['src']}/{entry.get('srclen', 32)}"),
            _table(entry),
        )
        have_rules.add(key)
        if key not in wanted_rules:
            lines.append(f"rule del pref {key[0]} from {key[1]} lookup {key[2]}")
    lines += [route_line(r) for r in routes]
    for entry in current_routes:
        table, destination = _table(entry), _destination(entry)
        if (table, destination) not in wanted_routes:
            kind = f"{entry['type']} " if entry.get("type") else ""
            lines.append(f"route del {kind}{destination} table {table}")
    lines += [rule_line("add", r) for r in rules if (r.priority, r.source, r.table) not in have_rules]
    return lines


def route_changes(installed: Sequence[RouterRoute], wanted: Sequence[RouterRoute]) -> list[str]:
    """The ``ip -batch`` lines from routes known to be installed to ``wanted`` (for namespaces
    and links only lamina changes, where what it did is the state): new or changed routes are
    replaced, the others deleted."""
    have = {(r.table, r.destination): r for r in installed}
    keep = {(r.table, r.destination) for r in wanted}
    lines = [route_line(r) for r in wanted if have.get((r.table, r.destination)) != r]
    for route in installed:
        if (route.table, route.destination) not in keep:
            dev = f" dev {route.link}" if route.link else ""
            lines.append(f"route del {route.destination}{dev} table {route.table}")
    return lines


def link_route_changes(
    link: str, current: Iterable[dict[str, Any]], routes: Sequence[RouterRoute]
) -> list[str]:
    """The ``ip -batch`` lines that make lamina's routes through ``link`` (``ip -json route show
    dev LINK proto 252`` output, table ``main``) exactly ``routes``."""
    wanted = {r.destination for r in routes}
    lines = [route_line(r) for r in routes]
    for entry in current:
        destination = _destination(entry)
        if destination not in wanted:
            lines.append(f"route del {destination} dev {link} table {MAIN_TABLE}")
    return lines


def reconcile_link_routes(ns: NetNamespace, link: str, routes: Sequence[RouterRoute]) -> None:
    """Make lamina's routes through ``link`` in ``ns`` exactly ``routes`` (all through ``link``, in
    ``main``), touching no other route: for a namespace lamina does not own, such as the host's."""
    current = json.loads(
        commands.run(ns, ["ip", "-json", "route", "show", "dev", link, "proto", str(ROUTE_PROTOCOL)]) or "[]"
    )
    batch(ns, link_route_changes(link, current, routes))


def reconcile_routing(ns: NetNamespace, routes: Sequence[RouterRoute], rules: Sequence[SourceRule]) -> None:
    """Make the routes and rules lamina owns in ``ns`` exactly the planned ones."""
    current_routes = json.loads(
        commands.run(ns, ["ip", "-json", "route", "show", "table", "all", "proto", str(ROUTE_PROTOCOL)])
        or "[]"
    )
    current_rules = json.loads(commands.run(ns, ["ip", "-json", "rule", "show"]) or "[]")
    batch(ns, routing_changes(current_routes, current_rules, routes, rules))
