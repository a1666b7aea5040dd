"""Tags on Lambda functions (pure): which resource a tagging request names, and AWS's limits.

Facts (recorded against AWS, ``TestLambdaTag`` / ``TestLambdaTags``; Lambda Developer Guide, "Using
tags on Lambda functions"):
- Tags belong to the function: a qualified ARN (a version, an alias, even ``$LATEST``) is refused
  with InvalidParameterValueException before the function is looked up.
- A function holds at most 50 tags; a TagResource or CreateFunction that would leave more is
  refused ("Number of tags exceeds resource tag limit."), changing nothing.
- TagResource with no tags is refused with Lambda's generic message; UntagResource of keys the
  function does not have succeeds.
- ``Resource`` matches AWS's pattern, which also admits ``layer:NAME``; layers cannot be tagged
  (AWS answers "Unsupported resource type for tagging", the Lambda roadmap's "Layer: Add Tags
  Support" is open). Code signing configurations, event source mappings and capacity providers
  are taggable in AWS; lamina serves none of them yet (the handlers say so).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lamina.domain.constraints import format_errors, render_value
from lamina.errors import InvalidParameterValueException, ValidationException

MAX_TAGS = 50
TOO_MANY_TAGS = "Number of tags exceeds resource tag limit."
NO_TAGS = "An error occurred and the request cannot be processed."
QUALIFIED = "Tags on function aliases and versions are not supported. Please specify a function ARN."
UNSUPPORTED_TYPE = "Unsupported resource type for tagging"
# "The aws: prefix is reserved for AWS use; you can't use it in any tag keys you define", in any
# case ("Tagging best practices"; "Tag restrictions"): such a tag would pass for one AWS set
# (aws:cloudformation:stack-name ...) in an aws:ResourceTag condition of another policy.
RESERVED_PREFIX = "aws:"

# AWS's pattern for TagResource/UntagResource/ListTags ``Resource`` as its messages print it
# (recorded; botocore's model has a newer variant without ``layer:``).
TAGGABLE_RESOURCE_PATTERN = (
    r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|"
    r"code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|capacity-provider:[a-zA-Z0-9-_]+)"
)


# The TagKey and TagValue shapes of Lambda's model: length 1-128 and 0-256, this pattern (Java's
# Unicode classes; Python's \w and \s are their nearest equivalents).
TAG_PATTERN = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"
_TAG_CHARS = re.compile(r"[\w\s.:/=+\-@]*")
KEY_CONSTRAINTS = (
    "[Member must have length less than or equal to 128, Member must have length greater than or equal "
    f"to 1, Member must satisfy regular expression pattern: {TAG_PATTERN}]"
)
VALUE_CONSTRAINTS = (
    "[Member must have length less than or equal to 256, Member must have length greater than or equal "
    f"to 0, Member must satisfy regular expression pattern: {TAG_PATTERN}]"
)


class ResourceKind(enum.Enum):
    """The resource types of Lambda's taggable-resource ARN."""

    FUNCTION = "function"
    LAYER = "layer"
    CODE_SIGNING_CONFIG = "code-signing-config"
    EVENT_SOURCE_MAPPING = "event-source-mapping"
    CAPACITY_PROVIDER = "capacity-provider"


@dataclass(frozen=True, slots=True)
class TagTarget:
    """The resource a tagging request names: its type, region, account and identifier."""

    kind: ResourceKind
    region: str
    account: str
    name: str


def tag_target(resource: str) -> TagTarget:
    """The resource ``resource`` (an ARN already matching :data:`TAGGABLE_RESOURCE_PATTERN`) names.

    Raises AWS's InvalidParameterValueException for a qualified function ARN and for a layer."""
    parts = resource.split(":")
    if len(parts) < 7:
        raise ValueError(f"not a taggable resource ARN: {resource!r}")
    region, account, kind_text, name = parts[3], parts[4], parts[5], parts[6]
    kind = ResourceKind(kind_text)
    if kind is ResourceKind.FUNCTION and len(parts) > 7:
        raise InvalidParameterValueException(QUALIFIED)
    if kind is ResourceKind.LAYER:
        raise InvalidParameterValueException(UNSUPPORTED_TYPE)
    return TagTarget(kind, region, account, name)


def check_tags(tags: Mapping[str, str]) -> None:
    """The constraints of the model's TagKey and TagValue shapes on a ``Tags`` map, in the words of
    AWS's validator for map members ("Map keys must satisfy constraint: [...]")."""
    errors = []
    if any(not 1 <= len(k) <= 128 or _TAG_CHARS.fullmatch(k) is None for k in tags):
        errors.append(
            f"Value {render_value(dict(tags))} at 'tags' failed to satisfy constraint: "
            f"Map keys must satisfy constraint: {KEY_CONSTRAINTS}"
        )
    if any(len(v) > 256 or _TAG_CHARS.fullmatch(v) is None for v in tags.values()):
        errors.append(
            f"Value {render_value(dict(tags))} at 'tags' failed to satisfy constraint: "
            f"Map value must satisfy constraint: {VALUE_CONSTRAINTS}"
        )
    if errors:
        raise ValidationException(format_errors(errors))
    reserved = sorted(k for k in tags if k.lower().startswith(RESERVED_PREFIX))
    if reserved:
        raise InvalidParameterValueException(reserved_key(reserved[0]))
    _check_case({}, tags)


def _check_case(current: Mapping[str, str], new: Mapping[str, str]) -> None:
    """Refuse a key that differs only in case from another the function would hold: condition
    keys are case-insensitive (``aws:ResourceTag/env`` reads ``env`` and ``ENV`` alike), so a
    second spelling would give a policy's condition a value of the tagger's choosing in place of
    the one it guards (an ``ENV=dev`` beside ``env=prod`` past a Deny on ``env``)."""
    seen = {k.lower(): k for k in current}
    for key in new:
        other = seen.setdefault(key.lower(), key)
        if other != key:
            raise InvalidParameterValueException(case_collision(key, other))


def case_collision(key: str, other: str) -> str:
    """The refusal of a tag key that differs only in case from another (lamina's wording)."""
    return (
        f"Tag key '{key}' differs only in case from tag key '{other}': tag keys are matched "
        "case-insensitively in policy conditions."
    )


def reserved_key(key: str) -> str:
    """The refusal of a tag key in the ``aws:`` namespace (lamina's wording)."""
    return f"Tag key '{key}' is invalid: tag keys starting with 'aws:' are reserved for AWS use."


def check_count(tags: Mapping[str, str]) -> None:
    """Refuse a tag set larger than a resource may hold."""
    if len(tags) > MAX_TAGS:
        raise InvalidParameterValueException(TOO_MANY_TAGS)


def tagged(current: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    """``current`` with ``new`` added (a key already there takes the new value), within the limit."""
    if not new:
        raise InvalidParameterValueException(NO_TAGS)
    _check_case(current, new)
    merged = {**current, **new}
    check_count(merged)
    return merged


def untagged(current: Mapping[str, str], keys: Iterable[str]) -> dict[str, str]:
    """``current`` without ``keys`` (keys it does not have are ignored, as AWS ignores them)."""
    gone = set(keys)
    return {key: value for key, value in current.items() if key not in gone}


def listed(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags as ListTags and GetFunction answer them: by key."""
    return dict(sorted(tags.items()))
