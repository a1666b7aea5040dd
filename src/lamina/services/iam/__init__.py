"""IAM (query protocol, ``iam/2010-05-08``): roles, inline and managed policies."""

from __future__ import annotations

from typing import Any

from lamina.services.base import ServiceBinding
from lamina.services.iam import handlers


def binding(loader: Any) -> ServiceBinding:
    return ServiceBinding(model=loader.get_service_model("iam"), handlers=dict(handlers.HANDLERS))
