"""The ``json`` protocol (CloudWatch Logs): ``POST /`` with ``X-Amz-Target: <prefix>.<Operation>``.

Facts (botocore's ``json`` serializer and AWS's "JSON 1.1 protocol" description): the operation
is named by the ``X-Amz-Target`` header (``Logs_20140328.CreateLogGroup``), the input is the JSON
body, the output a JSON document of ``Content-Type: application/x-amz-json-1.1``, and an error
is ``{"__type": <code>, "message": <message>}`` with its HTTP status.
"""

from __future__ import annotations

import json
from typing import Any

from lamina.api.http import Request, Response
from lamina.api.protocols.base import OperationMatch, Protocol
from lamina.api.protocols.restjson import from_json, load_json, to_json
from lamina.errors import AwsError, SerializationException, UnknownOperationException

CONTENT_TYPE = "application/x-amz-json-1.1"


class JsonProtocol(Protocol):
    """json 1.0/1.1: one path, the operation in a header, JSON in and out."""

    def __init__(self, service_model: Any) -> None:
        super().__init__(service_model)
        self._prefix = str(service_model.metadata.get("targetPrefix", ""))
        self._version = str(service_model.metadata.get("jsonVersion", "1.1"))

    def match(self, request: Request) -> OperationMatch:
        target = request.headers.get("x-amz-target", "")
        prefix, _, name = target.rpartition(".")
        if (
            request.method != "POST"
            or prefix != self._prefix
            or name not in self.service_model.operation_names
        ):
            raise UnknownOperationException("Unknown operation")
        return OperationMatch(self.service_model.operation_model(name), {})

    def parse(self, match: OperationMatch, request: Request) -> dict[str, Any]:
        shape = match.operation.input_shape
        if shape is None or not request.body.strip():
            return {}
        document = load_json(request.body)
        if not isinstance(document, dict):
            raise SerializationException("Start of list found where not expected")
        parsed = from_json(shape, document, shape.name)
        return dict(parsed) if isinstance(parsed, dict) else {}

    def serialize(self, match: OperationMatch, output: dict[str, Any], request_id: str) -> Response:
        shape = match.operation.output_shape
        document = to_json(shape, output) if shape is not None else {}
        headers = [
            ("x-amzn-RequestId", request_id),
            ("Content-Type", f"application/x-amz-json-{self._version}"),
        ]
        return Response(200, headers, json.dumps(document, separators=(",", ":")).encode())

    def serialize_error(self, error: AwsError, request_id: str) -> Response:
        # CloudWatch Logs answers an IAM denial with 400, not the 403 of Lambda or IAM (SDK
        # reports: "Status Code: 400; Error Code: AccessDeniedException" for logs:PutLogEvents).
        status = 400 if error.code == "AccessDeniedException" else error.status
        body: dict[str, Any] = {"__type": error.code, "message": error.message}
        body.update(error.fields)
        headers = [
            ("x-amzn-RequestId", request_id),
            ("Content-Type", f"application/x-amz-json-{self._version}"),
        ]
        return Response(status, headers, json.dumps(body, separators=(",", ":")).encode())
