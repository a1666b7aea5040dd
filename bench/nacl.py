"""Network ACLs: what a 100-entry ACL adds to a VPC function's warm invoke that talks to a VPC host.

Needs root (real sandboxes, namespaces, nftables) and the python3.12 runtime that ``make setup``
installs into ``.venv/lamina-runtimes``. One ``lamina server`` (``--network-acl-rule-limit 100``)
with one VPC, 10.92.0.0/16, and two identical paths through its router:

- **baseline**: a function in subnet 10.92.1.0/24, a host (``lamina vpc run``, 10.92.2.10) in
  10.92.2.0/24, both subnets on the VPC's default ACL (one rule each way);
- **acl**: the same in 10.92.3.0/24 and 10.92.4.0/24 (host 10.92.4.10), both subnets associated with
  one custom ACL of 100 entries in each direction: 99 ``deny`` rules that never match (other
  sources/destinations and ports), then ``allow`` all. Every packet of the connection -- both ways,
  replies included -- walks 99 rules leaving its subnet and 99 entering the other (the worst case).

Each function (python3.12) opens a TCP connection to its host, sends a line, reads the reply and
closes; the host answers every line. After an untimed cold invoke, the ACL is shown to be in force
on the measured path (its last inbound rule turned into a deny breaks the function's connection,
then restored); then ``--invokes`` (400) warm invokes of each, alternating, one boto3 client,
client-side wall time. Printed: p50/p90 of both and the ratio of the p50s. Target: acl p50 <= 1.05 x
baseline p50. For reference, the data plane's own share: a client under ``lamina vpc run`` in each
function subnet makes ``--exchanges`` (4000) connect+request+reply exchanges with its host, in
alternating blocks; p50/p90 in microseconds and their ratio. And how soon a change is in force: the
big ACL's last inbound rule replaced by a deny and back, ``--changes`` (20) times each way, a
``lamina vpc run`` probe in the function subnet connecting to the host (2 ms connect timeout while
waiting for an allow, 20 ms for a deny) until it sees the change: the time from the call returning
to the start of that probe, beside the call's own latency.

Every function, interface and process is deleted or stopped (by pid); the scratch directory goes.
About 30 s.

Run: ``.venv/bin/python bench/nacl.py [--invokes N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (and with it the test kit, tests/functional)
from testzips import make_zip  # noqa: E402
from vpc_run import VpcRun  # noqa: E402

TARGET_RATIO = 1.05
ENTRIES = 100
RUNTIME = "python3.12"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"  # made by LaminaServer
VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
PORT = 9000

HANDLER = (
    "import socket\n"
    "def handler(event, context):\n"
    "    with socket.create_connection((event['host'], event['port']), timeout=event['timeout']) as s:\n"
    "        s.sendall(b'ping\\n')\n"
    "        return {'reply': s.recv(64).decode()}\n"
)

# Answers every line it reads with "pong"; one thread per connection.
HOST = r"""
import os, socket, sys, threading
def talk(c):
    with c:
        f = c.makefile("rb")
        for _ in f:
            c.sendall(b"pong\n")
s = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=512)
print("ready", os.getpid(), flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=talk, args=(c,), daemon=True).start()
"""


# A client under ``lamina vpc run``: for each "host port n" line, n connect+request+reply exchanges,
# answered with their times (microseconds) as JSON.
CLIENT = r"""
import json, os, socket, sys, time
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    host, port, n = line.split()
    out = []
    for _ in range(int(n)):
        t0 = time.perf_counter()
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"ping\n")
            s.recv(64)
        out.append((time.perf_counter() - t0) * 1e6)
    print(json.dumps(out), flush=True)
"""


# Reads "host port timeout" lines; answers ok (connected and answered) / dropped / error N.
PROBE = r"""
import os, socket, sys
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    host, port, timeout = line.split()
    s = socket.socket()
    s.settimeout(float(timeout))
    try:
        s.connect((host, int(port)))
        s.sendall(b"ping\n")
        print("ok" if s.recv(64) else "no reply", flush=True)
    except TimeoutError:
        print("dropped", flush=True)
    except OSError as exc:
        print("error", exc.errno, flush=True)
    finally:
        s.close()
"""
ALLOWED_PROBE_TIMEOUT_S = 0.002  # waiting for an allow: a probe just before it must not hide it long
DROPPED_PROBE_TIMEOUT_S = 0.02
GIVE_UP_S = 3.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invokes", type=int, default=400, help="warm invokes of each function")
    parser.add_argument("--exchanges", type=int, default=4000, help="exchanges of each vpc run client")
    parser.add_argument("--changes", type=int, default=20, help="ACL entry changes timed to enforcement")
    return parser.parse_args(argv)


def big_acl(ec2: Any, vpc: str) -> str:
    """An ACL of ``ENTRIES`` entries each way: 99 denies that never match, then allow all."""
    acl = str(ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"])
    for egress in (False, True):
        for i in range(1, ENTRIES):
            ec2.create_network_acl_entry(
                NetworkAclId=acl,
                RuleNumber=i,
                Egress=egress,
                RuleAction="deny",
                Protocol="6",
                PortRange={"From": 20000 + i, "To": 20000 + i},
                CidrBlock=f"198.51.100.{i}/32",
            )
        ec2.create_network_acl_entry(
            NetworkAclId=acl,
            RuleNumber=1000,
            Egress=egress,
            RuleAction="allow",
            Protocol="-1",
            CidrBlock="0.0.0.0/0",
        )
    return acl


def associate(ec2: Any, vpc: str, subnet: str, acl: str) -> None:
    current = ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.subnet-id", "Values": [subnet]}]
    )["NetworkAcls"][0]
    association = next(a for a in current["Associations"] if a["SubnetId"] == subnet)
    ec2.replace_network_acl_association(
        AssociationId=association["NetworkAclAssociationId"], NetworkAclId=acl
    )


def wait_active(lam: Any, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        cfg = lam.get_function_configuration(FunctionName=name)
        if cfg.get("State") == "Active":
            return
        if cfg.get("State") == "Failed" or time.monotonic() > deadline:
            raise RuntimeError(f"{name}: State {cfg.get('State')}: {cfg.get('StateReason')}")
        time.sleep(0.01)


def invoke(lam: Any, name: str, event: dict[str, Any]) -> float:
    t0 = time.perf_counter()
    out = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    body = out["Payload"].read()
    took = time.perf_counter() - t0
    if "FunctionError" in out or json.loads(body).get("reply") != "pong\n":
        raise RuntimeError(f"invoke of {name} failed: {out.get('FunctionError')} {body!r}")
    return took


def check_enforced(ec2: Any, lam: Any, acl: str, name: str, event: dict[str, Any]) -> None:
    """The big ACL is in force on the measured path: its last rule turned into a deny breaks it."""
    allow = {
        "NetworkAclId": acl,
        "RuleNumber": 1000,
        "Egress": False,
        "Protocol": "-1",
        "CidrBlock": "0.0.0.0/0",
    }
    ec2.replace_network_acl_entry(**allow, RuleAction="deny")
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                invoke(lam, name, {**event, "timeout": 0.2})
            except RuntimeError:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the 100-entry ACL is not in force on the measured path")
    finally:
        ec2.replace_network_acl_entry(**allow, RuleAction="allow")
    deadline = time.monotonic() + 5
    while True:
        try:
            invoke(lam, name, event)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise


def in_force_after(change: Any, probe: VpcRun, host: str, wanted: str) -> tuple[float, float]:
    """(the API call's own latency, the time from the call returning to the start of the first
    probe that sees ``wanted``)."""
    t0 = time.perf_counter()
    change()
    returned = time.perf_counter()
    timeout = ALLOWED_PROBE_TIMEOUT_S if wanted == "ok" else DROPPED_PROBE_TIMEOUT_S
    while True:
        started = time.perf_counter()
        if probe.probe(host, PORT, timeout) == wanted:
            return returned - t0, started - returned
        if started - returned > GIVE_UP_S:
            raise RuntimeError(f"not {wanted} {GIVE_UP_S} s after the ACL change")


def change_phase(ec2: Any, acl: str, probe: VpcRun, host: str, n: int) -> tuple[list[float], list[float]]:
    """Replace the big ACL's last inbound rule with a deny and back, ``n`` times each way."""
    entry = {
        "NetworkAclId": acl,
        "RuleNumber": 1000,
        "Egress": False,
        "Protocol": "-1",
        "CidrBlock": "0.0.0.0/0",
    }
    calls, took = [], []
    for _ in range(n):
        for action, wanted in (("deny", "dropped"), ("allow", "ok")):
            call, seen = in_force_after(
                lambda action=action: ec2.replace_network_acl_entry(**entry, RuleAction=action),
                probe,
                host,
                wanted,
            )
            calls.append(call)
            took.append(seen)
    return calls, took


@dataclass
class Lane:
    fn_net: int
    host_net: int
    host_ip: str = ""
    client: VpcRun | None = None
    invokes: list[float] = field(default_factory=list)
    exchanges: list[float] = field(default_factory=list)  # microseconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("nacl: SKIPPED, it runs real sandboxes and VPC namespaces: run it as root")
        return 0
    if not (RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").is_file():
        print(f"{RUNTIME} is not installed in {RUNTIMES_DIR} (make setup)", file=sys.stderr)
        return 2
    print(
        f"== nacl: {args.invokes} warm invokes and {args.exchanges} vpc run exchanges each, "
        f"to a VPC host; {ENTRIES}-entry ACL vs default =="
    )
    paths = {"baseline": Lane(1, 2), "acl": Lane(3, 4)}
    with C.workdir("nacl") as scratch:
        server = C.LaminaServer(
            scratch / "data",
            extra_args=(
                "--runtimes-dir", str(RUNTIMES_DIR),
                "--idle-timeout", "600",
                "--eni-release-delay", "0",
                "--network-acl-rule-limit", str(ENTRIES),
            ),
        )  # fmt: skip
        runs: list[VpcRun] = []
        lam = C.client(server.url, "lambda", read_timeout=120)
        names: list[str] = []
        try:
            C.client(server.url, "iam").attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
            ec2 = C.client(server.url, "ec2")
            vpc = ec2.create_vpc(CidrBlock="10.92.0.0/16")["Vpc"]["VpcId"]
            group = ec2.create_security_group(VpcId=vpc, GroupName="bench", Description="bench")["GroupId"]
            ec2.authorize_security_group_ingress(
                GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.92.0.0/16"}]}]
            )
            subnets = {
                n: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.92.{n}.0/24")["Subnet"]["SubnetId"]
                for n in (1, 2, 3, 4)
            }
            acl = big_acl(ec2, vpc)
            for n in (3, 4):
                associate(ec2, vpc, subnets[n], acl)
            events = {}
            for kind, path in paths.items():
                path.host_ip = f"10.92.{path.host_net}.10"
                host = VpcRun(
                    server,
                    subnets[path.host_net],
                    [group],
                    sys.executable,
                    "-u",
                    "-c",
                    HOST,
                    str(PORT),
                    ip=path.host_ip,
                )
                runs.append(host)
                host.start()
                path.client = VpcRun(
                    server, subnets[path.fn_net], [group], sys.executable, "-u", "-c", CLIENT
                )
                runs.append(path.client)
                path.client.start()
                name = f"bench-nacl-{kind}"
                lam.create_function(
                    FunctionName=name,
                    Runtime=RUNTIME,
                    Role=ROLE,
                    Handler="app.handler",
                    Code={"ZipFile": make_zip({"app.py": HANDLER})},
                    MemorySize=128,
                    Timeout=30,
                    VpcConfig={"SubnetIds": [subnets[path.fn_net]], "SecurityGroupIds": [group]},
                )
                names.append(name)
                events[kind] = {"host": path.host_ip, "port": PORT, "timeout": 5}
            for kind in paths:
                wait_active(lam, f"bench-nacl-{kind}")
                for _ in range(5):  # untimed: the cold start, then a few warm ones
                    invoke(lam, f"bench-nacl-{kind}", events[kind])
            check_enforced(ec2, lam, acl, "bench-nacl-acl", events["acl"])
            for i in range(args.invokes):
                order = list(paths) if i % 2 == 0 else list(reversed(paths))
                for kind in order:
                    paths[kind].invokes.append(invoke(lam, f"bench-nacl-{kind}", events[kind]))
            probe = VpcRun(server, subnets[3], [group], sys.executable, "-u", "-c", PROBE)
            runs.append(probe)
            probe.start()
            calls, took = change_phase(ec2, acl, probe, paths["acl"].host_ip, args.changes)
            block = 50
            for i in range(max(1, args.exchanges // block)):
                order = list(paths) if i % 2 == 0 else list(reversed(paths))
                for kind in order:
                    path = paths[kind]
                    assert path.client is not None
                    path.exchanges += json.loads(path.client.ask(f"{path.host_ip} {PORT} {block}\n", 60))
        finally:
            for name in names:
                with contextlib.suppress(Exception):
                    lam.delete_function(FunctionName=name)
            for run in runs:
                run.close()
            server.stop()
    med = statistics.median
    base, big = paths["baseline"], paths["acl"]
    for kind, path in paths.items():
        print(
            f"{kind:>8}: warm invoke (connect/request/reply inside) p50 {C.ms(med(path.invokes)):.3f} ms, "
            f"p90 {C.ms(C.percentile(path.invokes, 90)):.3f} ms ({len(path.invokes)}); "
            f"vpc run connect/request/reply p50 {med(path.exchanges):.1f} us, "
            f"p90 {C.percentile(path.exchanges, 90):.1f} us ({len(path.exchanges)})"
        )
    ratio = med(big.invokes) / med(base.invokes)
    print(
        f"warm invoke, {ENTRIES}-entry ACL on both subnets: p50 {C.ms(med(big.invokes)):.3f} ms vs default ACL "
        f"{C.ms(med(base.invokes)):.3f} ms: ratio {ratio:.3f} (target <= {TARGET_RATIO}) {C.verdict(ratio <= TARGET_RATIO)}"
    )
    print(
        f"ACL entry replaced -> in force: p50 {C.ms(med(took)):.1f} ms, max {C.ms(max(took)):.1f} ms "
        f"({len(took)} changes); the ReplaceNetworkAclEntry call itself: p50 {C.ms(med(calls)):.1f} ms"
    )
    raw = med(big.exchanges) / med(base.exchanges)
    print(
        f"connect/request/reply alone (vpc run client to host through the router): p50 {med(big.exchanges):.1f} us "
        f"vs {med(base.exchanges):.1f} us: ratio {raw:.3f} (the data plane's own cost, for reference)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
