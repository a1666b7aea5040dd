"""Who may act on a bucket: the bucket-level half of S3's access decision.

IAM's evaluation of the caller's own policies runs in the pipeline for every request (the actions
and resources of :mod:`lamina.domain.actions_s3`). What it cannot know is who owns the bucket: S3
ARNs carry no account. So every handler reaches a bucket through :func:`bucket_for`, which answers
NoSuchBucket for a name nobody holds, lets the owner's account through, and asks the bucket policy
for anyone else. Bucket policies are not evaluated yet (:func:`policy_allows` is their seam: it
grants nothing), so another account's bucket answers AccessDenied, as S3 does when no policy grants
the request (not NoSuchBucket: the name is taken, and S3 says so).
"""

from __future__ import annotations

from lamina.domain.s3 import Bucket, access_denied, no_such_bucket, s3_error
from lamina.services.base import RequestContext
from lamina.services.s3.deps import S3Deps


def policy_allows(bucket: Bucket, ctx: RequestContext, action: str, resource: str) -> bool:
    """Whether ``bucket``'s policy lets the caller of ``ctx`` (of another account) perform ``action``
    on ``resource``. The seam for bucket policies: evaluated by the IAM authorizer's resource-policy
    reader once they are served; until then no policy grants anything."""
    return False


def bucket_for(
    deps: S3Deps,
    ctx: RequestContext,
    name: str,
    action: str,
    key: str | None = None,
    *,
    expected_owner: str | None = None,
) -> Bucket:
    """The bucket ``name`` when the caller may perform ``action`` (``s3:GetObject``...) on it (or on
    ``key`` in it); NoSuchBucket, or AccessDenied for another account's bucket or one that is not
    ``expected_owner``'s (``x-amz-expected-bucket-owner``, which must be an account id)."""
    if expected_owner is not None and not (len(expected_owner) == 12 and expected_owner.isdigit()):
        raise s3_error(
            "InvalidBucketOwnerAWSAccountID",
            f"The value of the expected bucket owner parameter must be an AWS Account ID... [{expected_owner}]",
            400,
        )
    bucket = deps.store.get_bucket(name)
    if bucket is None:
        raise no_such_bucket(name)
    if expected_owner is not None and expected_owner != bucket.account:
        raise access_denied()
    if bucket.account != ctx.account_id:
        resource = f"arn:aws:s3:::{name}" + ("" if key is None else f"/{key}")
        if not policy_allows(bucket, ctx, action, resource):
            raise access_denied()
    return bucket
