"""The rest-xml protocol (S3): routing, parsing, serialising, errors."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

import botocore.session
import pytest

from lamina.api.http import Request
from lamina.api.protocols import RestXmlProtocol, protocol_for
from lamina.api.protocols.restxml import virtual_host_bucket
from lamina.api.sigv4 import ContentSha256Mismatch
from lamina.domain import s3 as rules
from lamina.errors import AccessDeniedException, AwsError, MissingAuthenticationTokenException
from lamina.services.base import HTTP_STATUS, FileSlice

MODEL = botocore.session.get_session().get_service_model("s3")
PROTOCOL = protocol_for(MODEL)
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def request(
    method: str, path: str, query: str = "", headers: dict[str, str] | None = None, body: bytes = b""
) -> Request:
    return Request(method, path, query, {"host": "127.0.0.1:4566", **(headers or {})}, body)


def test_protocol_for_rest_xml() -> None:
    assert isinstance(PROTOCOL, RestXmlProtocol)


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "operation"),
    [
        ("GET", "/", "", {}, "ListBuckets"),
        ("PUT", "/b", "", {}, "CreateBucket"),
        ("HEAD", "/b", "", {}, "HeadBucket"),
        ("DELETE", "/b", "", {}, "DeleteBucket"),
        ("GET", "/b", "", {}, "ListObjects"),
        ("GET", "/b/", "", {}, "ListObjects"),
        ("GET", "/b", "list-type=2", {}, "ListObjectsV2"),
        ("GET", "/b", "location", {}, "GetBucketLocation"),
        ("GET", "/b", "versioning", {}, "GetBucketVersioning"),
        ("PUT", "/b", "tagging", {}, "PutBucketTagging"),
        ("GET", "/b", "tagging", {}, "GetBucketTagging"),
        ("DELETE", "/b", "tagging", {}, "DeleteBucketTagging"),
        ("POST", "/b", "delete", {}, "DeleteObjects"),
        ("PUT", "/b/k", "", {}, "PutObject"),
        ("PUT", "/b/k", "x-id=PutObject", {}, "PutObject"),
        ("PUT", "/b/k", "", {"x-amz-copy-source": "b/o"}, "CopyObject"),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", {}, "UploadPart"),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", {"x-amz-copy-source": "b/o"}, "UploadPartCopy"),
        ("GET", "/b/k", "", {}, "GetObject"),
        ("GET", "/b/k", "uploadId=u", {}, "ListParts"),
        ("HEAD", "/b/k", "", {}, "HeadObject"),
        ("DELETE", "/b/k", "", {}, "DeleteObject"),
        ("DELETE", "/b/k", "uploadId=u", {}, "AbortMultipartUpload"),
        ("GET", "/b/k", "tagging", {}, "GetObjectTagging"),
        ("POST", "/b/k", "uploads", {}, "CreateMultipartUpload"),
        ("POST", "/b/k", "uploadId=u", {}, "CompleteMultipartUpload"),
    ],
)
def test_routing(method: str, path: str, query: str, headers: dict[str, str], operation: str) -> None:
    assert PROTOCOL.match(request(method, path, query, headers)).operation.name == operation


def test_uri_members_are_decoded_whole() -> None:
    match = PROTOCOL.match(request("GET", "/b/dir//a%20b+c%3F/"))
    assert match.uri_params == {"Bucket": "b", "Key": "dir//a b+c?/"}


def test_virtual_hosted_routing() -> None:
    for host in (
        "my.bucket.s3.localhost:4566",
        "my.bucket.s3.us-east-1.amazonaws.com",
        "MY.BUCKET.s3.localhost",
    ):
        assert virtual_host_bucket(host) == "my.bucket"
    for host in ("127.0.0.1:4566", "s3.amazonaws.com", "localhost", "s3.localhost:4566"):
        assert virtual_host_bucket(host) is None
    match = PROTOCOL.match(request("GET", "/dir/key", headers={"host": "bkt.s3.localhost:4566"}))
    assert (match.operation.name, match.uri_params) == ("GetObject", {"Bucket": "bkt", "Key": "dir/key"})
    match = PROTOCOL.match(request("GET", "/", "list-type=2", headers={"host": "bkt.s3.localhost:4566"}))
    assert (match.operation.name, match.uri_params) == ("ListObjectsV2", {"Bucket": "bkt"})


def test_unroutable_is_method_not_allowed() -> None:
    with pytest.raises(AwsError) as exc:
        PROTOCOL.match(request("PATCH", "/b/k"))
    assert (exc.value.code, exc.value.status) == ("MethodNotAllowed", 405)
    assert exc.value.fields == {"Method": "PATCH", "ResourceType": "OBJECT"}


def test_parse_headers_query_and_metadata() -> None:
    req = request(
        "GET",
        "/b/k",
        "response-content-type=text%2Fplain&partNumber=3",
        {
            "range": "bytes=0-1",
            "if-modified-since": "Wed, 21 Oct 2015 07:28:00 GMT",
            "if-unmodified-since": "not a date",
        },
    )
    params = PROTOCOL.parse(PROTOCOL.match(req), req)
    assert params["Range"] == "bytes=0-1"
    assert params["ResponseContentType"] == "text/plain"
    assert params["PartNumber"] == 3
    assert params["IfModifiedSince"] == dt.datetime(2015, 10, 21, 7, 28, tzinfo=dt.UTC)
    assert "IfUnmodifiedSince" not in params  # S3 ignores a date it cannot read
    put = request(
        "PUT", "/b/k", headers={"x-amz-meta-color": "blue", "content-type": "text/plain"}, body=b"x"
    )
    params = PROTOCOL.parse(PROTOCOL.match(put), put)
    assert (params["Metadata"], params["ContentType"], params["Body"]) == (
        {"color": "blue"},
        "text/plain",
        b"x",
    )


def test_parse_xml_payloads() -> None:
    body = (
        b'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>'
        b"<Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value></Value></Tag></TagSet></Tagging>"
    )
    req = request("PUT", "/b", "tagging", body=body)
    assert PROTOCOL.parse(PROTOCOL.match(req), req)["Tagging"] == {
        "TagSet": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": ""}]
    }
    body = b"<Delete><Object><Key>x</Key></Object><Object><Key>y</Key></Object><Quiet>true</Quiet></Delete>"
    req = request("POST", "/b", "delete", body=body)
    assert PROTOCOL.parse(PROTOCOL.match(req), req)["Delete"] == {
        "Objects": [{"Key": "x"}, {"Key": "y"}],
        "Quiet": True,
    }
    body = b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"
    req = request("PUT", "/b", body=body)
    assert PROTOCOL.parse(PROTOCOL.match(req), req)["CreateBucketConfiguration"] == {
        "LocationConstraint": "eu-west-1"
    }


@pytest.mark.parametrize(
    "body",
    [
        b"<Tagging><TagSet>",
        b"<Other/>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Tagging>&a;</Tagging>',
        b"<Delete><Quiet>maybe</Quiet></Delete>",
    ],
)
def test_bad_xml_is_malformed(body: bytes) -> None:
    path, query = ("/b", "delete") if b"Delete" in body else ("/b", "tagging")
    req = request("POST" if query == "delete" else "PUT", path, query, body=body)
    with pytest.raises(AwsError) as exc:
        PROTOCOL.parse(PROTOCOL.match(req), req)
    assert (exc.value.code, exc.value.message) == ("MalformedXML", rules.MALFORMED_XML)


def serialize(operation: str, output: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    match = PROTOCOL.match(_route_for(operation))
    response = PROTOCOL.serialize(match, output, "REQ1")
    return response.status, dict(response.headers), response.body


def _route_for(operation: str) -> Request:
    return {
        "ListObjectsV2": request("GET", "/b", "list-type=2"),
        "GetObject": request("GET", "/b/k"),
        "HeadObject": request("HEAD", "/b/k"),
        "GetBucketLocation": request("GET", "/b", "location"),
        "PutBucketTagging": request("PUT", "/b", "tagging"),
        "DeleteObject": request("DELETE", "/b/k"),
        "CopyObject": request("PUT", "/b/k", headers={"x-amz-copy-source": "b/o"}),
        "GetBucketVersioning": request("GET", "/b", "versioning"),
    }[operation]


def test_serialize_list_bucket_result() -> None:
    modified = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    status, headers, body = serialize(
        "ListObjectsV2",
        {
            "IsTruncated": False,
            "Name": "b",
            "Prefix": "",
            "MaxKeys": 1000,
            "KeyCount": 2,
            "Contents": [
                {"Key": "a&b", "LastModified": modified, "ETag": '"e"', "Size": 3, "StorageClass": "STANDARD"}
            ],
            "CommonPrefixes": [{"Prefix": "dir/"}],
        },
    )
    assert (status, headers["Content-Type"]) == (200, "application/xml")
    root = ET.fromstring(body)
    assert root.tag == f"{NS}ListBucketResult"
    assert root.find(f"{NS}Contents/{NS}Key").text == "a&b"  # type: ignore[union-attr]
    assert root.find(f"{NS}Contents/{NS}LastModified").text == "2026-01-02T03:04:05.678Z"  # type: ignore[union-attr]
    assert root.find(f"{NS}CommonPrefixes/{NS}Prefix").text == "dir/"  # type: ignore[union-attr]
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns=')


def test_serialize_get_object_streams_a_file_slice() -> None:
    modified = dt.datetime(2015, 10, 21, 7, 28, tzinfo=dt.UTC)
    match = PROTOCOL.match(request("GET", "/b/k"))
    response = PROTOCOL.serialize(
        match,
        {
            "Body": FileSlice("/data/blob", 5, 10),
            "ContentLength": 10,
            "ContentRange": "bytes 5-14/20",
            "ETag": '"e"',
            "LastModified": modified,
            "Metadata": {"color": "blue"},
            "ContentType": "text/plain",
            HTTP_STATUS: 206,
        },
        "REQ1",
    )
    headers = dict(response.headers)
    assert response.status == 206
    assert (response.file_path, response.file_offset, response.file_size) == ("/data/blob", 5, 10)
    assert headers["Last-Modified"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert headers["x-amz-meta-color"] == "blue"
    assert headers["Content-Range"] == "bytes 5-14/20"
    assert "Content-Length" not in headers  # the front end writes it, once
    head = PROTOCOL.serialize(
        PROTOCOL.match(request("HEAD", "/b/k")), {"ContentLength": 20, "ETag": '"e"'}, "R"
    )
    assert (head.length, head.body) == (20, b"")


def test_serialize_special_cases() -> None:
    assert serialize("GetBucketLocation", {"LocationConstraint": None})[2].endswith(
        b'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
    )
    assert serialize("GetBucketLocation", {"LocationConstraint": "eu-west-1"})[2].endswith(
        b'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-1</LocationConstraint>'
    )
    assert serialize("PutBucketTagging", {})[0] == 204
    assert serialize("DeleteObject", {})[:3:2] == (204, b"")
    status, _, body = serialize("CopyObject", {"CopyObjectResult": {"ETag": '"e"'}})
    assert ET.fromstring(body).tag == f"{NS}CopyObjectResult"
    assert ET.fromstring(serialize("GetBucketVersioning", {})[2]).tag == f"{NS}VersioningConfiguration"


def error_xml(error: AwsError) -> tuple[int, dict[str, str], bytes]:
    response = PROTOCOL.serialize_error(error, "REQ1")
    return response.status, dict(response.headers), response.body


def test_error_document() -> None:
    status, headers, body = error_xml(rules.no_such_bucket("b"))
    assert status == 404
    assert headers["x-amz-request-id"] == "REQ1"
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code>'
        b"<Message>The specified bucket does not exist</Message><BucketName>b</BucketName>"
        b"<RequestId>REQ1</RequestId><HostId>" + headers["x-amz-id-2"].encode() + b"</HostId></Error>"
    )


def test_neutral_errors_in_s3_words() -> None:
    status, _, body = error_xml(MissingAuthenticationTokenException("Missing Authentication Token"))
    assert status == 403 and b"<Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>" in body
    status, _, body = error_xml(AccessDeniedException("User: x is not authorized"))
    assert status == 403 and b"<Code>AccessDenied</Code><Message>User: x is not authorized</Message>" in body
    status, _, body = error_xml(ContentSha256Mismatch("m", client="aa", computed="bb"))
    assert status == 400
    assert b"<ClientComputedContentSHA256>aa</ClientComputedContentSHA256>" in body
    assert b"<S3ComputedContentSHA256>bb</S3ComputedContentSHA256>" in body
    modified = dt.datetime(2026, 12, 6, 12, 0, 0, tzinfo=dt.UTC)
    status, headers, body = error_xml(rules.not_modified('"abc"', modified))
    assert (status, body) == (304, b"")
    assert "Content-Type" not in headers
    assert headers["ETag"] == '"abc"' and headers["Last-Modified"] == "Sun, 06 Dec 2026 12:00:00 GMT"
