"""AWS wire protocols, driven by botocore service models.

Each protocol knows how to find the operation a request is for, parse its input
into a plain dict keyed like AWS, and render outputs and errors. ``rest-json``
(Lambda) is here; ``query`` (IAM, STS) and ``ec2`` implement the same interface.
"""

from __future__ import annotations

from lamina.api.protocols.base import OperationMatch, Protocol
from lamina.api.protocols.restjson import RestJsonProtocol

__all__ = ["OperationMatch", "Protocol", "RestJsonProtocol", "protocol_for"]


def protocol_for(service_model: object) -> Protocol:
    """The protocol implementation for a botocore service model."""
    name = getattr(service_model, "protocol", None)
    if name == "rest-json":
        return RestJsonProtocol(service_model)
    raise ValueError(f"unsupported protocol {name!r}")
