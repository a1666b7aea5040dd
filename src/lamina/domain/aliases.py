"""Lambda function aliases: names, routing configurations and the weighted choice (pure).

Facts from AWS (recorded; see tests/functional/test_aliases.py and the Lambda Developer Guide,
"Lambda function aliases" and "Implement Lambda canary deployments using a weighted alias"):
- an alias points to one version (``FunctionVersion``: a number or ``$LATEST``) and, with a
  ``RoutingConfig``, sends a share of invocations (a weight from 0.0 to 1.0) to one more version;
  the primary version receives the rest. Invoke answers which ran in ``X-Amz-Executed-Version``;
- ``AdditionalVersionWeights`` holds at most one version, never the primary one, never ``$LATEST``
  (the model's key pattern), and an alias with a routing configuration cannot point to ``$LATEST``;
- an empty ``AdditionalVersionWeights`` is no routing configuration at all (the answer has none);
- every change gives the alias a new RevisionId; creating or changing an alias changes no
  version's RevisionId;
- GetFunction through an alias answers the primary version's configuration, its ``FunctionArn``
  qualified by the alias;
- a version an alias routes to cannot be deleted ("Unable to delete version because the following
  aliases reference it: [live]", 409), and deleting the function deletes its aliases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lamina.domain.constraints import format_errors, render_value
from lamina.domain.functions import LATEST, version_number
from lamina.domain.models import AliasConfiguration
from lamina.errors import (
    BodyStyle,
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
    ValidationException,
)

MAX_ADDITIONAL_VERSIONS = 1

_VERSION_KEY = re.compile(r"[0-9]+")
_WEIGHTS_PATH = "routingConfig.additionalVersionWeights"
# The model's constraints of AdditionalVersionWeights as AWS prints them (recorded): its keys
# without "Member must not be null", its values with it.
_KEYS_TEXT = (
    "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have "
    "length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]"
)
_VALUES_TEXT = (
    "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have "
    "value greater than or equal to 0.0, Member must not be null]"
)

# botocore's Alias pattern: letters, digits, - and _, not all digits (digits name a version).
_ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[a-zA-Z0-9-_]+")


def is_alias_name(qualifier: str | None) -> bool:
    """Whether a qualifier names an alias (not $LATEST, not a version number)."""
    return qualifier is not None and qualifier != LATEST and _ALIAS_NAME.fullmatch(qualifier) is not None


def version_seq(version: str) -> int | None:
    """The stored sequence number of a version text: ``$LATEST`` is 0, ``"7"`` is 7; None for
    anything else (``$LATEST.PUBLISHED``, which the model allows and lamina does not have)."""
    if version == LATEST:
        return 0
    return version_number(version)


@dataclass(frozen=True, slots=True)
class Routing:
    """Where an alias sends invocations: ``primary`` receives ``1 - weight`` of them, ``extra``
    (None without a routing configuration) receives ``weight``."""

    primary: str
    extra: str | None = None
    weight: float = 0.0

    def choose(self, draw: float) -> str:
        """The version one invocation runs, given a uniform ``draw`` in [0, 1)."""
        if self.extra is not None and draw < self.weight:
            return self.extra
        return self.primary

    @property
    def versions(self) -> tuple[str, ...]:
        """The versions the alias refers to, primary first."""
        return (self.primary,) if self.extra is None else (self.primary, self.extra)


def routing_of(config: AliasConfiguration) -> Routing:
    """The routing of a stored alias configuration."""
    weights = (config.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    for version, weight in weights.items():
        return Routing(config["FunctionVersion"], version, float(weight))
    return Routing(config["FunctionVersion"])


def check_weights(routing: Any) -> None:
    """The model's constraints of ``RoutingConfig.AdditionalVersionWeights`` (keys: version
    numbers of 1-1024 characters; values: 0.0-1.0), worded as AWS words a map's constraints, the map
    shown with its weights as doubles (``'{2=2.0}'``). Checked before the rest of the request."""
    weights = routing.get("AdditionalVersionWeights") if isinstance(routing, dict) else None
    if not isinstance(weights, dict):
        return
    shown = render_value(
        {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in weights.items()}
    )
    errors = []
    if any(not isinstance(k, str) or len(k) > 1024 or not _VERSION_KEY.fullmatch(k) for k in weights):
        errors.append(f"Value {shown} at '{_WEIGHTS_PATH}' failed to satisfy constraint: {_KEYS_TEXT}")
    if any(not _weight_ok(v) for v in weights.values()):
        errors.append(f"Value {shown} at '{_WEIGHTS_PATH}' failed to satisfy constraint: {_VALUES_TEXT}")
    if errors:
        raise ValidationException(format_errors(errors))


def _weight_ok(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def check_routing(function_version: str, weights: dict[str, float]) -> None:
    """AWS's refusals of a routing configuration, in its order (the value ranges and the key
    pattern are the model's, checked by the request validation before this)."""
    if len(weights) > MAX_ADDITIONAL_VERSIONS:
        raise InvalidParameterValueException(
            f"Number of items in AdditionalVersionWeights cannot be greater than {MAX_ADDITIONAL_VERSIONS}"
        )
    if function_version in weights:
        raise InvalidParameterValueException(
            f"Invalid function version {function_version}. Function version {function_version} is already "
            "included in routing configuration."
        )
    if weights and function_version == LATEST:
        # Recorded without "Type": "User" in the body.
        raise InvalidParameterValueException(
            "$LATEST is not supported for an alias pointing to more than 1 version", style=BodyStyle.LOWER
        )


def make_config(
    alias_arn: str,
    name: str,
    function_version: str,
    description: str,
    weights: dict[str, float],
    revision_id: str,
) -> AliasConfiguration:
    """An alias as AWS answers it (members in the model's order; no RoutingConfig without weights)."""
    config: AliasConfiguration = {
        "AliasArn": alias_arn,
        "Name": name,
        "FunctionVersion": function_version,
        "Description": description,
    }
    if weights:
        config["RoutingConfig"] = {"AdditionalVersionWeights": {k: float(v) for k, v in weights.items()}}
    config["RevisionId"] = revision_id
    return config


def cannot_find_alias(alias_arn: str) -> ResourceNotFoundException:
    """GetAlias, AddPermission and RemovePermission on an alias that does not exist."""
    return ResourceNotFoundException(f"Cannot find alias arn: {alias_arn}")


def alias_not_found(alias_arn: str) -> ResourceNotFoundException:
    """UpdateAlias on an alias that does not exist."""
    return ResourceNotFoundException(f"Alias not found: {alias_arn}")


def alias_exists(alias_arn: str) -> ResourceConflictException:
    return ResourceConflictException(f"Alias already exists: {alias_arn}")


def version_in_use(aliases: list[str]) -> ResourceConflictException:
    """DeleteFunction of a version that aliases route to (AWS names them as a Java list)."""
    return ResourceConflictException(
        f"Unable to delete version because the following aliases reference it: [{', '.join(aliases)}]"
    )
