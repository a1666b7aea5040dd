"""The pure rules of S3 multipart uploads: part numbers, the assembled object's ETag, and which
parts a CompleteMultipartUpload may name (AWS's codes and fields, as recorded)."""

from __future__ import annotations

import hashlib

import pytest

from lamina.domain.s3_multipart import (
    MIN_PART_SIZE,
    Part,
    completed_parts,
    copy_range,
    max_listed,
    multipart_etag,
    new_upload_id,
    part_number,
    requested_parts,
)
from lamina.errors import AwsError


def _part(number: int, size: int, body: bytes = b"abcd") -> Part:
    return Part("u", number, hashlib.sha256(body).hexdigest(), size, hashlib.md5(body).hexdigest(), 0)


def test_multipart_etag_is_md5_of_binary_md5s() -> None:
    md5s = [hashlib.md5(b"one").digest(), hashlib.md5(b"two").digest()]
    assert multipart_etag(md5s) == f'"{hashlib.md5(md5s[0] + md5s[1]).hexdigest()}-2"'
    # AWS's recorded value for one part of 65 bytes ("upload-part-1" five times).
    one = hashlib.md5(b"upload-part-1" * 5).digest()
    assert multipart_etag([one]) == '"e747540af6911dbc890f8d3e0b48549b-1"'


@pytest.mark.parametrize("value", [1, 10000, "7"])
def test_part_numbers_in_range(value: object) -> None:
    assert part_number(value) == int(str(value))


@pytest.mark.parametrize("value", [0, -1, 10001, "x", None, "1.5"])
def test_part_numbers_out_of_range(value: object) -> None:
    with pytest.raises(AwsError) as exc:
        part_number(value)
    assert exc.value.code == "InvalidArgument"
    assert exc.value.fields == {"ArgumentName": "partNumber", "ArgumentValue": str(value)}


def test_requested_parts() -> None:
    assert requested_parts({"Parts": [{"PartNumber": 1, "ETag": '"ab"'}]}) == [(1, "ab")]
    with pytest.raises(AwsError) as exc:
        requested_parts(None)
    assert exc.value.code == "MalformedXML"
    with pytest.raises(AwsError) as exc:
        requested_parts({"Parts": []})
    assert (exc.value.code, str(exc.value)) == ("InvalidRequest", "You must specify at least one part")


def test_completed_parts_rules() -> None:
    big, small = _part(1, MIN_PART_SIZE), _part(2, 4)
    stored = {1: big, 2: small}
    md5 = big.md5
    assert completed_parts("u", [(1, md5), (2, md5)], stored) == [big, small]
    assert completed_parts("u", [(2, md5)], stored) == [small]

    def code(requested: list[tuple[int, str]], parts: dict[int, Part]) -> tuple[str, dict[str, str]]:
        with pytest.raises(AwsError) as exc:
            completed_parts("u", requested, parts)
        return exc.value.code, dict(exc.value.fields)

    assert code([(2, md5), (1, md5)], stored) == ("InvalidPartOrder", {"UploadId": "u"})
    assert code([(1, md5), (1, md5)], stored)[0] == "InvalidPartOrder"
    assert code([(1, md5), (3, md5)], stored) == (
        "InvalidPart",
        {"ETag": md5, "PartNumber": "3", "UploadId": "u"},
    )
    assert code([(1, "0" * 32)], stored)[0] == "InvalidPart"
    assert code([(1, md5), (2, md5)], {1: _part(1, 4), 2: small}) == (
        "EntityTooSmall",
        {"ETag": md5, "MinSizeAllowed": "5242880", "PartNumber": "1", "ProposedSize": "4"},
    )


def test_max_listed_and_upload_ids() -> None:
    assert (max_listed(None, "max-parts"), max_listed(5, "max-parts"), max_listed(5000, "max-parts")) == (
        1000,
        5,
        1000,
    )
    with pytest.raises(AwsError):
        max_listed(-1, "max-parts")
    first, second = new_upload_id(), new_upload_id()
    assert first != second and len(first) == 48


def test_copy_range() -> None:
    assert copy_range(None, 10) == (0, 10)
    assert copy_range("bytes=1-9", 10) == (1, 9)
    for bad in ("0-8", "bytes=1-0", "bytes=-2", "bytes=1-", "bytes=0-1,3-4"):
        with pytest.raises(AwsError) as exc:
            copy_range(bad, 10)
        assert exc.value.code == "InvalidArgument" and exc.value.fields["ArgumentValue"] == bad
    with pytest.raises(AwsError) as exc:
        copy_range("bytes=0-100", 10)
    assert str(exc.value) == "Range specified is not valid for source object of size: 10"
    with pytest.raises(AwsError) as exc:
        copy_range("bytes=100-200", 10)
    assert exc.value.code == "InvalidRequest"
