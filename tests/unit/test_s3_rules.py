"""S3's pure rules: bucket names, location constraints, ranges, conditional requests, digests, tags."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest

from lamina.domain import s3
from lamina.domain.s3 import ByteRange, Condition, Preconditions
from lamina.errors import AwsError


@pytest.mark.parametrize(
    "name",
    ["abc", "my-bucket", "my.bucket.name", "a" * 63, "0bucket9", "bucket-1.logs"],
    ids=lambda n: n[:20],
)
def test_good_bucket_names(name: str) -> None:
    assert s3.bucket_name_ok(name)


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "a" * 64,
        "Upper",
        "under_score",
        "-leading",
        "trailing-",
        "trailing.",
        "two..dots",
        "192.168.5.4",
        "xn--punycode",
        "sthree-bucket",
        "amzn-s3-demo-bucket",
        "name-s3alias",
        "name--ol-s3",
        "name.mrap",
        "name--x-s3",
        "name--table-s3",
        "spa ce",
    ],
    ids=lambda n: n[:20],
)
def test_bad_bucket_names(name: str) -> None:
    assert not s3.bucket_name_ok(name)


def error_of(call: object) -> AwsError:
    with pytest.raises(AwsError) as exc:
        call()  # type: ignore[operator]
    return exc.value


@pytest.mark.parametrize(
    ("endpoint", "constraint", "region"),
    [
        ("us-east-1", None, "us-east-1"),
        ("us-east-1", "", "us-east-1"),
        ("us-east-1", "eu-west-1", "eu-west-1"),
        ("us-east-1", "EU", "eu-west-1"),
        ("us-west-1", "us-west-1", "us-west-1"),
        ("eu-west-1", "EU", "eu-west-1"),
    ],
)
def test_location_constraint_accepted(endpoint: str, constraint: str | None, region: str) -> None:
    assert s3.bucket_region(endpoint, constraint) == region


@pytest.mark.parametrize("constraint", ["us-east-1", "foo"])
def test_us_east_1_refuses_its_own_name_and_non_regions(constraint: str) -> None:
    err = error_of(lambda: s3.bucket_region("us-east-1", constraint))
    assert (err.code, err.status, err.message) == (
        "InvalidLocationConstraint",
        400,
        "The specified location-constraint is not valid",
    )
    assert err.fields == {"LocationConstraint": constraint}


@pytest.mark.parametrize(
    ("endpoint", "constraint", "shown"),
    [
        ("us-east-2", None, "unspecified"),
        ("us-west-1", "us-east-1", "us-east-1"),
        ("eu-west-1", "bar", "bar"),
    ],
)
def test_other_regions_require_their_own(endpoint: str, constraint: str | None, shown: str) -> None:
    err = error_of(lambda: s3.bucket_region(endpoint, constraint))
    assert err.code == "IllegalLocationConstraintException"
    assert err.message == (
        f"The {shown} location constraint is incompatible for the region specific endpoint this request was sent to."
    )
    assert err.fields == {}


def test_location_constraint_answer() -> None:
    assert s3.location_constraint("us-east-1") is None
    assert s3.location_constraint("eu-west-1") == "eu-west-1"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-8", ByteRange(0, 8, 10)),
        ("bytes=1-1", ByteRange(1, 1, 10)),
        ("bytes=1-", ByteRange(1, 9, 10)),
        ("bytes=-2", ByteRange(8, 9, 10)),
        ("bytes=-15", ByteRange(0, 9, 10)),
        ("bytes=0-100", ByteRange(0, 9, 10)),
        ("bytes=1-0", None),
        ("bytes=0-1,3-4", None),
        ("bytes=wrong", None),
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_ranges(header: str | None, expected: ByteRange | None) -> None:
    assert s3.byte_range(header, 10) == expected


def test_range_shapes() -> None:
    r = ByteRange(8, 9, 10)
    assert (r.length, r.content_range) == (2, "bytes 8-9/10")


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=1024-4096", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    err = error_of(lambda: s3.byte_range(header, 10))
    assert (err.code, err.status, err.message) == (
        "InvalidRange",
        416,
        "The requested range is not satisfiable",
    )
    assert err.fields == {"RangeRequested": header, "ActualObjectSize": "10"}


NOW = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
MODIFIED = dt.datetime(2026, 6, 1, 10, 0, 0, 500_000, tzinfo=dt.UTC)
ETAG = '"8d777f385d3dfec8815d20f7496026dc"'
HOUR = dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        (Preconditions(), (Condition.SERVE, "")),
        (Preconditions(if_match=ETAG), (Condition.SERVE, "")),
        (Preconditions(if_match=ETAG.strip('"')), (Condition.SERVE, "")),
        (Preconditions(if_match="*"), (Condition.SERVE, "")),
        (Preconditions(if_match='"x", ' + ETAG), (Condition.SERVE, "")),
        (Preconditions(if_match='"other"'), (Condition.PRECONDITION_FAILED, "If-Match")),
        (
            Preconditions(if_unmodified_since=MODIFIED - HOUR),
            (Condition.PRECONDITION_FAILED, "If-Unmodified-Since"),
        ),
        (Preconditions(if_unmodified_since=MODIFIED.replace(microsecond=0)), (Condition.SERVE, "")),
        (Preconditions(if_unmodified_since=NOW + HOUR), (Condition.SERVE, "")),  # future: ignored
        (Preconditions(if_match=ETAG, if_unmodified_since=MODIFIED - HOUR), (Condition.SERVE, "")),
        (Preconditions(if_none_match=ETAG), (Condition.NOT_MODIFIED, "If-None-Match")),
        (Preconditions(if_none_match='"other"'), (Condition.SERVE, "")),
        (
            Preconditions(if_modified_since=MODIFIED.replace(microsecond=0)),
            (Condition.NOT_MODIFIED, "If-Modified-Since"),
        ),
        (Preconditions(if_modified_since=MODIFIED - HOUR), (Condition.SERVE, "")),
        (Preconditions(if_modified_since=NOW + HOUR), (Condition.SERVE, "")),  # future: ignored
        (Preconditions(if_none_match='"other"', if_modified_since=NOW), (Condition.SERVE, "")),
        (Preconditions(if_match='"other"', if_none_match=ETAG), (Condition.PRECONDITION_FAILED, "If-Match")),
    ],
)
def test_conditions(conditions: Preconditions, expected: tuple[Condition, str]) -> None:
    assert s3.evaluate(conditions, ETAG, MODIFIED, NOW) == expected


def test_content_md5() -> None:
    digest = hashlib.md5(b"x").digest()
    assert s3.content_md5(base64.b64encode(digest).decode()) == digest
    for bad in ("__invalid__", "000", "not base64 encoded checksum", "MTIz", "dGVzdC1zdHJpbmc="):
        err = error_of(lambda bad=bad: s3.content_md5(bad))
        assert (err.code, err.message, err.fields) == (
            "InvalidDigest",
            "The Content-MD5 you specified was invalid.",
            {"Content-MD5": bad},
        )


def test_bad_digest_names_both() -> None:
    err = s3.bad_digest("CYketZBSTjX8czcs3cXVlg==", hashlib.md5(b"test content").digest())
    assert err.fields == {
        "ExpectedDigest": "CYketZBSTjX8czcs3cXVlg==",
        "CalculatedDigest": base64.b64encode(hashlib.md5(b"test content").digest()).decode(),
    }


def test_tags() -> None:
    assert s3.check_tags([{"Key": "a", "Value": ""}, {"Key": "b c", "Value": "d+=._:/@-"}], limit=10) == {
        "a": "",
        "b c": "d+=._:/@-",
    }
    cases = [
        (
            [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}],
            "Cannot provide multiple Tags with the same key",
        ),
        ([{"Key": "aws:x", "Value": "1"}], "System tags cannot be added/updated by requester"),
        ([{"Key": "", "Value": "1"}], "The TagKey you have provided is invalid"),
        ([{"Key": "k" * 129, "Value": "1"}], "The TagKey you have provided is invalid"),
        ([{"Key": "k", "Value": "v" * 257}], "The TagValue you have provided is invalid"),
        ([{"Key": "k", "Value": "bad<"}], "The TagValue you have provided is invalid"),
    ]
    for tags, message in cases:
        err = error_of(lambda tags=tags: s3.check_tags(tags, limit=10))
        assert (err.code, err.message) == ("InvalidTag", message)
    err = error_of(lambda: s3.check_tags([{"Key": f"k{i}", "Value": ""} for i in range(11)], limit=10))
    assert err.status == 400


def test_copy_source() -> None:
    assert s3.copy_source("bucket/dir/key%20x") == ("bucket", "dir/key x", None)
    assert s3.copy_source("/bucket/key?versionId=abc") == ("bucket", "key", "abc")
    for bad in ("bucket", "bucket/", "/"):
        assert error_of(lambda bad=bad: s3.copy_source(bad)).message == "Invalid copy source object key"


def test_metadata_limit() -> None:
    s3.check_metadata({"k": "v" * 2047})
    assert error_of(lambda: s3.check_metadata({"k": "v" * 2048})).code == "MetadataTooLarge"


def test_key_length() -> None:
    s3.check_key("k" * 1024)
    s3.check_key("é" * 512)
    err = error_of(lambda: s3.check_key("é" * 513))
    assert (err.code, err.message, err.fields) == (
        "KeyTooLongError",
        "Your key is too long",
        {"Size": "1026", "MaxSizeAllowed": "1024"},
    )
