"""STS (query protocol, ``sts/2011-06-15``): GetCallerIdentity and AssumeRole."""

from __future__ import annotations

from typing import Any

from lamina.services.base import ServiceBinding
from lamina.services.sts import handlers


def binding(loader: Any) -> ServiceBinding:
    return ServiceBinding(model=loader.get_service_model("sts"), handlers=dict(handlers.HANDLERS))
