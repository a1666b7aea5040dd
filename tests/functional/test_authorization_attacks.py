"""A hostile tenant against the authorize stage: every way to make the resource IAM decides on differ
from the resource the handler then acts on, escalations, and stale decisions.

Each test is one attack, with what AWS answers. The real server, driven by boto3.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from iam_kit import (
    ACCT,
    ADMIN,
    CODE,
    TRUST_ACCOUNT,
    denied,
    doc,
    err,
    fn_arn,
    make_function,
    uid,
    user_arn,
    user_keys,
)
from lamina_server import ACCOUNTS, LaminaServer, client, create_lambda_role
from testzips import make_zip

ALICE, BOB = ACCOUNTS[1], ACCOUNTS[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("attacks") / "data", accounts=ACCOUNTS)
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


# -- FunctionName forms: the table must read the name exactly as the handler does -----------------------


def test_account_colon_name_reaches_no_other_accounts_function(server: LaminaServer) -> None:
    """``FunctionName="222222222222:victim"`` is Bob's function ``victim`` (Lambda's name pattern:
    the account part needs no ``function:``). Alice's root may not read or invoke it without a
    function policy: AWS answers AccessDeniedException on Bob's function ARN."""
    bob = client(server, key=BOB["access_key_id"], secret=BOB["secret_access_key"])
    bob_role = create_lambda_role(server, BOB["access_key_id"], BOB["secret_access_key"])
    victim = make_function(bob, bob_role)
    alice = client(server, key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])
    alice_root = f"arn:aws:iam::{ALICE['account_id']}:root"
    bob_fn = fn_arn(victim, BOB["account_id"])
    for call, action in (
        (lambda: alice.get_function(FunctionName=f"{BOB['account_id']}:{victim}"), "lambda:GetFunction"),
        (
            lambda: alice.invoke(FunctionName=f"{BOB['account_id']}:{victim}", Payload=b"{}"),
            "lambda:InvokeFunction",
        ),
        (
            lambda: alice.get_function_configuration(FunctionName=f"us-east-1:{BOB['account_id']}:{victim}"),
            "lambda:GetFunctionConfiguration",
        ),
    ):
        with pytest.raises(alice.exceptions.ClientError) as e:
            call()
        assert err(e) == (403, "AccessDeniedException", denied(alice_root, action, bob_fn, "resource"))


def test_region_or_account_prefix_does_not_escape_an_explicit_deny(
    server: LaminaServer, iam: Any, lam: Any, role_arn: str
) -> None:
    """A Deny on ``function:secret`` holds for every spelling of that function's name."""
    secret = make_function(lam, role_arn)
    policy = doc(
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "lambda:*", "Resource": fn_arn(secret)},
    )
    name, key, sk = user_keys(iam, inline=policy)
    user = client(server, key=key, secret=sk)
    for spelling in (f"{ACCT}:{secret}", f"us-east-1:{secret}", f"function:{secret}", fn_arn(secret)):
        with pytest.raises(user.exceptions.ClientError) as e:
            user.get_function_configuration(FunctionName=spelling)
        assert err(e) == (
            403,
            "AccessDeniedException",
            denied(user_arn(name), "lambda:GetFunctionConfiguration", fn_arn(secret), "explicit"),
        ), spelling


# -- IAM names are case-insensitive: IAM decides on the entity the handler acts on -----------------------


def test_another_case_of_a_role_name_does_not_escape_a_deny(server: LaminaServer, iam: Any) -> None:
    """IAM names are unique whatever their case ("you cannot create groups named both ADMINS and
    admins", IAM User Guide, IAM identifiers), so ``RoleName=admin-x`` acts on role ``Admin-x``:
    a Deny on ``role/Admin-x`` holds, and AWS's message names the role's own ARN."""
    target = uid("Admin")
    arn = iam.create_role(RoleName=target, Path="/ops/", AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"][
        "Arn"
    ]
    policy = doc(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": arn},
    )
    name, key, sk = user_keys(iam, inline=policy)
    user = client(server, "iam", key=key, secret=sk)
    for spelling in (target.lower(), target.upper()):
        with pytest.raises(user.exceptions.ClientError) as e:
            user.attach_role_policy(RoleName=spelling, PolicyArn=ADMIN)
        assert err(e) == (
            403,
            "AccessDenied",
            denied(user_arn(name), "iam:AttachRolePolicy", f"role {target}", "explicit"),
        )
    assert iam.list_attached_role_policies(RoleName=target)["AttachedPolicies"] == []


def test_another_case_of_a_user_name_does_not_escape_a_deny(server: LaminaServer, iam: Any) -> None:
    """The same for users: a Deny on the caller's own user (no self-escalation) holds for
    ``UserName`` in any case."""
    name = uid("User")
    iam.create_user(UserName=name)
    me = user_arn(name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="p",
        PolicyDocument=doc(
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "iam:*", "Resource": me},
        ),
    )
    made = iam.create_access_key(UserName=name)["AccessKey"]
    user = client(server, "iam", key=made["AccessKeyId"], secret=made["SecretAccessKey"])
    with pytest.raises(user.exceptions.ClientError) as e:
        user.attach_user_policy(UserName=name.lower(), PolicyArn=ADMIN)
    assert err(e) == (403, "AccessDenied", denied(me, "iam:AttachUserPolicy", f"user {name}", "explicit"))
    with pytest.raises(user.exceptions.ClientError) as e:
        user.delete_user_policy(UserName=name.upper(), PolicyName="p")
    assert err(e) == (403, "AccessDenied", denied(me, "iam:DeleteUserPolicy", f"user {name}", "explicit"))
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["p"]


# -- stale decisions: every IAM write is seen by the next request ----------------------------------------


def assume(server: LaminaServer, iam: Any, role_arn: str, service: str = "lambda") -> Any:
    """A ``service`` client signed by a session of ``role_arn``, assumed by a new administrator user."""
    _, key, sk = user_keys(iam, ADMIN)
    sts = client(server, "sts", key=key, secret=sk)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="me")["Credentials"]
    return client(
        server,
        service,
        key=creds["AccessKeyId"],
        secret=creds["SecretAccessKey"],
        token=creds["SessionToken"],
    )


def test_a_recreated_role_grants_nothing_to_the_old_roles_sessions(server: LaminaServer, iam: Any) -> None:
    """A role deleted and made again under the same name is another role (another RoleId, IAM User
    Guide, "Unique identifiers"): the deleted role's sessions get none of its permissions."""
    name = uid("role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"]["Arn"]
    session = assume(server, iam, arn)
    with pytest.raises(session.exceptions.ClientError):
        session.list_functions()
    iam.delete_role(RoleName=name)
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ACCOUNT)
    iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN)
    with pytest.raises(session.exceptions.ClientError) as e:
        session.list_functions()
    assert err(e)[:2] == (403, "AccessDeniedException")


def test_every_iam_write_takes_effect_at_once(server: LaminaServer, iam: Any) -> None:
    """Group membership, group policies, detached policies, boundaries, inactive keys: the next
    request is decided on IAM as it now is."""
    group = uid("group")
    iam.create_group(GroupName=group)
    iam.attach_group_policy(GroupName=group, PolicyArn=ADMIN)
    name, key, sk = user_keys(iam)
    user = client(server, key=key, secret=sk)
    iam.add_user_to_group(GroupName=group, UserName=name)
    user.list_functions()
    iam.remove_user_from_group(GroupName=group, UserName=name)
    with pytest.raises(user.exceptions.ClientError):
        user.list_functions()
    iam.add_user_to_group(GroupName=group, UserName=name)
    user.list_functions()
    iam.detach_group_policy(GroupName=group, PolicyArn=ADMIN)
    with pytest.raises(user.exceptions.ClientError):
        user.list_functions()
    iam.put_group_policy(
        GroupName=group,
        PolicyName="p",
        PolicyDocument=doc({"Effect": "Allow", "Action": "*", "Resource": "*"}),
    )
    user.list_functions()
    boundary = iam.create_policy(
        PolicyName=uid("b"), PolicyDocument=doc({"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"})
    )["Policy"]["Arn"]
    iam.put_user_permissions_boundary(UserName=name, PermissionsBoundary=boundary)
    with pytest.raises(user.exceptions.ClientError):
        user.list_functions()
    iam.delete_user_permissions_boundary(UserName=name)
    user.list_functions()
    iam.update_access_key(UserName=name, AccessKeyId=key, Status="Inactive")
    with pytest.raises(user.exceptions.ClientError) as e:
        user.list_functions()
    assert err(e)[:2] == (403, "UnrecognizedClientException")


def test_a_sessions_remembered_decisions_follow_iam_and_the_request(
    server: LaminaServer, iam: Any, lam: Any, role_arn: str
) -> None:
    """A session's decisions that depend only on action and resource are kept between its requests:
    an IAM write still changes the next one, and a statement with a condition is decided on each
    request's own keys (the same action and resource, allowed then denied)."""
    fn = uid("fn")
    lam.create_function(
        FunctionName=fn,
        Runtime="python3.12",
        Role=role_arn,
        Handler="index.handler",
        Code={"ZipFile": make_zip({"index.py": "def handler(e, c):\n    return e\n"})},
    )
    name = uid("role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"]["Arn"]
    allow = {"Effect": "Allow", "Action": "lambda:GetFunctionConfiguration", "Resource": "*"}
    tag_if_blue = {
        "Effect": "Allow",
        "Action": "lambda:TagResource",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:RequestTag/team": "blue"}},
    }
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=doc(allow, tag_if_blue))
    session = assume(server, iam, arn)
    for _ in range(3):
        assert session.get_function_configuration(FunctionName=fn)["FunctionName"] == fn
    function_arn = lam.get_function_configuration(FunctionName=fn)["FunctionArn"]
    session.tag_resource(Resource=function_arn, Tags={"team": "blue"})
    with pytest.raises(session.exceptions.ClientError) as e:
        session.tag_resource(Resource=function_arn, Tags={"team": "red"})
    assert err(e)[:2] == (403, "AccessDeniedException")
    session.tag_resource(Resource=function_arn, Tags={"team": "blue"})
    iam.put_role_policy(
        RoleName=name,
        PolicyName="p",
        PolicyDocument=doc({**allow, "Effect": "Deny"}, tag_if_blue),
    )
    with pytest.raises(session.exceptions.ClientError) as e:
        session.get_function_configuration(FunctionName=fn)
    assert err(e)[:2] == (403, "AccessDeniedException")
    assert "with an explicit deny" in err(e)[2]


# -- layers ------------------------------------------------------------------------------------------------


def test_a_zero_padded_layer_version_does_not_escape_a_deny(server: LaminaServer, iam: Any, lam: Any) -> None:
    """``GetLayerVersionByArn`` reads ``...:layer:x:01`` as version 1: a Deny on version 1 holds."""
    layer = uid("layer")
    arn = lam.publish_layer_version(LayerName=layer, Content={"ZipFile": CODE})["LayerVersionArn"]
    assert arn.endswith(":1")
    policy = doc(
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "lambda:GetLayerVersion", "Resource": arn},
    )
    _, key, sk = user_keys(iam, inline=policy)
    user = client(server, key=key, secret=sk)
    for spelling in (arn, arn[:-1] + "01", arn[:-1] + "0001"):
        with pytest.raises(user.exceptions.ClientError) as e:
            user.get_layer_version_by_arn(Arn=spelling)
        assert err(e)[:2] == (403, "AccessDeniedException"), spelling


# -- IAM escalations ---------------------------------------------------------------------------------------


def test_renaming_a_user_needs_permission_on_the_new_name(server: LaminaServer, iam: Any) -> None:
    """UpdateUser with NewUserName: "the requester must have appropriate permissions on both the
    source object and the target object" (IAM API Reference, UpdateUser)."""
    victim = uid("victim")
    iam.create_user(UserName=victim)
    policy = doc({"Effect": "Allow", "Action": "iam:UpdateUser", "Resource": user_arn(victim)})
    name, key, sk = user_keys(iam, inline=policy)
    user = client(server, "iam", key=key, secret=sk)
    new = uid("admin")
    with pytest.raises(user.exceptions.ClientError) as e:
        user.update_user(UserName=victim, NewUserName=new)
    assert err(e) == (403, "AccessDenied", denied(user_arn(name), "iam:UpdateUser", user_arn(new)))
    with pytest.raises(user.exceptions.ClientError) as e:
        user.update_user(UserName=victim, NewPath="/admins/")
    assert err(e) == (
        403,
        "AccessDenied",
        denied(user_arn(name), "iam:UpdateUser", f"user {victim}"),
    )
    iam.get_user(UserName=victim)


def test_a_qualifier_does_not_escape_a_deny_on_the_function_an_update_changes(
    server: LaminaServer, iam: Any, lam: Any, role_arn: str
) -> None:
    """UpdateFunctionCode, UpdateFunctionConfiguration and PublishVersion change the function itself
    whatever qualifier its name carries (``f:1``, ``f:$LATEST``): a Deny on the function holds."""
    fn = make_function(lam, role_arn)
    before = lam.get_function_configuration(FunctionName=fn)
    policy = doc(
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": [
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:PublishVersion",
            ],
            "Resource": fn_arn(fn),
        },
    )
    _, key, sk = user_keys(iam, inline=policy)
    user = client(server, key=key, secret=sk)
    calls: tuple[tuple[str, dict[str, Any]], ...] = (
        ("update_function_code", {"ZipFile": make_zip({"app.py": "x = 1\n"})}),
        ("update_function_configuration", {"Timeout": 99}),
        ("publish_version", {}),
    )
    for spelling in (f"{fn}:1", f"{fn}:$LATEST", f"{fn_arn(fn)}:7"):
        for method, extra in calls:
            with pytest.raises(user.exceptions.ClientError) as e:
                getattr(user, method)(FunctionName=spelling, **extra)
            assert err(e)[:2] == (403, "AccessDeniedException"), (method, spelling)
    after = lam.get_function_configuration(FunctionName=fn)
    assert (after["CodeSha256"], after["Timeout"]) == (before["CodeSha256"], before["Timeout"])


def test_a_function_cannot_take_a_layer_its_creator_may_not_read(
    server: LaminaServer, iam: Any, lam: Any, role_arn: str
) -> None:
    """Adding a layer to a function needs ``lambda:GetLayerVersion`` on the layer version (Lambda
    Developer Guide, "Layer permissions"): a Deny on it keeps the layer out of new functions and
    updates (else its content could be read from /opt by the function's code)."""
    layer = uid("secret-layer")
    arn = lam.publish_layer_version(LayerName=layer, Content={"ZipFile": CODE})["LayerVersionArn"]
    policy = doc(
        {"Effect": "Allow", "Action": ["lambda:*", "iam:PassRole"], "Resource": "*"},
        {"Effect": "Deny", "Action": "lambda:GetLayerVersion", "Resource": arn},
    )
    name, key, sk = user_keys(iam, inline=policy)
    user = client(server, key=key, secret=sk)
    fn = uid("fn")
    with pytest.raises(user.exceptions.ClientError) as e:
        user.create_function(
            FunctionName=fn,
            Runtime="python3.12",
            Role=role_arn,
            Handler="app.handler",
            Code={"ZipFile": CODE},
            Layers=[arn],
        )
    assert err(e) == (
        403,
        "AccessDeniedException",
        denied(user_arn(name), "lambda:GetLayerVersion", arn, "explicit"),
    )
    make_function(user, role_arn, fn)
    with pytest.raises(user.exceptions.ClientError) as e:
        user.update_function_configuration(FunctionName=fn, Layers=[arn])
    assert err(e)[:2] == (403, "AccessDeniedException")
    assert "Layers" not in lam.get_function_configuration(FunctionName=fn)


def test_another_spelling_of_a_role_arn_does_not_escape_a_deny_on_assuming_it(
    server: LaminaServer, iam: Any
) -> None:
    """AssumeRole finds the role by its name: ``role/any/path/ADMIN`` assumes role ``Admin`` at
    path ``/``. IAM decides on that role's own ARN, so a Deny on it holds; the answer names the ARN
    as the caller spelt it (it tells no one another account's role's path or case)."""
    target = uid("Admin")
    arn = iam.create_role(RoleName=target, AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"]["Arn"]
    iam.attach_role_policy(RoleName=target, PolicyArn=ADMIN)
    policy = doc(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": arn},
    )
    name, key, sk = user_keys(iam, inline=policy)
    sts = client(server, "sts", key=key, secret=sk)
    for spelling in (
        arn,
        f"arn:aws:iam::{ACCT}:role/evil/{target}",
        f"arn:aws:iam::{ACCT}:role/{target.upper()}",
    ):
        with pytest.raises(sts.exceptions.ClientError) as e:
            sts.assume_role(RoleArn=spelling, RoleSessionName="me")
        assert err(e) == (
            403,
            "AccessDenied",
            denied(user_arn(name), "sts:AssumeRole", spelling, "explicit"),
        ), spelling


def test_the_permissions_boundary_condition_key_holds_the_entitys_boundary(
    server: LaminaServer, iam: Any
) -> None:
    """``iam:PermissionsBoundary`` on Attach/Detach/Put/Delete*Policy and Delete*PermissionsBoundary
    is the boundary the user or role has (Service Authorization Reference; IAM User Guide,
    "Permissions boundaries", delegating to a boundary): an administrator may change only users
    inside the boundary, and a Deny conditioned on the boundary keeps it on."""
    boundary = iam.create_policy(
        PolicyName=uid("boundary"),
        PolicyDocument=doc({"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}),
    )["Policy"]["Arn"]
    inside, outside = uid("inside"), uid("outside")
    iam.create_user(UserName=inside, PermissionsBoundary=boundary)
    iam.create_user(UserName=outside)
    policy = doc(
        {
            "Effect": "Allow",
            "Action": [
                "iam:AttachUserPolicy",
                "iam:PutUserPolicy",
                "iam:DeleteUserPolicy",
                "iam:DeleteUserPermissionsBoundary",
            ],
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary}},
        },
        {
            "Effect": "Deny",
            "Action": "iam:DeleteUserPermissionsBoundary",
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary}},
        },
    )
    name, key, sk = user_keys(iam, inline=policy)
    admin = client(server, "iam", key=key, secret=sk)
    admin.attach_user_policy(UserName=inside, PolicyArn=ADMIN)
    admin.put_user_policy(
        UserName=inside,
        PolicyName="p",
        PolicyDocument=doc({"Effect": "Allow", "Action": "*", "Resource": "*"}),
    )
    admin.delete_user_policy(UserName=inside, PolicyName="p")
    with pytest.raises(admin.exceptions.ClientError) as e:
        admin.attach_user_policy(UserName=outside, PolicyArn=ADMIN)
    assert err(e) == (403, "AccessDenied", denied(user_arn(name), "iam:AttachUserPolicy", f"user {outside}"))
    with pytest.raises(admin.exceptions.ClientError) as e:
        admin.delete_user_permissions_boundary(UserName=inside)
    assert err(e) == (
        403,
        "AccessDenied",
        denied(user_arn(name), "iam:DeleteUserPermissionsBoundary", f"user {inside}", "explicit"),
    )
    assert iam.get_user(UserName=inside)["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary


@pytest.mark.parametrize("grant", [{"Action": "*"}, {"NotAction": "sts:TagSession"}])
def test_a_trust_policy_grants_nothing_but_assuming_the_role(
    server: LaminaServer, iam: Any, grant: dict[str, str]
) -> None:
    """A role's trust policy is the resource policy of ``sts:AssumeRole`` (and the STS actions
    around it) only: a trust policy naming a user with ``"Action": "*"`` does not let that user
    change the role's permissions."""
    name, key, sk = user_keys(iam)
    role = uid("role")
    trust = doc({"Effect": "Allow", "Principal": {"AWS": user_arn(name)}, **grant})
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    attacker = client(server, "iam", key=key, secret=sk)
    with pytest.raises(attacker.exceptions.ClientError) as e:
        attacker.attach_role_policy(RoleName=role, PolicyArn=ADMIN)
    assert err(e) == (403, "AccessDenied", denied(user_arn(name), "iam:AttachRolePolicy", f"role {role}"))
    with pytest.raises(attacker.exceptions.ClientError) as e:
        attacker.update_assume_role_policy(RoleName=role, PolicyDocument=TRUST_ACCOUNT)
    assert err(e)[:2] == (403, "AccessDenied")
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []


# -- conditions -------------------------------------------------------------------------------------------


def test_conditions_a_tenant_cannot_talk_its_way_past(
    server: LaminaServer, iam: Any, lam: Any, role_arn: str
) -> None:
    """aws:SourceIp is the socket's address (an X-Forwarded-For header from a loopback client, as a
    function's calls are, claims nothing); a session's aws:PrincipalArn is its role's ARN;
    ${aws:username} is absent for sessions, so a statement using it grants them nothing; an
    explicit Deny in a boundary wins over AdministratorAccess."""
    fn = make_function(lam, role_arn)
    far = doc(
        {
            "Effect": "Allow",
            "Action": "lambda:*",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        }
    )
    _, key, sk = user_keys(iam, inline=far)
    spoof = client(server, key=key, secret=sk)
    spoof.meta.events.register(
        "before-sign.*.*", lambda request, **_: request.headers.__setitem__("X-Forwarded-For", "203.0.113.9")
    )
    with pytest.raises(spoof.exceptions.ClientError) as e:
        spoof.get_function_configuration(FunctionName=fn)
    assert err(e)[:2] == (403, "AccessDeniedException")
    role = uid("role")
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"]["Arn"]
    own = doc(
        {
            "Effect": "Allow",
            "Action": "iam:GetUser",
            "Resource": f"arn:aws:iam::{ACCT}:user/${{aws:username}}",
        }
    )
    by_arn = doc(
        {
            "Effect": "Allow",
            "Action": "lambda:GetFunctionConfiguration",
            "Resource": "*",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": arn}},
        }
    )
    iam.put_role_policy(RoleName=role, PolicyName="own", PolicyDocument=own)
    iam.put_role_policy(RoleName=role, PolicyName="by-arn", PolicyDocument=by_arn)
    assume(server, iam, arn).get_function_configuration(FunctionName=fn)
    with pytest.raises(iam.exceptions.ClientError) as e:
        assume(server, iam, arn, "iam").get_user(UserName="me")
    assert err(e)[:2] == (403, "AccessDenied")
    boundary = iam.create_policy(
        PolicyName=uid("b"),
        PolicyDocument=doc(
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "lambda:GetFunctionConfiguration", "Resource": "*"},
        ),
    )["Policy"]["Arn"]
    bounded, bkey, bsk = user_keys(iam, ADMIN)
    iam.put_user_permissions_boundary(UserName=bounded, PermissionsBoundary=boundary)
    user = client(server, key=bkey, secret=bsk)
    with pytest.raises(user.exceptions.ClientError) as e:
        user.get_function_configuration(FunctionName=fn)
    assert err(e) == (
        403,
        "AccessDeniedException",
        f"User: {user_arn(bounded)} is not authorized to perform: lambda:GetFunctionConfiguration on resource: "
        f"{fn_arn(fn)} with an explicit deny in a permissions boundary",
    )
    user.list_functions()


def test_a_recreated_user_grants_nothing_to_the_old_users_session_tokens(
    server: LaminaServer, iam: Any
) -> None:
    """GetSessionToken's credentials act as the user that asked for them (its UserId, which
    GetCallerIdentity shows): a user deleted and made again under the same name is another user."""
    name = uid("user")
    iam.create_user(UserName=name)
    user_id = iam.get_user(UserName=name)["User"]["UserId"]
    made = iam.create_access_key(UserName=name)["AccessKey"]
    sts = client(server, "sts", key=made["AccessKeyId"], secret=made["SecretAccessKey"])
    creds = sts.get_session_token()["Credentials"]
    session = client(
        server, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"]
    )
    session_sts = client(
        server, "sts", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"]
    )
    assert session_sts.get_caller_identity()["UserId"] == user_id
    iam.delete_access_key(UserName=name, AccessKeyId=made["AccessKeyId"])
    iam.delete_user(UserName=name)
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=ADMIN)
    with pytest.raises(session.exceptions.ClientError) as e:
        session.list_functions()
    assert err(e)[:2] == (403, "AccessDeniedException")


def test_a_session_token_without_mfa_cannot_call_iam(server: LaminaServer, iam: Any) -> None:
    """GetSessionToken's credentials "cannot call any IAM API operations unless MFA authentication
    information is included" (STS API Reference): IAM answers InvalidClientTokenId, even to an
    administrator's session (lamina has no MFA)."""
    _, key, sk = user_keys(iam, ADMIN)
    creds = client(server, "sts", key=key, secret=sk).get_session_token()["Credentials"]
    session = client(
        server, "iam", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"]
    )
    with pytest.raises(session.exceptions.ClientError) as e:
        session.create_user(UserName=uid("escalate"))
    assert err(e) == (403, "InvalidClientTokenId", "The security token included in the request is invalid")
    lam = client(
        server, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"]
    )
    lam.list_functions()  # other services serve it as the user


def test_denials_do_not_tell_whether_another_accounts_role_exists(server: LaminaServer) -> None:
    """IAM names an existing user or role of the caller's own account as ``role NAME``; another
    account's is named by the ARN asked about, whether it exists or not (no existence oracle)."""
    bob_iam = client(server, "iam", key=BOB["access_key_id"], secret=BOB["secret_access_key"])
    real = uid("Secret")
    bob_iam.create_role(RoleName=real, AssumeRolePolicyDocument=TRUST_ACCOUNT)
    alice = client(server, "iam", key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])
    alice_root = f"arn:aws:iam::{ALICE['account_id']}:root"
    for name in (real, uid("Missing")):
        arn = f"arn:aws:iam::{BOB['account_id']}:role/{name}"
        with pytest.raises(alice.exceptions.ClientError) as e:
            alice.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["lambda:GetFunction"])
        assert err(e) == (
            403,
            "AccessDenied",
            denied(alice_root, "iam:SimulatePrincipalPolicy", arn, "resource"),
        )


def test_a_zero_padded_layer_version_does_not_escape_a_lambda_layer_condition(
    server: LaminaServer, iam: Any, lam: Any, role_arn: str
) -> None:
    """``lambda:Layer`` holds each layer version's ARN as the function will use it: a Deny on
    ``...:layer:x:1`` holds for ``Layers=[...:layer:x:01]``."""
    arn = lam.publish_layer_version(LayerName=uid("banned"), Content={"ZipFile": CODE})["LayerVersionArn"]
    policy = doc(
        {"Effect": "Allow", "Action": ["lambda:*", "iam:PassRole"], "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "lambda:CreateFunction",
            "Resource": "*",
            "Condition": {"ForAnyValue:StringEquals": {"lambda:Layer": arn}},
        },
    )
    _, key, sk = user_keys(iam, inline=policy)
    user = client(server, key=key, secret=sk)
    for spelling in (arn, arn[:-1] + "01"):
        with pytest.raises(user.exceptions.ClientError) as e:
            user.create_function(
                FunctionName=uid("fn"),
                Runtime="python3.12",
                Role=role_arn,
                Handler="app.handler",
                Code={"ZipFile": CODE},
                Layers=[spelling],
            )
        assert err(e)[:2] == (403, "AccessDeniedException"), spelling
