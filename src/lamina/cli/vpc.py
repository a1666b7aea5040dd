"""``lamina vpc``: put a process into a VPC (``run``), show what is in each VPC (``status``).

``lamina vpc run`` is a client of a running server like any other: it creates a network interface
through the EC2 API (boto3, the standard credential chain), waits for the server's data plane to
publish the interface's namespace at ``<data_dir>/run/netns/<eni-id>``, runs the command in it
(through ``lamina.cli.vpc_exec``, with the VPC's ``/etc/resolv.conf`` the server hands out), and
deletes the interface when the command ends. The process is then a VPC host: reachable at
the interface's address as its security groups allow, reaching what they and the routes allow.

Facts about running a command in a namespace and forwarding signals:
- A child starts in the network namespace of the *thread* that forks it, so the command is
  started from a helper thread switched into the namespace (``NetNamespace.call``): no
  ``preexec_fn``, no ``nsenter``.
- The command runs in its own process group, so a signal reaches it once: on a terminal that
  group is made the foreground group (the terminal's Ctrl-C, Ctrl-Z and job control go straight
  to it, as a shell does); signals sent to ``lamina vpc run`` itself are forwarded to the group.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any

from lamina.cli.awsclient import DEFAULT_ENDPOINT, aws_error, clients

DESCRIPTION_MAX = 255  # EC2's limit on an interface's Description
RESOLV_MAX = 4096  # a resolv.conf longer than this is not one lamina made
REATTACH_TIMEOUT_S = 60.0
WATCH_EVERY_S = 0.5  # how often the interface's link is checked
ASK_EVERY_S = 2.0  # how often the API is asked, while the link is missing, whether it was deleted
STOP_GRACE_S = 10.0  # after SIGTERM, the command has this long before SIGKILL
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def add_parser(sub: Any) -> None:
    """``lamina vpc ...`` under the top-level subcommands."""
    vpc = sub.add_parser("vpc", help="put a process into a VPC, show what is in each VPC")
    commands = vpc.add_subparsers(dest="vpc_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--endpoint-url",
            default=os.environ.get(
                "AWS_ENDPOINT_URL_EC2", os.environ.get("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT)
            ),
            help=f"the lamina server (default {DEFAULT_ENDPOINT})",
        )
        p.add_argument(
            "--region", default=None, help="region (default: the AWS configuration, else us-east-1)"
        )

    run = commands.add_parser(
        "run",
        help="run a command inside a VPC subnet, on a network interface of its own",
        usage="lamina vpc run [options] --subnet SUBNET --security-group SG [...] -- COMMAND [ARG ...]",
    )
    common(run)
    run.add_argument("--subnet", required=True, help="the subnet (subnet-...)")
    run.add_argument(
        "--security-group",
        action="append",
        default=[],
        dest="security_groups",
        metavar="SG",
        help="a security group of the interface (repeat for more; default: the VPC's default group)",
    )
    run.add_argument(
        "--private-ip", default=None, help="the interface's address (default: the next free one)"
    )
    run.add_argument(
        "--data-dir",
        default=os.environ.get("LAMINA_DATA_DIR"),
        help="the server's data directory (env LAMINA_DATA_DIR; default: asked of the server, when it "
        "runs on this host, else /var/lib/lamina)",
    )
    run.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="seconds to wait for the server to bring the interface up (default 10)",
    )
    run.add_argument(
        "--reattach-timeout",
        type=float,
        default=REATTACH_TIMEOUT_S,
        help="seconds to wait for a restarting server to re-attach the interface before giving up "
        f"(default {REATTACH_TIMEOUT_S:g})",
    )
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND", help="the command, after --")

    release = commands.add_parser(
        "release",
        help="detach and delete an interface a `lamina vpc run` left in use (its process was killed)",
    )
    common(release)
    release.add_argument("interface", metavar="ENI", help="the interface (eni-...)")

    status = commands.add_parser("status", help="each VPC's subnets and network interfaces")
    common(status)
    status.add_argument("--json", action="store_true", help="print JSON")


def main(args: argparse.Namespace) -> int:
    if args.vpc_command == "run":
        return run(args)
    if args.vpc_command == "status":
        return status(args)
    if args.vpc_command == "release":
        return release(args)
    return 2


def release(args: argparse.Namespace) -> int:
    """``lamina vpc release ENI``: detach (if in use by a process) and delete the interface."""
    (ec2,) = _clients(args, "ec2")
    if _ask(args, {"Action": "Detach", "NetworkInterfaceId": args.interface}) is None:
        return 1
    try:
        ec2.delete_network_interface(NetworkInterfaceId=args.interface)
    except Exception as exc:
        message = aws_error(exc)
        if message is None:
            raise
        _say(f"vpc release: {message}")
        return 1
    return 0


def _say(message: str) -> None:
    print(f"lamina: {message}", file=sys.stderr, flush=True)


def _clients(args: argparse.Namespace, *services: str) -> list[Any]:
    return clients(args.endpoint_url, args.region, *services)


# -- lamina vpc run -------------------------------------------------------------------------------


@contextmanager
def _signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    previous = {s: signal.signal(s, handler) for s in FORWARDED}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


class _Interrupted(BaseException):  # like KeyboardInterrupt: not caught on the way
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(signum)


def run(args: argparse.Namespace) -> int:
    """``lamina vpc run``: the command's exit status (128 + N if signal N ended it)."""
    from lamina.domain.dataplane import INNER_LINK
    from lamina.net import published

    command = list(args.argv[1:] if args.argv[:1] == ["--"] else args.argv)
    if not command:
        _say("vpc run: no command given (lamina vpc run ... -- COMMAND [ARG ...])")
        return 2
    if os.geteuid() != 0:
        _say("vpc run: needs root (it enters the interface's network namespace)")
        return 2
    netns_dir = _netns_dir(args)
    if netns_dir is None:
        return 1
    (ec2,) = _clients(args, "ec2")
    request: dict[str, Any] = {
        "SubnetId": args.subnet,
        "Description": f"lamina vpc run: {shlex.join(command)}"[:DESCRIPTION_MAX],
    }
    if args.security_groups:
        request["Groups"] = args.security_groups
    if args.private_ip:
        request["PrivateIpAddress"] = args.private_ip
    eni_id = None
    attached = False
    # Until the command runs, SIGTERM/SIGHUP/SIGINT end this process through the ``finally``.
    with _signals(_interrupt):
        try:
            eni = ec2.create_network_interface(**request)["NetworkInterface"]
            eni_id = eni["NetworkInterfaceId"]
            if not re.fullmatch(r"eni-[0-9a-f]{1,17}", eni_id):  # a path component below
                _say(f"vpc run: the server answered an interface id {eni_id!r}")
                return 1
            groups = ",".join(g["GroupId"] for g in eni.get("Groups", []))
            _say(f"{eni_id} {eni['PrivateIpAddress']} in {eni['SubnetId']} ({groups})")
            # On a node that is not the VPC's home, the server joins a namespace of its own to the
            # interface at home and publishes it as the interface's (an older server: no answer).
            joined = _ask(args, {"Action": "Join", "NetworkInterfaceId": eni_id}, quiet=_NO_JOIN)
            link = joined.get("Joined") if joined is not None else None
            attached = joined is not None  # what was joined is released at Detach
            if published.wait_published(netns_dir, eni_id, args.wait) is None:
                _say(f"vpc run: the server did not bring {eni_id} up within {args.wait:g} s (see its log)")
                return 1
            # Once the namespace is published, the server knows the VPC's resolv.conf too.
            answer = _ask(args, {"Action": "Attach", "NetworkInterfaceId": eni_id}, quiet=_GONE)
            attached = attached or answer is not None
            resolv = answer.get("ResolvConf") if answer is not None else None
            watched = (INNER_LINK, eni["PrivateIpAddress"])
            if isinstance(link, dict) and isinstance(link.get("Link"), str):
                watched = (str(link["Link"]), str(link.get("Address", "")))
            watch = _Watch(ec2, netns_dir, eni_id, watched, args.reattach_timeout)
            with _resolv_file(resolv) as resolv_path:
                if resolv_path is not None:
                    command = [sys.executable, "-P", "-m", "lamina.cli.vpc_exec", resolv_path, "--", *command]
                return _run_on(netns_dir, eni_id, command, watch)
        except _Interrupted as exc:
            return 128 + exc.signum
        except Exception as exc:
            message = aws_error(exc)
            if message is None:
                raise
            _say(f"vpc run: {message}")
            return 1
        finally:
            if eni_id is not None:
                _delete_interface(args, ec2, eni_id, attached)


def local_endpoint(url: str) -> bool:
    """Whether the server at ``url`` runs on this host: its address is a loopback address or one
    this host holds (a UDP socket can be bound to it)."""
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    for family, _, _, _, address in infos:
        if ipaddress.ip_address(address[0]).is_loopback:
            continue
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.bind((address[0], 0))
        except OSError:
            return False
    return bool(infos)


def _netns_dir(args: argparse.Namespace) -> Path | None:
    """Where the server publishes interfaces' namespaces: under ``--data-dir`` when given, else as
    the server says (``POST /_lamina/vpc-run``, action ``Where``) when it runs on this host (None,
    said on stderr, if it cannot be asked), else under the default data directory. What a server says is used only if it is an absolute path
    to a directory of root's, and only namespace files are ever opened there."""
    from lamina.settings import default_data_dir

    if args.data_dir:
        data_dir = Path(args.data_dir)
        netns_dir = data_dir / "run" / "netns"
        hint = f"is `lamina server --data-dir {data_dir}` running, as root?"
    else:
        netns_dir = default_data_dir() / "run" / "netns"
        hint = "is the server running as root (or give --data-dir)?"
        if local_endpoint(args.endpoint_url):
            told = _ask(args, {"Action": "Where"})
            if told is None:  # said why (say, the server is not running): nothing else would work
                return None
            said = told.get("NetnsDir")
            if said is None:
                _say(f"vpc run: the server at {args.endpoint_url} has no VPC data plane (see its log)")
                return None
            path = Path(str(said))
            try:
                owner = path.stat().st_uid
            except OSError:
                owner = -1
            if not path.is_absolute() or owner != 0:
                _say(f"vpc run: the server named {said!r} for its namespaces: not a directory of root's")
                return None
            netns_dir, hint = path, "is the server running?"
    if not netns_dir.is_dir():
        _say(f"vpc run: no VPC data plane at {netns_dir}: {hint}")
        return None
    return netns_dir


def _ask(
    args: argparse.Namespace, document: dict[str, Any], quiet: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """lamina's ``vpc-run`` route: its answer, or None (said on stderr, but for the error codes
    ``quiet``) if it failed."""
    from lamina.cli.awsclient import signed_post

    try:
        status, answer = signed_post(args.endpoint_url, args.region, "ec2", "/_lamina/vpc-run", document)
    except Exception as exc:
        message = aws_error(exc)
        if message is None:
            raise
        _say(f"vpc run: {message}")
        return None
    if status != 200:
        error = answer.get("Error") or {}
        if error.get("Code") in quiet:
            return None
        _say(f"vpc run: {error.get('Code', status)}: {error.get('Message', 'the server refused')}")
        return None
    return answer


_GONE = ("InvalidNetworkInterfaceID.NotFound",)  # an interface already gone is not worth a word
_NO_JOIN = ("InvalidParameterValue",)  # a server without the Join action


def _use(args: argparse.Namespace, eni_id: str, action: str) -> bool:
    """Tell the server that this process stops (``Detach``) using the interface (its status
    ``available`` again); whether it worked."""
    document = {"Action": action, "NetworkInterfaceId": eni_id}
    return _ask(args, document, quiet=_GONE) is not None


@contextmanager
def _resolv_file(text: Any) -> Iterator[str | None]:
    """The VPC's ``/etc/resolv.conf`` the server handed out (``Attach``'s ``ResolvConf``), in a
    file of its own (readable by all: the command may drop privileges) while the command runs;
    None when the server gave none (no data plane)."""
    if not isinstance(text, str) or len(text) > RESOLV_MAX or "\0" in text:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="lamina-vpc-run-")
    path = os.path.join(directory, "resolv.conf")
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
        os.chmod(directory, 0o755)
        os.chmod(path, 0o644)
        yield path
    finally:
        with suppress(OSError):
            os.unlink(path)
        with suppress(OSError):
            os.rmdir(directory)


def _delete_interface(args: argparse.Namespace, ec2: Any, eni_id: str, attached: bool) -> None:
    # Signals arriving now must not cut the clean-up short: they are forwarded to nobody.
    with _signals(lambda signum, frame: None):
        if attached:
            _use(args, eni_id, "Detach")
        try:
            ec2.delete_network_interface(NetworkInterfaceId=eni_id)
        except Exception as exc:
            message = aws_error(exc)
            if message is None:
                raise
            if "NotFound" not in message:
                _say(
                    f"could not delete {eni_id}: {message}; free it with `lamina vpc release "
                    f"--endpoint-url {args.endpoint_url} {eni_id}` once the server answers"
                )


def _run_on(netns_dir: Path, eni_id: str, command: Sequence[str], watch: _Watch) -> int:
    from lamina.linux import NetNamespace

    try:
        fd = os.open(netns_dir / eni_id, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        _say(f"vpc run: cannot open the namespace of {eni_id}: {exc}")
        return 1
    terminal = _foreground_terminal()
    forward = _Forwarder()
    # Forwarding starts before the command does: a signal in between is held, then delivered.
    with NetNamespace(fd, eni_id) as ns, _signals(forward):
        try:
            proc = ns.call(lambda: subprocess.Popen(list(command), process_group=0))
        except OSError as exc:
            _say(f"vpc run: {command[0]}: {exc.strerror}")
            return 127 if isinstance(exc, FileNotFoundError) else 126
        forward.attach(proc.pid)
        watch.start(ns, proc.pid)
        try:
            code = _supervise(proc, terminal)
        finally:
            watch.stop()
        if watch.failure is not None:
            _say(f"vpc run: {watch.failure}; the command was stopped")
            return 1
        return code


class _Watch:
    """Watches the interface while the command runs: its link in the namespace keeps its address,
    or (a server restarting) gets it back once the server has re-attached the namespace. If that
    cannot happen -- the interface was deleted, the server made a new namespace for it, or nothing
    came back within the re-attach timeout -- the command is stopped (SIGTERM to its group, SIGKILL
    after a grace period) and ``failure`` says why."""

    def __init__(
        self, ec2: Any, netns_dir: Path, eni_id: str, watched: tuple[str, str], timeout_s: float
    ) -> None:
        self._ec2 = ec2
        self._netns_dir = netns_dir
        self.eni_id = eni_id
        self._link, self._address = watched  # the link in the namespace and its address
        self._timeout_s = timeout_s
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: str | None = None

    def start(self, ns: Any, pgrp: int) -> None:
        from lamina.net import published

        inode = published.published_inode(self._netns_dir, self.eni_id) or os.fstat(ns.fd).st_ino
        self._thread = threading.Thread(
            target=self._run, args=(ns, pgrp, inode), name="lamina-vpc-run-watch", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self, ns: Any, pgrp: int, inode: int) -> None:
        reason = self._watch(ns, inode)
        if reason is None:
            return
        self.failure = reason
        with suppress(ProcessLookupError):
            os.killpg(pgrp, signal.SIGTERM)
            if not self._done.wait(STOP_GRACE_S):
                os.killpg(pgrp, signal.SIGKILL)

    def _watch(self, ns: Any, inode: int) -> str | None:
        from lamina.net import published

        lost_at: float | None = None
        asked = 0.0
        while not self._done.wait(WATCH_EVERY_S):
            if published.link_address(ns, self._link) == self._address:
                if lost_at is not None:
                    _say(f"{self.eni_id} re-attached: {self._address} is back")
                    lost_at = None
                continue
            now = time.monotonic()
            if lost_at is None:
                lost_at = now
                _say(
                    f"{self.eni_id} lost its link: waiting up to {self._timeout_s:g} s for the server "
                    "to re-attach it"
                )
            if published.published_inode(self._netns_dir, self.eni_id) not in (None, inode):
                return f"the server gave {self.eni_id} a new namespace: this process was cut off"
            if now - asked >= ASK_EVERY_S:
                asked = now
                if self._deleted():
                    return f"{self.eni_id} was deleted"
            if now - lost_at > self._timeout_s:
                return (
                    f"{self.eni_id} was not re-attached within {self._timeout_s:g} s (is the server running?)"
                )
        return None

    def _deleted(self) -> bool:
        try:
            self._ec2.describe_network_interfaces(NetworkInterfaceIds=[self.eni_id])
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            return bool(code == "InvalidNetworkInterfaceID.NotFound")
        return False


class _Forwarder:
    """A signal handler passing signals on to the command's process group (held until it exists)."""

    def __init__(self) -> None:
        self.pgrp: int | None = None
        self.held: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.pgrp is None:
            self.held.append(signum)
            return
        with suppress(ProcessLookupError):
            os.killpg(self.pgrp, signum)

    def attach(self, pgrp: int) -> None:
        self.pgrp = pgrp
        held, self.held = self.held, []
        for signum in held:
            self(signum, None)


def _foreground_terminal() -> int | None:
    """Standard input's terminal, if this process is in its foreground group."""
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


def _give_terminal(fd: int, pgrp: int) -> None:
    # tcsetpgrp from a background group raises SIGTTOU unless it is ignored.
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, pgrp)
    finally:
        signal.signal(signal.SIGTTOU, old)


def _supervise(proc: subprocess.Popen[Any], terminal: int | None) -> int:
    """Wait for the command (its signals forwarded, the terminal its own); its exit status."""
    pgrp = proc.pid
    if terminal is not None:
        _give_terminal(terminal, pgrp)
        os.killpg(pgrp, signal.SIGCONT)  # in case it read the terminal before it was its own
    try:
        while True:
            _, status = os.waitpid(proc.pid, os.WUNTRACED)
            if not os.WIFSTOPPED(status):
                break
            if terminal is not None:
                # Ctrl-Z: stop as a whole, as the shell expects of its job; carry on with `fg`.
                _give_terminal(terminal, os.getpgrp())
                os.kill(os.getpid(), signal.SIGSTOP)
                _give_terminal(terminal, pgrp)
                os.killpg(pgrp, signal.SIGCONT)
    finally:
        if terminal is not None:
            _give_terminal(terminal, os.getpgrp())
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    return 128 - code if code < 0 else code


# -- lamina vpc status ----------------------------------------------------------------------------


def _all(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**params):
        out += page.get(key, [])
    return out


def collect(ec2: Any, lam: Any) -> list[dict[str, Any]]:
    """Every VPC with its subnets and network interfaces; a Hyperplane interface (type ``lambda``)
    lists the functions sharing it: same subnet, same set of security groups."""
    vpcs = _all(ec2, "describe_vpcs", "Vpcs")
    subnets = _all(ec2, "describe_subnets", "Subnets")
    interfaces = _all(ec2, "describe_network_interfaces", "NetworkInterfaces")
    users: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for function in _all(lam, "list_functions", "Functions"):
        config = function.get("VpcConfig") or {}
        groups = tuple(sorted(config.get("SecurityGroupIds") or ()))
        for subnet in config.get("SubnetIds") or ():
            users.setdefault((subnet, groups), []).append(function["FunctionName"])
    out = []
    for vpc in sorted(vpcs, key=lambda v: v["VpcId"]):
        vpc_id = vpc["VpcId"]
        shown_interfaces = []
        for eni in sorted(
            (i for i in interfaces if i.get("VpcId") == vpc_id),
            key=lambda i: (i["SubnetId"], i.get("PrivateIpAddress", "")),
        ):
            group_ids = sorted(g["GroupId"] for g in eni.get("Groups", []))
            item = {
                "NetworkInterfaceId": eni["NetworkInterfaceId"],
                "SubnetId": eni["SubnetId"],
                "PrivateIpAddress": eni.get("PrivateIpAddress"),
                "InterfaceType": eni.get("InterfaceType", "interface"),
                "Status": eni.get("Status"),
                "Groups": [
                    {"GroupId": g["GroupId"], "GroupName": g.get("GroupName", "")}
                    for g in eni.get("Groups", [])
                ],
                "Description": eni.get("Description", ""),
            }
            if item["InterfaceType"] == "lambda":
                item["Functions"] = sorted(users.get((eni["SubnetId"], tuple(group_ids)), []))
            shown_interfaces.append(item)
        out.append(
            {
                "VpcId": vpc_id,
                "CidrBlock": vpc.get("CidrBlock"),
                "Subnets": [
                    {
                        "SubnetId": s["SubnetId"],
                        "CidrBlock": s["CidrBlock"],
                        "AvailabilityZone": s.get("AvailabilityZone"),
                        "AvailableIpAddressCount": s.get("AvailableIpAddressCount"),
                    }
                    for s in sorted(subnets, key=lambda s: s["CidrBlock"])
                    if s.get("VpcId") == vpc_id
                ],
                "NetworkInterfaces": shown_interfaces,
            }
        )
    return out


def render(vpcs: Sequence[dict[str, Any]]) -> str:
    """``collect``'s result as indented text."""
    lines = []
    for vpc in vpcs:
        lines.append(f"{vpc['VpcId']}  {vpc['CidrBlock']}")
        for s in vpc["Subnets"]:
            lines.append(
                f"  {s['SubnetId']}  {s['CidrBlock']}  {s['AvailabilityZone']}  "
                f"{s['AvailableIpAddressCount']} addresses available"
            )
            for eni in (i for i in vpc["NetworkInterfaces"] if i["SubnetId"] == s["SubnetId"]):
                groups = ", ".join(
                    f"{g['GroupId']} ({g['GroupName']})" if g["GroupName"] else g["GroupId"]
                    for g in eni["Groups"]
                )
                line = f"    {eni['NetworkInterfaceId']}  {eni['PrivateIpAddress']}  {eni['InterfaceType']}  [{groups}]"
                if "Functions" in eni:
                    line += "  functions: " + (", ".join(eni["Functions"]) or "(none)")
                elif eni["Description"]:
                    line += f"  {eni['Description']}"
                lines.append(line)
        if not vpc["Subnets"]:
            lines.append("  (no subnets)")
    return "\n".join(lines) + "\n" if lines else "no VPCs\n"


def status(args: argparse.Namespace) -> int:
    ec2, lam = _clients(args, "ec2", "lambda")
    try:
        vpcs = collect(ec2, lam)
    except Exception as exc:
        message = aws_error(exc)
        if message is None:
            raise
        _say(f"vpc status: {message}")
        return 1
    sys.stdout.write(json.dumps(vpcs, indent=2) + "\n" if args.json else render(vpcs))
    return 0
