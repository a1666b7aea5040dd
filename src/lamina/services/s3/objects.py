"""Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject,
Get/Put/DeleteObjectTagging.

PutObject never holds the body: it is streamed into a temporary file of the blob store while its
SHA-256 (the blob's name, and the check of a signed payload), MD5 (the ETag, and the check of
Content-MD5) and CRC32 (S3's default checksum) are computed, fsynced, and put in place inside the
transaction that commits the object row. Everything that can refuse the request is checked before
the first byte is read (the client that sent ``Expect: 100-continue`` then sends nothing).
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from lamina.domain import s3
from lamina.domain.clock import iso_millis
from lamina.domain.s3 import Condition, Preconditions, StoredObject
from lamina.domain.s3_checksums import Algorithm, Tee, bad_checksum, decode_value, encode_value
from lamina.domain.s3_chunked import (
    ChunkedBody,
    ChunkedRequest,
    announced_trailer,
    decoded_length,
    malformed_trailer,
)
from lamina.domain.s3_models import CopyObjectResult, DeletedObject, DeleteError, Tag
from lamina.errors import AwsError
from lamina.services.base import HTTP_STATUS, BodyStream, FileSlice, RequestContext
from lamina.services.s3.access import bucket_for, may
from lamina.services.s3.deps import S3Deps
from lamina.store import Spooled

MAX_OBJECT_SIZE: Final = 5 * 1024**3  # a single PutObject (multipart for more)
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
MULTIPLE_CHECKSUMS: Final = (
    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
)

# Query parameters of GetObject that override the answer's headers (signed requests only).
_OVERRIDES: Final = {
    "ResponseContentType": "ContentType",
    "ResponseContentLanguage": "ContentLanguage",
    "ResponseExpires": "Expires",
    "ResponseCacheControl": "CacheControl",
    "ResponseContentDisposition": "ContentDisposition",
    "ResponseContentEncoding": "ContentEncoding",
}

MAX_CRC64NVME_BODY = 16 * 1024 * 1024  # the largest body checked with CRC64NVME


# -- PutObject ------------------------------------------------------------------------------------


def body_chunks(body: object) -> tuple[Iterator[bytes], int | None]:
    """The request body as chunks, and its declared length."""
    if isinstance(body, bytes | bytearray):
        return iter((bytes(body),)), len(body)
    if body is None:
        return iter(()), 0
    if not hasattr(body, "chunks"):
        raise s3.invalid_request("The request body is not an object's bytes.")
    stream: BodyStream = body  # type: ignore[assignment]
    return stream.chunks(), stream.declared_length


def checksum_header(params: Mapping[str, Any]) -> tuple[Algorithm, str] | None:
    """The one additional checksum the request sends as a header to verify: (algorithm, base64
    value); several are InvalidRequest, as S3 answers."""
    sent = [(a, params[a.member]) for a in Algorithm if params.get(a.member) is not None]
    if len(sent) > 1:
        raise s3.invalid_request(MULTIPLE_CHECKSUMS)
    return sent[0] if sent else None


def crc32_text(crc: int) -> str:
    """A CRC32 as S3 prints it: base64 of its four big-endian bytes."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def user_tags(header: str | None) -> dict[str, str]:
    """The ``x-amz-tagging`` header (URL query form) as tags, checked as a TagSet."""
    if not header:
        return {}
    pairs = parse_qsl(header, keep_blank_values=True)
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise s3.invalid_argument(
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters"
            " without tag name duplicates.",
            "x-amz-tagging",
            header,
        )
    return s3.check_tags(({"Key": k, "Value": v} for k, v in pairs), limit=s3.MAX_OBJECT_TAGS)


def system_headers(params: Mapping[str, Any]) -> dict[str, str]:
    """The system metadata a request sets for an object (Content-Type defaulted)."""
    out = {}
    for member in s3.SYSTEM_HEADERS:
        value = params.get(member)
        if value is not None:
            out[member] = value if isinstance(value, str) else s3.http_date(value)
    if "ContentEncoding" in out:
        # ``aws-chunked`` names the request's framing, not the object's encoding: S3 keeps the rest.
        rest = [e.strip() for e in out["ContentEncoding"].split(",") if e.strip().lower() != "aws-chunked"]
        if rest:
            out["ContentEncoding"] = ",".join(rest)
        else:
            del out["ContentEncoding"]
    out.setdefault("ContentType", s3.DEFAULT_CONTENT_TYPE)
    return out


def put_object(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    bucket, key = params["Bucket"], params["Key"]
    bucket_for(deps, ctx, bucket, "s3:PutObject", key, expected_owner=params.get("ExpectedBucketOwner"))
    s3.check_key(key)
    body = IncomingBody.of(ctx, params, MAX_OBJECT_SIZE)
    metadata = dict(params.get("Metadata") or {})
    s3.check_metadata(metadata)
    tags = user_tags(params.get("Tagging"))
    headers = system_headers(params)
    spooled, checksum = body.spool(deps)
    try:
        obj = StoredObject(
            bucket=bucket,
            key=key,
            sha256=spooled.sha256,
            size=spooled.size,
            etag=s3.etag(spooled.md5.hex()),
            crc32=crc32_text(spooled.crc32),
            modified_ms=ctx.now_ms,
            headers=headers,
            metadata=metadata,
            tags=tags,
            checksum_algorithm=checksum[0].value if checksum is not None else "",
            checksum=checksum[1] if checksum is not None else "",
        )
        deps.blobs.stage(spooled)  # outside the transaction: a remote store's upload
        if not deps.store.put_object(obj, lambda: deps.blobs.adopt(spooled), deps.blobs.delete):
            raise s3.no_such_bucket(bucket)
    except BaseException:
        deps.blobs.discard(spooled)
        raise
    return {"ETag": obj.etag, **checksum_answer(obj.checksum_algorithm, obj.checksum, obj.crc32)}


@dataclass(frozen=True)
class IncomingBody:
    """A request body about to be stored (PutObject's, UploadPart's), with what the request says
    of it. :meth:`of` refuses what can be refused before the first byte is read (a client sending
    ``Expect: 100-continue`` then sends nothing); :meth:`spool` reads it to the blob store (an
    aws-chunked body decoded on the way, its chunk signatures and trailer checked) and checks it."""

    raw: Iterator[bytes]
    payload: str  # the signed x-amz-content-sha256
    md5_header: str | None
    expected_md5: bytes | None
    checksum: tuple[Algorithm, str] | None  # sent as a header
    length: int  # of the data (an aws-chunked body's x-amz-decoded-content-length)
    chunked: ChunkedRequest | None = None
    trailer: Algorithm | None = None  # the checksum an aws-chunked body's trailer carries

    @classmethod
    def of(cls, ctx: RequestContext, params: dict[str, Any], max_size: int) -> IncomingBody:
        raw, declared = body_chunks(params.get("Body"))
        chunked = ctx.aws_chunked
        # An aws-chunked body's length is its x-amz-decoded-content-length (SDKs send the framing
        # itself with Transfer-Encoding: chunked); any other needs a Content-Length.
        if declared is None and chunked is None:
            raise AwsError(
                "You must provide the Content-Length HTTP header.",
                code="MissingContentLength",
                status=411,
                sender_fault=True,
            )
        length, trailer = declared or 0, None
        if chunked is not None:
            length = decoded_length(chunked.decoded_length)
            announced = announced_trailer(chunked.trailer)
            if announced is not None:
                trailer = Algorithm.from_header(announced)
                if trailer is None or not chunked.framing.trailer:
                    raise malformed_trailer()
        if length > max_size:
            raise s3.s3_error(
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                400,
                ProposedSize=str(length),
                MaxSizeAllowed=str(max_size),
            )
        md5_header = params.get("ContentMD5")
        expected_md5 = s3.content_md5(md5_header) if md5_header is not None else None
        checksum = checksum_header(params)
        if checksum is not None:
            if trailer is not None:
                raise s3.invalid_request(MULTIPLE_CHECKSUMS)
            decode_value(*checksum)  # a malformed value is refused before the body is read
        algorithm = checksum[0] if checksum is not None else trailer
        if algorithm is Algorithm.CRC64NVME and length > MAX_CRC64NVME_BODY:
            # CRC64NVME is computed in Python (about 5 MB/s): bounded, so no request can hold a
            # core for minutes. SDKs send it only when asked to.
            raise s3.not_implemented_header("x-amz-checksum-crc64nvme")
        return cls(raw, ctx.payload_hash, md5_header, expected_md5, checksum, length, chunked, trailer)

    @property
    def algorithm(self) -> Algorithm | None:
        """The additional checksum the body is checked with (and its object keeps)."""
        return self.checksum[0] if self.checksum is not None else self.trailer

    def spool(self, deps: S3Deps) -> tuple[Spooled, tuple[Algorithm, str] | None]:
        """The body in a spool file, checked against what the request said of it (the spool is
        discarded when it does not match), and the additional checksum it was checked with."""
        data: Iterable[bytes] = self.raw
        decoder: ChunkedBody | None = None
        if self.chunked is not None:
            decoder = ChunkedBody(
                self.raw,
                self.chunked.framing,
                length=self.length,
                signing=self.chunked.signing,
                trailer=self.trailer.header if self.trailer is not None else None,
            )
            data = decoder
        algorithm = self.algorithm
        tee: Tee | None = None
        if algorithm in (Algorithm.CRC32C, Algorithm.CRC64NVME):
            assert algorithm is not None
            tee = Tee(data, algorithm)
            data = tee
        spooled = deps.blobs.spool(data, sha1=algorithm is Algorithm.SHA1)
        try:
            payload = self.payload if decoder is None else UNSIGNED_PAYLOAD
            verify_body(spooled, payload, self.expected_md5, self.md5_header)
            checksum = self.checksum
            if checksum is None and decoder is not None and self.trailer is not None:
                checksum = (self.trailer, decoder.trailers[self.trailer.header])
            if checksum is not None:
                sent = decode_value(*checksum)
                if not hmac.compare_digest(sent, _computed(spooled, checksum[0], tee)):
                    raise bad_checksum(checksum[0])
                checksum = (checksum[0], encode_value(sent))  # kept and answered as S3 writes it
        except BaseException:
            deps.blobs.discard(spooled)
            raise
        return spooled, checksum


def _computed(spooled: Spooled, algorithm: Algorithm, tee: Tee | None) -> bytes:
    if algorithm is Algorithm.CRC32:
        return spooled.crc32.to_bytes(4, "big")
    if algorithm is Algorithm.SHA1:
        return spooled.sha1 or b""
    if algorithm is Algorithm.SHA256:
        return bytes.fromhex(spooled.sha256)
    assert tee is not None
    return tee.digest()


def checksum_answer(algorithm: str, value: str, crc32: str) -> dict[str, str]:
    """The checksum members S3 answers for an object or part: its additional checksum when its
    upload chose one, else its CRC32 (S3's default)."""
    if algorithm:
        return {Algorithm(algorithm).member: value, "ChecksumType": "FULL_OBJECT"}
    return {"ChecksumCRC32": crc32, "ChecksumType": "FULL_OBJECT"}


def verify_body(spooled: Spooled, payload: str, expected_md5: bytes | None, md5_header: str | None) -> None:
    """The body against what the request said of it: the signed SHA-256 (a hash; nothing to check
    for UNSIGNED-PAYLOAD or an aws-chunked form, whose chunks were checked as they came) and
    Content-MD5."""
    if payload and payload != UNSIGNED_PAYLOAD and payload != spooled.sha256:
        raise s3.content_sha256_mismatch(payload, spooled.sha256)
    if expected_md5 is not None and not hmac.compare_digest(expected_md5, spooled.md5):
        raise s3.bad_digest(md5_header or "", spooled.md5)


# -- GetObject / HeadObject -----------------------------------------------------------------------


def _object(deps: S3Deps, ctx: RequestContext, params: Mapping[str, Any], action: str) -> StoredObject:
    bucket, key = params["Bucket"], params["Key"]
    bucket_for(deps, ctx, bucket, action, key, expected_owner=params.get("ExpectedBucketOwner"))
    obj = deps.store.get_object(bucket, key)
    if obj is None:
        raise s3.no_such_key(key)
    return obj


def _described(obj: StoredObject) -> dict[str, Any]:
    """What GetObject and HeadObject answer of an object (headers)."""
    out: dict[str, Any] = {
        "AcceptRanges": "bytes",
        "LastModified": obj.modified.replace(microsecond=0),
        "ContentLength": obj.size,
        "ETag": obj.etag,
        "Metadata": dict(obj.metadata),
    }
    out.update(obj.headers)
    if obj.tags:
        out["TagCount"] = len(obj.tags)
    return out


def _preconditions(params: Mapping[str, Any]) -> Preconditions:
    return Preconditions(
        if_match=params.get("IfMatch"),
        if_none_match=params.get("IfNoneMatch"),
        if_modified_since=params.get("IfModifiedSince"),
        if_unmodified_since=params.get("IfUnmodifiedSince"),
    )


def _check_conditions(ctx: RequestContext, params: Mapping[str, Any], obj: StoredObject) -> None:
    now = dt.datetime.fromtimestamp(ctx.now_ms / 1000, dt.UTC)
    decision, header = s3.evaluate(_preconditions(params), obj.etag, obj.modified, now)
    if decision is Condition.PRECONDITION_FAILED:
        raise s3.precondition_failed(header)
    if decision is Condition.NOT_MODIFIED:
        raise s3.not_modified(obj.etag, obj.modified.replace(microsecond=0))


def get_object(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    obj = _object(deps, ctx, params, "s3:GetObject")
    _check_conditions(ctx, params, obj)
    out = _described(obj)
    for override, member in _OVERRIDES.items():
        value = params.get(override)
        if value is not None:
            out[member] = value if isinstance(value, str) else s3.http_date(value)
    wanted = s3.byte_range(params.get("Range"), obj.size)
    path = str(deps.blobs.path(obj.sha256))
    if wanted is None:
        out["Body"] = FileSlice(path, 0, obj.size)
        if params.get("ChecksumMode") == "ENABLED":
            out.update(checksum_answer(obj.checksum_algorithm, obj.checksum, obj.crc32))
        return out
    out["Body"] = FileSlice(path, wanted.first, wanted.length)
    out["ContentLength"] = wanted.length
    out["ContentRange"] = wanted.content_range
    out[HTTP_STATUS] = 206
    return out


def head_object(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    obj = _object(deps, ctx, params, "s3:GetObject")
    _check_conditions(ctx, params, obj)
    out = _described(obj)
    wanted = s3.byte_range(params.get("Range"), obj.size)
    if wanted is not None:
        out["ContentLength"] = wanted.length
        out["ContentRange"] = wanted.content_range
        out[HTTP_STATUS] = 206
    if params.get("ChecksumMode") == "ENABLED":
        out.update(checksum_answer(obj.checksum_algorithm, obj.checksum, obj.crc32))
    return out


# -- DeleteObject(s) ------------------------------------------------------------------------------

MAX_DELETE_KEYS: Final = 1000


def delete_object(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    bucket, key = params["Bucket"], params["Key"]
    bucket_for(deps, ctx, bucket, "s3:DeleteObject", key, expected_owner=params.get("ExpectedBucketOwner"))
    if params.get("VersionId") not in (None, "null"):
        raise s3.invalid_argument("Invalid version id specified", "versionId", params["VersionId"])
    # S3 answers 204 whether or not the key existed.
    deps.store.delete_objects(bucket, (key,), deps.blobs.delete)
    return {}


def delete_objects(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    bucket = params["Bucket"]
    bucket_for(deps, ctx, bucket, "s3:DeleteObject", expected_owner=params.get("ExpectedBucketOwner"))
    delete = params.get("Delete")
    if not isinstance(delete, dict):
        raise s3.malformed_xml()
    objects = delete.get("Objects") or []
    if not objects or len(objects) > MAX_DELETE_KEYS or any(not o.get("Key") for o in objects):
        raise s3.malformed_xml()
    errors: list[DeleteError] = []
    deleted: list[DeletedObject] = []
    for entry in objects:
        version = entry.get("VersionId")
        if version not in (None, "null"):
            errors.append(
                DeleteError(
                    Key=entry.get("Key", ""),
                    VersionId=version,
                    Code="NoSuchVersion",
                    Message="The specified version does not exist.",
                )
            )
        elif not may(ctx, "DeleteObject", {"Bucket": bucket, "Key": entry.get("Key", "")}):
            errors.append(
                DeleteError(Key=entry.get("Key", ""), Code="AccessDenied", Message=s3.ACCESS_DENIED)
            )
        else:
            deleted.append(DeletedObject(Key=entry.get("Key", "")))
    deps.store.delete_objects(bucket, [d.get("Key", "") for d in deleted], deps.blobs.delete)
    out: dict[str, Any] = {}
    if deleted and not delete.get("Quiet"):
        out["Deleted"] = deleted
    if errors:
        out["Errors"] = errors
    return out


# -- CopyObject -----------------------------------------------------------------------------------


def copy_object(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    bucket, key = params["Bucket"], params["Key"]
    source_bucket, source_key, version = s3.copy_source(params["CopySource"])
    bucket_for(deps, ctx, bucket, "s3:PutObject", key, expected_owner=params.get("ExpectedBucketOwner"))
    bucket_for(
        deps,
        ctx,
        source_bucket,
        "s3:GetObject",
        source_key,
        expected_owner=params.get("ExpectedSourceBucketOwner"),
    )
    s3.check_key(key)
    if version not in (None, "null"):
        raise s3.invalid_argument("Invalid version id specified", "x-amz-copy-source", params["CopySource"])
    source = deps.store.get_object(source_bucket, source_key)
    if source is None:
        raise s3.no_such_key(source_key)
    check_copy_conditions(ctx, params, source)
    directive = params.get("MetadataDirective", "COPY")
    tagging = params.get("TaggingDirective", "COPY")
    if directive not in ("COPY", "REPLACE"):
        raise s3.invalid_argument("Unknown metadata directive.", "x-amz-metadata-directive", directive)
    if tagging not in ("COPY", "REPLACE"):
        raise s3.invalid_argument("Unknown tagging directive.", "x-amz-tagging-directive", tagging)
    if (bucket, key) == (source_bucket, source_key) and directive == "COPY":
        raise s3.copy_to_itself()
    if directive == "REPLACE":
        metadata = dict(params.get("Metadata") or {})
        s3.check_metadata(metadata)
        headers = system_headers(params)
    else:
        metadata, headers = dict(source.metadata), dict(source.headers)
    tags = user_tags(params.get("Tagging")) if tagging == "REPLACE" else dict(source.tags)
    obj = StoredObject(
        bucket=bucket,
        key=key,
        sha256=source.sha256,
        size=source.size,
        etag=source.etag,
        crc32=source.crc32,
        modified_ms=ctx.now_ms,
        headers=headers,
        metadata=metadata,
        tags=tags,
        checksum_algorithm=source.checksum_algorithm,
        checksum=source.checksum,
    )

    def still_there() -> None:
        # Inside the commit: the source's bytes (shared by content) must not have been freed by a
        # delete since they were looked up.
        if not deps.blobs.still_held(source.sha256):
            raise s3.no_such_key(source_key)

    if not deps.store.put_object(obj, still_there, deps.blobs.delete):
        raise s3.no_such_bucket(bucket)
    result = CopyObjectResult(
        ETag=obj.etag,
        LastModified=iso_millis(obj.modified),
        ChecksumType="FULL_OBJECT",
        ChecksumCRC32=obj.crc32,
    )
    return {"CopyObjectResult": result}


def check_copy_conditions(ctx: RequestContext, params: Mapping[str, Any], source: StoredObject) -> None:
    """``x-amz-copy-source-if-*``: any that fails is 412 PreconditionFailed (a copy has no 304)."""
    now = dt.datetime.fromtimestamp(ctx.now_ms / 1000, dt.UTC)
    conditions = Preconditions(
        if_match=params.get("CopySourceIfMatch"),
        if_none_match=params.get("CopySourceIfNoneMatch"),
        if_modified_since=params.get("CopySourceIfModifiedSince"),
        if_unmodified_since=params.get("CopySourceIfUnmodifiedSince"),
    )
    decision, header = s3.evaluate(conditions, source.etag, source.modified, now)
    if decision is not Condition.SERVE:
        raise s3.precondition_failed(f"x-amz-copy-source-{header}")


# -- tagging --------------------------------------------------------------------------------------


def get_object_tagging(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    obj = _object(deps, ctx, params, "s3:GetObjectTagging")
    return {"TagSet": [Tag(Key=k, Value=v) for k, v in obj.tags.items()]}


def put_object_tagging(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    bucket, key = params["Bucket"], params["Key"]
    bucket_for(
        deps, ctx, bucket, "s3:PutObjectTagging", key, expected_owner=params.get("ExpectedBucketOwner")
    )
    tagging = params.get("Tagging")
    if not isinstance(tagging, dict):
        raise s3.malformed_xml()
    tags = s3.check_tags(tagging.get("TagSet") or [], limit=s3.MAX_OBJECT_TAGS)
    if not deps.store.set_object_tags(bucket, key, tags):
        raise s3.no_such_key(key)
    return {}


def delete_object_tagging(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    bucket, key = params["Bucket"], params["Key"]
    bucket_for(
        deps, ctx, bucket, "s3:DeleteObjectTagging", key, expected_owner=params.get("ExpectedBucketOwner")
    )
    if not deps.store.set_object_tags(bucket, key, {}):
        raise s3.no_such_key(key)
    return {}


HANDLERS = {
    "PutObject": put_object,
    "GetObject": get_object,
    "HeadObject": head_object,
    "DeleteObject": delete_object,
    "DeleteObjects": delete_objects,
    "CopyObject": copy_object,
    "GetObjectTagging": get_object_tagging,
    "PutObjectTagging": put_object_tagging,
    "DeleteObjectTagging": delete_object_tagging,
}
