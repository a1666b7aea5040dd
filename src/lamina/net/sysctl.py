"""Per-namespace kernel settings (``/proc/sys/net``).

Facts about network sysctls (Documentation/networking/ip-sysctl.rst):
- ``/proc/sys/net`` is resolved against the network namespace of the thread that opens the file,
  so a thread switched into a namespace sets that namespace's values and no one else's.
- A new namespace *copies* the host's ``net.ipv4.conf.{all,default}`` values (with the default
  ``net.core.devconf_inherit_init_net=0``), ``ip_forward`` included: a host that forwards would
  make every new namespace a router unless it is set explicitly. IPv6 starts from kernel defaults.
- ``conf/default`` is copied into each link when the link is created, so it must be set before
  the links exist. ``/proc/sys/net/ipv6`` is missing on kernels without IPv6.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lamina.net.commands import DataplaneError
from lamina.runtime.netns import NetNamespace

_ROOT = Path("/proc/sys/net")

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

    def write() -> None:
        for key, value in values.items():
            path = _ROOT / key
            if key.startswith("ipv6/") and not (_ROOT / "ipv6").exists():
                continue
            path.write_text(value)

    try:
        ns.call(write)
    except OSError as exc:
        raise DataplaneError(f"cannot set sysctls in {ns.name!r}: {exc}") from exc
