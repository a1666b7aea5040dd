"""Lambda aliases: CreateAlias, GetAlias, ListAliases, UpdateAlias, DeleteAlias, and the version
an invocation through an alias runs (the weighted choice of its routing configuration).

Rules and messages are in :mod:`lamina.domain.aliases`; the store keeps aliases next to the
function's versions (``FunctionStore.aliases``), so deleting the function deletes them.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable
from typing import Any

from lamina.domain import aliases as A
from lamina.domain import functions as F
from lamina.domain.models import AliasConfiguration, ListAliasesResponse
from lamina.services.base import RequestContext, output
from lamina.services.lambda_ import messages as M
from lamina.services.lambda_.functions import function_ref, load_function
from lamina.services.platform import Platform
from lamina.store.aliases import AliasWrite
from lamina.store.functions import FunctionRow

DEFAULT_PAGE = 50


def not_found(ref: F.FunctionRef, qualifier: str | None = None) -> Exception:
    """ "Function not found: ARN" with the qualifier AWS names (the missing version or alias)."""
    return M.function_not_found(F.function_arn(ref.region, ref.account, ref.name, qualifier))


# One generator for the routing draws (statistical, not secret: AWS's weights are a traffic share).
_draw = random.Random()


def prevalidate(params: dict[str, Any]) -> None:
    """Before the model's validation (which does not check maps of numbers): the weights' ranges."""
    A.check_weights(params.get("RoutingConfig"))


def invoked_version(
    platform: Platform, ref: F.FunctionRef, draw: Callable[[], float] = _draw.random
) -> FunctionRow:
    """The stored version an invocation of ``ref`` runs: through an alias, its primary version or,
    with the weight of its routing configuration, the additional one (one read of the alias and
    its versions together: ``FunctionStore.resolve_alias``); else the version ``ref`` names. From
    the node's cache of what invocations read, where it has one (PostgreSQL: store/function_cache.py)."""
    if not A.is_alias_name(ref.qualifier):
        return load_function(platform, ref, cached=True)
    assert ref.qualifier is not None
    row = platform.functions.resolve_alias(
        ref.account, ref.region, ref.name, ref.qualifier, draw, cached=True
    )
    if row is None:
        raise not_found(ref, ref.qualifier)
    return row


def _alias_ref(ctx: RequestContext, params: dict[str, Any]) -> tuple[F.FunctionRef, str]:
    """The function (unqualified) and the alias ARN a request names."""
    ref = function_ref(ctx, params, qualifier=False)
    return ref.function, F.function_arn(ref.region, ref.account, ref.name, params["Name"])


def _weights(routing: dict[str, Any] | None) -> dict[str, float]:
    return dict((routing or {}).get("AdditionalVersionWeights") or {})


def _write(
    ref: F.FunctionRef,
    alias_arn: str,
    name: str,
    version: str,
    description: str,
    weights: dict[str, float],
    exists: Callable[[int], bool],
) -> AliasWrite:
    """The alias to store, once its versions are known to exist (AWS names the missing one)."""
    A.check_routing(version, weights)
    primary = A.version_seq(version)
    if primary is None or not exists(primary):
        raise not_found(ref, version)
    extra = None
    for number in weights:
        extra = A.version_seq(number)
        if extra is None or not exists(extra):
            raise not_found(ref, number)
    config = A.make_config(alias_arn, name, version, description, weights, str(uuid.uuid4()))
    return AliasWrite(config, primary, extra)


def create_alias(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref, arn = _alias_ref(ctx, params)
    name, version = params["Name"], params["FunctionVersion"]
    weights = _weights(params.get("RoutingConfig"))
    A.check_routing(version, weights)

    def change(current: AliasConfiguration | None, exists: Callable[[int], bool]) -> AliasWrite:
        new = _write(ref, arn, name, version, params.get("Description", ""), weights, exists)
        if current is not None:
            raise A.alias_exists(arn)
        return new

    config = platform.functions.aliases.put(ref.account, ref.region, ref.name, name, change)
    if config is None:
        raise not_found(ref, version)
    return output(config)


def get_alias(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref, arn = _alias_ref(ctx, params)
    config = platform.functions.aliases.get(ref.account, ref.region, ref.name, params["Name"])
    if config is None:
        raise A.cannot_find_alias(arn)
    return output(config)


def update_alias(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref, arn = _alias_ref(ctx, params)
    name = params["Name"]

    def change(current: AliasConfiguration | None, exists: Callable[[int], bool]) -> AliasWrite:
        if current is None:
            raise A.alias_not_found(arn)
        if params.get("RevisionId") is not None and params["RevisionId"] != current.get("RevisionId"):
            raise M.function_revision_mismatch()
        version = params.get("FunctionVersion", current["FunctionVersion"])
        if "RoutingConfig" in params:
            weights = _weights(params["RoutingConfig"])
        else:
            weights = _weights(dict(current.get("RoutingConfig") or {}))
        description = params.get("Description", current.get("Description", ""))
        return _write(ref, arn, name, version, description, weights, exists)

    config = platform.functions.aliases.put(ref.account, ref.region, ref.name, name, change)
    if config is None:
        raise not_found(ref)
    platform.provisioned.reconcile(ref)  # its provisioned concurrency follows its version
    return output(config)


def delete_alias(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref, _ = _alias_ref(ctx, params)
    # Deleting an alias that does not exist succeeds (recorded: 204).
    deleted = platform.functions.aliases.delete(ref.account, ref.region, ref.name, params["Name"])
    if not deleted and platform.functions.get(ref.account, ref.region, ref.name) is None:
        raise not_found(ref)
    if deleted:
        platform.provisioned.reconcile(ref)  # its provisioned concurrency went with it
    return {}


def list_aliases(platform: Platform, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ref = function_ref(ctx, params, qualifier=False).function
    if platform.functions.get(ref.account, ref.region, ref.name) is None:
        raise not_found(ref)
    version = None
    if params.get("FunctionVersion") is not None:
        version = A.version_seq(params["FunctionVersion"])
        if version is None:
            return output(ListAliasesResponse(Aliases=[]))
    limit = int(params.get("MaxItems") or DEFAULT_PAGE)
    after = _decode_marker(params.get("Marker"))
    found = platform.functions.aliases.list(
        ref.account, ref.region, ref.name, version=version, after=after, limit=limit + 1
    )
    out: ListAliasesResponse = {"Aliases": found[:limit]}
    if len(found) > limit:
        out["NextMarker"] = _encode_marker(found[limit - 1]["Name"])
    return output(out)


def _encode_marker(name: str) -> str:
    return base64.urlsafe_b64encode(f"alias:{name}".encode()).decode().rstrip("=")


def _decode_marker(marker: str | None) -> str | None:
    if marker is None:
        return None
    try:
        text = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise M.invalid_marker(marker) from exc
    kind, _, name = text.partition(":")
    if kind != "alias" or not name:
        raise M.invalid_marker(marker)
    return name


HANDLERS = {
    "CreateAlias": create_alias,
    "GetAlias": get_alias,
    "ListAliases": list_aliases,
    "UpdateAlias": update_alias,
    "DeleteAlias": delete_alias,
}
