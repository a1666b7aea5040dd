"""The console's Buckets page over real HTTP, as its script talks to the server: S3 operations through
``/console/api/call``, uploads streamed through ``PUT /console/api/upload``, downloads by one-use
links; all of it with the signed-in principal's permissions (the console is no way around IAM)."""

from __future__ import annotations

import hashlib
import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from iam_kit import doc, uid, user_keys
from lamina_server import LaminaServer, client

MB = 1024 * 1024


class Console:
    """One browser's session of the console: its cookie, and the header its script sends."""

    def __init__(self, server: LaminaServer, key: str, secret: str) -> None:
        self.port = server.port
        self.cookie = ""
        status, _, got = self.request(
            "POST", "/console/api/signin", {"accessKeyId": key, "secretAccessKey": secret}
        )
        assert status == 200, got

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        console_header: bool = True,
    ) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        sent = {"Content-Type": "application/json", **(headers or {})}
        if console_header:
            sent["X-Lamina-Console"] = "1"
        if self.cookie:
            sent["Cookie"] = self.cookie
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        try:
            conn.request(method, path, body=data, headers=sent)
            resp = conn.getresponse()
            got = resp.read()
        finally:
            conn.close()
        answer = {k.lower(): v for k, v in resp.getheaders()}
        if "set-cookie" in answer:
            self.cookie = answer["set-cookie"].split(";")[0]
        if answer.get("content-type", "").startswith("application/json"):
            return resp.status, answer, json.loads(got)
        return resp.status, answer, got

    def call(self, operation: str, params: dict[str, Any], region: str = "us-east-1") -> tuple[int, Any]:
        status, _, got = self.request(
            "POST",
            "/console/api/call",
            {"service": "s3", "operation": operation, "region": region, "params": params},
        )
        return status, got

    def upload(
        self, bucket: str, key: str, body: bytes | Iterator[bytes], length: int, **headers: str
    ) -> tuple[int, Any]:
        query = urlencode({"region": "us-east-1", "bucket": bucket, "key": key})
        status, _, got = self.request(
            "PUT",
            f"/console/api/upload?{query}",
            body,
            headers={"Content-Length": str(length), "Content-Type": "application/octet-stream", **headers},
        )
        return status, got

    def download(self, bucket: str, key: str) -> tuple[int, dict[str, str], Any]:
        status, _, got = self.request(
            "POST", "/console/api/download", {"region": "us-east-1", "Bucket": bucket, "Key": key}
        )
        if status != 200:
            return status, {}, got
        return self.request("GET", got["url"], console_header=False)


def pattern(size: int) -> Iterator[bytes]:
    """``size`` bytes made as they are sent (nothing this size is ever held by the test)."""
    block = hashlib.sha256(b"lamina").digest() * (MB // 32)
    left = size
    while left > 0:
        yield block[: min(left, len(block))]
        left -= len(block)


def pattern_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in pattern(size):
        digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def admin(server: LaminaServer) -> Console:
    return Console(server, "test", "test")


@pytest.fixture
def bucket(admin: Console) -> str:
    name = uid("console")
    assert admin.call("CreateBucket", {"Bucket": name})[0] == 200
    return name


def test_buckets_are_listed_and_created_with_s3s_rules_and_words(
    server: LaminaServer, admin: Console
) -> None:
    name = uid("console-west")
    status, got = admin.call(
        "CreateBucket",
        {"Bucket": name, "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}},
        "eu-west-1",
    )
    assert status == 200, got
    listed = {b["Name"]: b for b in admin.call("ListBuckets", {})[1]["result"]["Buckets"]}
    assert listed[name]["BucketRegion"] == "eu-west-1"
    # S3's own refusals, as it words them.
    assert admin.call("CreateBucket", {"Bucket": "Not_A_Bucket"})[1]["error"] == {
        "code": "InvalidBucketName",
        "message": "The specified bucket is not valid.",
    }
    status, got = admin.call("CreateBucket", {"Bucket": uid("console-x")}, "eu-west-1")
    assert (status, got["error"]["code"]) == (400, "IllegalLocationConstraintException"), got
    alice = Console(server, "AKIDALICE111", "alice-secret")
    status, got = alice.call("CreateBucket", {"Bucket": name})
    assert (status, got["error"]["code"]) == (409, "BucketAlreadyExists"), got
    assert name not in [b["Name"] for b in alice.call("ListBuckets", {})[1]["result"]["Buckets"]]


def test_upload_streams_past_the_console_body_limit_and_downloads_byte_identical(
    server: LaminaServer, admin: Console, bucket: str
) -> None:
    """80 MB: more than the console takes in one JSON request (72 MB), so only a streamed body gets
    through; it comes back by its download link byte for byte."""
    size = 80 * MB
    status, got = admin.upload(bucket, "big/file.bin", pattern(size), size)
    assert status == 200, got
    assert got["result"]["ETag"].startswith('"')
    s3 = client(server, "s3")
    head = s3.head_object(Bucket=bucket, Key="big/file.bin")
    assert head["ContentLength"] == size and head["ETag"] == got["result"]["ETag"]
    status, headers, body = admin.download(bucket, "big/file.bin")
    assert status == 200 and len(body) == size
    assert hashlib.sha256(body).hexdigest() == pattern_sha256(size)
    assert headers["content-disposition"] == "attachment; filename=\"file.bin\"; filename*=UTF-8''file.bin"


def test_browsing_by_folders_and_deleting(admin: Console, bucket: str) -> None:
    for key in ("a.txt", "docs/one.txt", "docs/two.txt", "docs/deep/three.txt"):
        assert admin.upload(bucket, key, key.encode(), len(key))[0] == 200
    top = admin.call("ListObjectsV2", {"Bucket": bucket, "Delimiter": "/"})[1]["result"]
    assert [o["Key"] for o in top["Contents"]] == ["a.txt"]
    assert top["CommonPrefixes"] == [{"Prefix": "docs/"}]
    docs = admin.call("ListObjectsV2", {"Bucket": bucket, "Delimiter": "/", "Prefix": "docs/"})[1]["result"]
    assert [o["Key"] for o in docs["Contents"]] == ["docs/one.txt", "docs/two.txt"]
    assert docs["CommonPrefixes"] == [{"Prefix": "docs/deep/"}]
    # A bucket with objects cannot go; emptied, it can (the page's two buttons).
    status, got = admin.call("DeleteBucket", {"Bucket": bucket})
    assert (status, got["error"]["code"]) == (409, "BucketNotEmpty"), got
    keys = [o["Key"] for o in admin.call("ListObjectsV2", {"Bucket": bucket})[1]["result"]["Contents"]]
    status, got = admin.call(
        "DeleteObjects", {"Bucket": bucket, "Delete": {"Objects": [{"Key": k} for k in keys], "Quiet": True}}
    )
    assert status == 200 and "Errors" not in got["result"], got
    assert admin.call("DeleteBucket", {"Bucket": bucket})[0] == 200
    assert admin.call("HeadBucket", {"Bucket": bucket})[0] == 404


def test_download_is_an_attachment_whatever_the_object_says(admin: Console, bucket: str) -> None:
    """An HTML object must never render as a page of the console's origin."""
    key = "<img src=x onerror=alert(1)>.html"
    page = b"<script>alert(document.cookie)</script>"
    assert admin.upload(bucket, key, page, len(page), **{"Content-Type": "text/html"})[0] == 200
    status, headers, body = admin.download(bucket, key)
    assert status == 200 and body == page
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"] == (
        f"attachment; filename=\"_img src_x onerror_alert_1__.html\"; filename*=UTF-8''{quote(key, safe='')}"
    )
    assert "sandbox" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_download_links_are_one_use_and_the_sessions_own(
    server: LaminaServer, admin: Console, bucket: str
) -> None:
    assert admin.upload(bucket, "k", b"secret", 6)[0] == 200
    status, _, link = admin.request(
        "POST", "/console/api/download", {"region": "us-east-1", "Bucket": bucket, "Key": "k"}
    )
    assert status == 200
    other = Console(server, "test", "test")  # the same account, another session
    status, _, got = other.request("GET", link["url"], console_header=False)
    assert (status, got["error"]["code"]) == (403, "AccessDenied")
    # Spent by the failed try: not even its own session may use it now.
    assert admin.request("GET", link["url"], console_header=False)[0] == 403
    status, _, link = admin.request(
        "POST", "/console/api/download", {"region": "us-east-1", "Bucket": bucket, "Key": "k"}
    )
    anonymous = Console.__new__(Console)
    anonymous.port, anonymous.cookie = server.port, ""
    assert anonymous.request("GET", link["url"], console_header=False)[0] == 403
    assert admin.request("GET", "/console/download/made-up", console_header=False)[0] == 403
    status, _, got = admin.request(
        "POST", "/console/api/download", {"region": "us-east-1", "Bucket": bucket, "Key": "nope"}
    )
    assert (status, got["error"]["code"]) == (404, "NoSuchKey"), got


def test_uploads_need_the_console_header_and_a_session(
    server: LaminaServer, admin: Console, bucket: str
) -> None:
    query = urlencode({"bucket": bucket, "key": "x"})
    status, _, got = admin.request("PUT", f"/console/api/upload?{query}", b"x", console_header=False)
    assert (status, got["error"]["code"]) == (403, "AccessDenied")
    anonymous = Console.__new__(Console)
    anonymous.port, anonymous.cookie = server.port, ""
    status, _, got = anonymous.request("PUT", f"/console/api/upload?{query}", b"x")
    assert (status, got["error"]["code"]) == (401, "NotSignedIn")
    status, _, got = admin.request("PUT", f"/console/api/upload?{urlencode({'key': 'x'})}", b"x")
    assert (status, got["error"]["code"]) == (400, "ValidationException")
    assert admin.call("ListObjectsV2", {"Bucket": bucket})[1]["result"]["KeyCount"] == 0
    # Object bodies never travel in the JSON calls.
    status, got = admin.call("PutObject", {"Bucket": bucket, "Key": "x", "Body": "eA=="})
    assert (status, got["error"]["code"]) == (400, "UnsupportedOperation")


def test_another_accounts_bucket_is_out_of_reach(server: LaminaServer, admin: Console, bucket: str) -> None:
    assert admin.upload(bucket, "mine", b"mine", 4)[0] == 200
    alice = Console(server, "AKIDALICE111", "alice-secret")
    status, got = alice.upload(bucket, "theirs", b"theirs", 6)
    assert (status, got["error"]["code"]) == (403, "AccessDenied"), got
    status, _, got = alice.download(bucket, "mine")
    assert (status, got["error"]["code"]) == (403, "AccessDenied"), got
    status, got = alice.call("ListObjectsV2", {"Bucket": bucket})
    assert (status, got["error"]["code"]) == (403, "AccessDenied"), got


def test_iam_denials_hold_through_the_console(server: LaminaServer, admin: Console, bucket: str) -> None:
    """A user allowed everything in S3 but s3:GetObject cannot download through the console, and one
    denied s3:PutObject cannot upload (and nothing is stored)."""
    iam = client(server, "iam")
    allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    deny_get = {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    deny_put = {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    _, reader_key, reader_secret = user_keys(iam, inline=doc(allow, deny_get))
    _, writer_key, writer_secret = user_keys(iam, inline=doc(allow, deny_put))
    assert admin.upload(bucket, "report.csv", b"a,b\n", 4)[0] == 200

    no_get = Console(server, reader_key, reader_secret)
    status, _, got = no_get.download(bucket, "report.csv")
    assert (status, got["error"]["code"]) == (403, "AccessDenied"), got
    assert "s3:GetObject" in got["error"]["message"]
    # The listing is still allowed: the page shows the object, only its bytes are refused.
    assert no_get.call("ListObjectsV2", {"Bucket": bucket})[1]["result"]["KeyCount"] == 1
    assert no_get.upload(bucket, "fine.txt", b"ok", 2)[0] == 200

    no_put = Console(server, writer_key, writer_secret)
    status, got = no_put.upload(bucket, "forbidden.txt", pattern(4 * MB), 4 * MB)
    assert (status, got["error"]["code"]) == (403, "AccessDenied"), got
    assert "s3:PutObject" in got["error"]["message"]
    keys = [o["Key"] for o in admin.call("ListObjectsV2", {"Bucket": bucket})[1]["result"]["Contents"]]
    assert keys == ["fine.txt", "report.csv"]
    assert no_put.download(bucket, "report.csv")[2] == b"a,b\n"


def test_a_link_checks_the_permission_again_when_used(
    server: LaminaServer, admin: Console, bucket: str
) -> None:
    """Permission taken away between the link and its use: the GET itself runs GetObject."""
    iam = client(server, "iam")
    name, key, secret = user_keys(iam, inline=doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    assert admin.upload(bucket, "k", b"v", 1)[0] == 200
    user = Console(server, key, secret)
    status, _, link = user.request(
        "POST", "/console/api/download", {"region": "us-east-1", "Bucket": bucket, "Key": "k"}
    )
    assert status == 200
    iam.put_user_policy(
        UserName=name,
        PolicyName="no-get",
        PolicyDocument=doc({"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}),
    )
    status, _, got = user.request("GET", link["url"], console_header=False)
    assert (status, got["error"]["code"]) == (403, "AccessDenied"), got


def test_a_multipart_upload_sends_its_parts_streamed(
    server: LaminaServer, admin: Console, bucket: str
) -> None:
    """What the page does for a file over 5 GB, in small: CreateMultipartUpload and
    CompleteMultipartUpload as calls, each part a streamed PUT (UploadPart)."""
    status, got = admin.call("CreateMultipartUpload", {"Bucket": bucket, "Key": "parts.bin"})
    assert status == 200, got
    upload_id = got["result"]["UploadId"]

    def part(number: int, size: int) -> tuple[int, Any]:
        query = urlencode(
            {
                "region": "us-east-1",
                "bucket": bucket,
                "key": "parts.bin",
                "uploadId": upload_id,
                "partNumber": number,
            }
        )
        status, _, got = admin.request(
            "PUT", f"/console/api/upload?{query}", pattern(size), headers={"Content-Length": str(size)}
        )
        return status, got

    etags = []
    for number, size in ((1, 5 * MB), (2, MB)):
        status, got = part(number, size)
        assert status == 200, got
        etags.append(got["result"]["ETag"])
    status, got = admin.call(
        "CompleteMultipartUpload",
        {
            "Bucket": bucket,
            "Key": "parts.bin",
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
        },
    )
    assert status == 200, got
    assert got["result"]["ETag"].endswith('-2"')
    head = client(server, "s3").head_object(Bucket=bucket, Key="parts.bin")
    assert head["ContentLength"] == 6 * MB
    # A part of an upload that is not there, and a part number that is not one: S3's words.
    status, got = admin.call("CreateMultipartUpload", {"Bucket": bucket, "Key": "other"})
    upload_id = got["result"]["UploadId"]
    assert (
        admin.call("AbortMultipartUpload", {"Bucket": bucket, "Key": "other", "UploadId": upload_id})[0]
        == 200
    )
    status, got = part(1, 10)
    assert (status, got["error"]["code"]) == (404, "NoSuchUpload"), got
    query = urlencode({"bucket": bucket, "key": "parts.bin", "uploadId": upload_id, "partNumber": "x"})
    status, _, got = admin.request("PUT", f"/console/api/upload?{query}", b"x")
    assert (status, got["error"]["code"]) == (400, "ValidationException"), got
