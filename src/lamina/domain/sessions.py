"""STS session rules (pure): session tags, transitive tags in role chains, packed size.

Facts from AWS (STS API Reference, AssumeRole; IAM User Guide, "Pass session tags in AWS STS",
"Chaining roles with session tags", "Session policies"; the messages are STS's own words, as
real AWS answers them in recordings and in public issue threads):
- Up to 50 session tags; keys are case-insensitive but keep their case, so ``Dept`` and
  ``dept`` in one request are refused.
- Every transitive tag key must be one of the request's tag keys.
- A session made with temporary credentials inherits the calling session's transitive tags,
  which stay transitive; passing a tag with the key of an inherited one fails.
- The session policies (inline plus managed ARNs) and the tags are packed into the session
  token, which has a fixed budget; ``PackedPolicySize`` is the percentage used. AWS does not
  document its packing; lamina's model is the zlib-compressed size against :data:`PACKED_BUDGET`.
- Role chaining (a role session assuming a role) caps the new session at one hour.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lamina.errors import AwsError

# STS's answers, worded as AWS words them.
DUPLICATE_TAG_KEYS = "Duplicate tag keys found. Please note that Tag keys are case insensitive."
TRANSITIVE_NOT_IN_TAGS = "The specified transitive tag key must be included in the requested tags."
TRANSITIVE_CONFLICT = (
    "One of the specified transitive tag keys can't be set because it conflicts with a "
    "transitive tag key from the calling session."
)
ROLE_CHAINING_LIMIT = (
    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
)
MAX_DURATION_EXCEEDED = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
ROOT_CANNOT_ASSUME = "Roles may not be assumed by root accounts."
NOT_JSON = "The policy is not in the valid JSON format."
SESSION_CREDENTIALS_REFUSED = "Cannot call GetSessionToken with session credentials"

CHAINED_MAX_DURATION = 3600
# The plaintext of the session policies (API Reference, AssumeRole: "can't exceed 2,048 characters").
MAX_POLICY_PLAINTEXT = 2048
MAX_POLICY_ARNS = 10
# Bytes of compressed session policies and tags a session token has room for (lamina's model).
PACKED_BUDGET = 640


def invalid_parameter(message: str) -> AwsError:
    return AwsError(message, code="InvalidParameterValue", status=400, sender_fault=True)


def validation_error(message: str) -> AwsError:
    return AwsError(message, code="ValidationError", status=400, sender_fault=True)


@dataclass(frozen=True)
class SessionTags:
    """The tags of a new session: inherited transitive tags first, then the request's."""

    tags: Mapping[str, str]
    transitive_keys: tuple[str, ...]


def session_tags(
    requested: Sequence[tuple[str, str]],
    transitive_keys: Sequence[str],
    inherited: Mapping[str, str] = {},  # noqa: B006 - read only
    inherited_transitive: Sequence[str] = (),
) -> SessionTags:
    """Check the request's tags against the calling session's transitive ones and merge them.

    Raises STS's ``InvalidParameterValue`` for duplicate keys (any case), a transitive key that
    is not a requested tag, or a requested key that an inherited transitive tag already holds.
    """
    seen: set[str] = set()
    for key, _ in requested:
        if key.lower() in seen:
            raise invalid_parameter(DUPLICATE_TAG_KEYS)
        seen.add(key.lower())
    if any(key.lower() not in seen for key in transitive_keys):
        raise invalid_parameter(TRANSITIVE_NOT_IN_TAGS)
    carried = {k.lower() for k in inherited_transitive}
    if any(key.lower() in carried for key, _ in requested):
        raise invalid_parameter(TRANSITIVE_CONFLICT)
    tags = {k: v for k, v in inherited.items() if k.lower() in carried}
    tags.update(requested)
    keys = [k for k in inherited_transitive if k in tags]
    for key in transitive_keys:
        if key.lower() not in {k.lower() for k in keys}:
            keys.append(next(k for k, _ in requested if k.lower() == key.lower()))
    return SessionTags(tags, tuple(keys))


@dataclass(frozen=True)
class PackedSize:
    """Percentages of the session token's budget the policies, the tags and both use."""

    policies: int
    tags: int
    total: int


def _percent(size: int) -> int:
    return math.ceil(100 * size / PACKED_BUDGET)


def packed_size(policy: str | None, policy_arns: Sequence[str], tags: Mapping[str, str]) -> PackedSize:
    """How much of the session token the session policies and tags take (lamina's model)."""
    policy_bytes = 0
    if policy is not None or policy_arns:
        # Whitespace does not count: the policy is packed in its minified form.
        minified = json.dumps(json.loads(policy), separators=(",", ":")) if policy else ""
        policy_bytes = len(zlib.compress((minified + "".join(policy_arns)).encode(), 9))
    tag_bytes = len(zlib.compress(json.dumps(dict(tags)).encode(), 9)) if tags else 0
    return PackedSize(_percent(policy_bytes), _percent(tag_bytes), _percent(policy_bytes + tag_bytes))


def check_packed_size(size: PackedSize) -> None:
    """STS's ``PackedPolicyTooLarge`` (400) when the policies, the tags, or both overflow."""
    if size.policies > 100:
        raise AwsError(
            f"Packed policy consumes {size.policies}% of allotted space, please use smaller policy.",
            code="PackedPolicyTooLarge",
            status=400,
            sender_fault=True,
        )
    if size.total > 100:
        raise AwsError(
            f"Packed size of session tags consumes {size.total}% of allotted space.",
            code="PackedPolicyTooLarge",
            status=400,
            sender_fault=True,
        )


def is_valid_arn(text: str) -> bool:
    """STS's ARN check: ``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE``, the partition,
    service and resource not empty (``arn:a:::something/x`` and ``arn:a:a::aaaa:`` are invalid)."""
    parts = text.split(":", 5)
    return len(parts) == 6 and parts[0] == "arn" and all(parts[i] for i in (1, 2, 5))


def role_duration_error(duration: int, max_session: int, chained: bool) -> AwsError | None:
    """The ValidationError for a DurationSeconds the role (or role chaining) does not allow."""
    if chained and duration > CHAINED_MAX_DURATION:
        return validation_error(ROLE_CHAINING_LIMIT)
    if duration > max_session:
        return validation_error(MAX_DURATION_EXCEEDED)
    return None
