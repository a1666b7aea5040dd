"""Attacks on issue 15's control plane that need no sandbox: version numbers that are no version
(a huge one was a 500, "0" reached $LATEST past the checks that refuse it), tag keys in AWS's
reserved ``aws:`` namespace, and AWS_IAM function URL signatures scoped to another service or
Region. Each asserts AWS's refusal and that nothing changed."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client
from test_functions_api import create, err

REGION = "us-east-1"
ACCOUNT = "000000000000"
HUGE = "9" * 23  # past SQLite's 64-bit integers


def fn_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


@pytest.fixture
def fn(lam: Any) -> str:
    name = f"atk-{uuid.uuid4().hex[:10]}"
    create(lam, name)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    return name


def not_found(name: str, qualifier: str) -> tuple[int, str, str]:
    return 404, "ResourceNotFoundException", f"Function not found: {fn_arn(name, qualifier)}"


@pytest.mark.parametrize("qualifier", [HUGE, "0", "01", "00"])
def test_a_version_is_named_by_its_number_only(lam: Any, fn: str, qualifier: str) -> None:
    """Neither a huge number (was a 500), nor "0" ($LATEST's row in the store), nor a padded "01"
    (version 1) names a version: each is answered as a missing version, and nothing changes."""
    calls: list[tuple[Any, dict[str, Any]]] = [
        (lam.get_function, {"FunctionName": fn, "Qualifier": qualifier}),
        (lam.get_function, {"FunctionName": fn_arn(fn, qualifier)}),
        (lam.get_function_configuration, {"FunctionName": fn, "Qualifier": qualifier}),
        (lam.delete_function, {"FunctionName": fn, "Qualifier": qualifier}),
        (lam.add_permission,
         {"FunctionName": fn, "Qualifier": qualifier, "StatementId": "s", "Action": "lambda:InvokeFunction",
          "Principal": "*"}),
        (lam.create_alias, {"FunctionName": fn, "Name": "live", "FunctionVersion": qualifier}),
        (lam.get_runtime_management_config, {"FunctionName": fn, "Qualifier": qualifier}),
    ]  # fmt: skip
    for call, kwargs in calls:
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        assert err(e) == not_found(fn, qualifier), (call, kwargs)
    with pytest.raises(ClientError) as e:
        lam.put_function_event_invoke_config(FunctionName=fn, Qualifier=qualifier, MaximumRetryAttempts=0)
    assert err(e) == (404, "ResourceNotFoundException", "The function doesn't exist.")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=fn, Qualifier=qualifier)
    assert err(e) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    assert lam.list_aliases(FunctionName=fn, FunctionVersion=qualifier)["Aliases"] == []
    # Nothing changed: $LATEST and version 1 are there, with no alias and no policy.
    versions = lam.list_versions_by_function(FunctionName=fn)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]
    assert lam.list_aliases(FunctionName=fn)["Aliases"] == []
    with pytest.raises(ClientError):
        lam.get_policy(FunctionName=fn)
    assert lam.get_function(FunctionName=fn, Qualifier="1")["Configuration"]["Version"] == "1"


@pytest.mark.parametrize("key", ["aws:cloudformation:stack-name", "AWS:x", "Aws:x", "aWs:x"])
def test_tag_keys_in_the_aws_namespace_are_refused(lam: Any, fn: str, key: str) -> None:
    """The ``aws:`` prefix (any case) is AWS's: a tenant's own such tag would pass for an AWS one
    in an ``aws:ResourceTag`` condition. Refused on TagResource and CreateFunction, nothing kept."""
    with pytest.raises(ClientError) as e:
        lam.tag_resource(Resource=fn_arn(fn), Tags={"team": "a", key: "prod"})
    status, code, message = err(e)
    assert (status, code) == (400, "InvalidParameterValueException")
    assert key in message and "aws:" in message
    assert lam.list_tags(Resource=fn_arn(fn))["Tags"] == {}
    other = f"atk-{uuid.uuid4().hex[:10]}"
    with pytest.raises(ClientError) as e:
        create(lam, other, Tags={key: "prod"})
    assert err(e)[:2] == (400, "InvalidParameterValueException")
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=other)
    assert err(e)[1] == "ResourceNotFoundException"


def _iam_url_answer(server: LaminaServer, url_id: str, service: str, region: str) -> tuple[int, bytes]:
    """A GET of the AWS_IAM URL (path form) signed by the owner for ``service`` in ``region``."""
    target = f"{server.url}/_lamina/url/{url_id}/"
    signed = AWSRequest(method="GET", url=target)
    SigV4Auth(Credentials("test", "test"), service, region).add_auth(signed)
    req = urllib.request.Request(target, headers=dict(signed.headers.items()))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


@pytest.mark.parametrize(
    ("service", "region"), [("s3", REGION), ("execute-api", REGION), ("lambda", "eu-west-1")]
)
def test_aws_iam_url_refuses_a_signature_for_another_service_or_region(
    server: LaminaServer, lam: Any, fn: str, service: str, region: str
) -> None:
    """The owner's own valid signature, but scoped to another service or Region: no signature for
    this URL (AWS verifies SigV4 for service ``lambda`` in the URL's Region). The function is not
    runnable here (no runtime), so an admitted request would answer 502, a refused one 403."""
    url = lam.create_function_url_config(FunctionName=fn, AuthType="AWS_IAM")["FunctionUrl"]
    url_id = url.split("//", 1)[1].split(".", 1)[0]
    assert _iam_url_answer(server, url_id, service, region) == (403, b'{"Message":"Forbidden"}')


def test_api_still_answers_other_regions(server: LaminaServer) -> None:
    """The URL check does not narrow the API: a client of another Region still reaches it."""
    assert "Functions" in client(server, region="eu-west-1").list_functions()


def test_aws_iam_url_admits_the_owner_signing_for_lambda(server: LaminaServer, lam: Any, fn: str) -> None:
    """The control: the same request signed for ``lambda`` in the URL's Region is admitted (and
    then fails to run here, without a runtime: 502)."""
    url = lam.create_function_url_config(FunctionName=fn, AuthType="AWS_IAM")["FunctionUrl"]
    url_id = url.split("//", 1)[1].split(".", 1)[0]
    assert _iam_url_answer(server, url_id, "lambda", REGION) == (502, b"Internal Server Error")


def test_a_second_spelling_of_a_guarded_tag_is_refused(server: LaminaServer, lam: Any, fn: str) -> None:
    """A user denied changes to ``env=prod`` functions, and denied touching the ``env`` tag (its
    keys compared as policies usually compare them, case-sensitively), adds ``ENV=dev``: condition
    keys are case-insensitive, so the second spelling would stand in for ``env`` in the Deny's
    condition. Refused (the tag, and then the change), nothing kept."""
    from iam_kit import doc, user_keys

    iam = client(server, "iam")
    lam.tag_resource(Resource=fn_arn(fn), Tags={"env": "prod"})
    policy = doc(
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "lambda:UpdateFunctionConfiguration",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}},
        },
        {
            "Effect": "Deny",
            "Action": ["lambda:TagResource", "lambda:UntagResource"],
            "Resource": "*",
            "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}},
        },
    )
    _name, key, secret = user_keys(iam, inline=policy)
    user = client(server, key=key, secret=secret)
    with pytest.raises(ClientError) as e:
        user.update_function_configuration(FunctionName=fn, Description="pwned")
    assert err(e)[1] == "AccessDeniedException"
    for spelling in ("ENV", "Env", "eNv"):
        with pytest.raises(ClientError) as e:
            user.tag_resource(Resource=fn_arn(fn), Tags={spelling: "dev"})
        status, code, message = err(e)
        assert (status, code) == (400, "InvalidParameterValueException")
        assert f"'{spelling}'" in message and "'env'" in message
    assert lam.list_tags(Resource=fn_arn(fn))["Tags"] == {"env": "prod"}
    with pytest.raises(ClientError) as e:
        user.update_function_configuration(FunctionName=fn, Description="pwned")
    assert err(e)[1] == "AccessDeniedException"
    # One request with two spellings is refused as well; the same spelling updates the value.
    with pytest.raises(ClientError) as e:
        lam.tag_resource(Resource=fn_arn(fn), Tags={"team": "a", "TEAM": "b"})
    assert err(e)[:2] == (400, "InvalidParameterValueException")
    lam.tag_resource(Resource=fn_arn(fn), Tags={"env": "staging"})
    assert lam.list_tags(Resource=fn_arn(fn))["Tags"] == {"env": "staging"}
