"""IAM (query protocol, ``iam/2010-05-08``): roles, inline and managed policies."""

from __future__ import annotations

from typing import Any

from lamina.services.base import ServiceBinding
from lamina.services.iam import handlers
from lamina.store.iam import IamStore


def binding(loader: Any, iam: IamStore) -> ServiceBinding[IamStore]:
    """IAM's operations bound to its botocore model (``loader``: a botocore session); the
    handlers receive the IAM store."""
    return ServiceBinding(model=loader.get_service_model("iam"), deps=iam, handlers=handlers.HANDLERS)
