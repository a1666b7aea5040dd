"""AWS wire protocols, driven by botocore service models.

Each protocol knows how to find the operation a request is for, parse its input
into a plain dict keyed like AWS, and render outputs and errors. ``rest-json``
(Lambda), ``query`` (IAM, STS), ``ec2``, ``rest-xml`` (S3) and ``json`` (CloudWatch Logs) implement the same interface.
"""

from __future__ import annotations

from lamina.api.protocols.base import OperationMatch, Protocol
from lamina.api.protocols.ec2 import Ec2Protocol
from lamina.api.protocols.json import JsonProtocol
from lamina.api.protocols.query import QueryProtocol
from lamina.api.protocols.restjson import RestJsonProtocol
from lamina.api.protocols.restxml import RestXmlProtocol

__all__ = [
    "Ec2Protocol",
    "JsonProtocol",
    "OperationMatch",
    "Protocol",
    "QueryProtocol",
    "RestJsonProtocol",
    "RestXmlProtocol",
    "protocol_for",
]


def protocol_for(service_model: object) -> Protocol:
    """The protocol implementation for a botocore service model."""
    name = getattr(service_model, "protocol", None)
    if name == "rest-json":
        return RestJsonProtocol(service_model)
    if name == "json":
        return JsonProtocol(service_model)
    if name == "query":
        return QueryProtocol(service_model)
    if name == "ec2":
        return Ec2Protocol(service_model)
    if name == "rest-xml":
        return RestXmlProtocol(service_model)
    raise ValueError(f"unsupported protocol {name!r}")
