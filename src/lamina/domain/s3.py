"""S3's rules (pure): bucket names, location constraints, ranges, conditional requests, digests,
tags, and S3's errors with their exact words.

Facts, from the Amazon S3 User Guide and API Reference, and recordings against AWS:

- Bucket names ("General purpose bucket naming rules"): 3 to 63 characters of lower-case letters,
  digits, dots and hyphens, beginning and ending with a letter or digit; no two adjacent dots; not
  an IPv4 address; not beginning with ``xn--``, ``sthree-`` or ``amzn-s3-demo-``; not ending with
  ``-s3alias``, ``--ol-s3``, ``.mrap``, ``--x-s3`` or ``--table-s3``. A bucket name is global: one
  owner across every account and region.
- CreateBucket: the us-east-1 endpoint takes no LocationConstraint (``us-east-1`` itself, or a name
  that is no region, is InvalidLocationConstraint) or another region's (the bucket is made there);
  any other region's endpoint requires its own region as the constraint (anything else, or none, is
  IllegalLocationConstraintException). Re-creating your own bucket is BucketAlreadyOwnedByYou (409),
  except in us-east-1 where a plain re-create answers 200 and changes nothing (a legacy of the
  global endpoint); another account's is BucketAlreadyExists.
- Ranges (RFC 9110 section 14, as S3 applies it): one ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n``;
  ``b`` past the end is clipped; a suffix longer than the object is the whole object (still 206); a
  first byte at or past the end is 416 InvalidRange; anything else (a malformed header, several
  ranges) is ignored and the whole object is served (200).
- Conditional GET/HEAD (RFC 7232 section 6 precedence): If-Match fails -> 412; else
  If-Unmodified-Since fails (and no If-Match) -> 412; If-None-Match matches -> 304; else
  If-Modified-Since not modified (and no If-None-Match) -> 304. A date in the future is ignored.
  ETags compare with or without their quotes; ``*`` matches any object.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import enum
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from lamina.errors import AwsError

# -- errors ---------------------------------------------------------------------------------------

NO_SUCH_BUCKET: Final = "The specified bucket does not exist"
NO_SUCH_KEY: Final = "The specified key does not exist."
ACCESS_DENIED: Final = "Access Denied"
MALFORMED_XML: Final = (
    "The XML you provided was not well-formed or did not validate against our published schema"
)


def s3_error(code: str, message: str, status: int, **fields: str) -> AwsError:
    """An S3 error: ``fields`` become elements of ``<Error>`` after ``<Message>``, in order."""
    return AwsError(message, code=code, status=status, sender_fault=status < 500, fields=fields)


def no_such_bucket(bucket: str) -> AwsError:
    return s3_error("NoSuchBucket", NO_SUCH_BUCKET, 404, BucketName=bucket)


def no_such_key(key: str) -> AwsError:
    return s3_error("NoSuchKey", NO_SUCH_KEY, 404, Key=key)


def access_denied() -> AwsError:
    """S3's refusal when no policy grants the request (another account's bucket, anonymous)."""
    return s3_error("AccessDenied", ACCESS_DENIED, 403)


def malformed_xml() -> AwsError:
    return s3_error("MalformedXML", MALFORMED_XML, 400)


def invalid_argument(message: str, name: str, value: str | None = None) -> AwsError:
    fields = {"ArgumentName": name}
    if value is not None:
        fields["ArgumentValue"] = value
    return s3_error("InvalidArgument", message, 400, **fields)


def invalid_request(message: str) -> AwsError:
    return s3_error("InvalidRequest", message, 400)


def not_implemented_header(header: str) -> AwsError:
    """A header asking for what lamina's S3 does not do (yet): S3's 501 for such headers."""
    return s3_error(
        "NotImplemented",
        "A header you provided implies functionality that is not implemented",
        501,
        Header=header,
    )


# -- bucket names ---------------------------------------------------------------------------------

_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_RESERVED_PREFIXES: Final = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES: Final = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_ok(name: str) -> bool:
    """Whether ``name`` follows the general purpose bucket naming rules."""
    if _BUCKET.fullmatch(name) is None or ".." in name:
        return False
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return False
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return True
    return False


def invalid_bucket_name(name: str) -> AwsError:
    return s3_error("InvalidBucketName", "The specified bucket is not valid.", 400, BucketName=name)


def bucket_already_owned(name: str) -> AwsError:
    return s3_error(
        "BucketAlreadyOwnedByYou",
        "Your previous request to create the named bucket succeeded and you already own it.",
        409,
        BucketName=name,
    )


def bucket_already_exists(name: str) -> AwsError:
    return s3_error(
        "BucketAlreadyExists",
        "The requested bucket name is not available. The bucket namespace is shared by all users of"
        " the system. Please select a different name and try again.",
        409,
        BucketName=name,
    )


def bucket_not_empty(name: str) -> AwsError:
    return s3_error("BucketNotEmpty", "The bucket you tried to delete is not empty", 409, BucketName=name)


# -- regions and location constraints ----------------------------------------------------------

US_EAST_1: Final = "us-east-1"

# The commercial regions S3 takes as a LocationConstraint (the BucketLocationConstraint enum of the
# API Reference); "EU" is the legacy name of eu-west-1.
REGIONS: Final = frozenset(
    {
        "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
        "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1",
        "cn-north-1", "cn-northwest-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1",
        "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1",
        "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-gov-east-1",
        "us-gov-west-1", "us-west-1", "us-west-2",
    }
)  # fmt: skip
LEGACY_EU: Final = "EU"


def bucket_region(endpoint_region: str, constraint: str | None) -> str:
    """The region a CreateBucket sent to ``endpoint_region`` makes its bucket in, or S3's error."""
    if endpoint_region == US_EAST_1:
        if constraint is None or constraint == "":
            return US_EAST_1
        if constraint == LEGACY_EU:
            return "eu-west-1"
        if constraint == US_EAST_1 or constraint not in REGIONS:
            raise s3_error(
                "InvalidLocationConstraint",
                "The specified location-constraint is not valid",
                400,
                LocationConstraint=constraint,
            )
        return constraint
    if constraint == endpoint_region or (constraint == LEGACY_EU and endpoint_region == "eu-west-1"):
        return endpoint_region
    shown = constraint if constraint else "unspecified"
    raise s3_error(
        "IllegalLocationConstraintException",
        f"The {shown} location constraint is incompatible for the region specific endpoint this"
        " request was sent to.",
        400,
    )


def location_constraint(region: str) -> str | None:
    """GetBucketLocation's answer: none for us-east-1 (an empty element), else the region."""
    return None if region == US_EAST_1 else region


# -- digests --------------------------------------------------------------------------------------


def etag(md5_hex: str) -> str:
    """An object's ETag as S3 answers it: the quoted MD5 of its bytes (single-part uploads)."""
    return f'"{md5_hex}"'


def content_md5(header: str) -> bytes:
    """The 16 bytes of a ``Content-MD5`` header (base64), or InvalidDigest."""
    try:
        raw = binascii.a2b_base64(header.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        raise s3_error(
            "InvalidDigest", "The Content-MD5 you specified was invalid.", 400, **{"Content-MD5": header}
        )
    return raw


def bad_digest(expected: str, calculated_md5: bytes) -> AwsError:
    """The body's MD5 is not the ``Content-MD5`` sent (``expected``, as sent)."""
    return s3_error(
        "BadDigest",
        "The Content-MD5 you specified did not match what we received.",
        400,
        ExpectedDigest=expected,
        CalculatedDigest=base64.b64encode(calculated_md5).decode(),
    )


def content_sha256_mismatch(client: str, computed: str) -> AwsError:
    """A signed payload whose bytes do not hash to the ``x-amz-content-sha256`` that was signed."""
    return s3_error(
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        400,
        ClientComputedContentSHA256=client,
        S3ComputedContentSHA256=computed,
    )


class Checksum(enum.Enum):
    """Additional checksums S3 verifies and returns (``x-amz-checksum-*``)."""

    CRC32 = "crc32"
    SHA1 = "sha1"
    SHA256 = "sha256"


def bad_checksum(algorithm: str) -> AwsError:
    return s3_error(
        "BadDigest", f"The {algorithm.upper()} you specified did not match the calculated checksum.", 400
    )


def invalid_checksum(algorithm: str) -> AwsError:
    return invalid_request(f"Value for x-amz-checksum-{algorithm} header is invalid.")


# -- ranges ---------------------------------------------------------------------------------------

_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``first`` to ``last`` (inclusive) of an object of ``size`` bytes."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.size}"


def byte_range(header: str | None, size: int) -> ByteRange | None:
    """The range a ``Range`` header asks of an object of ``size`` bytes; None: the whole object
    (no header, or one S3 ignores); InvalidRange (416) when it cannot be satisfied."""
    if header is None:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    first_text, last_text = m.group(1), m.group(2)
    if not first_text:  # bytes=-n: the last n bytes
        suffix = int(last_text)
        if suffix == 0:
            raise _unsatisfiable(header, size)
        if size == 0:
            return None
        return ByteRange(max(0, size - suffix), size - 1, size)
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # syntactically invalid: ignored (RFC 9110 section 14.1.1)
    if first >= size:
        raise _unsatisfiable(header, size)
    return ByteRange(first, min(last, size - 1), size)


def _unsatisfiable(header: str, size: int) -> AwsError:
    return s3_error(
        "InvalidRange",
        "The requested range is not satisfiable",
        416,
        RangeRequested=header,
        ActualObjectSize=str(size),
    )


# -- conditional requests -------------------------------------------------------------------------


class Condition(enum.Enum):
    """What a conditional GET/HEAD decides."""

    SERVE = "serve"
    NOT_MODIFIED = "304"
    PRECONDITION_FAILED = "412"


@dataclass(frozen=True)
class Preconditions:
    """The conditional headers of a GET/HEAD (already parsed)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: dt.datetime | None = None
    if_unmodified_since: dt.datetime | None = None


def _tags_match(header: str, current: str) -> bool:
    bare = current.strip('"')
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.strip('"') == bare:
            return True
    return False


def _in_past(moment: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
    """A conditional date, or None when absent or in the future (S3 ignores such a date)."""
    return moment if moment is not None and moment <= now else None


def evaluate(
    conditions: Preconditions, etag_value: str, modified: dt.datetime, now: dt.datetime
) -> tuple[Condition, str]:
    """The answer to a conditional GET/HEAD of an object with ``etag_value`` last modified at
    ``modified`` (whole seconds, as the HTTP dates compare), and the header that decided it."""
    modified = modified.replace(microsecond=0)
    if_match, if_none_match = conditions.if_match, conditions.if_none_match
    unmodified = _in_past(conditions.if_unmodified_since, now)
    since = _in_past(conditions.if_modified_since, now)
    if if_match is not None and not _tags_match(if_match, etag_value):
        return Condition.PRECONDITION_FAILED, "If-Match"
    if if_match is None and unmodified is not None and modified > unmodified:
        return Condition.PRECONDITION_FAILED, "If-Unmodified-Since"
    if if_none_match is not None and _tags_match(if_none_match, etag_value):
        return Condition.NOT_MODIFIED, "If-None-Match"
    if if_none_match is None and since is not None and modified <= since:
        return Condition.NOT_MODIFIED, "If-Modified-Since"
    return Condition.SERVE, ""


def precondition_failed(condition: str) -> AwsError:
    return s3_error(
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        412,
        Condition=condition,
    )


def not_modified(etag: str, modified: dt.datetime) -> AwsError:
    """304: no body at all; its fields are the object's ``ETag`` and ``Last-Modified``, which the
    protocol sends as headers (RFC 9110, 15.4.5: a 304 carries the validators a 200 would)."""
    return s3_error("NotModified", "Not Modified", 304, ETag=etag, **{"Last-Modified": http_date(modified)})


def http_date(value: dt.datetime) -> str:
    """``Wed, 21 Oct 2015 07:28:00 GMT`` (Last-Modified)."""
    return email.utils.format_datetime(value.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


# -- tags -----------------------------------------------------------------------------------------

MAX_OBJECT_TAGS: Final = 10
MAX_BUCKET_TAGS: Final = 50
_TAG_TEXT: Final = re.compile(r"[\w\s+\-=._:/@]*", re.UNICODE)


def check_tags(tags: Iterable[Mapping[str, str]], *, limit: int) -> dict[str, str]:
    """A TagSet as a dict, or S3's InvalidTag (keys 1-128, values 0-256 characters of letters,
    digits, spaces and ``+ - = . _ : / @``; no ``aws:`` prefix; no duplicate key; at most
    ``limit``: 10 per object, 50 per bucket)."""
    out: dict[str, str] = {}
    for tag in tags:
        key, value = tag.get("Key", ""), tag.get("Value", "")
        if key in out:
            raise s3_error("InvalidTag", "Cannot provide multiple Tags with the same key", 400, TagKey=key)
        if key.lower().startswith("aws:"):
            raise s3_error("InvalidTag", "System tags cannot be added/updated by requester", 400, TagKey=key)
        if not 1 <= len(key) <= 128 or _TAG_TEXT.fullmatch(key) is None:
            raise s3_error("InvalidTag", "The TagKey you have provided is invalid", 400, TagKey=key)
        if len(value) > 256 or _TAG_TEXT.fullmatch(value) is None:
            raise s3_error(
                "InvalidTag", "The TagValue you have provided is invalid", 400, TagKey=key, TagValue=value
            )
        out[key] = value
    if len(out) > limit:
        raise s3_error(
            "BadRequest" if limit == MAX_OBJECT_TAGS else "InvalidTag",
            "Object tags cannot be greater than 10"
            if limit == MAX_OBJECT_TAGS
            else "Bucket tag count cannot be greater than 50",
            400,
        )
    return out


def no_such_tag_set(bucket: str) -> AwsError:
    return s3_error("NoSuchTagSet", "The TagSet does not exist", 404, BucketName=bucket)


# -- metadata -------------------------------------------------------------------------------------

# User metadata (x-amz-meta-*) and the user-settable system metadata together may not exceed 2 KB
# ("Working with object metadata": "the user-defined metadata is limited to 2 KB in size").
MAX_USER_METADATA: Final = 2048


def check_metadata(metadata: Mapping[str, str]) -> None:
    """S3's limit on user metadata: the UTF-8 length of every key and value together."""
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    if size > MAX_USER_METADATA:
        raise s3_error(
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size",
            400,
            Size=str(size),
            MaxSizeAllowed=str(MAX_USER_METADATA),
        )


class MetadataDirective(enum.Enum):
    """CopyObject: keep the source's metadata, or take the request's."""

    COPY = "COPY"
    REPLACE = "REPLACE"


MAX_KEY_BYTES: Final = 1024


def check_key(key: str) -> None:
    """S3's limit on a key: 1,024 bytes of UTF-8 ("Naming Amazon S3 objects")."""
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise s3_error(
            "KeyTooLongError", "Your key is too long", 400, Size=str(size), MaxSizeAllowed=str(MAX_KEY_BYTES)
        )


def copy_source(value: str) -> tuple[str, str, str | None]:
    """``x-amz-copy-source`` (``bucket/key`` or ``/bucket/key``, URL-encoded, optionally
    ``?versionId=``) -> bucket, key, version id; InvalidArgument when it names no object."""
    text, _, query = value.partition("?")
    text = unquote(text).lstrip("/")
    bucket, slash, key = text.partition("/")
    if not bucket or not slash or not key:
        raise invalid_argument("Invalid copy source object key", "x-amz-copy-source", value)
    version = None
    if query.startswith("versionId="):
        version = unquote(query[len("versionId=") :])
    return bucket, key, version


def copy_to_itself() -> AwsError:
    return invalid_request(
        "This copy request is illegal because it is trying to copy an object to itself without"
        " changing the object's metadata, storage class, website redirect location or encryption"
        " attributes."
    )


# -- what is stored -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """A bucket: its global name, the account that owns it, its region, when it was made (epoch
    ms), its tags (None: no TagSet at all, which GetBucketTagging answers NoSuchTagSet) and its
    policy (JSON text; None: none)."""

    name: str
    account: str
    region: str
    created_ms: int
    tags: Mapping[str, str] | None = None
    policy: str | None = None


@dataclass(frozen=True)
class StoredObject:
    """An object: its bytes are the blob ``sha256``; ``headers`` the system metadata it was put with
    (Content-Type, Content-Encoding, ...: the names as S3 answers them), ``metadata`` its user
    metadata (x-amz-meta-* without the prefix)."""

    bucket: str
    key: str
    sha256: str
    size: int
    etag: str
    crc32: str  # base64 of the big-endian CRC32 of the bytes (S3's default checksum)
    modified_ms: int
    headers: Mapping[str, str]
    metadata: Mapping[str, str]
    tags: Mapping[str, str]
    # The additional checksum its upload was checked with, when not S3's default CRC32: the
    # algorithm's name (crc32c, crc64nvme, sha1, sha256) and the base64 value; "" for none.
    checksum_algorithm: str = ""
    checksum: str = ""

    @property
    def modified(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.modified_ms / 1000, dt.UTC)


@dataclass(frozen=True)
class ListedObject:
    """What a listing shows of an object (ListObjects/ListObjectsV2 entries): read without the
    object's headers, metadata and tags, which a page of 1000 keys would decode for nothing."""

    key: str
    size: int
    etag: str
    modified_ms: int
    checksum_algorithm: str  # the additional checksum the object keeps ("" for CRC32)


# The system metadata a PutObject sets and GetObject/HeadObject answer (input member -> header).
SYSTEM_HEADERS: Final = (
    "ContentType",
    "ContentEncoding",
    "ContentDisposition",
    "ContentLanguage",
    "CacheControl",
    "Expires",
)
DEFAULT_CONTENT_TYPE: Final = "binary/octet-stream"
