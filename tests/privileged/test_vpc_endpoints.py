"""lamina's API as a VPC sees it, against a real server as root whose uplink is a namespace the test
makes (``--uplink netns:NAME``): functions in a VPC reach the API only through a NAT gateway path or
a VPC endpoint, as in AWS; functions without a VPC reach it at its public address; all of it over
TLS with lamina's own CA (``AWS_CA_BUNDLE``), as boto3 inside the function sees it.

The VPC is ``test_net_uplink``'s (10.79.0.0/16: public subnet with an internet gateway route and a
NAT gateway, private subnet with its own route table, no way out until a test adds one).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client
from test_net_uplink import POOL, VPC_POLICY, Internet, Net, build_vpc, open_internet, uplink_server
from testzips import make_zip

from lamina.domain import endpoints as P

pytestmark = pytest.mark.privileged

RUNTIME = "python3.12"
HAS_RUNTIME = (Path(sys.prefix) / "lamina-runtimes" / RUNTIME / "lamina-runtime.json").is_file()
if not HAS_RUNTIME:
    pytest.skip(f"{RUNTIME} is not installed (make setup)", allow_module_level=True)
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
BUCKET = "endpoint-test-bucket"

# Each check: "sts" | "lambda" | "s3", through boto3 as the environment configures it (lamina's
# names, resolved by the VPC's Amazon DNS server); "lookup": names to resolve. Answers "ok ..." or
# the error's type and message.
CALLER = r"""
import os, socket
import boto3
from botocore.config import Config

def handler(event, context):
    config = Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1})
    out = {"env": {k: v for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL") or k == "AWS_CA_BUNDLE"}}
    out["lookup"] = {}
    for name in event.get("lookup", []):
        try:
            out["lookup"][name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 443, socket.AF_INET)})
        except OSError as exc:
            out["lookup"][name] = type(exc).__name__
    for check in event["checks"]:
        try:
            if check == "sts":
                out[check] = "ok " + boto3.client("sts", config=config).get_caller_identity()["Account"]
            elif check == "lambda":
                boto3.client("lambda", config=config).list_functions(MaxItems=1)
                out[check] = "ok"
            elif check == "s3":
                s3 = boto3.client("s3", config=config)
                s3.put_object(Bucket=event["bucket"], Key="k", Body=b"through the endpoint")
                out[check] = "ok " + s3.get_object(Bucket=event["bucket"], Key="k")["Body"].read().decode()
        except Exception as exc:
            out[check] = type(exc).__name__ + ": " + str(exc)[:500]
    return out
"""


@pytest.fixture(scope="module")
def internet() -> Iterator[Internet]:
    yield from open_internet()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, internet: Internet) -> Iterator[LaminaServer]:
    yield from uplink_server(tmp_path_factory, internet, "lamina-endpoints", "--public-ip-pool", str(POOL))


@pytest.fixture(scope="module")
def ec2(server: LaminaServer) -> Any:
    return client(server, "ec2")


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    client(server, "iam").attach_role_policy(
        RoleName="lambda-role", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
    )
    client(server, "iam").attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
    client(server, "s3").create_bucket(Bucket=BUCKET)
    return client(server, read_timeout=90)


@pytest.fixture(scope="module")
def net(ec2: Any) -> Net:
    made = build_vpc(ec2)
    ec2.modify_vpc_attribute(VpcId=made.vpc, EnableDnsHostnames={"Value": True})  # for private DNS
    return made


def function(lam: Any, name: str, vpc_config: dict[str, Any] | None = None) -> None:
    extra = {"VpcConfig": vpc_config} if vpc_config else {}
    lam.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": CALLER})},
        Timeout=30,
        **extra,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300}
    )


def call(lam: Any, name: str, checks: list[str], lookup: list[str] | None = None) -> dict[str, Any]:
    payload = {"checks": checks, "bucket": BUCKET, "lookup": lookup or []}
    out = lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    body = json.loads(out["Payload"].read())
    assert "FunctionError" not in out, body
    result: dict[str, Any] = body
    return result


@pytest.fixture(scope="module")
def private_function(lam: Any, net: Net) -> Iterator[str]:
    function(lam, "ep-private", {"SubnetIds": [net.private], "SecurityGroupIds": [net.group]})
    yield "ep-private"
    lam.delete_function(FunctionName="ep-private")


def test_a_function_without_a_vpc_reaches_the_api_at_its_public_address_over_tls(lam: Any) -> None:
    function(lam, "ep-default")
    try:
        out = call(
            lam,
            "ep-default",
            ["sts", "s3"],
            [
                "sts.us-east-1.amazonaws.com",
                f"{BUCKET}.s3.us-east-1.amazonaws.com",
                "lambda.eu-west-1.amazonaws.com",
            ],
        )
    finally:
        lam.delete_function(FunctionName="ep-default")
    assert out["sts"] == "ok 000000000000"
    assert out["s3"] == "ok through the endpoint"
    env = out["env"]  # lamina by AWS's names, which the Amazon DNS server answers
    assert env["AWS_ENDPOINT_URL_STS"] == "https://sts.us-east-1.amazonaws.com"
    assert env["AWS_ENDPOINT_URL_S3"] == "https://s3.us-east-1.amazonaws.com"
    assert env["AWS_ENDPOINT_URL"] == "https://lambda.us-east-1.amazonaws.com"
    assert env["AWS_CA_BUNDLE"] == "/var/lamina/ca.pem"
    assert out["lookup"] == {
        "sts.us-east-1.amazonaws.com": [str(P.PUBLIC_API_ADDRESS)],
        f"{BUCKET}.s3.us-east-1.amazonaws.com": [str(P.PUBLIC_S3_ADDRESS)],  # virtual-hosted
        "lambda.eu-west-1.amazonaws.com": [str(P.PUBLIC_API_ADDRESS)],
    }


def test_a_private_function_reaches_the_api_only_through_a_nat_gateway(
    ec2: Any, lam: Any, net: Net, private_function: str
) -> None:
    out = call(lam, private_function, ["sts", "s3"])
    # No NAT, no endpoint: the connection times out (no in-sandbox relay any more).
    assert out["sts"].startswith("ConnectTimeoutError") or "Could not connect" in out["sts"], out
    assert not out["s3"].startswith("ok"), out
    ec2.create_route(RouteTableId=net.private_rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=net.nat)
    try:
        time.sleep(0.3)
        out = call(lam, private_function, ["sts", "s3"])
        assert out["sts"] == "ok 000000000000", out
        assert out["s3"] == "ok through the endpoint", out
    finally:
        ec2.delete_route(RouteTableId=net.private_rtb, DestinationCidrBlock="0.0.0.0/0")
    time.sleep(0.3)
    assert not call(lam, private_function, ["sts"])["sts"].startswith("ok")


def test_an_s3_gateway_endpoint_lets_a_private_function_reach_s3_and_only_s3(
    server: LaminaServer, ec2: Any, lam: Any, net: Net, private_function: str
) -> None:
    vpce = ec2.create_vpc_endpoint(
        VpcId=net.vpc, ServiceName="com.amazonaws.us-east-1.s3", RouteTableIds=[net.private_rtb]
    )["VpcEndpoint"]["VpcEndpointId"]
    try:
        time.sleep(0.3)
        out = call(lam, private_function, ["s3", "sts"])
        assert out["s3"] == "ok through the endpoint", out
        assert not out["sts"].startswith("ok"), out  # the endpoint routes S3's address alone
        # The endpoint's policy applies on top of IAM's: a Deny stops what the role may do.
        deny_puts = {
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
                {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"},
            ]
        }
        ec2.modify_vpc_endpoint(VpcEndpointId=vpce, PolicyDocument=json.dumps(deny_puts))
        out = call(lam, private_function, ["s3"])
        assert out["s3"].startswith("AccessDenied: "), out
        assert "with an explicit deny in a VPC endpoint policy" in out["s3"], out
        only_other = {
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::other/*"}
            ]
        }
        ec2.modify_vpc_endpoint(VpcEndpointId=vpce, PolicyDocument=json.dumps(only_other))
        out = call(lam, private_function, ["s3"])
        assert "because no VPC endpoint policy allows the s3:PutObject action" in out["s3"], out
        ec2.modify_vpc_endpoint(VpcEndpointId=vpce, ResetPolicy=True)
        assert call(lam, private_function, ["s3"])["s3"] == "ok through the endpoint"
        # A bucket policy can demand the endpoint (aws:SourceVpce), as in AWS.
        s3 = client(server, "s3")
        only_vpce = {
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{BUCKET}/*",
                    "Condition": {"StringNotEquals": {"aws:SourceVpce": vpce}},
                }
            ]
        }
        s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(only_vpce))
        try:
            assert call(lam, private_function, ["s3"])["s3"] == "ok through the endpoint"
            with pytest.raises(ClientError) as denied:
                s3.get_object(Bucket=BUCKET, Key="k")
            assert denied.value.response["Error"]["Code"] == "AccessDenied"
        finally:
            s3.delete_bucket_policy(Bucket=BUCKET)
        # A security group whose egress does not allow 443 stops it, as in EC2.
        ec2.revoke_security_group_egress(
            GroupId=net.group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        )
        try:
            time.sleep(0.3)
            assert not call(lam, private_function, ["s3"])["s3"].startswith("ok")
        finally:
            ec2.authorize_security_group_egress(
                GroupId=net.group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
            )
    finally:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce])
    time.sleep(0.3)
    assert not call(lam, private_function, ["s3"])["s3"].startswith("ok")


def test_interface_endpoints_answer_behind_their_security_groups(
    ec2: Any, lam: Any, net: Net, private_function: str
) -> None:
    shut = ec2.create_security_group(VpcId=net.vpc, GroupName="vpce-shut", Description="no 443")["GroupId"]
    vpce = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=net.vpc,
        ServiceName="com.amazonaws.us-east-1.lambda",
        SubnetIds=[net.private],
        SecurityGroupIds=[shut],
    )["VpcEndpoint"]
    sts_vpce = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=net.vpc,
        ServiceName="com.amazonaws.us-east-1.sts",
        SubnetIds=[net.private],
        SecurityGroupIds=[net.group],  # 443 (everything) allowed in
    )["VpcEndpoint"]
    try:
        (lambda_eni,) = ec2.describe_network_interfaces(NetworkInterfaceIds=vpce["NetworkInterfaceIds"])[
            "NetworkInterfaces"
        ]
        (sts_eni,) = ec2.describe_network_interfaces(NetworkInterfaceIds=sts_vpce["NetworkInterfaceIds"])[
            "NetworkInterfaces"
        ]
        time.sleep(0.3)
        # Private DNS: inside this VPC the services' names answer the endpoints' addresses, as do
        # the endpoints' own names; TLS checks the name against lamina's certificate.
        names = [
            "lambda.us-east-1.amazonaws.com",
            "sts.us-east-1.amazonaws.com",
            sts_vpce["DnsEntries"][0]["DnsName"],
        ]
        out = call(lam, private_function, ["sts", "lambda"], names)
        assert out["lookup"] == {
            names[0]: [lambda_eni["PrivateIpAddress"]],
            names[1]: [sts_eni["PrivateIpAddress"]],
            names[2]: [sts_eni["PrivateIpAddress"]],
        }, out
        assert out["sts"] == "ok 000000000000", out
        assert not out["lambda"].startswith("ok"), out  # its group does not allow 443 in
        ec2.authorize_security_group_ingress(
            GroupId=shut,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "UserIdGroupPairs": [{"GroupId": net.group}],
                }
            ],
        )
        time.sleep(0.3)
        assert call(lam, private_function, ["lambda"])["lambda"] == "ok"
    finally:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce["VpcEndpointId"], sts_vpce["VpcEndpointId"]])
        ec2.delete_security_group(GroupId=shut)
    # Gone: the names answer the public address again (once the VPC's resolver has the change: a
    # moment, longer on a busy host), which this private subnet cannot reach.
    public = {"sts.us-east-1.amazonaws.com": [str(P.PUBLIC_API_ADDRESS)]}
    deadline = time.monotonic() + 20
    while True:
        time.sleep(0.3)
        out = call(lam, private_function, ["sts"], ["sts.us-east-1.amazonaws.com"])
        if out["lookup"] == public or time.monotonic() > deadline:
            break
    assert out["lookup"] == public, out
    assert not out["sts"].startswith("ok"), out


FLOODER = r"""
import os, socket, time
import boto3
from botocore.config import Config

def handler(event, context):
    address = (event["address"], 443)
    held = []
    for _ in range(event["count"]):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(address)
            held.append(s)
        except OSError:
            s.close()
    time.sleep(0.5)  # the relay resets what is past its cap as it accepts
    kept = 0
    for s in held:
        s.setblocking(False)
        try:
            kept += s.recv(1) != b""
        except BlockingIOError:
            kept += 1  # open, waiting for a TLS handshake
        except OSError:
            pass  # reset
        s.close()
    config = Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1})
    return {"kept": kept, "after": boto3.client("sts", config=config).get_caller_identity()["Account"]}
"""


def test_the_public_address_caps_each_environment_of_the_default_network(lam: Any) -> None:
    """The in-sandbox relay's flood defence, kept at the public address: one environment holds at
    most 64 connections at once; the rest are reset, and the API still answers."""
    lam.create_function(
        FunctionName="ep-flood",
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": FLOODER})},
        Timeout=60,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName="ep-flood", WaiterConfig={"Delay": 0.1, "MaxAttempts": 300}
    )
    try:
        out = lam.invoke(
            FunctionName="ep-flood",
            Payload=json.dumps({"address": str(P.PUBLIC_API_ADDRESS), "count": 300}).encode(),
        )
        body = json.loads(out["Payload"].read())
    finally:
        lam.delete_function(FunctionName="ep-flood")
    assert "FunctionError" not in out, body
    assert body["kept"] == 64, body
    assert body["after"] == "000000000000"


def test_network_acls_judge_gateway_endpoint_traffic_both_ways(
    ec2: Any, lam: Any, net: Net, private_function: str
) -> None:
    """A gateway endpoint's traffic crosses the subnet's boundary: its network ACL must allow it
    out (to the prefix list's address) and its replies back in, statelessly, as in AWS."""
    from test_net_nacl_gateways import custom_acl, restore, rule

    s3_block = f"{P.PUBLIC_S3_ADDRESS}/32"
    vpce = ec2.create_vpc_endpoint(
        VpcId=net.vpc, ServiceName="com.amazonaws.us-east-1.s3", RouteTableIds=[net.private_rtb]
    )["VpcEndpoint"]["VpcEndpointId"]
    try:
        time.sleep(0.3)
        assert call(lam, private_function, ["s3"])["s3"] == "ok through the endpoint"
        allow_all = (rule(100, True, "allow"), rule(100, False, "allow"))
        for denied in (rule(50, True, "deny", s3_block), rule(50, False, "deny", s3_block)):
            acl, association, previous = custom_acl(ec2, net, net.private, denied, *allow_all)
            try:
                time.sleep(0.3)
                out = call(lam, private_function, ["s3"])
                assert not out["s3"].startswith("ok"), (denied, out)
            finally:
                restore(ec2, acl, association, previous)
        time.sleep(0.3)
        assert call(lam, private_function, ["s3"])["s3"] == "ok through the endpoint"
    finally:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce])
