"""Every request authorized as IAM does it: the issue's user story, each service's denial, the attacks.

The real server, driven by boto3 and the AWS CLI. Account 000000000000's root creates the users,
roles and policies; requests are then signed with a user's keys or an assumed-role session.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from iam_kit import (
    ACCT,
    ADMIN,
    TRUST_ACCOUNT,
    assume,
    denied,
    doc,
    err,
    fn_arn,
    make_function,
    role_with,
    uid,
    user_keys,
)
from lamina_server import ACCOUNTS, LaminaServer, client, create_lambda_role, run_aws

ALICE, BOB = ACCOUNTS[1], ACCOUNTS[2]
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def aws(server: LaminaServer, args: list[str], check: bool = True, **creds: str) -> Any:
    """The AWS CLI; with ``check``, it must succeed."""
    out = run_aws(server, *args, **creds)
    if check:
        assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("authz") / "data", accounts=ACCOUNTS)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def iam(server: LaminaServer) -> Any:
    return client(server, "iam")


@pytest.fixture(scope="module")
def lam(server: LaminaServer) -> Any:
    return client(server)


@pytest.fixture(scope="module")
def role_arn(server: LaminaServer) -> str:
    return create_lambda_role(server, "test", "test")


# -- the user story ---------------------------------------------------------------------------------


def test_the_user_story(server: LaminaServer, iam: Any, lam: Any, role_arn: str, tmp_path: Path) -> None:
    """The issue's story, with the AWS CLI as the user types it."""
    fn_a, fn_b = make_function(lam, role_arn), make_function(lam, role_arn)
    dev = uid("dev")
    aws(server, ["iam", "create-user", "--user-name", dev])
    key = json.loads(aws(server, ["iam", "create-access-key", "--user-name", dev]).stdout)["AccessKey"]
    aws(server, ["iam", "attach-user-policy", "--user-name", dev, "--policy-arn", ADMIN])
    reader = uid("reader")
    (tmp_path / "trust.json").write_text(TRUST_ACCOUNT)
    (tmp_path / "allow.json").write_text(
        doc({"Effect": "Allow", "Action": "lambda:GetFunctionConfiguration", "Resource": fn_arn(fn_a)})
    )
    aws(
        server,
        [
            "iam",
            "create-role",
            "--role-name",
            reader,
            "--assume-role-policy-document",
            f"file://{tmp_path}/trust.json",
        ],
    )
    aws(
        server,
        [
            "iam",
            "put-role-policy",
            "--role-name",
            reader,
            "--policy-name",
            "one-function",
            "--policy-document",
            f"file://{tmp_path}/allow.json",
        ],
    )
    as_dev = {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    out = aws(
        server,
        [
            "sts",
            "assume-role",
            "--role-arn",
            f"arn:aws:iam::{ACCT}:role/{reader}",
            "--role-session-name",
            "me",
        ],
        **as_dev,
    )
    creds = json.loads(out.stdout)["Credentials"]
    session = {
        "key": creds["AccessKeyId"],
        "secret": creds["SecretAccessKey"],
        "token": creds["SessionToken"],
    }
    me = f"arn:aws:sts::{ACCT}:assumed-role/{reader}/me"
    ok = aws(server, ["lambda", "get-function-configuration", "--function-name", fn_a], **session)
    assert json.loads(ok.stdout)["FunctionName"] == fn_a
    no = aws(
        server, ["lambda", "get-function-configuration", "--function-name", fn_b], check=False, **session
    )
    assert no.returncode != 0
    assert (
        "An error occurred (AccessDeniedException) when calling the GetFunctionConfiguration operation: "
        + denied(me, "lambda:GetFunctionConfiguration", fn_arn(fn_b))
    ) in no.stderr
    listed = aws(server, ["lambda", "list-functions"], check=False, **session)
    assert denied(me, "lambda:ListFunctions", "*") in listed.stderr
    sim = aws(
        server,
        [
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            f"arn:aws:iam::{ACCT}:role/{reader}",
            "--action-names",
            "lambda:GetFunctionConfiguration",
            "--resource-arns",
            fn_arn(fn_b),
            fn_arn(fn_a),
        ],
        **as_dev,
    )
    results = json.loads(sim.stdout)["EvaluationResults"]
    assert [r["EvalDecision"] for r in results] == [
        "implicitDeny"
    ]  # one result per action: the most restrictive
    assert [
        (r["EvalResourceName"], r["EvalResourceDecision"]) for r in results[0]["ResourceSpecificResults"]
    ] == [
        (fn_arn(fn_b), "implicitDeny"),
        (fn_arn(fn_a), "allowed"),
    ]


# -- each service's denial ----------------------------------------------------------------------------


def test_lambda_denial_shape(server: LaminaServer, iam: Any, lam: Any, role_arn: str) -> None:
    name, key, secret = user_keys(iam)
    user = client(server, key=key, secret=secret)
    with pytest.raises(user.exceptions.ClientError) as e:
        user.get_function(FunctionName="does-not-exist")  # 403, not 404: authorization comes first
    assert err(e) == (
        403,
        "AccessDeniedException",
        denied(f"arn:aws:iam::{ACCT}:user/{name}", "lambda:GetFunction", fn_arn("does-not-exist")),
    )


def test_iam_and_sts_denials_are_query_errors(server: LaminaServer, iam: Any) -> None:
    name, key, secret = user_keys(iam)
    user_iam = client(server, "iam", key=key, secret=secret)
    with pytest.raises(user_iam.exceptions.ClientError) as e:
        user_iam.create_role(RoleName="x", AssumeRolePolicyDocument=TRUST_ACCOUNT)
    assert err(e) == (
        403,
        "AccessDenied",
        denied(f"arn:aws:iam::{ACCT}:user/{name}", "iam:CreateRole", f"arn:aws:iam::{ACCT}:role/x"),
    )
    # GetCallerIdentity is never denied, as in AWS.
    identity = client(server, "sts", key=key, secret=secret).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{ACCT}:user/{name}"
    cli = aws(server, ["iam", "list-roles"], check=False, key=key, secret=secret)
    assert "An error occurred (AccessDenied) when calling the ListRoles operation: User: " in cli.stderr


def test_ec2_denials_and_the_encoded_message(server: LaminaServer, iam: Any) -> None:
    decode = doc({"Effect": "Allow", "Action": "sts:DecodeAuthorizationMessage", "Resource": "*"})
    name, key, secret = user_keys(iam, inline=decode)
    user = f"arn:aws:iam::{ACCT}:user/{name}"
    ec2 = client(server, "ec2", key=key, secret=secret)
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.describe_vpcs()
    assert err(e) == (
        403,
        "UnauthorizedOperation",
        "You are not authorized to perform this operation. User: "
        f"{user} is not authorized to perform: ec2:DescribeVpcs because no identity-based policy allows "
        "the ec2:DescribeVpcs action",
    )
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.create_vpc(CidrBlock="10.9.0.0/16")
    status, code, message = err(e)
    assert (status, code) == (403, "UnauthorizedOperation")
    prefix = (
        f"You are not authorized to perform this operation. User: {user} is not authorized to perform: "
        f"ec2:CreateVpc on resource: arn:aws:ec2:us-east-1:{ACCT}:vpc/* because no identity-based policy "
        "allows the ec2:CreateVpc action. Encoded authorization failure message: "
    )
    assert message.startswith(prefix)
    encoded = message[len(prefix) :]
    decoded = client(server, "sts", key=key, secret=secret).decode_authorization_message(
        EncodedMessage=encoded
    )
    details = json.loads(decoded["DecodedMessage"])
    assert details["allowed"] is False and details["explicitDeny"] is False
    assert details["context"]["action"] == "ec2:CreateVpc"
    assert details["context"]["principal"]["arn"] == user
    # Another account cannot decode it.
    other = client(server, "sts", key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])
    with pytest.raises(other.exceptions.ClientError) as e:
        other.decode_authorization_message(EncodedMessage=encoded)
    assert err(e)[:2] == (400, "InvalidAuthorizationMessageException")


# -- the rules, end to end --------------------------------------------------------------------------


def test_boundary_and_explicit_deny_variants(server: LaminaServer, iam: Any, lam: Any, role_arn: str) -> None:
    fn = make_function(lam, role_arn)
    name, key, secret = user_keys(iam, ADMIN)
    user = f"arn:aws:iam::{ACCT}:user/{name}"
    mine = client(server, key=key, secret=secret)
    assert mine.get_function_configuration(FunctionName=fn)["FunctionName"] == fn
    boundary = iam.create_policy(
        PolicyName=uid("boundary"),
        PolicyDocument=doc({"Effect": "Allow", "Action": "iam:*", "Resource": "*"}),
    )["Policy"]["Arn"]
    iam.put_user_permissions_boundary(UserName=name, PermissionsBoundary=boundary)
    with pytest.raises(mine.exceptions.ClientError) as e:
        mine.get_function_configuration(FunctionName=fn)
    assert err(e)[2] == denied(user, "lambda:GetFunctionConfiguration", fn_arn(fn), "boundary")
    iam.delete_user_permissions_boundary(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="no-get",
        PolicyDocument=doc({"Effect": "Deny", "Action": "lambda:Get*", "Resource": "*"}),
    )
    with pytest.raises(mine.exceptions.ClientError) as e:
        mine.get_function_configuration(FunctionName=fn)
    assert err(e)[2] == denied(user, "lambda:GetFunctionConfiguration", fn_arn(fn), "explicit")


def test_session_policy_intersects(server: LaminaServer, iam: Any, lam: Any, role_arn: str) -> None:
    fn = make_function(lam, role_arn)
    _, key, secret = user_keys(iam, ADMIN)
    role = role_with(iam, ADMIN)
    narrow = doc({"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"})
    creds = assume(server, key, secret, role, Policy=narrow)
    session = client(server, key=creds["key"], secret=creds["secret"], token=creds["token"])
    session.list_functions()
    with pytest.raises(session.exceptions.ClientError) as e:
        session.get_function_configuration(FunctionName=fn)
    me = f"arn:aws:sts::{ACCT}:assumed-role/{role.rsplit('/', 1)[1]}/me"
    assert err(e)[2] == denied(me, "lambda:GetFunctionConfiguration", fn_arn(fn), "session")


def test_forcing_functions_into_a_vpc(server: LaminaServer, iam: Any, lam: Any, role_arn: str) -> None:
    """AWS's documented policy: deny CreateFunction unless it names a VPC (lambda:VpcIds)."""
    force = doc(
        {
            "Effect": "Deny",
            "Action": ["lambda:CreateFunction", "lambda:UpdateFunctionConfiguration"],
            "Resource": "*",
            "Condition": {"Null": {"lambda:VpcIds": "true"}},
        }
    )
    name, key, secret = user_keys(iam, ADMIN, inline=force)
    mine = client(server, key=key, secret=secret)
    fn = uid("novpc")
    with pytest.raises(mine.exceptions.ClientError) as e:
        make_function(mine, role_arn, fn)
    assert err(e)[2] == denied(
        f"arn:aws:iam::{ACCT}:user/{name}", "lambda:CreateFunction", fn_arn(fn), "explicit"
    )
    ec2 = client(server, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=uid("grp"), Description="d", VpcId=vpc)["GroupId"]
    vpc_role = role_with(
        iam,
        "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
        trust=doc(
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ),
    )
    made = make_function(mine, vpc_role, VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]})
    assert lam.get_function_configuration(FunctionName=made)["VpcConfig"]["VpcId"] == vpc


def test_function_policy_grants_another_account(server: LaminaServer, lam: Any, role_arn: str) -> None:
    fn = make_function(lam, role_arn)
    bob = client(server, key=BOB["access_key_id"], secret=BOB["secret_access_key"])
    with pytest.raises(bob.exceptions.ClientError) as e:
        bob.get_function(FunctionName=fn_arn(fn))
    assert err(e) == (
        403,
        "AccessDeniedException",
        denied(f"arn:aws:iam::{BOB['account_id']}:root", "lambda:GetFunction", fn_arn(fn), "resource"),
    )
    lam.add_permission(
        FunctionName=fn, StatementId="bob", Action="lambda:GetFunction", Principal=BOB["account_id"]
    )
    assert bob.get_function(FunctionName=fn_arn(fn))["Configuration"]["FunctionName"] == fn
    # Only what was granted: Bob may not change it.
    with pytest.raises(bob.exceptions.ClientError) as e:
        bob.update_function_configuration(FunctionName=fn_arn(fn), Timeout=9)
    assert err(e)[:2] == (403, "AccessDeniedException")


# -- the attacks of the issue, as regression tests ------------------------------------------------------


def test_another_accounts_role_cannot_be_passed(server: LaminaServer) -> None:
    alice = client(server, key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])
    with pytest.raises(alice.exceptions.ClientError) as e:
        make_function(alice, f"arn:aws:iam::{ACCT}:role/lambda-role")
    assert err(e) == (403, "AccessDeniedException", "Cross-account pass role is not allowed.")


def test_a_basic_execution_role_can_do_nothing_else(
    server: LaminaServer, iam: Any, lam: Any, role_arn: str
) -> None:
    """The credentials a function with only AWSLambdaBasicExecutionRole gets can neither read other
    functions' environment nor mint an admin role another account could assume."""
    secret_fn = make_function(lam, role_arn, Environment={"Variables": {"DB_PASSWORD": "hunter2"}})
    _, key, secret = user_keys(iam, ADMIN)
    basic = role_with(iam, BASIC)
    creds = assume(server, key, secret, basic, session="fn")
    as_fn = {"key": creds["key"], "secret": creds["secret"], "token": creds["token"]}
    fn_lam = client(server, **as_fn)
    for call in (
        lambda: fn_lam.get_function_configuration(FunctionName=secret_fn),
        lambda: fn_lam.get_function(FunctionName=secret_fn),
        lambda: fn_lam.list_functions(),
    ):
        with pytest.raises(fn_lam.exceptions.ClientError) as e:
            call()
        assert err(e)[:2] == (403, "AccessDeniedException")
    fn_iam = client(server, "iam", **as_fn)
    trust_all = doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"})
    with pytest.raises(fn_iam.exceptions.ClientError) as e:
        fn_iam.create_role(RoleName="backdoor", AssumeRolePolicyDocument=trust_all)
    assert err(e)[:2] == (403, "AccessDenied")
    with pytest.raises(fn_iam.exceptions.ClientError) as e:
        fn_iam.attach_role_policy(RoleName=basic.rsplit("/", 1)[1], PolicyArn=ADMIN)
    assert err(e)[:2] == (403, "AccessDenied")


def test_a_trust_policy_naming_anyone_lets_no_other_account_in_unasked(
    server: LaminaServer, iam: Any
) -> None:
    """A role trusting ``*`` may be assumed cross-account only by a principal whose own account allows it;
    Alice's root may (root may not assume roles at all, as in AWS)."""
    open_role = role_with(
        iam, ADMIN, trust=doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"})
    )
    alice_sts = client(server, "sts", key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])
    with pytest.raises(alice_sts.exceptions.ClientError) as e:
        alice_sts.assume_role(RoleArn=open_role, RoleSessionName="xx")
    assert err(e) == (403, "AccessDenied", "Roles may not be assumed by root accounts.")
    alice_iam = client(server, "iam", key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])
    alice_iam.create_user(UserName="nobody")
    key = alice_iam.create_access_key(UserName="nobody")["AccessKey"]
    nobody = client(server, "sts", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    with pytest.raises(nobody.exceptions.ClientError) as e:
        nobody.assume_role(RoleArn=open_role, RoleSessionName="xx")
    assert err(e) == (
        403,
        "AccessDenied",
        denied(f"arn:aws:iam::{ALICE['account_id']}:user/nobody", "sts:AssumeRole", open_role),
    )


def test_decoding_needs_permission(server: LaminaServer, iam: Any) -> None:
    _, key, secret = user_keys(iam)
    sts = client(server, "sts", key=key, secret=secret)
    with pytest.raises(sts.exceptions.ClientError) as e:
        sts.decode_authorization_message(EncodedMessage=base64.b64encode(b"x" * 40).decode())
    assert err(e)[:2] == (403, "AccessDenied")


# -- the console ---------------------------------------------------------------------------------------


def console_post(opener: Any, server: LaminaServer, action: str, doc: Any) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json", "X-Lamina-Console": "1"}
    req = urllib.request.Request(f"{server.url}/console/api/{action}", json.dumps(doc).encode(), headers)
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_console_allows_exactly_what_the_api_does(
    server: LaminaServer, iam: Any, lam: Any, role_arn: str
) -> None:
    import http.cookiejar
    import urllib.request

    fn = make_function(lam, role_arn)
    reader = doc({"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": fn_arn(fn)})
    name, key, secret = user_keys(iam, inline=reader)
    user = f"arn:aws:iam::{ACCT}:user/{name}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    status, me = console_post(opener, server, "signin", {"accessKeyId": key, "secretAccessKey": secret})
    assert status == 200, me

    def call(service: str, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return console_post(
            opener,
            server,
            "call",
            {"service": service, "operation": operation, "region": "us-east-1", "params": params},
        )

    status, out = call("lambda", "GetFunction", {"FunctionName": fn})
    assert status == 200 and out["result"]["Configuration"]["FunctionName"] == fn
    status, out = call("lambda", "ListFunctions", {})
    assert (status, out["error"]) == (
        403,
        {"code": "AccessDeniedException", "message": denied(user, "lambda:ListFunctions", "*")},
    )
    # The log view is CloudWatch Logs' to allow: this user may not read the function's logs.
    status, out = console_post(opener, server, "logs", {"function": fn, "region": "us-east-1"})
    group = f"arn:aws:logs:us-east-1:{ACCT}:log-group:/aws/lambda/{fn}:log-stream:"
    assert (status, out["error"]["message"]) == (403, denied(user, "logs:FilterLogEvents", group))


def test_resource_tags_of_iam_roles_condition_access(server: LaminaServer, iam: Any) -> None:
    tagged = iam.create_role(
        RoleName=uid("tagged"),
        AssumeRolePolicyDocument=TRUST_ACCOUNT,
        Tags=[{"Key": "team", "Value": "blue"}],
    )["Role"]["RoleName"]
    plain = iam.create_role(RoleName=uid("plain"), AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"]["RoleName"]
    blue_only = doc(
        {
            "Effect": "Allow",
            "Action": "iam:GetRole",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/team": "blue"}},
        }
    )
    name, key, secret = user_keys(iam, inline=blue_only)
    mine = client(server, "iam", key=key, secret=secret)
    assert mine.get_role(RoleName=tagged)["Role"]["RoleName"] == tagged
    with pytest.raises(mine.exceptions.ClientError) as e:
        mine.get_role(RoleName=plain)
    assert err(e) == (
        403,
        "AccessDenied",
        # IAM names an existing role "role NAME" in its denials.
        denied(f"arn:aws:iam::{ACCT}:user/{name}", "iam:GetRole", f"role {plain}"),
    )


def test_the_aws_cli_shows_each_services_denial(server: LaminaServer, iam: Any) -> None:
    name, key, secret = user_keys(iam)
    user = f"arn:aws:iam::{ACCT}:user/{name}"
    creds = {"key": key, "secret": secret}
    out = aws(server, ["ec2", "describe-vpcs"], check=False, **creds)
    assert (
        "An error occurred (UnauthorizedOperation) when calling the DescribeVpcs operation: You are not "
        f"authorized to perform this operation. User: {user} is not authorized to perform: ec2:DescribeVpcs "
        "because no identity-based policy allows the ec2:DescribeVpcs action"
    ) in out.stderr
    out = aws(server, ["ec2", "create-vpc", "--cidr-block", "10.8.0.0/16"], check=False, **creds)
    assert "Encoded authorization failure message: " in out.stderr
    role = f"arn:aws:iam::{ACCT}:role/lambda-role"
    out = aws(
        server, ["sts", "assume-role", "--role-arn", role, "--role-session-name", "me"], check=False, **creds
    )
    assert (
        "An error occurred (AccessDenied) when calling the AssumeRole operation: "
        + denied(user, "sts:AssumeRole", role)
    ) in out.stderr
    out = aws(server, ["lambda", "list-layers"], check=False, **creds)
    assert (
        "An error occurred (AccessDeniedException) when calling the ListLayers operation: "
        + denied(user, "lambda:ListLayers", "*")
    ) in out.stderr


def test_trust_policies_see_the_callers_tags_and_sessions_keep_its_id(server: LaminaServer, iam: Any) -> None:
    trust = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue"}},
        }
    )
    blue_team = role_with(iam, trust=trust)
    blue, blue_key, blue_secret = user_keys(iam, ADMIN)
    iam.tag_user(UserName=blue, Tags=[{"Key": "team", "Value": "blue"}])
    assume(server, blue_key, blue_secret, blue_team)
    _, red_key, red_secret = user_keys(iam, ADMIN)
    red_sts = client(server, "sts", key=red_key, secret=red_secret)
    with pytest.raises(red_sts.exceptions.ClientError) as e:
        red_sts.assume_role(RoleArn=blue_team, RoleSessionName="me")
    assert err(e)[:2] == (403, "AccessDenied")
    # GetSessionToken credentials act as the user, with its own id.
    creds = client(server, "sts", key=blue_key, secret=blue_secret).get_session_token()["Credentials"]
    who = client(
        server, "sts", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"]
    ).get_caller_identity()
    assert who["Arn"] == f"arn:aws:iam::{ACCT}:user/{blue}"
    assert who["UserId"] == iam.get_user(UserName=blue)["User"]["UserId"]


def test_the_decoded_message_shows_the_deny_that_decided(server: LaminaServer, iam: Any) -> None:
    no_vpcs = doc(
        {"Effect": "Allow", "Action": ["ec2:*", "sts:DecodeAuthorizationMessage"], "Resource": "*"},
        {"Sid": "NoVpcs", "Effect": "Deny", "Action": "ec2:CreateVpc", "Resource": "*"},
    )
    _, key, secret = user_keys(iam, inline=no_vpcs)
    ec2 = client(server, "ec2", key=key, secret=secret)
    with pytest.raises(ec2.exceptions.ClientError) as e:
        ec2.create_vpc(CidrBlock="10.9.0.0/16")
    message = err(e)[2]
    assert (
        "with an explicit deny in an identity-based policy. Encoded authorization failure message: "
        in message
    )
    encoded = message.rsplit(" ", 1)[1]
    sts = client(server, "sts", key=key, secret=secret)
    details = json.loads(sts.decode_authorization_message(EncodedMessage=encoded)["DecodedMessage"])
    assert details["explicitDeny"] is True
    (statement,) = details["matchedStatements"]["items"]
    assert (statement["statementId"], statement["effect"]) == ("NoVpcs", "DENY")
    assert statement["actions"] == {"items": [{"value": "ec2:CreateVpc"}]}
    keys = {item["key"]: item["values"]["items"] for item in details["context"]["conditions"]["items"]}
    assert keys["aws:RequestedRegion"] == [{"value": "us-east-1"}]
    assert keys["aws:SecureTransport"] == [{"value": "true"}]  # loopback counts as secure
