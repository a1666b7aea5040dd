"""Listing a bucket (pure): ListObjects and ListObjectsV2 pages over keys in UTF-8 binary order.

Facts (S3 API Reference, ListObjectsV2 / ListObjects, and recordings against AWS):

- Keys are listed in UTF-8 binary order (which is code point order). ``Prefix`` keeps only the
  keys that start with it; with a ``Delimiter``, every key with the delimiter after the prefix is
  rolled up into one ``CommonPrefixes`` entry (the key up to and including the first delimiter
  after the prefix), listed once, in order among the keys.
- ``MaxKeys`` (default and maximum 1000) counts keys and common prefixes together (``KeyCount``).
  ``IsTruncated`` says more entries follow.
- V2 resumes from ``ContinuationToken`` (opaque; S3's error for a token it did not issue is
  InvalidArgument "The continuation token provided is incorrect") or, on the first page, after
  ``StartAfter``; ``NextContinuationToken`` is set when truncated.
- V1 resumes after ``Marker``; ``NextMarker`` is set only when truncated and a delimiter was given
  (the last key or common prefix of the page).
- ``EncodingType=url`` percent-encodes keys, prefixes, delimiter, start-after and markers in the
  answer (any other value is InvalidArgument "Invalid Encoding Method specified in Request").
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar
from urllib.parse import quote

from lamina.domain.s3 import invalid_argument

MAX_KEYS: Final = 1000
BATCH: Final = 1000


class HasKey(Protocol):
    @property
    def key(self) -> str: ...


R = TypeVar("R", bound=HasKey)

# fetch(lower, inclusive, prefix, limit): up to ``limit`` entries with key >= lower (> lower when
# not inclusive; from the first key when lower is None) that start with ``prefix``, in key order.
Fetch = Callable[[str | None, bool, str, int], Sequence[R]]


@dataclass(frozen=True)
class Page(Generic[R]):
    """One page: the entries, the common prefixes, whether more follow, and where the page
    ended (the last key or common prefix it holds)."""

    contents: tuple[R, ...]
    common_prefixes: tuple[str, ...]
    truncated: bool
    last: str | None

    @property
    def count(self) -> int:
        return len(self.contents) + len(self.common_prefixes)


def successor(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix`` (None: none)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:  # surrogates cannot be stored: the next character is U+E000
                nxt = 0xE000
            return prefix[:-1] + chr(nxt)
        prefix = prefix[:-1]
    return None


def list_page(fetch: Fetch[R], *, prefix: str, delimiter: str, max_keys: int, after: str | None) -> Page[R]:
    """The page of at most ``max_keys`` entries that follows ``after`` (a key or a common prefix
    of an earlier page; None: from the start)."""
    contents: list[R] = []
    prefixes: list[str] = []
    lower: str | None = after
    inclusive = False
    if after is not None and delimiter and after.endswith(delimiter) and after.startswith(prefix):
        # Resuming after a common prefix: none of its keys may come again.
        cut = after.find(delimiter, len(prefix))
        if cut + len(delimiter) == len(after):
            lower, inclusive = successor(after), True
            if lower is None:
                return Page((), (), False, None)
    if lower is not None and prefix and lower < prefix:
        lower, inclusive = prefix, True
    last: str | None = None
    while True:
        want = max_keys - len(contents) - len(prefixes)
        asked = min(BATCH, want + 1)
        rows = fetch(lower, inclusive, prefix, asked)
        jumped = False
        for row in rows:
            if len(contents) + len(prefixes) >= max_keys:
                return Page(tuple(contents), tuple(prefixes), True, last)
            key = row.key
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = key[: cut + len(delimiter)]
                    prefixes.append(common)
                    last = common
                    nxt = successor(common)
                    if nxt is None:
                        return Page(tuple(contents), tuple(prefixes), False, last)
                    lower, inclusive = nxt, True
                    jumped = True
                    break
            contents.append(row)
            last = key
            lower, inclusive = key, False
        if not jumped and len(rows) < asked:
            return Page(tuple(contents), tuple(prefixes), False, last)


# -- continuation tokens ----------------------------------------------------------------------

_TOKEN_MAGIC: Final = "l1:"


def continuation_token(last: str) -> str:
    """An opaque token for the entry a page ended with (URL-safe characters only, as S3's)."""
    return base64.urlsafe_b64encode((_TOKEN_MAGIC + last).encode("utf-8")).decode("ascii")


def token_position(token: str) -> str:
    """Where a token issued by :func:`continuation_token` resumes, or S3's InvalidArgument."""
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeError):
        text = ""
    if not text.startswith(_TOKEN_MAGIC) or len(text) == len(_TOKEN_MAGIC):
        raise invalid_argument("The continuation token provided is incorrect", "continuation-token")
    return text[len(_TOKEN_MAGIC) :]


# -- encoding-type=url ---------------------------------------------------------------------------


def check_encoding_type(value: str | None) -> bool:
    """Whether names are to be URL-encoded in the answer; InvalidArgument for an unknown method."""
    if value is None:
        return False
    if value != "url":
        raise invalid_argument("Invalid Encoding Method specified in Request", "encoding-type", value)
    return True


# What quote(text, safe="/") leaves as is: RFC 3986's unreserved characters and "/".
_UNRESERVED: Final = re.compile(r"[A-Za-z0-9_.\-~/]*")


def url_encode(text: str) -> str:
    """A name as S3 writes it with ``EncodingType=url`` (``/`` kept, as S3 keeps it)."""
    # Most keys need no escape at all: tested first by a compiled pattern, far cheaper than
    # quote's own per-call setup when a page writes 1000 keys (boto3 asks for url by default).
    if _UNRESERVED.fullmatch(text) is not None:
        return text
    return quote(text, safe="/")


def check_max_keys(value: int | None) -> int:
    """MaxKeys as listed: default 1000, never more; negative is InvalidArgument."""
    if value is None:
        return MAX_KEYS
    if value < 0:
        raise invalid_argument(
            "Argument maxKeys must be an integer between 0 and 2147483647", "maxKeys", str(value)
        )
    return min(value, MAX_KEYS)
