"""DNS as the Amazon-provided resolver, against a real server as root: functions (real invokes)
resolve ``lamina vpc run`` hosts' private DNS names and connect to them by name, get lamina's
/etc/resolv.conf and /etc/hosts, fail fast on unknown names, resolve public names without a way
out (and still cannot reach them), and never see another VPC's names; with ``enableDnsSupport``
off nothing answers.

The internet: namespace ``lmtest-<random>`` (``test_net_uplink.Internet``: 198.51.100.7 answers
TCP port 7), the server's uplink. Its "internet resolver" is a dnspython server on the test's own
loopback (``--dns-upstream 127.0.0.1:PORT``): www.example.com is 198.51.100.7, anything else
NXDOMAIN.
The VPC: 10.81.0.0/16, hostnames on; subnet 10.81.1.0/24 (functions, the db at 10.81.1.20 under
``lamina vpc run`` answering TCP 6379). The other VPC: 10.82.0.0/16, hostnames on, a host at
10.82.1.20. No internet gateway, no NAT: nothing leaves either VPC.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from lamina_server import LaminaServer, client
from test_net_uplink import Internet, open_internet, uplink_server
from test_vpc_run import ECHO
from testzips import make_zip
from vpc_run import VpcRun

RUNTIME = "python3.12"
HAS_RUNTIME = (Path(sys.prefix) / "lamina-runtimes" / RUNTIME / "lamina-runtime.json").is_file()
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
DB, OTHER_HOST = "10.81.1.20", "10.82.1.20"
PUBLIC_NAME, PUBLIC_ADDRESS = "www.example.com", "198.51.100.7"

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(not HAS_RUNTIME, reason=f"{RUNTIME} is not installed (make setup)"),
]

# The function: runs a list of steps, each answered in order.
#   ["resolve", name]          -> addresses (getaddrinfo), or the error, and the seconds it took
#   ["reverse", address]       -> the name (gethostbyaddr) or the error
#   ["query", server, name]    -> the rcode and A records asked of ``server`` directly (dnspython), or "timeout"
#   ["connect", host, port]    -> what the server sent, or the error
#   ["read", path]             -> the file's text
PROBE = r"""
import socket, time
import dns.exception, dns.message, dns.query, dns.rcode

def step(kind, *args):
    if kind == "resolve":
        started = time.monotonic()
        try:
            found = sorted({a[4][0] for a in socket.getaddrinfo(args[0], 80, socket.AF_INET, socket.SOCK_STREAM)})
        except OSError as exc:
            found = type(exc).__name__
        return [found, time.monotonic() - started]
    if kind == "reverse":
        try:
            return socket.gethostbyaddr(args[0])[0]
        except OSError as exc:
            return type(exc).__name__
    if kind == "query":
        try:
            answer = dns.query.udp(dns.message.make_query(args[1], "A"), args[0], timeout=0.5)
        except dns.exception.Timeout:
            return "timeout"
        return [dns.rcode.to_text(answer.rcode()), sorted(r.to_text() for rr in answer.answer for r in rr)]
    if kind == "connect":
        try:
            with socket.create_connection((args[0], args[1]), timeout=1.0) as s:
                s.sendall(b"ping")
                return s.recv(16).decode()
        except OSError as exc:
            return type(exc).__name__
    if kind == "read":
        return open(args[0]).read()
    raise ValueError(kind)

def handler(event, context):
    return [step(*s) for s in event["steps"]]
"""


def function_zip() -> bytes:
    """The probe, with dnspython beside it (a function bundles what it imports)."""
    import dns

    root = Path(dns.__file__).parent
    files = {"app.py": PROBE}
    for path in root.rglob("*.py"):
        files[f"dns/{path.relative_to(root)}"] = path.read_text()
    return make_zip(files)


class InternetResolver:
    """A DNS server on the test's loopback standing for the internet's resolvers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.asked: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.RA
            question = query.question[0]
            self.asked.append(question.name.to_text())
            if question.name.to_text().lower() == PUBLIC_NAME + ".":
                if question.rdtype == dns.rdatatype.A:
                    response.answer.append(dns.rrset.from_text(question.name, 300, "IN", "A", PUBLIC_ADDRESS))
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()


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
        tmp_path_factory, internet, "lamina-dns", "--dns-upstream", f"127.0.0.1:{resolver.port}"
    )


@pytest.fixture(scope="module")
def ec2(server: LaminaServer) -> Any:
    return client(server, "ec2")


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    client(server, "iam").attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
    return client(server, read_timeout=60)


def make_vpc(ec2: Any, prefix: str) -> tuple[str, str, str]:
    """A VPC with DNS hostnames on, one subnet, one open group: (vpc, subnet, group)."""
    vpc = ec2.create_vpc(CidrBlock=f"{prefix}.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{prefix}.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="open", Description="open")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    return vpc, subnet, group


@pytest.fixture(scope="module")
def vpcs(server: LaminaServer, ec2: Any) -> Iterator[dict[str, Any]]:
    vpc, subnet, group = make_vpc(ec2, "10.81")
    other_vpc, other_subnet, other_group = make_vpc(ec2, "10.82")
    db = VpcRun(server, subnet, [group], sys.executable, "-u", "-c", ECHO, "6379", ip=DB)
    other = VpcRun(
        server, other_subnet, [other_group], sys.executable, "-u", "-c", ECHO, "6379", ip=OTHER_HOST
    )
    try:
        db.start()
        other.start()
        yield {"vpc": vpc, "subnet": subnet, "group": group, "other_vpc": other_vpc}
    finally:
        db.close()
        other.close()


def create(lam: Any, name: str, vpc_config: dict[str, Any] | None = None) -> None:
    kwargs: dict[str, Any] = {"VpcConfig": vpc_config} if vpc_config else {}
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
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
def vpc_fn(lam: Any, vpcs: dict[str, Any]) -> Iterator[str]:
    create(lam, "dns-vpc", {"SubnetIds": [vpcs["subnet"]], "SecurityGroupIds": [vpcs["group"]]})
    try:
        yield "dns-vpc"
    finally:
        lam.delete_function(FunctionName="dns-vpc")


def test_a_function_resolves_a_vpc_host_by_its_private_name_and_connects(lam: Any, vpc_fn: str) -> None:
    resolv, hosts, found, short, connected, reverse = run(
        lam,
        vpc_fn,
        ["read", "/etc/resolv.conf"],
        ["read", "/etc/hosts"],
        ["resolve", "ip-10-81-1-20.ec2.internal"],
        ["resolve", "ip-10-81-1-20"],  # the search domain of the VPC's DHCP option set
        ["connect", "ip-10-81-1-20.ec2.internal", 6379],
        ["reverse", DB],
    )
    assert resolv == "search ec2.internal\noptions timeout:2 attempts:5\nnameserver 10.81.0.2\n"
    assert "127.0.0.1   sandbox.localdomain sandbox" in hosts
    assert found[0] == [DB]
    assert short[0] == [DB]
    assert connected == "ping"
    assert reverse == "ip-10-81-1-20.ec2.internal"


def test_both_resolver_addresses_answer_and_other_vpcs_names_do_not(lam: Any, vpc_fn: str) -> None:
    mine, link_local, theirs, unknown = run(
        lam,
        vpc_fn,
        ["query", "10.81.0.2", "ip-10-81-1-20.ec2.internal"],
        ["query", "169.254.169.253", "ip-10-81-1-20.ec2.internal"],
        ["query", "10.81.0.2", "ip-10-82-1-20.ec2.internal"],
        ["resolve", "nothing-here.invalid"],
    )
    assert mine == link_local == ["NOERROR", [DB]]
    assert theirs == ["NXDOMAIN", []]
    assert unknown[0] == "gaierror"
    assert unknown[1] < 1.0  # an answer (NXDOMAIN), not a 10 s timeout


def test_public_names_resolve_without_a_way_out_but_cannot_be_reached(
    lam: Any, vpc_fn: str, resolver: InternetResolver
) -> None:
    found, reached = run(lam, vpc_fn, ["resolve", PUBLIC_NAME], ["connect", PUBLIC_NAME, 7])
    assert found[0] == [PUBLIC_ADDRESS]
    assert PUBLIC_NAME + "." in resolver.asked  # asked of the upstream, from the server
    assert reached in ("TimeoutError", "OSError", "ConnectionRefusedError")


def test_without_dns_support_nothing_answers(ec2: Any, lam: Any, vpcs: dict[str, Any], vpc_fn: str) -> None:
    ec2.modify_vpc_attribute(VpcId=vpcs["vpc"], EnableDnsSupport={"Value": False})
    try:
        deadline = time.monotonic() + 5
        while True:  # the change reaches the router within milliseconds; bounded wait
            answers = run(
                lam,
                vpc_fn,
                ["query", "10.81.0.2", "ip-10-81-1-20.ec2.internal"],
                ["query", "169.254.169.253", PUBLIC_NAME],
            )
            if answers == ["timeout", "timeout"] or time.monotonic() > deadline:
                break
        assert answers == ["timeout", "timeout"]
    finally:
        ec2.modify_vpc_attribute(VpcId=vpcs["vpc"], EnableDnsSupport={"Value": True})
    deadline = time.monotonic() + 5
    while run(lam, vpc_fn, ["query", "10.81.0.2", "ip-10-81-1-20.ec2.internal"]) != [["NOERROR", [DB]]]:
        assert time.monotonic() < deadline, "DNS support never came back"


def test_hostnames_off_private_names_do_not_resolve(
    ec2: Any, lam: Any, vpcs: dict[str, Any], vpc_fn: str
) -> None:
    ec2.modify_vpc_attribute(VpcId=vpcs["vpc"], EnableDnsHostnames={"Value": False})
    try:
        deadline = time.monotonic() + 5
        while True:
            (answer,) = run(lam, vpc_fn, ["query", "10.81.0.2", "ip-10-81-1-20.ec2.internal"])
            if answer == ["NXDOMAIN", []] or time.monotonic() > deadline:
                break
        assert answer == ["NXDOMAIN", []]
        (public,) = run(lam, vpc_fn, ["query", "10.81.0.2", PUBLIC_NAME])
        assert public == ["NOERROR", [PUBLIC_ADDRESS]]
    finally:
        ec2.modify_vpc_attribute(VpcId=vpcs["vpc"], EnableDnsHostnames={"Value": True})


def test_custom_dhcp_name_servers_reach_new_environments(ec2: Any, lam: Any, vpcs: dict[str, Any]) -> None:
    options = ec2.create_dhcp_options(
        DhcpConfigurations=[
            {"Key": "domain-name", "Values": ["corp.example"]},
            {"Key": "domain-name-servers", "Values": ["192.0.2.53", "AmazonProvidedDNS"]},
        ]
    )["DhcpOptions"]["DhcpOptionsId"]
    previous = ec2.describe_vpcs(VpcIds=[vpcs["vpc"]])["Vpcs"][0]["DhcpOptionsId"]
    ec2.associate_dhcp_options(DhcpOptionsId=options, VpcId=vpcs["vpc"])
    try:
        time.sleep(0.5)  # the data plane hears of it (milliseconds); the function is created after
        create(lam, "dns-dhcp", {"SubnetIds": [vpcs["subnet"]], "SecurityGroupIds": [vpcs["group"]]})
        try:
            (resolv,) = run(lam, "dns-dhcp", ["read", "/etc/resolv.conf"])
            assert resolv == (
                "search corp.example\noptions timeout:2 attempts:5\nnameserver 192.0.2.53\nnameserver 10.81.0.2\n"
            )
        finally:
            lam.delete_function(FunctionName="dns-dhcp")
        # No option set at all: DHCP hands out no name server; a lookup fails at once.
        ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=vpcs["vpc"])
        time.sleep(0.5)
        create(lam, "dns-dhcp", {"SubnetIds": [vpcs["subnet"]], "SecurityGroupIds": [vpcs["group"]]})
        try:
            resolv, found = run(
                lam, "dns-dhcp", ["read", "/etc/resolv.conf"], ["resolve", "ip-10-81-1-20.ec2.internal"]
            )
            assert resolv == "options timeout:2 attempts:5\n"
            assert found[0] == "gaierror" and found[1] < 1.0
        finally:
            lam.delete_function(FunctionName="dns-dhcp")
    finally:
        ec2.associate_dhcp_options(DhcpOptionsId=previous, VpcId=vpcs["vpc"])
        ec2.delete_dhcp_options(DhcpOptionsId=options)


def test_a_function_without_a_vpc(lam: Any, resolver: InternetResolver) -> None:
    create(lam, "dns-plain")
    try:
        resolv, local, sandbox, unknown, public, private = run(
            lam,
            "dns-plain",
            ["read", "/etc/resolv.conf"],
            ["resolve", "localhost"],
            ["resolve", "sandbox.localdomain"],
            ["resolve", "nothing-here.invalid"],
            ["resolve", PUBLIC_NAME],
            ["query", "169.254.169.253", "ip-10-81-1-20.ec2.internal"],
        )
        assert resolv == "options timeout:2 attempts:5\nnameserver 169.254.169.253\n"
        assert local[0] == ["127.0.0.1"]
        assert sandbox[0] == ["127.0.0.1"]
        assert unknown[0] == "gaierror" and unknown[1] < 1.0
        assert public[0] == [PUBLIC_ADDRESS]
        assert private == ["NXDOMAIN", []]  # no VPC's names outside it
        assert "ip-10-81-1-20.ec2.internal." not in resolver.asked  # nor asked of the host's resolver
    finally:
        lam.delete_function(FunctionName="dns-plain")


# Asks the VPC's DNS server (argv[1]) for a name (argv[2]) and prints the answer, then waits.
ASK = r"""
import os, sys
import dns.message, dns.query, dns.rcode
print("ready", os.getpid(), flush=True)
answer = dns.query.udp(dns.message.make_query(sys.argv[2], "A"), sys.argv[1], timeout=2)
print(dns.rcode.to_text(answer.rcode()), *sorted(r.to_text() for rr in answer.answer for r in rr), flush=True)
sys.stdin.read()
"""


def test_a_vpc_run_host_asks_the_same_server(server: LaminaServer, vpcs: dict[str, Any]) -> None:
    host = VpcRun(
        server,
        vpcs["subnet"],
        [vpcs["group"]],
        sys.executable,
        "-u",
        "-c",
        ASK,
        "10.81.0.2",
        "ip-10-81-1-20.ec2.internal",
    )
    try:
        host.start()
        assert host.line() == f"NOERROR {DB}"
    finally:
        host.close()


# Resolves a name (argv[1]) as any program does (the C library, /etc/resolv.conf), then waits.
LOOKUP = r"""
import os, socket, sys
resolv = open("/etc/resolv.conf").read().split()
print("ready", os.getpid(), flush=True)
print(socket.gethostbyname(sys.argv[1]), *resolv, flush=True)
sys.stdin.read()
"""


def test_a_vpc_run_host_resolves_with_its_vpcs_resolv_conf(
    server: LaminaServer, vpcs: dict[str, Any]
) -> None:
    """As an EC2 instance's DHCP hands it out: the VPC's DNS server and domain, not the host's."""
    host = VpcRun(
        server, vpcs["subnet"], [vpcs["group"]], sys.executable, "-u", "-c", LOOKUP, "ip-10-81-1-20"
    )
    try:
        host.start()
        assert host.line().split() == [
            DB,
            "search",
            "ec2.internal",
            "options",
            "timeout:2",
            "attempts:5",
            "nameserver",
            "10.81.0.2",
        ]
        # Its file is mounted, and already gone from the host's /tmp (nothing left if vpc run is killed).
        mounted = [
            line.split()[3]
            for line in Path(f"/proc/{host.child_pid}/mountinfo").read_text().splitlines()
            if line.split()[4] == "/etc/resolv.conf"
        ]
        assert len(mounted) == 1 and mounted[0].endswith("//deleted"), mounted
    finally:
        host.close()
    assert "10.81.0.2" not in Path("/etc/resolv.conf").read_text()  # the host's file is untouched


def test_the_first_host_of_a_vpc_gets_its_resolv_conf_too(server: LaminaServer, ec2: Any) -> None:
    """No interface in the VPC yet: the data plane builds it for this one, resolver included."""
    _, subnet, group = make_vpc(ec2, "10.83")
    host = VpcRun(server, subnet, [group], sys.executable, "-u", "-c", LOOKUP, "localhost")
    try:
        host.start()
        assert host.line().split()[-2:] == ["nameserver", "10.83.0.2"]
    finally:
        host.close()
