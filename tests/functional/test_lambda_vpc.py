"""Lambda functions attached to a VPC: VpcConfig validation and Hyperplane interfaces (control plane)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client
from testzips import make_zip

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
CODE = make_zip({"bootstrap": "#!/bin/sh\n"}, modes={"bootstrap": 0o100755})


@pytest.fixture(scope="module")
def vpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-vpc") / "data",
        accounts=ACCOUNTS,
        extra_args=("--eni-release-delay", "0"),
    )
    client(srv, "iam").attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def ec2(vpc_server: LaminaServer) -> Any:
    return client(vpc_server, "ec2")


@pytest.fixture(scope="module")
def lam(vpc_server: LaminaServer) -> Any:
    return client(vpc_server)


@pytest.fixture(scope="module")
def net(ec2: Any) -> dict[str, str]:
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_vpc(CidrBlock="10.31.0.0/16")["Vpc"]["VpcId"]
    return {
        "vpc": vpc,
        "a": ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"],
        "b": ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.2.0/24", AvailabilityZone="us-east-1b")["Subnet"][
            "SubnetId"
        ],
        "small": ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.3.0/28")["Subnet"]["SubnetId"],
        "sg1": ec2.create_security_group(VpcId=vpc, GroupName="one", Description="one")["GroupId"],
        "sg2": ec2.create_security_group(VpcId=vpc, GroupName="two", Description="two")["GroupId"],
        "other_subnet": ec2.create_subnet(VpcId=other, CidrBlock="10.31.1.0/24")["Subnet"]["SubnetId"],
    }


def fn() -> str:
    return f"vpcfn-{uuid.uuid4().hex[:8]}"


def create(lam: Any, name: str, vpc: dict[str, list[str]] | None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "provided.al2023",
        "Role": ROLE,
        "Handler": "h",
        "Code": {"ZipFile": CODE},
        **kw,
    }
    if vpc is not None:
        args["VpcConfig"] = vpc
    return lam.create_function(**args)


def err(e: Any) -> tuple[int, str, str]:
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def available(ec2: Any, subnet: str) -> int:
    return int(ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"])


def lambda_enis(ec2: Any, subnet: str) -> list[dict[str, Any]]:
    return [
        e
        for e in ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet]}])[
            "NetworkInterfaces"
        ]
        if e["InterfaceType"] == "lambda"
    ]


def test_create_update_detach(lam: Any, ec2: Any, net: dict[str, str]) -> None:
    name = fn()
    r = create(lam, name, {"SubnetIds": [net["a"]], "SecurityGroupIds": [net["sg1"]]})
    assert r["VpcConfig"] == {
        "SubnetIds": [net["a"]],
        "SecurityGroupIds": [net["sg1"]],
        "VpcId": net["vpc"],
        "Ipv6AllowedForDualStack": False,
    }
    assert (r["State"], r["StateReasonCode"]) == ("Pending", "Creating")
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    got = lam.get_function(FunctionName=name)["Configuration"]
    assert (got["State"], got["LastUpdateStatus"]) == ("Active", "Successful")
    u = lam.update_function_configuration(
        FunctionName=name, VpcConfig={"SubnetIds": [net["b"]], "SecurityGroupIds": [net["sg2"]]}
    )
    assert u["LastUpdateStatus"] == "InProgress" and u["VpcConfig"]["SubnetIds"] == [net["b"]]
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    d = lam.update_function_configuration(
        FunctionName=name, VpcConfig={"SubnetIds": [], "SecurityGroupIds": []}
    )
    assert d["VpcConfig"] == {
        "SubnetIds": [],
        "SecurityGroupIds": [],
        "VpcId": "",
        "Ipv6AllowedForDualStack": False,
    }
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    assert lam.get_function_configuration(FunctionName=name)["VpcConfig"]["VpcId"] == ""
    lam.delete_function(FunctionName=name)


@pytest.mark.parametrize(
    ("vpc", "status", "code", "message"),
    [
        pytest.param(
            {"SubnetIds": ["bad_subnet"], "SecurityGroupIds": ["sg-1"]},
            400,
            "ValidationException",
            "1 validation error detected: Value '[bad_subnet]' at 'vpcConfig.subnetIds' failed to satisfy "
            "constraint: Member must satisfy constraint: [Member must have length less than or equal to 1024, "
            "Member must have length greater than or equal to 0, Member must satisfy regular expression "
            "pattern: subnet-[0-9a-z]*]",
            id="subnet-pattern",
        ),
        pytest.param(
            {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["bad_sg"]},
            400,
            "ValidationException",
            "1 validation error detected: Value '[bad_sg]' at 'vpcConfig.securityGroupIds' failed to satisfy "
            "constraint: Member must satisfy constraint: [Member must have length less than or equal to 1024, "
            "Member must have length greater than or equal to 0, Member must satisfy regular expression "
            "pattern: sg-[0-9a-zA-Z]*]",
            id="group-pattern",
        ),
        pytest.param(
            {"SubnetIds": ["subnet-1"], "SecurityGroupIds": []},
            400,
            "InvalidParameterValueException",
            "SubnetIds and SecurityIds must coexist or be both empty list.",
            id="coexist",
        ),
        pytest.param(
            {"SubnetIds": ["subnet-00000000000000001"], "SecurityGroupIds": ["sg-00000000000000001"]},
            400,
            "InvalidParameterValueException",
            "Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. EC2 Error "
            "Message: The security group 'sg-00000000000000001' does not exist",
            id="groups-before-subnets",
        ),
    ],
)
def test_validation(lam: Any, vpc: dict[str, list[str]], status: int, code: str, message: str) -> None:
    name = fn()
    with pytest.raises(lam.exceptions.ClientError) as e:
        create(lam, name, vpc)
    assert err(e) == (status, code, message)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)


def test_unknown_subnet_and_two_vpcs(lam: Any, net: dict[str, str]) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, fn(), {"SubnetIds": ["subnet-00000000000000001"], "SecurityGroupIds": [net["sg1"]]})
    assert err(e)[2] == (
        "Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. EC2 Error "
        "Message: The subnet ID 'subnet-00000000000000001' does not exist"
    )
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        create(lam, fn(), {"SubnetIds": [net["other_subnet"]], "SecurityGroupIds": [net["sg1"]]})


def test_role_without_eni_permissions(vpc_server: LaminaServer, lam: Any, net: dict[str, str]) -> None:
    from lamina_server import create_lambda_role

    arn = create_lambda_role(vpc_server, "test", "test", name="basic-only")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, fn(), {"SubnetIds": [net["a"]], "SecurityGroupIds": [net["sg1"]]}, Role=arn)
    assert (
        err(e)[2]
        == "The provided execution role does not have permissions to call CreateNetworkInterface on EC2"
    )


def test_interfaces_are_shared_per_subnet_and_groups(lam: Any, ec2: Any, net: dict[str, str]) -> None:
    before = available(ec2, net["b"])
    names = [fn(), fn()]
    for name in names:  # same subnet, same groups given in another order: one interface
        create(
            lam,
            name,
            {
                "SubnetIds": [net["b"]],
                "SecurityGroupIds": [net["sg1"], net["sg2"]][:: 1 if name == names[0] else -1],
            },
        )
    for name in names:
        lam.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
        )
    enis = lambda_enis(ec2, net["b"])
    assert len(enis) == 1
    eni = enis[0]
    assert eni["Status"] == "in-use" and eni["RequesterManaged"] is True
    assert eni["Description"].startswith(f"AWS Lambda VPC ENI-{names[0]}-")
    assert sorted(g["GroupId"] for g in eni["Groups"]) == sorted([net["sg1"], net["sg2"]])
    assert available(ec2, net["b"]) == before - 1  # one address per combination, not per function
    other = fn()
    create(lam, other, {"SubnetIds": [net["b"]], "SecurityGroupIds": [net["sg1"]]})
    lam.get_waiter("function_active_v2").wait(
        FunctionName=other, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    assert len(lambda_enis(ec2, net["b"])) == 2 and available(ec2, net["b"]) == before - 2
    for name in [*names, other]:
        lam.delete_function(FunctionName=name)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and lambda_enis(ec2, net["b"]):
        time.sleep(0.1)
    assert lambda_enis(ec2, net["b"]) == [] and available(ec2, net["b"]) == before


def test_small_subnet_runs_out_of_addresses(lam: Any, ec2: Any, net: dict[str, str]) -> None:
    small = net["small"]
    assert available(ec2, small) == 11  # a /28 keeps 5 of its 16 addresses
    fillers = [
        ec2.create_network_interface(SubnetId=small)["NetworkInterface"]["NetworkInterfaceId"]
        for _ in range(11)
    ]
    assert available(ec2, small) == 0
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.create_network_interface(SubnetId=small)
    assert e.value.response["Error"]["Code"] == "InsufficientFreeAddressesInSubnet"
    name = fn()
    create(lam, name, {"SubnetIds": [small], "SecurityGroupIds": [net["sg1"]]})
    deadline = time.monotonic() + 10
    cfg = lam.get_function_configuration(FunctionName=name)
    while time.monotonic() < deadline and cfg["State"] == "Pending":
        time.sleep(0.1)
        cfg = lam.get_function_configuration(FunctionName=name)
    assert (cfg["State"], cfg["StateReasonCode"]) == ("Failed", "SubnetOutOfIPAddresses")
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.invoke(FunctionName=name)
    assert err(e)[:2] == (502, "SubnetIPAddressLimitReachedException")
    for eni in fillers:
        ec2.delete_network_interface(NetworkInterfaceId=eni)


def test_dependency_violation_while_a_function_uses_the_subnet(
    lam: Any, ec2: Any, net: dict[str, str]
) -> None:
    name = fn()
    create(lam, name, {"SubnetIds": [net["a"]], "SecurityGroupIds": [net["sg2"]]})
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.delete_subnet(SubnetId=net["a"])
    assert e.value.response["Error"]["Code"] == "DependencyViolation"
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.delete_security_group(GroupId=net["sg2"])
    assert e.value.response["Error"]["Code"] == "DependencyViolation"
    lam.delete_function(FunctionName=name)


def test_idle_vpc_function_goes_inactive_and_comes_back(tmp_path: Any) -> None:
    srv = LaminaServer(tmp_path / "data", extra_args=("--eni-release-delay", "0", "--vpc-idle-reclaim", "1"))
    try:
        client(srv, "iam").attach_role_policy(RoleName="lambda-role", PolicyArn=VPC_POLICY)
        ec2, lam = client(srv, "ec2"), client(srv)
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
        sg = ec2.create_security_group(VpcId=vpc, GroupName="g", Description="g")["GroupId"]
        name = fn()
        create(lam, name, {"SubnetIds": [subnet], "SecurityGroupIds": [sg]})
        deadline = time.monotonic() + 15
        cfg = lam.get_function_configuration(FunctionName=name)
        while time.monotonic() < deadline and cfg["State"] != "Inactive":
            time.sleep(0.2)
            cfg = lam.get_function_configuration(FunctionName=name)
        assert (cfg["State"], cfg["StateReasonCode"], cfg["StateReason"]) == (
            "Inactive",
            "Idle",
            "The function is currently idle.",
        )
        assert lambda_enis(ec2, subnet) == []
        with pytest.raises(lam.exceptions.ClientError) as e:
            lam.invoke(FunctionName=name)
        assert err(e)[:2] == (502, "ResourceNotReadyException")
        # Back to Pending, then Active with an interface again (checked quickly: idle after 1 s here).
        deadline = time.monotonic() + 15
        states = set()
        while time.monotonic() < deadline and "Active" not in states:
            states.add(lam.get_function_configuration(FunctionName=name)["State"])
            time.sleep(0.05)
        assert "Active" in states
    finally:
        srv.stop()


def test_role_losing_permissions_fails_the_update(
    vpc_server: LaminaServer, lam: Any, ec2: Any, net: dict[str, str]
) -> None:
    from lamina_server import create_lambda_role

    iam = client(vpc_server, "iam")
    role = create_lambda_role(vpc_server, "test", "test", name="shrinking")
    iam.attach_role_policy(RoleName="shrinking", PolicyArn=VPC_POLICY)
    name = fn()
    create(lam, name, {"SubnetIds": [net["a"]], "SecurityGroupIds": [net["sg1"]]}, Role=role)
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    iam.detach_role_policy(RoleName="shrinking", PolicyArn=VPC_POLICY)
    lam.update_function_configuration(FunctionName=name, Timeout=9)
    deadline = time.monotonic() + 10
    cfg = lam.get_function_configuration(FunctionName=name)
    while time.monotonic() < deadline and cfg["LastUpdateStatus"] == "InProgress":
        time.sleep(0.1)
        cfg = lam.get_function_configuration(FunctionName=name)
    assert (cfg["LastUpdateStatus"], cfg["LastUpdateStatusReasonCode"]) == (
        "Failed",
        "InsufficientRolePermissions",
    )
    lam.delete_function(FunctionName=name)
