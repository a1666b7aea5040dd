"""query protocol (IAM, STS): routing, parsing and serialising from botocore's models.

The key checks are round trips through botocore itself: what botocore's serializer sends,
``parse`` must read back to the same parameters; what ``serialize`` writes, botocore's parser
must read back to the same output. Both are run for every IAM and STS operation with
generated values, and for the operations lamina implements with realistic ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import botocore.session
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from protocol_samples import sampler

from lamina.api.http import Request
from lamina.api.protocols import OperationMatch, QueryProtocol, protocol_for
from lamina.api.protocols.xmlout import escape
from lamina.api.validation import validate
from lamina.errors import AwsError, ServiceException, UnrecognizedClientException, ValidationException

SESSION = botocore.session.get_session()
IAM_MODEL = SESSION.get_service_model("iam")
STS_MODEL = SESSION.get_service_model("sts")
IAM = protocol_for(IAM_MODEL)
STS = protocol_for(STS_MODEL)
WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
sample = sampler(WHEN)
REQUEST_ID = "4a1b2c3d-0000-4000-8000-000000000001"


# -- helpers -------------------------------------------------------------------------------------


def to_request(model: Any, operation: str, params: dict[str, Any]) -> Request:
    """What botocore sends for ``params``: its serializer, then its HTTP request preparation."""
    op = model.operation_model(operation)
    wire = create_serializer(model.protocol).serialize_to_request(params, op)
    prepared = AWSRequest(
        method=wire["method"], url="http://127.0.0.1:4566/", data=wire["body"], headers=wire["headers"]
    ).prepare()
    body = prepared.body or b""
    return Request(
        method=prepared.method,
        raw_path="/",
        query_string="",
        headers={k.lower(): v for k, v in prepared.headers.items()},
        body=body.encode() if isinstance(body, str) else body,
    )


def form(body: str, method: str = "POST", query: str = "") -> Request:
    return Request(
        method=method,
        raw_path="/",
        query_string=query,
        headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
        body=body.encode(),
    )


def parse_back(model: Any, protocol: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    request = to_request(model, operation, params)
    match = protocol.match(request)
    assert match.operation.name == operation
    parsed: dict[str, Any] = protocol.parse(match, request)
    return parsed


def botocore_reads(model: Any, protocol: Any, operation: str, output: dict[str, Any]) -> dict[str, Any]:
    op = model.operation_model(operation)
    response = protocol.serialize(
        protocol.match(form(f"Action={operation}&Version={model.api_version}")), output, REQUEST_ID
    )
    assert response.status == 200
    parsed: dict[str, Any] = create_parser(model.protocol).parse(
        {"body": response.body, "headers": dict(response.headers), "status_code": 200}, op.output_shape
    )
    assert parsed.pop("ResponseMetadata")["RequestId"] == REQUEST_ID
    return parsed


def botocore_error(model: Any, protocol: Any, error: AwsError) -> tuple[int, dict[str, Any]]:
    response = protocol.serialize_error(error, REQUEST_ID)
    parsed = create_parser(model.protocol).parse(
        {"body": response.body, "headers": dict(response.headers), "status_code": response.status}, None
    )
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID
    return response.status, parsed["Error"]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


def client_for(service: str, protocol: Any, handler: Handler) -> Any:
    """A real botocore client whose requests are answered by ``protocol`` + ``handler``, in-process."""
    client = SESSION.create_client(
        service,
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:4566",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )

    def before_send(request: Any, **_: Any) -> AWSResponse:
        url = urlsplit(request.url)
        body = request.body or b""
        incoming = Request(
            method=request.method,
            raw_path=url.path or "/",
            query_string=url.query,
            headers={
                k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
            },
            body=body.encode() if isinstance(body, str) else body,
        )
        try:
            match = protocol.match(incoming)
            params = protocol.parse(match, incoming)
            validate(match.operation.input_shape, params)
            response = protocol.serialize(match, handler(match.operation.name, params), REQUEST_ID)
        except AwsError as exc:
            response = protocol.serialize_error(exc, REQUEST_ID)
        return AWSResponse(request.url, response.status, dict(response.headers), _Raw(response.body))

    client.meta.events.register("before-send", before_send)
    return client


# -- routing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "operation"),
    [
        pytest.param(form("Action=ListRoles&Version=2010-05-08"), "ListRoles", id="form-body"),
        pytest.param(
            form("", "GET", "Action=GetRole&Version=2010-05-08&RoleName=r"), "GetRole", id="get-query"
        ),
        pytest.param(
            form("RoleName=r", "POST", "Action=GetRole&Version=2010-05-08"),
            "GetRole",
            id="post-action-in-query",
        ),
        pytest.param(
            form("Action=GetRole&Version=2010-05-08", "POST", "Action=ListRoles"), "GetRole", id="body-wins"
        ),
    ],
)
def test_routing(request_: Request, operation: str) -> None:
    assert IAM.match(request_).operation.name == operation


def test_routes_on_body() -> None:
    assert IAM.routes_on_body is True
    assert isinstance(IAM, QueryProtocol)
    assert isinstance(STS, QueryProtocol)


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        pytest.param(
            "Action=GetRoles&Version=2010-05-08",
            "InvalidAction",
            "Could not find operation GetRoles for version 2010-05-08",
            id="unknown-action",
        ),
        pytest.param(
            "Action=GetRole&Version=2011-06-15",
            "InvalidAction",
            "Could not find operation GetRole for version 2011-06-15",
            id="other-version",
        ),
        pytest.param(
            "Action=GetRole",
            "InvalidAction",
            "Could not find operation GetRole for version NO_VERSION_SPECIFIED",
            id="no-version",
        ),
        pytest.param(
            "Version=2010-05-08", "MissingAction", "No action was supplied with this request.", id="no-action"
        ),
    ],
)
def test_routing_errors(body: str, code: str, message: str) -> None:
    with pytest.raises(AwsError) as info:
        IAM.match(form(body))
    assert (info.value.code, info.value.status, info.value.message) == (code, 400, message)
    status, error = botocore_error(IAM_MODEL, IAM, info.value)
    assert (status, error["Code"], error["Message"], error["Type"]) == (400, code, message, "Sender")


def test_non_form_body_is_not_read() -> None:
    request = Request(
        "POST", "/", "", {"content-type": "application/json"}, b"Action=ListRoles&Version=2010-05-08"
    )
    with pytest.raises(AwsError, match="No action"):
        IAM.match(request)


def test_sts_operation_is_not_an_iam_operation() -> None:
    with pytest.raises(AwsError, match="Could not find operation GetCallerIdentity"):
        IAM.match(form("Action=GetCallerIdentity&Version=2011-06-15"))
    assert (
        STS.match(form("Action=GetCallerIdentity&Version=2011-06-15")).operation.name == "GetCallerIdentity"
    )


# -- parsing: what botocore sends reads back to the same parameters ------------------------------

POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'

REAL_INPUTS = [
    pytest.param(
        IAM_MODEL, "CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": POLICY}, id="iam-CreateRole"
    ),
    pytest.param(
        IAM_MODEL,
        "CreateRole",
        {
            "Path": "/service-role/",
            "RoleName": "lambda-role+=,.@-_",
            "AssumeRolePolicyDocument": POLICY,
            "Description": "a & b = c + d / e % f ü",
            "MaxSessionDuration": 43200,
            "PermissionsBoundary": "arn:aws:iam::aws:policy/PowerUserAccess",
            "Tags": [{"Key": "team", "Value": "a b"}, {"Key": "env", "Value": ""}],
        },
        id="iam-CreateRole-all",
    ),
    pytest.param(IAM_MODEL, "GetRole", {"RoleName": "r"}, id="iam-GetRole"),
    pytest.param(IAM_MODEL, "ListRoles", {}, id="iam-ListRoles-empty"),
    pytest.param(
        IAM_MODEL, "ListRoles", {"PathPrefix": "/a/", "Marker": "m+/=", "MaxItems": 1000}, id="iam-ListRoles"
    ),
    pytest.param(IAM_MODEL, "DeleteRole", {"RoleName": "r"}, id="iam-DeleteRole"),
    pytest.param(
        IAM_MODEL,
        "UpdateAssumeRolePolicy",
        {"RoleName": "r", "PolicyDocument": POLICY},
        id="iam-UpdateAssumeRolePolicy",
    ),
    pytest.param(
        IAM_MODEL,
        "AttachRolePolicy",
        {"RoleName": "r", "PolicyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
        id="iam-AttachRolePolicy",
    ),
    pytest.param(
        IAM_MODEL,
        "ListAttachedRolePolicies",
        {"RoleName": "r", "PathPrefix": "/", "MaxItems": 5},
        id="iam-ListAttachedRolePolicies",
    ),
    pytest.param(
        IAM_MODEL,
        "PutRolePolicy",
        {"RoleName": "r", "PolicyName": "p", "PolicyDocument": POLICY},
        id="iam-PutRolePolicy",
    ),
    pytest.param(
        IAM_MODEL,
        "CreatePolicy",
        {
            "PolicyName": "p",
            "Path": "/x/",
            "PolicyDocument": POLICY,
            "Description": "d",
            "Tags": [{"Key": "a", "Value": "1"}],
        },
        id="iam-CreatePolicy",
    ),
    pytest.param(
        IAM_MODEL,
        "CreatePolicyVersion",
        {"PolicyArn": "arn:aws:iam::000000000000:policy/p", "PolicyDocument": POLICY, "SetAsDefault": False},
        id="iam-CreatePolicyVersion-false",
    ),
    pytest.param(IAM_MODEL, "UntagRole", {"RoleName": "r", "TagKeys": ["a", "b", "c"]}, id="iam-UntagRole"),
    pytest.param(IAM_MODEL, "UntagRole", {"RoleName": "r", "TagKeys": []}, id="iam-empty-list"),
    pytest.param(
        IAM_MODEL,
        "SimulatePrincipalPolicy",
        {
            "PolicySourceArn": "arn:aws:iam::000000000000:role/r",
            "ActionNames": ["ec2:CreateNetworkInterface", "ec2:DescribeSubnets"],
            "ResourceArns": ["*"],
            "ContextEntries": [
                {
                    "ContextKeyName": "aws:SourceIp",
                    "ContextKeyValues": ["10.0.0.1", "10.0.0.2"],
                    "ContextKeyType": "ipList",
                }
            ],
        },
        id="iam-SimulatePrincipalPolicy-nested-lists",
    ),
    pytest.param(
        IAM_MODEL,
        "GetAccountAuthorizationDetails",
        {"Filter": ["Role", "LocalManagedPolicy"], "MaxItems": 100},
        id="iam-enum-list",
    ),
    pytest.param(STS_MODEL, "GetCallerIdentity", {}, id="sts-GetCallerIdentity"),
    pytest.param(
        STS_MODEL,
        "AssumeRole",
        {
            "RoleArn": "arn:aws:iam::000000000000:role/r",
            "RoleSessionName": "session@x",
            "DurationSeconds": 900,
            "Policy": POLICY,
            "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
            "Tags": [{"Key": "k", "Value": "v"}],
            "TransitiveTagKeys": ["k"],
            "ExternalId": "ext-id",
        },
        id="sts-AssumeRole",
    ),
    pytest.param(STS_MODEL, "GetSessionToken", {"DurationSeconds": 3600}, id="sts-GetSessionToken"),
]


@pytest.mark.parametrize(("model", "operation", "params"), REAL_INPUTS)
def test_parse_what_botocore_sends(model: Any, operation: str, params: dict[str, Any]) -> None:
    protocol = IAM if model is IAM_MODEL else STS
    assert parse_back(model, protocol, operation, params) == params


@pytest.mark.parametrize(
    ("model", "operation"),
    [pytest.param(IAM_MODEL, name, id=f"iam-{name}") for name in IAM_MODEL.operation_names]
    + [pytest.param(STS_MODEL, name, id=f"sts-{name}") for name in STS_MODEL.operation_names],
)
def test_parse_round_trip_every_operation(model: Any, operation: str) -> None:
    """Every member of every input shape, with generated values, reads back unchanged."""
    protocol = IAM if model is IAM_MODEL else STS
    shape = model.operation_model(operation).input_shape
    params = sample(shape, "v a&l=u+e%/ü") if shape is not None else {}
    assert parse_back(model, protocol, operation, params) == params


def test_list_entries_in_numeric_order_and_gaps_closed() -> None:
    body = "&".join(
        [
            "Action=UntagRole&Version=2010-05-08&RoleName=r",
            *(f"TagKeys.member.{i}=k{i}" for i in (10, 2, 1, 11, 5)),
            "TagKeys.member.x=ignored",
        ]
    )
    match = IAM.match(form(body))
    assert IAM.parse(match, form(body))["TagKeys"] == ["k1", "k2", "k5", "k10", "k11"]


def test_unknown_parameters_are_ignored() -> None:
    body = (
        "Action=GetRole&Version=2010-05-08&RoleName=r&Bogus=1&RoleName.member.1=x&X-Amz-Date=20260101T000000Z"
    )
    assert IAM.parse(IAM.match(form(body)), form(body)) == {"RoleName": "r"}


def test_parse_reads_the_request_when_the_match_did_not() -> None:
    request = form("Action=GetRole&Version=2010-05-08&RoleName=r")
    match = OperationMatch(IAM_MODEL.operation_model("GetRole"), {})
    assert IAM.parse(match, request) == {"RoleName": "r"}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param("Action=ListRoles&Version=2010-05-08&MaxItems=ten", "maxItems", id="integer"),
        pytest.param("Action=ListRoles&Version=2010-05-08&MaxItems=1_0", "maxItems", id="integer-underscore"),
        pytest.param(
            "Action=ListRoles&Version=2010-05-08&MaxItems=2147483648", "maxItems", id="integer-range"
        ),
        pytest.param(
            "Action=CreatePolicyVersion&Version=2010-05-08&PolicyArn=a&PolicyDocument=d&SetAsDefault=yes",
            "setAsDefault",
            id="boolean",
        ),
        pytest.param(
            "Action=SimulatePrincipalPolicy&Version=2010-05-08&PolicySourceArn=a&ActionNames.member.1=x"
            "&ContextEntries.member.1.ContextKeyName=k&ContextEntries.member.1.ContextKeyType=string"
            "&ContextEntries.member.1.ContextKeyValues.member.1=v&MaxItems=-",
            "maxItems",
            id="after-nested",
        ),
    ],
)
def test_type_errors(body: str, where: str) -> None:
    with pytest.raises(AwsError) as info:
        IAM.parse(IAM.match(form(body)), form(body))
    assert (info.value.code, info.value.status) == ("ValidationError", 400)
    assert f"at '{where}'" in info.value.message


def test_boolean_is_case_insensitive() -> None:
    body = "Action=CreatePolicyVersion&Version=2010-05-08&PolicyArn=a&PolicyDocument=d&SetAsDefault=TRUE"
    assert IAM.parse(IAM.match(form(body)), form(body))["SetAsDefault"] is True


# -- a synthetic model: the shape kinds IAM and STS inputs do not use ----------------------------

SYNTHETIC = ServiceModel(
    {
        "metadata": {
            "apiVersion": "2020-01-01",
            "protocol": "query",
            "xmlNamespace": "https://example.amazonaws.com/doc/2020-01-01/",
            "endpointPrefix": "example",
            "signatureVersion": "v4",
        },
        "operations": {
            "Op": {
                "name": "Op",
                "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "Shapes"},
                "output": {"shape": "Shapes", "resultWrapper": "OpResult"},
            }
        },
        "shapes": {
            "Shapes": {
                "type": "structure",
                "members": {
                    "Attributes": {"shape": "AttrMap"},
                    "Renamed": {"shape": "RenamedMap", "locationName": "Renamed"},
                    "Flat": {"shape": "FlatList"},
                    "FlatNamed": {"shape": "FlatNamedList"},
                    "Named": {"shape": "NamedList"},
                    "When": {"shape": "Time"},
                    "Data": {"shape": "Bytes"},
                    "Ratio": {"shape": "Double"},
                    "Big": {"shape": "Long"},
                    "Nested": {"shape": "Shapes"},
                },
            },
            "AttrMap": {"type": "map", "key": {"shape": "Str"}, "value": {"shape": "Str"}},
            "RenamedMap": {
                "type": "map",
                "key": {"shape": "Str", "locationName": "Name"},
                "value": {"shape": "IntList", "locationName": "Values"},
            },
            "IntList": {"type": "list", "member": {"shape": "Int"}},
            "FlatList": {"type": "list", "member": {"shape": "Str"}, "flattened": True},
            "FlatNamedList": {
                "type": "list",
                "member": {"shape": "Str", "locationName": "Entry"},
                "flattened": True,
            },
            "NamedList": {"type": "list", "member": {"shape": "Str", "locationName": "Item"}},
            "Str": {"type": "string"},
            "Int": {"type": "integer"},
            "Long": {"type": "long"},
            "Double": {"type": "double"},
            "Time": {"type": "timestamp"},
            "Bytes": {"type": "blob"},
        },
    },
    service_name="example",
)
SYNTHETIC_PROTOCOL = QueryProtocol(SYNTHETIC)
SYNTHETIC_VALUE = {
    "Attributes": {"a": "1", "b.c": "2=3"},
    "Renamed": {"x": [1, 2], "y": []},
    "Flat": ["f1", "f2"],
    "FlatNamed": ["e1"],
    "Named": ["n1", "n2"],
    "When": dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC),
    "Data": bytes(range(256)),
    "Ratio": 0.25,
    "Big": 1 << 40,
    "Nested": {"Named": ["deep"], "Attributes": {"k": "v"}},
}


def test_synthetic_parse_round_trip() -> None:
    assert parse_back(SYNTHETIC, SYNTHETIC_PROTOCOL, "Op", SYNTHETIC_VALUE) == SYNTHETIC_VALUE


def test_synthetic_serialize_round_trip() -> None:
    # IAM and STS print whole seconds (2026-01-02T03:04:05Z): the milliseconds do not come back.
    expected = {**SYNTHETIC_VALUE, "When": WHEN}
    assert botocore_reads(SYNTHETIC, SYNTHETIC_PROTOCOL, "Op", SYNTHETIC_VALUE) == expected


def test_synthetic_wire_keys() -> None:
    request = to_request(SYNTHETIC, "Op", SYNTHETIC_VALUE)
    keys = set(dict(parse_qsl(request.body.decode())))
    assert {"Attributes.entry.1.key", "Renamed.entry.1.Name", "Renamed.entry.1.Values.member.2"} <= keys
    assert {"Flat.1", "Entry.1", "Named.Item.1", "Nested.Named.Item.1"} <= keys


def test_timestamps_parse_in_iso8601_and_epoch_forms() -> None:
    for text in ("2026-01-02T03:04:05Z", "2026-01-02T04:04:05%2B01:00", "2026-01-02T03:04:05", "1767323045"):
        body = f"Action=Op&Version=2020-01-01&When={text}"
        parsed = SYNTHETIC_PROTOCOL.parse(SYNTHETIC_PROTOCOL.match(form(body)), form(body))
        assert parsed["When"] == WHEN, text
        assert parsed["When"].tzinfo is dt.UTC
    body = "Action=Op&Version=2020-01-01&When=yesterday"
    with pytest.raises(AwsError, match="at 'when'"):
        SYNTHETIC_PROTOCOL.parse(SYNTHETIC_PROTOCOL.match(form(body)), form(body))


def test_bad_base64_is_a_validation_error() -> None:
    body = "Action=Op&Version=2020-01-01&Data=%%%"
    with pytest.raises(AwsError) as info:
        SYNTHETIC_PROTOCOL.parse(SYNTHETIC_PROTOCOL.match(form(body)), form(body))
    assert info.value.code == "ValidationError"


# -- serialising: botocore reads back what we write ----------------------------------------------

ROLE = {
    "Path": "/",
    "RoleName": "lambda-role",
    "RoleId": "AROA0000000000000000A",
    "Arn": "arn:aws:iam::000000000000:role/lambda-role",
    "CreateDate": WHEN,
    "AssumeRolePolicyDocument": "%7B%22Version%22%3A%222012-10-17%22%7D",
    "Description": "<&>",
    "MaxSessionDuration": 3600,
    "Tags": [{"Key": "a", "Value": "b"}],
    "RoleLastUsed": {"LastUsedDate": WHEN, "Region": "us-east-1"},
}

REAL_OUTPUTS = [
    pytest.param(IAM_MODEL, "GetRole", {"Role": ROLE}, id="iam-GetRole"),
    pytest.param(
        IAM_MODEL,
        "ListRoles",
        {"Roles": [ROLE, {**ROLE, "RoleName": "other", "Tags": []}], "IsTruncated": True, "Marker": "m"},
        id="iam-ListRoles",
    ),
    pytest.param(IAM_MODEL, "ListRoles", {"Roles": [], "IsTruncated": False}, id="iam-ListRoles-empty"),
    pytest.param(
        IAM_MODEL,
        "CreatePolicy",
        {
            "Policy": {
                "PolicyName": "p",
                "PolicyId": "ANPA0000000000000000A",
                "Arn": "arn:aws:iam::000000000000:policy/p",
                "Path": "/",
                "DefaultVersionId": "v1",
                "AttachmentCount": 0,
                "PermissionsBoundaryUsageCount": 0,
                "IsAttachable": True,
                "CreateDate": WHEN,
                "UpdateDate": WHEN,
                "Tags": [],
            }
        },
        id="iam-CreatePolicy",
    ),
    pytest.param(
        IAM_MODEL,
        "GetAccountSummary",
        {"SummaryMap": {"Roles": 3, "Policies": 0}},
        id="iam-GetAccountSummary-map",
    ),
    pytest.param(
        IAM_MODEL,
        "GetCredentialReport",
        {"Content": b"user,arn\n", "ReportFormat": "text/csv", "GeneratedTime": WHEN},
        id="iam-GetCredentialReport-blob",
    ),
    pytest.param(
        STS_MODEL,
        "GetCallerIdentity",
        {
            "UserId": "AKIAIOSFODNN7EXAMPLE",
            "Account": "000000000000",
            "Arn": "arn:aws:iam::000000000000:root",
        },
        id="sts-GetCallerIdentity",
    ),
    pytest.param(
        STS_MODEL,
        "AssumeRole",
        {
            "Credentials": {
                "AccessKeyId": "ASIA0000000000000000",
                "SecretAccessKey": "secret/+=",
                "SessionToken": "token",
                "Expiration": WHEN,
            },
            "AssumedRoleUser": {
                "AssumedRoleId": "AROA0000000000000000A:s",
                "Arn": "arn:aws:sts::000000000000:assumed-role/r/s",
            },
            "PackedPolicySize": 6,
        },
        id="sts-AssumeRole",
    ),
]


@pytest.mark.parametrize(("model", "operation", "output"), REAL_OUTPUTS)
def test_botocore_reads_what_we_write(model: Any, operation: str, output: dict[str, Any]) -> None:
    protocol = IAM if model is IAM_MODEL else STS
    assert botocore_reads(model, protocol, operation, output) == output


@pytest.mark.parametrize(
    ("model", "operation"),
    [pytest.param(IAM_MODEL, name, id=f"iam-{name}") for name in IAM_MODEL.operation_names]
    + [pytest.param(STS_MODEL, name, id=f"sts-{name}") for name in STS_MODEL.operation_names],
)
def test_serialize_round_trip_every_operation(model: Any, operation: str) -> None:
    protocol = IAM if model is IAM_MODEL else STS
    shape = model.operation_model(operation).output_shape
    output = sample(shape, "o<u&t>\"p'u\r\nt ü") if shape is not None else {}
    assert botocore_reads(model, protocol, operation, output) == output


def test_get_role_xml() -> None:
    output = {
        "Role": {"RoleName": "r", "Arn": "arn", "CreateDate": WHEN, "Tags": [{"Key": "k", "Value": "v"}]}
    }
    response = IAM.serialize(IAM.match(form("Action=GetRole&Version=2010-05-08")), output, "rid")
    assert response.body.decode() == (
        '<GetRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetRoleResult><Role>'
        "<RoleName>r</RoleName><Arn>arn</Arn><CreateDate>2026-01-02T03:04:05Z</CreateDate>"
        "<Tags><member><Key>k</Key><Value>v</Value></member></Tags>"
        "</Role></GetRoleResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetRoleResponse>"
    )
    assert ("Content-Type", "text/xml") in response.headers
    assert ("x-amzn-RequestId", "rid") in response.headers


def test_members_in_shape_order_and_unknown_keys_dropped() -> None:
    output = {"Role": {"Arn": "arn", "RoleName": "r", "Path": "/", "Bogus": 1, "Description": None}}
    body = IAM.serialize(IAM.match(form("Action=GetRole&Version=2010-05-08")), output, "rid").body.decode()
    assert "<Role><Path>/</Path><RoleName>r</RoleName><Arn>arn</Arn></Role>" in body


def test_operation_without_output() -> None:
    response = IAM.serialize(IAM.match(form("Action=DeleteRole&Version=2010-05-08")), {}, "rid")
    assert response.body.decode() == (
        '<DeleteRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        "<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DeleteRoleResponse>"
    )


def test_sts_namespace() -> None:
    body = STS.serialize(STS.match(form("Action=GetCallerIdentity&Version=2011-06-15")), {}, "rid").body
    assert body.startswith(
        b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
    )


def test_escape() -> None:
    assert escape("plain") == "plain"
    assert escape("a<b>&c\r\n\x00\"'") == "a&lt;b&gt;&amp;c&#13;\n\ufffd\"'"


def test_timestamp_text_forms() -> None:
    naive = dt.datetime(2026, 1, 2, 3, 4, 5)
    epoch = WHEN.timestamp()
    for value in (naive, epoch, WHEN.astimezone(dt.timezone(dt.timedelta(hours=2)))):
        output = {"Role": {"RoleName": "r", "CreateDate": value}}
        body = IAM.serialize(IAM.match(form("Action=GetRole&Version=2010-05-08")), output, "rid").body
        assert b"<CreateDate>2026-01-02T03:04:05Z</CreateDate>" in body


# -- errors --------------------------------------------------------------------------------------


def test_error_xml() -> None:
    error = AwsError(
        "The role with name x cannot be found.", code="NoSuchEntity", status=404, sender_fault=True
    )
    response = IAM.serialize_error(error, "rid")
    assert response.status == 404
    assert ("Content-Type", "text/xml") in response.headers
    assert response.body.decode() == (
        '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
        "<Code>NoSuchEntity</Code><Message>The role with name x cannot be found.</Message></Error>"
        "<RequestId>rid</RequestId></ErrorResponse>"
    )


@pytest.mark.parametrize(
    ("error", "status", "code", "kind"),
    [
        pytest.param(
            AwsError("Role r exists <&>", code="EntityAlreadyExists", status=409, sender_fault=True),
            409,
            "EntityAlreadyExists",
            "Sender",
            id="sender",
        ),
        pytest.param(ServiceException("boom"), 500, "InternalFailure", "Receiver", id="server-fault"),
        pytest.param(
            ValidationException("1 validation error detected: x"),
            400,
            "ValidationError",
            "Sender",
            id="validation",
        ),
        pytest.param(
            UnrecognizedClientException("The security token included in the request is invalid."),
            403,
            "InvalidClientTokenId",
            "Sender",
            id="sigv4",
        ),
    ],
)
def test_botocore_reads_errors(error: AwsError, status: int, code: str, kind: str) -> None:
    got_status, parsed = botocore_error(IAM_MODEL, IAM, error)
    assert (got_status, parsed["Code"], parsed["Message"], parsed["Type"]) == (
        status,
        code,
        error.message,
        kind,
    )


def test_validation_member_paths() -> None:
    """api/validation.py on parsed query input prints IAM's own member paths (``x.N.member.y``)."""
    params = {
        "PolicySourceArn": "arn:aws:iam::000000000000:role/r",
        "ActionNames": ["ec2:CreateNetworkInterface"],
        "ContextEntries": [
            {"ContextKeyName": "aws:SourceIp", "ContextKeyType": "ip"},
            {"ContextKeyName": "k" * 257, "ContextKeyType": "ip"},
        ],
        "MaxItems": 1001,
    }
    request = to_request(IAM_MODEL, "SimulatePrincipalPolicy", params)
    match = IAM.match(request)
    with pytest.raises(ValidationException) as info:
        validate(match.operation.input_shape, IAM.parse(match, request))
    assert info.value.message == (
        "2 validation errors detected: "
        f"Value '{'k' * 257}' at 'contextEntries.2.member.contextKeyName' failed to satisfy constraint: "
        "Member must have length less than or equal to 256; "
        "Value '1001' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 1000"
    )
    _, error = botocore_error(IAM_MODEL, IAM, info.value)
    assert error["Code"] == "ValidationError"


def test_validation_of_tag_patterns() -> None:
    params = {"RoleName": "r", "Tags": [{"Key": "bad*key", "Value": "v"}]}
    request = to_request(IAM_MODEL, "TagRole", params)
    match = IAM.match(request)
    with pytest.raises(ValidationException, match="at 'tags.1.member.key'"):
        validate(match.operation.input_shape, IAM.parse(match, request))


# -- a real client, end to end ------------------------------------------------------------------


def iam_handler(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    if operation == "GetRole":
        if params["RoleName"] != "lambda-role":
            raise AwsError(
                f"The role with name {params['RoleName']} cannot be found.",
                code="NoSuchEntity",
                status=404,
                sender_fault=True,
            )
        return {"Role": ROLE}
    if operation == "ListRoles":
        return {"Roles": [ROLE] * params.get("MaxItems", 2), "IsTruncated": False}
    if operation == "CreateRole":
        return {"Role": {**ROLE, "RoleName": params["RoleName"], "Description": params["Description"]}}
    raise AssertionError(operation)


def test_client_end_to_end() -> None:
    client = client_for("iam", IAM, iam_handler)
    role = client.get_role(RoleName="lambda-role")
    # botocore decodes IAM's URL-encoded policy documents (handlers must encode them, as AWS does).
    assert role["Role"] == {**ROLE, "AssumeRolePolicyDocument": {"Version": "2012-10-17"}}
    assert role["ResponseMetadata"]["RequestId"] == REQUEST_ID
    assert len(client.list_roles(MaxItems=3)["Roles"]) == 3
    created = client.create_role(RoleName="new", AssumeRolePolicyDocument=POLICY, Description="a & b")
    assert created["Role"]["RoleName"] == "new"
    with pytest.raises(client.exceptions.NoSuchEntityException) as info:
        client.get_role(RoleName="missing")
    assert info.value.response["Error"]["Message"] == "The role with name missing cannot be found."
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as invalid:
        client.create_role(RoleName="bad name", AssumeRolePolicyDocument=POLICY)
    assert invalid.value.response["Error"]["Code"] == "ValidationError"
    assert "at 'roleName'" in invalid.value.response["Error"]["Message"]


def test_sts_client_end_to_end() -> None:
    identity = {"UserId": "AIDA", "Account": "000000000000", "Arn": "arn:aws:iam::000000000000:user/u"}
    client = client_for("sts", STS, lambda operation, params: identity)
    got = client.get_caller_identity()
    got.pop("ResponseMetadata")
    assert got == identity
