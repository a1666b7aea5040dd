"""A function's own code attacking the VPC data plane and its resolver, against a real server as
root (real invokes): another VPC's resolver and hosts are unreachable (same account, and another
account's VPC with the very same CIDR); a function without a VPC cannot reach any VPC's resolver;
function code cannot forge packets (no raw sockets); names of the host's networks are never
asked of the host's resolver; a response sent to the resolver goes unanswered and leaves nothing
in the server's log; a flood of queries from one function leaves the resolver answering another
VPC and the API serving.

The internet: namespace ``lmtest-<random>`` (``test_net_uplink.Internet``), the server's uplink;
the host's resolver: ``test_vpc_dns.InternetResolver`` on the test's loopback (``--dns-upstream``).
VPC A (account 000000000000): 10.83.0.0/16, a host at 10.83.1.20. VPC B (same account):
10.84.0.0/16, a host at 10.84.1.20. VPC C (account 111111111111): 10.83.0.0/16 too, a host at
10.83.1.20 too.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_server import LaminaServer, client, create_lambda_role
from test_net_uplink import Internet, open_internet, uplink_server
from test_vpc_dns import HAS_RUNTIME, PROBE, RUNTIME, VPC_POLICY, InternetResolver, make_vpc
from test_vpc_run import ECHO
from testzips import make_zip
from vpc_run import VpcRun

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(not HAS_RUNTIME, reason=f"{RUNTIME} is not installed (make setup)"),
]

ALICE = {"access_key_id": "AKIDALICE111", "secret_access_key": "alice-secret", "account_id": "111111111111"}
HOST_A, HOST_B = "10.83.1.20", "10.84.1.20"

# More steps for test_vpc_dns's probe:
#   ["raw"]                       -> whether a raw socket could be made (the errno name if not)
#   ["response", server]          -> what the resolver sent back to a DNS *response* ("timeout")
#   ["flood", server, seconds]    -> queries sent in that time (UDP, not waiting for answers)
#   ["query-retrying", server, name] -> "query" tried up to three times
ATTACK = r"""
import errno

def attack(kind, *args):
    if kind == "raw":
        try:
            socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP).close()
            return "made"
        except OSError as exc:
            return errno.errorcode.get(exc.errno, str(exc.errno))
    if kind == "response":
        query = dns.message.make_query("ip-10-83-1-20.ec2.internal", "A")
        wire = dns.message.make_response(query).to_wire()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            s.sendto(wire, (args[0], 53))
            return s.recv(4096).hex()
        except TimeoutError:
            return "timeout"
        finally:
            s.close()
    if kind == "flood":
        wire = dns.message.make_query("flood.example.com", "A").to_wire()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        sent, deadline = 0, time.monotonic() + args[1]
        while time.monotonic() < deadline:
            try:
                s.sendto(wire, (args[0], 53))
                sent += 1
            except OSError:
                pass
        s.close()
        return sent
    if kind == "query-retrying":  # a stub resolver's attempts: one 0.5 s timeout is no verdict on a busy host
        for _ in range(3):
            answer = step("query", *args)
            if answer != "timeout":
                return answer
        return "timeout"
    return step(kind, *args)

def handler(event, context):
    return [attack(*s) for s in event["steps"]]
"""


def function_zip() -> bytes:
    from pathlib import Path

    import dns

    root = Path(dns.__file__).parent
    files = {"app.py": PROBE.replace("def handler(event, context):", "def _unused(event, context):") + ATTACK}
    for path in root.rglob("*.py"):
        files[f"dns/{path.relative_to(root)}"] = path.read_text()
    return make_zip(files)


@pytest.fixture(scope="module")
def internet() -> Iterator[Internet]:
    yield from open_internet()


@pytest.fixture(scope="module")
def resolver() -> Iterator[InternetResolver]:
    r = InternetResolver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, internet: Internet, resolver: InternetResolver
) -> Iterator[LaminaServer]:
    yield from uplink_server(
        tmp_path_factory,
        internet,
        "lamina-dp-attacks",
        "--dns-upstream",
        f"127.0.0.1:{resolver.port}",
        accounts=[
            {"access_key_id": "test", "secret_access_key": "test", "account_id": "000000000000"},
            ALICE,
        ],
    )


@pytest.fixture(scope="module")
def accounts(server: LaminaServer) -> dict[str, dict[str, Any]]:
    """Each account's EC2 and Lambda clients (its Lambda role allowed VPC interfaces)."""
    out: dict[str, dict[str, Any]] = {}
    for name, key, secret in (
        ("me", "test", "test"),
        ("other", ALICE["access_key_id"], ALICE["secret_access_key"]),
    ):
        if name == "other":
            create_lambda_role(server, key, secret)
        client(server, "iam", key=key, secret=secret).attach_role_policy(
            RoleName="lambda-role", PolicyArn=VPC_POLICY
        )
        out[name] = {
            "ec2": client(server, "ec2", key=key, secret=secret),
            "lam": client(server, key=key, secret=secret, read_timeout=60),
        }
    return out


@pytest.fixture(scope="module")
def vpcs(server: LaminaServer, accounts: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    me, other = accounts["me"]["ec2"], accounts["other"]["ec2"]
    a = make_vpc(me, "10.83")
    b = make_vpc(me, "10.84")
    c = make_vpc(other, "10.83")
    hosts = [
        VpcRun(server, a[1], [a[2]], sys.executable, "-u", "-c", ECHO, "6379", ip=HOST_A),
        VpcRun(server, b[1], [b[2]], sys.executable, "-u", "-c", ECHO, "6379", ip=HOST_B),
    ]
    # The other account's VPC has an interface at the very same address (no process behind it).
    other.create_network_interface(SubnetId=c[1], Groups=[c[2]], PrivateIpAddress=HOST_A)
    try:
        for host in hosts:
            host.start()
        yield {"a": a, "b": b, "c": c}
    finally:
        for host in hosts:
            host.close()


def create(lam: Any, name: str, vpc: tuple[str, str, str] | None, account: str = "000000000000") -> None:
    kwargs: dict[str, Any] = (
        {"VpcConfig": {"SubnetIds": [vpc[1]], "SecurityGroupIds": [vpc[2]]}} if vpc else {}
    )
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=f"arn:aws:iam::{account}:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": function_zip()},
        Timeout=30,
        **kwargs,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )


def run(lam: Any, name: str, *steps: list[Any]) -> list[Any]:
    out = lam.invoke(FunctionName=name, Payload=json.dumps({"steps": list(steps)}))
    assert "FunctionError" not in out, out["Payload"].read()
    result: list[Any] = json.loads(out["Payload"].read())
    return result


@pytest.fixture(scope="module")
def functions(accounts: dict[str, dict[str, Any]], vpcs: dict[str, Any]) -> Iterator[dict[str, str]]:
    me = accounts["me"]["lam"]
    made = {"in_a": "atk-in-a", "in_b": "atk-in-b", "plain": "atk-plain"}
    create(me, made["in_a"], vpcs["a"])
    create(me, made["in_b"], vpcs["b"])
    create(me, made["plain"], None)
    other = accounts["other"]["lam"]
    create(other, "atk-in-c", vpcs["c"], ALICE["account_id"])
    made["in_c"] = "atk-in-c"
    try:
        yield made
    finally:
        for name in ("in_a", "in_b", "plain"):
            me.delete_function(FunctionName=made[name])
        other.delete_function(FunctionName="atk-in-c")


def test_other_vpcs_resolvers_and_hosts_are_out_of_reach(
    accounts: dict[str, dict[str, Any]], functions: dict[str, str]
) -> None:
    lam = accounts["me"]["lam"]
    own, link_local, b_resolver, b_name, b_host, a_host = run(
        lam,
        functions["in_a"],
        ["query", "10.83.0.2", "ip-10-83-1-20.ec2.internal"],
        ["query", "169.254.169.253", "ip-10-84-1-20.ec2.internal"],
        ["query", "10.84.0.2", "ip-10-84-1-20.ec2.internal"],
        ["query", "10.83.0.2", "ip-10-84-1-20.ec2.internal"],
        ["connect", HOST_B, 6379],
        ["connect", HOST_A, 6379],
    )
    assert own == ["NOERROR", [HOST_A]]
    assert link_local == ["NXDOMAIN", []]  # the link-local resolver is the VPC's own
    assert b_resolver == "timeout"  # no route to another VPC, its resolver included
    assert b_name == ["NXDOMAIN", []]
    assert b_host in ("TimeoutError", "OSError")
    assert a_host == "ping"  # the host in my VPC, not the other account's at the same address
    # The other account's function, in its VPC of the same CIDR: its own resolver knows its own
    # interface at that address; my host, my resolver and my names are not its to reach.
    theirs, host, resolver = run(
        accounts["other"]["lam"],
        functions["in_c"],
        ["query", "10.83.0.2", "ip-10-83-1-20.ec2.internal"],
        ["connect", HOST_A, 6379],
        ["query", "10.83.0.2", "ip-10-84-1-20.ec2.internal"],
    )
    assert theirs == ["NOERROR", [HOST_A]]  # answered by its own VPC's resolver (its own interface)
    assert host in ("TimeoutError", "OSError", "ConnectionRefusedError")  # no process: not my host's "ping"
    assert resolver == ["NXDOMAIN", []]


def test_a_function_without_a_vpc_reaches_no_vpcs_resolver(
    accounts: dict[str, dict[str, Any]], functions: dict[str, str]
) -> None:
    lam = accounts["me"]["lam"]
    a_resolver, c_host, link_local = run(
        lam,
        functions["plain"],
        ["query", "10.83.0.2", "ip-10-83-1-20.ec2.internal"],
        ["connect", HOST_A, 6379],
        ["query", "169.254.169.253", "ip-10-83-1-20.ec2.internal"],
    )
    assert a_resolver == "timeout"
    assert c_host in ("TimeoutError", "OSError")
    assert link_local == ["NXDOMAIN", []]


def test_function_code_cannot_forge_packets(
    accounts: dict[str, dict[str, Any]], functions: dict[str, str]
) -> None:
    lam = accounts["me"]["lam"]
    for name in (functions["in_a"], functions["plain"]):
        [raw] = run(lam, name, ["raw"])
        assert raw == "EPERM", raw


def test_the_hosts_names_and_responses(
    server: LaminaServer,
    accounts: dict[str, dict[str, Any]],
    functions: dict[str, str],
    resolver: InternetResolver,
) -> None:
    lam = accounts["me"]["lam"]
    asked = len(resolver.asked)
    for name in (functions["in_a"], functions["plain"]):
        resolver_address = "10.83.0.2" if name == functions["in_a"] else "169.254.169.253"
        answers = run(
            lam,
            name,
            ["query", resolver_address, "localhost"],
            ["query", resolver_address, "_gateway"],
            ["query", resolver_address, "nas.lan"],
            ["query", resolver_address, "printer.local"],
            ["response", resolver_address],
            ["query", resolver_address, "www.example.com"],
        )
        assert answers[:4] == [["NXDOMAIN", []]] * 4, answers
        assert answers[4] == "timeout"
        assert answers[5][0] == "NOERROR"
    assert resolver.asked[asked:] == ["www.example.com.", "www.example.com."]
    assert "Traceback" not in server.log_path.read_text(errors="replace")


def test_a_flood_from_one_vpc_leaves_others_answered(
    accounts: dict[str, dict[str, Any]], functions: dict[str, str]
) -> None:
    import threading

    me = accounts["me"]
    results: dict[str, Any] = {}

    def flood() -> None:
        results["flood"] = run(me["lam"], functions["in_a"], ["flood", "10.83.0.2", 4.0])

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        time.sleep(1.5)
        started = time.monotonic()
        answers = run(
            me["lam"], functions["in_b"], *[["query-retrying", "10.84.0.2", "ip-10-84-1-20.ec2.internal"]] * 5
        )
        assert answers == [["NOERROR", [HOST_B]]] * 5
        assert me["ec2"].describe_vpcs()["Vpcs"]
        assert time.monotonic() - started < 10
    finally:
        flooder.join(30)
    assert results["flood"][0] > 1000  # it did flood
    # And the flooding VPC's own resolver answers again once the flood is over (retrying as a stub
    # resolver does: the flood's last second may still hold its source's budget).
    assert run(
        me["lam"], functions["in_a"], ["query-retrying", "10.83.0.2", "ip-10-83-1-20.ec2.internal"]
    ) == [["NOERROR", [HOST_A]]]


# A vpc run host that is root in its namespace: gives its interface more addresses and connects
# from them. Reads "source host port" lines; answers ok / dropped / error NAME.
SPOOF = r"""
import os, socket, subprocess, sys
device = next(name for _, name in socket.if_nameindex() if name != "lo")
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    source, host, port = line.split()
    added = subprocess.run(["ip", "address", "add", source + "/32", "dev", device], capture_output=True, text=True) if source != "-" else None
    if added is not None and added.returncode:
        print("no address", device, added.stderr.strip().replace("\n", " "), flush=True)
        continue
    s = socket.socket()
    s.settimeout(1.5)
    try:
        if source != "-":
            s.bind((source, 0))
        s.connect((host, int(port)))
        s.sendall(b"ping")
        print("ok" if s.recv(4) == b"ping" else "no reply", flush=True)
    except TimeoutError:
        print("dropped", flush=True)
    except OSError as exc:
        print("error", type(exc).__name__, flush=True)
    finally:
        s.close()
"""


def test_a_host_cannot_send_as_another_address(server: LaminaServer, vpcs: dict[str, Any]) -> None:
    """EC2's source/destination check: what a host sends as an address that is not its
    interface's (a free one, another interface's, another VPC's, the resolver's) is dropped by
    the router, whatever the security groups allow."""
    _, subnet, group = vpcs["a"]
    host = VpcRun(server, subnet, [group], sys.executable, "-u", "-c", SPOOF, ip="10.83.1.30")
    try:
        host.start()
        assert host.ask(f"- {HOST_A} 6379\n", 15) == "ok"
        for source in ("10.83.1.99", "10.84.1.20", "10.83.0.2", "169.254.169.253", "198.51.100.7"):
            assert host.ask(f"{source} {HOST_A} 6379\n", 15) == "dropped", source
        assert host.ask(f"- {HOST_A} 6379\n", 15) == "ok"
    finally:
        host.close()


# Asks lamina's vpc-run route "Where" with the function's own credentials, as lamina vpc run does.
WHERE = r"""
import json, os, ssl, urllib.error, urllib.request
import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

def handler(event, context):
    url = (os.environ.get("AWS_ENDPOINT_URL_EC2") or os.environ["AWS_ENDPOINT_URL"]).rstrip("/") + "/_lamina/vpc-run"
    region = os.environ["AWS_REGION"]
    body = json.dumps({"Action": "Where", "Region": region}).encode()
    request = AWSRequest("POST", url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(boto3.Session().get_credentials(), "ec2", region).add_auth(request)
    bundle = os.environ.get("AWS_CA_BUNDLE")
    context_ = ssl.create_default_context(cafile=bundle) if bundle else None
    http = urllib.request.Request(url, data=body, headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(http, timeout=10, context=context_) as answer:
            return [answer.status, json.loads(answer.read())]
    except urllib.error.HTTPError as exc:
        return [exc.code, json.loads(exc.read())]
"""


def test_function_code_is_not_told_where_the_host_keeps_namespaces(
    server: LaminaServer, accounts: dict[str, dict[str, Any]]
) -> None:
    """Functions reach lamina's API through its relays, whose connections come from the host's
    loopback: the vpc-run route must still not count them as callers on the server's host."""
    lam = accounts["me"]["lam"]
    lam.create_function(
        FunctionName="atk-where",
        Runtime=RUNTIME,
        Role="arn:aws:iam::000000000000:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": WHERE})},
        Timeout=30,
    )
    try:
        lam.get_waiter("function_active_v2").wait(
            FunctionName="atk-where", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
        )
        out = lam.invoke(FunctionName="atk-where", Payload=b"{}")
        status, answer = json.loads(out["Payload"].read())
        assert "FunctionError" not in out, answer
        assert status == 200, answer  # authorized (ec2:DescribeNetworkInterfaces), and told nothing
        assert answer == {"NetnsDir": None}, answer
    finally:
        lam.delete_function(FunctionName="atk-where")
    # lamina vpc run, on the host, is still told.
    from lamina.cli.awsclient import signed_post

    status, answer = signed_post(
        server.url, "us-east-1", "ec2", "/_lamina/vpc-run", {"Action": "Where"}, ("test", "test")
    )
    assert (status, answer) == (200, {"NetnsDir": str(server.data_dir / "run" / "netns")})
