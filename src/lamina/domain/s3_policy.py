"""S3 bucket policies: what PutBucketPolicy accepts, in S3's own words (pure).

Facts from the S3 User Guide ("Bucket policies for Amazon S3", "Policies and permissions in
Amazon S3", "Actions, resources, and condition keys for Amazon S3") and from S3's recorded answers
(``MalformedPolicy``, 400, for every fault of a document; the first fault found is the answer):
- The body must be JSON whose first byte is ``{`` (*Policies must be valid JSON and the first
  byte must be '{'*); an object without ``Statement`` is *Missing required field Statement*.
- A bucket policy may be at most 20 KB (20,480 bytes) once its insignificant whitespace is gone.
- Every statement needs ``Effect`` (``Allow``/``Deny``, exactly), a ``Principal`` (``"*"``, or
  ``AWS``/``Service``/``CanonicalUser`` values: ``*``, an account ID, an IAM user, role or root
  ARN, a role session ARN), an ``Action`` naming S3 actions only (*Policy has invalid action*) and
  a ``Resource`` inside the bucket the policy is put on (*Policy has invalid resource*);
  ``NotPrincipal`` only with ``Deny``.
- Each action must apply to a resource the statement names: object actions (``s3:GetObject``) to
  ``arn:aws:s3:::bucket/...``, bucket actions (``s3:ListBucket``) to ``arn:aws:s3:::bucket``
  (*Action does not apply to any resource(s) in statement*).
- Condition operators are IAM's (*Invalid Condition type : X* for another).
- GetBucketPolicy answers the document as it was put.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from typing import Any

from lamina.domain.policy import MalformedPolicy, PolicyKind, parse_policy
from lamina.errors import AwsError

MAX_POLICY_BYTES = 20 * 1024
ARN_PREFIX = "arn:aws:s3:::"

NOT_JSON = "Policies must be valid JSON and the first byte must be '{'"
INVALID_JSON = "This policy contains invalid Json"
TOO_LARGE = f"Normalized policy document exceeds the maximum allowed size of {MAX_POLICY_BYTES} bytes"
SYNTAX = "Invalid policy syntax."
VERSION = "The policy must contain a valid version string"
EMPTY_STATEMENT = "Could not parse the policy: Statement is empty!"
INVALID_PRINCIPAL = "Invalid principal in policy"
INVALID_ACTION = "Policy has invalid action"
INVALID_RESOURCE = "Policy has invalid resource"
NOT_APPLICABLE = "Action does not apply to any resource(s) in statement"
NO_SUCH_BUCKET_POLICY = "The bucket policy does not exist"


class Kind(enum.Enum):
    """What an S3 action acts on: a bucket, an object, or neither (account-level actions)."""

    BUCKET = "bucket"
    OBJECT = "object"
    ACCOUNT = "account"


_OBJECT_ACTIONS = """
AbortMultipartUpload BypassGovernanceRetention DeleteObject DeleteObjectTagging DeleteObjectVersion
DeleteObjectVersionTagging GetObject GetObjectAcl GetObjectAttributes GetObjectLegalHold
GetObjectRetention GetObjectTagging GetObjectTorrent GetObjectVersion GetObjectVersionAcl
GetObjectVersionAttributes GetObjectVersionForReplication GetObjectVersionTagging
GetObjectVersionTorrent InitiateReplication ListMultipartUploadParts ObjectOwnerOverrideToBucketOwner
PutObject PutObjectAcl PutObjectLegalHold PutObjectRetention PutObjectTagging PutObjectVersionAcl
PutObjectVersionTagging ReplicateDelete ReplicateObject ReplicateTags RestoreObject
"""
_BUCKET_ACTIONS = """
CreateBucket DeleteBucket DeleteBucketOwnershipControls DeleteBucketPolicy DeleteBucketWebsite
GetAccelerateConfiguration GetAnalyticsConfiguration GetBucketAcl GetBucketCORS GetBucketLocation
GetBucketLogging GetBucketNotification GetBucketObjectLockConfiguration GetBucketOwnershipControls
GetBucketPolicy GetBucketPolicyStatus GetBucketPublicAccessBlock GetBucketRequestPayment
GetBucketTagging GetBucketVersioning GetBucketWebsite GetEncryptionConfiguration
GetIntelligentTieringConfiguration GetInventoryConfiguration GetLifecycleConfiguration
GetMetricsConfiguration GetReplicationConfiguration ListBucket ListBucketMultipartUploads
ListBucketVersions PutAccelerateConfiguration PutAnalyticsConfiguration PutBucketAcl PutBucketCORS
PutBucketLogging PutBucketNotification PutBucketObjectLockConfiguration PutBucketOwnershipControls
PutBucketPolicy PutBucketPublicAccessBlock PutBucketRequestPayment PutBucketTagging
PutBucketVersioning PutBucketWebsite PutEncryptionConfiguration PutIntelligentTieringConfiguration
PutInventoryConfiguration PutLifecycleConfiguration PutMetricsConfiguration
PutReplicationConfiguration
"""
_ACCOUNT_ACTIONS = "ListAllMyBuckets GetAccountPublicAccessBlock PutAccountPublicAccessBlock"

# Every S3 action by its lower-case name, with what it acts on.
ACTIONS: Mapping[str, Kind] = {
    **{f"s3:{name.lower()}": Kind.OBJECT for name in _OBJECT_ACTIONS.split()},
    **{f"s3:{name.lower()}": Kind.BUCKET for name in _BUCKET_ACTIONS.split()},
    **{f"s3:{name.lower()}": Kind.ACCOUNT for name in _ACCOUNT_ACTIONS.split()},
}

# The actions the bucket owner's root user may always take, whatever the bucket policy says: "the
# root user of the account that owns the bucket can always ... delete the bucket policy" (S3 User
# Guide, "Bucket policies for Amazon S3"), so a policy that denies everyone cannot lock it out.
POLICY_MANAGEMENT = frozenset({"s3:getbucketpolicy", "s3:putbucketpolicy", "s3:deletebucketpolicy"})

_OPERATOR_NAMES = """
StringEquals StringNotEquals StringEqualsIgnoreCase StringNotEqualsIgnoreCase StringLike StringNotLike
NumericEquals NumericNotEquals NumericLessThan NumericLessThanEquals NumericGreaterThan
NumericGreaterThanEquals DateEquals DateNotEquals DateLessThan DateLessThanEquals DateGreaterThan
DateGreaterThanEquals Bool BinaryEquals IpAddress NotIpAddress ArnEquals ArnLike ArnNotEquals
ArnNotLike
"""
_OPERATORS = frozenset(_OPERATOR_NAMES.split())
_AWS_PRINCIPAL = re.compile(
    r"\*|\d{12}|arn:aws:iam::\d{12}:(?:root|user/[^*?]+|role/[^*?]+)"
    r"|arn:aws:sts::\d{12}:assumed-role/[^/*?]+/[^*?]+"
)
_SERVICE_PRINCIPAL = re.compile(r"[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.amazonaws\.com", re.I)
_CANONICAL_USER = re.compile(r"[0-9a-f]{64}")


def malformed_policy(message: str) -> AwsError:
    """S3's ``MalformedPolicy`` (400)."""
    return AwsError(message, code="MalformedPolicy", status=400, sender_fault=True)


def no_such_bucket_policy(bucket: str) -> AwsError:
    """GetBucketPolicy of a bucket without one (404, with the bucket's name)."""
    return AwsError(
        NO_SUCH_BUCKET_POLICY,
        code="NoSuchBucketPolicy",
        status=404,
        sender_fault=True,
        fields={"BucketName": bucket},
    )


def bucket_of(resource: str) -> str | None:
    """The bucket an S3 resource ARN is in (``arn:aws:s3:::b`` or ``arn:aws:s3:::b/key``)."""
    if not resource.startswith(ARN_PREFIX):
        return None
    name = resource[len(ARN_PREFIX) :].partition("/")[0]
    return name or None


def check_bucket_policy(text: str, bucket: str) -> None:
    """Raise S3's ``MalformedPolicy`` unless ``text`` is a policy S3 would put on ``bucket``."""
    if not text.startswith("{"):
        raise malformed_policy(NOT_JSON)
    try:
        document = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError) as exc:
        raise malformed_policy(INVALID_JSON) from exc
    if not isinstance(document, dict):
        raise malformed_policy(NOT_JSON)
    if len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_POLICY_BYTES:
        raise malformed_policy(TOO_LARGE)
    for name, value in document.items():
        if name == "Version":
            if value not in ("2012-10-17", "2008-10-17"):
                raise malformed_policy(VERSION)
        elif name == "Id":
            if not isinstance(value, str):
                raise malformed_policy(SYNTAX)
        elif name != "Statement":
            raise malformed_policy(SYNTAX)
    if "Statement" not in document:
        raise malformed_policy("Missing required field Statement")
    body = document["Statement"]
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise malformed_policy(SYNTAX)
    if not body:
        raise malformed_policy(EMPTY_STATEMENT)
    for item in body:
        _check_statement(item, bucket)
    try:
        parse_policy(text, PolicyKind.RESOURCE)
    except MalformedPolicy as exc:
        # What the authorizer cannot evaluate must not be stored: its Deny statements would be lost.
        raise malformed_policy(SYNTAX) from exc


def _not_json(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


_FIELDS = {
    "Sid": "Sid",
    "Effect": "Effect",
    "Principal": "Principal",
    "NotPrincipal": "Principal",
    "Action": "Action",
    "NotAction": "Action",
    "Resource": "Resource",
    "NotResource": "Resource",
    "Condition": "Condition",
}


def _check_statement(item: Any, bucket: str) -> None:
    if not isinstance(item, dict):
        raise malformed_policy(SYNTAX)
    seen: dict[str, str] = {}
    for name in item:
        field = _FIELDS.get(name)
        if field is None or field in seen:
            raise malformed_policy(SYNTAX)
        seen[field] = name
    if "Sid" in item and not isinstance(item["Sid"], str):
        raise malformed_policy(SYNTAX)
    if "Effect" not in seen:
        raise malformed_policy("Missing required field Effect")
    effect = item["Effect"]
    if not isinstance(effect, str):
        raise malformed_policy(SYNTAX)
    if effect not in ("Allow", "Deny"):
        raise malformed_policy(f"Invalid effect: {effect}")
    if "Principal" not in seen:
        raise malformed_policy("Missing required field Principal")
    _check_principal(item[seen["Principal"]])
    if seen["Principal"] == "NotPrincipal" and effect == "Allow":
        raise malformed_policy(INVALID_PRINCIPAL)
    if "Action" not in seen:
        raise malformed_policy("Missing required field Action")
    actions = [a.lower() for a in _strings(item[seen["Action"]])]
    kinds: set[Kind] = set()
    for action in actions:
        named = _named(action)
        if not named:
            raise malformed_policy(INVALID_ACTION)
        kinds.update(named)
    if "Resource" not in seen:
        raise malformed_policy("Missing required field Resource")
    resources = _strings(item[seen["Resource"]])
    if not resources:
        raise malformed_policy(INVALID_RESOURCE)
    for resource in resources:
        _check_resource(resource, bucket)
    if seen["Action"] == "Action" and seen["Resource"] == "Resource":
        reached = {k for r in resources for k in _reaches(r)}
        if any(not (_named(a) & reached) for a in actions):
            raise malformed_policy(NOT_APPLICABLE)
    if "Condition" in item:
        _check_conditions(item["Condition"])


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise malformed_policy(SYNTAX)


def _check_principal(value: Any) -> None:
    if value == "*":
        return
    if not isinstance(value, dict) or not value:
        raise malformed_policy(INVALID_PRINCIPAL)
    for kind, listed in value.items():
        try:
            names = _strings(listed)
        except AwsError:
            raise malformed_policy(INVALID_PRINCIPAL) from None
        pattern = {
            "AWS": _AWS_PRINCIPAL,
            "Service": _SERVICE_PRINCIPAL,
            "CanonicalUser": _CANONICAL_USER,
        }.get(kind)
        if pattern is None or not names or not all(pattern.fullmatch(n) for n in names):
            raise malformed_policy(INVALID_PRINCIPAL)


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(
        ".*".join(".".join(re.escape(p) for p in part.split("?")) for part in pattern.split("*"))
    )


def _named(action: str) -> set[Kind]:
    """What the actions an action pattern names act on (empty: it names no S3 action)."""
    if action == "*":
        action = "s3:*"
    if not action.startswith("s3:"):
        return set()
    if "*" not in action and "?" not in action:
        kind = ACTIONS.get(action)
        return set() if kind is None else {kind}
    matcher = _glob(action)
    return {kind for name, kind in ACTIONS.items() if matcher.fullmatch(name)}


def _check_resource(resource: str, bucket: str) -> None:
    """A resource must be an S3 ARN whose bucket part can be ``bucket`` (a policy variable there is
    judged when the policy is applied)."""
    if not resource.startswith(ARN_PREFIX) or resource == ARN_PREFIX:
        raise malformed_policy(INVALID_RESOURCE)
    named = resource[len(ARN_PREFIX) :].partition("/")[0]
    if "${" not in named and not _glob(named).fullmatch(bucket):
        raise malformed_policy(INVALID_RESOURCE)


def _reaches(resource: str) -> set[Kind]:
    """What a resource pattern can match: the bucket (no ``/``), objects (a ``/``, or a ``*``
    that can stand for one)."""
    rest = resource[len(ARN_PREFIX) :]
    kinds = set()
    if "/" not in rest:
        kinds.add(Kind.BUCKET)
    if "/" in rest or "*" in rest:
        kinds.add(Kind.OBJECT)
    return kinds


def _check_conditions(block: Any) -> None:
    if not isinstance(block, dict):
        raise malformed_policy(SYNTAX)
    for name, keys in block.items():
        base = name
        for qualifier in ("ForAnyValue:", "ForAllValues:"):
            if base.startswith(qualifier):
                base = base[len(qualifier) :]
        if base.endswith("IfExists"):
            base = base[: -len("IfExists")]
        if base not in _OPERATORS and name != "Null":
            raise malformed_policy(f"Invalid Condition type : {name}")
        if not isinstance(keys, dict):
            raise malformed_policy(SYNTAX)
        for values in keys.values():
            listed = values if isinstance(values, list) else [values]
            if not all(isinstance(v, str | bool | int | float) for v in listed):
                raise malformed_policy(SYNTAX)


def is_public(text: str) -> bool:
    """GetBucketPolicyStatus's IsPublic: whether a statement allows everyone (``"*"``) without a
    condition confining who (S3 User Guide, "The meaning of public": a policy that grants access
    to a wildcard principal is public unless a condition fixes the caller, such as its source
    address or account). A condition of any kind is taken as confining here."""
    try:
        document = json.loads(text)
    except ValueError:
        return False
    body = document.get("Statement") if isinstance(document, dict) else None
    items = [body] if isinstance(body, dict) else body if isinstance(body, list) else []
    for st in items:
        if not isinstance(st, dict) or st.get("Effect") != "Allow" or st.get("Condition"):
            continue
        principal = st.get("Principal")
        aws = principal.get("AWS") if isinstance(principal, dict) else None
        if principal == "*" or aws == "*" or (isinstance(aws, list) and "*" in aws):
            return True
    return False
