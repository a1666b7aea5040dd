"""The ``json`` protocol (CloudWatch Logs): ``POST /`` with ``X-Amz-Target: <prefix>.<Operation>``.

Facts (botocore's ``json`` serializer and AWS's "JSON 1.1 protocol" description): the operation
is named by the ``X-Amz-Target`` header (``Logs_20140328.CreateLogGroup``), the input is the JSON
body, the output a JSON document of ``Content-Type: application/x-amz-json-1.1``, and an error
is ``{"__type": <code>, "message": <message>}`` with its HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from lamina.api.eventstream import encode_event, encode_message
from lamina.api.http import Request, Response
from lamina.api.protocols.base import OperationMatch, Protocol
from lamina.api.protocols.restjson import from_json, load_json, to_json
from lamina.errors import AwsError, SerializationException, UnknownOperationException

CONTENT_TYPE = "application/x-amz-json-1.1"
EVENT_STREAM_TYPE = "application/vnd.amazon.eventstream"


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
        stream_name = shape.event_stream_name if shape is not None else None
        if stream_name is not None and stream_name in output:
            return self._serialize_stream(shape, stream_name, output, request_id)
        document = to_json(shape, output) if shape is not None else {}
        headers = [
            ("x-amzn-RequestId", request_id),
            ("Content-Type", f"application/x-amz-json-{self._version}"),
        ]
        return Response(200, headers, json.dumps(document, separators=(",", ":")).encode())

    def _serialize_stream(
        self, shape: Any, stream_name: str, output: dict[str, Any], request_id: str
    ) -> Response:
        """An event stream output (StartLiveTail): ``application/vnd.amazon.eventstream``, whose
        first message is the ``initial-response`` event carrying the output's other members as JSON
        (botocore's json parser reads it before the stream's own events), then each event as the
        handler's async iterator of (event type, members) yields it."""
        members = {k: v for k, v in output.items() if k != stream_name}
        initial = json.dumps(to_json(shape, members), separators=(",", ":")).encode()
        headers = [("x-amzn-RequestId", request_id), ("Content-Type", EVENT_STREAM_TYPE)]
        return Response(
            200, headers, stream=_events(shape.members[stream_name], initial, output[stream_name])
        )

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


async def _events(
    shape: Any, initial: bytes, events: AsyncIterator[tuple[str, dict[str, Any]]]
) -> AsyncIterator[bytes]:
    """The messages of an event stream output: ``initial-response``, then each event; a member of
    the stream's union marked ``exception`` (SessionTimeoutException) travels as an ``exception``
    message, its members as JSON (AWS "Event stream encoding"). Closing this closes ``events``."""
    try:
        yield encode_message(
            (
                (":event-type", "initial-response"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ),
            initial,
        )
        async for event_type, members in events:
            member = shape.members[event_type]
            if member.metadata.get("exception"):
                body = json.dumps(to_json(member, members), separators=(",", ":")).encode()
                yield encode_message(
                    (
                        (":exception-type", event_type),
                        (":content-type", "application/json"),
                        (":message-type", "exception"),
                    ),
                    body,
                )
            else:
                yield encode_event(shape, event_type, to_json(member, members))
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
