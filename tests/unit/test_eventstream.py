"""The event stream framing, read back by botocore's own parser (EventStreamBuffer, and the
EventStream boto3 hands to ``invoke_with_response_stream`` callers)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import botocore.session
import pytest
from botocore.eventstream import EventStream, EventStreamBuffer
from botocore.parsers import EventStreamJSONParser

from lamina.api.eventstream import MAX_PAYLOAD_BYTES, encode_event, encode_message
from lamina.api.http import Request
from lamina.api.protocols.restjson import RestJsonProtocol

MODEL = botocore.session.get_session().get_service_model("lambda")
OPERATION = MODEL.operation_model("InvokeWithResponseStream")
EVENTS = OPERATION.output_shape.members["EventStream"]


def test_a_message_decodes_with_botocore() -> None:
    data = encode_message([(":message-type", "event"), (":event-type", "X"), ("x-h", "vé")], b"payload")
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    [message] = list(buffer)
    assert message.headers == {":message-type": "event", ":event-type": "X", "x-h": "vé"}
    assert message.payload == b"payload"


def test_messages_split_anywhere_decode_in_order() -> None:
    data = b"".join(encode_message([(":event-type", f"E{i}")], bytes([i]) * i) for i in range(20))
    buffer = EventStreamBuffer()
    got = []
    for at in range(0, len(data), 7):
        buffer.add_data(data[at : at + 7])
        got.extend(buffer)
    assert [m.headers[":event-type"] for m in got] == [f"E{i}" for i in range(20)]
    assert [m.payload for m in got] == [bytes([i]) * i for i in range(20)]


def test_an_empty_payload_and_no_headers() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(encode_message([], b""))
    [message] = list(buffer)
    assert message.headers == {} and message.payload == b""


def test_oversized_payloads_and_headers_are_refused() -> None:
    with pytest.raises(ValueError, match="payload"):
        encode_message([], b"x" * (MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(ValueError, match="too long"):
        encode_message([("x" * 256, "v")], b"")


def _events(data: bytes) -> list[dict[str, Any]]:
    """What boto3's EventStream yields for these bytes."""

    class Raw:
        def stream(self) -> Any:
            yield data

        def close(self) -> None:
            return None

    return list(EventStream(Raw(), EVENTS, EventStreamJSONParser(), "InvokeWithResponseStream"))


def test_lambda_events_parse_as_boto3_shows_them() -> None:
    data = encode_event(EVENTS, "PayloadChunk", {"Payload": b"\x00\xffbytes"}) + encode_event(
        EVENTS, "InvokeComplete", {"ErrorCode": "Unhandled", "ErrorDetails": "{}", "LogResult": "TG9n"}
    )
    assert _events(data) == [
        {"PayloadChunk": {"Payload": b"\x00\xffbytes"}},
        {"InvokeComplete": {"ErrorCode": "Unhandled", "ErrorDetails": "{}", "LogResult": "TG9n"}},
    ]
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    chunk, complete = list(buffer)
    assert chunk.headers[":content-type"] == "application/octet-stream"
    assert complete.headers[":content-type"] == "application/json"
    assert complete.headers[":message-type"] == "event"
    assert json.loads(complete.payload) == {
        "ErrorCode": "Unhandled",
        "ErrorDetails": "{}",
        "LogResult": "TG9n",
    }


def test_an_empty_invoke_complete_is_an_empty_object() -> None:
    assert _events(encode_event(EVENTS, "InvokeComplete", {})) == [{"InvokeComplete": {}}]


def test_the_rest_json_serializer_streams_the_events() -> None:
    protocol = RestJsonProtocol(MODEL)
    match = protocol.match(Request("POST", "/2021-11-15/functions/f/response-streaming-invocations", "", {}))
    assert match.operation.name == "InvokeWithResponseStream"

    async def events() -> AsyncIterator[tuple[str, dict[str, Any]]]:
        yield "PayloadChunk", {"Payload": b"a"}
        yield "InvokeComplete", {}

    response = protocol.serialize(
        match,
        {
            "StatusCode": 200,
            "ExecutedVersion": "$LATEST",
            "ResponseStreamContentType": "application/vnd.amazon.eventstream",
            "EventStream": events(),
        },
        "rid",
    )
    assert response.status == 200 and response.body == b""
    assert response.headers == [
        ("x-amzn-RequestId", "rid"),
        ("X-Amz-Executed-Version", "$LATEST"),
        ("Content-Type", "application/vnd.amazon.eventstream"),
    ]
    assert response.stream is not None
    stream = response.stream

    async def collect() -> bytes:
        return b"".join([part async for part in stream])

    assert _events(asyncio.run(collect())) == [{"PayloadChunk": {"Payload": b"a"}}, {"InvokeComplete": {}}]
