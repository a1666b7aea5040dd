"""STS sessions as AWS issues them: AssumeRole's session policies, tags, transitive tags, duration
and role chaining, the root refusal, GetSessionToken, and encoded authorization messages."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_server import InProcessServer, client, run_aws, session_client, user_session

from lamina.store import IamStore

ACCOUNT = "000000000000"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
    ],
}
TRUST_NO_TAGS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
}
SESSION_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": "*"}],
    }
)
READ_ONLY = "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    server = InProcessServer(tmp_path_factory.mktemp("sts") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(srv: InProcessServer) -> IamStore:
    return srv.built.platform.iam


@pytest.fixture(scope="module")
def iam(srv: InProcessServer) -> Any:
    return client(srv, "iam")


@pytest.fixture(scope="module")
def dev(srv: InProcessServer) -> Any:
    """STS as IAM user ``dev`` of the default account (a caller that may assume roles)."""
    return session_client(srv, "sts", user_session(srv))


# Every role here may assume roles itself (role chaining needs the first role's identity policy to
# allow sts:AssumeRole, as in AWS).
CHAIN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": "*"}],
}


def role(iam: Any, trust: dict[str, Any] = TRUST, **extra: Any) -> str:
    name = f"r-{uuid.uuid4().hex[:8]}"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), **extra)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="chain", PolicyDocument=json.dumps(CHAIN))
    return str(arn)


def err(e: Any) -> tuple[int, str, str]:
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def refused(sts: Any, **params: Any) -> tuple[int, str, str]:
    with pytest.raises(sts.exceptions.ClientError) as e:
        sts.assume_role(RoleSessionName="s1", **params)
    return err(e)


# -- who may assume ---------------------------------------------------------------------------------


def test_root_may_not_assume_roles(srv: InProcessServer, iam: Any) -> None:
    arn = role(iam)
    root = ("AccessDenied", "Roles may not be assumed by root accounts.")
    assert refused(client(srv, "sts"), RoleArn=arn) == (403, *root)
    # Nor another account's root, even when the role trusts that account.
    other = role(
        iam, {**TRUST, "Statement": [{**TRUST["Statement"][0], "Principal": {"AWS": "111111111111"}}]}
    )
    assert refused(client(srv, "sts", key="AKIDALICE111", secret="alice-secret"), RoleArn=other) == (
        403,
        *root,
    )
    out = run_aws(srv, "sts", "assume-role", "--role-arn", arn, "--role-session-name", "cli")  # type: ignore[arg-type]
    assert out.returncode != 0
    assert out.stderr.strip().endswith(
        "An error occurred (AccessDenied) when calling the AssumeRole operation: "
        "Roles may not be assumed by root accounts."
    )


@pytest.mark.parametrize(
    "arn",
    [
        pytest.param("nothing-valid-in-here", id="malformed-arn"),
        pytest.param("arn::b:::something/test-role", id="no-partition"),
        pytest.param("arn:a::::something/test-role", id="no-service"),
        pytest.param("arn:a:::something/test-role", id="not-enough-colons"),
        pytest.param("arn:a:a::aaaaaaaaaa:", id="no-resource"),
    ],
)
def test_invalid_role_arns(srv: InProcessServer, arn: str) -> None:
    # Recorded against AWS (even the account root gets this answer before its refusal).
    assert refused(client(srv, "sts"), RoleArn=arn) == (400, "ValidationError", f"{arn} is invalid")


def test_trust_policy_denial_is_unchanged(iam: Any, dev: Any) -> None:
    arn = role(iam, {**TRUST, "Statement": [{**TRUST["Statement"][0], "Principal": {"AWS": "111111111111"}}]})
    assert refused(dev, RoleArn=arn) == (
        403,
        "AccessDenied",
        f"User: arn:aws:iam::{ACCOUNT}:user/dev is not authorized to perform: sts:AssumeRole on resource: {arn}",
    )


# -- session policies --------------------------------------------------------------------------------


def test_session_policies_are_kept_for_the_authorizer(iam: Any, dev: Any, store: IamStore) -> None:
    plain = dev.assume_role(RoleArn=role(iam), RoleSessionName="plain")
    assert "PackedPolicySize" not in plain  # absent unless policies or tags are passed
    session = store.session(plain["Credentials"]["AccessKeyId"])
    assert session is not None
    assert (session.policy, session.policy_arns, dict(session.tags)) == (None, (), {})

    customer = iam.create_policy(PolicyName=f"p-{uuid.uuid4().hex[:6]}", PolicyDocument=SESSION_POLICY)
    customer_arn = customer["Policy"]["Arn"]
    out = dev.assume_role(
        RoleArn=role(iam),
        RoleSessionName="scoped",
        Policy=SESSION_POLICY,
        PolicyArns=[{"arn": READ_ONLY}, {"arn": customer_arn}],
    )
    assert 0 < out["PackedPolicySize"] <= 100
    session = store.session(out["Credentials"]["AccessKeyId"])
    assert session is not None
    assert session.policy == SESSION_POLICY
    assert session.policy_arns == (READ_ONLY, customer_arn)
    assert session.role_arn.startswith(f"arn:aws:iam::{ACCOUNT}:role/r-")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param(
            {"Policy": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
            (400, "MalformedPolicyDocument", "The policy is not in the valid JSON format."),
            id="not-json",
        ),
        pytest.param(
            {
                "Policy": json.dumps(
                    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}
                )
            },
            (400, "MalformedPolicyDocument", "Policy statement must contain resources."),
            id="no-resource",
        ),
        pytest.param(
            {
                "Policy": json.dumps(
                    {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}}
                )
            },
            (400, "MalformedPolicyDocument", "Policy document should not specify a principal."),
            id="principal",
        ),
        pytest.param(
            {"Policy": json.dumps({"Statement": "nope"})},
            (400, "MalformedPolicyDocument", "Syntax errors in policy."),
            id="syntax",
        ),
        pytest.param(
            {"PolicyArns": [{"arn": f"arn:aws:iam::{ACCOUNT}:policy/none"}]},
            (
                400,
                "MalformedPolicyDocument",
                f"Policy arn:aws:iam::{ACCOUNT}:policy/none does not exist or is not attachable.",
            ),
            id="unknown-policy-arn",
        ),
        pytest.param(
            {"PolicyArns": [{"arn": READ_ONLY}] * 11},
            (
                400,
                "ValidationError",
                "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: "
                "Member must have length less than or equal to 10",
            ),
            id="eleven-policy-arns",
        ),
    ],
)
def test_session_policy_errors(
    iam: Any, dev: Any, params: dict[str, Any], expected: tuple[int, str, str]
) -> None:
    assert refused(dev, RoleArn=role(iam), **params) == expected


def test_session_policy_size_limits(srv: InProcessServer, iam: Any, dev: Any) -> None:
    arn = role(iam)
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::" + "b" * 2100}
    long_policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    assert refused(dev, RoleArn=arn, Policy=long_policy) == (
        400,
        "ValidationError",
        f"1 validation error detected: Value '{long_policy}' at 'policy' failed to satisfy constraint: "
        "Member must have length less than or equal to 2048",
    )
    # A validation error: answered before the account root's refusal.
    assert refused(client(srv, "sts"), RoleArn=arn, Policy=long_policy)[1] == "ValidationError"
    # Under 2,048 characters but not compressible: over the packed budget.
    noise = [f"arn:aws:s3:::{uuid.uuid4().hex}" for _ in range(36)]
    dense = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": noise}]}
    status, code, message = refused(dev, RoleArn=arn, Policy=json.dumps(dense, separators=(",", ":")))
    assert (status, code) == (400, "PackedPolicyTooLarge")
    assert message.startswith("Packed policy consumes ") and message.endswith(
        "% of allotted space, please use smaller policy."
    )
    tags = [{"Key": f"k{i}-{uuid.uuid4().hex}", "Value": uuid.uuid4().hex * 7} for i in range(20)]
    status, code, message = refused(dev, RoleArn=arn, Tags=tags)
    assert (status, code) == (400, "PackedPolicyTooLarge")
    assert message.startswith("Packed size of session tags consumes ") and message.endswith(
        "% of allotted space."
    )


# -- session tags ---------------------------------------------------------------------------------------


def test_session_tag_errors(iam: Any, dev: Any) -> None:
    arn = role(iam)
    assert refused(dev, RoleArn=arn, Tags=[{"Key": "Team", "Value": "a"}, {"Key": "team", "Value": "b"}]) == (
        400,
        "InvalidParameterValue",
        "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
    )
    assert refused(dev, RoleArn=arn, Tags=[{"Key": "Team", "Value": "a"}], TransitiveTagKeys=["Project"]) == (
        400,
        "InvalidParameterValue",
        "The specified transitive tag key must be included in the requested tags.",
    )
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    status, code, message = refused(dev, RoleArn=arn, Tags=too_many)
    assert (status, code) == (400, "ValidationError")
    assert message.startswith("1 validation error detected: Value '[{Key=k0, Value=v}, ")
    assert message.endswith(
        "' at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"
    )
    assert refused(dev, RoleArn=arn, Tags=[{"Key": "bad!", "Value": "v"}]) == (
        400,
        "ValidationError",
        "1 validation error detected: Value 'bad!' at 'tags.1.member.key' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
    )


def test_tags_need_sts_tag_session_in_the_trust_policy(iam: Any, dev: Any) -> None:
    arn = role(iam, TRUST_NO_TAGS)
    assert refused(dev, RoleArn=arn, Tags=[{"Key": "Team", "Value": "a"}]) == (
        403,
        "AccessDenied",
        f"User: arn:aws:iam::{ACCOUNT}:user/dev is not authorized to perform: sts:TagSession on resource: {arn}",
    )
    assert "PackedPolicySize" not in dev.assume_role(RoleArn=arn, RoleSessionName="untagged")


def test_trust_conditions_see_the_request(iam: Any, dev: Any) -> None:
    statement = {
        **TRUST["Statement"][0],
        "Condition": {
            "StringEquals": {"aws:RequestTag/Team": "blue", "aws:PrincipalAccount": ACCOUNT},
            "ForAllValues:StringEquals": {"aws:TagKeys": ["Team"]},
            "ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/dev"},
        },
    }
    arn = role(iam, {**TRUST, "Statement": [statement]})
    out = dev.assume_role(RoleArn=arn, RoleSessionName="blue", Tags=[{"Key": "Team", "Value": "blue"}])
    assert 0 < out["PackedPolicySize"] <= 100
    for tags in (
        [{"Key": "Team", "Value": "red"}],
        [{"Key": "Team", "Value": "blue"}, {"Key": "X", "Value": "y"}],
        [],
    ):
        assert refused(dev, RoleArn=arn, Tags=tags)[:2] == (403, "AccessDenied")


# -- role chaining --------------------------------------------------------------------------------------


def test_role_chaining_carries_transitive_tags_and_caps_the_duration(
    srv: InProcessServer, iam: Any, dev: Any, store: IamStore
) -> None:
    first = dev.assume_role(
        RoleArn=role(iam),
        RoleSessionName="first",
        Tags=[{"Key": "Team", "Value": "blue"}, {"Key": "Temp", "Value": "x"}],
        TransitiveTagKeys=["Team"],
    )
    chained = session_client(srv, "sts", first["Credentials"])
    # The next role trusts only sessions carrying the transitive tag.
    statement = {**TRUST["Statement"][0], "Condition": {"StringEquals": {"aws:PrincipalTag/Team": "blue"}}}
    target = role(iam, {**TRUST, "Statement": [statement]}, MaxSessionDuration=43_200)
    assert refused(chained, RoleArn=target, DurationSeconds=7200) == (
        400,
        "ValidationError",
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
    )
    for key in ("Team", "TEAM"):
        assert refused(chained, RoleArn=target, Tags=[{"Key": key, "Value": "red"}]) == (
            400,
            "InvalidParameterValue",
            "One of the specified transitive tag keys can't be set because it conflicts with a transitive "
            "tag key from the calling session.",
        )
    second = chained.assume_role(
        RoleArn=target, RoleSessionName="second", DurationSeconds=3600, Tags=[{"Key": "Stage", "Value": "2"}]
    )
    session = store.session(second["Credentials"]["AccessKeyId"])
    assert session is not None
    assert dict(session.tags) == {"Team": "blue", "Stage": "2"}  # Temp was not transitive
    assert session.transitive_tag_keys == ("Team",)
    assert 3500 < session.expires - time.time() <= 3600
    # Without the transitive tag the condition fails.
    untagged = session_client(
        srv, "sts", dev.assume_role(RoleArn=role(iam), RoleSessionName="untagged")["Credentials"]
    )
    assert refused(untagged, RoleArn=target)[:2] == (403, "AccessDenied")


def test_duration_up_to_the_roles_maximum(iam: Any, dev: Any) -> None:
    arn = role(iam, MaxSessionDuration=7200)
    out = dev.assume_role(RoleArn=arn, RoleSessionName="long", DurationSeconds=7200)
    assert 7100 < (out["Credentials"]["Expiration"].timestamp() - time.time()) <= 7200
    assert refused(dev, RoleArn=arn, DurationSeconds=7201) == (
        400,
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    )


def test_source_identity_persists_along_the_chain(srv: InProcessServer, iam: Any, dev: Any) -> None:
    trust = {
        **TRUST,
        "Statement": [{**TRUST["Statement"][0], "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"]}],
    }
    first = dev.assume_role(
        RoleArn=role(iam, trust), RoleSessionName="first", SourceIdentity="alice@example.com"
    )
    assert first["SourceIdentity"] == "alice@example.com"
    chained = session_client(srv, "sts", first["Credentials"])
    assert (
        chained.assume_role(RoleArn=role(iam, trust), RoleSessionName="second")["SourceIdentity"]
        == "alice@example.com"
    )
    arn = role(iam)
    assert refused(dev, RoleArn=arn, SourceIdentity="bob") == (
        403,
        "AccessDenied",
        f"User: arn:aws:iam::{ACCOUNT}:user/dev is not authorized to perform: sts:SetSourceIdentity on resource: {arn}",
    )


# -- GetSessionToken -----------------------------------------------------------------------------------


def test_get_session_token(srv: InProcessServer, iam: Any) -> None:
    root = client(srv, "sts").get_session_token(DurationSeconds=7200)
    creds = root["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["Expiration"].timestamp() - time.time() <= 3600  # the root's sessions last an hour at most
    temp = session_client(srv, "sts", creds)
    assert temp.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    # Still the root: it may not assume roles; session credentials may not ask for another.
    assert refused(temp, RoleArn=role(iam)) == (
        403,
        "AccessDenied",
        "Roles may not be assumed by root accounts.",
    )
    with pytest.raises(temp.exceptions.ClientError) as e:
        temp.get_session_token()
    assert err(e) == (403, "AccessDenied", "Cannot call GetSessionToken with session credentials")


# -- encoded authorization messages ---------------------------------------------------------------


def test_decode_authorization_message(srv: InProcessServer, store: IamStore) -> None:
    decoded = json.dumps({"allowed": False, "explicitDeny": False, "matchedStatements": {"items": []}})
    encoded = store.save_authorization_message(ACCOUNT, decoded, time.time())
    assert len(encoded) > 500 and decoded not in encoded
    assert encoded.replace("-", "").replace("_", "").isalnum()
    assert store.save_authorization_message(ACCOUNT, decoded, time.time()) != encoded  # random, not derived
    assert (
        client(srv, "sts").decode_authorization_message(EncodedMessage=encoded)["DecodedMessage"] == decoded
    )
    # One argument: a message that starts with "-" would otherwise be read as an option.
    out = run_aws(srv, "sts", "decode-authorization-message", f"--encoded-message={encoded}")  # type: ignore[arg-type]
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"DecodedMessage": decoded}
    # Only the account the message was made for may read it; unknown text is refused alike.
    alice = client(srv, "sts", key="AKIDALICE111", secret="alice-secret")
    for sts, text in ((alice, encoded), (client(srv, "sts"), "not-a-message")):
        with pytest.raises(sts.exceptions.ClientError) as e:
            sts.decode_authorization_message(EncodedMessage=text)
        assert err(e) == (400, "InvalidAuthorizationMessageException", "Message is not valid")
