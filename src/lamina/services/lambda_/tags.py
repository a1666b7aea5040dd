"""Function tags: TagResource, UntagResource, ListTags, and what CreateFunction, GetFunction and the
authorizer (``aws:ResourceTag/*``) read of them.

Tags belong to the function (not to a version or alias) and live with it in the function store;
every change rotates $LATEST's RevisionId, as recorded from AWS. The rules are pure, in
:mod:`lamina.domain.function_tags`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from lamina.domain import function_tags as T
from lamina.domain.arns import Arn
from lamina.domain.functions import FunctionRef, function_arn
from lamina.domain.models import GetFunctionResponse, ListTagsResponse
from lamina.errors import ResourceNotFoundException, not_implemented
from lamina.services.base import RequestContext, output
from lamina.services.lambda_ import unserved
from lamina.services.platform import Platform

# AWS's answer for a code signing configuration it does not have.
NO_SUCH_RESOURCE = "The resource you requested does not exist."


# Taggable resources of services lamina does not serve: the operation that reads one names them.
_UNSERVED = {
    T.ResourceKind.EVENT_SOURCE_MAPPING: "GetEventSourceMapping",
    T.ResourceKind.CAPACITY_PROVIDER: "GetCapacityProvider",
}


def _function(ctx: RequestContext, resource: str, operation: str) -> FunctionRef:
    """The caller's function ``resource`` names (AWS's errors for anything else)."""
    target = T.tag_target(resource)
    if target.kind in _UNSERVED:
        raise not_implemented(operation, unserved.NEEDS[_UNSERVED[target.kind]])
    if target.kind is not T.ResourceKind.FUNCTION:
        # No code signing configuration exists here (yet): AWS's answer for a missing one.
        raise ResourceNotFoundException(NO_SUCH_RESOURCE)
    ref = FunctionRef(target.account, target.region, target.name)
    if (ref.account, ref.region) != (ctx.account_id, ctx.region):
        # Tagging is not among what a function policy can grant: another account's function (or
        # one in another region) is not found, as for the other function operations.
        raise _not_found(ref)
    return ref


def _not_found(ref: FunctionRef) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Function not found: {function_arn(ref.region, ref.account, ref.name)}")


def _change(
    platform: Platform, ref: FunctionRef, change: Callable[[dict[str, str]], dict[str, str]]
) -> dict[str, str]:
    updated = platform.functions.update_tags(ref.account, ref.region, ref.name, change, str(uuid.uuid4()))
    if updated is None:
        raise _not_found(ref)
    return updated


def tag_resource(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    new: Mapping[str, str] = params.get("Tags") or {}
    T.check_tags(new)  # AWS's validation, before anything about the resource
    ref = _function(ctx, params["Resource"], "TagResource")
    _change(platform, ref, lambda current: T.tagged(current, new))
    return {}


def untag_resource(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = _function(ctx, params["Resource"], "UntagResource")
    keys: list[str] = params["TagKeys"]
    _change(platform, ref, lambda current: T.untagged(current, keys))
    return {}


def list_tags(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = _function(ctx, params["Resource"], "ListTags")
    found = platform.functions.tags(ref.account, ref.region, ref.name)
    if found is None:
        raise _not_found(ref)
    out: ListTagsResponse = {"Tags": T.listed(found)}
    return output(out)


def function_tags(platform: Platform, ctx: RequestContext, ref: FunctionRef) -> GetFunctionResponse | None:
    """GetFunction's ``Tags``, or its ``TagsError`` when the caller may not ``lambda:ListTags`` the
    function ("Lambda returns tag data only if you have explicit allow permissions for
    lambda:ListTags", GetFunction API reference); None when the function has no tags (AWS then
    leaves both out, recorded)."""
    found = platform.functions.tags(ref.account, ref.region, ref.name)
    if not found:
        return None
    denial = ctx.denial("ListTags", {"Resource": function_arn(ref.region, ref.account, ref.name)})
    if denial is not None:
        return {"TagsError": {"ErrorCode": denial.code, "Message": denial.message}}
    return {"Tags": T.listed(found)}


def reader(platform: Platform) -> Callable[[Arn], Mapping[str, str]]:
    """``aws:ResourceTag/*`` of the Lambda resource an ARN names: a function's tags, whatever the
    qualifier (versions and aliases carry their function's tags); nothing for anything else."""

    def read(arn: Arn) -> Mapping[str, str]:
        parts = arn.resource.split(":")
        if parts[0] != "function" or len(parts) not in (2, 3) or not parts[1]:
            return {}
        return platform.functions.tags(arn.account, arn.region, parts[1]) or {}

    return read


HANDLERS = {"TagResource": tag_resource, "UntagResource": untag_resource, "ListTags": list_tags}
