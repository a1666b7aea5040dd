"""Listing pages over an in-memory bucket: prefixes, delimiters, UTF-8 order, resuming."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from lamina.domain.clock import iso_millis, iso_millis_ms
from lamina.domain.s3_listing import (
    check_encoding_type,
    check_max_keys,
    continuation_token,
    list_page,
    successor,
    token_position,
    url_encode,
)
from lamina.errors import AwsError


@dataclass(frozen=True)
class Row:
    key: str


class Bucket:
    """Keys in UTF-8 binary order, fetched as the store does (counting the calls)."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = sorted(keys, key=lambda k: k.encode("utf-8"))
        self.encoded = [k.encode("utf-8") for k in self.keys]
        self.calls = 0

    def fetch(self, lower: str | None, inclusive: bool, prefix: str, limit: int) -> Sequence[Row]:
        self.calls += 1
        start = 0
        if lower is not None:
            b = lower.encode("utf-8")
            start = bisect.bisect_left(self.encoded, b) if inclusive else bisect.bisect_right(self.encoded, b)
        out = []
        for key in self.keys[start:]:
            if key.startswith(prefix):
                out.append(Row(key))
                if len(out) == limit:
                    break
            elif key.encode() > prefix.encode():
                break
        return out


def walk(bucket: Bucket, *, prefix: str = "", delimiter: str = "", max_keys: int) -> list[list[str]]:
    pages = []
    after = None
    while True:
        page = list_page(bucket.fetch, prefix=prefix, delimiter=delimiter, max_keys=max_keys, after=after)
        pages.append([r.key for r in page.contents] + list(page.common_prefixes))
        if not page.truncated:
            return pages
        after = page.last


KEYS = ["test/foo/bar/1", "test/foo/bar/2", "test/foo/baz", "test/bar/x", "test/top", "other", "z", "ä", "a"]


def test_utf8_binary_order() -> None:
    bucket = Bucket(KEYS + ["\U0001f600", "\u00e9", "Z"])
    page = list_page(bucket.fetch, prefix="", delimiter="", max_keys=1000, after=None)
    assert [r.key for r in page.contents] == sorted(bucket.keys, key=lambda k: k.encode())
    assert [r.key for r in page.contents][-3:] == ["ä", "\u00e9", "\U0001f600"]


def test_delimiter_rolls_up() -> None:
    page = list_page(Bucket(KEYS).fetch, prefix="test/", delimiter="/", max_keys=1000, after=None)
    assert [r.key for r in page.contents] == ["test/top"]
    assert page.common_prefixes == ("test/bar/", "test/foo/")
    assert (page.count, page.truncated) == (3, False)
    deeper = list_page(Bucket(KEYS).fetch, prefix="test/foo/bar", delimiter="/", max_keys=1000, after=None)
    assert (deeper.contents, deeper.common_prefixes) == ((), ("test/foo/bar/",))


@pytest.mark.parametrize("max_keys", [1, 2, 3, 5, 1000])
@pytest.mark.parametrize(
    ("prefix", "delimiter"), [("", ""), ("", "/"), ("test/", "/"), ("test/", ""), ("nothing", "/")]
)
def test_pages_join_up_to_the_whole_listing(max_keys: int, prefix: str, delimiter: str) -> None:
    whole = list_page(Bucket(KEYS).fetch, prefix=prefix, delimiter=delimiter, max_keys=10_000, after=None)
    expected = sorted([r.key for r in whole.contents] + list(whole.common_prefixes), key=lambda k: k.encode())
    pages = walk(Bucket(KEYS), prefix=prefix, delimiter=delimiter, max_keys=max_keys)
    flat = [k for page in pages for k in page]
    assert sorted(flat, key=lambda k: k.encode()) == expected
    assert len(flat) == len(set(flat))
    assert all(len(page) <= max_keys for page in pages)


def test_common_prefix_skips_its_keys_in_one_step() -> None:
    bucket = Bucket([f"logs/{i:05d}" for i in range(5000)] + ["z"])
    page = list_page(bucket.fetch, prefix="", delimiter="/", max_keys=1000, after=None)
    assert page.common_prefixes == ("logs/",)
    assert [r.key for r in page.contents] == ["z"]
    assert bucket.calls <= 3


def test_start_after_and_truncation() -> None:
    keys = [f"test_{i}" for i in range(12)]
    page = list_page(Bucket(keys).fetch, prefix="", delimiter="", max_keys=2, after="test_7")
    assert ([r.key for r in page.contents], page.truncated) == (["test_8", "test_9"], False)
    page = list_page(Bucket(keys).fetch, prefix="", delimiter="", max_keys=5, after=None)
    assert (page.truncated, page.last) == (True, "test_2")


def test_max_keys_zero() -> None:
    page = list_page(Bucket(KEYS).fetch, prefix="", delimiter="", max_keys=0, after=None)
    assert (page.contents, page.truncated) == ((), True)


def test_successor() -> None:
    assert successor("a/") == "a0"
    assert successor("") is None
    assert successor("a\ud7ff") == "a\ue000"


def test_tokens_round_trip() -> None:
    for last in ("test_4", "dir/", "ünï \U0001f600"):
        token = continuation_token(last)
        assert token.replace("-", "").replace("_", "").replace("=", "").isalnum()
        assert token_position(token) == last
    for bad in ("not-a-token", "", "bDE6", continuation_token("")):
        with pytest.raises(AwsError) as exc:
            token_position(bad)
        assert (exc.value.code, exc.value.message) == (
            "InvalidArgument",
            "The continuation token provided is incorrect",
        )


def test_encoding_type_and_max_keys() -> None:
    assert check_encoding_type(None) is False
    assert check_encoding_type("url") is True
    with pytest.raises(AwsError) as exc:
        check_encoding_type("base64")
    assert exc.value.fields == {"ArgumentName": "encoding-type", "ArgumentValue": "base64"}
    assert url_encode("with space/é+") == "with%20space/%C3%A9%2B"
    assert (check_max_keys(None), check_max_keys(5), check_max_keys(5000)) == (1000, 5, 1000)
    with pytest.raises(AwsError):
        check_max_keys(-1)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "plain/key-1.txt",
        "a~b_c.d/e",
        "with space",
        "100%",
        "a+b",
        "é",
        "q?x=1#f",
        "tab\there",
        "\U0001f600",
    ],
)
def test_url_encode_is_quote(key: str) -> None:
    # The fast path for keys without anything to escape writes what quote() writes.
    assert url_encode(key) == quote(key, safe="/")


@pytest.mark.parametrize("epoch_ms", [0, 999, 1_000, 1_767_225_599_999, 1_767_225_600_000, 4_102_444_799_001])
def test_listed_last_modified_as_iso_millis(epoch_ms: int) -> None:
    as_datetime = dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC)
    assert iso_millis_ms(epoch_ms) == iso_millis(as_datetime)
