"""S3 (rest-xml, botocore model ``s3``): buckets and objects, bodies streamed through the
content-addressed blob store.

Served: CreateBucket, HeadBucket, ListBuckets, DeleteBucket, GetBucketLocation,
GetBucketVersioning (never enabled), Put/Get/DeleteBucketTagging; PutObject, GetObject (ranges,
conditions), HeadObject, DeleteObject, DeleteObjects, CopyObject, ListObjects, ListObjectsV2,
Get/Put/DeleteObjectTagging; multipart uploads (Create, UploadPart, UploadPartCopy, Complete, Abort,
ListParts, ListMultipartUploads); bodies plain or aws-chunked (signed chunks, trailing checksums:
:mod:`lamina.domain.s3_chunked`); Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus (evaluated by
the IAM authorizer, :func:`lamina.services.s3.access.bucket_access` being what it reads). Not yet:
versioning, ACLs.
"""

from __future__ import annotations

from typing import Any

from lamina.services.base import ServiceBinding
from lamina.services.s3 import buckets, listing, multipart, objects
from lamina.services.s3.access import bucket_access, bucket_for, policy_allows
from lamina.services.s3.deps import S3Deps

__all__ = ["S3Deps", "binding", "bucket_access", "bucket_for", "policy_allows"]

UNSERVED = {
    "PutBucketVersioning": "object versioning, which lamina does not serve",
}


def binding(loader: Any, deps: S3Deps) -> ServiceBinding[S3Deps]:
    """S3's operations bound to its botocore model (``loader``: a botocore session)."""
    return ServiceBinding(
        model=loader.get_service_model("s3"),
        deps=deps,
        handlers={**buckets.HANDLERS, **objects.HANDLERS, **listing.HANDLERS, **multipart.HANDLERS},
        unserved=UNSERVED,
        schema_validation=False,
        # Request bodies handed over as streams (objects and parts may be GBs).
        streamed=frozenset({"PutObject", "UploadPart"}),
    )
