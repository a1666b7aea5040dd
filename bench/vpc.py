"""VPC control plane: EC2 Describe* latency, and creating functions in a VPC until Active.

Two figures, each beside a baseline measured in the same run against the same ``lamina server``:

1. **DescribeSubnets** and **DescribeNetworkInterfaces** (filtered by ``vpc-id``) of a VPC with
   ``--subnets`` (3) subnets and ``--interfaces`` (10) network interfaces (Lambda's shared Hyperplane
   interfaces of a few VPC functions, the rest made with CreateNetworkInterface), over one keep-alive
   boto3 EC2 client: ``--warmup`` untimed calls, then ``--calls`` (1000) timed ones per operation in
   four alternating blocks with the baseline, **ListLayerVersions** (a 3-version layer) over a
   keep-alive Lambda client. Printed: p50/p90/p99, requests/s, the *wire* p50 (boto3's
   ``before-send`` to ``before-parse``: the HTTP exchange and the server), and a "boto3 alone" p50
   that answers each call from a canned copy of lamina's response without any server (EC2 answers
   in XML, which boto3 parses more slowly than Lambda's JSON: the floor no server can go below).
   Target: Describe* p50 <= 2x the ListLayerVersions p50.
2. **Creating a function in a VPC until Active** (control plane only; nothing is invoked):
   ``create_function`` with ``VpcConfig``, then ``get_function_configuration`` in a tight loop
   (no sleeps) until ``State == Active``; the wall time of the whole. ``--creates`` (30) of each
   kind, interleaved (order rotating): the first function of a (subnet, security groups)
   combination (the shared interface is created), a later function of an existing combination
   (the interface is reused), and the baseline, the same function without ``VpcConfig``.
   Target: p50 < 100 ms for both VPC kinds (the ratio to the baseline is printed beside).

Functions run ``provided.al2023`` with a one-line ``bootstrap``, so no language runtime is needed.
Every process is stopped by its pid and the scratch directory removed. About 15 s.

Run: ``.venv/bin/python bench/vpc.py [--calls N] [--creates N] [--profile]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (and with it the test kit, tests/functional)
from testzips import make_zip  # noqa: E402

TARGET_DESCRIBE_RATIO = 2.0
TARGET_CREATE_MS = 100.0
BLOCKS = 4
LAYER_NAME = "bench-vpc"
LAYER_VERSIONS = 3
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
CODE = make_zip({"bootstrap": "#!/bin/sh\n"}, modes={"bootstrap": 0o100755})
POLL_LIMIT_S = 30.0  # a function not Active by then is an error


# -- setup ------------------------------------------------------------------------------------------


def create_function(lam: Any, name: str, vpc: dict[str, list[str]] | None) -> int:
    """CreateFunction, then GetFunctionConfiguration without pause until Active; returns the polls made."""
    args: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "provided.al2023",
        "Role": ROLE,
        "Handler": "h",
        "Code": {"ZipFile": CODE},
    }
    if vpc is not None:
        args["VpcConfig"] = vpc
    lam.create_function(**args)
    deadline = time.monotonic() + POLL_LIMIT_S
    polls = 0
    while True:
        cfg = lam.get_function_configuration(FunctionName=name)
        polls += 1
        state = cfg.get("State")
        if state == "Active":
            return polls
        if state == "Failed" or time.monotonic() > deadline:
            raise RuntimeError(
                f"{name}: State {state}: {cfg.get('StateReasonCode')} {cfg.get('StateReason')}"
            )


@dataclass
class Net:
    vpc: str
    subnets: list[str]
    groups: list[str]  # the groups of the describe phase's functions
    fresh_groups: list[str]  # one per (subnet, group) combination the create phase makes first


def build_vpc(ec2: Any, lam: Any, args: argparse.Namespace) -> Net:
    """The VPC the Describe* calls read: subnets, and ``--interfaces`` interfaces (Hyperplane ones of
    VPC functions, one per subnet and group, and plain ones)."""
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"us-east-1{'abcdef'[i % 6]}"
        )["Subnet"]["SubnetId"]
        for i in range(args.subnets)
    ]

    def group(name: str) -> str:
        return str(ec2.create_security_group(VpcId=vpc, GroupName=name, Description=name)["GroupId"])

    lambda_enis = min(args.interfaces, 2 * len(subnets))
    groups = [group(f"bench-fn-{i}") for i in range((lambda_enis + len(subnets) - 1) // len(subnets))]
    made = 0
    for g in groups:
        for s in subnets:
            if made < lambda_enis:
                create_function(lam, f"bench-describe-{made}", {"SubnetIds": [s], "SecurityGroupIds": [g]})
                made += 1
    for i in range(args.interfaces - made):
        ec2.create_network_interface(
            SubnetId=subnets[i % len(subnets)], Groups=[groups[0]], Description=f"bench interface {i}"
        )
    per_subnet = (args.creates + 1 + len(subnets) - 1) // len(subnets)  # +1: the untimed warm-up
    fresh = [group(f"bench-create-{i}") for i in range(per_subnet)]
    return Net(vpc, subnets, groups, fresh)


# -- phases -------------------------------------------------------------------------------------------


def describe_phase(
    args: argparse.Namespace, url: str, net: Net, pid: int, profiles: list[C.Profiler]
) -> dict[str, C.Series]:
    ec2_calls: dict[str, tuple[Callable[[Any], Any], Callable[[Any], bool]]] = {
        "DescribeSubnets": (
            lambda c: c.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [net.vpc]}]),
            lambda out: len(out["Subnets"]) == args.subnets,
        ),
        "DescribeNetworkInterfaces": (
            lambda c: c.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [net.vpc]}]),
            lambda out: len(out["NetworkInterfaces"]) == args.interfaces,
        ),
    }
    lambda_calls: dict[str, tuple[Callable[[Any], Any], Callable[[Any], bool]]] = {
        "ListLayerVersions": (
            lambda c: c.list_layer_versions(LayerName=LAYER_NAME),
            lambda out: len(out["LayerVersions"]) == LAYER_VERSIONS,
        ),
    }
    ec2 = C.TimedClient(url, "ec2")
    lam = C.TimedClient(url, "lambda")
    ec2_alone = C.TimedClient(
        url, "ec2", canned=C.record(ec2.client, "ec2", {k: v[0] for k, v in ec2_calls.items()})
    )
    lam_alone = C.TimedClient(
        url, "lambda", canned=C.record(lam.client, "lambda", {k: v[0] for k, v in lambda_calls.items()})
    )
    plan = [(name, ec2, ec2_alone, *ops) for name, ops in ec2_calls.items()]
    plan += [(name, lam, lam_alone, *ops) for name, ops in lambda_calls.items()]
    res = {name: C.Series() for name, *_ in plan} | {f"{name} alone": C.Series() for name, *_ in plan}
    for _name, tc, alone, call, check in plan:
        tc.run(call, check, args.warmup, None)
        alone.run(call, check, args.warmup, None)
    profiler = C.Profiler(pid, C.OUT / "vpc-describe-server.pyspy.txt").__enter__() if args.profile else None
    try:
        per_block = args.calls // BLOCKS
        for block in range(BLOCKS):
            n = per_block if block < BLOCKS - 1 else args.calls - per_block * (BLOCKS - 1)
            for name, tc, alone, call, check in plan:
                tc.run(call, check, n, res[name])
                alone.run(call, check, n, res[f"{name} alone"])
    finally:
        if profiler is not None:
            profiler.__exit__(None, None, None)
            profiles.append(profiler)
    print(
        "describe: " + ", ".join(f"{name} p50 {C.ms(res[name].p(50)):.2f} ms" for name, *_ in plan),
        flush=True,
    )
    return res


@dataclass
class Creates:
    wall: list[float] = field(default_factory=list)  # seconds, create + polls until Active
    polls: list[int] = field(default_factory=list)


def create_phase(
    args: argparse.Namespace, url: str, net: Net, pid: int, profiles: list[C.Profiler]
) -> dict[str, Creates]:
    lam = C.boto_client(url, "lambda")
    combos = iter([(s, g) for g in net.fresh_groups for s in net.subnets])
    shared = {"SubnetIds": [net.subnets[0]], "SecurityGroupIds": [net.groups[0]]}  # its interface exists

    def first() -> dict[str, list[str]]:
        subnet, group = next(combos)
        return {"SubnetIds": [subnet], "SecurityGroupIds": [group]}

    kinds: list[tuple[str, Callable[[], dict[str, list[str]] | None]]] = [
        ("new", first),
        ("reuse", lambda: shared),
        ("plain", lambda: None),
    ]
    res = {kind: Creates() for kind, _ in kinds}
    for kind, vpc in kinds:  # untimed: first use of each path
        create_function(lam, f"bench-warm-{kind}", vpc())
    profiler = C.Profiler(pid, C.OUT / "vpc-create-server.pyspy.txt").__enter__() if args.profile else None
    try:
        for rep in range(args.creates):
            order = kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]
            for kind, vpc in order:
                config = vpc()
                name = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
                t0 = time.perf_counter()
                polls = create_function(lam, name, config)
                res[kind].wall.append(time.perf_counter() - t0)
                res[kind].polls.append(polls)
    finally:
        if profiler is not None:
            profiler.__exit__(None, None, None)
            profiles.append(profiler)
    print(
        "create: " + ", ".join(f"{k} p50 {C.ms(statistics.median(c.wall)):.1f} ms" for k, c in res.items()),
        flush=True,
    )
    return res


def check_interfaces(ec2: Any, net: Net, args: argparse.Namespace) -> None:
    """Every first-of-a-combination function made one interface; the others none."""
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [net.vpc]}])[
        "NetworkInterfaces"
    ]
    expected = args.interfaces + 1 + args.creates  # + the warm-up's
    if len(enis) != expected:
        raise RuntimeError(f"{len(enis)} interfaces in the VPC after the creates, expected {expected}")


# -- main ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per operation (1000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls per operation first (100)")
    parser.add_argument("--subnets", type=int, default=3, help="subnets of the VPC (3)")
    parser.add_argument("--interfaces", type=int, default=10, help="network interfaces in the VPC (10)")
    parser.add_argument("--creates", type=int, default=30, help="functions created per kind (30)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the lamina server with py-spy during the timed calls and creates, and summarise",
    )
    args = parser.parse_args(argv)
    if not (
        BLOCKS <= args.calls <= 100_000
        and 0 <= args.warmup <= 10_000
        and 1 <= args.subnets <= 6
        and args.subnets <= args.interfaces <= 200
        and 1 <= args.creates <= 300
    ):
        parser.error(
            "--calls 4..100000, --warmup 0..10000, --subnets 1..6, --interfaces SUBNETS..200, --creates 1..300"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        C.bench_venv_bin("py-spy")
    print(
        f"== vpc: Describe* of a VPC with {args.subnets} subnets and {args.interfaces} interfaces, {args.calls} "
        f"calls each; {args.creates} functions of each kind created until Active ==",
        flush=True,
    )
    profiles: list[C.Profiler] = []
    with C.workdir("vpc") as scratch:
        server = C.LaminaServer(scratch / "data")
        try:
            iam = C.boto_client(server.url, "iam")
            iam.attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
            lam = C.boto_client(server.url, "lambda")
            ec2 = C.boto_client(server.url, "ec2")
            zip_bytes = C.small_layer_zip()
            for _ in range(LAYER_VERSIONS):
                lam.publish_layer_version(LayerName=LAYER_NAME, Content={"ZipFile": zip_bytes})
            net = build_vpc(ec2, lam, args)
            describe = describe_phase(args, server.url, net, server.proc.pid, profiles)
            creates = create_phase(args, server.url, net, server.proc.pid, profiles)
            check_interfaces(ec2, net, args)
        finally:
            rc = server.stop()
            if rc not in (0, -15):
                print(f"warning: lamina server exited with {rc}:\n{server.log()}", file=sys.stderr)
    report(args, describe, creates)
    for profiler in profiles:
        print(f"\nlamina server profile (py-spy, {profiler.out}):")
        print(profiler.summary())
    if profiles:
        print("(py-spy was sampling the lamina server: the figures above are perturbed)")
    return 0


def report(args: argparse.Namespace, describe: dict[str, C.Series], creates: dict[str, Creates]) -> None:
    base = describe["ListLayerVersions"]
    print()
    header = (
        f"{'':42}| {'p50':>8} {'p90':>8} {'p99':>8} {'rps':>6} | {'wire p50':>8} | {'boto3 alone':>11} "
        f"| {'/ baseline p50':>14}"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "DescribeSubnets": f"DescribeSubnets ({args.subnets} subnets)",
        "DescribeNetworkInterfaces": f"DescribeNetworkInterfaces ({args.interfaces})",
        "ListLayerVersions": "baseline: ListLayerVersions",
    }
    for name, label in labels.items():
        s, alone = describe[name], describe[f"{name} alone"]
        print(
            f"{label:42}| {C.ms(s.p(50)):>6.2f}ms {C.ms(s.p(90)):>6.2f}ms {C.ms(s.p(99)):>6.2f}ms {s.rps:>6.0f} "
            f"| {C.ms(s.wire_p(50)):>6.2f}ms | {C.ms(alone.p(50)):>9.2f}ms | {s.p(50) / base.p(50):>13.2f}x"
        )
    print(
        f"({args.calls} timed calls each, in {BLOCKS} alternating blocks, filtered by vpc-id; wire = boto3 "
        "before-send to before-parse; boto3 alone = the same call answered from a canned response)"
    )
    print()
    med = statistics.median
    plain = creates["plain"]
    header = (
        f"{'':48}| {'p50':>8} {'p90':>8} {'min':>8} {'max':>8} | {'polls p50':>9} | {'/ baseline p50':>14}"
    )
    print(header)
    print("-" * len(header))
    rows = [
        ("create until Active, VPC, new interface", creates["new"]),
        ("create until Active, VPC, shared interface", creates["reuse"]),
        ("baseline: create until Active, no VpcConfig", plain),
    ]
    for label, c in rows:
        print(
            f"{label:48}| {C.ms(med(c.wall)):>6.1f}ms {C.ms(C.percentile(c.wall, 90)):>6.1f}ms "
            f"{C.ms(min(c.wall)):>6.1f}ms {C.ms(max(c.wall)):>6.1f}ms | {med(c.polls):>9.0f} "
            f"| {med(c.wall) / med(plain.wall):>13.2f}x"
        )
    print(
        f"({args.creates} of each, interleaved; CreateFunction then GetFunctionConfiguration without pause "
        "until State is Active)"
    )
    print()
    for name in ("DescribeSubnets", "DescribeNetworkInterfaces"):
        ratio = describe[name].p(50) / base.p(50)
        print(
            f"{name}: p50 {C.ms(describe[name].p(50)):.2f} ms = {ratio:.2f}x ListLayerVersions p50 "
            f"{C.ms(base.p(50)):.2f} ms (target <= {TARGET_DESCRIBE_RATIO:.0f}x: "
            f"{C.verdict(ratio <= TARGET_DESCRIBE_RATIO)})"
        )
        # What a server as quick on the wire as for ListLayerVersions would give with this client.
        floor = describe[f"{name} alone"].p(50) + base.wire_p(50)
        print(
            f"  (reachable with this client: boto3 alone {C.ms(describe[f'{name} alone'].p(50)):.2f} ms + "
            f"ListLayerVersions' wire {C.ms(base.wire_p(50)):.2f} ms = {C.ms(floor):.2f} ms = "
            f"{floor / base.p(50):.2f}x; its own wire p50 is {C.ms(describe[name].wire_p(50)):.2f} ms = "
            f"{describe[name].wire_p(50) / base.wire_p(50):.2f}x the baseline's)"
        )
    for kind, label in (("new", "new interface"), ("reuse", "shared interface")):
        p50 = C.ms(med(creates[kind].wall))
        print(
            f"create VPC function until Active ({label}): p50 {p50:.1f} ms = "
            f"{med(creates[kind].wall) / med(plain.wall):.2f}x without VpcConfig {C.ms(med(plain.wall)):.1f} ms "
            f"(target < {TARGET_CREATE_MS:.0f} ms: {C.verdict(p50 < TARGET_CREATE_MS)})"
        )


if __name__ == "__main__":
    sys.exit(main())
