"""Function tags against a real server: TagResource, UntagResource, ListTags, Tags on CreateFunction
and GetFunction, with the shapes, limits and messages recorded from AWS (TestLambdaTag,
TestLambdaTags), and the tag condition keys in IAM decisions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from iam_kit import ACCT, ADMIN, assume, denied, doc, role_with, uid, user_keys
from lamina_server import LaminaServer, client, create_lambda_role, run_aws
from test_functions_api import create, err, name

REGION = "us-east-1"
QUALIFIED = "Tags on function aliases and versions are not supported. Please specify a function ARN."
TOO_MANY = "Number of tags exceeds resource tag limit."
RESOURCE_PATTERN = (
    r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|"
    r"code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|capacity-provider:[a-zA-Z0-9-_]+)"
)


def arn(fn: str, account: str = ACCT) -> str:
    return f"arn:aws:lambda:{REGION}:{account}:function:{fn}"


def tags(lam: Any, fn: str) -> dict[str, str]:
    r = lam.list_tags(Resource=arn(fn))
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert set(r) == {"Tags", "ResponseMetadata"}
    return dict(r["Tags"])


def ready(lam: Any, fn: str) -> None:
    lam.get_waiter("function_active_v2").wait(FunctionName=fn, WaiterConfig={"Delay": 0.2})


def test_tag_lifecycle(lam: Any) -> None:
    """TestLambdaTag::test_tag_lifecycle: 204s, overlap overwrites, untag of absent keys is fine."""
    fn = name()
    create(lam, fn)
    assert tags(lam, fn) == {}
    r = lam.tag_resource(Resource=arn(fn), Tags={"A": "tag-a"})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert set(r) == {"ResponseMetadata"}
    assert tags(lam, fn) == {"A": "tag-a"}
    lam.tag_resource(Resource=arn(fn), Tags={"B": "tag-b", "C": "tag-c"})
    assert tags(lam, fn) == {"A": "tag-a", "B": "tag-b", "C": "tag-c"}
    lam.tag_resource(Resource=arn(fn), Tags={"C": "tag-c-newsuffix", "D": "tag-d"})
    assert tags(lam, fn) == {"A": "tag-a", "B": "tag-b", "C": "tag-c-newsuffix", "D": "tag-d"}
    r = lam.untag_resource(Resource=arn(fn), TagKeys=["A"])
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags(lam, fn) == {"B": "tag-b", "C": "tag-c-newsuffix", "D": "tag-d"}
    lam.untag_resource(Resource=arn(fn), TagKeys=["B", "C"])
    assert tags(lam, fn) == {"D": "tag-d"}
    lam.untag_resource(Resource=arn(fn), TagKeys=["F"])
    assert tags(lam, fn) == {"D": "tag-d"}
    lam.untag_resource(Resource=arn(fn), TagKeys=["D", "F"])
    assert tags(lam, fn) == {}


def test_get_function_tags_and_revision(lam: Any) -> None:
    """TestLambdaTags::test_tag_lifecycle: Tags in GetFunction after Configuration and Code, absent
    when there are none; every tag change rotates RevisionId; DeleteFunction removes them."""
    fn = name()
    create(lam, fn, Tags={"key_a": "value_a"})
    ready(lam, fn)
    got = lam.get_function(FunctionName=fn)
    assert got["Tags"] == {"key_a": "value_a"}
    assert tags(lam, fn) == {"key_a": "value_a"}
    revisions = [got["Configuration"]["RevisionId"]]
    lam.tag_resource(Resource=arn(fn), Tags={"key_b": "value_b", "key_c": "value_c"})
    got = lam.get_function(FunctionName=fn)
    assert got["Tags"] == {"key_a": "value_a", "key_b": "value_b", "key_c": "value_c"}
    revisions.append(got["Configuration"]["RevisionId"])
    lam.untag_resource(Resource=arn(fn), TagKeys=["key_a", "key_b", "key_c"])
    got = lam.get_function(FunctionName=fn)
    assert "Tags" not in got
    revisions.append(got["Configuration"]["RevisionId"])
    assert len(set(revisions)) == 3
    # A version's GetFunction carries its function's tags.
    lam.tag_resource(Resource=arn(fn), Tags={"k": "v"})
    version = lam.publish_version(FunctionName=fn)["Version"]
    assert lam.get_function(FunctionName=fn, Qualifier=version)["Tags"] == {"k": "v"}
    # Raw wire order: Configuration, Code, Tags.
    lam.delete_function(FunctionName=fn)
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.list_tags(Resource=arn(fn))
    assert err(e) == (404, "ResourceNotFoundException", f"Function not found: {arn(fn)}")
    create(lam, fn)  # made again under the same name: no tags of the old one
    assert tags(lam, fn) == {}
    assert "Tags" not in lam.get_function(FunctionName=fn)


def test_tag_exceptions(lam: Any) -> None:
    """TestLambdaTags::test_tag_exceptions and TestLambdaTag::test_tag_exceptions."""
    bad = "arn:aws:something"
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.tag_resource(Resource=bad, Tags={"A": "a"})
    assert err(e) == (
        400,
        "ValidationException",
        f"1 validation error detected: Value '{bad}' at 'resource' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {RESOURCE_PATTERN}",
    )
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.list_tags(Resource=f"arn:aws:lambda:{REGION}:{ACCT}:foobar:x")
    assert err(e)[1] == "ValidationException"
    missing = arn("doesnotexist")
    for call in (
        lambda: lam.tag_resource(Resource=missing, Tags={"A": "a"}),
        lambda: lam.untag_resource(Resource=missing, TagKeys=["A"]),
        lambda: lam.list_tags(Resource=missing),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
            call()
        assert err(e) == (404, "ResourceNotFoundException", f"Function not found: {missing}")
        assert e.value.response["Type"] == "User"
    # Qualified ARNs are refused before the function is looked up.
    for qualifier in ("alias", "1", "$LATEST"):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
            lam.tag_resource(Resource=f"{missing}:{qualifier}", Tags={"A": "a"})
        assert err(e) == (400, "InvalidParameterValueException", QUALIFIED)
        assert e.value.response["message"] == QUALIFIED
    fn = name()
    create(lam, fn)
    assert tags(lam, fn) == {}
    r = lam.untag_resource(Resource=arn(fn), TagKeys=["nomatch"])
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.untag_resource(Resource=arn(fn), TagKeys=[])
    assert err(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null",
    )
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.tag_resource(Resource=arn(fn), Tags={})
    assert err(e) == (
        400,
        "InvalidParameterValueException",
        "An error occurred and the request cannot be processed.",
    )
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.tag_resource(Resource=arn(fn), Tags={"k" * 129: "v"})
    assert err(e)[:2] == (400, "ValidationException")
    assert "Map keys must satisfy constraint" in err(e)[2]
    assert tags(lam, fn) == {}
    esm = f"arn:aws:lambda:{REGION}:{ACCT}:event-source-mapping:12345678-1234-1234-1234-123456789012"
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.list_tags(Resource=esm)
    assert err(e)[:2] == (501, "NotImplemented")
    assert "event sources" in err(e)[2]
    # Layers are not taggable in AWS.
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.tag_resource(Resource=f"arn:aws:lambda:{REGION}:{ACCT}:layer:lay", Tags={"A": "a"})
    assert err(e)[2] == "Unsupported resource type for tagging"


def test_tag_limits(lam: Any) -> None:
    """TestLambdaTags::test_tag_limits: 50 tags at most, on TagResource and CreateFunction."""
    fn = name()
    create(lam, fn)
    many = {f"{i}_key": f"{i}_value" for i in range(51)}
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.tag_resource(Resource=arn(fn), Tags=many)
    assert err(e) == (400, "InvalidParameterValueException", TOO_MANY)
    fifty = {f"{i}_key": f"{i}_value" for i in range(50)}
    lam.tag_resource(Resource=arn(fn), Tags=fifty)
    listed = tags(lam, fn)
    assert listed == fifty and list(listed) == sorted(fifty)
    assert lam.get_function(FunctionName=fn)["Tags"] == fifty
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.tag_resource(Resource=arn(fn), Tags={"a_key": "a_value"})
    assert err(e) == (400, "InvalidParameterValueException", TOO_MANY)
    assert tags(lam, fn) == fifty  # nothing changed
    other = name()
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        create(lam, other, Tags=many)
    assert err(e) == (400, "InvalidParameterValueException", TOO_MANY)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=other)


def test_other_account_is_denied(lam: Any, alice: Any) -> None:
    """A function policy cannot grant tagging: another account's caller is denied by IAM."""
    fn = name()
    create(lam, fn, Tags={"a": "b"})
    root = "arn:aws:iam::111111111111:root"
    with pytest.raises(alice.exceptions.ClientError) as e:
        alice.list_tags(Resource=arn(fn))
    assert err(e) == (403, "AccessDeniedException", denied(root, "lambda:ListTags", arn(fn), "resource"))
    with pytest.raises(alice.exceptions.ClientError) as e:
        alice.tag_resource(Resource=arn(fn), Tags={"x": "y"})
    assert err(e) == (403, "AccessDeniedException", denied(root, "lambda:TagResource", arn(fn), "resource"))
    assert tags(lam, fn) == {"a": "b"}


def test_aws_cli(server: LaminaServer, lam: Any) -> None:
    fn = name()
    create(lam, fn)
    out = run_aws(server, "lambda", "tag-resource", "--resource", arn(fn), "--tags", "team=blue,env=dev")
    assert out.returncode == 0, out.stderr
    out = run_aws(server, "lambda", "list-tags", "--resource", arn(fn))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"Tags": {"env": "dev", "team": "blue"}}
    out = run_aws(server, "lambda", "untag-resource", "--resource", arn(fn), "--tag-keys", "env")
    assert out.returncode == 0, out.stderr
    assert tags(lam, fn) == {"team": "blue"}


# -- tag condition keys in IAM decisions -----------------------------------------------------------


def _user(server: LaminaServer, *statements: dict[str, Any]) -> tuple[str, Any]:
    iam = client(server, "iam")
    user, key, secret = user_keys(iam, inline=doc(*statements))
    return f"arn:aws:iam::{ACCT}:user/{user}", client(server, key=key, secret=secret)


def test_resource_tag_condition(server: LaminaServer, lam: Any) -> None:
    """aws:ResourceTag/<key>: the function's own tags, for operations on the function (and its
    versions); a change of tags changes the decision at once."""
    blue, red = name(), name()
    create(lam, blue, Tags={"team": "blue"})
    create(lam, red, Tags={"team": "red"})
    user, as_user = _user(
        server,
        {
            "Effect": "Allow",
            "Action": ["lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:ListTags"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/team": "blue"}},
        },
    )
    assert as_user.get_function_configuration(FunctionName=blue)["FunctionName"] == blue
    assert as_user.list_tags(Resource=arn(blue))["Tags"] == {"team": "blue"}
    assert as_user.get_function(FunctionName=blue)["Tags"] == {"team": "blue"}
    with pytest.raises(as_user.exceptions.ClientError) as e:
        as_user.get_function_configuration(FunctionName=red)
    assert err(e) == (403, "AccessDeniedException", denied(user, "lambda:GetFunctionConfiguration", arn(red)))
    with pytest.raises(as_user.exceptions.ClientError) as e:
        as_user.list_tags(Resource=arn(red))
    assert err(e) == (403, "AccessDeniedException", denied(user, "lambda:ListTags", arn(red)))
    lam.tag_resource(Resource=arn(red), Tags={"team": "blue"})
    assert as_user.get_function_configuration(FunctionName=red)["FunctionName"] == red
    # A version is decided on its function's tags.
    version = lam.publish_version(FunctionName=red)["Version"]
    assert as_user.get_function_configuration(FunctionName=red, Qualifier=version)["Version"] == version


def test_request_tag_and_tag_keys_conditions(server: LaminaServer, lam: Any) -> None:
    """aws:RequestTag/<key> and aws:TagKeys on TagResource, UntagResource and CreateFunction (which
    with Tags also needs lambda:TagResource)."""
    role = create_lambda_role(server, "test", "test")
    fn = name()
    create(lam, fn)
    user, as_user = _user(
        server,
        {
            "Effect": "Allow",
            "Action": ["lambda:TagResource", "lambda:CreateFunction"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:RequestTag/team": "blue"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]},
            },
        },
        {
            "Effect": "Allow",
            "Action": "lambda:UntagResource",
            "Resource": "*",
            "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["scratch"]}},
        },
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": role},
    )
    as_user.tag_resource(Resource=arn(fn), Tags={"team": "blue"})
    with pytest.raises(as_user.exceptions.ClientError) as e:
        as_user.tag_resource(Resource=arn(fn), Tags={"team": "red"})
    assert err(e) == (403, "AccessDeniedException", denied(user, "lambda:TagResource", arn(fn)))
    with pytest.raises(as_user.exceptions.ClientError) as e:
        as_user.tag_resource(Resource=arn(fn), Tags={"team": "blue", "owner": "me"})
    assert err(e)[1] == "AccessDeniedException"
    assert tags(lam, fn) == {"team": "blue"}
    lam.tag_resource(Resource=arn(fn), Tags={"scratch": "1"})
    as_user.untag_resource(Resource=arn(fn), TagKeys=["scratch"])
    with pytest.raises(as_user.exceptions.ClientError) as e:
        as_user.untag_resource(Resource=arn(fn), TagKeys=["team"])
    assert err(e) == (403, "AccessDeniedException", denied(user, "lambda:UntagResource", arn(fn)))
    assert tags(lam, fn) == {"team": "blue"}
    # CreateFunction: the request's tags decide both lambda:CreateFunction and lambda:TagResource.
    made = uid("fn")
    create(as_user, made, Role=role, Tags={"team": "blue"})
    assert tags(lam, made) == {"team": "blue"}
    refused = uid("fn")
    with pytest.raises(as_user.exceptions.ClientError) as e:
        create(as_user, refused, Role=role, Tags={"team": "red"})
    assert err(e) == (403, "AccessDeniedException", denied(user, "lambda:CreateFunction", arn(refused)))
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=refused)


def test_role_session_resource_tag(server: LaminaServer, lam: Any) -> None:
    """The same key decided for an assumed role's session."""
    fn = name()
    create(lam, fn, Tags={"stage": "prod"})
    iam = client(server, "iam")
    role = role_with(
        iam,
        inline=doc(
            {
                "Effect": "Deny",
                "Action": "lambda:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/stage": "prod"}},
            },
            {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
        ),
    )
    _, key, secret = user_keys(iam, ADMIN)
    as_role = client(server, **assume(server, key, secret, role))
    with pytest.raises(as_role.exceptions.ClientError) as e:
        as_role.get_function_configuration(FunctionName=fn)
    session = f"arn:aws:sts::{ACCT}:assumed-role/{role.rsplit('/', 1)[-1]}/me"
    assert err(e) == (
        403,
        "AccessDeniedException",
        denied(session, "lambda:GetFunctionConfiguration", arn(fn), "explicit"),
    )
    lam.untag_resource(Resource=arn(fn), TagKeys=["stage"])
    assert as_role.get_function_configuration(FunctionName=fn)["FunctionName"] == fn


def test_get_function_tags_need_list_tags(server: LaminaServer, lam: Any) -> None:
    """GetFunction answers Tags only to a caller allowed lambda:ListTags, else TagsError with the
    denial (GetFunction API reference); a function without tags has neither."""
    fn, plain = name(), name()
    create(lam, fn, Tags={"team": "blue"})
    create(lam, plain)
    user, as_user = _user(server, {"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": "*"})
    got = as_user.get_function(FunctionName=fn)
    assert "Tags" not in got
    assert got["TagsError"] == {
        "ErrorCode": "AccessDeniedException",
        "Message": denied(user, "lambda:ListTags", arn(fn)),
    }
    bare = as_user.get_function(FunctionName=plain)
    assert "Tags" not in bare and "TagsError" not in bare
