"""Uploaded zips (layer content and function code): checks, storage, signed download URLs."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

from lamina.domain import functions as F
from lamina.domain.zipcheck import ZipRejected, inspect_zip, to_aws_error
from lamina.errors import InvalidParameterValueException, RequestEntityTooLargeException
from lamina.services.base import RequestContext
from lamina.services.platform import Platform

MAX_ZIPPED = F.MAX_ZIPPED  # direct upload (ZipFile)
MAX_UNZIPPED = F.MAX_UNZIPPED
DOWNLOAD_PREFIX = "/_lamina/blobs/"


@dataclass(frozen=True)
class StoredZip:
    sha256_hex: str
    size: int
    unzipped_size: int


def store_zip(platform: Platform, source: dict[str, Any], *, what: str, example: str) -> StoredZip:
    """Check a ``ZipFile`` source (S3 sources are not supported yet) and store it durably.

    ``what`` names the content in messages ("Layer content", "Function code"); ``example``
    is the CLI command that uploads directly.
    """
    if any(k in source for k in ("S3Bucket", "S3Key", "S3ObjectVersion")):
        raise InvalidParameterValueException(
            f"{what} from S3 (S3Bucket/S3Key) is not supported by lamina yet: upload the zip directly with "
            f"ZipFile ({example})."
        )
    data = source.get("ZipFile")
    if data is None:
        raise InvalidParameterValueException(
            f"Please provide a source for {what.lower()}: ZipFile is required."
        )
    if len(data) > MAX_ZIPPED:
        raise RequestEntityTooLargeException(f"Zipped size must be smaller than {MAX_ZIPPED} bytes")
    try:
        report = inspect_zip(io.BytesIO(data), max_unzipped=MAX_UNZIPPED)
    except ZipRejected as exc:
        raise to_aws_error(exc, MAX_UNZIPPED) from exc
    sha = hashlib.sha256(data).hexdigest()
    platform.blobs.put(data, sha)
    return StoredZip(sha, len(data), report.unzipped_size)


def download_url(platform: Platform, ctx: RequestContext, sha256_hex: str) -> str:
    """A signed URL on this server that downloads the blob for 10 minutes (``Location``)."""
    path = f"{DOWNLOAD_PREFIX}{sha256_hex}"
    return f"{ctx.base_url}{path}?{platform.signer.query(path, ctx.now_ms // 1000)}"
