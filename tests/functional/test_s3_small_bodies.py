"""Small streamed bodies (PutObject, UploadPart: at most 64 KiB) from a client that does not wait
for "100 Continue" are read on the event loop before the handler runs. They are stored exactly as
any other body; a refused one is answered with its error on a connection that stays usable; one
waiting for "100 Continue" is still refused before it sends anything."""

from __future__ import annotations

import http.client
import os
from typing import Any

import pytest
from botocore.handlers import add_expect_header
from lamina_server import LaminaServer, client
from s3_kit import PATH_STYLE

BUCKET = "small-bodies"


@pytest.fixture(scope="module")
def s3(server: LaminaServer) -> Any:
    c = client(server, "s3", s3=PATH_STYLE)
    c.meta.events.unregister("before-call.s3", add_expect_header)  # no "Expect: 100-continue"
    c.create_bucket(Bucket=BUCKET)
    return c


@pytest.mark.parametrize("size", [0, 1, 8000, 64 << 10, (64 << 10) + 1, 300_000])
def test_bodies_around_the_limit_are_stored_whole(s3: Any, size: int) -> None:
    body = os.urandom(size)
    s3.put_object(Bucket=BUCKET, Key=f"k{size}", Body=body)
    assert s3.get_object(Bucket=BUCKET, Key=f"k{size}")["Body"].read() == body
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=f"m{size}")["UploadId"]
    etag = s3.upload_part(Bucket=BUCKET, Key=f"m{size}", UploadId=upload, PartNumber=1, Body=body)["ETag"]
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key=f"m{size}",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert s3.get_object(Bucket=BUCKET, Key=f"m{size}")["Body"].read() == body


def test_a_refused_small_body_leaves_the_connection_usable(server: LaminaServer, s3: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for _ in range(2):
            body = b"x" * 1000
            conn.request(
                "PUT",
                f"/{BUCKET}/refused",
                body=body,
                headers={
                    "Authorization": "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/s3/aws4_request,"
                    " SignedHeaders=host, Signature=" + "0" * 64,
                    "x-amz-date": "20250101T000000Z",
                    "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
                },
            )
            answer = conn.getresponse()
            text = answer.read()
            assert answer.status == 403, text
            assert answer.getheader("Connection", "") != "close"
    finally:
        conn.close()
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key="refused")


def test_a_small_body_waiting_for_continue_is_refused_before_it_is_sent(server: LaminaServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("PUT", f"/{BUCKET}/waiting")
        for name, value in (
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/s3/aws4_request,"
                " SignedHeaders=host, Signature=" + "0" * 64,
            ),
            ("x-amz-date", "20250101T000000Z"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("Content-Length", "1000"),
            ("Expect", "100-continue"),
        ):
            conn.putheader(name, value)
        conn.endheaders()  # no body: the answer comes without it
        answer = conn.getresponse()
        assert answer.status == 403
        answer.read()
    finally:
        conn.close()
