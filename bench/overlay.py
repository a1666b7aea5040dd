"""VPCs across nodes: what a remote attachment costs, and traffic through the VXLAN tunnel beside a
local attachment's (docs/overlay.md).

Needs root (namespaces, veths, VXLAN, nftables); no server, no sandbox: the data plane alone. Two
"hosts" are network namespaces joined by a veth pair (the underlay, MTU 1500), each with its
``net.overlay.Overlay``; one VPC, 10.94.0.0/16, whose interfaces are homed on host A: fn
(10.94.1.10, the Hyperplane interface) and db (10.94.2.10, a TCP echo server on port 7000; sg-db
lets in 7000 from sg-fn). Figures:

1. **Attachment costs**: ``--attachments`` (30) times, an environment namespace on host B attached
   to fn through the tunnel and detached: ``host`` (home side), ``join`` (environment side),
   ``leave`` and ``release``. **Baseline**: ``net.attach.attach`` of an environment on host A
   (a local attachment, the single-node path) and its ``close``.
2. **Request/response**: ``--requests`` (3000) 100-byte echoes over one TCP connection from a
   remote environment (B, through the tunnel) and from a local one (A), alternating in 4 rounds:
   p50 and p99. **Baseline**: the local environment.
3. **Throughput**: ``--megabytes`` (64) echoed (sent and read back at once) over one connection,
   from each, alternating in 4 rounds: Gbit/s each way. **Baseline**: the local environment.

No target: the issue's targets are for invokes through nodes (item 7), which build on this.
Every namespace and link is closed; nothing touches the real host's namespace. About 15 s.

Run: ``.venv/bin/python bench/overlay.py [--attachments N] [--requests N] [--megabytes N]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

# The data plane's modules, not bench/'s (bench/dns.py would shadow dnspython's ``dns``).
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent / "src"))

from lamina.domain.dataplane import VpcPlan, plan_vpc  # noqa: E402
from lamina.domain.overlay import FIRST_VNI  # noqa: E402
from lamina.linux import NetNamespace  # noqa: E402
from lamina.net import VpcDataplane, attach  # noqa: E402
from lamina.net.commands import run  # noqa: E402
from lamina.net.overlay import Overlay  # noqa: E402

HOST_A, HOST_B = IPv4Address("10.255.1.1"), IPv4Address("10.255.1.2")
DB, PORT = "10.94.2.10", 7000


def plan(uid: str, interfaces: bool) -> VpcPlan:
    vpc_id = f"vpc-{uid}"
    everything = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    echo = {
        "IpProtocol": "tcp",
        "FromPort": PORT,
        "ToPort": PORT,
        "UserIdGroupPairs": [{"GroupId": f"sg-fn{uid}"}],
    }
    groups = [
        {"GroupId": f"sg-{n}{uid}", "VpcId": vpc_id, "IpPermissions": i, "IpPermissionsEgress": everything}
        for n, i in (("db", [echo]), ("fn", []))
    ]
    enis = [
        {
            "NetworkInterfaceId": f"eni-{n}{uid}",
            "VpcId": vpc_id,
            "SubnetId": f"subnet-{s}{uid}",
            "PrivateIpAddress": a,
            "Groups": [{"GroupId": f"sg-{n}{uid}"}],
        }
        for n, s, a in (("db", "b", DB), ("fn", "a", "10.94.1.10"))
    ]
    return plan_vpc(
        {"VpcId": vpc_id, "CidrBlock": "10.94.0.0/16"},
        [
            {"SubnetId": f"subnet-{s}{uid}", "VpcId": vpc_id, "CidrBlock": f"10.94.{n}.0/24"}
            for s, n in (("a", 1), ("b", 2))
        ],
        groups,
        enis if interfaces else [],
        [
            {
                "RouteTableId": f"rtb-{uid}",
                "VpcId": vpc_id,
                "Associations": [{"Main": True}],
                "Routes": [{"DestinationCidrBlock": "10.94.0.0/16", "GatewayId": "local", "State": "active"}],
            }
        ],
    )


def serve_echo(ns: NetNamespace) -> socket.socket:
    listener = ns.listen_tcp(DB, PORT)

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1 << 20):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener


def traffic(ns: NetNamespace, requests: int, megabytes: int) -> tuple[list[float], float]:
    """(request/response times, echo throughput in Gbit/s) from ``ns``."""

    def go() -> tuple[list[float], float]:
        with socket.create_connection((DB, PORT), timeout=30) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                s.sendall(b"x" * 100)
                got = 0
                while got < 100:
                    got += len(s.recv(100 - got))
                times.append(time.perf_counter() - started)
            payload = bytes(megabytes << 20)

            def read() -> None:
                got = 0
                while got < len(payload):
                    got += len(s.recv(1 << 20))

            reader = threading.Thread(target=read)
            started = time.perf_counter()
            reader.start()
            s.sendall(payload)
            reader.join()
            return times, len(payload) * 8 / (time.perf_counter() - started) / 1e9

    return ns.call(go)


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:6.1f} ms"


def us(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


def timed(fn: Callable[[], Any], into: list[float]) -> Any:
    started = time.perf_counter()
    result = fn()
    into.append(time.perf_counter() - started)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attachments", type=int, default=30)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--megabytes", type=int, default=64)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("overlay: SKIPPED, it makes namespaces, veths and VXLAN links: run it as root")
        return
    uid = uuid.uuid4().hex[:10]
    closing: list[Callable[[], None]] = []
    try:
        a, b = NetNamespace.create("bench-host-a"), NetNamespace.create("bench-host-b")
        closing += [a.close, b.close]
        run(a, ["ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", f"/proc/self/fd/{b.fd}"], pass_fds=(b.fd,))  # fmt: skip
        for ns, address in ((a, HOST_A), (b, HOST_B)):
            run(ns, ["ip", "-batch", "-"], stdin=f"address add {address}/24 dev ul0\nlink set ul0 up\n")
        home, away = VpcDataplane(plan(uid, True)), VpcDataplane(plan(uid, False))
        closing += [away.close, home.close]
        overlay_a, overlay_b = Overlay(HOST_A, a), Overlay(HOST_B, b)
        closing += [overlay_b.close, overlay_a.close]
        tunnel_a = overlay_a.ensure(f"vpc-{uid}", home.router_namespace, FIRST_VNI, [HOST_B])
        tunnel_b = overlay_b.ensure(f"vpc-{uid}", away.router_namespace, FIRST_VNI, [HOST_A])
        fn = home.interface_namespace(f"eni-fn{uid}")
        listener = serve_echo(home.interface_namespace(f"eni-db{uid}"))
        closing.append(listener.close)

        costs: dict[str, list[float]] = {
            k: [] for k in ("host", "join", "leave", "release", "attach", "close")
        }
        for _ in range(args.attachments):
            with NetNamespace.create("bench-env") as env:
                hosted = timed(lambda: tunnel_a.host(fn, HOST_B), costs["host"])
                joined = timed(lambda: tunnel_b.join(env, hosted.link), costs["join"])  # noqa: B023
                timed(lambda: tunnel_b.leave(joined), costs["leave"])  # noqa: B023
                timed(lambda: tunnel_a.release(hosted), costs["release"])  # noqa: B023
            with NetNamespace.create("bench-env") as env:
                local = timed(lambda: attach.attach(env, fn), costs["attach"])  # noqa: B023
                timed(local.close, costs["close"])
        print(f"overlay: attachment costs, median of {args.attachments}")
        print(f"  remote: host {ms(costs['host'])}  join {ms(costs['join'])}  leave {ms(costs['leave'])}  release {ms(costs['release'])}")  # fmt: skip
        print(f"  local (baseline): attach {ms(costs['attach'])}  close {ms(costs['close'])}")

        remote_env, local_env = NetNamespace.create("bench-remote"), NetNamespace.create("bench-local")
        closing += [local_env.close, remote_env.close]
        hosted = tunnel_a.host(fn, HOST_B)
        joined = tunnel_b.join(remote_env, hosted.link)
        closing += [lambda: tunnel_a.release(hosted), lambda: tunnel_b.leave(joined)]
        local = attach.attach(local_env, fn)
        closing.append(local.close)
        rtts: dict[str, list[float]] = {"remote": [], "local": []}
        rates: dict[str, list[float]] = {"remote": [], "local": []}
        for round_ in range(4):
            order = [("remote", remote_env), ("local", local_env)]
            for name, ns in order if round_ % 2 == 0 else reversed(order):
                times, rate = traffic(ns, args.requests // 4, args.megabytes)
                rtts[name] += times
                rates[name].append(rate)
        print(f"overlay: {args.requests} 100-byte echoes and {args.megabytes} MB echoed x4, remote vs local")
        for name in ("remote", "local"):
            label = name if name == "remote" else "local (baseline)"
            print(
                f"  {label}: p50 {us(rtts[name], 0.5):5.0f} us  p99 {us(rtts[name], 0.99):5.0f} us"
                f"  echo {statistics.median(rates[name]):5.2f} Gbit/s"
            )
    finally:
        for close in reversed(closing):
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - teardown goes on
                print(f"overlay: teardown: {exc}")


if __name__ == "__main__":
    main()
