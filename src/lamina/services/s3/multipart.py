"""Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
AbortMultipartUpload, ListParts, ListMultipartUploads (the rules are
:mod:`lamina.domain.s3_multipart`).

A part is streamed into the blob store as PutObject's body is (never held), checked the same way
(signed payload, Content-MD5, ``x-amz-checksum-*``), and its blob put in place inside the
transaction that commits its row. Completion reads the chosen parts' files in 1 MB pieces into one
new spooled file (hashing as it goes), then commits the object and forgets the parts in one
transaction: a 5 GB object needs no more memory than a small one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final
from urllib.parse import quote

from lamina.domain import s3
from lamina.domain.clock import iso_millis
from lamina.domain.s3 import StoredObject
from lamina.domain.s3_listing import check_encoding_type, url_encode
from lamina.domain.s3_multipart import (
    MAX_PART_SIZE,
    Part,
    Upload,
    completed_parts,
    copy_range,
    max_listed,
    multipart_etag,
    new_upload_id,
    no_such_upload,
    part_number,
    requested_parts,
)
from lamina.services.base import RequestContext
from lamina.services.s3.access import bucket_for
from lamina.services.s3.buckets import owner
from lamina.services.s3.deps import S3Deps
from lamina.services.s3.objects import (
    IncomingBody,
    check_copy_conditions,
    crc32_text,
    system_headers,
    user_tags,
)
from lamina.store import BlobStoreError

_READ: Final = 1024 * 1024


def _upload(deps: S3Deps, ctx: RequestContext, params: dict[str, Any], action: str) -> Upload:
    bucket, key, upload_id = params["Bucket"], params["Key"], params.get("UploadId") or ""
    bucket_for(deps, ctx, bucket, action, key, expected_owner=params.get("ExpectedBucketOwner"))
    upload = deps.store.get_upload(bucket, key, upload_id)
    if upload is None:
        raise no_such_upload(upload_id)
    return upload


def create_multipart_upload(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Start an upload; the object's headers, metadata and tags are kept for completion."""
    bucket, key = params["Bucket"], params["Key"]
    bucket_for(deps, ctx, bucket, "s3:PutObject", key, expected_owner=params.get("ExpectedBucketOwner"))
    s3.check_key(key)
    algorithm = params.get("ChecksumAlgorithm")
    if algorithm is not None and algorithm != "CRC32":
        raise s3.not_implemented_header("x-amz-checksum-algorithm")
    metadata = dict(params.get("Metadata") or {})
    s3.check_metadata(metadata)
    upload = Upload(
        upload_id=new_upload_id(),
        bucket=bucket,
        key=key,
        account=ctx.account_id,
        initiated_ms=ctx.now_ms,
        headers=system_headers(params),
        metadata=metadata,
        tags=user_tags(params.get("Tagging")),
    )
    if not deps.store.create_upload(upload):
        raise s3.no_such_bucket(bucket)
    return {"Bucket": bucket, "Key": key, "UploadId": upload.upload_id}


def upload_part(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """One part, streamed and checked as PutObject's body; its ETag is its MD5."""
    number = part_number(params.get("PartNumber"))
    upload = _upload(deps, ctx, params, "s3:PutObject")
    spooled, checksum = IncomingBody.of(ctx, params, MAX_PART_SIZE).spool(deps)
    try:
        part = Part(
            upload_id=upload.upload_id,
            number=number,
            sha256=spooled.sha256,
            size=spooled.size,
            md5=spooled.md5.hex(),
            modified_ms=ctx.now_ms,
        )
        deps.blobs.stage(spooled)  # outside the transaction: a remote store's upload
        if not deps.store.put_part(part, lambda: deps.blobs.adopt(spooled), deps.blobs.delete):
            raise no_such_upload(upload.upload_id)
    except BaseException:
        deps.blobs.discard(spooled)
        raise
    if checksum is not None:
        return {"ETag": part.etag, checksum[0].member: checksum[1]}
    return {"ETag": part.etag, "ChecksumCRC32": crc32_text(spooled.crc32)}


def _file_range(deps: S3Deps, sha256: str, first: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of blob ``sha256`` from offset ``first``, read 1 MB at a time."""
    with deps.blobs.path(sha256).open("rb") as f:
        f.seek(first)
        while length > 0 and (chunk := f.read(min(_READ, length))):
            length -= len(chunk)
            yield chunk


def upload_part_copy(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """A part copied from an object (all of it, or ``x-amz-copy-source-range``). The whole of a
    single-part object costs no copy: the part refers to the object's blob."""
    number = part_number(params.get("PartNumber"))
    upload = _upload(deps, ctx, params, "s3:PutObject")
    source_bucket, source_key, version = s3.copy_source(params["CopySource"])
    bucket_for(
        deps,
        ctx,
        source_bucket,
        "s3:GetObject",
        source_key,
        expected_owner=params.get("ExpectedSourceBucketOwner"),
    )
    if version not in (None, "null"):
        raise s3.invalid_argument("Invalid version id specified", "x-amz-copy-source", params["CopySource"])
    source = deps.store.get_object(source_bucket, source_key)
    if source is None:
        raise s3.no_such_key(source_key)
    check_copy_conditions(ctx, params, source)
    first, length = copy_range(params.get("CopySourceRange"), source.size)
    source_md5 = source.etag.strip('"')
    if (first, length) == (0, source.size) and "-" not in source_md5:
        part = Part(upload.upload_id, number, source.sha256, source.size, source_md5, ctx.now_ms)

        def still_there() -> None:
            # Inside the commit: the source's bytes must not have been freed since the lookup.
            if not deps.blobs.still_held(source.sha256):
                raise s3.no_such_key(source_key)

        if not deps.store.put_part(part, still_there, deps.blobs.delete):
            raise no_such_upload(upload.upload_id)
    else:
        try:
            spooled = deps.blobs.spool(_file_range(deps, source.sha256, first, length))
        except BlobStoreError as exc:
            if not isinstance(exc.__cause__, FileNotFoundError):
                raise  # the store's own failure (disk full, ...), not a source deleted meanwhile
            raise s3.no_such_key(source_key) from None
        try:
            part = Part(upload.upload_id, number, spooled.sha256, spooled.size, spooled.md5.hex(), ctx.now_ms)
            deps.blobs.stage(spooled)  # outside the transaction: a remote store's upload
            if not deps.store.put_part(part, lambda: deps.blobs.adopt(spooled), deps.blobs.delete):
                raise no_such_upload(upload.upload_id)
        except BaseException:
            deps.blobs.discard(spooled)
            raise
    return {"CopyPartResult": {"ETag": part.etag, "LastModified": iso_millis(part.modified)}}


def _concatenated(deps: S3Deps, parts: Sequence[Part]) -> Iterator[bytes]:
    """The parts' bytes in order, read from their blob files 1 MB at a time."""
    for part in parts:
        yield from _file_range(deps, part.sha256, 0, part.size)


def complete_multipart_upload(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Assemble the named parts into the object (streamed from file to file) and forget the upload."""
    upload = _upload(deps, ctx, params, "s3:PutObject")
    # Conditional completion and the declared object size are not checked yet: refused, not ignored.
    for member, header in (
        ("IfMatch", "If-Match"),
        ("IfNoneMatch", "If-None-Match"),
        ("MpuObjectSize", "x-amz-mp-object-size"),
    ):
        if params.get(member) is not None:
            raise s3.not_implemented_header(header)
    requested = requested_parts(params.get("MultipartUpload"))
    for attempt in range(2):
        stored = {p.number: p for p in deps.store.list_parts(upload.upload_id)}
        parts = completed_parts(upload.upload_id, requested, stored)
        try:
            spooled = deps.blobs.spool(_concatenated(deps, parts))
            break
        except BlobStoreError as exc:
            if not isinstance(exc.__cause__, FileNotFoundError):
                raise  # the store's own failure (disk full, ...): not worth assembling again
            # A part's file vanished while it was read: the upload was completed or aborted
            # meanwhile, or the part was uploaded again (read afresh: its new ETag is then no
            # longer the one named, InvalidPart, as S3 answers).
            if deps.store.get_upload(upload.bucket, upload.key, upload.upload_id) is None:
                raise no_such_upload(upload.upload_id) from None
            if attempt:
                raise
    try:
        obj = StoredObject(
            bucket=upload.bucket,
            key=upload.key,
            sha256=spooled.sha256,
            size=spooled.size,
            etag=multipart_etag([bytes.fromhex(p.md5) for p in parts]),
            crc32=crc32_text(spooled.crc32),
            modified_ms=ctx.now_ms,
            headers=upload.headers,
            metadata=upload.metadata,
            tags=upload.tags,
        )
        deps.blobs.stage(spooled)  # outside the transaction: a remote store's upload
        if not deps.store.complete_upload(
            upload.upload_id, obj, lambda: deps.blobs.adopt(spooled), deps.blobs.delete
        ):
            raise no_such_upload(upload.upload_id)
    except BaseException:
        deps.blobs.discard(spooled)
        raise
    return {
        "Location": f"{ctx.base_url.rstrip('/')}/{quote(upload.bucket)}/{quote(upload.key)}",
        "Bucket": upload.bucket,
        "Key": upload.key,
        "ETag": obj.etag,
        "ChecksumCRC32": obj.crc32,
        "ChecksumType": "FULL_OBJECT",
    }


def abort_multipart_upload(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Forget the upload; its parts' bytes are freed unless something else refers to them."""
    upload = _upload(deps, ctx, params, "s3:AbortMultipartUpload")
    if not deps.store.abort_upload(upload.upload_id, deps.blobs.delete):
        raise no_such_upload(upload.upload_id)
    return {}


def _initiator(account: str) -> dict[str, str]:
    return {"ID": owner(account)["ID"], "DisplayName": account}


def list_parts(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """One page of the upload's parts: after PartNumberMarker, at most MaxParts (1000)."""
    upload = _upload(deps, ctx, params, "s3:ListMultipartUploadParts")
    max_parts = max_listed(params.get("MaxParts"), "max-parts")
    marker = params.get("PartNumberMarker")
    try:
        after = int(marker) if marker not in (None, "") else 0
    except (TypeError, ValueError):
        after = -1
    if after < 0:
        raise s3.invalid_argument(
            "Argument partNumberMarker must be an integer between 0 and 2147483647",
            "part-number-marker",
            str(marker),
        )
    page = deps.store.list_parts(upload.upload_id, after, max_parts + 1)
    truncated = len(page) > max_parts
    page = page[:max_parts]
    out: dict[str, Any] = {
        "Bucket": upload.bucket,
        "Key": upload.key,
        "UploadId": upload.upload_id,
        "PartNumberMarker": after,
        "NextPartNumberMarker": page[-1].number if page else 0,
        "MaxParts": max_parts,
        "IsTruncated": truncated,
    }
    if page:
        out["Parts"] = [
            {
                "PartNumber": p.number,
                "LastModified": iso_millis(p.modified),
                "ETag": p.etag,
                "Size": p.size,
            }
            for p in page
        ]
    out["Initiator"] = _initiator(upload.account)
    out["Owner"] = owner(upload.account)
    out["StorageClass"] = "STANDARD"
    return out


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    """The CommonPrefix ``key`` rolls up into under ``delimiter`` (None: it is listed itself)."""
    if not delimiter or not key.startswith(prefix):
        return None
    at = key.find(delimiter, len(prefix))
    return None if at < 0 else key[: at + len(delimiter)]


def _upload_page(
    deps: S3Deps, bucket: str, prefix: str, delimiter: str, key_marker: str, upload_id_marker: str, limit: int
) -> tuple[list[Upload | str], bool]:
    """Up to ``limit`` entries (uploads, and common prefixes as strings) after the markers, and
    whether more follow. As S3 does, keys that roll up into the key marker's own common prefix are
    past (the marker named that prefix)."""
    skipped = _common_prefix(key_marker, prefix, delimiter) if key_marker else None
    entries: list[Upload | str] = []
    after_key, after_id = key_marker, upload_id_marker
    while True:
        batch = deps.store.list_uploads(bucket, prefix, after_key, after_id, 1000)
        for upload in batch:
            group = _common_prefix(upload.key, prefix, delimiter)
            if group is not None and (group == skipped or (entries and entries[-1] == group)):
                continue
            if len(entries) == limit:
                return entries, True
            entries.append(group if group is not None else upload)
        if len(batch) < 1000:
            return entries, False
        after_key, after_id = batch[-1].key, batch[-1].upload_id


def list_multipart_uploads(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """One page of the bucket's uploads in progress, by key then creation, after
    KeyMarker/UploadIdMarker, at most MaxUploads (1000) uploads and common prefixes together."""
    bucket = bucket_for(
        deps,
        ctx,
        params["Bucket"],
        "s3:ListBucketMultipartUploads",
        expected_owner=params.get("ExpectedBucketOwner"),
    )
    encoded = check_encoding_type(params.get("EncodingType"))
    encode = url_encode if encoded else str
    max_uploads = max_listed(params.get("MaxUploads"), "max-uploads")
    prefix = params.get("Prefix") or ""
    delimiter = params.get("Delimiter") or ""
    key_marker = params.get("KeyMarker") or ""
    # An upload ID marker counts only with a key marker (S3 ignores it alone), and must be one of
    # that key's uploads.
    upload_id_marker = (params.get("UploadIdMarker") or "") if key_marker else ""
    if upload_id_marker and deps.store.get_upload(bucket.name, key_marker, upload_id_marker) is None:
        raise s3.invalid_argument("Invalid uploadId marker", "upload-id-marker", upload_id_marker)
    entries, truncated = _upload_page(
        deps, bucket.name, prefix, delimiter, key_marker, upload_id_marker, max_uploads
    )
    uploads = [e for e in entries if isinstance(e, Upload)]
    # S3 names the next markers from the last upload listed (none: empty), common prefixes aside.
    out: dict[str, Any] = {
        "Bucket": bucket.name,
        "KeyMarker": encode(key_marker),
        "UploadIdMarker": upload_id_marker,
        "NextKeyMarker": encode(uploads[-1].key) if uploads else "",
        "NextUploadIdMarker": uploads[-1].upload_id if uploads else "",
        "MaxUploads": max_uploads,
        "IsTruncated": truncated,
    }
    if prefix:
        out["Prefix"] = encode(prefix)
    if delimiter:
        out["Delimiter"] = encode(delimiter)
    if uploads:
        out["Uploads"] = [
            {
                "UploadId": u.upload_id,
                "Key": encode(u.key),
                "Initiated": iso_millis(u.initiated),
                "StorageClass": "STANDARD",
                "Owner": owner(u.account),
                "Initiator": _initiator(u.account),
            }
            for u in uploads
        ]
    groups = [e for e in entries if isinstance(e, str)]
    if groups:
        out["CommonPrefixes"] = [{"Prefix": encode(g)} for g in groups]
    if encoded:
        out["EncodingType"] = "url"
    return out


HANDLERS = {
    "CreateMultipartUpload": create_multipart_upload,
    "UploadPart": upload_part,
    "UploadPartCopy": upload_part_copy,
    "CompleteMultipartUpload": complete_multipart_upload,
    "AbortMultipartUpload": abort_multipart_upload,
    "ListParts": list_parts,
    "ListMultipartUploads": list_multipart_uploads,
}
