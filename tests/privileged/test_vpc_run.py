"""``lamina vpc run`` and ``lamina vpc status`` against a real server as root: processes put into
a VPC by the CLI talk to each other as their security groups allow, changes made through the EC2
API are in force within 100 ms, interfaces go when their command ends, and a server that stops
(or dies, then restarts) leaves no namespace, link or mount behind.

The VPC: 10.77.0.0/16; subnet a 10.77.1.0/24 (clients), subnet b 10.77.2.0/24 (db at 10.77.2.10).
sg-db allows tcp 6379 from sg-fn; sg-fn and sg-other allow nothing in; every group allows all out.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip
from vpc_run import VpcRun, cli_env, lamina

from lamina.cli.vpc import WATCH_EVERY_S
from lamina.linux import NetNamespace, mounts
from lamina.linux.namespaces import namespace_inode
from lamina.net import published

pytestmark = [pytest.mark.privileged, pytest.mark.serial]

DB = "10.77.2.10"
IN_FORCE_S = 2.0  # a correctness bound, not the 100 ms target (measured by bench/, never asserted in tests)
# Nothing on these links is lost or slow: an allowed connection completes in well under a
# millisecond, so one still pending after this long was dropped.
PROBE_TIMEOUT_S = 0.25
# Waiting for a connection to be allowed, probes are given less: a probe started just before the
# change is dropped and must not hide the change for long (an early timeout only delays the figure).
ALLOWED_PROBE_TIMEOUT_S = 0.05
VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"

# Echo servers on the ports given as arguments; SIGINT ends it with status 3.
ECHO = r"""
import os, signal, socket, sys, threading
signal.signal(signal.SIGINT, lambda *_: os._exit(3))
def serve(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=lambda c=c: [c.sendall(d) for d in iter(lambda: c.recv(1024), b"")], daemon=True).start()
for port in sys.argv[1:]:
    threading.Thread(target=serve, args=(socket.create_server(("0.0.0.0", int(port))),), daemon=True).start()
print("ready", os.getpid(), flush=True)
threading.Event().wait()
"""

# Reads "host port timeout" lines; answers each with ok / dropped / error N.
PROBE = r"""
import os, socket, sys
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    host, port, timeout = line.split()
    s = socket.socket()
    s.settimeout(float(timeout))
    try:
        s.connect((host, int(port)))
        s.sendall(b"ping")
        print("ok" if s.recv(4) == b"ping" else "no reply", flush=True)
    except TimeoutError:
        print("dropped", flush=True)
    except OSError as exc:
        print("error", exc.errno, flush=True)
    finally:
        s.close()
"""


@dataclass
class Net:
    vpc: str
    a: str
    b: str
    db: str
    fn: str
    other: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-vpc-run") / "data", extra_args=("--eni-release-delay", "0")
    )
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def ec2(server: LaminaServer) -> Any:
    return client(server, "ec2")


@pytest.fixture(scope="module")
def net(ec2: Any) -> Net:
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]

    def group(name: str) -> str:
        return str(ec2.create_security_group(VpcId=vpc, GroupName=name, Description=name)["GroupId"])

    n = Net(
        vpc=vpc,
        a=ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"],
        b=ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.2.0/24")["Subnet"]["SubnetId"],
        db=group("db"),
        fn=group("fn"),
        other=group("other"),
    )
    ec2.authorize_security_group_ingress(GroupId=n.db, IpPermissions=[redis_from(n.fn)])
    return n


def redis_from(group: str, port: int = 6379) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": group}]}


@pytest.fixture(scope="module")
def hosts(server: LaminaServer, net: Net) -> Iterator[dict[str, VpcRun]]:
    """db (echo on 6379 and 7000), and probes in sg-fn and sg-other, each under lamina vpc run."""
    runs: dict[str, VpcRun] = {}
    try:
        runs["db"] = VpcRun(server, net.b, [net.db], sys.executable, "-u", "-c", ECHO, "6379", "7000", ip=DB)
        runs["fn"] = VpcRun(server, net.a, [net.fn], sys.executable, "-u", "-c", PROBE)
        runs["other"] = VpcRun(server, net.a, [net.other], sys.executable, "-u", "-c", PROBE)
        for run in runs.values():
            run.start()
        yield runs
    finally:
        for run in runs.values():
            run.close()


def interfaces(ec2: Any, vpc: str) -> dict[str, dict[str, Any]]:
    found = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
        "NetworkInterfaces"
    ]
    return {i["NetworkInterfaceId"]: i for i in found}


def eventually(check: Any, timeout: float = 5.0) -> Any:
    """Poll ``check`` (a test helper waiting on another process: bounded, 10 ms steps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


# -- security groups between processes ------------------------------------------------------------


def test_security_groups_decide_between_processes(hosts: dict[str, VpcRun]) -> None:
    fn, other = hosts["fn"], hosts["other"]
    assert fn.probe(DB, 6379) == "ok"
    # A listener exists on 7000, but no rule allows it: the SYN is dropped, not refused.
    assert fn.probe(DB, 7000) == "dropped"
    assert other.probe(DB, 6379) == "dropped"


def in_force_after(change: Any, probe: VpcRun, port: int, wanted: str) -> float:
    """Make ``change`` through the API, then probe until the answer is ``wanted``: the time from
    the API call returning to the start of the first probe that saw the change."""
    change()
    returned = time.perf_counter()
    while True:
        started = time.perf_counter()
        answer = probe.probe(DB, port, ALLOWED_PROBE_TIMEOUT_S if wanted == "ok" else PROBE_TIMEOUT_S)
        if answer == wanted:
            return started - returned
        assert started - returned < 2.0, f"still {answer!r} 2 s after the call returned"


def test_authorize_and_revoke_are_in_force_within_100_ms(
    ec2: Any, net: Net, hosts: dict[str, VpcRun]
) -> None:
    fn = hosts["fn"]
    allow, block = [], []
    for _ in range(5):
        allow.append(
            in_force_after(
                lambda: ec2.authorize_security_group_ingress(
                    GroupId=net.db, IpPermissions=[redis_from(net.fn, 7000)]
                ),
                fn,
                7000,
                "ok",
            )
        )
        block.append(
            in_force_after(
                lambda: ec2.revoke_security_group_ingress(
                    GroupId=net.db, IpPermissions=[redis_from(net.fn, 7000)]
                ),
                fn,
                7000,
                "dropped",
            )
        )
    figures = (
        f"authorize -> in force: median {statistics.median(allow) * 1000:.1f} ms, max {max(allow) * 1000:.1f} ms; "
        f"revoke -> in force: median {statistics.median(block) * 1000:.1f} ms, max {max(block) * 1000:.1f} ms"
    )
    print(figures)
    assert max(allow + block) < IN_FORCE_S, figures
    assert fn.probe(DB, 6379) == "ok"  # the rule that stayed still works


def test_a_rule_naming_another_group(ec2: Any, net: Net, hosts: dict[str, VpcRun]) -> None:
    other, permission = hosts["other"], redis_from(net.other)
    took = [
        in_force_after(
            lambda: ec2.authorize_security_group_ingress(GroupId=net.db, IpPermissions=[permission]),
            other,
            6379,
            "ok",
        ),
        in_force_after(
            lambda: ec2.revoke_security_group_ingress(GroupId=net.db, IpPermissions=[permission]),
            other,
            6379,
            "dropped",
        ),
    ]
    assert max(took) < IN_FORCE_S, [f"{t * 1000:.1f} ms" for t in took]
    assert hosts["fn"].probe(DB, 6379) == "ok"


# -- no route: the packets are dropped, as in AWS ----------------------------------------------------


def test_no_route_and_a_blackhole_route_drop_without_a_word(
    ec2: Any, net: Net, hosts: dict[str, VpcRun]
) -> None:
    fn = hosts["fn"]
    # Nothing routes 203.0.113.0/24: the client times out, it is not told "network unreachable"
    # (errno 101) at once.
    assert fn.probe("203.0.113.9", 80) == "dropped"
    # A route whose interface was deleted is a blackhole: dropped as well.
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [net.vpc]}])["RouteTables"]
    main = next(t for t in tables if any(a.get("Main") for a in t.get("Associations", [])))
    eni = ec2.create_network_interface(SubnetId=net.b)["NetworkInterface"]["NetworkInterfaceId"]
    destination = "198.51.100.0/24"
    ec2.create_route(
        RouteTableId=main["RouteTableId"], DestinationCidrBlock=destination, NetworkInterfaceId=eni
    )
    try:
        ec2.delete_network_interface(NetworkInterfaceId=eni)
        routes = ec2.describe_route_tables(RouteTableIds=[main["RouteTableId"]])["RouteTables"][0]["Routes"]
        assert [r["State"] for r in routes if r.get("DestinationCidrBlock") == destination] == ["blackhole"]
        assert fn.probe("198.51.100.9", 80) == "dropped"
    finally:
        ec2.delete_route(RouteTableId=main["RouteTableId"], DestinationCidrBlock=destination)
    assert fn.probe(DB, 6379) == "ok"


# -- the interface's life -------------------------------------------------------------------------


def test_the_interface_goes_with_the_command(server: LaminaServer, ec2: Any, net: Net) -> None:
    run = VpcRun(server, net.a, [net.fn], sys.executable, "-c", "import sys; sys.exit(7)")
    try:
        eni = run.interface()
        assert run.wait() == 7  # the command's status
    finally:
        run.close()
    assert eni not in interfaces(ec2, net.vpc)
    netns = server.data_dir / "run" / "netns"
    assert eventually(lambda: not (netns / eni).exists())


def test_the_interface_is_in_use_while_the_command_runs(server: LaminaServer, ec2: Any, net: Net) -> None:
    # --data-dir given: as before (the other tests leave it to be asked of the server).
    run = VpcRun(server, net.b, [net.db], sys.executable, "-u", "-c", ECHO, "6379", data_dir=True)
    try:
        run.start()
        eni = interfaces(ec2, net.vpc)[run.interface()]
        # As a Lambda Hyperplane interface shows its service's use: in-use, attached, the
        # requester the account that ran lamina vpc run; but the customer's own interface.
        assert (eni["Status"], eni["RequesterId"], eni["RequesterManaged"], eni["InterfaceType"]) == (
            "in-use",
            "000000000000",
            False,
            "interface",
        )
        attachment = eni["Attachment"]
        assert attachment["AttachmentId"].startswith("ela-attach-")
        assert (attachment["DeviceIndex"], attachment["Status"], attachment["InstanceOwnerId"]) == (
            1,
            "attached",
            "amazon-aws",
        )
        assert not attachment["DeleteOnTermination"] and "InstanceId" not in attachment
        found = ec2.describe_network_interfaces(Filters=[{"Name": "status", "Values": ["in-use"]}])
        assert run.interface() in [i["NetworkInterfaceId"] for i in found["NetworkInterfaces"]]
        with pytest.raises(ec2.exceptions.ClientError) as refused:
            ec2.delete_network_interface(NetworkInterfaceId=run.interface())
        assert refused.value.response["Error"]["Code"] == "InvalidNetworkInterface.InUse"
    finally:
        run.close()
    assert run.proc.returncode == 128 + signal.SIGTERM
    assert run.interface() not in interfaces(ec2, net.vpc)  # detached, then deleted


def test_the_vpc_run_route_is_signed_and_per_account(server: LaminaServer, ec2: Any, net: Net) -> None:
    from lamina.cli.awsclient import signed_post

    eni = ec2.create_network_interface(SubnetId=net.a)["NetworkInterface"]["NetworkInterfaceId"]
    try:
        status, answer = signed_post(server.url, "us-east-1", "ec2", "/_lamina/vpc-run", {"Action": "Where"})
        assert (status, answer) == (200, {"NetnsDir": str(server.data_dir / "run" / "netns")})
        # Signed for another service: no signature for this route.
        status, answer = signed_post(
            server.url, "us-east-1", "lambda", "/_lamina/vpc-run", {"Action": "Where"}
        )
        assert status == 403 and answer["Error"]["Code"] != "", answer
        # Another Region's interface does not exist there.
        status, answer = signed_post(
            server.url,
            "eu-west-1",
            "ec2",
            "/_lamina/vpc-run",
            {"Action": "Attach", "NetworkInterfaceId": eni},
        )
        assert (status, answer["Error"]["Code"]) == (400, "InvalidNetworkInterfaceID.NotFound")
        status, answer = signed_post(
            server.url,
            "us-east-1",
            "ec2",
            "/_lamina/vpc-run",
            {"Action": "Attach", "NetworkInterfaceId": eni},
        )
        assert status == 200 and answer["NetworkInterface"]["Status"] == "in-use"
        status, answer = signed_post(
            server.url,
            "us-east-1",
            "ec2",
            "/_lamina/vpc-run",
            {"Action": "Attach", "NetworkInterfaceId": eni},
        )
        assert (status, answer["Error"]["Code"]) == (400, "InvalidNetworkInterface.InUse")
        status, answer = signed_post(
            server.url,
            "us-east-1",
            "ec2",
            "/_lamina/vpc-run",
            {"Action": "Detach", "NetworkInterfaceId": eni},
        )
        assert status == 200 and answer["NetworkInterface"]["Status"] == "available"
        assert (
            "Attachment" not in answer["NetworkInterface"] and "RequesterId" not in answer["NetworkInterface"]
        )
    finally:
        ec2.delete_network_interface(NetworkInterfaceId=eni)


def test_the_vpc_run_route_is_authorized_by_iam(server: LaminaServer, ec2: Any, net: Net) -> None:
    from lamina.cli.awsclient import signed_post

    iam = client(server, "iam")
    iam.create_user(UserName="vpc-reader")
    iam.put_user_policy(
        UserName="vpc-reader",
        PolicyName="describe",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}],
            }
        ),
    )
    made = iam.create_access_key(UserName="vpc-reader")["AccessKey"]
    keys = (made["AccessKeyId"], made["SecretAccessKey"])
    eni = ec2.create_network_interface(SubnetId=net.a)["NetworkInterface"]["NetworkInterfaceId"]
    try:
        status, _ = signed_post(server.url, "us-east-1", "ec2", "/_lamina/vpc-run", {"Action": "Where"}, keys)
        assert status == 200
        # Marking an interface in use is authorized as deleting it: refused, and nothing changed.
        status, answer = signed_post(
            server.url,
            "us-east-1",
            "ec2",
            "/_lamina/vpc-run",
            {"Action": "Attach", "NetworkInterfaceId": eni},
            keys,
        )
        assert (status, answer["Error"]["Code"]) == (403, "UnauthorizedOperation"), answer
        assert interfaces(ec2, net.vpc)[eni]["Status"] == "available"
    finally:
        ec2.delete_network_interface(NetworkInterfaceId=eni)
        iam.delete_access_key(UserName="vpc-reader", AccessKeyId=made["AccessKeyId"])
        iam.delete_user_policy(UserName="vpc-reader", PolicyName="describe")
        iam.delete_user(UserName="vpc-reader")


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGINT, 3), (signal.SIGTERM, 128 + signal.SIGTERM)],
    ids=["sigint-handled-by-the-command", "sigterm-kills-the-command"],
)
def test_signals_reach_the_command_and_the_interface_goes(
    server: LaminaServer, ec2: Any, net: Net, signum: int, status: int
) -> None:
    run = VpcRun(server, net.b, [net.db], sys.executable, "-u", "-c", ECHO, "6379")
    try:
        run.start()
        eni = run.interface()
        assert eni in interfaces(ec2, net.vpc)
        run.proc.send_signal(signum)
        assert run.wait() == status
        assert not eventually(lambda: os.path.exists(f"/proc/{run.child_pid}"), 2)
    finally:
        run.close()
    assert eni not in interfaces(ec2, net.vpc)


def test_errors_are_reported_and_nothing_is_left(server: LaminaServer, ec2: Any, net: Net) -> None:
    before = set(interfaces(ec2, net.vpc))
    with socket.socket() as closed:  # a local port nothing listens on: one clear error, no guess
        closed.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
    done = subprocess.run(
        lamina("vpc", "run", "--endpoint-url", nobody, "--subnet", net.a, "--", "true"),
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert done.returncode == 1
    assert (
        done.stderr == f'lamina: vpc run: Could not connect to the endpoint URL: "{nobody}/_lamina/vpc-run"\n'
    )
    base = ["vpc", "run", "--endpoint-url", server.url, "--data-dir", str(server.data_dir)]
    done = subprocess.run(
        lamina(*base, "--subnet", "subnet-nope", "--", "true"),
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert done.returncode == 1
    assert "InvalidSubnetID.NotFound" in done.stderr
    done = subprocess.run(
        lamina(*base, "--subnet", net.a, "--security-group", net.fn, "--", "/nonexistent/command"),
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert done.returncode == 127, done.stderr
    assert set(interfaces(ec2, net.vpc)) == before


def test_an_interface_made_through_the_api_is_in_force_at_once(
    server: LaminaServer, ec2: Any, net: Net
) -> None:
    netns = server.data_dir / "run" / "netns"
    took = []
    for _ in range(5):
        eni = ec2.create_network_interface(SubnetId=net.a, Groups=[net.fn])["NetworkInterface"][
            "NetworkInterfaceId"
        ]
        returned = time.perf_counter()
        try:
            assert published.wait_published(netns, eni, 5.0) is not None
            took.append(time.perf_counter() - returned)
        finally:
            ec2.delete_network_interface(NetworkInterfaceId=eni)
        assert eventually(lambda eni=eni: not (netns / eni).exists())
    print(f"CreateNetworkInterface -> namespace published: median {statistics.median(took) * 1000:.1f} ms")
    assert max(took) < IN_FORCE_S, took


# -- lamina vpc status ----------------------------------------------------------------------------


def test_status_shows_subnets_interfaces_and_hyperplane_users(
    server: LaminaServer, ec2: Any, net: Net, hosts: dict[str, VpcRun]
) -> None:
    iam, lam = client(server, "iam"), client(server)
    iam.attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
    config = {"SubnetIds": [net.a], "SecurityGroupIds": [net.fn]}
    code = make_zip({"bootstrap": "#!/bin/sh\n"}, modes={"bootstrap": 0o100755})
    for name in ("status-one", "status-two"):
        lam.create_function(
            FunctionName=name,
            Runtime="provided.al2023",
            Role="arn:aws:iam::000000000000:role/lambda-role",
            Handler="h",
            Code={"ZipFile": code},
            VpcConfig=config,
        )
    try:
        for name in ("status-one", "status-two"):
            lam.get_waiter("function_active_v2").wait(
                FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300}
            )
        db_eni = hosts["db"].interface()
        done = subprocess.run(
            lamina("vpc", "status", "--endpoint-url", server.url, "--json"),
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        (vpc,) = [v for v in json.loads(done.stdout) if v["VpcId"] == net.vpc]
        subnets = {s["SubnetId"]: s for s in vpc["Subnets"]}
        enis = {i["NetworkInterfaceId"]: i for i in vpc["NetworkInterfaces"]}
        described = interfaces(ec2, net.vpc)
        assert set(enis) == set(described)
        assert subnets[net.b]["CidrBlock"] == "10.77.2.0/24"
        assert subnets[net.b]["AvailableIpAddressCount"] == 251 - len(
            [i for i in described.values() if i["SubnetId"] == net.b]
        )
        db = enis[db_eni]
        assert (db["PrivateIpAddress"], db["InterfaceType"], db["Groups"]) == (
            DB,
            "interface",
            [{"GroupId": net.db, "GroupName": "db"}],
        )
        assert db["Description"].startswith("lamina vpc run: ")
        (hyperplane,) = [i for i in enis.values() if i["InterfaceType"] == "lambda"]
        assert hyperplane["Functions"] == ["status-one", "status-two"]
        text = subprocess.run(
            lamina("vpc", "status", "--endpoint-url", server.url),
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=60,
        ).stdout
        assert f"{db_eni}  {DB}  interface  [{net.db} (db)]  lamina vpc run: " in text
        assert "functions: status-one, status-two" in text
    finally:
        for name in ("status-one", "status-two"):
            lam.delete_function(FunctionName=name)


# -- nothing left behind --------------------------------------------------------------------------


def host_links() -> set[str]:
    done = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True, timeout=10
    )
    return {line.split(":")[1].strip().split("@")[0] for line in done.stdout.splitlines()}


def namespace_holders(inodes: set[int]) -> list[str]:
    """Processes, fds and mounts anywhere on the host still holding one of these namespaces."""
    found = []
    wanted = {f"net:[{i}]" for i in inodes}
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            if os.readlink(f"/proc/{pid}/ns/net") in wanted:
                found.append(f"{pid} is in it")
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    found.append(f"{pid} holds fd {fd}")
        except OSError:
            continue  # the process ended meanwhile
    with open("/proc/self/mountinfo") as f:
        found += [line for line in f if any(f"net:[{i}]" in line for i in inodes)]
    return found


def published_mounts(data_dir: Path) -> list[Path]:
    return mounts.mount_points_under(data_dir / "run" / "netns")


def up(tmp: Path) -> tuple[LaminaServer, Any, str]:
    """A server with one VPC and an interface made through the API (no process in it)."""
    srv = LaminaServer(tmp / "data", lambda_role=False)
    ec2 = client(srv, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.78.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    return srv, ec2, eni


def test_server_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    links = host_links()
    run_netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    srv, _, eni = up(tmp_path)
    try:
        inode = published.wait_published(srv.data_dir / "run" / "netns", eni, 5.0)
        assert inode is not None
        assert [p.name for p in published_mounts(srv.data_dir)] == [eni]
        assert host_links() == links  # the VPC's links live in its namespaces, never on the host
    finally:
        assert srv.stop() == 0
    assert published_mounts(srv.data_dir) == []
    assert not (srv.data_dir / "run" / "netns").exists() or not os.listdir(srv.data_dir / "run" / "netns")
    assert namespace_holders({inode}) == []
    assert host_links() == links
    # lamina named nothing (other runs on this machine name their test namespaces lmtest-*).
    left = (set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()) - run_netns
    assert not [n for n in left if not n.startswith("lmtest-")]


def test_a_restart_rebuilds_from_the_database_and_sweeps_a_crash(tmp_path: Path) -> None:
    srv, ec2, eni = up(tmp_path)
    netns = srv.data_dir / "run" / "netns"
    first = published.wait_published(netns, eni, 5.0)
    assert first is not None
    srv.kill()  # SIGKILL: the bind mount outlives the server (its namespace has only lo left)
    assert [p.name for p in published_mounts(srv.data_dir)] == [eni]
    # A namespace published for an interface the database does not have (stale).
    with NetNamespace.create("stale") as stale:
        published.publish(netns, "eni-0123456789abcdef0", stale.fd)
        stale_inode = os.fstat(stale.fd).st_ino
    again = LaminaServer(srv.data_dir, port=srv.port, lambda_role=False)
    try:
        # The interface was rebuilt from the database before ready, re-attached to the namespace
        # it had (a customer's interface); the stale one was swept.
        second = namespace_inode(netns / eni)
        assert second == first
        with NetNamespace(os.open(netns / eni, os.O_RDONLY | os.O_CLOEXEC), eni) as ns:
            assert published.link_address(ns, "eth0") is not None  # a new veth, its address again
        assert [p.name for p in published_mounts(srv.data_dir)] == [eni]
        assert namespace_holders({stale_inode}) == []
        ec2.delete_network_interface(NetworkInterfaceId=eni)
        assert eventually(lambda: not (netns / eni).exists())
    finally:
        assert again.stop() == 0
    assert published_mounts(srv.data_dir) == []
    assert namespace_holders({first}) == []


# -- lamina vpc run across server restarts ----------------------------------------------------------


def restart_net(ec2: Any) -> tuple[str, str, str]:
    """A VPC with one subnet, sg-db allowing 6379 from sg-client: (subnet, sg-db, sg-client)."""
    vpc = ec2.create_vpc(CidrBlock="10.79.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.79.1.0/24")["Subnet"]["SubnetId"]
    db, client_group = (
        ec2.create_security_group(VpcId=vpc, GroupName=n, Description=n)["GroupId"] for n in ("db", "client")
    )
    ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[redis_from(client_group)])
    return subnet, db, client_group


def serves(probe: VpcRun, timeout: float = 20.0) -> bool:
    """Whether the db answers the probe, once any re-attachment is done."""
    return bool(eventually(lambda: probe.probe("10.79.1.10", 6379) == "ok", timeout))


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_vpc_run_host_keeps_serving_across_a_restart(tmp_path: Path, how: str) -> None:
    srv = LaminaServer(tmp_path / "data", lambda_role=False)
    netns = srv.data_dir / "run" / "netns"
    subnet, db_group, client_group = restart_net(client(srv, "ec2"))
    db = VpcRun(srv, subnet, [db_group], sys.executable, "-u", "-c", ECHO, "6379", ip="10.79.1.10")
    probe = VpcRun(srv, subnet, [client_group], sys.executable, "-u", "-c", PROBE)
    servers = [srv]
    inodes: set[int] = set()
    try:
        db.start()
        probe.start()
        db_eni, probe_eni = db.interface(), probe.interface()
        before = {e: namespace_inode(netns / e) for e in (db_eni, probe_eni)}
        inodes = {i for i in before.values() if i is not None}
        assert probe.probe("10.79.1.10", 6379) == "ok"
        for _ in range(2):
            if how == "stop":
                # A clean stop leaves the namespaces a process lives in published, nothing else.
                assert servers[-1].stop() == 0
                assert sorted(p.name for p in published_mounts(srv.data_dir)) == sorted(before)
            else:
                servers[-1].kill()
            assert db.proc.poll() is None and probe.proc.poll() is None
            servers.append(LaminaServer(srv.data_dir, port=srv.port, lambda_role=False))
            assert serves(probe), probe.stderr()
            # The same namespaces, so the same processes, at the same addresses.
            assert {e: namespace_inode(netns / e) for e in before} == before
        ec2 = client(servers[-1], "ec2")
        eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[db_eni])["NetworkInterfaces"][0]
        assert eni["PrivateIpAddress"] == "10.79.1.10"
        time.sleep(3 * WATCH_EVERY_S)  # vpc run checks its link this often: it has seen it come back
        db.proc.send_signal(signal.SIGTERM)
        assert db.wait() == 128 + signal.SIGTERM
        said = db.stderr()
        assert f"{db_eni} lost its link" in said and f"{db_eni} re-attached" in said, said
    finally:
        db.close()
        probe.close()
        assert servers[-1].stop() == 0
    # After vpc run ended and the server stopped, nothing of it remains.
    assert published_mounts(srv.data_dir) == []
    assert namespace_holders(inodes) == []


def test_vpc_run_says_so_and_exits_when_its_interface_cannot_come_back(tmp_path: Path) -> None:
    srv = LaminaServer(tmp_path / "data", lambda_role=False)
    netns = srv.data_dir / "run" / "netns"
    servers = [srv]
    subnet, db_group, _ = restart_net(client(srv, "ec2"))
    gone = VpcRun(srv, subnet, [db_group], sys.executable, "-u", "-c", ECHO, "6379")
    lost = VpcRun(srv, subnet, [db_group], sys.executable, "-u", "-c", ECHO, "6379")
    try:
        gone.start()
        lost.start()
        # Released (detached and deleted) while in use: the link goes, the API says so.
        released = subprocess.run(
            lamina("vpc", "release", "--endpoint-url", srv.url, gone.interface()),
            capture_output=True,
            text=True,
            timeout=30,
            env=cli_env(),
        )
        assert released.returncode == 0, released.stderr
        assert gone.wait(15) == 1
        assert f"{gone.interface()} was deleted" in gone.stderr()
        assert not os.path.exists(f"/proc/{gone.child_pid}")  # its command was stopped
        # Its namespace lost while the server was down: the server makes a new one.
        srv.kill()
        published.unpublish(netns, lost.interface())
        servers.append(LaminaServer(srv.data_dir, port=srv.port, lambda_role=False))
        assert lost.wait(15) == 1
        assert "a new namespace" in lost.stderr()
        assert not os.path.exists(f"/proc/{lost.child_pid}")
    finally:
        gone.close()
        lost.close()
        assert servers[-1].stop() == 0
    assert published_mounts(srv.data_dir) == []


def test_vpc_run_gives_up_when_the_server_stays_down_and_says_how_to_free_its_interface(
    tmp_path: Path,
) -> None:
    srv = LaminaServer(tmp_path / "data", lambda_role=False)
    servers = [srv]
    subnet, db_group, _ = restart_net(client(srv, "ec2"))
    host = VpcRun(
        srv, subnet, [db_group], sys.executable, "-u", "-c", ECHO, "6379", options=("--reattach-timeout", "1")
    )
    try:
        host.start()
        eni = host.interface()
        assert srv.stop() == 0
        assert host.wait(15) == 1
        said = host.stderr()
        assert "was not re-attached within 1 s" in said, said
        assert f"free it with `lamina vpc release --endpoint-url {srv.url} {eni}`" in said, said
        assert not os.path.exists(f"/proc/{host.child_pid}")
        servers.append(LaminaServer(srv.data_dir, port=srv.port, lambda_role=False))
        released = subprocess.run(
            lamina("vpc", "release", "--endpoint-url", srv.url, eni),
            capture_output=True,
            text=True,
            timeout=30,
            env=cli_env(),
        )
        assert released.returncode == 0, released.stderr
        left = client(servers[-1], "ec2").describe_network_interfaces()["NetworkInterfaces"]
        assert eni not in {i["NetworkInterfaceId"] for i in left}
    finally:
        host.close()
        if servers[-1].proc.poll() is not None:  # failed while it was down: a start and stop sweeps
            servers.append(LaminaServer(srv.data_dir, port=srv.port, lambda_role=False))
        assert servers[-1].stop() == 0
    assert published_mounts(srv.data_dir) == []


# -- a Lambda function in the VPC ---------------------------------------------------------------------

REACH = """
import socket
def handler(event, context):
    out = {}
    for port in event["ports"]:
        try:
            with socket.create_connection((event["host"], port), timeout=1.0) as s:
                s.sendall(b"ping")
                out[str(port)] = s.recv(16).decode()
        except OSError as exc:
            out[str(port)] = type(exc).__name__
    return out
"""


def test_a_function_reaches_the_database_only_as_its_groups_allow(
    server: LaminaServer, ec2: Any, net: Net, hosts: dict[str, VpcRun]
) -> None:
    iam, lam = client(server, "iam"), client(server, read_timeout=60)
    iam.attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)

    def function(name: str, group: str) -> None:
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role="arn:aws:iam::000000000000:role/lambda-role",
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": REACH})},
            Timeout=10,
            VpcConfig={"SubnetIds": [net.a], "SecurityGroupIds": [group]},
        )
        lam.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
        )

    function("reach-fn", net.fn)
    function("reach-other", net.other)
    event = json.dumps({"host": DB, "ports": [6379, 7000]})
    allowed = json.loads(lam.invoke(FunctionName="reach-fn", Payload=event)["Payload"].read())
    assert allowed == {"6379": "ping", "7000": "TimeoutError"}  # sg-db allows 6379 from sg-fn only
    other = json.loads(lam.invoke(FunctionName="reach-other", Payload=event)["Payload"].read())
    assert other == {"6379": "TimeoutError", "7000": "TimeoutError"}
    # Nothing else: no route out of a VPC without a NAT gateway.
    outside = json.loads(
        lam.invoke(FunctionName="reach-fn", Payload=json.dumps({"host": "203.0.113.9", "ports": [80]}))[
            "Payload"
        ].read()
    )
    assert outside["80"] in ("TimeoutError", "OSError", "ConnectionRefusedError")
    for name in ("reach-fn", "reach-other"):
        lam.delete_function(FunctionName=name)


# Tells each client the address it came from.
WHO = r"""
import os, socket
s = socket.create_server(("0.0.0.0", 8000))
print("ready", os.getpid(), flush=True)
while True:
    c, peer = s.accept()
    c.sendall(peer[0].encode())
    c.close()
"""


def test_the_vpc_sees_the_shared_interface_address_and_cannot_call_in(
    server: LaminaServer, ec2: Any, net: Net, hosts: dict[str, VpcRun]
) -> None:
    iam, lam = client(server, "iam"), client(server, read_timeout=60)
    iam.attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
    ec2.authorize_security_group_ingress(GroupId=net.db, IpPermissions=[redis_from(net.fn, 8000)])
    who = VpcRun(server, net.b, [net.db], sys.executable, "-u", "-c", WHO, ip="10.77.2.20").start()
    try:
        code = make_zip(
            {
                "app.py": (
                    "import socket\n"
                    "def handler(event, context):\n"
                    "    with socket.create_connection(('10.77.2.20', 8000), timeout=2) as s:\n"
                    "        return s.recv(64).decode()\n"
                )
            }
        )
        lam.create_function(
            FunctionName="who-am-i",
            Runtime="python3.12",
            Role="arn:aws:iam::000000000000:role/lambda-role",
            Handler="app.handler",
            Code={"ZipFile": code},
            Timeout=10,
            VpcConfig={"SubnetIds": [net.a], "SecurityGroupIds": [net.fn]},
        )
        lam.get_waiter("function_active_v2").wait(
            FunctionName="who-am-i", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
        )
        seen = json.loads(lam.invoke(FunctionName="who-am-i", Payload=b"{}")["Payload"].read())
        hyperplane = [
            i
            for i in interfaces(ec2, net.vpc).values()
            if i["InterfaceType"] == "lambda"
            and i["SubnetId"] == net.a
            and [g["GroupId"] for g in i["Groups"]] == [net.fn]
        ]
        assert len(hyperplane) == 1
        assert seen == hyperplane[0]["PrivateIpAddress"]  # the VPC sees the shared interface
        # A second function with the same combination shares the interface and its address.
        lam.create_function(
            FunctionName="who-am-i-2",
            Runtime="python3.12",
            Role="arn:aws:iam::000000000000:role/lambda-role",
            Handler="app.handler",
            Code={"ZipFile": code},
            Timeout=10,
            VpcConfig={"SubnetIds": [net.a], "SecurityGroupIds": [net.fn]},
        )
        lam.get_waiter("function_active_v2").wait(
            FunctionName="who-am-i-2", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
        )
        assert json.loads(lam.invoke(FunctionName="who-am-i-2", Payload=b"{}")["Payload"].read()) == seen
        lam.delete_function(FunctionName="who-am-i-2")
        # Nothing in the VPC can open a connection to the function's environments: even with sg-fn
        # letting sg-other in on every port, the environment's Runtime API (9001) is unreachable.
        everything = {
            "IpProtocol": "tcp",
            "FromPort": 0,
            "ToPort": 65535,
            "UserIdGroupPairs": [{"GroupId": net.other}],
        }
        ec2.authorize_security_group_ingress(GroupId=net.fn, IpPermissions=[everything])
        try:
            assert hosts["other"].probe(seen, 9001) in ("dropped", "error 111", "error 113")
        finally:
            ec2.revoke_security_group_ingress(GroupId=net.fn, IpPermissions=[everything])
    finally:
        who.close()
        lam.delete_function(FunctionName="who-am-i")
