"""``lamina vpc run`` on a node that is not the VPC's home (docs/overlay.md, "lamina vpc run on
any node"): the VPC is homed on n1 (its first interface, the target, made there); ``lamina vpc
run`` through n2, on n2's host, gets a namespace of n2's joined over the VXLAN tunnel to its
interface at n1, published under n2's data directory; its command reaches the target as the
interface's address, and the target's security group (enforced at home) drops another port. Once
the command ends, nothing is left published on n2 and the interface is gone. The home hosts a
customer interface only for the account and VPC that own it, and only for a live node.

A test bed of its own (prefix ``lamina-vr``): another may be running."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wheelhouse import RUNTIMES_DIR

from lamina.domain import nodes as N
from lamina.domain.nodes import SIGNATURE_HEADER
from lamina.linux import NetNamespace
from lamina.services.cluster import SECRET_SETTING
from lamina.services.vpc_nodes import HOST_PATH
from lamina.store import open_database
from lamina.store.overlay import HomeStore
from lamina_testbed import Node, Testbed
from pg_cluster import binaries

pytestmark = [pytest.mark.privileged, pytest.mark.slow, pytest.mark.cluster]

if not (RUNTIMES_DIR / "python3.12" / "lamina-runtime.json").is_file():
    pytest.skip(f"no python3.12 runtime installed in {RUNTIMES_DIR} (make setup)", allow_module_level=True)
if binaries() is None:
    pytest.skip("PostgreSQL is not installed (make setup)", allow_module_level=True)

TARGET = "10.33.2.10"
ALLOWED, OTHER = 7100, 7101
PROBE = f"""
import socket
for port, wait in (({ALLOWED}, 20.0), ({OTHER}, 2.0)):
    s = socket.socket()
    s.settimeout(wait)
    try:
        s.connect(("{TARGET}", port))
        print(port, s.recv(64).decode(), flush=True)
    except socket.timeout:
        print(port, "dropped", flush=True)
    except OSError as e:
        print(port, "error", e.errno, flush=True)
    finally:
        s.close()
"""


class Who:
    """A TCP server in a namespace answering each connection with the peer's address."""

    def __init__(self, ns: NetNamespace, port: int) -> None:
        self.sock = ns.listen_tcp("0.0.0.0", port)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(f"target {peer[0]}".encode())

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture(scope="module")
def bed() -> Iterator[Testbed]:
    b = Testbed(prefix="lamina-vr", node_args=("--heartbeat-interval", "1"))
    try:
        with b.entered():
            yield b
    finally:
        b.stop()


def published(node: Node, eni: str) -> Path:
    return node.data_dir / "run" / "netns" / eni


def wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not in {timeout} s: {what}")


def cli(bed: Testbed, node: Node, *args: str) -> tuple[list[str], dict[str, str]]:
    """``lamina vpc ...`` on ``node``'s host (its network namespace), through that node."""
    command = [
        "nsenter",
        f"--net=/run/netns/{bed.netns(node.host)}",
        "--",
        sys.executable,
        "-m",
        "lamina.cli.main",
        "vpc",
        *args,
    ]
    env = {**bed.env, "AWS_MAX_ATTEMPTS": "1"}
    env.pop("AWS_PROFILE", None)
    return command, env


def vpc_run(bed: Testbed, node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    command, env = cli(bed, node, "run", "--endpoint-url", node.url, "--data-dir", str(node.data_dir), *args)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)


def test_vpc_run_on_a_node_that_is_not_the_home(bed: Testbed) -> None:
    n1, n2 = bed.nodes["n1"], bed.nodes["n2"]
    ec2 = bed.client("n1", "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.33.0.0/16")["Vpc"]["VpcId"]
    subnet_a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.33.1.0/24")["Subnet"]["SubnetId"]
    subnet_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.33.2.0/24")["Subnet"]["SubnetId"]
    sg_run, sg_db = (
        ec2.create_security_group(GroupName=f"{n}-{uuid.uuid4().hex[:6]}", Description=n, VpcId=vpc)[
            "GroupId"
        ]
        for n in ("run", "db")
    )
    ec2.authorize_security_group_ingress(
        GroupId=sg_db,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": ALLOWED,
                "ToPort": ALLOWED,
                "UserIdGroupPairs": [{"GroupId": sg_run}],
            }
        ],
    )
    target = ec2.create_network_interface(SubnetId=subnet_b, Groups=[sg_db], PrivateIpAddress=TARGET)[
        "NetworkInterface"
    ]["NetworkInterfaceId"]
    wait_for("the target published by n1, its home", lambda: published(n1, target).exists())
    db = open_database(bed.database)
    try:
        assert HomeStore(db).home(vpc) == "n1"
        secret = bytes.fromhex(db.setting(SECRET_SETTING, lambda: ""))
        # A signature names the receiving node's running process too.
        n1_instance = db.read(lambda c: c.execute("SELECT instance FROM nodes WHERE name='n1'").fetchone()[0])
    finally:
        db.close()
    target_ns = NetNamespace(os.open(published(n1, target), os.O_RDONLY | os.O_CLOEXEC), "target")
    servers = [Who(target_ns, ALLOWED), Who(target_ns, OTHER)]
    try:
        done = vpc_run(
            bed, n2, "--subnet", subnet_a, "--security-group", sg_run, "--", sys.executable, "-c", PROBE
        )
        assert done.returncode == 0, (done.stderr, n2.log())
        said = re.search(r"(eni-[0-9a-f]+) (10\.33\.1\.\d+) in ", done.stderr)
        assert said, done.stderr
        eni, address = said.groups()
        lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
        assert lines[str(ALLOWED)] == f"target {address}", done.stdout  # as the interface's address
        assert lines[str(OTHER)] == "dropped", done.stdout  # sg-db, enforced at home
        # Nothing left: the namespace n2 published, the interface.
        assert not published(n2, eni).exists()
        assert not published(n1, eni).exists() or wait_for(
            "the interface gone at home", lambda: not published(n1, eni).exists()
        )
        assert not [
            i
            for i in ec2.describe_network_interfaces()["NetworkInterfaces"]
            if i["NetworkInterfaceId"] == eni
        ]
    finally:
        for server in servers:
            server.close()
        target_ns.close()

    # The home hosts a customer interface only for its account and VPC, and for a live node.
    other_vpc = ec2.create_vpc(CidrBlock="10.34.0.0/16")["Vpc"]["VpcId"]

    def host(**over: str) -> int:
        doc = {
            "Account": "000000000000",
            "Region": "us-east-1",
            "VpcId": vpc,
            "NetworkInterfaceId": target,
            "Node": "n2",
            **over,
        }
        body = json.dumps(doc).encode()
        signature = N.sign(
            secret,
            target="n1",
            instance=n1_instance,
            path=HOST_PATH,
            timestamp=time.time(),
            nonce=uuid.uuid4().hex,
            body=body,
        )
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            n1.url + HOST_PATH,
            data=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert host(Account="111111111111") == 404
    assert host(VpcId=other_vpc) == 404
    assert host(Node="ghost") == 403


def test_a_killed_vpc_run_is_released_through_its_node(bed: Testbed, tmp_path: Path) -> None:
    """``lamina vpc run`` SIGKILLed on n2: its namespace stays published there (its command lives
    on) until ``lamina vpc release`` through n2 releases the link and deletes the interface."""
    n2 = bed.nodes["n2"]
    ec2 = bed.client("n1", "ec2")
    vpc = next(v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == "10.33.0.0/16")
    subnet = next(
        s["SubnetId"]
        for s in ec2.describe_subnets()["Subnets"]
        if s["VpcId"] == vpc and s["CidrBlock"] == "10.33.1.0/24"
    )
    pid_file = tmp_path / "pid"
    command, env = cli(
        bed,
        n2,
        "run",
        "--endpoint-url",
        n2.url,
        "--data-dir",
        str(n2.data_dir),
        "--subnet",
        subnet,
        "--",
        sys.executable,
        "-c",
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)",
    )
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    sleeper = 0
    try:
        wait_for("the command started", lambda: pid_file.exists() and pid_file.read_text())
        sleeper = int(pid_file.read_text())
        found = [p for p in os.listdir(n2.data_dir / "run" / "netns") if p.startswith("eni-")]
        assert len(found) == 1, found
        (eni,) = found
        proc.kill()
        proc.wait(10)
        assert published(n2, eni).exists()
        released, env = cli(bed, n2, "release", "--endpoint-url", n2.url, eni)
        done = subprocess.run(released, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert not published(n2, eni).exists()
        assert not [
            i
            for i in ec2.describe_network_interfaces()["NetworkInterfaces"]
            if i["NetworkInterfaceId"] == eni
        ]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if sleeper:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sleeper, signal.SIGKILL)
