"""ListObjects and ListObjectsV2 (the page rules are :mod:`lamina.domain.s3_listing`).

The two differ only in how a page says where the next one starts (S3 API Reference: V2's opaque
``ContinuationToken``/``StartAfter`` and ``KeyCount``; V1's ``Marker``/``NextMarker``, the latter
only with a delimiter) and in ``Owner`` (V1 always lists it, V2 on ``FetchOwner``): one listing,
two wrappers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lamina.domain.clock import iso_millis_ms
from lamina.domain.s3 import ListedObject
from lamina.domain.s3_listing import (
    Page,
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


def _fetch(deps: S3Deps, bucket: str) -> Callable[[str | None, bool, str, int], Sequence[ListedObject]]:
    return lambda lower, inclusive, prefix, limit: deps.store.list_objects(
        bucket, lower, inclusive, prefix, limit
    )


def _entry(obj: ListedObject, encode: Callable[[str], str], with_owner: Owner | None) -> S3Object:
    entry: S3Object = {
        "Key": encode(obj.key),
        "LastModified": iso_millis_ms(obj.modified_ms),
        "ETag": obj.etag,
        "ChecksumAlgorithm": [obj.checksum_algorithm.upper() or "CRC32"],
        "ChecksumType": "FULL_OBJECT",
        "Size": obj.size,
        "StorageClass": "STANDARD",
    }
    if with_owner is not None:
        entry["Owner"] = with_owner
    return entry


def _same(text: str) -> str:
    return text


def _list(
    deps: S3Deps,
    ctx: RequestContext,
    params: dict[str, Any],
    resume: Callable[[], str | None],
    *,
    with_owner: bool,
) -> tuple[dict[str, Any], Page[ListedObject], Callable[[str], str]]:
    """The members both answers share, the page, and how names are written. ``resume`` says
    where the page starts (its errors come after the bucket's, the encoding's and MaxKeys')."""
    bucket = bucket_for(
        deps, ctx, params["Bucket"], "s3:ListBucket", expected_owner=params.get("ExpectedBucketOwner")
    )
    encoded = check_encoding_type(params.get("EncodingType"))
    encode = url_encode if encoded else _same
    max_keys = check_max_keys(params.get("MaxKeys"))
    prefix = params.get("Prefix") or ""
    delimiter = params.get("Delimiter") or ""
    page = list_page(
        _fetch(deps, bucket.name), prefix=prefix, delimiter=delimiter, max_keys=max_keys, after=resume()
    )
    out: dict[str, Any] = {
        "IsTruncated": page.truncated,
        "Name": bucket.name,
        "Prefix": encode(prefix),
        "MaxKeys": max_keys,
    }
    owner_of = owner(bucket.account) if with_owner else None
    if page.contents:
        out["Contents"] = [_entry(o, encode, owner_of) for o in page.contents]
    if page.common_prefixes:
        out["CommonPrefixes"] = [CommonPrefix(Prefix=encode(p)) for p in page.common_prefixes]
    if delimiter:
        out["Delimiter"] = encode(delimiter)
    if encoded:
        out["EncodingType"] = "url"
    return out, page, encode


def list_objects_v2(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    token = params.get("ContinuationToken")
    start_after = params.get("StartAfter")

    def resume() -> str | None:
        return token_position(token) if token is not None else start_after or None

    out, page, encode = _list(deps, ctx, params, resume, with_owner=bool(params.get("FetchOwner")))
    out["KeyCount"] = page.count
    if token is not None:
        out["ContinuationToken"] = token
    if start_after is not None:
        out["StartAfter"] = encode(start_after)
    if page.truncated and page.last is not None:
        out["NextContinuationToken"] = continuation_token(page.last)
    return out


def list_objects(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    marker = params.get("Marker") or ""
    out, page, encode = _list(deps, ctx, params, lambda: marker or None, with_owner=True)
    out["Marker"] = encode(marker)
    if out.get("Delimiter") is not None and page.truncated and page.last is not None:
        out["NextMarker"] = encode(page.last)
    return out


HANDLERS = {"ListObjectsV2": list_objects_v2, "ListObjects": list_objects}
