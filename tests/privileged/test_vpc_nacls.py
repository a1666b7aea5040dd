"""Network ACLs end to end, as root: changes made through the EC2 API (boto3) reach the data plane
through the store's events and decide what processes under ``lamina vpc run``, and a VPC function,
can say to each other, whatever their security groups allow.

The VPC: 10.78.0.0/16; subnet a 10.78.1.0/24 (a probe), subnet b 10.78.2.0/24 (db at 10.78.2.10,
echo on 6379). One security group allows everything from the VPC, so only the ACLs decide.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from test_vpc_run import ECHO, PROBE
from testzips import make_zip
from vpc_run import VpcRun

pytestmark = pytest.mark.privileged

DB = "10.78.2.10"
PROBE_TIMEOUT_S = 0.25
IN_FORCE_S = 2.0  # a correctness bound (bench/ measures; tests never assert timings)


@dataclass
class Net:
    vpc: str
    a: str
    b: str
    group: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-nacls") / "data", extra_args=("--eni-release-delay", "0")
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
    vpc = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="open", Description="open")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.78.0.0/16"}]}]
    )
    return Net(
        vpc=vpc,
        a=ec2.create_subnet(VpcId=vpc, CidrBlock="10.78.1.0/24")["Subnet"]["SubnetId"],
        b=ec2.create_subnet(VpcId=vpc, CidrBlock="10.78.2.0/24")["Subnet"]["SubnetId"],
        group=group,
    )


@pytest.fixture(scope="module")
def hosts(server: LaminaServer, net: Net) -> Iterator[dict[str, VpcRun]]:
    runs: dict[str, VpcRun] = {}
    try:
        runs["db"] = VpcRun(server, net.b, [net.group], sys.executable, "-u", "-c", ECHO, "6379", ip=DB)
        runs["fn"] = VpcRun(server, net.a, [net.group], sys.executable, "-u", "-c", PROBE)
        for run in runs.values():
            run.start()
        yield runs
    finally:
        for run in runs.values():
            run.close()


def becomes(probe: VpcRun, expected: str, timeout: float = IN_FORCE_S) -> str:
    """Probe db:6379 until the answer is ``expected`` (the change is in force) or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe.probe(DB, 6379, PROBE_TIMEOUT_S)
        if answer == expected or time.monotonic() > deadline:
            return answer
        time.sleep(0.01)


def acl_of(ec2: Any, subnet: str) -> dict[str, Any]:
    found: dict[str, Any] = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
    )["NetworkAcls"][0]
    return found


def association_of(acl: dict[str, Any], subnet: str) -> str:
    return str(next(a["NetworkAclAssociationId"] for a in acl["Associations"] if a["SubnetId"] == subnet))


def tcp(port_from: int, port_to: int | None = None) -> dict[str, Any]:
    return {"Protocol": "6", "PortRange": {"From": port_from, "To": port_to or port_from}}


def test_acl_changes_through_the_api_decide_traffic(ec2: Any, net: Net, hosts: dict[str, VpcRun]) -> None:
    fn = hosts["fn"]
    assert fn.probe(DB, 6379, PROBE_TIMEOUT_S) == "ok"  # the default ACL allows everything
    custom = ec2.create_network_acl(VpcId=net.vpc)["NetworkAcl"]["NetworkAclId"]
    entry: Callable[..., Any] = ec2.create_network_acl_entry
    entry(
        NetworkAclId=custom,
        RuleNumber=100,
        Egress=False,
        RuleAction="allow",
        CidrBlock="0.0.0.0/0",
        **tcp(6379),
    )
    entry(
        NetworkAclId=custom,
        RuleNumber=100,
        Egress=True,
        RuleAction="allow",
        CidrBlock="0.0.0.0/0",
        **tcp(6379),
    )
    default = acl_of(ec2, net.b)
    new = ec2.replace_network_acl_association(
        AssociationId=association_of(default, net.b), NetworkAclId=custom
    )["NewAssociationId"]
    try:
        # Stateless: the SYN gets in, db's SYN-ACK to the probe's ephemeral port may not leave.
        assert becomes(fn, "dropped") == "dropped"
        entry(
            NetworkAclId=custom,
            RuleNumber=110,
            Egress=True,
            RuleAction="allow",
            CidrBlock="10.78.1.0/24",
            **tcp(1024, 65535),
        )
        assert becomes(fn, "ok") == "ok"
        # A lower-numbered deny wins over the allow.
        entry(
            NetworkAclId=custom,
            RuleNumber=50,
            Egress=False,
            RuleAction="deny",
            CidrBlock="10.78.1.0/24",
            **tcp(6379),
        )
        assert becomes(fn, "dropped") == "dropped"
        ec2.delete_network_acl_entry(NetworkAclId=custom, RuleNumber=50, Egress=False)
        assert becomes(fn, "ok") == "ok"
        # Outbound from subnet a: its (default) ACL's rule 100 replaced by a deny.
        a_acl = acl_of(ec2, net.a)["NetworkAclId"]
        ec2.replace_network_acl_entry(
            NetworkAclId=a_acl,
            RuleNumber=100,
            Egress=True,
            RuleAction="deny",
            Protocol="-1",
            CidrBlock="0.0.0.0/0",
        )
        assert becomes(fn, "dropped") == "dropped"
        ec2.replace_network_acl_entry(
            NetworkAclId=a_acl,
            RuleNumber=100,
            Egress=True,
            RuleAction="allow",
            Protocol="-1",
            CidrBlock="0.0.0.0/0",
        )
        assert becomes(fn, "ok") == "ok"
    finally:
        ec2.replace_network_acl_association(AssociationId=new, NetworkAclId=default["NetworkAclId"])
    assert becomes(fn, "ok") == "ok"
    ec2.delete_network_acl(NetworkAclId=custom)


REACH = """
import socket
def handler(event, context):
    try:
        with socket.create_connection((event["host"], event["port"]), timeout=0.5) as s:
            s.sendall(b"ping")
            return s.recv(16).decode()
    except OSError as exc:
        return type(exc).__name__
"""


def test_a_function_is_judged_by_its_subnets_acl_both_ways(
    ec2: Any, net: Net, server: LaminaServer, hosts: dict[str, VpcRun]
) -> None:
    iam, lam = client(server, "iam"), client(server, read_timeout=60)
    iam.attach_role_policy(
        RoleName="lambda-role",
        PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    )
    lam.create_function(
        FunctionName="nacl-reach",
        Runtime="python3.12",
        Role="arn:aws:iam::000000000000:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": REACH})},
        Timeout=10,
        VpcConfig={"SubnetIds": [net.a], "SecurityGroupIds": [net.group]},
    )
    try:
        lam.get_waiter("function_active_v2").wait(
            FunctionName="nacl-reach", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
        )
        event = json.dumps({"host": DB, "port": 6379})

        def reach() -> str:
            return str(json.loads(lam.invoke(FunctionName="nacl-reach", Payload=event)["Payload"].read()))

        assert reach() == "ping"
        a_acl = acl_of(ec2, net.a)["NetworkAclId"]
        for egress in (True, False):  # the function's subnet: its requests out, then the replies in
            ec2.replace_network_acl_entry(
                NetworkAclId=a_acl,
                RuleNumber=100,
                Egress=egress,
                RuleAction="deny",
                Protocol="-1",
                CidrBlock="0.0.0.0/0",
            )
            try:
                assert eventually(lambda: reach() == "TimeoutError")
            finally:
                ec2.replace_network_acl_entry(
                    NetworkAclId=a_acl,
                    RuleNumber=100,
                    Egress=egress,
                    RuleAction="allow",
                    Protocol="-1",
                    CidrBlock="0.0.0.0/0",
                )
            assert eventually(lambda: reach() == "ping")
    finally:
        lam.delete_function(FunctionName="nacl-reach")


def eventually(check: Callable[[], bool], timeout: float = IN_FORCE_S) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
