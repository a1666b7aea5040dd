"""Operation handlers, one package per AWS service.

A :class:`ServiceBinding` ties a botocore service model to its handlers; the API
layer routes, parses and validates, then calls ``handler(ctx, params)`` and
serialises what it returns.
"""

from lamina.services.base import Handler, RequestContext, ServiceBinding
from lamina.services.platform import Platform

__all__ = ["Handler", "Platform", "RequestContext", "ServiceBinding"]
