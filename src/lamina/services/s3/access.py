"""Who may act on a bucket: the bucket-level half of S3's access decision.

IAM's evaluation runs in the pipeline for every S3 request, and knows S3's buckets: the owner of
the bucket a request acts on and its bucket policy are read by name
(:class:`~lamina.services.iam.authorizer.IamAuthorizer`), so within the bucket owner's account the
identity policies or the bucket policy may allow, across accounts both must, an explicit Deny in
either wins, and an unsigned request gets only what the policy grants ``*`` (S3 User Guide, "How
Amazon S3 authorizes a request", "Bucket policies for Amazon S3").

Every handler reaches a bucket through :func:`bucket_for`, which answers NoSuchBucket for a name
nobody holds and checks that the request was decided with the bucket policy when it crosses
accounts (:func:`policy_allows`). Another service's handler that reads a bucket with the caller's
permissions (Lambda's ``Code.S3Bucket``) gets the same decision: :func:`policy_allows` then runs
the authorize stage for the S3 action through ``RequestContext.authorize_in``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lamina.domain.actions_s3 import TABLE
from lamina.domain.s3 import Bucket, access_denied, no_such_bucket, s3_error
from lamina.errors import AwsError
from lamina.services.base import RequestContext
from lamina.services.s3.deps import S3Deps
from lamina.store import S3Store

# For each S3 action, an operation that needs just it on one bucket or object (s3:GetObject ->
# GetObject, s3:ListBucket -> HeadBucket): what to authorize when another service acts.
_OPERATIONS: dict[str, str] = {}
for _name, _spec in TABLE.items():
    if not _spec.context:
        _OPERATIONS.setdefault(_spec.action, _name)


def policy_allows(bucket: Bucket, ctx: RequestContext, action: str, resource: str) -> bool:
    """Whether the caller of ``ctx`` may perform ``action`` on ``resource`` (in ``bucket``), as
    IAM decides with the bucket's owner and policy.

    An S3 request was decided so by the pipeline's authorize stage (which read the bucket): across
    accounts (or anonymous) it needed the bucket policy, so a bucket without one grants nothing. A
    handler of another service asks the authorize stage for the S3 action now."""
    if ctx.service == "s3":
        return bucket.account == ctx.account_id or bucket.policy is not None
    operation = _OPERATIONS.get(action)
    if ctx.authorize_in is None or operation is None:
        return bucket.account == ctx.account_id and not ctx.anonymous
    name, slash, key = resource.removeprefix("arn:aws:s3:::").partition("/")
    params = {"Bucket": name, "Key": key} if slash else {"Bucket": name}
    try:
        ctx.authorize_in("s3", operation, params)
    except AwsError:
        return False
    return True


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
    ``key`` in it); NoSuchBucket, or AccessDenied when it may not (another account's bucket whose
    policy grants nothing) or the bucket is not ``expected_owner``'s
    (``x-amz-expected-bucket-owner``, which must be an account id)."""
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
    if bucket.account != ctx.account_id or ctx.service != "s3":
        resource = f"arn:aws:s3:::{name}" + ("" if key is None else f"/{key}")
        if not policy_allows(bucket, ctx, action, resource):
            raise access_denied()
    return bucket


def bucket_access(store: S3Store) -> Callable[[str], tuple[str, str | None] | None]:
    """What the IAM authorizer reads of a bucket: its owner's account and its policy, by name."""

    def read(name: str) -> tuple[str, str | None] | None:
        bucket = store.get_bucket(name)
        return None if bucket is None else (bucket.account, bucket.policy)

    return read


def may(ctx: RequestContext, operation: str, params: Mapping[str, object]) -> bool:
    """Whether the authorize stage allows the caller ``operation`` of S3 with ``params`` (DeleteObjects
    asks it of each key)."""
    return ctx.denial(operation, dict(params)) is None
