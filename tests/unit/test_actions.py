"""The authorization table: each operation's action, resource and condition keys, as AWS's Service
Authorization Reference lists them, for every operation lamina serves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from lamina.domain import actions_s3
from lamina.domain.actions import NEVER_DENIED, TABLES, Check, ContextValue, checks, is_mutating
from lamina.domain.actions_spec import IamEntity
from lamina.services.ec2 import (
    handlers_gateways,
    handlers_interfaces,
    handlers_routes,
    handlers_secgroups,
    handlers_tags,
    handlers_vpcs,
)
from lamina.services.iam import handlers as iam_handlers
from lamina.services.lambda_ import (
    aliases,
    code_signing,
    event_configs,
    function_settings,
    functions,
    layers,
    tags,
)
from lamina.services.logs import handlers as logs_handlers
from lamina.services.logs import live_tail as logs_live_tail
from lamina.services.s3 import buckets as s3_buckets
from lamina.services.s3 import listing as s3_listing
from lamina.services.s3 import objects as s3_objects
from lamina.services.sts import handlers as sts_handlers

ACCOUNT = "111111111111"
OTHER = "222222222222"
REGION = "us-east-1"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"


@dataclass
class Stores:
    """The two questions the table may ask, answered from plain dicts."""

    subnets: dict[str, str] = field(default_factory=lambda: {"subnet-a": "vpc-1", "subnet-b": "vpc-1"})
    paths: dict[tuple[str, str], str] = field(
        default_factory=lambda: {("user", "dev"): "/team/", ("role", "reader"): "/svc/"}
    )
    boundaries: dict[tuple[str, str], str] = field(
        default_factory=lambda: {("user", "dev"): f"arn:aws:iam::{ACCOUNT}:policy/b"}
    )

    def subnet_vpc(self, account: str, region: str, subnet_id: str) -> str | None:
        return self.subnets.get(subnet_id) if account == ACCOUNT and region == REGION else None

    def iam_entity(self, account: str, kind: str, name: str) -> IamEntity | None:
        stored = next((n for k, n in self.paths if k == kind and n.lower() == name.lower()), None)
        if account != ACCOUNT or stored is None:
            return None
        return IamEntity(self.paths[(kind, stored)], stored, self.boundaries.get((kind, stored)))


def run(
    service: str, operation: str, params: dict[str, Any], caller_user: str | None = None
) -> tuple[Check, ...]:
    found = checks(
        service,
        operation,
        account=ACCOUNT,
        region=REGION,
        params=params,
        lookups=Stores(),
        caller_user=caller_user,
    )
    assert found is not None
    return found


def one(service: str, operation: str, params: dict[str, Any], caller_user: str | None = None) -> Check:
    (check,) = run(service, operation, params, caller_user)
    return check


# --- Lambda ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "params", "action", "resource"),
    [
        (
            "GetFunctionConfiguration",
            {"FunctionName": "fn-a"},
            "lambda:GetFunctionConfiguration",
            f"{FN}:fn-a",
        ),
        ("GetFunction", {"FunctionName": "fn-a", "Qualifier": "3"}, "lambda:GetFunction", f"{FN}:fn-a:3"),
        ("GetFunction", {"FunctionName": "fn-a:live"}, "lambda:GetFunction", f"{FN}:fn-a:live"),
        (
            "GetFunction",
            {"FunctionName": f"{ACCOUNT}:function:fn-a:$LATEST"},
            "lambda:GetFunction",
            f"{FN}:fn-a:$LATEST",
        ),
        (
            "Invoke",
            {"FunctionName": f"arn:aws:lambda:eu-west-1:{OTHER}:function:shared"},
            "lambda:InvokeFunction",
            f"arn:aws:lambda:eu-west-1:{OTHER}:function:shared",
        ),
        (
            "Invoke",
            {"FunctionName": f"arn:aws:lambda:{REGION}:{OTHER}:function:shared:2"},
            "lambda:InvokeFunction",
            f"arn:aws:lambda:{REGION}:{OTHER}:function:shared:2",
        ),
        (
            "InvokeWithResponseStream",
            {"FunctionName": "fn-a", "Qualifier": "live"},
            "lambda:InvokeFunction",
            f"{FN}:fn-a:live",
        ),
        ("ListFunctions", {}, "lambda:ListFunctions", "*"),
        ("GetAccountSettings", {}, "lambda:GetAccountSettings", "*"),
        ("ListVersionsByFunction", {"FunctionName": "fn-a"}, "lambda:ListVersionsByFunction", f"{FN}:fn-a"),
        (
            "DeleteFunction",
            {"FunctionName": "fn-a", "Qualifier": "1"},
            "lambda:DeleteFunction",
            f"{FN}:fn-a:1",
        ),
        (
            "RemovePermission",
            {"FunctionName": "fn-a", "StatementId": "s"},
            "lambda:RemovePermission",
            f"{FN}:fn-a",
        ),
        ("GetPolicy", {"FunctionName": "fn-a"}, "lambda:GetPolicy", f"{FN}:fn-a"),
        (
            "PublishLayerVersion",
            {"LayerName": "deps"},
            "lambda:PublishLayerVersion",
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:deps",
        ),
        (
            "GetLayerVersion",
            {"LayerName": "deps", "VersionNumber": 3},
            "lambda:GetLayerVersion",
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:deps:3",
        ),
        (
            "GetLayerVersionPolicy",
            {"LayerName": f"arn:aws:lambda:{REGION}:{OTHER}:layer:shared", "VersionNumber": 1},
            "lambda:GetLayerVersionPolicy",
            f"arn:aws:lambda:{REGION}:{OTHER}:layer:shared:1",
        ),
        (
            "GetLayerVersionByArn",
            {"Arn": f"arn:aws:lambda:{REGION}:{OTHER}:layer:shared:4"},
            "lambda:GetLayerVersion",
            f"arn:aws:lambda:{REGION}:{OTHER}:layer:shared:4",
        ),
        ("ListLayers", {}, "lambda:ListLayers", "*"),
        ("ListLayerVersions", {"LayerName": "deps"}, "lambda:ListLayerVersions", "*"),
        ("CreateAlias", {"FunctionName": "fn-a", "Name": "live"}, "lambda:CreateAlias", f"{FN}:fn-a:live"),
        ("GetAlias", {"FunctionName": f"{FN}:fn-a", "Name": "live"}, "lambda:GetAlias", f"{FN}:fn-a:live"),
        ("UpdateAlias", {"FunctionName": "fn-a", "Name": "live"}, "lambda:UpdateAlias", f"{FN}:fn-a:live"),
        (
            "DeleteAlias",
            {"FunctionName": f"arn:aws:lambda:{REGION}:{OTHER}:function:fn-b", "Name": "live"},
            "lambda:DeleteAlias",
            f"arn:aws:lambda:{REGION}:{OTHER}:function:fn-b:live",
        ),
        ("ListAliases", {"FunctionName": "fn-a"}, "lambda:ListAliases", f"{FN}:fn-a"),
    ],
    ids=[
        "name",
        "qualifier-param",
        "name-with-alias",
        "partial-arn-latest",
        "cross-account-arn",
        "cross-account-qualified",
        "invoke-with-response-stream",
        "list-functions",
        "account-settings",
        "versions",
        "delete-version",
        "remove-permission",
        "get-policy",
        "publish-layer",
        "layer-version",
        "layer-arn-name",
        "layer-by-arn",
        "list-layers",
        "list-layer-versions",
        "create-alias",
        "get-alias-by-arn",
        "update-alias",
        "delete-alias-cross-account",
        "list-aliases",
    ],
)
def test_lambda_action_and_resource(
    operation: str, params: dict[str, Any], action: str, resource: str
) -> None:
    assert one("lambda", operation, params) == Check(action, resource, {})


def test_create_function_passes_the_role_and_carries_its_settings() -> None:
    params = {
        "FunctionName": "fn-a",
        "Role": f"arn:aws:iam::{ACCOUNT}:role/exec",
        "Layers": [f"arn:aws:lambda:{REGION}:{OTHER}:layer:shared:1"],
        "VpcConfig": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
        "Tags": {"team": "red"},
    }
    create, pass_role, layer, tag = run("lambda", "CreateFunction", params)
    assert create == Check(
        "lambda:CreateFunction",
        f"{FN}:fn-a",
        {
            "lambda:Layer": (f"arn:aws:lambda:{REGION}:{OTHER}:layer:shared:1",),
            "lambda:VpcIds": ("vpc-1",),
            "lambda:SubnetIds": ("subnet-a", "subnet-b"),
            "lambda:SecurityGroupIds": ("sg-1",),
            "aws:RequestTag/team": "red",
            "aws:TagKeys": ("team",),
        },
    )
    assert pass_role == Check(
        "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/exec", {"iam:PassedToService": "lambda.amazonaws.com"}
    )
    # Adding a layer needs lambda:GetLayerVersion on it (Lambda Developer Guide, layer permissions).
    assert layer == Check("lambda:GetLayerVersion", f"arn:aws:lambda:{REGION}:{OTHER}:layer:shared:1")
    # Tagging on create also needs the tagging action (Lambda's attribute-based access control).
    assert tag == Check(
        "lambda:TagResource", f"{FN}:fn-a", {"aws:RequestTag/team": "red", "aws:TagKeys": ("team",)}
    )


@pytest.mark.parametrize(
    ("operation", "kind", "tag_action"),
    [("CreateUser", "user", "iam:TagUser"), ("CreateRole", "role", "iam:TagRole")],
)
def test_iam_tags_on_create_need_the_tagging_action(operation: str, kind: str, tag_action: str) -> None:
    name_key = "UserName" if kind == "user" else "RoleName"
    params = {name_key: "x", "Tags": [{"Key": "team", "Value": "red"}]}
    keys = {"aws:RequestTag/team": "red", "aws:TagKeys": ("team",)}
    create, tag = run("iam", operation, params)
    assert create == Check(f"iam:{operation}", f"arn:aws:iam::{ACCOUNT}:{kind}/x", keys)
    assert tag == Check(tag_action, f"arn:aws:iam::{ACCOUNT}:{kind}/x", keys)
    assert len(run("iam", operation, {name_key: "x"})) == 1  # no tags, no tagging check


@pytest.mark.parametrize(
    ("params", "keys"),
    [
        ({"FunctionName": "fn-a", "Timeout": 9}, set()),
        ({"FunctionName": "fn-a", "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []}}, set()),
        (
            {
                "FunctionName": "fn-a",
                "VpcConfig": {"SubnetIds": ["subnet-gone"], "SecurityGroupIds": ["sg-1"]},
            },
            {"lambda:SubnetIds", "lambda:SecurityGroupIds"},
        ),
        ({"FunctionName": "fn-a", "Layers": []}, set()),
    ],
    ids=["no-vpc-config", "vpc-detached", "unknown-subnet", "layers-removed"],
)
def test_update_configuration_keys_are_absent_unless_given(params: dict[str, Any], keys: set[str]) -> None:
    # "Null": {"lambda:VpcIds": "true"} must hold for these (Lambda Developer Guide, VPC condition keys)
    (check,) = run("lambda", "UpdateFunctionConfiguration", params)
    assert check.action == "lambda:UpdateFunctionConfiguration"
    assert set(check.context) == keys


def test_update_configuration_with_a_role_passes_it() -> None:
    role = f"arn:aws:iam::{OTHER}:role/x"
    update, pass_role = run("lambda", "UpdateFunctionConfiguration", {"FunctionName": "fn-a", "Role": role})
    assert update.resource == f"{FN}:fn-a"
    assert pass_role.action == "iam:PassRole" and pass_role.resource == role


def test_add_permission_carries_the_principal() -> None:
    check = one("lambda", "AddPermission", {"FunctionName": "fn-a", "Principal": "s3.amazonaws.com"})
    assert check == Check("lambda:AddPermission", f"{FN}:fn-a", {"lambda:Principal": "s3.amazonaws.com"})


# --- IAM and STS ----------------------------------------------------------------------------------

IAM = f"arn:aws:iam::{ACCOUNT}"


@pytest.mark.parametrize(
    ("operation", "params", "caller", "expected"),
    [
        ("GetRole", {"RoleName": "reader"}, None, Check("iam:GetRole", f"{IAM}:role/svc/reader")),
        # IAM names are case-insensitive: the stored role's own ARN, whatever case the request uses.
        ("GetRole", {"RoleName": "READER"}, None, Check("iam:GetRole", f"{IAM}:role/svc/reader")),
        ("DeleteRole", {"RoleName": "unknown"}, None, Check("iam:DeleteRole", f"{IAM}:role/unknown")),
        ("ListRoles", {}, None, Check("iam:ListRoles", "*")),
        (
            "CreateRole",
            {"RoleName": "r", "Path": "/app/", "PermissionsBoundary": f"{IAM}:policy/b"},
            None,
            Check("iam:CreateRole", f"{IAM}:role/app/r", {"iam:PermissionsBoundary": f"{IAM}:policy/b"}),
        ),
        (
            "CreateUser",
            {"UserName": "u", "Path": "/ops/"},
            None,
            Check("iam:CreateUser", f"{IAM}:user/ops/u"),
        ),
        (
            "AttachUserPolicy",
            {"UserName": "dev", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            None,
            Check(
                "iam:AttachUserPolicy",
                f"{IAM}:user/team/dev",
                # The user's own boundary: what delegated administration is conditioned on.
                {
                    "iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess",
                    "iam:PermissionsBoundary": f"{IAM}:policy/b",
                },
            ),
        ),
        (
            "DetachGroupPolicy",
            {"GroupName": "ops", "PolicyArn": f"{IAM}:policy/p"},
            None,
            Check("iam:DetachGroupPolicy", f"{IAM}:group/ops", {"iam:PolicyARN": f"{IAM}:policy/p"}),
        ),
        (
            "PutRolePermissionsBoundary",
            {"RoleName": "reader", "PermissionsBoundary": f"{IAM}:policy/b"},
            None,
            Check(
                "iam:PutRolePermissionsBoundary",
                f"{IAM}:role/svc/reader",
                {"iam:PermissionsBoundary": f"{IAM}:policy/b"},
            ),
        ),
        (
            "UntagRole",
            {"RoleName": "r", "TagKeys": ["a", "b"]},
            None,
            Check("iam:UntagRole", f"{IAM}:role/r", {"aws:TagKeys": ("a", "b")}),
        ),
        ("GetPolicy", {"PolicyArn": f"{IAM}:policy/x/p"}, None, Check("iam:GetPolicy", f"{IAM}:policy/x/p")),
        ("CreatePolicy", {"PolicyName": "p"}, None, Check("iam:CreatePolicy", f"{IAM}:policy/p")),
        (
            "AddUserToGroup",
            {"GroupName": "ops", "UserName": "dev"},
            None,
            Check("iam:AddUserToGroup", f"{IAM}:group/ops"),
        ),
        (
            "CreateAccessKey",
            {"UserName": "dev"},
            "other",
            Check("iam:CreateAccessKey", f"{IAM}:user/team/dev"),
        ),
        ("CreateAccessKey", {}, "dev", Check("iam:CreateAccessKey", f"{IAM}:user/team/dev")),
        ("GetUser", {}, None, Check("iam:GetUser", f"{IAM}:root")),
        (
            "SimulatePrincipalPolicy",
            {"PolicySourceArn": f"{IAM}:role/reader", "ActionNames": ["lambda:GetFunction"]},
            None,
            Check("iam:SimulatePrincipalPolicy", f"{IAM}:role/reader"),
        ),
        ("SimulateCustomPolicy", {"PolicyInputList": []}, None, Check("iam:SimulateCustomPolicy", "*")),
    ],
    ids=[
        "role-path-looked-up",
        "role-name-in-another-case",
        "unknown-role-default-path",
        "list-roles",
        "create-role-boundary",
        "create-user-path",
        "attach-user-policy",
        "detach-group-policy",
        "role-boundary",
        "untag-role",
        "policy-arn-as-given",
        "create-policy",
        "group-membership",
        "access-key-named-user",
        "access-key-caller",
        "get-user-as-root",
        "simulate-principal",
        "simulate-custom",
    ],
)
def test_iam_checks(operation: str, params: dict[str, Any], caller: str | None, expected: Check) -> None:
    assert one("iam", operation, params, caller) == expected


def test_assume_role_with_session_tags_needs_tag_session() -> None:
    role = f"arn:aws:iam::{OTHER}:role/reader"
    params = {
        "RoleArn": role,
        "RoleSessionName": "me",
        "Tags": [{"Key": "project", "Value": "x"}],
        "TransitiveTagKeys": ["project"],
    }
    assume, tag = run("sts", "AssumeRole", params)
    tags: dict[str, ContextValue] = {
        "aws:RequestTag/project": "x",
        "aws:TagKeys": ("project",),
        "sts:TransitiveTagKeys": ("project",),
    }
    assert assume == Check("sts:AssumeRole", role, {**tags, "sts:RoleSessionName": "me"})
    assert tag == Check("sts:TagSession", role, tags)


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("AssumeRole", (Check("sts:AssumeRole", f"{IAM}:role/r", {"sts:RoleSessionName": "s"}),)),
        ("GetCallerIdentity", (Check("sts:GetCallerIdentity", "*"),)),
        ("GetSessionToken", (Check("sts:GetSessionToken", "*"),)),
        ("DecodeAuthorizationMessage", (Check("sts:DecodeAuthorizationMessage", "*"),)),
    ],
    ids=["assume-role-plain", "caller-identity", "session-token", "decode"],
)
def test_sts_checks(operation: str, expected: tuple[Check, ...]) -> None:
    assert run("sts", operation, {"RoleArn": f"{IAM}:role/r", "RoleSessionName": "s"}) == expected


def test_get_caller_identity_is_never_denied() -> None:
    assert ("sts", "GetCallerIdentity") in NEVER_DENIED


# --- EC2 ------------------------------------------------------------------------------------------

EC2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("DescribeVpcs", {"VpcIds": ["vpc-1"]}, (Check("ec2:DescribeVpcs", "*"),)),
        (
            "CreateVpc",
            {
                "CidrBlock": "10.0.0.0/16",
                "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "v"}]}],
            },
            (Check("ec2:CreateVpc", f"{EC2}:vpc/*", {"aws:RequestTag/Name": "v", "aws:TagKeys": ("Name",)}),),
        ),
        ("DeleteVpc", {"VpcId": "vpc-1"}, (Check("ec2:DeleteVpc", f"{EC2}:vpc/vpc-1"),)),
        (
            "CreateSubnet",
            {"VpcId": "vpc-1", "CidrBlock": "10.0.1.0/24"},
            (Check("ec2:CreateSubnet", f"{EC2}:subnet/*", {"ec2:Vpc": f"{EC2}:vpc/vpc-1"}),),
        ),
        (
            "CreateSecurityGroup",
            {"GroupName": "g", "Description": "d", "VpcId": "vpc-1"},
            (Check("ec2:CreateSecurityGroup", f"{EC2}:security-group/*", {"ec2:Vpc": f"{EC2}:vpc/vpc-1"}),),
        ),
        (
            "AuthorizeSecurityGroupIngress",
            {"GroupId": "sg-1"},
            (Check("ec2:AuthorizeSecurityGroupIngress", f"{EC2}:security-group/sg-1"),),
        ),
        (
            "CreateNetworkInterface",
            {"SubnetId": "subnet-a"},
            (
                Check(
                    "ec2:CreateNetworkInterface",
                    f"{EC2}:network-interface/*",
                    {"ec2:Subnet": f"{EC2}:subnet/subnet-a", "ec2:Vpc": f"{EC2}:vpc/vpc-1"},
                ),
            ),
        ),
        (
            "ReleaseAddress",
            {"AllocationId": "eipalloc-1"},
            (Check("ec2:ReleaseAddress", f"{EC2}:elastic-ip/eipalloc-1"),),
        ),
        (
            "DeleteNatGateway",
            {"NatGatewayId": "nat-1"},
            (Check("ec2:DeleteNatGateway", f"{EC2}:natgateway/nat-1"),),
        ),
        ("CreateRoute", {"RouteTableId": "rtb-1"}, (Check("ec2:CreateRoute", f"{EC2}:route-table/rtb-1"),)),
        ("ReplaceRoute", {"RouteTableId": "rtb-1"}, (Check("ec2:ReplaceRoute", f"{EC2}:route-table/rtb-1"),)),
        ("CreateDefaultVpc", {}, (Check("ec2:CreateDefaultVpc", f"{EC2}:vpc/*"),)),
        ("DescribeTags", {}, (Check("ec2:DescribeTags", "*"),)),
        (
            "ModifySubnetAttribute",
            {"SubnetId": "subnet-a"},
            (Check("ec2:ModifySubnetAttribute", f"{EC2}:subnet/subnet-a"),),
        ),
        (
            "AssociateAddress",
            {"AllocationId": "eipalloc-1", "NetworkInterfaceId": "eni-1"},
            (Check("ec2:AssociateAddress", f"{EC2}:elastic-ip/eipalloc-1"),),
        ),
        (
            "ModifyNetworkInterfaceAttribute",
            {"NetworkInterfaceId": "eni-1"},
            (Check("ec2:ModifyNetworkInterfaceAttribute", f"{EC2}:network-interface/eni-1"),),
        ),
        (
            "UpdateSecurityGroupRuleDescriptionsEgress",
            {"GroupId": "sg-1"},
            (Check("ec2:UpdateSecurityGroupRuleDescriptionsEgress", f"{EC2}:security-group/sg-1"),),
        ),
        (
            "AttachInternetGateway",
            {"InternetGatewayId": "igw-1", "VpcId": "vpc-1"},
            (
                Check(
                    "ec2:AttachInternetGateway",
                    f"{EC2}:internet-gateway/igw-1",
                    {"ec2:Vpc": f"{EC2}:vpc/vpc-1"},
                ),
            ),
        ),
        (
            "CreateTags",
            {"Resources": ["vpc-1", "sg-2"], "Tags": [{"Key": "k", "Value": "v"}]},
            (
                Check("ec2:CreateTags", f"{EC2}:vpc/vpc-1", {"aws:RequestTag/k": "v", "aws:TagKeys": ("k",)}),
                Check(
                    "ec2:CreateTags",
                    f"{EC2}:security-group/sg-2",
                    {"aws:RequestTag/k": "v", "aws:TagKeys": ("k",)},
                ),
            ),
        ),
        (
            "DeleteTags",
            {"Resources": ["subnet-a"], "Tags": [{"Key": "k"}]},
            (Check("ec2:DeleteTags", f"{EC2}:subnet/subnet-a", {"aws:TagKeys": ("k",)}),),
        ),
    ],
    ids=[
        "describe",
        "create-vpc-tags",
        "delete-vpc",
        "create-subnet",
        "create-security-group",
        "authorize-ingress",
        "create-interface",
        "release-address",
        "delete-nat",
        "create-route",
        "replace-route",
        "create-default-vpc",
        "describe-tags",
        "modify-subnet-attribute",
        "associate-address",
        "modify-interface-attribute",
        "update-egress-descriptions",
        "attach-igw",
        "create-tags",
        "delete-tags",
    ],
)
def test_ec2_checks(operation: str, params: dict[str, Any], expected: tuple[Check, ...]) -> None:
    assert run("ec2", operation, params) == expected


@pytest.mark.parametrize(
    ("service", "operation", "mutating"),
    [
        ("ec2", "DescribeVpcs", False),
        ("ec2", "CreateVpc", True),
        ("ec2", "AuthorizeSecurityGroupIngress", True),
        ("lambda", "GetFunction", False),
        ("iam", "ListRoles", False),
        ("iam", "DeleteRole", True),
    ],
    ids=["describe", "create", "authorize", "get", "list", "delete"],
)
def test_is_mutating(service: str, operation: str, mutating: bool) -> None:
    assert is_mutating(service, operation) is mutating


# --- Coverage and robustness ----------------------------------------------------------------------

# Operations being added in parallel with this table (issue 12): function policies, IAM users,
# groups, role tags, boundaries, simulation, and the rest of STS.
UPCOMING = {
    "lambda": {"AddPermission", "RemovePermission", "GetPolicy"},
    "iam": {
        *["CreateUser", "GetUser", "ListUsers", "UpdateUser", "DeleteUser"],
        *["CreateAccessKey", "ListAccessKeys", "UpdateAccessKey", "DeleteAccessKey"],
        *["PutUserPolicy", "GetUserPolicy", "DeleteUserPolicy", "ListUserPolicies"],
        *[
            "AttachUserPolicy",
            "DetachUserPolicy",
            "ListAttachedUserPolicies",
            "TagUser",
            "UntagUser",
            "ListUserTags",
        ],
        *["CreateGroup", "GetGroup", "ListGroups", "DeleteGroup", "AddUserToGroup", "RemoveUserFromGroup"],
        *["ListGroupsForUser", "PutGroupPolicy", "GetGroupPolicy", "DeleteGroupPolicy", "ListGroupPolicies"],
        *[
            "AttachGroupPolicy",
            "DetachGroupPolicy",
            "ListAttachedGroupPolicies",
            "TagRole",
            "UntagRole",
            "ListRoleTags",
        ],
        *["PutRolePermissionsBoundary", "DeleteRolePermissionsBoundary"],
        *["PutUserPermissionsBoundary", "DeleteUserPermissionsBoundary"],
        *["ListPolicies", "SimulatePrincipalPolicy", "SimulateCustomPolicy"],
    },
    "sts": {"GetCallerIdentity", "AssumeRole", "DecodeAuthorizationMessage", "GetSessionToken"},
}
SERVED = {
    "lambda": {
        *functions.HANDLERS,
        *layers.HANDLERS,
        *tags.HANDLERS,
        *aliases.HANDLERS,
        "Invoke",
        "InvokeWithResponseStream",
        *event_configs.HANDLERS,
        *function_settings.HANDLERS,
        *code_signing.HANDLERS,
    },
    "iam": set(iam_handlers.HANDLERS),
    "sts": set(sts_handlers.HANDLERS),
    "ec2": {
        *handlers_vpcs.HANDLERS,
        *handlers_secgroups.HANDLERS,
        *handlers_gateways.HANDLERS,
        *handlers_routes.HANDLERS,
        *handlers_interfaces.HANDLERS,
        *handlers_tags.HANDLERS,
    },
    "s3": {*s3_buckets.HANDLERS, *s3_objects.HANDLERS, *s3_listing.HANDLERS},
    "logs": {*logs_handlers.HANDLERS, *logs_live_tail.HANDLERS},
}
EVERY = sorted(
    (service, operation) for service in SERVED for operation in SERVED[service] | UPCOMING.get(service, set())
)


@pytest.mark.parametrize(("service", "operation"), EVERY, ids=[f"{s}:{o}" for s, o in EVERY])
def test_every_served_operation_has_a_row(service: str, operation: str) -> None:
    found = checks(service, operation, account=ACCOUNT, region=REGION, params={}, lookups=Stores())
    if service == "s3" and operation in actions_s3.DECIDED_BY_HANDLER:
        assert found == ()  # in the table, decided key by key by the handler
        return
    assert found, f"{service} {operation} is not in the table"
    assert all(check.action.split(":")[0] in {service, "iam", "sts"} for check in found)


def test_an_unknown_operation_has_no_row() -> None:
    assert (
        checks("lambda", "NoSuchOperation", account=ACCOUNT, region=REGION, params={}, lookups=Stores())
        is None
    )
    assert checks("sqs", "SendMessage", account=ACCOUNT, region=REGION, params={}, lookups=Stores()) is None


def test_actions_use_aws_casing() -> None:
    for table in TABLES.values():
        for spec in table.values():
            prefix, name = spec.action.split(":")
            assert prefix.islower() and name[0].isupper()


ODD_VALUES: list[Any] = [None, 7, True, 1.5, "", ":::", "arn:", ["x", 3], {"k": [1]}, {1: 2}, [None], b"x"]
ODD_KEYS = [
    "FunctionName",
    "Qualifier",
    "LayerName",
    "VersionNumber",
    "Arn",
    "Role",
    "Layers",
    "VpcConfig",
    "Tags",
    "Principal",
    "UserName",
    "RoleName",
    "GroupName",
    "Path",
    "PolicyArn",
    "PolicySourceArn",
    "PermissionsBoundary",
    "TagKeys",
    "RoleArn",
    "TransitiveTagKeys",
    "VpcId",
    "SubnetId",
    "GroupId",
    "AllocationId",
    "Resources",
    "TagSpecifications",
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_odd_parameters_never_raise(value: Any) -> None:
    every = [
        (service, operation)
        for service, table in TABLES.items()
        for operation in table
        if not (service == "s3" and operation in actions_s3.DECIDED_BY_HANDLER)
    ]
    shapes: list[Any] = [
        dict.fromkeys(ODD_KEYS, value),
        {"VpcConfig": {"SubnetIds": value, "SecurityGroupIds": value}},
        {"Tags": [value, {"Key": value, "Value": value}]},
        {"TagSpecifications": [{"Tags": value}, value]},
        value,
    ]
    for service, operation in every:
        for params in shapes:
            found = checks(
                service, operation, account=ACCOUNT, region=REGION, params=params, lookups=Stores()
            )
            assert found
            assert all(isinstance(check.resource, str) and check.resource for check in found)
