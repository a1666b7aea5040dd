"""Uploaded zips (layer content and function code): checks, storage, signed download URLs.

A zip comes in the request (``ZipFile``, at most 50 MB) or names an S3 object (``S3Bucket``,
``S3Key``, ``S3ObjectVersion``: "An Amazon S3 bucket in the same AWS Region as your function. The
bucket can be in a different AWS account", Lambda API reference, FunctionCode). An S3 object is read
with the caller's permissions, as Lambda does with a forward access session: IAM's ``s3:GetObject``
for the caller, then S3's own bucket-level decision (:func:`lamina.services.s3.bucket_for`: the
owner, or another account through the bucket policy). Its bytes are already a blob of the
content-addressed store: the function or layer version refers to that same blob, no copy is made
(``store/references.py`` keeps it while either refers to it).

S3's refusals come back in Lambda's words, recorded against AWS: ``InvalidParameterValueException``
"Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does
not exist." (NoSuchBucket, PermanentRedirect for a bucket in another region, InvalidArgument for a
version id), and ``AccessDeniedException`` (403) "Your access has been denied by S3, please make sure
your request credentials have permission to GetObject for BUCKET/KEY. S3 Error Code: AccessDenied.
S3 Error Message: Access Denied".
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lamina.domain import functions as F
from lamina.domain import s3 as S3
from lamina.domain.zipcheck import ZipRejected, inspect_zip, to_aws_error
from lamina.errors import (
    AccessDeniedException,
    AwsError,
    InvalidParameterValueException,
    RequestEntityTooLargeException,
)
from lamina.services.base import RequestContext
from lamina.services.platform import Platform
from lamina.services.s3 import bucket_for

MAX_ZIPPED = F.MAX_ZIPPED  # direct upload (ZipFile)
MAX_UNZIPPED = F.MAX_UNZIPPED
DOWNLOAD_PREFIX = "/_lamina/blobs/"
S3_MEMBERS = ("S3Bucket", "S3Key", "S3ObjectVersion")


@dataclass(frozen=True)
class StoredZip:
    """A checked zip, durable as blob ``sha256_hex``. ``ensure_blob`` runs inside the write
    transaction that commits what refers to it (serialised with the deletes that free blobs): it
    puts an uploaded zip back if a concurrent delete freed identical bytes meanwhile, and refuses an
    S3 object deleted meanwhile (its bytes may be gone)."""

    sha256_hex: str
    size: int
    unzipped_size: int
    ensure_blob: Callable[[], object]


def store_zip(
    platform: Platform, ctx: RequestContext, source: dict[str, Any], *, what: str, members: str
) -> StoredZip:
    """Check a ``ZipFile`` or S3 source and have its bytes durable as a blob.

    ``what`` names the content in messages ("Layer content", "Function code"); ``members`` is the
    input shape AWS names when both kinds of source are given ("FunctionCode")."""
    data = source.get("ZipFile")
    from_s3 = [k for k in S3_MEMBERS if source.get(k) is not None]
    if data is not None and from_s3:
        raise InvalidParameterValueException(
            f"Please do not provide other {members} parameters when providing a ZipFile."
        )
    if data is None:
        if source.get("S3Bucket") and source.get("S3Key"):
            return _from_s3(platform, ctx, source)
        raise InvalidParameterValueException(
            f"Please provide a source for {what.lower()}: ZipFile is required (or S3Bucket and S3Key)."
        )
    if len(data) > MAX_ZIPPED:
        raise RequestEntityTooLargeException(f"Zipped size must be smaller than {MAX_ZIPPED} bytes")
    try:
        report = inspect_zip(io.BytesIO(data), max_unzipped=MAX_UNZIPPED)
    except ZipRejected as exc:
        raise to_aws_error(exc, MAX_UNZIPPED) from exc
    sha = hashlib.sha256(data).hexdigest()
    platform.blobs.stage_bytes(data, sha)
    return StoredZip(sha, len(data), report.unzipped_size, lambda: platform.blobs.put(data, sha))


def _get_object_error(error: AwsError) -> InvalidParameterValueException:
    return InvalidParameterValueException(
        f"Error occurred while GetObject. S3 Error Code: {error.code}. S3 Error Message: {error.message}"
    )


def _access_denied(bucket: str, key: str) -> AccessDeniedException:
    return AccessDeniedException(
        "Your access has been denied by S3, please make sure your request credentials have permission "
        f"to GetObject for {bucket}/{key}. S3 Error Code: AccessDenied. S3 Error Message: {S3.ACCESS_DENIED}"
    )


def _from_s3(platform: Platform, ctx: RequestContext, source: dict[str, Any]) -> StoredZip:
    """The S3 object ``source`` names, read as the caller, checked as a Lambda zip."""
    name, key = str(source["S3Bucket"]), str(source["S3Key"])
    version = source.get("S3ObjectVersion")
    request: dict[str, Any] = {"Bucket": name, "Key": key}
    if version is not None:
        request["VersionId"] = version
    # IAM first, as the pipeline decides for S3's own GetObject: the caller's policies must allow
    # s3:GetObject on arn:aws:s3:::BUCKET/KEY.
    if ctx.denial("GetObject", request, service="s3") is not None:
        raise _access_denied(name, key)
    deps = platform.s3
    found = deps.store.get_bucket(name)
    if found is None:
        raise _get_object_error(S3.no_such_bucket(name))
    if found.region != ctx.region:
        # S3 redirects a request sent to another region's endpoint; Lambda reports it so.
        raise _get_object_error(
            S3.s3_error(
                "PermanentRedirect",
                f"The bucket is in this region: {found.region}. Please use this region to retry the request",
                301,
            )
        )
    try:
        # The owner's account, or another one through the bucket's policy (S3's decision).
        bucket_for(deps, ctx, name, "s3:GetObject", key)
    except AwsError as exc:
        if exc.code == "AccessDenied":
            raise _access_denied(name, key) from None
        raise _get_object_error(exc) from None
    if version is not None and version != "null":
        # Versioning is never enabled here: every object is the "null" version, and any other
        # version id is one S3 never issued (S3's GetObject: InvalidArgument).
        raise _get_object_error(S3.invalid_argument("Invalid version id specified", "versionId", version))
    obj = deps.store.get_object(name, key)
    if obj is None:
        raise _get_object_error(S3.no_such_key(key))
    if obj.size > MAX_UNZIPPED:
        # No zip this large unzips to less: refused before reading a byte of it.
        raise InvalidParameterValueException(f"Unzipped size must be smaller than {MAX_UNZIPPED} bytes")
    try:
        with open(deps.blobs.path(obj.sha256), "rb") as fileobj:
            report = inspect_zip(fileobj, max_unzipped=MAX_UNZIPPED)
    except FileNotFoundError:  # deleted (and its bytes freed) since it was looked up
        raise _get_object_error(S3.no_such_key(key)) from None
    except ZipRejected as exc:
        raise to_aws_error(exc, MAX_UNZIPPED) from exc

    def ensure() -> None:
        if not deps.blobs.still_held(obj.sha256):
            raise _get_object_error(S3.no_such_key(key))

    return StoredZip(obj.sha256, obj.size, report.unzipped_size, ensure)


def download_url(platform: Platform, ctx: RequestContext, sha256_hex: str) -> str:
    """A signed URL on this server that downloads the blob for 10 minutes (``Location``)."""
    path = f"{DOWNLOAD_PREFIX}{sha256_hex}"
    return f"{ctx.base_url}{path}?{platform.signer.query(path, ctx.now_ms // 1000)}"
