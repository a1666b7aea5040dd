"""VPC data plane: cold starts behind an existing interface, 100 environments behind one, rule changes.

Needs root (real sandboxes, namespaces, nftables) and the python3.12 runtime that ``make setup``
installs into ``.venv/lamina-runtimes``. One ``lamina server`` (``--max-environments 110``) with
one VPC, 10.91.0.0/16: subnet a 10.91.1.0/24 (functions, ``lamina vpc run`` probes), subnet b
10.91.2.0/24 (a host at 10.91.2.10 under ``lamina vpc run``: port 8000 tells each client the
address it came from and keeps the connection until the client closes; port 7000 accepts and closes).
sg-host allows tcp 8000 from sg-fn; every group allows all out. Three figures, each beside a
baseline measured in the same run:

1. **Cold start of a VPC function whose Hyperplane interface already exists**: one function of the
   (subnet a, sg-fn) combination is created first (untimed: it makes the interface), then
   ``--colds`` (15) more of that combination and as many without ``VpcConfig`` (the baseline), all
   python3.12 with ``return {}``. Each is invoked once (``LogType=Tail``), VPC and non-VPC
   alternating: the client-observed wall time of that first invoke and the ``Init Duration`` of its
   REPORT line. Target: VPC p50 <= non-VPC p50 + 10 ms.
2. **100 concurrent environments behind one interface**: one VPC function (sg-fn, subnet a) invoked
   ``--concurrency`` (100) ways at once from as many threads; the handler connects to the host's
   port 8000, reads the source address the host saw, sleeps ``--sleep`` (1 s) with the connection
   open and returns that address and an id of its environment. Printed: successes, distinct
   environments, the wall time of the burst, the most connections the host had open at once and the
   source addresses it saw (target: all succeed, one address, the Hyperplane interface's).
   Baseline: the same burst of a function without ``VpcConfig`` that only sleeps, run first.
3. **Rule change to enforcement**: a ``lamina vpc run`` probe in sg-fn connects to the host's port
   7000, which no rule allows; ``AuthorizeSecurityGroupIngress`` (7000 from sg-fn), then probes
   (2 ms connect timeout: a dropped SYN must not hide the change) until one connects: the time from
   the call returning to the start of that probe. Then ``RevokeSecurityGroupIngress`` and probes until
   dropped (untimed). ``--rules`` (20) times. Baseline: the authorize call's own latency.
   Target: p50 < 100 ms.

Every function, interface and process is deleted or stopped (by pid); the scratch directory goes.
About 1 minute.

Run: ``.venv/bin/python bench/vpc_dataplane.py [--colds N] [--concurrency N] [--rules N] [--profile]``.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import json
import os
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (and with it the test kit, tests/functional)
from testzips import make_zip  # noqa: E402
from vpc_run import VpcRun  # noqa: E402

TARGET_COLD_EXTRA_MS = 10.0
TARGET_RULE_MS = 100.0
RUNTIME = "python3.12"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"  # made by LaminaServer
VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
HOST_IP = "10.91.2.10"
WHO_PORT = 8000
RULE_PORT = 7000
ALLOWED_PROBE_TIMEOUT_S = 0.002
DROPPED_PROBE_TIMEOUT_S = 0.02
GIVE_UP_S = 3.0  # a rule not in force by then is an error
_INIT = re.compile(rb"Init Duration: ([0-9.]+) ms")

TRIVIAL = "def handler(event, context):\n    return {}\n"
SLEEPER = (
    "import time, uuid\n"
    "ENV = uuid.uuid4().hex\n"
    "def handler(event, context):\n"
    "    time.sleep(event['sleep'])\n"
    "    return {'env': ENV}\n"
)
CONNECTER = (
    "import socket, time, uuid\n"
    "ENV = uuid.uuid4().hex\n"
    "def handler(event, context):\n"
    "    with socket.create_connection((event['host'], event['port']), timeout=5) as s:\n"
    "        addr = s.recv(64).decode()\n"
    "        time.sleep(event['sleep'])\n"
    "    return {'env': ENV, 'addr': addr}\n"
)

# The VPC host: port 8000 answers the peer's address and holds the connection until the peer
# closes; port 7000 accepts and closes. "stats" on stdin prints what 8000 saw, as JSON.
HOST = r"""
import json, os, socket, sys, threading
lock = threading.Lock()
seen, now, most = {}, 0, 0
def who(c, peer):
    global now, most
    with lock:
        seen[peer[0]] = seen.get(peer[0], 0) + 1
        now += 1
        most = max(most, now)
    try:
        c.sendall(peer[0].encode())
        while c.recv(64):
            pass
    except OSError:
        pass
    finally:
        c.close()
        with lock:
            now -= 1
def serve(port, fn):
    s = socket.create_server(("0.0.0.0", port), backlog=512)
    while True:
        c, peer = s.accept()
        threading.Thread(target=fn, args=(c, peer), daemon=True).start()
threading.Thread(target=serve, args=(int(sys.argv[1]), who), daemon=True).start()
threading.Thread(target=serve, args=(int(sys.argv[2]), lambda c, p: c.close()), daemon=True).start()
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    with lock:
        print(json.dumps({"seen": seen, "most": most}), flush=True)
"""

# Reads "host port timeout" lines; answers ok (connected) / dropped (timed out) / error N.
PROBE = r"""
import os, socket, sys
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    host, port, timeout = line.split()
    s = socket.socket()
    s.settimeout(float(timeout))
    try:
        s.connect((host, int(port)))
        print("ok", flush=True)
    except TimeoutError:
        print("dropped", flush=True)
    except OSError as exc:
        print("error", exc.errno, flush=True)
    finally:
        s.close()
"""


def make_client(url: str, service: str, *, pool: int = 1) -> Any:
    """The test kit's client, with room for a burst's connections and for slow cold starts."""
    return C.client(url, service, max_pool_connections=pool, read_timeout=120, connect_timeout=10)


@dataclass
class Net:
    vpc: str
    a: str
    b: str
    fn: str
    host: str


def build_vpc(ec2: Any) -> Net:
    vpc = ec2.create_vpc(CidrBlock="10.91.0.0/16")["Vpc"]["VpcId"]

    def group(name: str) -> str:
        return str(ec2.create_security_group(VpcId=vpc, GroupName=name, Description=name)["GroupId"])

    net = Net(
        vpc=vpc,
        a=ec2.create_subnet(VpcId=vpc, CidrBlock="10.91.1.0/24")["Subnet"]["SubnetId"],
        b=ec2.create_subnet(VpcId=vpc, CidrBlock="10.91.2.0/24")["Subnet"]["SubnetId"],
        fn=group("bench-fn"),
        host=group("bench-host"),
    )
    ec2.authorize_security_group_ingress(GroupId=net.host, IpPermissions=[tcp_from(net.fn, WHO_PORT)])
    return net


def tcp_from(group: str, port: int) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": group}]}


# -- functions ------------------------------------------------------------------------------------------


class Functions:
    """Creates functions and remembers them, so that every one is deleted at the end."""

    def __init__(self, lam: Any) -> None:
        self.lam = lam
        self.names: list[str] = []

    def create(self, name: str, source: str, vpc: dict[str, list[str]] | None) -> None:
        args: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": RUNTIME,
            "Role": ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": make_zip({"app.py": source})},
            "MemorySize": 128,
            "Timeout": 30,
        }
        if vpc is not None:
            args["VpcConfig"] = vpc
        self.lam.create_function(**args)
        self.names.append(name)

    def wait_active(self, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            cfg = self.lam.get_function_configuration(FunctionName=name)
            if cfg.get("State") == "Active":
                return
            if cfg.get("State") == "Failed" or time.monotonic() > deadline:
                raise RuntimeError(f"{name}: State {cfg.get('State')}: {cfg.get('StateReason')}")
            time.sleep(0.01)

    def delete(self, name: str) -> None:
        self.lam.delete_function(FunctionName=name)
        self.names.remove(name)

    def delete_all(self) -> None:
        for name in list(self.names):
            with contextlib.suppress(Exception):
                self.delete(name)


def invoke_json(lam: Any, name: str, event: dict[str, Any], *, tail: bool = False) -> tuple[Any, bytes]:
    out = lam.invoke(
        FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail" if tail else "None"
    )
    body = out["Payload"].read()
    log = base64.b64decode(out.get("LogResult", "")) if tail else b""
    if out.get("StatusCode") != 200 or "FunctionError" in out:
        raise RuntimeError(f"invoke of {name} failed: {out.get('FunctionError')} {body!r}\n{log!r}")
    return json.loads(body), log


# -- 1. cold starts ---------------------------------------------------------------------------------------


@dataclass
class Cold:
    wall: list[float] = field(default_factory=list)
    init: list[float] = field(default_factory=list)


def cold_phase(args: argparse.Namespace, lam: Any, fns: Functions, net: Net) -> dict[str, Cold]:
    vpc = {"SubnetIds": [net.a], "SecurityGroupIds": [net.fn]}
    fns.create("bench-dp-first", TRIVIAL, vpc)  # makes the combination's Hyperplane interface
    fns.wait_active("bench-dp-first")
    invoke_json(lam, "bench-dp-first", {})  # untimed: the first VPC environment ever
    fns.create("bench-dp-plain-warm", TRIVIAL, None)
    fns.wait_active("bench-dp-plain-warm")
    invoke_json(lam, "bench-dp-plain-warm", {})
    kinds = {"vpc": vpc, "plain": None}
    names = {k: [f"bench-dp-{k}-{i}" for i in range(args.colds)] for k in kinds}
    for kind, config in kinds.items():
        for name in names[kind]:
            fns.create(name, TRIVIAL, config)
    for kind in kinds:
        for name in names[kind]:
            fns.wait_active(name)
    res = {k: Cold() for k in kinds}
    for i in range(args.colds):
        order = ["vpc", "plain"] if i % 2 == 0 else ["plain", "vpc"]
        for kind in order:
            time.sleep(0.05)
            t0 = time.perf_counter()
            _, log = invoke_json(lam, names[kind][i], {}, tail=True)
            wall = time.perf_counter() - t0
            m = _INIT.search(log)
            if m is None:
                raise RuntimeError(f"{names[kind][i]}: the first invoke was not cold:\n{log!r}")
            res[kind].wall.append(wall)
            res[kind].init.append(float(m.group(1)) / 1000.0)
    for kind in kinds:
        for name in names[kind]:
            fns.delete(name)
    fns.delete("bench-dp-plain-warm")
    med = statistics.median
    print(
        "cold: "
        + ", ".join(
            f"{k} p50 {C.ms(med(c.wall)):.1f} ms (init {C.ms(med(c.init)):.1f})" for k, c in res.items()
        ),
        flush=True,
    )
    return res


# -- 2. a burst behind one interface ---------------------------------------------------------------------


@dataclass
class Burst:
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    envs: int = 0
    addrs: dict[str, int] = field(default_factory=dict)  # as the handlers were told by the host
    host_seen: dict[str, int] = field(default_factory=dict)  # as the host recorded them
    host_most: int = 0
    hyperplane_ip: str = ""


def burst(url: str, name: str, event: dict[str, Any], n: int) -> Burst:
    lam = make_client(url, "lambda", pool=n)
    res = Burst()
    start = threading.Barrier(n + 1)

    def one() -> Any:
        start.wait()
        return invoke_json(lam, name, event)[0]

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(one) for _ in range(n)]
        start.wait()
        t0 = time.perf_counter()
        envs: set[str] = set()
        for f in concurrent.futures.as_completed(futures):
            try:
                out = f.result()
            except Exception as exc:  # noqa: BLE001 - counted and shown
                res.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            res.ok += 1
            envs.add(out["env"])
            if "addr" in out:
                res.addrs[out["addr"]] = res.addrs.get(out["addr"], 0) + 1
        res.wall = time.perf_counter() - t0
    res.envs = len(envs)
    return res


def burst_phase(
    args: argparse.Namespace, url: str, lam: Any, ec2: Any, fns: Functions, net: Net, host: VpcRun
) -> dict[str, Burst]:
    res: dict[str, Burst] = {}
    fns.create("bench-dp-sleeper", SLEEPER, None)
    fns.wait_active("bench-dp-sleeper")
    res["plain"] = burst(url, "bench-dp-sleeper", {"sleep": args.sleep}, args.concurrency)
    fns.delete("bench-dp-sleeper")
    print(f"burst, no VPC: {res['plain'].ok}/{args.concurrency} in {res['plain'].wall:.2f} s", flush=True)
    fns.delete("bench-dp-first")  # its environment would count towards --max-environments
    fns.create("bench-dp-connecter", CONNECTER, {"SubnetIds": [net.a], "SecurityGroupIds": [net.fn]})
    fns.wait_active("bench-dp-connecter")
    before = json.loads(host.ask("stats\n"))
    event = {"host": HOST_IP, "port": WHO_PORT, "sleep": args.sleep}
    b = res["vpc"] = burst(url, "bench-dp-connecter", event, args.concurrency)
    after = json.loads(host.ask("stats\n"))
    b.host_seen = {
        a: n - before["seen"].get(a, 0) for a, n in after["seen"].items() if n > before["seen"].get(a, 0)
    }
    b.host_most = after["most"]
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [net.vpc]}])[
        "NetworkInterfaces"
    ]
    hyperplane = [
        i for i in enis
        if i["InterfaceType"] == "lambda" and i["SubnetId"] == net.a and [g["GroupId"] for g in i["Groups"]] == [net.fn]
    ]  # fmt: skip
    if len(hyperplane) != 1:
        raise RuntimeError(f"{len(hyperplane)} Hyperplane interfaces for (subnet a, sg-fn), expected 1")
    b.hyperplane_ip = hyperplane[0]["PrivateIpAddress"]
    fns.delete("bench-dp-connecter")
    print(
        f"burst, VPC: {b.ok}/{args.concurrency} in {b.wall:.2f} s, {b.envs} environments, host saw "
        f"{b.host_seen} (at most {b.host_most} open at once)",
        flush=True,
    )
    return res


# -- 3. rule change to enforcement ------------------------------------------------------------------------


@dataclass
class Rules:
    in_force: list[float] = field(default_factory=list)  # call returned -> first probe that connected
    api: list[float] = field(default_factory=list)  # the AuthorizeSecurityGroupIngress call itself
    probes: list[int] = field(default_factory=list)  # probes until allowed (incl. the one that was)
    revoked: list[float] = field(default_factory=list)  # untimed target; shown


def probe_until(probe: VpcRun, wanted: str, timeout: float) -> tuple[float, int, float]:
    """Probe the host's rule port until the answer is ``wanted``: (start of that probe, probes made, now)."""
    t_start = time.perf_counter()
    n = 0
    while True:
        started = time.perf_counter()
        answer = probe.probe(HOST_IP, RULE_PORT, timeout)
        n += 1
        if answer == wanted:
            return started, n, time.perf_counter()
        if answer not in ("ok", "dropped"):
            raise RuntimeError(f"probe answered {answer!r}")
        if started - t_start > GIVE_UP_S:
            raise RuntimeError(f"still {answer!r} {GIVE_UP_S} s after the rule change")


def rule_phase(args: argparse.Namespace, ec2: Any, net: Net, probe: VpcRun) -> Rules:
    res = Rules()
    perm = [tcp_from(net.fn, RULE_PORT)]
    if probe.probe(HOST_IP, RULE_PORT, DROPPED_PROBE_TIMEOUT_S) != "dropped":
        raise RuntimeError("the rule port is reachable before any rule allows it")
    for _ in range(args.rules):
        t0 = time.perf_counter()
        ec2.authorize_security_group_ingress(GroupId=net.host, IpPermissions=perm)
        returned = time.perf_counter()
        started, n, _ = probe_until(probe, "ok", ALLOWED_PROBE_TIMEOUT_S)
        res.api.append(returned - t0)
        res.in_force.append(started - returned)
        res.probes.append(n)
        ec2.revoke_security_group_ingress(GroupId=net.host, IpPermissions=perm)
        returned = time.perf_counter()
        started, _, _ = probe_until(probe, "dropped", DROPPED_PROBE_TIMEOUT_S)
        res.revoked.append(started - returned)
    print(f"rules: authorize -> in force p50 {C.ms(statistics.median(res.in_force)):.1f} ms", flush=True)
    return res


# -- main -----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--colds", type=int, default=15, help="cold starts of each kind (15)")
    parser.add_argument("--concurrency", type=int, default=100, help="concurrent invokes of the burst (100)")
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds each burst handler sleeps (1)")
    parser.add_argument("--rules", type=int, default=20, help="authorize/revoke rounds (20)")
    parser.add_argument(
        "--profile", action="store_true", help="sample the lamina server with py-spy throughout"
    )
    args = parser.parse_args(argv)
    if not (
        1 <= args.colds <= 50
        and 1 <= args.concurrency <= 105
        and 0 <= args.sleep <= 10
        and 1 <= args.rules <= 200
    ):
        parser.error("--colds 1..50, --concurrency 1..105, --sleep 0..10, --rules 1..200")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        C.bench_venv_bin("py-spy")
    if os.geteuid() != 0:
        print("vpc_dataplane: SKIPPED, it runs real sandboxes and VPC namespaces: run it as root")
        return 0
    if not (RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").is_file():
        print(f"{RUNTIME} is not installed in {RUNTIMES_DIR} (make setup)", file=sys.stderr)
        return 2
    print(
        f"== vpc_dataplane: {args.colds} cold starts each (VPC behind an existing interface, no VPC); "
        f"{args.concurrency} concurrent invokes behind one interface; {args.rules} rule changes ==",
        flush=True,
    )
    with C.workdir("vpc-dataplane") as scratch:
        server = C.LaminaServer(
            scratch / "data",
            extra_args=(
                "--runtimes-dir", str(RUNTIMES_DIR),
                "--max-environments", "110",
                "--idle-timeout", "600",
                "--eni-release-delay", "0",
            ),
        )  # fmt: skip
        runs: list[VpcRun] = []
        lam = make_client(server.url, "lambda")
        fns = Functions(lam)
        profiler: C.Profiler | None = None
        try:
            make_client(server.url, "iam").attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
            ec2 = make_client(server.url, "ec2")
            net = build_vpc(ec2)
            host = VpcRun(
                server,
                net.b,
                [net.host],
                sys.executable,
                "-u",
                "-c",
                HOST,
                str(WHO_PORT),
                str(RULE_PORT),
                ip=HOST_IP,
            )
            runs.append(host)
            probe = VpcRun(server, net.a, [net.fn], sys.executable, "-u", "-c", PROBE)
            runs.append(probe)
            for run in runs:
                run.start()
            if args.profile:
                profiler = C.Profiler(server.proc.pid, C.OUT / "vpc-dataplane-server.pyspy.txt").__enter__()
            t0 = time.perf_counter()
            cold = cold_phase(args, lam, fns, net)
            t1 = time.perf_counter()
            bursts = burst_phase(args, server.url, lam, ec2, fns, net, host)
            t2 = time.perf_counter()
            rules = rule_phase(args, ec2, net, probe)
            t3 = time.perf_counter()
            print(f"(phases: cold {t1 - t0:.0f} s, burst {t2 - t1:.0f} s, rules {t3 - t2:.0f} s)")
        finally:
            if profiler is not None:
                profiler.__exit__(None, None, None)
            fns.delete_all()
            for run in runs:
                run.close()
            rc = server.stop()
            if rc not in (0, -15):
                print(f"warning: lamina server exited with {rc}:\n{server.log()}", file=sys.stderr)
    report(args, cold, bursts, rules)
    if profiler is not None:
        print(f"\nlamina server profile (py-spy, {profiler.out}):")
        print(profiler.summary())
        print("(py-spy was sampling the lamina server: the figures above are perturbed)")
    return 0


def report(args: argparse.Namespace, cold: dict[str, Cold], bursts: dict[str, Burst], rules: Rules) -> None:
    med = statistics.median
    print()
    header = f"{'':52}| {'p50':>8} {'p90':>8} {'min':>8} {'max':>8} | {'Init Duration p50':>17}"
    print(header)
    print("-" * len(header))
    for label, c in (
        ("cold start, VPC, interface already there", cold["vpc"]),
        ("baseline: cold start, no VpcConfig", cold["plain"]),
    ):
        print(
            f"{label:52}| {C.ms(med(c.wall)):>6.1f}ms {C.ms(C.percentile(c.wall, 90)):>6.1f}ms "
            f"{C.ms(min(c.wall)):>6.1f}ms {C.ms(max(c.wall)):>6.1f}ms | {C.ms(med(c.init)):>15.1f}ms"
        )
    print(
        f"({args.colds} of each, alternating; {RUNTIME}, handler returns {{}}; wall = client-observed first invoke)"
    )
    print()
    header = f"{'':52}| {'ok':>7} {'envs':>5} {'wall':>8} | source addresses at the host"
    print(header)
    print("-" * len(header))
    v, p = bursts["vpc"], bursts["plain"]
    print(
        f"{f'{args.concurrency}-way burst, VPC, connect + sleep {args.sleep:g} s':52}| {v.ok:>3}/{args.concurrency:<3} "
        f"{v.envs:>5} {v.wall:>7.2f}s | {v.host_seen} (most open at once: {v.host_most})"
    )
    print(
        f"{f'baseline: {args.concurrency}-way burst, no VPC, sleep {args.sleep:g} s':52}| "
        f"{p.ok:>3}/{args.concurrency:<3} {p.envs:>5} {p.wall:>7.2f}s |"
    )
    for name, b in (("VPC", v), ("no VPC", p)):
        if b.errors:
            print(f"  {name} errors ({len(b.errors)}): {b.errors[0]}")
    print(f"(all cold; the Hyperplane interface of (subnet a, sg-fn) is {v.hyperplane_ip})")
    print()
    header = f"{'':52}| {'p50':>8} {'p90':>8} {'min':>8} {'max':>8}"
    print(header)
    print("-" * len(header))
    for label, s in (
        ("authorize -> in force (first probe that connects)", rules.in_force),
        ("baseline: AuthorizeSecurityGroupIngress call", rules.api),
        ("revoke -> in force (first probe dropped)", rules.revoked),
    ):
        print(
            f"{label:52}| {C.ms(med(s)):>6.1f}ms {C.ms(C.percentile(s, 90)):>6.1f}ms "
            f"{C.ms(min(s)):>6.1f}ms {C.ms(max(s)):>6.1f}ms"
        )
    print(
        f"({args.rules} rounds; probes from lamina vpc run in sg-fn, {C.ms(ALLOWED_PROBE_TIMEOUT_S):.0f} ms connect "
        f"timeout while waiting to be allowed; probes until allowed p50 {med(rules.probes):.0f})"
    )
    print()
    vpc_p50, plain_p50 = C.ms(med(cold["vpc"].wall)), C.ms(med(cold["plain"].wall))
    print(
        f"cold start behind an existing interface: p50 {vpc_p50:.1f} ms vs no VPC {plain_p50:.1f} ms "
        f"({vpc_p50 - plain_p50:+.1f} ms, {vpc_p50 / plain_p50:.2f}x; Init Duration "
        f"{C.ms(med(cold['vpc'].init)) - C.ms(med(cold['plain'].init)):+.1f} ms) "
        f"(target <= +{TARGET_COLD_EXTRA_MS:.0f} ms: {C.verdict(vpc_p50 <= plain_p50 + TARGET_COLD_EXTRA_MS)})"
    )
    one_addr = list(v.host_seen) == [v.hyperplane_ip] and list(v.addrs) == [v.hyperplane_ip]
    print(
        f"{args.concurrency} concurrent environments behind one interface: {v.ok}/{args.concurrency} succeeded in "
        f"{v.wall:.2f} s = {v.wall / p.wall:.2f}x the burst without VPC ({p.wall:.2f} s); "
        f"{len(v.host_seen)} source address(es) at the host "
        f"(target: all succeed from one address, the interface's: {C.verdict(v.ok == args.concurrency and one_addr)})"
    )
    p50, api50 = C.ms(med(rules.in_force)), C.ms(med(rules.api))
    print(
        f"rule change -> in force: p50 {p50:.1f} ms after the call returned; the call itself p50 {api50:.1f} ms "
        f"(target < {TARGET_RULE_MS:.0f} ms: {C.verdict(p50 < TARGET_RULE_MS)})"
    )


if __name__ == "__main__":
    sys.exit(main())
