"""What the authorization tests share: policies as JSON, IAM users and roles made for one test, and
AWS's denial sentence. The fixtures stay in each test module (each runs its own server)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from lamina_server import LaminaServer, client
from testzips import make_zip

ACCT = "000000000000"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
CODE = make_zip({"app.py": "def handler(event, context):\n    return event\n"})


def doc(*statements: dict[str, Any]) -> str:
    """A policy document of these statements."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


TRUST_ACCOUNT = doc(
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "sts:AssumeRole"}
)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def err(e: Any) -> tuple[int, str, str]:
    """(status, code, message) of a ``pytest.raises`` ClientError."""
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def fn_arn(name: str, account: str = ACCT) -> str:
    return f"arn:aws:lambda:us-east-1:{account}:function:{name}"


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCT}:user/{name}"


def make_function(lam: Any, role_arn: str, name: str | None = None, **extra: Any) -> str:
    """A new python3.12 function (created, not waited for); its name."""
    name = name or uid("fn")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn,
        Handler="app.handler",
        Code={"ZipFile": CODE},
        **extra,
    )
    return name


def user_keys(iam: Any, *policy_arns: str, inline: str | None = None) -> tuple[str, str, str]:
    """A new IAM user with these policies; (name, access key, secret)."""
    name = uid("user")
    iam.create_user(UserName=name)
    for arn in policy_arns:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    if inline is not None:
        iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=inline)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, key["AccessKeyId"], key["SecretAccessKey"]


def assume(
    server: LaminaServer, key: str, secret: str, role_arn: str, session: str = "me", **extra: Any
) -> dict[str, str]:
    """A session of ``role_arn`` assumed with these keys, as client() keyword arguments."""
    sts = client(server, "sts", key=key, secret=secret)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=session, **extra)["Credentials"]
    return {"key": creds["AccessKeyId"], "secret": creds["SecretAccessKey"], "token": creds["SessionToken"]}


def role_with(iam: Any, *policy_arns: str, inline: str | None = None, trust: str = TRUST_ACCOUNT) -> str:
    """A new role with these policies and trust policy; its ARN."""
    name = uid("role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    for policy in policy_arns:
        iam.attach_role_policy(RoleName=name, PolicyArn=policy)
    if inline is not None:
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=inline)
    return str(arn)


def denied(principal: str, action: str, resource: str, why: str = "identity") -> str:
    """AWS's sentence for a denial, ``why`` naming the policy type that decided."""
    tail = {
        "identity": f"because no identity-based policy allows the {action} action",
        "resource": f"because no resource-based policy allows the {action} action",
        "boundary": f"because no permissions boundary allows the {action} action",
        "session": f"because no session policy allows the {action} action",
        "explicit": "with an explicit deny in an identity-based policy",
    }[why]
    return f"User: {principal} is not authorized to perform: {action} on resource: {resource} {tail}"
