"""DNS from inside a VPC function: a private name's lookup, beside same-run baselines.

A ``lamina server`` (root: real sandboxes and the VPC data plane), a VPC 10.93.0.0/16 with DNS
hostnames on, one subnet 10.93.1.0/24 with a UDP echo host at 10.93.1.20 under ``lamina vpc run``,
and a Python function in that subnet. One invoke runs ``--lookups`` (2000) rounds, interleaved,
each timed inside the function with ``time.perf_counter``:

- **DNS query, private name**: a prepared query for ``ip-10-93-1-20.ec2.internal`` (A) sent to
  the VPC's DNS server (10.93.0.2, UDP), its answer received: the resolver's round trip.
- **getaddrinfo, private name**: ``socket.getaddrinfo`` of the same name, IPv4 (what code calls:
  glibc reads resolv.conf, asks, parses).
- baseline **UDP echo**: the same size of datagram to the echo host and back (the same router,
  a process of its own instead of lamina's DNS thread).
- baseline **getaddrinfo("localhost")**: answered from /etc/hosts, no packet.

Rounds are paced (2.5 ms apart: 800 DNS packets a second) under the 1024 packets per second an
interface may send to the DNS server, AWS's limit, which lamina's resolver enforces too.

Target: DNS lookup p50 < 1 ms for a private name. Every process is stopped by its pid, the
function deleted and the scratch directory removed. About 10 s.

Run: ``.venv/bin/python bench/dns.py [--lookups N] [--profile]`` (as root).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (and with it the test kit, tests/functional)
from testzips import make_zip  # noqa: E402
from vpc_run import VpcRun  # noqa: E402

TARGET_MS = 1.0
RUNTIME = "python3.12"
RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
HOST_IP, RESOLVER = "10.93.1.20", "10.93.0.2"
NAME = "ip-10-93-1-20.ec2.internal"

ECHO = r"""
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
print("ready", os.getpid(), flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""

FUNCTION = r"""
import socket, time
import dns.message

def handler(event, context):
    name, resolver, host, rounds = event["name"], event["resolver"], event["host"], event["rounds"]
    query = dns.message.make_query(name, "A").to_wire()
    dns_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns_sock.connect((resolver, 53))
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.connect((host, 5353))
    for s in (dns_sock, echo):
        s.settimeout(2)
    out = {"query": [], "getaddrinfo": [], "echo": [], "hosts": []}
    clock = time.perf_counter
    # Two DNS packets a round, paced to 800 a second: under the 1024 packets per second an
    # interface may send to the Amazon DNS server (AWS's limit, lamina's too), past which it drops.
    pace, start = event["pace_s"], clock()
    for i in range(rounds):
        while clock() < start + i * pace:
            time.sleep(max(0.0, start + i * pace - clock()))
        t = clock(); dns_sock.send(query); answer = dns_sock.recv(2048); out["query"].append(clock() - t)
        t = clock(); socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM); out["getaddrinfo"].append(clock() - t)
        t = clock(); echo.send(query); echo.recv(2048); out["echo"].append(clock() - t)
        t = clock(); socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM); out["hosts"].append(clock() - t)
    out["answer"] = dns.message.from_wire(answer).answer[0].to_text()
    return out
"""


def function_zip() -> bytes:
    # dnspython's package directory (``import dns`` here would find this very file).
    root = Path(str(importlib.metadata.distribution("dnspython").locate_file("dns")))
    files = {"app.py": FUNCTION}
    for path in root.rglob("*.py"):
        files[f"dns/{path.relative_to(root)}"] = path.read_text()
    return make_zip(files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("SKIPPED: bench/dns.py needs root (sandboxes and the VPC data plane)")
        return 0
    if not (RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").is_file():
        print(f"{RUNTIME} is not installed in {RUNTIMES_DIR} (make setup)", file=sys.stderr)
        return 2
    print(f"== dns: {args.lookups} rounds inside one VPC function ({RUNTIME}) ==", flush=True)
    with C.workdir("dns") as scratch:
        server = C.LaminaServer(
            scratch / "data",
            extra_args=(
                "--runtimes-dir",
                str(RUNTIMES_DIR),
                "--dns-upstream",
                "none",
                "--eni-release-delay",
                "0",
            ),
        )
        host: VpcRun | None = None
        lam = C.client(server, read_timeout=300)
        created = False
        try:
            C.client(server, "iam").attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
            ec2 = C.client(server, "ec2")
            vpc = ec2.create_vpc(CidrBlock="10.93.0.0/16")["Vpc"]["VpcId"]
            ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.93.1.0/24")["Subnet"]["SubnetId"]
            group = ec2.create_security_group(VpcId=vpc, GroupName="open", Description="open")["GroupId"]
            ec2.authorize_security_group_ingress(
                GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
            )
            host = VpcRun(server, subnet, [group], sys.executable, "-u", "-c", ECHO, ip=HOST_IP).start()
            lam.create_function(
                FunctionName="bench-dns",
                Runtime=RUNTIME,
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": function_zip()},
                Timeout=300,
                MemorySize=1024,
                VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]},
            )
            created = True
            lam.get_waiter("function_active_v2").wait(FunctionName="bench-dns", WaiterConfig={"Delay": 1})
            event = {"name": NAME, "resolver": RESOLVER, "host": HOST_IP, "rounds": 50, "pace_s": 0.0025}
            lam.invoke(FunctionName="bench-dns", Payload=json.dumps(event))  # warm up
            event["rounds"] = args.lookups
            profiler = C.Profiler(server.proc.pid, C.OUT / "dns-server.pyspy.txt") if args.profile else None
            if profiler is not None:
                profiler.__enter__()
            try:
                out = lam.invoke(FunctionName="bench-dns", Payload=json.dumps(event))
            finally:
                if profiler is not None:
                    profiler.__exit__(None, None, None)
                    print(profiler.summary())
            result: dict[str, Any] = json.loads(out["Payload"].read())
            if "FunctionError" in out:
                print(f"the function failed: {result}", file=sys.stderr)
                return 1
        finally:
            if created:
                lam.delete_function(FunctionName="bench-dns")
            if host is not None:
                host.close()
            server.stop()
    report(result)
    return 0


def report(result: dict[str, Any]) -> None:
    print(f"answer: {result['answer']}")
    header = f"{'':48}| {'p50':>9} {'p90':>9} {'p99':>9}"
    print(header)
    print("-" * len(header))
    rows = (
        ("DNS query, private name (UDP to 10.93.0.2)", "query"),
        ("getaddrinfo, private name", "getaddrinfo"),
        ("baseline: UDP echo to a VPC host", "echo"),
        ("baseline: getaddrinfo('localhost') (/etc/hosts)", "hosts"),
    )
    for label, key in rows:
        samples = result[key]
        print(
            f"{label:48}| {C.ms(C.percentile(samples, 50)):>7.3f}ms {C.ms(C.percentile(samples, 90)):>7.3f}ms "
            f"{C.ms(C.percentile(samples, 99)):>7.3f}ms"
        )
    query, lookup, echo = (C.percentile(result[k], 50) for k in ("query", "getaddrinfo", "echo"))
    print(
        f"\nDNS lookup p50 {C.ms(query):.3f} ms (getaddrinfo {C.ms(lookup):.3f} ms), "
        f"{query / echo:.2f}x the UDP echo: target < {TARGET_MS:.0f} ms "
        f"{C.verdict(max(query, lookup) < TARGET_MS / 1000)}"
    )


if __name__ == "__main__":
    sys.exit(main())
