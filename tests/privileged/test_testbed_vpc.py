"""VPCs across nodes on the test bed (docs/overlay.md, tests/lamina_testbed.py): a VPC is homed on
n1 (its first interface made there); a function of that VPC created and invoked through n2 runs on
n2 and reaches the VPC through its Hyperplane interface, built on n1 only, over the VXLAN tunnel
between the nodes' namespaces; the security group of the target, enforced at home, lets the allowed
port through and drops another, and a rule added through n2 is in force at home after a heartbeat;
a function of a second VPC with the same CIDR (homed on n3, run on n2 too) does not reach the first
VPC's target. The node-to-node overlay requests are refused unless signed and true; once n1 is
killed, the VPC is re-homed on n2 from the database.

The target is a customer network interface made through n1 (as ``lamina vpc run`` makes one):
this test listens in its namespace, which n1 publishes under its data directory."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testzips import make_zip
from wheelhouse import RUNTIMES_DIR

from lamina.domain import nodes as N
from lamina.domain.nodes import SIGNATURE_HEADER
from lamina.domain.overlay import RemoteLink
from lamina.linux import NetNamespace, cgroups
from lamina.net.published import unpublish
from lamina.runtime.sizing import cgroup_parent
from lamina.services.cluster import SECRET_SETTING
from lamina.services.vpc_nodes import HOST_PATH, RELEASE_PATH
from lamina.store import open_database
from lamina.store.overlay import HomeStore
from lamina_testbed import Node, Testbed
from pg_cluster import binaries

pytestmark = [pytest.mark.privileged, pytest.mark.slow, pytest.mark.cluster]

RUNTIME = "python3.12"
if not (RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").is_file():
    pytest.skip(f"no {RUNTIME} runtime installed in {RUNTIMES_DIR} (make setup)", allow_module_level=True)
if binaries() is None:
    pytest.skip("PostgreSQL is not installed (make setup)", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
TARGET = "10.31.2.10"
ALLOWED, OTHER, NEVER = 7000, 7001, 7002
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


def environments(node: Node) -> set[str]:
    """The node's environments' cgroups (each node has a parent of its own)."""
    parent = cgroup_parent(node.data_dir)
    found: set[str] = set()
    for root in cgroups.layout().hierarchy_roots():
        if (root / parent).is_dir():
            found |= {
                c.name for c in (root / parent).iterdir() if c.is_dir() and c.name != cgroups.FREEZE_ANCHOR
            }
    return found


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
    ec2 = {h: bed.client(h, "ec2") for h in ("n1", "n2", "n3")}
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
        assert environments(n2) and not environments(n1)  # it ran on n2 ...
        assert published(n1.data_dir, eni_b).exists()  # ... the interface is n1's ...
        assert not published(n2.data_dir, eni_b).exists()  # ... not n2's, where the function ran
        assert not published(n2.data_dir, target_eni).exists()
        # A rule added through n2 reaches the home, n1, at a heartbeat (it reads its VPCs back).
        ec2["n2"].authorize_security_group_ingress(
            GroupId=one["db"],
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": OTHER,
                    "ToPort": OTHER,
                    "UserIdGroupPairs": [{"GroupId": one["fn"]}],
                }
            ],
        )
        wait_for(
            "the new rule in force at home",
            lambda: invoke(lam["n2"], "vpc-b", [(OTHER, 1.0)])[str(OTHER)].startswith("target"),
        )

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


def node_post(node: Node, path: str, body: bytes, signature: str | None) -> tuple[int, bytes]:
    """POST to a node-to-node path (from the client host of the bed)."""
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    request = urllib.request.Request(node.url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_overlay_requests_are_refused_unless_signed_and_true(bed: Testbed) -> None:
    """Only a holder of the cluster secret asks a home to host a link, and only for a live node,
    an interface of the VPC named, of a VPC homed there; a release of a handle it does not hold
    changes nothing."""
    n1 = bed.nodes["n1"]
    db = open_database(bed.database)
    try:
        secret = bytes.fromhex(db.setting(SECRET_SETTING, lambda: ""))
        # A signature names the receiving node's running process too.
        instances = dict(db.read(lambda c: c.execute("SELECT name, instance FROM nodes").fetchall()))
        homes = HomeStore(db)
        ec2 = bed.client("n1", "ec2")
        vpcs = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == "10.31.0.0/16"]
        one = next(v for v in vpcs if homes.home(v) == "n1")  # the first test's
        other = next(v for v in vpcs if homes.home(v) == "n3")
    finally:
        db.close()
    enis = ec2.describe_network_interfaces()["NetworkInterfaces"]
    lambda_eni = next(
        i["NetworkInterfaceId"] for i in enis if i["VpcId"] == one and i.get("InterfaceType") == "lambda"
    )

    def request(**over: str) -> bytes:
        doc = {
            "Account": "000000000000",
            "Region": "us-east-1",
            "VpcId": one,
            "NetworkInterfaceId": lambda_eni,
            "Node": "n2",
        }
        doc.update(over)
        return json.dumps(doc).encode()

    def signed(path: str, body: bytes, target: str = "n1") -> str:
        return N.sign(
            secret,
            target=target,
            instance=instances[target],
            path=path,
            timestamp=time.time(),
            nonce=uuid.uuid4().hex,
            body=body,
        )

    body = request()
    assert node_post(n1, HOST_PATH, body, None)[0] == 403  # unsigned
    assert node_post(n1, HOST_PATH, body, signed(HOST_PATH, body, target="n3"))[0] == 403  # for another node
    assert node_post(n1, HOST_PATH, body, signed(HOST_PATH, b"{}"))[0] == 403  # another body
    forged = N.sign(b"x" * 32, target="n1", path=HOST_PATH, timestamp=time.time(), nonce="n", body=body)
    assert node_post(n1, HOST_PATH, body, forged)[0] == 403
    for bad, status in (
        (request(Node="ghost"), 403),  # no such live node
        (request(Node="n1"), 403),  # itself
        (request(VpcId=other), 404),  # the interface is not that VPC's
        (request(NetworkInterfaceId="eni-0123456789abcdef0"), 404),
        (request(Account="111111111111"), 404),
        (request(VpcId="vpc-../../x"), 400),
        (json.dumps({"Node": "n2"}).encode(), 400),
        (json.dumps([1]).encode(), 400),
        (b"\xff", 400),
    ):
        assert node_post(n1, HOST_PATH, bad, signed(HOST_PATH, bad))[0] == status, bad
    # n3 is live but not the VPC's home.
    assert node_post(bed.nodes["n3"], HOST_PATH, body, signed(HOST_PATH, body, target="n3"))[0] == 409
    release = json.dumps({"Handle": "0" * 32, "Node": "n2"}).encode()
    assert node_post(n1, RELEASE_PATH, release, signed(RELEASE_PATH, release)) == (200, b"{}")
    # A good request is served once (a replay is refused), and its link is released.
    status, answer = node_post(n1, HOST_PATH, body, sig := signed(HOST_PATH, body))
    assert status == 200, answer
    link = RemoteLink.from_json(json.loads(answer)["Link"])
    assert str(link.home) == "10.250.21.11"
    assert node_post(n1, HOST_PATH, body, sig)[0] == 403
    done = json.dumps({"Handle": json.loads(answer)["Handle"], "Node": "n2"}).encode()
    assert node_post(n1, RELEASE_PATH, done, signed(RELEASE_PATH, done)) == (200, b"{}")


def test_a_vpc_whose_home_died_is_rehomed_where_it_is_needed(bed: Testbed) -> None:
    """n1, the first VPC's home, is killed: n2's environment joined through it is cut (it takes no
    more invocations); the next invocation through n2 takes the VPC over: its interfaces are built
    on n2 from the database, and the function reaches the target there (its security group with
    it, as stored). Last in this module: n1 stays dead."""
    n1, n2 = bed.nodes["n1"], bed.nodes["n2"]
    ec2 = bed.client("n2", "ec2")
    lam = bed.client("n2", read_timeout=90)
    target_eni = next(
        i["NetworkInterfaceId"]
        for i in ec2.describe_network_interfaces()["NetworkInterfaces"]
        if i.get("PrivateIpAddress") == TARGET and i.get("InterfaceType") == "interface"
    )
    n1.kill()
    try:
        before = environments(n2)

        # Dead after 3 missed heartbeats (1 s each here); the environment on n2 is cut then.
        def rehomed() -> bool:
            if published(n2.data_dir, target_eni).exists():
                return True
            invoke(lam, "vpc-b", [(ALLOWED, 2.0)])  # an environment attaching moves the home
            return False

        wait_for("the VPC re-homed on n2", rehomed, timeout=60.0)
        db = open_database(bed.database)
        try:
            vpc_id = ec2.describe_network_interfaces(NetworkInterfaceIds=[target_eni])["NetworkInterfaces"][
                0
            ]["VpcId"]
            assert HomeStore(db).home(vpc_id) == "n2"
        finally:
            db.close()
        target_ns = NetNamespace(
            os.open(published(n2.data_dir, target_eni), os.O_RDONLY | os.O_CLOEXEC), "target"
        )
        servers = [Who(target_ns, port) for port in (ALLOWED, OTHER, NEVER)]
        try:
            # The security group as the database has it, the rule added in the first test too.
            got = invoke(lam, "vpc-b", [(ALLOWED, 20.0), (OTHER, 20.0), (NEVER, 1.0)])
            assert got[str(ALLOWED)].startswith("target 10.31.1."), got
            assert got[str(OTHER)].startswith("target 10.31.1."), got
            assert got[str(NEVER)] == "dropped", got
            assert environments(n2) - before  # a new environment: the cut one was not reused
        finally:
            for server in servers:
                server.close()
            target_ns.close()
    finally:
        # What the killed n1 left published (bind mounts of namespaces) goes with it.
        netns = n1.data_dir / "run" / "netns"
        for entry in list(netns.iterdir()) if netns.is_dir() else []:
            unpublish(netns, entry.name)
