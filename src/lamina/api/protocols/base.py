"""The interface every wire protocol implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from lamina.api.http import Request, Response
from lamina.errors import AwsError


@dataclass(frozen=True)
class OperationMatch:
    """The operation a request was routed to, and what routing already extracted."""

    operation: Any  # botocore OperationModel
    uri_params: dict[str, str]


class Protocol(abc.ABC):
    """Routing, parsing and serialising for one botocore service model."""

    #: True when ``match`` needs the request body (query/ec2 protocols: ``Action`` may be in the form).
    routes_on_body: bool = False

    def __init__(self, service_model: Any) -> None:
        self.service_model = service_model

    @abc.abstractmethod
    def match(self, request: Request) -> OperationMatch:
        """Find the operation. May look at method, path and query only (not the body)."""

    @abc.abstractmethod
    def parse(self, match: OperationMatch, request: Request) -> dict[str, Any]:
        """Read the input members from path, query, headers and body."""

    @abc.abstractmethod
    def serialize(self, match: OperationMatch, output: dict[str, Any], request_id: str) -> Response:
        """Render a successful output."""

    @abc.abstractmethod
    def serialize_error(self, error: AwsError, request_id: str) -> Response:
        """Render an error in the service's error format."""
