"""The test bed: several lamina nodes on one machine, network namespaces standing for hosts.

Hosts (each a named network namespace ``PREFIX-NAME``, default prefix ``lamina-tb``) on one LAN,
``10.250.21.0/24`` (no range lamina uses by default), each joined by a veth pair to a bridge in the
``PREFIX-lan`` namespace:

========  ==============  =====================================================================
host      address         runs
========  ==============  =====================================================================
db        10.250.21.2     PostgreSQL (port 5432, database ``lamina``), as the postgres user
s3        10.250.21.3     a lamina server (port 4566) whose own S3 service holds bucket ``lamina-tb``
n1..n3    10.250.21.11-13 lamina nodes (ports 4571-4573): each its data directory (hence its own
                          cgroup parent, ``lamina-<digest of it>``), ``--uplink none``, a slice of
                          ``--uid-range`` of its own, all sharing ``--database`` and ``--blob-store``
solo      10.250.21.20    (optional, benchmarks) a single lamina with SQLite and local blobs
pgonly    10.250.21.21    (optional, benchmarks) a single lamina with a PostgreSQL database of its
                          own (``pgonly``) and local blobs
client    10.250.21.100   nothing: clients (boto3) run here, from threads that enter it
========  ==============  =====================================================================

Nothing is added to the host's own network namespace: no interface, address, route or nftables
rule. Every veth is created inside the bridge namespace with its peer in a host namespace. The root
namespace cannot reach the bed: a client enters ``PREFIX-client`` (:meth:`Testbed.entered` for the
calling thread, :meth:`Testbed.run` for a fresh one; threads created inside inherit it).

Servers are started with ``nsenter --net=/run/netns/PREFIX-HOST`` (the network namespace only), not
``ip netns exec``: the latter also gives the process a mount namespace with a fresh ``/sys``, where
the cgroup hierarchies under ``/sys/fs/cgroup`` are gone, and lamina could not place environments.

:func:`stop` removes everything the bed made (processes by pid, the nodes' cgroups, namespaces and
with them their veths and the bridge, the temporary directory), also for a bed whose starter died:
its state is kept in ``/run/lamina-testbed/PREFIX.json``.

``python tests/lamina_testbed.py`` (``make testbed``) starts one and waits for Ctrl-C or SIGTERM;
``python tests/lamina_testbed.py stop`` (``make testbed-stop``) removes a leftover one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "functional"))

from lamina_server import client, create_lambda_role  # noqa: E402

from lamina.linux import cgroups  # noqa: E402
from lamina.linux.namespaces import CLONE_NEWNET, run_in_thread, setns  # noqa: E402
from lamina.runtime.sizing import cgroup_parent  # noqa: E402
from pg_cluster import PostgresCluster, enter_netns  # noqa: E402

T = TypeVar("T")

PREFIX = "lamina-tb"
SUBNET = "10.250.21"  # .0/24
STATE_DIR = Path("/run/lamina-testbed")
BUCKET = "lamina-tb"
NODES = ("n1", "n2", "n3")
ADDRESSES = {"db": 2, "s3": 3, "n1": 11, "n2": 12, "n3": 13, "solo": 20, "pgonly": 21, "client": 100}
PORTS = {"s3": 4566, "n1": 4571, "n2": 4572, "n3": 4573, "solo": 4580, "pgonly": 4581}
PG_PORT = 5432
UID_BASE = 0x70000000  # lamina's default --uid-range starts here; each node gets 20,000 of it
UID_SLICE = 20000
ACCOUNT_ID = "000000000000"


def address(host: str) -> str:
    return f"{SUBNET}.{ADDRESSES[host]}"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def netns_names() -> list[str]:
    """The named network namespaces (``ip netns list``)."""
    out = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@dataclass
class Node:
    """A lamina server on one of the bed's hosts."""

    host: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{address(self.host)}:{PORTS[self.host]}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL by pid: the crash case."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


class Testbed:
    """A running test bed; :meth:`stop` removes everything it made."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        prefix: str = PREFIX,
        accounts: list[dict[str, str]] | None = None,
        solo: bool = False,
        pgonly: bool = False,
        node_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """``accounts``: the servers' accounts (default: account 000000000000 with a new random
        secret; lamina refuses the well-known test/test on an address other than loopback), the
        first one's keys also those of the blob store; ``solo``: also a single lamina with SQLite
        and local blobs (benchmarks' baseline); ``pgonly``: also one with PostgreSQL and local blobs;
        ``node_args``: more ``lamina server`` options for
        every node (and solo); ``env``: variables added to their environment."""
        self.prefix = prefix
        self.accounts = accounts or [
            {
                "account_id": ACCOUNT_ID,
                "access_key_id": "AKIDLAMINATESTBED",
                "secret_access_key": uuid.uuid4().hex,
            }
        ]
        self.key = self.accounts[0]["access_key_id"]
        self.secret = self.accounts[0]["secret_access_key"]
        self.node_args = node_args
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.nodes: dict[str, Node] = {}
        self.store: Node | None = None
        self.singles: dict[str, Node] = {}  # solo, pgonly: single lamina servers, not nodes
        self.postgres: PostgresCluster | None = None
        self.database = ""
        self._singles = [h for h, wanted in (("solo", solo), ("pgonly", pgonly)) if wanted]
        self._hosts = ["db", "s3", *NODES, "client", *self._singles]
        if f"{prefix}-lan" in netns_names() or self.state_file.exists():
            raise RuntimeError(f"a test bed {prefix!r} exists already: stop it first (make testbed-stop)")
        self.dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    # -- naming ---------------------------------------------------------------------------------

    def netns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    @property
    def state_file(self) -> Path:
        return state_path(self.prefix)

    # -- start ----------------------------------------------------------------------------------

    def _save(self) -> None:
        """What :func:`stop` needs to clean up after a starter that died."""
        procs = [{"pid": n.pid, "kind": "lamina"} for n in self._servers()]
        if self.postgres is not None:
            procs.append({"pid": self.postgres.process.pid, "kind": "postgres"})
        state = {
            "dir": str(self.dir),
            "postgres_dir": str(self.postgres.dir) if self.postgres is not None else None,
            "namespaces": [self.netns(h) for h in ("lan", *self._hosts)],
            "processes": procs,
            "cgroups": [cgroup_parent(n.data_dir) for n in self._servers()],
        }
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        self.state_file.write_text(json.dumps(state))

    def _servers(self) -> list[Node]:
        return [n for n in (self.store, *self.nodes.values(), *self.singles.values()) if n is not None]

    def _network(self) -> None:
        lan = self.netns("lan")
        _ip("netns", "add", lan)
        self._save()
        _ip("-n", lan, "link", "set", "lo", "up")
        _ip("-n", lan, "link", "add", "br0", "type", "bridge")
        _ip("-n", lan, "link", "set", "br0", "up")
        for host in self._hosts:
            ns = self.netns(host)
            _ip("netns", "add", ns)
            _ip("-n", lan, "link", "add", f"v-{host}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", lan, "link", "set", f"v-{host}", "master", "br0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{address(host)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def _server(self, host: str, extra: tuple[str, ...]) -> Node:
        data_dir = self.dir / host / "data"
        data_dir.mkdir(parents=True)
        log_path = self.dir / host / "server.log"
        args = [
            "nsenter",
            f"--net=/run/netns/{self.netns(host)}",
            "--",
            sys.executable,
            "-m",
            "lamina.cli.main",
            "server",
            "--host",
            address(host),
            "--port",
            str(PORTS[host]),
            "--data-dir",
            str(data_dir),
            "--uplink",
            "none",
            "--log-level",
            "warning",
            "--node-name",  # the nodes sharing the database are told apart by name (docs/nodes.md)
            host,
            *extra,
        ]
        accounts_file = self.dir / "accounts.json"
        accounts_file.write_text(json.dumps({"accounts": self.accounts}))
        os.chmod(accounts_file, 0o600)
        args += ["--accounts", str(accounts_file)]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        return Node(host, data_dir, proc, log_path)

    def _wait_ready(self, node: Node, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout

        def poll() -> bool:
            try:
                with urllib.request.urlopen(f"{node.url}/_lamina/health", timeout=1) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise RuntimeError(f"lamina on {node.host} exited with {node.proc.returncode}: {node.log()}")
            if self.run(poll):
                return
            time.sleep(0.1)
        raise RuntimeError(f"lamina on {node.host} did not become ready: {node.log()}")

    def _start(self) -> None:
        self._network()
        self.postgres = PostgresCluster(netns=self.netns("db"), host=address("db"), port=PG_PORT)
        self._save()
        self.database = self.postgres.create("lamina")
        self.store = self._server("s3", ())
        self._save()
        self._wait_ready(self.store)
        self.run(
            lambda: self.client("s3", "s3", s3={"addressing_style": "path"}).create_bucket(Bucket=BUCKET)
        )
        self.env.update(
            AWS_ACCESS_KEY_ID=self.key,
            AWS_SECRET_ACCESS_KEY=self.secret,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )
        shared = (
            "--database",
            self.database,
            "--blob-store",
            f"s3://{BUCKET}/blobs",
            "--blob-endpoint",
            self.store.url,
            "--blob-region",
            "us-east-1",
        )

        def node(host: str, i: int, db: tuple[str, ...]) -> Node:
            first = UID_BASE + i * UID_SLICE
            uids = ("--uid-range", f"{first}-{first + UID_SLICE - 1}")
            return self._server(host, (*db, *uids, *self.node_args))

        # The first node migrates the empty database; the others start once it has.
        self.nodes["n1"] = node("n1", 0, shared)
        self._save()
        self._wait_ready(self.nodes["n1"])
        for i, host in enumerate(NODES[1:], start=1):
            self.nodes[host] = node(host, i, shared)
        for i, host in enumerate(self._singles, start=len(NODES)):
            own = ("--database", self.postgres.create(host)) if host == "pgonly" else ()
            self.singles[host] = node(host, i, own)
        self._save()
        for srv in self._servers():
            self._wait_ready(srv)
        for srv in (self.nodes["n1"], *self.singles.values()):
            for a in self.accounts:
                self.run(
                    functools.partial(create_lambda_role, srv.url, a["access_key_id"], a["secret_access_key"])
                )

    # -- clients --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The calling thread in the client host's namespace for the block (threads it starts
        there inherit it), back in its own afterwards."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            enter_netns(self.netns("client"))
            try:
                yield
            finally:
                setns(own, CLONE_NEWNET)
        finally:
            os.close(own)

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a fresh thread in the client host's namespace."""
        name = self.netns("client")

        def inside() -> T:
            enter_netns(name)
            return fn()

        return run_in_thread(inside)

    def client(self, node: Node | str, service: str = "lambda", **kw: Any) -> Any:
        """A boto3 client of ``node`` (a :class:`Node` or a host name), signed with the first
        account's keys unless ``key``/``secret`` say otherwise; use it from the client namespace
        (its connections are made where its calls run)."""
        target = self.nodes.get(node, None) if isinstance(node, str) else node
        if target is None:
            target = self.store if node == "s3" else self.singles[node]  # type: ignore[index]
        kw.setdefault("key", self.key)
        kw.setdefault("secret", self.secret)
        return client(target.url, service, **kw)  # type: ignore[union-attr]

    def describe(self) -> str:
        lines = [f"lamina test bed {self.prefix!r} (clients: ip netns exec {self.netns('client')} ...)"]
        lines.append(f"  account {self.accounts[0]['account_id']}: key {self.key} secret {self.secret}")
        lines.append(f"  db     {self.database}   (netns {self.netns('db')})")
        for srv in self._servers():
            lines.append(
                f"  {srv.host:<6} {srv.url:<26} pid {srv.pid:<7} netns {self.netns(srv.host):<18} "
                f"data {srv.data_dir}"
            )
        return "\n".join(lines)

    # -- stop -----------------------------------------------------------------------------------

    def stop(self) -> None:
        for srv in self._servers():
            if srv.proc.poll() is None:
                srv.proc.send_signal(signal.SIGTERM)
        for srv in self._servers():
            try:
                srv.proc.wait(20)
            except subprocess.TimeoutExpired:
                srv.proc.kill()
                srv.proc.wait(5)
        if self.postgres is not None:
            self.postgres.stop()
        stop(self.prefix)
        shutil.rmtree(self.dir, ignore_errors=True)  # if it failed before recording it


def state_path(prefix: str) -> Path:
    """Where the bed ``prefix`` records what it made."""
    return STATE_DIR / f"{prefix}.json"


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its reaper does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _end(pid: int, kind: str) -> None:
    """End a leftover process by pid, if it is still the one recorded (its command line says so)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if (kind == "lamina" and b"lamina.cli.main" not in cmdline) or (
        kind == "postgres" and b"postgres" not in cmdline
    ):
        return  # the pid was reused
    os.kill(pid, signal.SIGINT if kind == "postgres" else signal.SIGTERM)
    deadline = time.monotonic() + 20
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if running(pid):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def stop(prefix: str = PREFIX) -> bool:
    """Remove the bed ``prefix`` (what its state file names, and any namespace ``prefix-*``);
    False if there was nothing to remove."""
    state_file = state_path(prefix)
    state: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        state = json.loads(state_file.read_text())
    # The nodes first, then PostgreSQL: a node stopping writes its last state to the database (with
    # the database gone, each write would wait for a connection).
    processes = state.get("processes", [])
    for kinds in (("lamina",), ("postgres",)):
        threads = [
            threading.Thread(target=_end, args=(p["pid"], p["kind"])) for p in processes if p["kind"] in kinds
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for parent in state.get("cgroups", []):
        with contextlib.suppress(cgroups.CgroupError, OSError):
            cgroups.sweep(parent)
    names = set(state.get("namespaces", [])) | {n for n in netns_names() if n.startswith(f"{prefix}-")}
    existing = set(netns_names())
    # The hosts first (their ends of the veths go with them), the bridge's namespace last.
    for name in sorted(names & existing, key=lambda n: n == f"{prefix}-lan"):
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
    for key in ("dir", "postgres_dir"):
        if state.get(key):
            shutil.rmtree(state[key], ignore_errors=True)
    state_file.unlink(missing_ok=True)
    return bool(state or names & existing)


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("the test bed needs root (network namespaces, cgroups)", file=sys.stderr)
        return 1
    if argv[1:2] == ["stop"]:
        print("removed the test bed" if stop() else "no test bed to remove")
        return 0
    if argv[1:]:
        print("usage: lamina_testbed.py [stop]", file=sys.stderr)
        return 2
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    bed = Testbed()
    try:
        print(bed.describe(), flush=True)
        print("Ctrl-C (or SIGTERM) stops it.", flush=True)
        while not done.wait(1):
            pass
    finally:
        print("stopping the test bed", flush=True)
        bed.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
