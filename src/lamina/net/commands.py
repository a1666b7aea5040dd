"""Running the kernel's own tools (iproute2's ``ip``, ``nft``) inside a network namespace.

Facts about running a tool in a namespace (Linux 6.x):
- A child starts in the network namespace of the *thread* that forks it, not of the process:
  a command started from a thread switched into a namespace (``NetNamespace.call``) runs there.
  No ``ip netns exec``, no ``/run/netns`` entry, no ``nsenter``.
- Where iproute2 wants a namespace name (``netns NAME``), a value containing a slash is opened as
  a path, so a namespace held only by an fd can be named ``/proc/self/fd/N`` once the fd is
  passed to the child (``pass_fds``; lamina's namespace fds are close-on-exec otherwise).
- ``ip -batch -`` and ``nft -f -`` read many commands from stdin: one fork and exec however many
  links, routes or rules change. ``ip -batch`` stops at the first failing line (without
  ``-force``); ``nft -f`` is one transaction, all or nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache

from lamina.errors import LaminaError
from lamina.linux import NetNamespace

TIMEOUT_S = 30.0


class DataplaneError(LaminaError):
    """The kernel refused part of a VPC's data plane (the tool's own message is included)."""


@cache
def tool(name: str) -> str:
    """The path of a system tool; ``/usr/sbin`` and ``/sbin`` count even when not on ``PATH``."""
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if found is None:
        raise DataplaneError(f"{name!r} is not installed (the VPC data plane needs iproute2 and nftables)")
    return found


def run(ns: NetNamespace, argv: Sequence[str], *, stdin: str = "", pass_fds: Sequence[int] = ()) -> str:
    """Run ``argv`` (its first item a tool name) inside ``ns``; return its standard output.

    A non-zero exit is a :class:`DataplaneError` carrying the tool's standard error.
    """
    command = [tool(argv[0]), *argv[1:]]

    def go() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            pass_fds=tuple(pass_fds),
            timeout=TIMEOUT_S,
            check=False,
        )

    try:
        done = ns.call(go)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DataplaneError(f"{' '.join(argv)} in {ns.name!r}: {exc}") from exc
    if done.returncode != 0:
        raise DataplaneError(
            f"{' '.join(argv)} in {ns.name!r} failed ({done.returncode}): {done.stderr.strip()}"
        )
    return done.stdout
