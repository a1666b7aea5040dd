"""S3 bucket policies: PutBucketPolicy's validation in S3's words, IsPublic, the anonymous caller in
IAM's evaluation, and the authorizer's S3 decisions (bucket owner and policy read by name; a real
IAM store on SQLite)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lamina.api import s3auth
from lamina.domain import s3_policy
from lamina.domain.evaluation import Caller, PolicySet, PrincipalKind, decide
from lamina.domain.policy import PolicyKind, parse_policy
from lamina.errors import AwsError
from lamina.services.base import AuthorizationRequest, Principal
from lamina.services.iam.authorizer import IamAuthorizer, IamLookups
from lamina.services.iam.handlers import provision_user
from lamina.store import IamStore, SqliteDatabase

BUCKET = "my-bucket"
OWNER = "111111111111"


def statement(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


GOOD = {
    "public-read": document(statement()),
    "account-principal": document(
        statement(Principal={"AWS": ["222222222222", "arn:aws:iam::333333333333:root"]})
    ),
    "user-and-role": document(
        statement(
            Principal={"AWS": ["arn:aws:iam::222222222222:user/a/b", "arn:aws:iam::222222222222:role/r"]}
        )
    ),
    "service": document(statement(Principal={"Service": "lambda.amazonaws.com"})),
    "bucket-and-objects": document(
        statement(
            Action=["s3:ListBucket", "s3:GetObject"],
            Resource=[f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        )
    ),
    "wildcard-action": document(statement(Action="s3:*", Resource=f"arn:aws:s3:::{BUCKET}*")),
    "star-action": document(statement(Action="*")),
    "not-principal-deny": document(
        statement(Effect="Deny", Principal=None, NotPrincipal={"AWS": "222222222222"})
    ),
    "condition": document(
        statement(
            Condition={"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}, "Bool": {"aws:SecureTransport": False}}
        )
    ),
    "single-statement-object": json.dumps({"Version": "2008-10-17", "Statement": statement()}),
    "bucket-glob": document(statement(Resource="arn:aws:s3:::my-*/*")),
}


@pytest.mark.parametrize("text", GOOD.values(), ids=list(GOOD))
def test_policies_s3_accepts(text: str) -> None:
    s3_policy.check_bucket_policy(text, BUCKET)
    # ... and that IAM's evaluation reads.
    parse_policy(text, PolicyKind.RESOURCE)


BAD = {
    "empty": ("", s3_policy.NOT_JSON),
    "space-first": (" {}", s3_policy.NOT_JSON),
    "array": ("[]", s3_policy.NOT_JSON),
    "invalid-json": ('{"a": ', s3_policy.INVALID_JSON),
    "no-statement": ('{"Version": "2012-10-17"}', "Missing required field Statement"),
    "bad-version": ('{"Version": "2020-01-01", "Statement": []}', s3_policy.VERSION),
    "unknown-top-field": ('{"Statement": [], "Extra": 1}', s3_policy.SYNTAX),
    "empty-statement": ('{"Statement": []}', s3_policy.EMPTY_STATEMENT),
    "no-effect": (document(statement(Effect=None)), "Missing required field Effect"),
    "bad-effect": (document(statement(Effect="Permit")), "Invalid effect: Permit"),
    "no-principal": (document(statement(Principal=None)), "Missing required field Principal"),
    "principal-string": (document(statement(Principal="bob")), s3_policy.INVALID_PRINCIPAL),
    "principal-unknown-type": (
        document(statement(Principal={"Federated": "x"})),
        s3_policy.INVALID_PRINCIPAL,
    ),
    "principal-bad-arn": (
        document(statement(Principal={"AWS": "arn:aws:iam::12:user/x"})),
        s3_policy.INVALID_PRINCIPAL,
    ),
    "not-principal-allow": (
        document(statement(Principal=None, NotPrincipal={"AWS": "222222222222"})),
        s3_policy.INVALID_PRINCIPAL,
    ),
    "no-action": (document(statement(Action=None)), "Missing required field Action"),
    "other-service": (document(statement(Action="iam:GetUser")), s3_policy.INVALID_ACTION),
    "unknown-action": (document(statement(Action="s3:GetObjekt")), s3_policy.INVALID_ACTION),
    "no-resource": (document(statement(Resource=None)), "Missing required field Resource"),
    "empty-resources": (document(statement(Resource=[])), s3_policy.INVALID_RESOURCE),
    "other-bucket": (document(statement(Resource="arn:aws:s3:::other/*")), s3_policy.INVALID_RESOURCE),
    "not-s3": (document(statement(Resource="arn:aws:sqs:us-east-1:1:q")), s3_policy.INVALID_RESOURCE),
    "object-action-bucket-resource": (
        document(statement(Resource=f"arn:aws:s3:::{BUCKET}")),
        s3_policy.NOT_APPLICABLE,
    ),
    "bucket-action-object-resource": (document(statement(Action="s3:ListBucket")), s3_policy.NOT_APPLICABLE),
    "account-action": (document(statement(Action="s3:ListAllMyBuckets")), s3_policy.NOT_APPLICABLE),
    "bad-operator": (
        document(statement(Condition={"stringequals": {"aws:SourceIp": "x"}})),
        "Invalid Condition type : stringequals",
    ),
    "duplicate-field": (
        '{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "NotAction": "s3:PutObject"}]}',
        s3_policy.SYNTAX,
    ),
    "too-large": (
        document(
            *[statement(Sid=f"S{i}", Resource=f"arn:aws:s3:::{BUCKET}/{'x' * 200}") for i in range(100)]
        ),
        s3_policy.TOO_LARGE,
    ),
}


@pytest.mark.parametrize(("text", "message"), BAD.values(), ids=list(BAD))
def test_policies_s3_refuses(text: str, message: str) -> None:
    with pytest.raises(AwsError) as exc:
        s3_policy.check_bucket_policy(text, BUCKET)
    assert (exc.value.code, exc.value.status, exc.value.message) == ("MalformedPolicy", 400, message)


def test_the_size_limit_counts_the_normalised_document() -> None:
    spaced = document(statement()).replace(",", "," + " " * 6000)
    assert len(spaced) > s3_policy.MAX_POLICY_BYTES
    s3_policy.check_bucket_policy(spaced, BUCKET)


@pytest.mark.parametrize(
    ("text", "public"),
    [
        (GOOD["public-read"], True),
        (GOOD["account-principal"], False),
        (GOOD["condition"], False),
        (document(statement(Effect="Deny")), False),
        (document(statement(Principal={"AWS": ["*"]})), True),
    ],
    ids=["star", "account", "conditioned", "deny", "aws-star-list"],
)
def test_is_public(text: str, public: bool) -> None:
    assert s3_policy.is_public(text) is public


def test_bucket_of() -> None:
    assert s3_policy.bucket_of("arn:aws:s3:::b") == "b"
    assert s3_policy.bucket_of("arn:aws:s3:::b/k/e/y") == "b"
    assert s3_policy.bucket_of("arn:aws:s3:::") is None
    assert s3_policy.bucket_of("*") is None
    assert s3_policy.bucket_of("arn:aws:lambda:us-east-1:1:function:f") is None


# -- evaluation: the anonymous caller --------------------------------------------------------------

ANON = Caller(PrincipalKind.ANONYMOUS, "", "anonymous")


def resource_policy(*statements: dict[str, Any]) -> PolicySet:
    return PolicySet(resource=parse_policy(document(*statements), PolicyKind.RESOURCE))


def test_anonymous_is_allowed_only_what_star_is_granted() -> None:
    obj = f"arn:aws:s3:::{BUCKET}/k"
    assert decide(ANON, "s3:GetObject", obj, OWNER, resource_policy(statement())).allowed
    assert decide(
        ANON, "s3:GetObject", obj, OWNER, resource_policy(statement(Principal={"AWS": "*"}))
    ).allowed
    assert not decide(ANON, "s3:PutObject", obj, OWNER, resource_policy(statement())).allowed
    named = resource_policy(statement(Principal={"AWS": OWNER}))
    assert not decide(ANON, "s3:GetObject", obj, OWNER, named).allowed
    assert not decide(ANON, "s3:GetObject", obj, OWNER, PolicySet()).allowed
    deny = resource_policy(statement(), statement(Effect="Deny", Resource=f"arn:aws:s3:::{BUCKET}/k"))
    decision = decide(ANON, "s3:GetObject", obj, OWNER, deny)
    assert not decision.allowed and decision.explicit


# -- the authorizer -----------------------------------------------------------------------------


@pytest.fixture
def iam(tmp_path: Path) -> Iterator[IamStore]:
    db = SqliteDatabase(tmp_path / "lamina.db")
    yield IamStore(db)
    db.close()


def authorizer(iam: IamStore, buckets: dict[str, tuple[str, str | None]]) -> IamAuthorizer:
    return IamAuthorizer(
        iam,
        lookups=IamLookups(iam, lambda account, region, subnet: None),
        resource_policies={},
        clock=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp(),
        buckets=buckets.get,
    )


def request(principal: Principal, operation: str, params: dict[str, Any], **kw: Any) -> AuthorizationRequest:
    return AuthorizationRequest(
        principal, kw.pop("service", "s3"), operation, "us-east-1", params, "127.0.0.1", **kw
    )


ROOT_A = Principal(OWNER, "AKIDA", f"arn:aws:iam::{OWNER}:root")
ROOT_B = Principal("222222222222", "AKIDB", "arn:aws:iam::222222222222:root")
NOBODY = Principal("", "", "anonymous")


def denied(auth: IamAuthorizer, req: AuthorizationRequest) -> str | None:
    try:
        auth.authorize(req)
    except AwsError as exc:
        return f"{exc.code}: {exc.message}"
    return None


def test_another_accounts_bucket_needs_its_policy(iam: IamStore) -> None:
    buckets: dict[str, tuple[str, str | None]] = {BUCKET: (OWNER, None)}
    auth = authorizer(iam, buckets)
    get = request(ROOT_B, "GetObject", {"Bucket": BUCKET, "Key": "k"})
    assert denied(auth, get) == "AccessDeniedException: Access Denied"
    assert denied(auth, request(ROOT_A, "GetObject", {"Bucket": BUCKET, "Key": "k"})) is None
    buckets[BUCKET] = (OWNER, document(statement(Principal={"AWS": "222222222222"})))
    assert denied(auth, get) is None
    assert denied(auth, request(ROOT_B, "PutObject", {"Bucket": BUCKET, "Key": "k"})) is not None
    # A bucket nobody holds: the caller's own side decides (the handler answers NoSuchBucket);
    # so does CreateBucket of a name another account holds (BucketAlreadyExists).
    assert denied(auth, request(ROOT_B, "GetObject", {"Bucket": "nobodys", "Key": "k"})) is None
    assert denied(auth, request(ROOT_B, "CreateBucket", {"Bucket": BUCKET})) is None


def test_a_deny_binds_the_owners_root_except_for_the_policy_itself(iam: IamStore) -> None:
    deny = document(statement(Effect="Deny", Action=["s3:GetObject"]))
    auth = authorizer(iam, {BUCKET: (OWNER, deny)})
    message = denied(auth, request(ROOT_A, "GetObject", {"Bucket": BUCKET, "Key": "k"}))
    assert message is not None and "with an explicit deny in a resource-based policy" in message
    for operation in ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"):
        assert denied(auth, request(ROOT_A, operation, {"Bucket": BUCKET})) is None


def test_anonymous_requests(iam: IamStore) -> None:
    auth = authorizer(iam, {BUCKET: (OWNER, document(statement()))})
    assert denied(auth, request(NOBODY, "GetObject", {"Bucket": BUCKET, "Key": "k"}, anonymous=True)) is None
    refused = "AccessDeniedException: Access Denied"
    assert (
        denied(auth, request(NOBODY, "PutObject", {"Bucket": BUCKET, "Key": "k"}, anonymous=True)) == refused
    )
    assert denied(auth, request(NOBODY, "ListBuckets", {}, anonymous=True)) == refused
    assert denied(auth, request(NOBODY, "CreateBucket", {"Bucket": "new"}, anonymous=True)) == refused
    # Only S3 admits anonymous callers, whatever the operation.
    for service, operation in (
        ("lambda", "ListFunctions"),
        ("iam", "ListUsers"),
        ("sts", "GetCallerIdentity"),
    ):
        assert denied(auth, request(NOBODY, operation, {}, anonymous=True, service=service)) == refused


# -- presigned URLs -------------------------------------------------------------------------------


def test_sigv2_string_to_sign() -> None:
    text = s3auth.sigv2_string_to_sign(
        "GET",
        {"x-amz-meta-b": " 2 ", "x-amz-date": "d", "content-type": "text/plain"},
        "1700000000",
        "/b/some%20key",
        [("response-content-type", "text%2Fhtml"), ("AWSAccessKeyId", "k"), ("uploadId", "u"), ("acl", "")],
    )
    assert (
        text
        == "GET\n\ntext/plain\n1700000000\nx-amz-date:d\nx-amz-meta-b:2\n/b/some%20key?acl&response-content-type=text/html&uploadId=u"
    )


def test_sigv4_presign_expiry() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 10, tzinfo=dt.UTC)
    query = {"X-Amz-Date": "20260101T120000Z", "X-Amz-Expires": "5"}
    error = s3auth.sigv4_presign_expired(query, now)
    assert error is not None
    assert (error.code, error.status, error.message) == ("AccessDenied", 403, "Request has expired")
    assert list(error.fields.items()) == [
        ("X-Amz-Expires", "5"),
        ("Expires", "2026-01-01T12:00:05Z"),
        ("ServerTime", "2026-01-01T12:00:10Z"),
    ]
    assert s3auth.sigv4_presign_expired({**query, "X-Amz-Expires": "60"}, now) is None
    assert (
        s3auth.sigv4_presign_expired({**query, "X-Amz-Expires": "x"}, now) is None
    )  # the signature check words it


def test_a_remembered_decision_is_not_reused_for_another_owner(iam: IamStore) -> None:
    provision_user(iam, OWNER, "ann", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))  # AdministratorAccess
    ann = Principal(OWNER, "AKIDANN", f"arn:aws:iam::{OWNER}:user/ann")
    buckets: dict[str, tuple[str, str | None]] = {BUCKET: (OWNER, None)}
    auth = authorizer(iam, buckets)
    get = request(ann, "GetObject", {"Bucket": BUCKET, "Key": "k"})
    assert denied(auth, get) is None
    assert denied(auth, get) is None  # remembered
    buckets[BUCKET] = ("222222222222", None)  # deleted, and taken by another account
    assert denied(auth, get) == "AccessDeniedException: Access Denied"
    buckets[BUCKET] = (OWNER, document(statement(Effect="Deny", Principal={"AWS": OWNER})))
    message = denied(auth, get)
    assert message is not None and "explicit deny in a resource-based policy" in message
