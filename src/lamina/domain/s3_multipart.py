"""Multipart uploads: the pure rules (part numbers, the ETag of an assembled object, which parts a
CompleteMultipartUpload may name) and their errors, with AWS's codes and words.

Facts (S3 API reference, UploadPart / CompleteMultipartUpload): part numbers are 1 to 10,000; every
part but the last must be at least 5 MiB; the parts named on completion must be in ascending order
and each must match an uploaded part's number and ETag; the object's ETag is the MD5 of the
concatenated binary MD5s of its parts, followed by ``-<number of parts>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lamina.domain.s3 import invalid_argument, invalid_request, malformed_xml, s3_error
from lamina.errors import AwsError

MIN_PART_NUMBER: Final = 1
MAX_PART_NUMBER: Final = 10_000
MIN_PART_SIZE: Final = 5 * 1024 * 1024  # every part but the last
MAX_PART_SIZE: Final = 5 * 1024**3
MAX_LISTED: Final = 1000  # ListParts MaxParts, ListMultipartUploads MaxUploads

NO_SUCH_UPLOAD: Final = (
    "The specified upload does not exist. The upload ID may be invalid, or the upload may have been"
    " aborted or completed."
)
INVALID_PART: Final = (
    "One or more of the specified parts could not be found.  The part may not have been uploaded,"
    " or the specified entity tag may not match the part's entity tag."
)


@dataclass(frozen=True)
class Upload:
    """An upload in progress: what the object will be (its headers, metadata and tags, given at
    creation) once completed."""

    upload_id: str
    bucket: str
    key: str
    account: str
    initiated_ms: int
    headers: Mapping[str, str]
    metadata: Mapping[str, str]
    tags: Mapping[str, str]

    @property
    def initiated(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.initiated_ms / 1000, dt.UTC)


@dataclass(frozen=True)
class Part:
    """An uploaded part: its bytes are the blob ``sha256``; ``md5`` is hex (the part's ETag)."""

    upload_id: str
    number: int
    sha256: str
    size: int
    md5: str
    modified_ms: int

    @property
    def etag(self) -> str:
        return f'"{self.md5}"'

    @property
    def modified(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.modified_ms / 1000, dt.UTC)


def new_upload_id() -> str:
    """An opaque upload ID that sorts in creation order (ListMultipartUploads lists a key's uploads
    oldest first): the creation time in nanoseconds, then 16 random bytes."""
    return f"{time.time_ns():016x}{os.urandom(16).hex()}"


def no_such_upload(upload_id: str) -> AwsError:
    return s3_error("NoSuchUpload", NO_SUCH_UPLOAD, 404, UploadId=upload_id)


def part_number(value: Any) -> int:
    """UploadPart's ``partNumber``: an integer from 1 to 10,000, else InvalidArgument."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if not MIN_PART_NUMBER <= number <= MAX_PART_NUMBER or str(value).strip() != str(number):
        raise invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive", "partNumber", str(value)
        )
    return number


def multipart_etag(part_md5s: Sequence[bytes]) -> str:
    """The quoted ETag of an object assembled from parts: the MD5 of their binary MD5s, ``-N``."""
    digest = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
    return f'"{digest}-{len(part_md5s)}"'


def _unquoted(etag: str) -> str:
    return etag.strip().strip('"')


def requested_parts(body: Any) -> list[tuple[int, str]]:
    """CompleteMultipartUpload's ``<Part>`` list as (number, unquoted ETag), in the order given.
    No body is MalformedXML; an empty list is InvalidRequest (AWS's words)."""
    if not isinstance(body, dict):
        raise malformed_xml()
    parts = body.get("Parts")
    if not parts:
        raise invalid_request("You must specify at least one part")
    out = []
    for part in parts:
        if not isinstance(part, dict) or part.get("PartNumber") is None or part.get("ETag") is None:
            raise malformed_xml()
        out.append((int(part["PartNumber"]), _unquoted(str(part["ETag"]))))
    return out


def completed_parts(
    upload_id: str, requested: Sequence[tuple[int, str]], stored: Mapping[int, Part]
) -> list[Part]:
    """The stored parts a completion names, checked as S3 does: ascending part numbers
    (InvalidPartOrder), each uploaded with that ETag (InvalidPart), each but the last at least
    5 MiB (EntityTooSmall)."""
    numbers = [n for n, _ in requested]
    if any(b <= a for a, b in zip(numbers, numbers[1:], strict=False)):
        raise s3_error(
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
            400,
            UploadId=upload_id,
        )
    chosen = []
    for number, etag in requested:
        part = stored.get(number)
        if part is None or part.md5 != etag:
            raise s3_error(
                "InvalidPart", INVALID_PART, 400, ETag=etag, PartNumber=str(number), UploadId=upload_id
            )
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise s3_error(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                400,
                ETag=part.md5,
                MinSizeAllowed=str(MIN_PART_SIZE),
                PartNumber=str(part.number),
                ProposedSize=str(part.size),
            )
    return chosen


def max_listed(value: Any, name: str) -> int:
    """MaxParts / MaxUploads: 0 to 1000 kept, more is 1000; negative or not a number is
    InvalidArgument."""
    if value is None or value == "":
        return MAX_LISTED
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise invalid_argument(f"Provided {name} not an integer or within integer range", name, str(value))
    return min(number, MAX_LISTED)


_COPY_RANGE: Final = re.compile(r"bytes=(\d+)-(\d+)")
_COPY_RANGE_FORM: Final = (
    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are"
    " the zero-based offsets of the first and last bytes to copy"
)


def copy_range(header: str | None, size: int) -> tuple[int, int]:
    """UploadPartCopy's ``x-amz-copy-source-range`` as (first byte, length) of a source of ``size``
    bytes (no header: all of it). Only ``bytes=first-last`` is accepted (AWS's words for the rest):
    a first byte past the end is InvalidRequest, a last one InvalidArgument."""
    if header is None:
        return 0, size
    match = _COPY_RANGE.fullmatch(header)
    if match is None or int(match[1]) > int(match[2]):
        raise invalid_argument(_COPY_RANGE_FORM, "x-amz-copy-source-range", header)
    first, last = int(match[1]), int(match[2])
    if first >= size:
        raise invalid_request("The specified copy range is invalid for the source object size")
    if last >= size:
        raise invalid_argument(
            f"Range specified is not valid for source object of size: {size}",
            "x-amz-copy-source-range",
            header,
        )
    return first, last - first + 1
