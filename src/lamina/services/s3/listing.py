"""ListObjects and ListObjectsV2 (the page rules are :mod:`lamina.domain.s3_listing`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lamina.domain.clock import iso_millis
from lamina.domain.s3 import StoredObject
from lamina.domain.s3_listing import (
    check_encoding_type,
    check_max_keys,
    continuation_token,
    list_page,
    token_position,
    url_encode,
)
from lamina.domain.s3_models import CommonPrefix, Owner, S3Object
from lamina.services.base import RequestContext
from lamina.services.s3.access import bucket_for
from lamina.services.s3.buckets import owner
from lamina.services.s3.deps import S3Deps


def _fetch(deps: S3Deps, bucket: str) -> Callable[[str | None, bool, str, int], Sequence[StoredObject]]:
    return lambda lower, inclusive, prefix, limit: deps.store.list_objects(
        bucket, lower, inclusive, prefix, limit
    )


def _entry(obj: StoredObject, encode: Callable[[str], str], with_owner: Owner | None) -> S3Object:
    entry: S3Object = {
        "Key": encode(obj.key),
        "LastModified": iso_millis(obj.modified),
        "ETag": obj.etag,
        "ChecksumAlgorithm": ["CRC32"],
        "ChecksumType": "FULL_OBJECT",
        "Size": obj.size,
        "StorageClass": "STANDARD",
    }
    if with_owner is not None:
        entry["Owner"] = with_owner
    return entry


def _same(text: str) -> str:
    return text


def list_objects_v2(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    bucket = bucket_for(
        deps, ctx, params["Bucket"], "s3:ListBucket", expected_owner=params.get("ExpectedBucketOwner")
    )
    encoded = check_encoding_type(params.get("EncodingType"))
    encode = url_encode if encoded else _same
    max_keys = check_max_keys(params.get("MaxKeys"))
    prefix = params.get("Prefix") or ""
    delimiter = params.get("Delimiter") or ""
    token = params.get("ContinuationToken")
    start_after = params.get("StartAfter")
    if token is not None:
        after: str | None = token_position(token)
    else:
        after = start_after or None
    page = list_page(
        _fetch(deps, bucket.name), prefix=prefix, delimiter=delimiter, max_keys=max_keys, after=after
    )
    out: dict[str, Any] = {
        "IsTruncated": page.truncated,
        "Name": bucket.name,
        "Prefix": encode(prefix),
        "MaxKeys": max_keys,
        "KeyCount": page.count,
    }
    owner_of = owner(bucket.account) if params.get("FetchOwner") else None
    if page.contents:
        out["Contents"] = [_entry(o, encode, owner_of) for o in page.contents]
    if page.common_prefixes:
        out["CommonPrefixes"] = [CommonPrefix(Prefix=encode(p)) for p in page.common_prefixes]
    if delimiter:
        out["Delimiter"] = encode(delimiter)
    if encoded:
        out["EncodingType"] = "url"
    if token is not None:
        out["ContinuationToken"] = token
    if start_after is not None:
        out["StartAfter"] = encode(start_after)
    if page.truncated and page.last is not None:
        out["NextContinuationToken"] = continuation_token(page.last)
    return out


def list_objects(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    bucket = bucket_for(
        deps, ctx, params["Bucket"], "s3:ListBucket", expected_owner=params.get("ExpectedBucketOwner")
    )
    encoded = check_encoding_type(params.get("EncodingType"))
    encode = url_encode if encoded else _same
    max_keys = check_max_keys(params.get("MaxKeys"))
    prefix = params.get("Prefix") or ""
    delimiter = params.get("Delimiter") or ""
    marker = params.get("Marker") or ""
    page = list_page(
        _fetch(deps, bucket.name), prefix=prefix, delimiter=delimiter, max_keys=max_keys, after=marker or None
    )
    out: dict[str, Any] = {
        "IsTruncated": page.truncated,
        "Marker": encode(marker),
        "Name": bucket.name,
        "Prefix": encode(prefix),
        "MaxKeys": max_keys,
    }
    owner_of = owner(bucket.account)
    if page.contents:
        out["Contents"] = [_entry(o, encode, owner_of) for o in page.contents]
    if page.common_prefixes:
        out["CommonPrefixes"] = [CommonPrefix(Prefix=encode(p)) for p in page.common_prefixes]
    if delimiter:
        out["Delimiter"] = encode(delimiter)
        if page.truncated and page.last is not None:
            out["NextMarker"] = encode(page.last)
    if encoded:
        out["EncodingType"] = "url"
    return out


HANDLERS = {"ListObjectsV2": list_objects_v2, "ListObjects": list_objects}
