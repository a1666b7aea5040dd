"""S3's rows of the authorization table (pure).

Facts from the Service Authorization Reference, "Actions, resources, and condition keys for Amazon
S3", and the S3 User Guide ("Required permissions for Amazon S3 API operations"): resource types
``bucket`` (``arn:aws:s3:::BUCKET``) and ``object`` (``arn:aws:s3:::BUCKET/KEY``), with no region
and no account (who owns a bucket is S3's to know: the handlers check it); HeadBucket and the
object listings need ``s3:ListBucket`` on the bucket (with ``s3:prefix``, ``s3:delimiter`` and
``s3:max-keys``); HeadObject needs ``s3:GetObject``; DeleteBucketTagging needs
``s3:PutBucketTagging``; CopyObject needs ``s3:PutObject`` on the target and ``s3:GetObject`` on the
source; DeleteObjects needs ``s3:DeleteObject`` on each key (decided per key by its handler); the multipart operations need
``s3:PutObject`` (Create, UploadPart, Complete), ``s3:AbortMultipartUpload``,
``s3:ListMultipartUploadParts`` and ``s3:ListBucketMultipartUploads``; ListBuckets is
``s3:ListAllMyBuckets`` on ``*``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from lamina.domain.actions_spec import Call, Check, ContextValue, Spec


def bucket(call: Call) -> str:
    return f"arn:aws:s3:::{call.text('Bucket') or ''}"


def obj(call: Call) -> str:
    return f"arn:aws:s3:::{call.text('Bucket') or ''}/{call.text('Key') or ''}"


# Operations with no check of their own: their handler asks the authorize stage for each resource.
DECIDED_BY_HANDLER = frozenset({"DeleteObjects"})


def deleted_objects(call: Call) -> tuple[str, ...]:
    """DeleteObjects: nothing for the request as a whole. S3 decides ``s3:DeleteObject`` key by key
    and answers a refused key with its own ``<Error>`` (AccessDenied) while the others are deleted
    (S3 API Reference, DeleteObjects), so its handler asks the authorize stage for each key."""
    return ()


def list_keys(call: Call) -> dict[str, ContextValue]:
    """``s3:prefix``, ``s3:delimiter`` and ``s3:max-keys`` of a listing, when sent."""
    out: dict[str, ContextValue] = {}
    for member, key in (("Prefix", "s3:prefix"), ("Delimiter", "s3:delimiter")):
        value = call.text(member)
        if value is not None:
            out[key] = value
    max_keys = call.params.get("MaxKeys")
    if isinstance(max_keys, int):
        out["s3:max-keys"] = str(max_keys)
    return out


def copy_source(call: Call) -> tuple[Check, ...]:
    """CopyObject (and UploadPartCopy) read the source: ``s3:GetObject`` on it."""
    text = call.text("CopySource")
    if not text:
        return ()
    path = unquote(text.partition("?")[0]).lstrip("/")
    return (Check("s3:GetObject", f"arn:aws:s3:::{path}"),)


def tagging_header(call: Call) -> tuple[Check, ...]:
    """PutObject with ``x-amz-tagging`` also needs ``s3:PutObjectTagging``."""
    if not call.text("Tagging"):
        return ()
    return (Check("s3:PutObjectTagging", obj(call)),)


TABLE: Mapping[str, Spec] = {
    "ListBuckets": Spec("s3:ListAllMyBuckets"),
    "CreateBucket": Spec("s3:CreateBucket", bucket),
    "HeadBucket": Spec("s3:ListBucket", bucket),
    "DeleteBucket": Spec("s3:DeleteBucket", bucket),
    "GetBucketLocation": Spec("s3:GetBucketLocation", bucket),
    "GetBucketVersioning": Spec("s3:GetBucketVersioning", bucket),
    "PutBucketVersioning": Spec("s3:PutBucketVersioning", bucket),
    "GetBucketTagging": Spec("s3:GetBucketTagging", bucket),
    "PutBucketTagging": Spec("s3:PutBucketTagging", bucket),
    "DeleteBucketTagging": Spec("s3:PutBucketTagging", bucket),
    "GetBucketPolicy": Spec("s3:GetBucketPolicy", bucket),
    "PutBucketPolicy": Spec("s3:PutBucketPolicy", bucket),
    "DeleteBucketPolicy": Spec("s3:DeleteBucketPolicy", bucket),
    "GetBucketPolicyStatus": Spec("s3:GetBucketPolicyStatus", bucket),
    "ListObjects": Spec("s3:ListBucket", bucket, (list_keys,)),
    "ListObjectsV2": Spec("s3:ListBucket", bucket, (list_keys,)),
    "ListMultipartUploads": Spec("s3:ListBucketMultipartUploads", bucket),
    "PutObject": Spec("s3:PutObject", obj, also=(tagging_header,)),
    "GetObject": Spec("s3:GetObject", obj),
    "HeadObject": Spec("s3:GetObject", obj),
    "DeleteObject": Spec("s3:DeleteObject", obj),
    "DeleteObjects": Spec("s3:DeleteObject", deleted_objects),
    "CopyObject": Spec("s3:PutObject", obj, also=(copy_source, tagging_header)),
    "GetObjectTagging": Spec("s3:GetObjectTagging", obj),
    "PutObjectTagging": Spec("s3:PutObjectTagging", obj),
    "DeleteObjectTagging": Spec("s3:DeleteObjectTagging", obj),
    "CreateMultipartUpload": Spec("s3:PutObject", obj),
    "UploadPart": Spec("s3:PutObject", obj),
    "UploadPartCopy": Spec("s3:PutObject", obj, also=(copy_source,)),
    "CompleteMultipartUpload": Spec("s3:PutObject", obj),
    "AbortMultipartUpload": Spec("s3:AbortMultipartUpload", obj),
    "ListParts": Spec("s3:ListMultipartUploadParts", obj),
}
