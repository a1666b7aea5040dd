"""The data plane's sysctl presets: what each kind of namespace (router, NAT gateway, interface)
sets in ``/proc/sys/net`` (the mechanism and its kernel facts: :mod:`lamina.linux.sysctl`)."""

from __future__ import annotations

from collections.abc import Mapping

from lamina.linux import NetNamespace, sysctl
from lamina.net.commands import DataplaneError

ROUTER = {
    "ipv4/ip_forward": "1",
    # Source addresses are checked by the nftables rules (against the link they arrive on);
    # reverse-path filtering would also refuse a route table's more specific routes to an interface.
    "ipv4/conf/all/rp_filter": "0",
    "ipv4/conf/default/rp_filter": "0",
    "ipv6/conf/all/disable_ipv6": "1",
    "ipv6/conf/default/disable_ipv6": "1",
}
# A NAT gateway forwards out of the link it receives on (both sides are the router): it must not
# answer with ICMP redirects (a redirect is sent when ``all`` *or* the link says so).
NAT_GATEWAY = {
    **ROUTER,
    "ipv4/conf/all/send_redirects": "0",
    "ipv4/conf/default/send_redirects": "0",
}
EDGE = ROUTER
INTERFACE = {
    "ipv4/ip_forward": "0",
    "ipv6/conf/all/disable_ipv6": "1",
    "ipv6/conf/default/disable_ipv6": "1",
}


def configure(ns: NetNamespace, values: Mapping[str, str]) -> None:
    """Write ``values`` (paths under ``/proc/sys/net``) in ``ns``; IPv6 keys are skipped without IPv6."""
    try:
        sysctl.write_net(ns, values)
    except OSError as exc:
        raise DataplaneError(f"cannot set sysctls in {ns.name!r}: {exc}") from exc
