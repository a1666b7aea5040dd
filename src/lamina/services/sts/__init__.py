"""STS (query protocol, ``sts/2011-06-15``): GetCallerIdentity, AssumeRole, GetSessionToken and
DecodeAuthorizationMessage."""

from __future__ import annotations

from typing import Any

from lamina.services.base import ServiceBinding
from lamina.services.sts import handlers
from lamina.store.iam import IamStore


def binding(loader: Any, iam: IamStore) -> ServiceBinding[IamStore]:
    """STS's operations bound to its botocore model (``loader``: a botocore session); the
    handlers receive the IAM store."""
    return ServiceBinding(
        model=loader.get_service_model("sts"),
        deps=iam,
        handlers=handlers.HANDLERS,
        prevalidators={"AssumeRole": handlers.prevalidate_assume_role},
    )
