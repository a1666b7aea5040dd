"""What every EC2 operation shares: tags (CreateTags, DeleteTags, TagSpecifications), Describe*
filters and pagination, id lists with EC2's NotFound errors, and DryRun.

Filters (``Filter.N.Name`` / ``Filter.N.Value.M``): values of one filter are ORed, filters are
ANDed, values may use ``*`` and ``?`` wildcards (EC2 API reference, "Filtering"); ``tag:<key>``,
``tag-key`` and ``tag-value`` work on every taggable resource; an unknown filter name is
``InvalidParameterValue`` "The filter '<name>' is invalid".
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from lamina.domain import ec2
from lamina.domain.ec2 import Kind, error
from lamina.domain.ec2_models import Ec2Tag
from lamina.errors import dry_run_error, is_dry_run, missing_parameter
from lamina.services.base import RequestContext
from lamina.store.ec2 import Ec2Store, Ec2Tx

T = TypeVar("T")
# A resource as EC2 shows it (a TypedDict of lamina.domain.ec2_models, or a plain dict).
Item = TypeVar("Item", bound=Mapping[str, Any])
Stored = TypeVar("Stored")
Wire = TypeVar("Wire")
Extractor = Callable[[Mapping[str, Any]], Iterable[object]]

MAX_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256


# -- transactions and requests ----------------------------------------------------------------


def write(store: Ec2Store, ctx: RequestContext) -> AbstractContextManager[Ec2Tx]:
    """The request's write transaction on its (account, region)."""
    return store.transaction(ctx.account_id, ctx.region, ctx.now_ms)


def read(store: Ec2Store, ctx: RequestContext, fn: Callable[[Ec2Tx], T]) -> T:
    """``fn`` on a consistent snapshot of the request's (account, region)."""
    return store.read(ctx.account_id, ctx.region, fn, ctx.now_ms)


def dry_run(params: Mapping[str, Any]) -> None:
    """End of the checks: a DryRun stops here with ``DryRunOperation``, before any effect."""
    if is_dry_run(params):
        raise dry_run_error()


def required(params: Mapping[str, Any], name: str, wire: str | None = None) -> Any:
    """A parameter the model leaves optional but EC2 requires here."""
    value = params.get(name)
    if value is None or value == "":
        raise missing_parameter(wire or name)
    return value


def by_ids(tx: Ec2Tx, kind: Kind[Stored, Any], ids: Sequence[str] | None) -> list[Stored] | None:
    """The resources named by a ``*Ids`` parameter, in the order asked; NotFound for the first
    missing one. None when no ids were given."""
    if not ids:
        return None
    out = []
    for resource_id in dict.fromkeys(ids):
        out.append(tx.require(kind, resource_id))
    return out


def listing(
    tx: Ec2Tx,
    kind: Kind[Any, Wire],
    ids: Sequence[str] | None,
    filters: Sequence[Mapping[str, Any]] | None,
    columns: Mapping[str, str],
) -> tuple[list[Wire], list[Mapping[str, Any]]]:
    """What a Describe* call starts from, as EC2 shows the resources (new dicts the caller may
    change), and the filters still to apply to them.

    With ``ids``: those resources in the order asked, NotFound for the first missing one (as
    :func:`by_ids`), every filter left to apply. Without: every resource of ``kind``, narrowed by
    the store by the filters it can apply itself, those named in ``columns`` (filter name ->
    ``id``, ``vpc_id`` or ``subnet_id``) whose values are all exact (no ``*``, ``?`` or ``[``).
    """
    if ids:
        found = tx.describe(kind, {"id": ids})
        out = []
        for resource_id in dict.fromkeys(ids):
            body = found.get(resource_id)
            if body is None:
                raise ec2.not_found(kind, resource_id)
            out.append(body)
        return out, list(filters or [])
    where: dict[str, set[str]] = {}
    rest: list[Mapping[str, Any]] = []
    for f in filters or []:
        column = columns.get(str(f.get("Name") or ""))
        values = {str(v) for v in f.get("Values") or []}
        if column is None or not values or any(c in v for v in values for c in "*?["):
            rest.append(f)
        else:
            # Values of one filter are ORed, filters ANDed.
            where[column] = where[column] & values if column in where else values
    return list(tx.describe(kind, where).values()), rest


# -- tags -------------------------------------------------------------------------------------------


def tag_key_of(kind: str) -> str:
    """Where a resource keeps its tags: network interfaces call them ``TagSet``."""
    return "TagSet" if kind == ec2.NETWORK_INTERFACE else "Tags"


def check_tags(tags: Iterable[Mapping[str, Any]]) -> list[Ec2Tag]:
    out: list[Ec2Tag] = []
    for tag in tags:
        key = tag.get("Key")
        if key is None:
            raise missing_parameter("Tag.Key")
        value = tag.get("Value") or ""
        if key.lower().startswith("aws:"):
            raise error(
                "InvalidParameterValue",
                f"Value ( {key} ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use",
            )
        if not 0 < len(key) <= MAX_KEY:
            raise error(
                "InvalidParameterValue", f"Tag key exceeds the maximum length of {MAX_KEY} characters"
            )
        if len(value) > MAX_VALUE:
            raise error(
                "InvalidParameterValue", f"Tag value exceeds the maximum length of {MAX_VALUE} characters"
            )
        out.append({"Key": key, "Value": value})
    return out


def merge_tags(existing: list[Ec2Tag], new: Iterable[Ec2Tag]) -> list[Ec2Tag]:
    merged = {t["Key"]: t["Value"] for t in existing}
    for tag in new:
        merged[tag["Key"]] = tag["Value"]
    if len(merged) > MAX_TAGS:
        raise error("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
    return [{"Key": k, "Value": v} for k, v in merged.items()]


def spec_tags(params: Mapping[str, Any], resource_type: str) -> list[Ec2Tag]:
    """The tags ``TagSpecifications`` give the resource being created."""
    tags: list[Ec2Tag] = []
    for spec in params.get("TagSpecifications") or []:
        kind = spec.get("ResourceType")
        if kind != resource_type:
            raise error(
                "InvalidParameterValue", f"'{kind}' is not a valid taggable resource type for this operation."
            )
        tags = merge_tags(tags, check_tags(spec.get("Tags") or []))
    return tags


def _taggable(tx: Ec2Tx, resource_id: str) -> tuple[str, Any]:
    kind = ec2.kind_of(resource_id)
    if kind is None:
        raise error("InvalidID", f"The ID '{resource_id}' is not valid")
    if kind == ec2.SECURITY_GROUP_RULE:
        for rule in tx.rules():
            if rule.rule_id == resource_id:
                return kind, rule
        raise ec2.not_found(kind, resource_id)
    return kind, tx.require(kind, resource_id)


def create_tags(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    tags = check_tags(params["Tags"])
    with write(store, ctx) as tx:
        found = [(rid, *_taggable(tx, rid)) for rid in params["Resources"]]
        dry_run(params)
        for resource_id, kind, resource in found:
            if kind == ec2.SECURITY_GROUP_RULE:
                tx.set_rule_tags(resource, merge_tags(resource.tags, tags))
                continue
            key = tag_key_of(kind)
            resource[key] = merge_tags(resource.get(key, []), tags)
            tx.update(resource_id, resource)
    return {}


def _without(existing: list[Ec2Tag], removals: list[Mapping[str, Any]] | None) -> list[Ec2Tag]:
    if removals is None:
        return []
    out = []
    for tag in existing:
        gone = any(
            r.get("Key") == tag["Key"] and (r.get("Value") is None or r.get("Value") == tag["Value"])
            for r in removals
        )
        if not gone:
            out.append(tag)
    return out


def delete_tags(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    removals = params.get("Tags")
    with write(store, ctx) as tx:
        found = [(rid, *_taggable(tx, rid)) for rid in params["Resources"]]
        dry_run(params)
        for resource_id, kind, resource in found:
            if kind == ec2.SECURITY_GROUP_RULE:
                tx.set_rule_tags(resource, _without(resource.tags, removals))
                continue
            key = tag_key_of(kind)
            resource[key] = _without(resource.get(key, []), removals)
            tx.update(resource_id, resource)
    return {}


# -- filters ------------------------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field(*path: str) -> Extractor:
    """An extractor following ``path`` through dicts and lists (``("Attachments", "VpcId")``)."""

    def extract(obj: Mapping[str, Any]) -> Iterable[object]:
        current: list[Any] = [obj]
        for key in path:
            following: list[Any] = []
            for item in current:
                value = item.get(key) if isinstance(item, dict) else None
                if isinstance(value, list):
                    following.extend(value)
                elif value is not None:
                    following.append(value)
            current = following
        return current

    return extract


def apply_filters(
    items: Iterable[Item],
    filters: Sequence[Mapping[str, Any]] | None,
    extractors: Mapping[str, Extractor],
    *,
    tags_key: str = "Tags",
) -> list[Item]:
    """The items every filter matches."""
    checks: list[tuple[Extractor, list[str]]] = []
    for f in filters or []:
        name = str(f.get("Name") or "")
        values = [str(v) for v in f.get("Values") or []]
        extractor: Extractor | None
        if name.startswith("tag:"):
            wanted_key = name[4:]
            extractor = _tag_values(tags_key, wanted_key)
        elif name == "tag-key":
            extractor = field(tags_key, "Key")
        elif name == "tag-value":
            extractor = field(tags_key, "Value")
        else:
            extractor = extractors.get(name)
        if extractor is None:
            raise error("InvalidParameterValue", f"The filter '{name}' is invalid")
        checks.append((extractor, values))
    if not checks:
        return list(items)
    out = []
    for item in items:
        if all(_matches(extractor(item), values) for extractor, values in checks):
            out.append(item)
    return out


def _tag_values(tags_key: str, wanted_key: str) -> Extractor:
    def extract(obj: Mapping[str, Any]) -> Iterable[object]:
        return [t.get("Value", "") for t in obj.get(tags_key, []) if t.get("Key") == wanted_key]

    return extract


def _matches(found: Iterable[object], patterns: list[str]) -> bool:
    texts = [_text(v) for v in found]
    return any(fnmatchcase(text, pattern) for text in texts for pattern in patterns)


# -- pagination -----------------------------------------------------------------------------------------


def paginate(
    items: list[T], params: Mapping[str, Any], *, max_key: str = "MaxResults", token_key: str = "NextToken"
) -> tuple[list[T], str | None]:
    """A page of ``items`` and the token of the next one (opaque to clients)."""
    token = params.get(token_key)
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise error("InvalidNextToken", f"The token '{token}' is invalid") from None
        if not 0 <= start <= len(items):
            raise error("InvalidNextToken", f"The token '{token}' is invalid")
    limit = params.get(max_key)
    if limit is None:
        return items[start:], None
    end = start + int(limit)
    next_token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], next_token


def with_token(out: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token is not None:
        out["NextToken"] = token
    return out


# -- DescribeTags ------------------------------------------------------------------------------------------

_TAG_FILTERS = {
    "key": field("Key"),
    "value": field("Value"),
    "resource-id": field("ResourceId"),
    "resource-type": field("ResourceType"),
}


def describe_tags(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Every tag of every taggable resource of the partition (security group rules included), one
    item per tag; ``tag:<key>`` keeps the tags with that key and one of the values."""
    filters: list[Mapping[str, Any]] = []
    for f in params.get("Filters") or []:
        name = str(f.get("Name") or "")
        if name.startswith("tag:"):
            filters.append({"Name": "key", "Values": [name[4:]]})
            filters.append({"Name": "value", "Values": f.get("Values") or []})
        else:
            filters.append(f)

    def run(tx: Ec2Tx) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for resource_id, kind, body in tx.all_resources():
            for tag in body.get(tag_key_of(kind)) or []:  # type: ignore[attr-defined]
                out.append(
                    {
                        "Key": tag["Key"],
                        "ResourceId": resource_id,
                        "ResourceType": kind,
                        "Value": tag["Value"],
                    }
                )
        for rule in tx.rules():
            for tag in rule.tags:
                out.append(
                    {
                        "Key": tag["Key"],
                        "ResourceId": rule.rule_id,
                        "ResourceType": ec2.SECURITY_GROUP_RULE,
                        "Value": tag["Value"],
                    }
                )
        return out

    tags = apply_filters(read(store, ctx, run), filters, _TAG_FILTERS)
    dry_run(params)
    page, token = paginate(tags, params)
    return with_token({"Tags": page}, token)


HANDLERS = {"CreateTags": create_tags, "DeleteTags": delete_tags, "DescribeTags": describe_tags}
