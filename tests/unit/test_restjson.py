"""rest-json routing, parsing and serialising from botocore's Lambda model."""

from __future__ import annotations

import base64
import json

import botocore.session
import pytest

from lamina.api.http import Request
from lamina.api.protocols import RestJsonProtocol
from lamina.errors import InvalidParameterValueException, ResourceNotFoundException, UnknownOperationException

PROTOCOL = RestJsonProtocol(botocore.session.get_session().get_service_model("lambda"))


def req(method: str, path: str, query: str = "", body: bytes = b"") -> Request:
    return Request(method=method, raw_path=path, query_string=query, headers={}, body=body)


@pytest.mark.parametrize(
    ("method", "path", "query", "operation", "params"),
    [
        pytest.param(
            "POST",
            "/2018-10-31/layers/my-layer/versions",
            "",
            "PublishLayerVersion",
            {"LayerName": "my-layer"},
            id="publish",
        ),
        pytest.param(
            "GET",
            "/2018-10-31/layers/my-layer/versions/3",
            "",
            "GetLayerVersion",
            {"LayerName": "my-layer", "VersionNumber": "3"},
            id="get",
        ),
        pytest.param(
            "GET",
            "/2018-10-31/layers",
            "find=LayerVersion&Arn=x",
            "GetLayerVersionByArn",
            {},
            id="by-arn-query-condition",
        ),
        pytest.param(
            "GET", "/2018-10-31/layers", "CompatibleRuntime=python3.12", "ListLayers", {}, id="list-layers"
        ),
        pytest.param(
            "GET",
            "/2018-10-31/layers/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Alayer%3Ax/versions",
            "",
            "ListLayerVersions",
            {"LayerName": "arn:aws:lambda:us-east-1:123456789012:layer:x"},
            id="encoded-arn-label",
        ),
        pytest.param(
            "DELETE",
            "/2018-10-31/layers/l/versions/1/policy/s1",
            "RevisionId=r",
            "RemoveLayerVersionPermission",
            {"LayerName": "l", "VersionNumber": "1", "StatementId": "s1"},
            id="remove-permission",
        ),
    ],
)
def test_routing(method: str, path: str, query: str, operation: str, params: dict[str, str]) -> None:
    match = PROTOCOL.match(req(method, path, query))
    assert match.operation.name == operation
    assert match.uri_params == params


def test_unknown_route() -> None:
    with pytest.raises(UnknownOperationException):
        PROTOCOL.match(req("PATCH", "/2018-10-31/layers"))


def test_parse_uri_query_and_body() -> None:
    body = json.dumps(
        {
            "Content": {"ZipFile": base64.b64encode(b"PK").decode()},
            "CompatibleRuntimes": ["python3.12"],
            "Description": "d",
        }
    ).encode()
    r = req("POST", "/2018-10-31/layers/l/versions", "", body)
    params = PROTOCOL.parse(PROTOCOL.match(r), r)
    assert params == {
        "LayerName": "l",
        "Content": {"ZipFile": b"PK"},
        "CompatibleRuntimes": ["python3.12"],
        "Description": "d",
    }
    r = req("GET", "/2018-10-31/layers/l/versions/-1")
    assert PROTOCOL.parse(PROTOCOL.match(r), r)["VersionNumber"] == -1
    r = req("GET", "/2018-10-31/layers", "MaxItems=5&Marker=abc")
    assert PROTOCOL.parse(PROTOCOL.match(r), r) == {"MaxItems": 5, "Marker": "abc"}


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"Content": []}',
        b'{"Content": {"ZipFile": "***"}}',
        b'{"CompatibleRuntimes": "python3.12"}',
    ],
    ids=["json", "struct", "base64", "list"],
)
def test_parse_rejects_malformed_bodies(body: bytes) -> None:
    r = req("POST", "/2018-10-31/layers/l/versions", "", body)
    with pytest.raises(Exception) as e:
        PROTOCOL.parse(PROTOCOL.match(r), r)
    assert getattr(e.value, "code", None) == "SerializationException"


def test_serialize_uses_model_status_and_order() -> None:
    match = PROTOCOL.match(req("POST", "/2018-10-31/layers/l/versions"))
    resp = PROTOCOL.serialize(match, {"Version": 1, "LayerArn": "a", "Content": {"CodeSize": 3}}, "rid")
    assert resp.status == 201
    assert list(json.loads(resp.body)) == ["Content", "LayerArn", "Version"]
    delete = PROTOCOL.match(req("DELETE", "/2018-10-31/layers/l/versions/1"))
    resp = PROTOCOL.serialize(delete, {}, "rid")
    assert (resp.status, resp.body) == (204, b"")


@pytest.mark.parametrize(
    ("error", "body"),
    [
        pytest.param(ResourceNotFoundException("gone"), {"Type": "User", "Message": "gone"}, id="upper"),
        pytest.param(InvalidParameterValueException("bad"), {"Type": "User", "message": "bad"}, id="lower"),
    ],
)
def test_error_bodies(error: Exception, body: dict[str, str]) -> None:
    resp = PROTOCOL.serialize_error(error, "rid")  # type: ignore[arg-type]
    assert json.loads(resp.body) == body
    assert ("x-amzn-ErrorType", type(error).__name__) in resp.headers


def test_every_operation_routes_to_itself() -> None:
    """botocore's own serialiser makes each Lambda request; routing must find that operation."""
    import datetime as dt

    from botocore.serialize import create_serializer
    from protocol_samples import sampler

    model = PROTOCOL.service_model
    serializer = create_serializer("rest-json", include_validation=False)
    sample = sampler(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    for name in model.operation_names:
        operation = model.operation_model(name)
        params = sample(operation.input_shape, "v1") if operation.input_shape is not None else {}
        wire = serializer.serialize_to_request(params, operation)
        path, _, query = wire["url_path"].partition("?")
        query = "&".join(filter(None, [query, *(f"{k}={v}" for k, v in wire["query_string"].items())]))
        request = Request(method=wire["method"], raw_path=path, query_string=query, headers={}, body=b"")
        assert PROTOCOL.match(request).operation.name == name, (name, path, query)
