"""S3 against the real server: boto3 (path-style), hand-signed requests (virtual-hosted, unsigned
payloads, a lying x-amz-content-sha256), anonymous requests and the AWS CLI. Shapes, codes and
messages are AWS's, as recorded against it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from lamina_server import ACCOUNTS, LaminaServer, client, run_aws
from s3_kit import ALICE, BOB, PATH_STYLE, error


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina") / "data", accounts=ACCOUNTS, lambda_role=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3(server: LaminaServer) -> Any:
    return client(server, "s3", s3=PATH_STYLE)


@pytest.fixture(scope="module")
def alice(server: LaminaServer) -> Any:
    return client(server, "s3", **ALICE, s3=PATH_STYLE)


@pytest.fixture(scope="module")
def bob(server: LaminaServer) -> Any:
    return client(server, "s3", **BOB, s3=PATH_STYLE)


_counter = iter(range(1_000_000))


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"test-bucket-{next(_counter)}-{os.getpid()}"
    s3.create_bucket(Bucket=name)
    return name


def raw(
    server: LaminaServer,
    method: str,
    path: str,
    *,
    host: str | None = None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    sign: bool = True,
    content_sha256: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request sent by hand (``host``: the Host header, for virtual-hosted addressing), signed
    with SigV4 for s3 unless ``sign`` is False; ``content_sha256``: the x-amz-content-sha256 to sign
    instead of the body's hash."""
    host = host or f"127.0.0.1:{server.port}"
    all_headers = dict(headers or {})
    if sign:
        request = AWSRequest(method=method, url=f"http://{host}{path}", data=body, headers=all_headers)
        request.headers["X-Amz-Content-SHA256"] = content_sha256 or hashlib.sha256(body).hexdigest()
        SigV4Auth(Credentials("test", "test"), "s3", "us-east-1").add_auth(request)
        all_headers = dict(request.headers.items())
    all_headers["Host"] = host
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# -- buckets --------------------------------------------------------------------------------------


def test_create_bucket_answers_location_and_arn(s3: Any) -> None:
    r = s3.create_bucket(Bucket="shape-bucket-1")
    assert (r["Location"], r["BucketArn"]) == ("/shape-bucket-1", "arn:aws:s3:::shape-bucket-1")
    head = s3.head_bucket(Bucket="shape-bucket-1")
    assert head["BucketRegion"] == "us-east-1"
    assert head["BucketArn"] == "arn:aws:s3:::shape-bucket-1"
    assert head["AccessPointAlias"] is False
    assert s3.get_bucket_location(Bucket="shape-bucket-1")["LocationConstraint"] is None
    # Versioning is never enabled: no Status at all.
    assert "Status" not in s3.get_bucket_versioning(Bucket="shape-bucket-1")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "shape-bucket-1" in names


def test_bucket_names_are_checked(s3: Any) -> None:
    for name in ("Upper-Case", "ab", "a..b", "192.168.5.4", "xn--bucket", "bucket-", "x" * 64):
        with pytest.raises(ClientError) as exc:
            s3.create_bucket(Bucket=name)
        assert error(exc) == (
            400,
            {
                "Code": "InvalidBucketName",
                "Message": "The specified bucket is not valid.",
                "BucketName": name,
            },
        )


def test_location_constraints(server: LaminaServer, s3: Any) -> None:
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="loc-bucket-1", CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert error(exc) == (
        400,
        {
            "Code": "InvalidLocationConstraint",
            "Message": "The specified location-constraint is not valid",
            "LocationConstraint": "us-east-1",
        },
    )
    west = client(server, "s3", region="us-west-1", s3=PATH_STYLE)
    with pytest.raises(ClientError) as exc:
        west.create_bucket(Bucket="loc-bucket-2")
    assert error(exc) == (
        400,
        {
            "Code": "IllegalLocationConstraintException",
            "Message": "The unspecified location constraint is incompatible for the region specific endpoint"
            " this request was sent to.",
        },
    )
    with pytest.raises(ClientError) as exc:
        west.create_bucket(
            Bucket="loc-bucket-2", CreateBucketConfiguration={"LocationConstraint": "us-east-2"}
        )
    assert error(exc)[1]["Message"].startswith("The us-east-2 location constraint is incompatible")
    west.create_bucket(Bucket="loc-bucket-2", CreateBucketConfiguration={"LocationConstraint": "us-west-1"})
    assert west.get_bucket_location(Bucket="loc-bucket-2")["LocationConstraint"] == "us-west-1"
    assert west.head_bucket(Bucket="loc-bucket-2")["BucketRegion"] == "us-west-1"
    # Your own bucket again: 409 outside us-east-1, 200 (and nothing changes) in us-east-1.
    with pytest.raises(ClientError) as exc:
        west.create_bucket(
            Bucket="loc-bucket-2", CreateBucketConfiguration={"LocationConstraint": "us-west-1"}
        )
    assert error(exc) == (
        409,
        {
            "Code": "BucketAlreadyOwnedByYou",
            "Message": "Your previous request to create the named bucket succeeded and you already own it.",
            "BucketName": "loc-bucket-2",
        },
    )
    s3.create_bucket(Bucket="loc-bucket-3")
    assert s3.create_bucket(Bucket="loc-bucket-3")["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_bucket_names_are_global(s3: Any, alice: Any) -> None:
    s3.create_bucket(Bucket="global-name-1")
    with pytest.raises(ClientError) as exc:
        alice.create_bucket(Bucket="global-name-1")
    status, err = error(exc)
    assert (status, err["Code"], err["BucketName"]) == (409, "BucketAlreadyExists", "global-name-1")
    assert err["Message"].startswith("The requested bucket name is not available.")
    assert "global-name-1" not in [b["Name"] for b in alice.list_buckets()["Buckets"]]


def test_delete_bucket(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert error(exc) == (
        409,
        {
            "Code": "BucketNotEmpty",
            "Message": "The bucket you tried to delete is not empty",
            "BucketName": bucket,
        },
    )
    s3.delete_object(Bucket=bucket, Key="k")
    assert s3.delete_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=bucket)
    assert error(exc) == (404, {"Code": "404", "Message": "Not Found"})
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert error(exc) == (
        404,
        {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist", "BucketName": bucket},
    )


def test_bucket_tagging(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error(exc) == (
        404,
        {"Code": "NoSuchTagSet", "Message": "The TagSet does not exist", "BucketName": bucket},
    )
    r = s3.put_bucket_tagging(
        Bucket=bucket, Tagging={"TagSet": [{"Key": "tag1", "Value": "tag1"}, {"Key": "tag2", "Value": ""}]}
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [
        {"Key": "tag1", "Value": "tag1"},
        {"Key": "tag2", "Value": ""},
    ]
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "aws:x", "Value": "v"}]})
    assert error(exc) == (
        400,
        {
            "Code": "InvalidTag",
            "Message": "System tags cannot be added/updated by requester",
            "TagKey": "aws:x",
        },
    )
    assert s3.delete_bucket_tagging(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError):
        s3.get_bucket_tagging(Bucket=bucket)


# -- objects --------------------------------------------------------------------------------------


def test_put_get_head_object(s3: Any, bucket: str) -> None:
    body = b"hello world"
    r = s3.put_object(
        Bucket=bucket, Key="dir/file.txt", Body=body, ContentType="text/plain", Metadata={"color": "blue"}
    )
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    assert r["ETag"] == etag
    assert r["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key="dir/file.txt")
    assert got["Body"].read() == body
    assert (got["ETag"], got["ContentType"], got["ContentLength"]) == (etag, "text/plain", len(body))
    assert got["Metadata"] == {"color": "blue"}
    assert got["AcceptRanges"] == "bytes"
    head = s3.head_object(Bucket=bucket, Key="dir/file.txt")
    assert (head["ContentLength"], head["ETag"], head["Metadata"]) == (len(body), etag, {"color": "blue"})
    # The default Content-Type.
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="plain")["ContentType"] == "binary/octet-stream"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="missing")
    assert error(exc) == (
        404,
        {"Code": "NoSuchKey", "Message": "The specified key does not exist.", "Key": "missing"},
    )
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="missing")
    assert error(exc) == (404, {"Code": "404", "Message": "Not Found"})


def test_keys_with_unusual_characters(s3: Any, bucket: str) -> None:
    keys = ["a b+c%d.txt", "ünïcödé/ключ", "trailing/", "double//slash", "?query&like=1", "emoji-\U0001f600"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for key in keys:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode("utf-8"))


def test_content_md5(s3: Any, bucket: str) -> None:
    body = b"test content"
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.put_object(Bucket=bucket, Key="md5", Body=body, ContentMD5=good)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="md5-bad", Body=body, ContentMD5=wrong)
    assert error(exc) == (
        400,
        {
            "Code": "BadDigest",
            "Message": "The Content-MD5 you specified did not match what we received.",
            "ExpectedDigest": wrong,
            "CalculatedDigest": good,
        },
    )
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="md5-bad", Body=body, ContentMD5="MTIz")
    assert error(exc) == (
        400,
        {
            "Code": "InvalidDigest",
            "Message": "The Content-MD5 you specified was invalid.",
            "Content-MD5": "MTIz",
        },
    )
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="md5-bad")


def test_signed_payload_must_match_its_hash(server: LaminaServer, s3: Any, bucket: str) -> None:
    claimed = hashlib.sha256(b"something else").hexdigest()
    status, _, body = raw(server, "PUT", f"/{bucket}/lying", body=b"actual bytes", content_sha256=claimed)
    assert status == 400
    assert b"<Code>XAmzContentSHA256Mismatch</Code>" in body
    assert (
        b"<Message>The provided 'x-amz-content-sha256' header does not match what was computed.</Message>"
        in body
    )
    assert f"<ClientComputedContentSHA256>{claimed}</ClientComputedContentSHA256>".encode() in body
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="lying")
    # UNSIGNED-PAYLOAD is taken as is.
    status, headers, _ = raw(
        server, "PUT", f"/{bucket}/unsigned", body=b"free bytes", content_sha256="UNSIGNED-PAYLOAD"
    )
    assert status == 200, headers
    assert s3.get_object(Bucket=bucket, Key="unsigned")["Body"].read() == b"free bytes"


def test_error_xml_is_s3s(server: LaminaServer) -> None:
    status, headers, body = raw(server, "GET", "/no-such-bucket-here/key")
    assert status == 404
    assert headers["content-type"] == "application/xml"
    text = body.decode()
    assert text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code>'
        "<Message>The specified bucket does not exist</Message><BucketName>no-such-bucket-here</BucketName>"
        "<RequestId>"
    )
    assert (
        f"<RequestId>{headers['x-amz-request-id']}</RequestId><HostId>{headers['x-amz-id-2']}</HostId></Error>"
        in text
    )


def test_range_requests(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="digits", Body=b"0123456789")

    def get(rng: str) -> tuple[int, bytes, str | None]:
        r = s3.get_object(Bucket=bucket, Key="digits", Range=rng)
        return r["ResponseMetadata"]["HTTPStatusCode"], r["Body"].read(), r.get("ContentRange")

    assert get("bytes=0-8") == (206, b"012345678", "bytes 0-8/10")
    assert get("bytes=1-1") == (206, b"1", "bytes 1-1/10")
    assert get("bytes=1-") == (206, b"123456789", "bytes 1-9/10")
    assert get("bytes=-2") == (206, b"89", "bytes 8-9/10")
    assert get("bytes=-15") == (206, b"0123456789", "bytes 0-9/10")
    assert get("bytes=0-100") == (206, b"0123456789", "bytes 0-9/10")
    assert get("bytes=1-0") == (200, b"0123456789", None)  # invalid: ignored
    assert get("bytes=0-1,3-4") == (200, b"0123456789", None)  # several ranges: ignored
    assert get("bytes=wrong") == (200, b"0123456789", None)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="digits", Range="bytes=10-")
    assert error(exc) == (
        416,
        {
            "Code": "InvalidRange",
            "Message": "The requested range is not satisfiable",
            "RangeRequested": "bytes=10-",
            "ActualObjectSize": "10",
        },
    )


def test_conditional_requests(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="cond", Body=b"data")["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="cond")["LastModified"]
    past = modified - dt.timedelta(days=1)
    future = modified + dt.timedelta(days=1)

    def status(**conditions: Any) -> int:
        try:
            return int(
                s3.get_object(Bucket=bucket, Key="cond", **conditions)["ResponseMetadata"]["HTTPStatusCode"]
            )
        except ClientError as exc:
            return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])

    assert status(IfMatch=etag) == 200
    assert status(IfMatch=etag.strip('"')) == 200
    assert status(IfNoneMatch=etag) == 304
    assert status(IfNoneMatch=etag.strip('"')) == 304
    assert status(IfNoneMatch='"other"') == 200
    assert status(IfModifiedSince=past) == 200
    assert status(IfModifiedSince=modified) == 304
    assert status(IfModifiedSince=future) == 200  # a date in the future is ignored
    assert status(IfUnmodifiedSince=modified) == 200
    assert status(IfMatch=etag, IfUnmodifiedSince=past) == 200  # If-Match wins
    assert status(IfNoneMatch='"other"', IfModifiedSince=modified) == 200  # If-None-Match wins
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="cond", IfMatch='"other"')
    assert error(exc) == (
        412,
        {
            "Code": "PreconditionFailed",
            "Message": "At least one of the pre-conditions you specified did not hold",
            "Condition": "If-Match",
        },
    )
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="cond", IfUnmodifiedSince=past)
    assert error(exc)[1]["Condition"] == "If-Unmodified-Since"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="cond", IfMatch='"other"')
    assert error(exc) == (412, {"Code": "412", "Message": "Precondition Failed"})
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="cond", IfNoneMatch=etag)
    assert error(exc) == (304, {"Code": "304", "Message": "Not Modified"})
    # A 304 carries the validators a 200 would (RFC 9110, 15.4.5), and no body.
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="cond", IfNoneMatch=etag)
    headers = exc.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["etag"] == etag
    assert headers["last-modified"] == modified.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert headers.get("content-length", "0") == "0"


def test_delete_object_and_objects(server: LaminaServer, s3: Any, bucket: str) -> None:
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.delete_object(Bucket=bucket, Key="a")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.delete_object(Bucket=bucket, Key="never")["ResponseMetadata"]["HTTPStatusCode"] == 204
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b"}, {"Key": "missing"}]})
    assert r["Deleted"] == [{"Key": "b"}, {"Key": "missing"}]
    assert "Errors" not in r
    status, _, body = raw(
        server,
        "POST",
        f"/{bucket}?delete",
        body=b"<Delete><Object><VersionId>1</VersionId></Object></Delete>",
    )
    assert (status, b"<Code>MalformedXML</Code>" in body) == (400, True)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"")
    assert error(exc)[1]["Code"] == "KeyTooLongError"
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert "Deleted" not in r
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_copy_object_shares_the_blob(server: LaminaServer, s3: Any, bucket: str) -> None:
    body = os.urandom(4096)
    digest = hashlib.sha256(body).hexdigest()
    s3.put_object(
        Bucket=bucket,
        Key="src",
        Body=body,
        ContentType="application/json",
        Metadata={"key": "value"},
        Tagging="t=1",
    )
    r = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    copied = s3.head_object(Bucket=bucket, Key="copy")
    assert (copied["ContentType"], copied["Metadata"]) == ("application/json", {"key": "value"})
    s3.copy_object(
        Bucket=bucket,
        Key="replaced",
        CopySource=f"{bucket}/src",
        MetadataDirective="REPLACE",
        ContentType="image/jpg",
        Metadata={"another-key": "value"},
    )
    replaced = s3.head_object(Bucket=bucket, Key="replaced")
    assert (replaced["ContentType"], replaced["Metadata"]) == ("image/jpg", {"another-key": "value"})
    assert s3.get_object(Bucket=bucket, Key="replaced")["Body"].read() == body
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src")
    assert error(exc)[1]["Code"] == "InvalidRequest"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/nothing")
    assert error(exc)[1]["Code"] == "NoSuchKey"
    # One file holds the bytes of all three objects; deleting the last frees it.
    blob = server.data_dir / "blobs" / digest[:2] / digest
    assert blob.is_file()
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "src"}, {"Key": "copy"}]})
    assert blob.is_file()
    s3.delete_object(Bucket=bucket, Key="replaced")
    assert not blob.exists()


def test_overwrite_frees_the_old_blob(server: LaminaServer, s3: Any, bucket: str) -> None:
    first = os.urandom(1000)
    s3.put_object(Bucket=bucket, Key="k", Body=first)
    blob = (
        server.data_dir / "blobs" / hashlib.sha256(first).hexdigest()[:2] / hashlib.sha256(first).hexdigest()
    )
    assert blob.is_file()
    s3.put_object(Bucket=bucket, Key="k", Body=b"second")
    assert not blob.exists()
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"


def test_object_tagging(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"test-tagging")
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == []
    s3.put_object_tagging(
        Bucket=bucket,
        Key="tagged",
        Tagging={"TagSet": [{"Key": "tag1", "Value": "tag1"}, {"Key": "tag2", "Value": ""}]},
    )
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == [
        {"Key": "tag1", "Value": "tag1"},
        {"Key": "tag2", "Value": ""},
    ]
    assert s3.get_object(Bucket=bucket, Key="tagged")["TagCount"] == 2
    r = s3.delete_object_tagging(Bucket=bucket, Key="tagged")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="tagged")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="dup", Body=b"", Tagging="a=1&a=2")
    assert error(exc)[1]["Code"] == "InvalidArgument"


# -- listings -------------------------------------------------------------------------------------


def test_list_objects_v2_pages(s3: Any, bucket: str) -> None:
    keys = [f"test_{i}" for i in range(12)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"hello world")
    expected = sorted(keys)
    first = s3.list_objects_v2(Bucket=bucket, MaxKeys=5)
    assert [o["Key"] for o in first["Contents"]] == expected[:5]
    assert (first["IsTruncated"], first["KeyCount"], first["MaxKeys"]) == (True, 5, 5)
    entry = first["Contents"][0]
    assert entry["Size"] == 11 and entry["StorageClass"] == "STANDARD"
    assert entry["ETag"] == f'"{hashlib.md5(b"hello world").hexdigest()}"'
    rest = s3.list_objects_v2(Bucket=bucket, ContinuationToken=first["NextContinuationToken"])
    assert [o["Key"] for o in rest["Contents"]] == expected[5:]
    assert (rest["IsTruncated"], rest["KeyCount"]) == (False, 7)
    assert rest["ContinuationToken"] == first["NextContinuationToken"]
    assert "NextContinuationToken" not in rest
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="test_7", MaxKeys=2)
    assert [o["Key"] for o in after["Contents"]] == ["test_8", "test_9"]
    assert after["StartAfter"] == "test_7"
    paginated = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 3}
        )
        for o in page["Contents"]
    ]
    assert paginated == expected
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="not-a-token")
    assert error(exc) == (
        400,
        {
            "Code": "InvalidArgument",
            "Message": "The continuation token provided is incorrect",
            "ArgumentName": "continuation-token",
        },
    )


def test_list_with_prefix_and_delimiter(s3: Any, bucket: str) -> None:
    for key in ("test/foo/bar/1", "test/foo/bar/2", "test/foo/baz", "test/bar/x", "test/top", "other"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    r = s3.list_objects_v2(Bucket=bucket, Prefix="test/", Delimiter="/")
    assert r["CommonPrefixes"] == [{"Prefix": "test/bar/"}, {"Prefix": "test/foo/"}]
    assert [o["Key"] for o in r["Contents"]] == ["test/top"]
    assert (r["KeyCount"], r["Prefix"], r["Delimiter"]) == (3, "test/", "/")
    one = s3.list_objects_v2(Bucket=bucket, Prefix="test/", Delimiter="/", MaxKeys=1)
    assert (one["CommonPrefixes"], one["IsTruncated"], one["KeyCount"]) == (
        [{"Prefix": "test/bar/"}],
        True,
        1,
    )
    two = s3.list_objects_v2(
        Bucket=bucket,
        Prefix="test/",
        Delimiter="/",
        MaxKeys=1,
        ContinuationToken=one["NextContinuationToken"],
    )
    assert two["CommonPrefixes"] == [{"Prefix": "test/foo/"}]
    r = s3.list_objects_v2(Bucket=bucket, Prefix="test/foo/bar", Delimiter="/")
    assert r["CommonPrefixes"] == [{"Prefix": "test/foo/bar/"}]
    assert "Contents" not in r
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert (top["CommonPrefixes"], [o["Key"] for o in top["Contents"]]) == ([{"Prefix": "test/"}], ["other"])


def test_list_objects_v1_markers(s3: Any, bucket: str) -> None:
    for key in ("a", "b/1", "b/2", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    r = s3.list_objects(Bucket=bucket, MaxKeys=1, Delimiter="/")
    assert ([o["Key"] for o in r["Contents"]], r["IsTruncated"], r["NextMarker"], r["Marker"]) == (
        ["a"],
        True,
        "a",
        "",
    )
    r = s3.list_objects(Bucket=bucket, MaxKeys=1, Delimiter="/", Marker="a")
    assert (r["CommonPrefixes"], r["NextMarker"]) == ([{"Prefix": "b/"}], "b/")
    r = s3.list_objects(Bucket=bucket, Delimiter="/", Marker="b/")
    assert ([o["Key"] for o in r["Contents"]], r["IsTruncated"]) == (["c"], False)
    r = s3.list_objects(Bucket=bucket, MaxKeys=2)
    assert "NextMarker" not in r and r["IsTruncated"] is True
    assert r["Contents"][0]["Owner"]["ID"]


def test_list_encoding_type(server: LaminaServer, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="with space/é", Body=b"")
    status, _, body = raw(server, "GET", f"/{bucket}?list-type=2&encoding-type=url")
    assert status == 200
    assert b"<Key>with%20space/%C3%A9</Key>" in body
    assert b"<EncodingType>url</EncodingType>" in body
    # boto3 decodes what it asked to be encoded.
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"] == "with space/é"
    status, _, body = raw(server, "GET", f"/{bucket}?list-type=2&encoding-type=base64")
    assert status == 400
    assert b"<Message>Invalid Encoding Method specified in Request</Message>" in body
    assert b"<ArgumentName>encoding-type</ArgumentName><ArgumentValue>base64</ArgumentValue>" in body


def test_list_buckets_pages(server: LaminaServer) -> None:
    carol = client(server, "s3", **ALICE, s3=PATH_STYLE)
    for name in ("pager-a-1", "pager-a-2", "pager-a-3"):
        carol.create_bucket(Bucket=name)
    first = carol.list_buckets(MaxBuckets=2, Prefix="pager-a-")
    assert [b["Name"] for b in first["Buckets"]] == ["pager-a-1", "pager-a-2"]
    rest = carol.list_buckets(MaxBuckets=2, Prefix="pager-a-", ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == ["pager-a-3"]
    assert "ContinuationToken" not in rest
    assert rest["Owner"]["ID"] == first["Owner"]["ID"]


# -- access ---------------------------------------------------------------------------------------


def test_another_accounts_bucket_is_refused(alice: Any, bob: Any) -> None:
    alice.create_bucket(Bucket="alice-private-1")
    alice.put_object(Bucket="alice-private-1", Key="secret", Body=b"mine")
    denied = {"Code": "AccessDenied", "Message": "Access Denied"}
    for call in (
        lambda: bob.get_object(Bucket="alice-private-1", Key="secret"),
        lambda: bob.put_object(Bucket="alice-private-1", Key="x", Body=b"theirs"),
        lambda: bob.list_objects_v2(Bucket="alice-private-1"),
        lambda: bob.delete_object(Bucket="alice-private-1", Key="secret"),
        lambda: bob.delete_bucket(Bucket="alice-private-1"),
        lambda: bob.get_bucket_location(Bucket="alice-private-1"),
        lambda: bob.copy_object(Bucket="alice-private-1", Key="c", CopySource="alice-private-1/secret"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc) == (403, denied)
    with pytest.raises(ClientError) as exc:
        bob.head_bucket(Bucket="alice-private-1")
    assert error(exc)[0] == 403
    # Copying it into bob's own bucket needs read access to the source: refused too.
    bob.create_bucket(Bucket="bob-own-1")
    with pytest.raises(ClientError) as exc:
        bob.copy_object(Bucket="bob-own-1", Key="stolen", CopySource="alice-private-1/secret")
    assert error(exc) == (403, denied)
    assert alice.get_object(Bucket="alice-private-1", Key="secret")["Body"].read() == b"mine"
    assert "alice-private-1" not in [b["Name"] for b in bob.list_buckets()["Buckets"]]


def test_anonymous_requests_are_refused(server: LaminaServer, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="public?", Body=b"x")
    for host in (None, f"{bucket}.s3.localhost:{server.port}"):
        path = f"/{bucket}/public%3F" if host is None else "/public%3F"
        status, headers, body = raw(server, "GET", path, host=host, sign=False)
        assert status == 403
        assert headers["content-type"] == "application/xml"
        assert b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>" in body
    status, _, _ = raw(server, "PUT", f"/{bucket}/anon", body=b"x", sign=False)
    assert status == 403
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="anon")


def test_virtual_hosted_addressing(server: LaminaServer, s3: Any, bucket: str) -> None:
    host = f"{bucket}.s3.localhost:{server.port}"
    status, headers, _ = raw(server, "PUT", "/dir/vhost.txt", host=host, body=b"by host")
    assert status == 200, headers
    assert headers["etag"] == f'"{hashlib.md5(b"by host").hexdigest()}"'
    status, _, body = raw(server, "GET", "/dir/vhost.txt", host=host)
    assert (status, body) == (200, b"by host")
    status, _, body = raw(server, "GET", "/?list-type=2&prefix=dir%2F", host=host)
    assert status == 200 and b"<Key>dir/vhost.txt</Key>" in body
    assert s3.get_object(Bucket=bucket, Key="dir/vhost.txt")["Body"].read() == b"by host"


def test_unserved_operations_say_so(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    status, err = error(exc)
    assert (status, err["Code"]) == (501, "NotImplemented")
    assert "versioning" in err["Message"]


# -- large bodies ---------------------------------------------------------------------------------


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_large_upload_is_streamed(server: LaminaServer, s3: Any, bucket: str, tmp_path: Path) -> None:
    size = 64 * 1024 * 1024
    path = tmp_path / "big.bin"
    md5, sha = hashlib.md5(), hashlib.sha256()
    with path.open("wb") as f:
        block = os.urandom(1024 * 1024)
        for i in range(size // len(block)):
            chunk = block[:-1] + bytes([i % 256])
            md5.update(chunk)
            sha.update(chunk)
            f.write(chunk)
    before = _peak_rss_kb(server.proc.pid)
    with path.open("rb") as f:
        r = s3.put_object(Bucket=bucket, Key="big.bin", Body=f)
    assert r["ETag"] == f'"{md5.hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="big.bin")
    assert got["ContentLength"] == size
    back = hashlib.sha256()
    for chunk in got["Body"].iter_chunks(1024 * 1024):
        back.update(chunk)
    assert back.hexdigest() == sha.hexdigest()
    tail = s3.get_object(Bucket=bucket, Key="big.bin", Range=f"bytes={size - 10}-")["Body"].read()
    with path.open("rb") as f:
        f.seek(size - 10)
        assert tail == f.read()
    growth_mb = (_peak_rss_kb(server.proc.pid) - before) / 1024
    assert growth_mb < 150, f"server peak RSS grew by {growth_mb:.0f} MB for a 64 MB object"


# -- the AWS CLI ----------------------------------------------------------------------------------


def test_aws_cli_s3_commands(server: LaminaServer, tmp_path: Path) -> None:
    def aws(*args: str) -> str:
        r = run_aws(server, "s3", *args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        return r.stdout

    (tmp_path / "hello.txt").write_text("hello from the cli\n")
    aws("mb", "s3://cli-bucket-1")
    aws("cp", "hello.txt", "s3://cli-bucket-1/docs/hello.txt")
    assert "hello.txt" in aws("ls", "s3://cli-bucket-1/docs/")
    assert "PRE docs/" in aws("ls", "s3://cli-bucket-1")
    assert "cli-bucket-1" in aws("ls")
    aws("cp", "s3://cli-bucket-1/docs/hello.txt", "back.txt")
    assert (tmp_path / "back.txt").read_text() == "hello from the cli\n"
    aws("rm", "s3://cli-bucket-1/docs/hello.txt")
    assert aws("ls", "s3://cli-bucket-1") == ""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    aws("sync", "tree", "s3://cli-bucket-1/tree")
    assert aws("sync", "tree", "s3://cli-bucket-1/tree") == ""  # nothing changed: nothing sent
    aws("sync", "s3://cli-bucket-1/tree", "copy")
    assert (tmp_path / "copy" / "sub" / "b.txt").read_text() == "b"
    aws("rm", "--recursive", "s3://cli-bucket-1/tree")
    aws("rb", "s3://cli-bucket-1")
    r = run_aws(server, "s3", "ls", "s3://cli-bucket-1")
    assert r.returncode != 0 and "NoSuchBucket" in r.stderr


def test_iam_policies_decide_for_users(server: LaminaServer, s3: Any, bucket: str) -> None:
    from iam_kit import doc, user_keys

    iam = client(server, "iam")
    s3.put_object(Bucket=bucket, Key="reports/r1", Body=b"report")
    s3.put_object(Bucket=bucket, Key="private/p1", Body=b"private")
    read_reports = doc(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/reports/*"},
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": "reports/*"}},
        },
    )
    name, key, secret = user_keys(iam, inline=read_reports)
    user = client(server, "s3", key=key, secret=secret, s3=PATH_STYLE)
    assert user.get_object(Bucket=bucket, Key="reports/r1")["Body"].read() == b"report"
    assert [o["Key"] for o in user.list_objects_v2(Bucket=bucket, Prefix="reports/")["Contents"]] == [
        "reports/r1"
    ]
    for call in (
        lambda: user.get_object(Bucket=bucket, Key="private/p1"),
        lambda: user.put_object(Bucket=bucket, Key="reports/r2", Body=b"x"),
        lambda: user.list_objects_v2(Bucket=bucket),
        lambda: user.list_buckets(),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        status, err = error(exc)
        assert (status, err["Code"]) == (403, "AccessDenied")
        assert err["Message"].startswith(
            f"User: arn:aws:iam::000000000000:user/{name} is not authorized to perform: s3:"
        )


def test_an_object_and_a_layer_share_one_blob(server: LaminaServer, s3: Any, bucket: str) -> None:
    from testzips import make_zip

    layer_zip = make_zip({"python/shared_mod.py": f"X = {os.getpid()}\n"})
    digest = hashlib.sha256(layer_zip).hexdigest()
    blob = server.data_dir / "blobs" / digest[:2] / digest
    s3.put_object(Bucket=bucket, Key="layer.zip", Body=layer_zip)
    lam = client(server)
    version = lam.publish_layer_version(LayerName="shared-blob", Content={"ZipFile": layer_zip})["Version"]
    assert blob.is_file()
    # The object goes: the layer still holds the bytes.
    s3.delete_object(Bucket=bucket, Key="layer.zip")
    assert blob.is_file()
    s3.put_object(Bucket=bucket, Key="again.zip", Body=layer_zip)
    # The layer version goes: the object still holds them.
    lam.delete_layer_version(LayerName="shared-blob", VersionNumber=version)
    assert blob.is_file()
    assert s3.get_object(Bucket=bucket, Key="again.zip")["Body"].read() == layer_zip
    s3.delete_object(Bucket=bucket, Key="again.zip")
    assert not blob.exists()


def test_sigv4_presigned_urls(server: LaminaServer, bucket: str) -> None:
    import urllib.error
    import urllib.request

    signer = client(server, "s3", s3=PATH_STYLE, signature_version="s3v4")
    put = signer.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=60)
    with urllib.request.urlopen(urllib.request.Request(put, data=b"presigned body", method="PUT")) as r:
        assert r.status == 200
    get = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=60)
    with urllib.request.urlopen(urllib.request.Request(get, headers={"Range": "bytes=0-8"})) as r:
        assert (r.status, r.read()) == (206, b"presigned")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(get.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
    assert exc.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in exc.value.read()


def test_an_html_object_cannot_act_as_a_page_of_lamina(server: LaminaServer, s3: Any, bucket: str) -> None:
    """Path-style objects share the console's origin: a tenant's HTML opened through a presigned
    link must run sandboxed (an opaque origin), never as a page that could drive the console."""
    import urllib.request

    page = b"<script>fetch('/console/api/call', {method: 'POST', credentials: 'include'})</script>"
    s3.put_object(Bucket=bucket, Key="evil.html", Body=page, ContentType="text/html")
    signer = client(server, "s3", s3=PATH_STYLE, signature_version="s3v4")
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "evil.html"})
    with urllib.request.urlopen(url) as r:
        assert (r.read(), r.headers["Content-Type"]) == (page, "text/html")
        assert r.headers["Content-Security-Policy"] == "sandbox"
    ranged = s3.get_object(Bucket=bucket, Key="evil.html", Range="bytes=0-7")
    assert ranged["ResponseMetadata"]["HTTPHeaders"]["content-security-policy"] == "sandbox"


def test_a_killed_upload_leaves_nothing(tmp_path: Path) -> None:
    """SIGKILL mid-body: no object, and the spooled part file is gone once the server is back."""
    data = tmp_path / "data"
    srv = LaminaServer(data, accounts=ACCOUNTS, lambda_role=False)
    try:
        client(srv, "s3", s3=PATH_STYLE).create_bucket(Bucket="killed-upload")
        request = AWSRequest(method="PUT", url=f"http://127.0.0.1:{srv.port}/killed-upload/half", data=b"")
        request.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
        SigV4Auth(Credentials("test", "test"), "s3", "us-east-1").add_auth(request)
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        conn.putrequest("PUT", "/killed-upload/half", skip_accept_encoding=True)
        for name, value in request.headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(8 << 20))
        conn.endheaders()
        conn.send(os.urandom(4 << 20))
        tmp = data / "blobs" / "tmp"
        for _ in range(200):
            if any(p.stat().st_size > 0 for p in tmp.iterdir()):
                break
            time.sleep(0.05)
        assert any(tmp.iterdir()), "the upload was not being spooled"
        srv.kill()
        conn.close()
    finally:
        if srv.proc.poll() is None:
            srv.stop()
    again = LaminaServer(data, accounts=ACCOUNTS, lambda_role=False)
    try:
        s3 = client(again, "s3", s3=PATH_STYLE)
        with pytest.raises(ClientError) as exc:
            s3.head_object(Bucket="killed-upload", Key="half")
        assert error(exc)[0] == 404
        assert list((data / "blobs" / "tmp").iterdir()) == []
    finally:
        again.stop()


def test_expected_bucket_owner(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner="000000000000")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner="111111111111")
    assert error(exc) == (403, {"Code": "AccessDenied", "Message": "Access Denied"})
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=bucket, ExpectedBucketOwner="0000")
    assert error(exc) == (
        400,
        {
            "Code": "InvalidBucketOwnerAWSAccountID",
            "Message": "The value of the expected bucket owner parameter must be an AWS Account ID... [0000]",
        },
    )
    with pytest.raises(ClientError) as exc:
        s3.copy_object(
            Bucket=bucket, Key="c", CopySource=f"{bucket}/k", ExpectedSourceBucketOwner="222222222222"
        )
    assert error(exc)[0] == 403
