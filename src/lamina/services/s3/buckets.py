"""Bucket operations: CreateBucket, HeadBucket, ListBuckets, DeleteBucket, GetBucketLocation,
GetBucketVersioning, Put/Get/DeleteBucketTagging, Put/Get/DeleteBucketPolicy,
GetBucketPolicyStatus."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from lamina.domain import s3, s3_policy
from lamina.domain.clock import iso_millis
from lamina.domain.s3 import Bucket
from lamina.domain.s3_listing import continuation_token, token_position
from lamina.domain.s3_models import Owner, S3Bucket, Tag
from lamina.errors import AwsError
from lamina.services.base import HTTP_STATUS, RequestContext
from lamina.services.s3.access import bucket_for
from lamina.services.s3.deps import S3Deps
from lamina.store import BucketDeletion

MAX_BUCKETS = 10_000  # ListBuckets' MaxBuckets range (1-10000)


def bucket_arn(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def owner(account: str) -> Owner:
    """The Owner element: S3's canonical user ID (64 hex digits) of the account."""
    return Owner(ID=hashlib.sha256(f"lamina-canonical-user:{account}".encode()).hexdigest())


def create_bucket(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["Bucket"]
    if not s3.bucket_name_ok(name):
        raise s3.invalid_bucket_name(name)
    config = params.get("CreateBucketConfiguration") or {}
    region = s3.bucket_region(ctx.region, config.get("LocationConstraint"))
    tags = s3.check_tags(config.get("Tags") or [], limit=s3.MAX_BUCKET_TAGS) if config.get("Tags") else None
    existing = deps.store.create_bucket(Bucket(name, ctx.account_id, region, ctx.now_ms, tags))
    if existing is not None:
        if existing.account != ctx.account_id:
            raise s3.bucket_already_exists(name)
        # us-east-1 answers a plain re-create of your own bucket with 200 and changes nothing.
        if not (ctx.region == s3.US_EAST_1 and existing.region == s3.US_EAST_1 and tags is None):
            raise s3.bucket_already_owned(name)
    location = f"/{name}" if region == s3.US_EAST_1 else f"{ctx.base_url}/{name}/"
    return {"Location": location, "BucketArn": bucket_arn(name)}


def head_bucket(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    bucket = bucket_for(
        deps, ctx, params["Bucket"], "s3:ListBucket", expected_owner=params.get("ExpectedBucketOwner")
    )
    return {"BucketArn": bucket_arn(bucket.name), "BucketRegion": bucket.region, "AccessPointAlias": False}


def list_buckets(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    limit = params.get("MaxBuckets")
    if limit is not None and not 1 <= limit <= MAX_BUCKETS:
        raise s3.invalid_argument(
            "Argument max-buckets must be between 1 and 10000", "max-buckets", str(limit)
        )
    after = None
    token = params.get("ContinuationToken")
    if token:
        after = token_position(token)
    region = params.get("BucketRegion")
    if region is not None and region not in s3.REGIONS:
        raise s3.invalid_argument(f"Argument value {region} is not a valid AWS Region", "bucket-region")
    prefix = params.get("Prefix") or ""
    found = deps.store.list_buckets(ctx.account_id, prefix=prefix, after=after, region=region)
    page = found[: limit or MAX_BUCKETS]
    out: dict[str, Any] = {
        "Buckets": [
            S3Bucket(
                Name=b.name,
                CreationDate=iso_millis(dt.datetime.fromtimestamp(b.created_ms / 1000, dt.UTC)),
                BucketRegion=b.region,
                BucketArn=bucket_arn(b.name),
            )
            for b in page
        ],
        "Owner": owner(ctx.account_id),
    }
    if len(found) > len(page):
        out["ContinuationToken"] = continuation_token(page[-1].name)
    if prefix:
        out["Prefix"] = prefix
    return out


def delete_bucket(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["Bucket"]
    bucket_for(deps, ctx, name, "s3:DeleteBucket", expected_owner=params.get("ExpectedBucketOwner"))
    result = deps.store.delete_bucket(name)
    if result is BucketDeletion.NOT_EMPTY:
        raise s3.bucket_not_empty(name)
    if result is BucketDeletion.MISSING:
        raise s3.no_such_bucket(name)
    return {}


def get_bucket_location(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    bucket = bucket_for(
        deps, ctx, params["Bucket"], "s3:GetBucketLocation", expected_owner=params.get("ExpectedBucketOwner")
    )
    return {"LocationConstraint": s3.location_constraint(bucket.region)}


def get_bucket_versioning(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    # Versioning is never enabled in lamina: S3 answers an empty configuration for such a bucket.
    bucket_for(
        deps,
        ctx,
        params["Bucket"],
        "s3:GetBucketVersioning",
        expected_owner=params.get("ExpectedBucketOwner"),
    )
    return {}


def put_bucket_tagging(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["Bucket"]
    bucket_for(deps, ctx, name, "s3:PutBucketTagging", expected_owner=params.get("ExpectedBucketOwner"))
    tagging = params.get("Tagging")
    if not isinstance(tagging, dict):
        raise s3.malformed_xml()
    tags = s3.check_tags(tagging.get("TagSet") or [], limit=s3.MAX_BUCKET_TAGS)
    if not deps.store.set_bucket_tags(name, tags or None):
        raise s3.no_such_bucket(name)
    return {}


def get_bucket_tagging(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    bucket = bucket_for(
        deps, ctx, params["Bucket"], "s3:GetBucketTagging", expected_owner=params.get("ExpectedBucketOwner")
    )
    if not bucket.tags:
        raise s3.no_such_tag_set(bucket.name)
    return {"TagSet": [Tag(Key=k, Value=v) for k, v in bucket.tags.items()]}


def delete_bucket_tagging(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["Bucket"]
    bucket_for(deps, ctx, name, "s3:PutBucketTagging", expected_owner=params.get("ExpectedBucketOwner"))
    if not deps.store.set_bucket_tags(name, None):
        raise s3.no_such_bucket(name)
    return {}


def _owner_only(ctx: RequestContext, bucket: Bucket, method: str) -> None:
    """A bucket's policy is managed from its owner's account only: "If you have the correct
    permissions, but you're not using an identity that belongs to the bucket owner's account,
    Amazon S3 returns a 405 Method Not Allowed error" (S3 API Reference, PutBucketPolicy,
    GetBucketPolicy, DeleteBucketPolicy)."""
    if bucket.account != ctx.account_id:
        raise AwsError(
            "The specified method is not allowed against this resource.",
            code="MethodNotAllowed",
            status=405,
            sender_fault=True,
            fields={"Method": method, "ResourceType": "BUCKET"},
        )


def put_bucket_policy(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["Bucket"]
    bucket = bucket_for(
        deps, ctx, name, "s3:PutBucketPolicy", expected_owner=params.get("ExpectedBucketOwner")
    )
    _owner_only(ctx, bucket, "PUT")
    text = params.get("Policy") or ""
    md5_header = params.get("ContentMD5")
    if md5_header is not None:
        calculated = hashlib.md5(text.encode(), usedforsecurity=False).digest()
        if calculated != s3.content_md5(md5_header):
            raise s3.bad_digest(md5_header, calculated)
    s3_policy.check_bucket_policy(text, name)
    if not deps.store.set_bucket_policy(name, text):
        raise s3.no_such_bucket(name)
    return {HTTP_STATUS: 204}


def get_bucket_policy(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["Bucket"]
    bucket = bucket_for(
        deps, ctx, name, "s3:GetBucketPolicy", expected_owner=params.get("ExpectedBucketOwner")
    )
    _owner_only(ctx, bucket, "GET")
    if bucket.policy is None:
        raise s3_policy.no_such_bucket_policy(name)
    return {"Policy": bucket.policy}


def delete_bucket_policy(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    # Deleting a policy a bucket does not have answers 204 too (recorded).
    name = params["Bucket"]
    bucket = bucket_for(
        deps, ctx, name, "s3:DeleteBucketPolicy", expected_owner=params.get("ExpectedBucketOwner")
    )
    _owner_only(ctx, bucket, "DELETE")
    if not deps.store.set_bucket_policy(name, None):
        raise s3.no_such_bucket(name)
    return {}


def get_bucket_policy_status(deps: S3Deps, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["Bucket"]
    bucket = bucket_for(
        deps, ctx, name, "s3:GetBucketPolicyStatus", expected_owner=params.get("ExpectedBucketOwner")
    )
    if bucket.policy is None:
        raise s3_policy.no_such_bucket_policy(name)
    return {"PolicyStatus": {"IsPublic": s3_policy.is_public(bucket.policy)}}


HANDLERS = {
    "PutBucketPolicy": put_bucket_policy,
    "GetBucketPolicy": get_bucket_policy,
    "DeleteBucketPolicy": delete_bucket_policy,
    "GetBucketPolicyStatus": get_bucket_policy_status,
    "CreateBucket": create_bucket,
    "HeadBucket": head_bucket,
    "ListBuckets": list_buckets,
    "DeleteBucket": delete_bucket,
    "GetBucketLocation": get_bucket_location,
    "GetBucketVersioning": get_bucket_versioning,
    "PutBucketTagging": put_bucket_tagging,
    "GetBucketTagging": get_bucket_tagging,
    "DeleteBucketTagging": delete_bucket_tagging,
}
