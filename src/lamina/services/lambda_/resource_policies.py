"""Lambda's resource-based policies, as the authorize stage reads them: a layer version's policy
(AddLayerVersionPermission) and a function's (AddPermission), by the resource's ARN."""

from __future__ import annotations

from collections.abc import Callable

from lamina.domain import layers as L
from lamina.domain.arns import Arn
from lamina.services.platform import Platform


def reader(platform: Platform) -> Callable[[Arn], str | None]:
    """The policy document (JSON) of the Lambda resource an ARN names, or None if it has none."""

    def read(arn: Arn) -> str | None:
        parts = arn.resource.split(":")
        if parts[0] == "layer" and len(parts) == 3 and parts[2].isdigit():
            found = platform.layers.get_layer_version(arn.account, arn.region, parts[1], int(parts[2]))
            return L.policy_document(found.policy) if found is not None and found.policy else None
        if parts[0] == "function" and len(parts) in (2, 3):
            # function:NAME ($LATEST) or function:NAME:QUALIFIER: that version's own policy.
            qualifier = parts[2] if len(parts) == 3 else None
            return platform.functions.function_policy(arn.account, arn.region, parts[1], qualifier)
        return None

    return read
