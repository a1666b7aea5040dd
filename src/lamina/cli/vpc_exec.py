"""``python -P -m lamina.cli.vpc_exec RESOLV -- COMMAND [ARG ...]``: how ``lamina vpc run`` starts
its command, so that it resolves names as an EC2 instance in its VPC does (the DHCP option set's
servers: the VPC's Amazon DNS server), not with the host's ``/etc/resolv.conf``, whose servers
are out of the VPC's reach.

In a mount namespace of its own (``/`` made a slave first: the host's later mounts still reach
the command, nothing of its own propagates back to the host), the file RESOLV is bind-mounted
read-only over ``/etc/resolv.conf``; then COMMAND replaces this process (same pid and process
group, so signals and the terminal reach it as before). If the mount cannot be made (say
``/etc/resolv.conf`` is a dangling link), the command runs all the same with the host's file, and
says so. Once mounted, the file (and its directory) is removed: nothing is left in ``/tmp``
however ``lamina vpc run`` ends. A command that cannot be started exits 127 (not found) or 126,
as a shell's does.
"""

from __future__ import annotations

import os
import sys
from contextlib import suppress

from lamina.linux.mounts import MS_BIND, MS_REC, MS_SLAVE, make_read_only, mount
from lamina.linux.namespaces import CLONE_NEWNS, unshare

RESOLV_CONF = b"/etc/resolv.conf"


def _say(message: str) -> None:
    print(f"lamina: vpc run: {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        _say("usage: python -m lamina.cli.vpc_exec RESOLV -- COMMAND [ARG ...]")
        return 2
    resolv, command = argv[0], argv[2:]
    try:
        unshare(CLONE_NEWNS)  # this process has one thread: the namespace is the process's
        mount(None, b"/", None, MS_REC | MS_SLAVE, None)
        mount(os.fsencode(resolv), RESOLV_CONF, None, MS_BIND, None)
        make_read_only(RESOLV_CONF, recursive=False)
    except OSError as exc:
        _say(f"the command keeps the host's /etc/resolv.conf (cannot mount the VPC's: {exc})")
    else:
        # The mount holds the file now: gone from /tmp even if ``lamina vpc run`` is killed.
        with suppress(OSError):
            os.unlink(resolv)
        with suppress(OSError):
            os.rmdir(os.path.dirname(resolv))
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        _say(f"{command[0]}: {exc.strerror}")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return 0  # not reached: execvp returns only by raising


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
