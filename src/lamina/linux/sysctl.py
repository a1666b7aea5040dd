"""Per-namespace network sysctls (``/proc/sys/net``).

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

from lamina.linux.namespaces import NetNamespace

_ROOT = Path("/proc/sys/net")


def write_net(ns: NetNamespace, values: Mapping[str, str]) -> None:
    """Write ``values`` (paths under ``/proc/sys/net``) in ``ns``, in order; IPv6 keys are skipped on
    kernels without IPv6. Raises OSError."""

    def write() -> None:
        for key, value in values.items():
            if key.startswith("ipv6/") and not (_ROOT / "ipv6").exists():
                continue
            (_ROOT / key).write_text(value)

    ns.call(write)
