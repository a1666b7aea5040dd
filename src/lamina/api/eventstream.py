"""The ``application/vnd.amazon.eventstream`` message framing (AWS's event streams).

Facts about the framing (AWS "Event stream encoding", as botocore's ``eventstream`` parser reads it):

- A message is ``total length`` (u32, big-endian, the whole message), ``headers length`` (u32),
  ``prelude CRC`` (CRC-32 of those first 8 bytes), the headers, the payload, then ``message CRC``
  (CRC-32 of everything before it). CRC-32 is zlib's (IEEE 802.3).
- A header is its name's length (u8) and name, a value type (u8; 7 is a UTF-8 string), and for a
  string its length (u16, big-endian) and bytes.
- An event of a rest-json operation's event stream carries ``:message-type`` ``event``,
  ``:event-type`` (the member name of the union: ``PayloadChunk``), and ``:content-type``: a member
  marked ``eventpayload`` travels as the raw payload (``application/octet-stream`` for a blob), the
  other members as one JSON object (``application/json``).
- A message is at most 16 MiB (botocore refuses a bigger payload); larger blobs are split over
  several events by the producer.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MAX_PAYLOAD_BYTES", "encode_event", "encode_message"]

_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
# botocore's limits: 16 MiB of payload, 128 KiB of headers.
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
_MAX_HEADERS_BYTES = 128 * 1024


def _header(name: str, value: str) -> bytes:
    raw_name = name.encode()
    raw_value = value.encode()
    if len(raw_name) > 255 or len(raw_value) > 0xFFFF:
        raise ValueError(f"event stream header too long: {name!r}")
    return b"%c%s%c%s%s" % (len(raw_name), raw_name, _STRING, struct.pack(">H", len(raw_value)), raw_value)


def encode_message(headers: Sequence[tuple[str, str]], payload: bytes) -> bytes:
    """One event stream message with string ``headers`` (in order) and ``payload``."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"event stream payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    encoded = b"".join(_header(name, value) for name, value in headers)
    if len(encoded) > _MAX_HEADERS_BYTES:
        raise ValueError(f"event stream headers of {len(encoded)} bytes exceed {_MAX_HEADERS_BYTES}")
    prelude = _PRELUDE.pack(12 + len(encoded) + len(payload) + 4, len(encoded))
    head = prelude + _CRC.pack(zlib.crc32(prelude)) + encoded
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + payload + _CRC.pack(crc)


def encode_event(event_shape: Any, event_type: str, members: Mapping[str, Any]) -> bytes:
    """The message of one event of a botocore event stream shape: ``event_type`` names the member
    of ``event_shape`` (a structure marked ``eventstream``), ``members`` that event's values."""
    shape = event_shape.members[event_type]
    payload = b""
    content_type = "application/json"
    document: dict[str, Any] = {}
    for name, member in shape.members.items():
        value = members.get(name)
        if value is None:
            continue
        if member.serialization.get("eventpayload"):
            if member.type_name == "blob":
                payload, content_type = bytes(value), "application/octet-stream"
            elif member.type_name == "string":
                payload, content_type = str(value).encode(), "text/plain"
            else:
                payload = json.dumps(value, separators=(",", ":")).encode()
            document = {}
            break
        wire = member.serialization.get("name", name)
        document[wire] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    else:
        payload = json.dumps(document, separators=(",", ":")).encode()
    return encode_message(
        ((":event-type", event_type), (":content-type", content_type), (":message-type", "event")), payload
    )
