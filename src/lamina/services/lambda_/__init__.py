"""The Lambda service (rest-json, botocore model ``lambda/2015-03-31``)."""

from __future__ import annotations

from typing import Any

from lamina.services.base import ServiceBinding
from lamina.services.lambda_ import (
    aliases,
    code_signing,
    concurrency,
    event_configs,
    function_settings,
    functions,
    invoke,
    layers,
    permissions,
    provisioned,
    streaming,
    tags,
    unserved,
    urls,
    wire,
)
from lamina.services.platform import Platform


def binding(loader: Any, platform: Platform) -> ServiceBinding[Platform]:
    """Lambda's operations bound to its botocore model (``loader``: a botocore session); the
    handlers receive the whole ``platform``."""
    return ServiceBinding(
        model=loader.get_service_model("lambda"),
        deps=platform,
        handlers={
            **layers.HANDLERS,
            **functions.HANDLERS,
            **permissions.HANDLERS,
            **urls.HANDLERS,
            **tags.HANDLERS,
            **aliases.HANDLERS,
            **concurrency.HANDLERS,
            **provisioned.HANDLERS,
            "Invoke": invoke.invoke,
            "InvokeWithResponseStream": streaming.invoke_with_response_stream,
            **event_configs.HANDLERS,
            **function_settings.HANDLERS,
            **code_signing.HANDLERS,
        },
        overrides=wire.OVERRIDES,
        max_request_bytes=wire.MAX_REQUEST_BYTES,
        validation_order=wire.VALIDATION_ORDER,
        wire_names=wire.WIRE_NAMES,
        prevalidators={
            "CreateFunction": functions.prevalidate_create,
            "UpdateFunctionConfiguration": functions.prevalidate_create,
            "CreateAlias": aliases.prevalidate,
            "UpdateAlias": aliases.prevalidate,
        },
        unserved=unserved.NEEDS,
    )
