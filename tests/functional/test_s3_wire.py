"""S3 as the SDKs speak it: the TLS listener driven by boto3 and the AWS CLI with their default
checksum behaviour (over HTTPS, PutObject and UploadPart bodies go aws-chunked with a trailing
CRC32: ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``), and aws-chunked bodies built and signed by hand
(``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` and its trailer form), tampered ones refused."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import os
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client, run_aws
from s3_kit import PATH_STYLE

SECRET = "test"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (its own CA), and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    base = tmp_path_factory.mktemp("lamina-tls")
    srv = LaminaServer(base / "data", lambda_role=False, tls=make_certificate(base))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina") / "data", lambda_role=False)
    yield srv
    srv.stop()


_counter = iter(range(1_000_000))


def new_bucket(s3: Any) -> str:
    name = f"wire-{next(_counter)}-{os.getpid()}"
    s3.create_bucket(Bucket=name)
    return name


def sent_headers(s3: Any) -> list[dict[str, str]]:
    """The headers of every request ``s3`` sends from now on (as signed, before sending)."""
    seen: list[dict[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        seen.append(
            {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        )

    s3.meta.events.register("before-send.s3", record)
    return seen


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# -- the TLS listener, SDK defaults ---------------------------------------------------------------


def test_boto3_over_https_sends_trailing_checksums(tls_server: LaminaServer) -> None:
    s3 = client(tls_server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    seen = sent_headers(s3)
    data = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key="k", Body=data)
    # botocore's default over HTTPS: the body aws-chunked, its CRC32 in the trailer.
    assert seen[-1]["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert seen[-1]["x-amz-trailer"] == "x-amz-checksum-crc32"
    assert put["ChecksumCRC32"] == crc32_b64(data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC32"] == crc32_b64(data)
    # aws-chunked names the request's framing: the object has no Content-Encoding.
    assert "ContentEncoding" not in got
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert (head["ContentLength"], head["ChecksumType"]) == (len(data), "FULL_OBJECT")


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA1", "SHA256"])
def test_boto3_over_https_other_algorithms(tls_server: LaminaServer, algorithm: str) -> None:
    s3 = client(tls_server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    data = b"test-checksum" * 1000
    put = s3.put_object(Bucket=bucket, Key="k", Body=data, ChecksumAlgorithm=algorithm)
    member = f"Checksum{algorithm}"
    digest = {
        "CRC32": zlib.crc32(data).to_bytes(4, "big"),
        "SHA1": hashlib.sha1(data).digest(),
        "SHA256": hashlib.sha256(data).digest(),
    }[algorithm]
    assert put[member] == base64.b64encode(digest).decode()
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head[member] == put[member]
    # Without ChecksumMode, no checksum.
    assert member not in s3.head_object(Bucket=bucket, Key="k")


def test_boto3_over_https_multipart(tls_server: LaminaServer) -> None:
    s3 = client(tls_server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    seen = sent_headers(s3)
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    done = []
    for number, data in enumerate(parts, 1):
        answer = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=number, Body=data)
        assert seen[-1]["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        assert answer["ChecksumCRC32"] == crc32_b64(data)
        done.append({"ETag": answer["ETag"], "PartNumber": number})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": done})
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(parts)


def test_aws_cli_cp_over_https(tls_server: LaminaServer, tmp_path: Path) -> None:
    s3 = client(tls_server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    path = tmp_path / "big.bin"
    data = os.urandom(20 * 1024 * 1024)  # over the CLI's 8 MB multipart threshold
    path.write_bytes(data)
    up = run_aws(tls_server, "s3", "cp", str(path), f"s3://{bucket}/big.bin")
    assert up.returncode == 0, up.stderr
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ETag"].endswith('-3"')
    back = tmp_path / "back.bin"
    down = run_aws(tls_server, "s3", "cp", f"s3://{bucket}/big.bin", str(back))
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == data
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello over TLS\n")
    assert run_aws(tls_server, "s3", "cp", str(small), f"s3://{bucket}/small.txt").returncode == 0
    listed = run_aws(tls_server, "s3", "ls", f"s3://{bucket}/")
    assert "small.txt" in listed.stdout and "big.bin" in listed.stdout


def test_http_client_to_tls_listener_is_refused(tls_server: LaminaServer) -> None:
    # The listener speaks TLS only: a plain HTTP request gets no HTTP answer.
    conn = http.client.HTTPConnection("127.0.0.1", tls_server.port, timeout=5)
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", "/_lamina/health")
        conn.getresponse().read()
    conn.close()


def test_server_refuses_half_a_tls_pair(tmp_path: Path) -> None:
    cert, _ = make_certificate(tmp_path)
    with pytest.raises(RuntimeError, match="--tls-cert and --tls-key go together"):
        LaminaServer(tmp_path / "data", lambda_role=False, extra_args=("--tls-cert", str(cert)))
    with pytest.raises(RuntimeError, match="cannot use --tls-cert"):
        LaminaServer(
            tmp_path / "data2",
            lambda_role=False,
            extra_args=("--tls-cert", str(cert), "--tls-key", str(cert)),
        )


# -- hand-built aws-chunked requests --------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class Signer:
    """SigV4 for a streamed PUT, done here independently of the server's code."""

    def __init__(self, server: LaminaServer, path: str, headers: dict[str, str]) -> None:
        now = dt.datetime.now(dt.UTC)
        self.timestamp = now.strftime("%Y%m%dT%H%M%SZ")
        date = self.timestamp[:8]
        self.scope = f"{date}/us-east-1/s3/aws4_request"
        key = _hmac(f"AWS4{SECRET}".encode(), date)
        for part in ("us-east-1", "s3", "aws4_request"):
            key = _hmac(key, part)
        self.key = key
        self.headers = {"host": f"127.0.0.1:{server.port}", "x-amz-date": self.timestamp, **headers}
        names = sorted(self.headers)
        canonical = "\n".join(
            (
                "PUT",
                path.split("?")[0],
                "&".join(sorted(path.split("?")[1].split("&"))) if "?" in path else "",
                "".join(f"{n}:{self.headers[n]}\n" for n in names),
                ";".join(names),
                self.headers["x-amz-content-sha256"],
            )
        )
        self.seed = self.sign(
            "\n".join(
                (
                    "AWS4-HMAC-SHA256",
                    self.timestamp,
                    self.scope,
                    hashlib.sha256(canonical.encode()).hexdigest(),
                )
            )
        )
        self.headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential=test/{self.scope}, SignedHeaders={';'.join(names)}, Signature={self.seed}"
        )

    def sign(self, string_to_sign: str) -> str:
        return hmac.new(self.key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    def body(self, chunks: list[bytes], trailer: dict[str, str] | None = None) -> bytes:
        """The data framed in signed chunks (and a signed trailer)."""
        out = bytearray()
        previous = self.seed
        for data in [*chunks, b""]:
            previous = self.sign(
                "\n".join(
                    (
                        "AWS4-HMAC-SHA256-PAYLOAD",
                        self.timestamp,
                        self.scope,
                        previous,
                        EMPTY_SHA256,
                        hashlib.sha256(data).hexdigest(),
                    )
                )
            )
            out += (
                f"{len(data):x};chunk-signature={previous}\r\n".encode() + data + (b"\r\n" if data else b"")
            )
        if trailer is None:
            return bytes(out + b"\r\n")
        text = "".join(f"{k}:{v}\n" for k, v in trailer.items())
        signature = self.sign(
            "\n".join(
                (
                    "AWS4-HMAC-SHA256-TRAILER",
                    self.timestamp,
                    self.scope,
                    previous,
                    hashlib.sha256(text.encode()).hexdigest(),
                )
            )
        )
        out += "".join(f"{k}:{v}\r\n" for k, v in trailer.items()).encode()
        return bytes(out + f"x-amz-trailer-signature:{signature}\r\n\r\n".encode())


def put_raw(server: LaminaServer, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("PUT", path, body=body, headers={**headers, "content-length": str(len(body))})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def signed_put(
    server: LaminaServer,
    path: str,
    chunks: list[bytes],
    *,
    trailer: dict[str, str] | None = None,
    decoded: int | None = None,
    tamper: Any = None,
) -> tuple[int, bytes]:
    headers = {
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else ""),
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(sum(map(len, chunks)) if decoded is None else decoded),
    }
    if trailer:
        headers["x-amz-trailer"] = ",".join(trailer)
    signer = Signer(server, path, headers)
    body = signer.body(chunks, trailer)
    if tamper is not None:
        body = tamper(body)
    return put_raw(server, path, signer.headers, body)


def code_of(body: bytes) -> str:
    return body.split(b"<Code>")[1].split(b"</Code>")[0].decode()


def test_signed_chunks_put_object(server: LaminaServer) -> None:
    s3 = client(server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    chunks = [os.urandom(65536), os.urandom(65536), os.urandom(1000)]
    status, body = signed_put(server, f"/{bucket}/signed", chunks)
    assert status == 200, body
    got = s3.get_object(Bucket=bucket, Key="signed")
    assert got["Body"].read() == b"".join(chunks)
    assert "ContentEncoding" not in got


def test_signed_chunks_with_signed_trailer(server: LaminaServer) -> None:
    s3 = client(server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    chunks = [os.urandom(10000), b"end"]
    data = b"".join(chunks)
    sha256 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    status, body = signed_put(server, f"/{bucket}/t", chunks, trailer={"x-amz-checksum-sha256": sha256})
    assert status == 200, body
    head = s3.head_object(Bucket=bucket, Key="t", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == sha256


def test_tampered_chunk_is_refused_and_nothing_stored(server: LaminaServer) -> None:
    s3 = client(server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    chunks = [b"a" * 65536, b"tail"]
    status, body = signed_put(
        server, f"/{bucket}/x", chunks, tamper=lambda raw: raw.replace(b"tail", b"TAIL")
    )
    assert status == 403
    assert code_of(body) == "SignatureDoesNotMatch"
    assert b"<StringToSign>AWS4-HMAC-SHA256-PAYLOAD\n" in body
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=bucket, Key="x")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_tampered_chunk_signature_is_refused(server: LaminaServer) -> None:
    s3 = client(server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)

    def forge(raw: bytes) -> bytes:
        at = raw.index(b"chunk-signature=") + len(b"chunk-signature=")
        return raw[:at] + b"f" * 64 + raw[at + 64 :]

    status, body = signed_put(server, f"/{bucket}/x", [b"a" * 65536], tamper=forge)
    assert (status, code_of(body)) == (403, "SignatureDoesNotMatch")
    assert not s3.list_objects_v2(Bucket=bucket).get("Contents")


def test_signed_chunks_upload_part(server: LaminaServer) -> None:
    s3 = client(server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    data = os.urandom(70000)
    status, body = signed_put(
        server, f"/{bucket}/mp?partNumber=1&uploadId={upload}", [data[:65536], data[65536:]]
    )
    assert status == 200, body
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"]
    assert parts[0]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'


@pytest.mark.parametrize(
    ("tamper", "decoded", "code"),
    [
        (lambda raw: raw[:-2] + b"xx", None, "IncompleteBody"),
        (None, 65537, "IncompleteBody"),
    ],
    ids=["broken-end", "wrong-decoded-length"],
)
def test_malformed_bodies(server: LaminaServer, tamper: Any, decoded: int | None, code: str) -> None:
    s3 = client(server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    status, body = signed_put(server, f"/{bucket}/x", [b"a" * 65536], decoded=decoded, tamper=tamper)
    assert (status, code_of(body)) == (400, code)
    assert not s3.list_objects_v2(Bucket=bucket).get("Contents")


def unsigned_trailer_put(
    server: LaminaServer, path: str, data: bytes, trailer: str, value: str
) -> tuple[int, bytes]:
    headers = {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": trailer,
    }
    signer = Signer(server, path, headers)
    body = b"%x\r\n%s\r\n0\r\n%s:%s\r\n\r\n" % (len(data), data, trailer.encode(), value.encode())
    return put_raw(server, path, signer.headers, body)


def test_unsigned_trailer_with_a_wrong_checksum(server: LaminaServer) -> None:
    s3 = client(server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    status, body = unsigned_trailer_put(
        server, f"/{bucket}/x", b"hello", "x-amz-checksum-crc32", crc32_b64(b"other")
    )
    assert (status, code_of(body)) == (400, "BadDigest")
    assert b"The CRC32 you specified did not match the calculated checksum." in body
    assert not s3.list_objects_v2(Bucket=bucket).get("Contents")


@pytest.mark.parametrize(
    ("algorithm", "value"),
    [("crc32c", "Fz3epA=="), ("crc64nvme", "1f2xscCCZCU=")],
    ids=["crc32c", "crc64nvme"],
)
def test_unsigned_trailer_crc32c_and_crc64nvme(server: LaminaServer, algorithm: str, value: str) -> None:
    s3 = client(server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    status, body = unsigned_trailer_put(
        server, f"/{bucket}/k", b"test-checksum", f"x-amz-checksum-{algorithm}", value
    )
    assert status == 200, body
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm.upper()}"] == value
    assert "ChecksumCRC32" not in head
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert listed[0]["ChecksumAlgorithm"] == [algorithm.upper()]  # as HeadObject says
    # The same checksums as headers (what botocore sends when given a value), checked too.
    member = f"Checksum{algorithm.upper()}"
    put = s3.put_object(Bucket=bucket, Key="h", Body=b"test-checksum", **{member: value})
    assert put[member] == value
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"test-checksum!", **{member: value})
    assert caught.value.response["Error"]["Message"] == (
        f"The {algorithm.upper()} you specified did not match the calculated checksum."
    )


def test_crc64nvme_is_bounded(server: LaminaServer) -> None:
    """CRC64NVME is computed in Python: a body past 16 MiB asking for it is refused before a byte
    is read (S3's 501 for a header lamina does not serve), so no request holds a core for minutes."""
    s3 = client(server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    with pytest.raises(ClientError) as caught:
        s3.put_object(
            Bucket=bucket, Key="big", Body=b"\0" * (16 * 1024 * 1024 + 1), ChecksumCRC64NVME="AAAAAAAAAAA="
        )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert caught.value.response["Error"]["Header"] == "x-amz-checksum-crc64nvme"
    assert not s3.list_objects_v2(Bucket=bucket).get("Contents")


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_large_chunked_upload_is_streamed(tls_server: LaminaServer, tmp_path: Path) -> None:
    # 96 MB aws-chunked from a file (boto3's default over HTTPS): decoded on the way to disk, so
    # the server's peak memory grows by far less than the body.
    s3 = client(tls_server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    size = 96 * 1024 * 1024
    path = tmp_path / "big.bin"
    crc = 0
    with path.open("wb") as f:
        block = os.urandom(1024 * 1024)
        for i in range(size // len(block)):
            chunk = block[:-1] + bytes([i % 256])
            crc = zlib.crc32(chunk, crc)
            f.write(chunk)
    before = _peak_rss_kb(tls_server.proc.pid)
    with path.open("rb") as f:
        put = s3.put_object(Bucket=bucket, Key="big.bin", Body=f)
    growth_mb = (_peak_rss_kb(tls_server.proc.pid) - before) / 1024
    assert put["ChecksumCRC32"] == base64.b64encode(crc.to_bytes(4, "big")).decode()
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ContentLength"] == size
    assert growth_mb < 48, f"server peak RSS grew by {growth_mb:.0f} MB for a 96 MB aws-chunked body"


def test_operations_with_checksummed_xml_bodies_over_https(tls_server: LaminaServer) -> None:
    # Over HTTPS botocore adds x-amz-checksum-crc32 headers to these (their bodies are small and
    # signed, not aws-chunked).
    s3 = client(tls_server, "s3", s3=PATH_STYLE)
    bucket = new_bucket(s3)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "c", "Value": "d"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "c", "Value": "d"}]
    deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}]})
    assert deleted["Deleted"] == [{"Key": "k"}]
