"""VPCs across nodes on the test bed (docs/overlay.md, tests/lamina_testbed.py): a VPC is homed on
n1 (its first interface made there); a function of that VPC created and invoked through n2 runs on
n2 and reaches the VPC through its Hyperplane interface, built on n1 only, over the VXLAN tunnel
between the nodes' namespaces; the security group of the target, enforced at home, lets the allowed
port through and drops another; a function of a second VPC with the same CIDR (homed on n3, run on
n2 too) does not reach the first VPC's target.

The target is a customer network interface made through n1 (as ``lamina vpc run`` makes one):
this test listens in its namespace, which n1 publishes under its data directory."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testzips import make_zip
from wheelhouse import RUNTIMES_DIR

from lamina.linux import NetNamespace
from lamina_testbed import Testbed
from pg_cluster import binaries

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

RUNTIME = "python3.12"
if not (RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").is_file():
    pytest.skip(f"no {RUNTIME} runtime installed in {RUNTIMES_DIR} (make setup)", allow_module_level=True)
if binaries() is None:
    pytest.skip("PostgreSQL is not installed (make setup)", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
TARGET = "10.31.2.10"
ALLOWED, OTHER = 7000, 7001
CODE = """import socket
def handler(event, context):
    out = {}
    for port, wait in event["checks"]:
        s = socket.socket()
        s.settimeout(wait)
        try:
            s.connect((event["host"], port))
            out[str(port)] = s.recv(64).decode()
        except socket.timeout:
            out[str(port)] = "dropped"
        except OSError as e:
            out[str(port)] = f"error {e.errno}"
        finally:
            s.close()
    return out
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
    b = Testbed(node_args=("--max-environments", "3", "--idle-timeout", "120", "--heartbeat-interval", "1"))
    try:
        with b.entered():
            yield b
    finally:
        b.stop()


def make_vpc(ec2: Any, *, groups: bool) -> dict[str, str]:
    """10.31.0.0/16 with subnets a (10.31.1.0/24) and b (10.31.2.0/24); with ``groups``: sg-fn and
    sg-db (tcp ALLOWED from sg-fn only), else one group allowing nothing in."""
    vpc = ec2.create_vpc(CidrBlock="10.31.0.0/16")["Vpc"]["VpcId"]
    ids = {"vpc": vpc}
    for name, n in (("a", 1), ("b", 2)):
        ids[name] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.31.{n}.0/24")["Subnet"]["SubnetId"]
    for name in ("fn", "db") if groups else ("fn",):
        ids[name] = ec2.create_security_group(
            GroupName=f"{name}-{uuid.uuid4().hex[:6]}", Description=name, VpcId=vpc
        )["GroupId"]
    if groups:
        ec2.authorize_security_group_ingress(
            GroupId=ids["db"],
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": ALLOWED,
                    "ToPort": ALLOWED,
                    "UserIdGroupPairs": [{"GroupId": ids["fn"]}],
                }
            ],
        )
    return ids


def published(node_dir: Path, eni: str) -> Path:
    return node_dir / "run" / "netns" / eni


def wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not in {timeout} s: {what}")


def create_function(lam: Any, name: str, ids: dict[str, str]) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": make_zip({"index.py": CODE})},
        Timeout=30,
        VpcConfig={"SubnetIds": [ids["a"]], "SecurityGroupIds": [ids["fn"]]},
    )
    wait_for(
        f"{name} active",
        lambda: lam.get_function_configuration(FunctionName=name)["State"] in ("Active", "Failed"),
    )
    config = lam.get_function_configuration(FunctionName=name)
    assert config["State"] == "Active", config


def invoke(lam: Any, name: str, checks: list[tuple[int, float]]) -> dict[str, str]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps({"host": TARGET, "checks": checks}).encode())
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, body
    return dict(body)


def test_a_function_on_another_node_reaches_its_vpc_through_the_home(bed: Testbed) -> None:
    n1, n2, n3 = (bed.nodes[h] for h in ("n1", "n2", "n3"))
    bed.client("n1", "iam").attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
    ec2 = {h: bed.client(h, "ec2") for h in ("n1", "n3")}
    lam = {h: bed.client(h, read_timeout=90) for h in ("n2", "n3")}

    # The VPC's first interface, the target, is made through n1: n1 is its home.
    one = make_vpc(ec2["n1"], groups=True)
    target_eni = ec2["n1"].create_network_interface(
        SubnetId=one["b"], Groups=[one["db"]], PrivateIpAddress=TARGET
    )["NetworkInterface"]["NetworkInterfaceId"]
    path = wait_for(
        "the target's namespace published by n1", lambda: published(n1.data_dir, target_eni).exists()
    )
    assert path
    target_ns = NetNamespace(
        os.open(published(n1.data_dir, target_eni), os.O_RDONLY | os.O_CLOEXEC), "target"
    )
    servers = [Who(target_ns, ALLOWED), Who(target_ns, OTHER)]
    try:
        # A function of the VPC made and invoked through n2: its interface is built on n1 only.
        create_function(lam["n2"], "vpc-b", one)
        eni_b = wait_for(
            "the function's interface",
            lambda: [
                i["NetworkInterfaceId"]
                for i in ec2["n1"].describe_network_interfaces()["NetworkInterfaces"]
                if i["SubnetId"] == one["a"]
            ],
        )[0]
        got = invoke(lam["n2"], "vpc-b", [(ALLOWED, 20.0), (OTHER, 1.0)])
        assert got[str(ALLOWED)].startswith("target 10.31.1."), got  # as the interface's address
        assert got[str(OTHER)] == "dropped", got  # sg-db, enforced at home
        assert published(n1.data_dir, eni_b).exists()  # the interface is n1's ...
        assert not published(n2.data_dir, eni_b).exists()  # ... not n2's, where the function ran
        assert not published(n2.data_dir, target_eni).exists()

        # A second VPC, same CIDR, homed on n3 (its first interface made there), its function run
        # on n2 as well: the first VPC's target is not there.
        two = make_vpc(ec2["n3"], groups=False)
        create_function(lam["n3"], "vpc-c", two)
        got = invoke(lam["n2"], "vpc-c", [(ALLOWED, 1.0)])
        assert not got[str(ALLOWED)].startswith("target"), got
        # And the first VPC's function still works (both tunnels on n2 at once).
        again = invoke(lam["n2"], "vpc-b", [(ALLOWED, 20.0)])
        assert again[str(ALLOWED)].startswith("target 10.31.1."), again
    finally:
        for server in servers:
            server.close()
        target_ns.close()
