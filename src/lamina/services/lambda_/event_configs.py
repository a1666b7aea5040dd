"""Asynchronous invocation configuration: Put/Get/Update/Delete/ListFunctionEventInvokeConfigs.

One configuration per function qualifier ($LATEST, a version or an alias), kept by the event queue's
:class:`~lamina.store.event_configs.EventInvokeConfigStore` (``platform.events.configs``); the queue
applies it to each Event invocation (:mod:`lamina.domain.event_invoke`). Messages are AWS's, as
recorded (``TestLambdaEventInvokeConfig``).
"""

from __future__ import annotations

import time
from typing import Any

from lamina.domain import event_invoke as E
from lamina.domain import functions as F
from lamina.domain.models import (
    DestinationConfig,
    FunctionEventInvokeConfig,
    ListFunctionEventInvokeConfigsResponse,
)
from lamina.errors import InvalidParameterValueException, ResourceNotFoundException
from lamina.services.base import RequestContext, output
from lamina.services.lambda_.functions import function_ref, load_function
from lamina.services.lambda_.paging import offset_page
from lamina.services.lambda_.roles import role_allows
from lamina.services.platform import Platform
from lamina.store.functions import FunctionRow

FUNCTION_MISSING = "The function doesn't exist."


def _ref(ctx: RequestContext, params: dict[str, Any], *, qualifier: bool = True) -> F.FunctionRef:
    """The function and qualifier ($LATEST when none) a request names."""
    ref = function_ref(ctx, params, qualifier=qualifier, cross_account=True)
    return F.FunctionRef(ref.account, ref.region, ref.name, ref.qualifier or F.LATEST)


def _require_function(platform: Platform, ctx: RequestContext, ref: F.FunctionRef) -> FunctionRow:
    """The function at its qualifier, in the caller's account, or AWS's 404."""
    if ref.account != ctx.account_id:
        raise ResourceNotFoundException(FUNCTION_MISSING)
    try:
        return load_function(platform, ref)
    except ResourceNotFoundException as exc:
        raise ResourceNotFoundException(FUNCTION_MISSING) from exc


def _check_destinations(
    platform: Platform, ref: F.FunctionRef, row: FunctionRow, config: DestinationConfig | None
) -> None:
    """Destinations name a service that takes records; a Lambda destination is another function that
    exists (the caller's own account; another account's cannot be checked without telling whether it
    exists, so it is left to the delivery); the execution role of the function at this qualifier may
    deliver to each (AWS checks it here: "The function execution role does not have permissions to
    call InvokeFunction on ...")."""
    if not config:
        return
    E.check_services(config)
    role = str(row.config.get("Role", ""))
    for key in ("OnSuccess", "OnFailure"):
        arn = (config.get(key) or {}).get("Destination")  # type: ignore[attr-defined]
        if not arn:
            continue
        service = E.service_of(arn)
        if service != "lambda":
            _check_role(platform, ref, role, str(service), arn)
            continue
        parts = F.split_function_name(arn)
        if parts is None:
            raise E.destination_arn_invalid(arn)
        account, region = parts.account or ref.account, parts.region or ref.region
        if (account, region, parts.name) == (ref.account, ref.region, ref.name):
            raise InvalidParameterValueException(E.SELF_DESTINATION)
        if (account, region) == (ref.account, ref.region) and platform.functions.get(
            account, region, parts.name
        ) is None:
            raise E.destination_arn_invalid(arn)
        _check_role(platform, ref, role, "lambda", arn)


def _check_role(platform: Platform, ref: F.FunctionRef, role: str, service: str, arn: str) -> None:
    delivery = E.DELIVERY_ACTIONS.get(service)
    if delivery is not None and not role_allows(platform.iam, ref.account, role, delivery[0], arn):
        raise InvalidParameterValueException(E.role_cannot_deliver(delivery[1], arn))


def put_config(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    E.check_something_set(params)
    ref = _ref(ctx, params)
    row = _require_function(platform, ctx, ref)
    config = E.built(params, time.time())
    _check_destinations(platform, ref, row, params.get("DestinationConfig"))
    platform.events.configs.put(ref.account, ref.region, ref.name, str(ref.qualifier), config)
    return output(E.shown(config, ref.qualified_arn))


def update_config(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    E.check_something_set(params)
    ref = _ref(ctx, params)
    row = _require_function(platform, ctx, ref)
    _check_destinations(platform, ref, row, params.get("DestinationConfig"))
    now = time.time()

    def change(current: FunctionEventInvokeConfig) -> FunctionEventInvokeConfig:
        return E.merged(current, params, now)

    updated = platform.events.configs.update(ref.account, ref.region, ref.name, str(ref.qualifier), change)
    if updated is None:
        raise ResourceNotFoundException(E.no_config(ref.qualified_arn))
    return output(E.shown(updated, ref.qualified_arn))


def get_config(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = _ref(ctx, params)
    found = None
    if ref.account == ctx.account_id:
        found = platform.events.configs.get(ref.account, ref.region, ref.name, str(ref.qualifier))
    if found is None:
        raise ResourceNotFoundException(E.no_config(ref.qualified_arn))
    return output(E.shown(found, ref.qualified_arn))


def delete_config(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = _ref(ctx, params)
    if ref.account != ctx.account_id or not platform.events.configs.delete(
        ref.account, ref.region, ref.name, str(ref.qualifier)
    ):
        raise ResourceNotFoundException(E.no_config(ref.qualified_arn))
    return {}


def list_configs(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = _ref(ctx, params, qualifier=False)
    if ref.account != ctx.account_id or platform.functions.get(ref.account, ref.region, ref.name) is None:
        raise ResourceNotFoundException(FUNCTION_MISSING)
    page, next_marker = offset_page(params, platform.events.configs.list(ref.account, ref.region, ref.name))
    out: ListFunctionEventInvokeConfigsResponse = {
        "FunctionEventInvokeConfigs": [
            E.shown(config, F.function_arn(ref.region, ref.account, ref.name, qualifier))
            for qualifier, config in page
        ]
    }
    if next_marker is not None:
        out["NextMarker"] = next_marker
    return output(out)


HANDLERS = {
    "PutFunctionEventInvokeConfig": put_config,
    "UpdateFunctionEventInvokeConfig": update_config,
    "GetFunctionEventInvokeConfig": get_config,
    "DeleteFunctionEventInvokeConfig": delete_config,
    "ListFunctionEventInvokeConfigs": list_configs,
}
