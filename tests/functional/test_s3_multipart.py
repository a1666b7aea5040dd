"""S3 multipart uploads against the real server: boto3 through the whole lifecycle, AWS's recorded
errors, ListParts / ListMultipartUploads pages, abort freeing the parts' bytes, a restart keeping
an upload's parts, and ``aws s3 cp`` of a file large enough for the CLI to go multipart."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import ACCOUNTS, LaminaServer, client, run_aws
from s3_kit import PATH_STYLE, error

MIB = 1024 * 1024
NO_SUCH_UPLOAD = (
    "The specified upload does not exist. The upload ID may be invalid, or the upload may have been"
    " aborted or completed."
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina") / "data", accounts=ACCOUNTS, lambda_role=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3(server: LaminaServer) -> Any:
    return client(server, "s3", s3=PATH_STYLE)


_counter = iter(range(1_000_000))


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"mpu-bucket-{next(_counter)}-{os.getpid()}"
    s3.create_bucket(Bucket=name)
    return name


def blob_files(server: LaminaServer) -> set[str]:
    root = server.data_dir / "blobs"
    return {p.name for p in root.glob("??/*")}


def test_lifecycle(s3: Any, bucket: str) -> None:
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="big/obj", ContentType="text/plain", Metadata={"colour": "blue"}
    )
    assert (created["Bucket"], created["Key"]) == (bucket, "big/obj")
    upload_id = created["UploadId"]
    first = os.urandom(5 * MIB)
    last = b"the end"
    r1 = s3.upload_part(Bucket=bucket, Key="big/obj", UploadId=upload_id, PartNumber=1, Body=first)
    r2 = s3.upload_part(Bucket=bucket, Key="big/obj", UploadId=upload_id, PartNumber=2, Body=last)
    md5s = [hashlib.md5(first).digest(), hashlib.md5(last).digest()]
    assert r1["ETag"] == f'"{md5s[0].hex()}"' and r2["ETag"] == f'"{md5s[1].hex()}"'
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0  # not an object until completed
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big/obj",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": r1["ETag"]}, {"PartNumber": 2, "ETag": r2["ETag"]}]
        },
    )
    expected = f'"{hashlib.md5(b"".join(md5s)).hexdigest()}-2"'
    assert (done["Bucket"], done["Key"], done["ETag"]) == (bucket, "big/obj", expected)
    assert done["Location"].endswith(f"/{bucket}/big/obj")
    got = s3.get_object(Bucket=bucket, Key="big/obj")
    assert got["Body"].read() == first + last
    assert (got["ETag"], got["ContentType"], got["Metadata"]) == (expected, "text/plain", {"colour": "blue"})
    assert got["ContentLength"] == len(first) + len(last)
    # Completed: the upload is gone.
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="big/obj", UploadId=upload_id)
    assert error(exc) == (404, {"Code": "NoSuchUpload", "Message": NO_SUCH_UPLOAD, "UploadId": upload_id})


def test_recorded_errors(s3: Any, bucket: str) -> None:
    for call in (
        lambda: s3.upload_part(Bucket=bucket, Key="k", UploadId="fakeid", PartNumber=1, Body=b"x"),
        lambda: s3.complete_multipart_upload(
            Bucket=bucket,
            Key="k",
            UploadId="fakeid",
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": "x"}]},
        ),
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId="fakeid"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc) == (404, {"Code": "NoSuchUpload", "Message": NO_SUCH_UPLOAD, "UploadId": "fakeid"})

    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    for number in (0, 10001):
        with pytest.raises(ClientError) as exc:
            s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=number, Body=b"x")
        assert error(exc) == (
            400,
            {
                "Code": "InvalidArgument",
                "Message": "Part number must be an integer between 1 and 10000, inclusive",
                "ArgumentName": "partNumber",
                "ArgumentValue": str(number),
            },
        )
    etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"abcd")["ETag"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2, Body=b"abcd")
    md5 = hashlib.md5(b"abcd").hexdigest()
    assert etag == f'"{md5}"'

    def complete(parts: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        with pytest.raises(ClientError) as exc:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return error(exc)

    assert complete([]) == (400, {"Code": "InvalidRequest", "Message": "You must specify at least one part"})
    status, err = complete([{"PartNumber": 2, "ETag": etag}, {"PartNumber": 1, "ETag": etag}])
    assert (status, err["Code"], err["UploadId"]) == (400, "InvalidPartOrder", upload_id)
    assert (
        err["Message"]
        == "The list of parts was not in ascending order. Parts must be ordered by part number."
    )
    status, err = complete([{"PartNumber": 1, "ETag": etag}, {"PartNumber": 3, "ETag": etag}])
    assert (status, err["Code"], err["PartNumber"], err["ETag"], err["UploadId"]) == (
        400,
        "InvalidPart",
        "3",
        md5,
        upload_id,
    )
    status, err = complete([{"PartNumber": 1, "ETag": "d41d8cd98f00b204e9800998ecf8427e"}])
    assert (err["Code"], err["ETag"], err["PartNumber"]) == (
        "InvalidPart",
        "d41d8cd98f00b204e9800998ecf8427e",
        "1",
    )
    assert complete([{"PartNumber": 1, "ETag": etag}, {"PartNumber": 2, "ETag": etag}]) == (
        400,
        {
            "Code": "EntityTooSmall",
            "Message": "Your proposed upload is smaller than the minimum allowed size",
            "ETag": md5,
            "MinSizeAllowed": "5242880",
            "PartNumber": "1",
            "ProposedSize": "4",
        },
    )
    # None of the refusals touched the upload: a single small part completes it.
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="k",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": etag}]},
    )
    assert done["ETag"] == f'"{hashlib.md5(bytes.fromhex(md5)).hexdigest()}-1"'
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"abcd"


def test_content_md5_checked(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part(
            Bucket=bucket,
            Key="k",
            UploadId=upload_id,
            PartNumber=1,
            Body=b"abcd",
            ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==",
        )
    status, err = error(exc)
    assert (status, err["Code"]) == (400, "BadDigest")
    assert "Parts" not in s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)


def test_list_parts_pages(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="p")["UploadId"]
    empty = s3.list_parts(Bucket=bucket, Key="p", UploadId=upload_id)
    assert (
        empty["IsTruncated"],
        empty["MaxParts"],
        empty["PartNumberMarker"],
        empty["NextPartNumberMarker"],
    ) == (
        False,
        1000,
        0,
        0,
    )
    assert "Parts" not in empty and empty["StorageClass"] == "STANDARD"
    assert set(empty["Owner"]) == {"ID"} and set(empty["Initiator"]) == {"ID", "DisplayName"}
    for n in (1, 2):
        s3.upload_part(Bucket=bucket, Key="p", UploadId=upload_id, PartNumber=n, Body=b"abcd")
    every = s3.list_parts(Bucket=bucket, Key="p", UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"]) for p in every["Parts"]] == [(1, 4), (2, 4)]
    assert every["NextPartNumberMarker"] == 2
    one = s3.list_parts(Bucket=bucket, Key="p", UploadId=upload_id, MaxParts=1)
    assert ([p["PartNumber"] for p in one["Parts"]], one["IsTruncated"], one["NextPartNumberMarker"]) == (
        [1],
        True,
        1,
    )
    nxt = s3.list_parts(Bucket=bucket, Key="p", UploadId=upload_id, MaxParts=1, PartNumberMarker=1)
    assert ([p["PartNumber"] for p in nxt["Parts"]], nxt["IsTruncated"], nxt["PartNumberMarker"]) == (
        [2],
        False,
        1,
    )
    beyond = s3.list_parts(Bucket=bucket, Key="p", UploadId=upload_id, MaxParts=1, PartNumberMarker=10)
    assert ("Parts" in beyond, beyond["NextPartNumberMarker"], beyond["PartNumberMarker"]) == (False, 0, 10)


def test_list_multipart_uploads_pages(s3: Any, bucket: str) -> None:
    empty = s3.list_multipart_uploads(Bucket=bucket)
    assert (empty["KeyMarker"], empty["NextKeyMarker"], empty["NextUploadIdMarker"], empty["MaxUploads"]) == (
        "",
        "",
        "",
        1000,
    )
    assert "Uploads" not in empty and empty["IsTruncated"] is False
    # Created out of key order: listed by key, then oldest first.
    ids = [s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"] for k in ("c", "b", "a", "a", "a")]
    every = s3.list_multipart_uploads(Bucket=bucket)
    order = [(u["Key"], u["UploadId"]) for u in every["Uploads"]]
    assert order == [("a", ids[2]), ("a", ids[3]), ("a", ids[4]), ("b", ids[1]), ("c", ids[0])]
    assert (every["NextKeyMarker"], every["NextUploadIdMarker"], every["IsTruncated"]) == ("c", ids[0], False)
    first = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1)
    assert ([u["UploadId"] for u in first["Uploads"]], first["IsTruncated"]) == ([ids[2]], True)
    assert (first["NextKeyMarker"], first["NextUploadIdMarker"]) == ("a", ids[2])
    key_only = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1, KeyMarker="a")
    assert [u["UploadId"] for u in key_only["Uploads"]] == [ids[1]]
    both = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1, KeyMarker="a", UploadIdMarker=ids[2])
    assert ([u["UploadId"] for u in both["Uploads"]], both["UploadIdMarker"]) == ([ids[3]], ids[2])
    alone = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1, UploadIdMarker=ids[3])
    assert ([u["UploadId"] for u in alone["Uploads"]], alone["UploadIdMarker"]) == ([ids[2]], "")
    with pytest.raises(ClientError) as exc:
        s3.list_multipart_uploads(Bucket=bucket, KeyMarker="a", UploadIdMarker=ids[1])
    assert error(exc) == (
        400,
        {
            "Code": "InvalidArgument",
            "Message": "Invalid uploadId marker",
            "ArgumentName": "upload-id-marker",
            "ArgumentValue": ids[1],
        },
    )
    last = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1, KeyMarker="c")
    assert ("Uploads" in last, last["IsTruncated"], last["NextKeyMarker"]) == (False, False, "")
    prefixed = s3.list_multipart_uploads(Bucket=bucket, Prefix="b")
    assert [u["Key"] for u in prefixed["Uploads"]] == ["b"] and prefixed["Prefix"] == "b"
    upload = every["Uploads"][0]
    assert upload["StorageClass"] == "STANDARD" and set(upload["Owner"]) == {"ID"}
    # Uploads in progress keep the bucket from being deleted (they hold bytes in it).
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert error(exc)[1]["Code"] == "BucketNotEmpty"
    for key, upload_id in order:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    s3.delete_bucket(Bucket=bucket)


def test_abort_frees_parts_not_shared(server: LaminaServer, s3: Any, bucket: str) -> None:
    shared = os.urandom(1000)
    own = os.urandom(1000)
    s3.put_object(Bucket=bucket, Key="shared", Body=shared)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=shared)
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2, Body=own)
    own_sha, shared_sha = hashlib.sha256(own).hexdigest(), hashlib.sha256(shared).hexdigest()
    assert {own_sha, shared_sha} <= blob_files(server)
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)
    blobs = blob_files(server)
    assert own_sha not in blobs and shared_sha in blobs
    assert s3.get_object(Bucket=bucket, Key="shared")["Body"].read() == shared
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)
    assert error(exc)[1]["Code"] == "NoSuchUpload"


def test_replaced_part_and_completion_free_parts(server: LaminaServer, s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    old, new = os.urandom(100), os.urandom(100)
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=old)
    etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=new)["ETag"]
    assert hashlib.sha256(old).hexdigest() not in blob_files(server)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="k",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    # The object has the same bytes as its only part: one blob, still there.
    assert hashlib.sha256(new).hexdigest() in blob_files(server)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == new


def test_parts_survive_a_restart(tmp_path: Path) -> None:
    srv = LaminaServer(tmp_path / "data", accounts=ACCOUNTS, lambda_role=False)
    try:
        s3 = client(srv, "s3", s3=PATH_STYLE)
        s3.create_bucket(Bucket="restart-bucket")
        upload_id = s3.create_multipart_upload(Bucket="restart-bucket", Key="k")["UploadId"]
        etag = s3.upload_part(
            Bucket="restart-bucket", Key="k", UploadId=upload_id, PartNumber=1, Body=b"kept"
        )["ETag"]
        srv.stop()
        srv = LaminaServer(tmp_path / "data", accounts=ACCOUNTS, lambda_role=False)
        s3 = client(srv, "s3", s3=PATH_STYLE)
        parts = s3.list_parts(Bucket="restart-bucket", Key="k", UploadId=upload_id)["Parts"]
        assert [(p["PartNumber"], p["ETag"]) for p in parts] == [(1, etag)]
        s3.complete_multipart_upload(
            Bucket="restart-bucket",
            Key="k",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
        )
        assert s3.get_object(Bucket="restart-bucket", Key="k")["Body"].read() == b"kept"
    finally:
        srv.stop()


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_aws_cli_cp_multipart_round_trip(server: LaminaServer, s3: Any, bucket: str, tmp_path: Path) -> None:
    size = 40 * MIB + 12345
    path = tmp_path / "big.bin"
    sha = hashlib.sha256()
    with path.open("wb") as f:
        block = os.urandom(MIB)
        written = 0
        i = 0
        while written < size:
            chunk = (block[:-1] + bytes([i % 256]))[: size - written]
            sha.update(chunk)
            f.write(chunk)
            written += len(chunk)
            i += 1
    before = _peak_rss_kb(server.proc.pid)
    up = run_aws(server, "s3", "cp", str(path), f"s3://{bucket}/big.bin")
    assert up.returncode == 0, up.stderr
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == size
    # The CLI's 8 MiB parts: five of them and a small last one.
    md5s = []
    with path.open("rb") as f:
        while part := f.read(8 * MIB):
            md5s.append(hashlib.md5(part).digest())
    assert head["ETag"] == f'"{hashlib.md5(b"".join(md5s)).hexdigest()}-6"'
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads") is None
    back = tmp_path / "back.bin"
    down = run_aws(server, "s3", "cp", f"s3://{bucket}/big.bin", str(back))
    assert down.returncode == 0, down.stderr
    got = hashlib.sha256()
    with back.open("rb") as f:
        while chunk := f.read(MIB):
            got.update(chunk)
    assert got.hexdigest() == sha.hexdigest()
    growth_mb = (_peak_rss_kb(server.proc.pid) - before) / 1024
    assert growth_mb < 150, f"server peak RSS grew by {growth_mb:.0f} MB for a 40 MB multipart upload"


def test_list_multipart_uploads_common_prefixes(s3: Any, bucket: str) -> None:
    ids = {
        k: s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]
        for k in (
            "folder/aSubfolder/subFile1",
            "folder/aSubfolder/subFile2",
            "folder/file 1",
            "folder/file2",
        )
    }
    start = s3.list_multipart_uploads(Bucket=bucket, Prefix="folder/", Delimiter="/", MaxUploads=1)
    assert start["CommonPrefixes"] == [{"Prefix": "folder/aSubfolder/"}] and "Uploads" not in start
    assert (start["IsTruncated"], start["NextKeyMarker"], start["NextUploadIdMarker"]) == (True, "", "")
    # A key marker inside (or naming) a common prefix is past all of it, as S3 reads it.
    for marker in ("folder/aSubfolder/", "folder/aSubfolder/subFile1"):
        page = s3.list_multipart_uploads(
            Bucket=bucket, Prefix="folder/", Delimiter="/", MaxUploads=1, KeyMarker=marker
        )
        assert [u["Key"] for u in page["Uploads"]] == ["folder/file 1"]
        assert (page["IsTruncated"], page["NextKeyMarker"]) == (True, "folder/file 1")
        assert page["NextUploadIdMarker"] == ids["folder/file 1"]
    every = s3.list_multipart_uploads(Bucket=bucket, Prefix="folder/", Delimiter="/", EncodingType="url")
    assert every["CommonPrefixes"] == [{"Prefix": "folder/aSubfolder/"}]
    assert [u["Key"] for u in every["Uploads"]] == ["folder/file%201", "folder/file2"]
    assert every["EncodingType"] == "url"
    with pytest.raises(ClientError) as exc:
        s3.list_multipart_uploads(Bucket=bucket, EncodingType="value")
    assert error(exc) == (
        400,
        {
            "Code": "InvalidArgument",
            "Message": "Invalid Encoding Method specified in Request",
            "ArgumentName": "encoding-type",
            "ArgumentValue": "value",
        },
    )


def test_upload_part_copy(server: LaminaServer, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    source = f"{bucket}/src"

    def copy(number: int, **extra: Any) -> dict[str, Any]:
        return s3.upload_part_copy(
            Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=number, CopySource=source, **extra
        )["CopyPartResult"]

    whole = copy(1)
    assert whole["ETag"] == f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    ranged = copy(2, CopySourceRange="bytes=1-9")
    assert ranged["ETag"] == f'"{hashlib.md5(b"123456789").hexdigest()}"'
    parts = s3.list_parts(Bucket=bucket, Key="dst", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 10), (2, 9)]
    form = (
        "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last"
        " are the zero-based offsets of the first and last bytes to copy"
    )
    for bad, expected in (
        ("0-8", ("InvalidArgument", form)),
        ("bytes=1-0", ("InvalidArgument", form)),
        ("bytes=-2", ("InvalidArgument", form)),
        ("bytes=0-100", ("InvalidArgument", "Range specified is not valid for source object of size: 10")),
        (
            "bytes=100-200",
            ("InvalidRequest", "The specified copy range is invalid for the source object size"),
        ),
    ):
        with pytest.raises(ClientError) as exc:
            copy(3, CopySourceRange=bad)
        status, err = error(exc)
        assert (status, err["Code"], err["Message"]) == (400, *expected), bad
    with pytest.raises(ClientError) as exc:
        copy(3, CopySourceIfMatch='"nope"')
    status, err = error(exc)
    assert (status, err["Code"], err["Condition"]) == (
        412,
        "PreconditionFailed",
        "x-amz-copy-source-If-Match",
    )
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=3, CopySource=f"{bucket}/gone"
        )
    assert error(exc)[1]["Code"] == "NoSuchKey"
    # Completing with the 10-byte part first is too small; alone it is the whole object.
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="dst",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": ranged["ETag"]}]},
    )
    assert done["ETag"].endswith('-1"')
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"123456789"
    # The whole-object part shared the source's blob: deleting the source leaves the bytes to nobody.
    s3.delete_object(Bucket=bucket, Key="src")
    assert hashlib.sha256(b"0123456789").hexdigest() not in blob_files(server)
