"""The ``rest-json`` protocol (Lambda): HTTP method + URI template routing, JSON bodies.

Routing is compiled from each operation's ``http.requestUri``. A literal query in
the template (``/2018-10-31/layers?find=LayerVersion``) is a routing condition:
such operations are tried before their query-less siblings on the same path.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

from lamina.api.eventstream import encode_event
from lamina.api.http import Request, Response
from lamina.api.protocols.base import OperationMatch, Protocol
from lamina.domain import jsontext
from lamina.errors import AwsError, BodyStyle, SerializationException, UnknownOperationException

_LABEL = re.compile(r"\{([^}]+?)(\+?)\}")


class _Route:
    __slots__ = ("operation", "method", "regex", "query", "literal_len", "labels", "head")

    def __init__(self, operation: Any) -> None:
        self.operation = operation
        self.method: str = operation.http["method"]
        uri: str = operation.http["requestUri"]
        path, _, query = uri.partition("?")
        self.query: list[tuple[str, str | None]] = []
        for part in filter(None, query.split("&")):
            key, eq, value = part.partition("=")
            self.query.append((key, value if eq else None))
        pattern = ""
        pos = 0
        for m in _LABEL.finditer(path):
            pattern += re.escape(path[pos : m.start()])
            name = m.group(1)
            pattern += f"(?P<{_group(name)}>.+)" if m.group(2) else f"(?P<{_group(name)}>[^/]+)"
            pos = m.end()
        pattern += re.escape(path[pos:])
        self.regex = re.compile(pattern + "/?$" if path != "/" else "/$")
        self.literal_len = len(_LABEL.sub("", path))
        self.labels = tuple(label for label, _ in _LABEL.findall(path))
        # The first two path segments when both are literal (``2018-10-31/layers``): the routing key.
        segments = path.split("/")[1:3]
        literal = len(segments) == 2 and not any("{" in segment for segment in segments)
        self.head = "/".join(segments) if literal else None

    def query_matches(self, request: Request) -> bool:
        present: dict[str, str] = {}
        for key, value in request.query:
            present.setdefault(key, value)
        for key, wanted in self.query:
            if key not in present or (wanted is not None and present[key] != wanted):
                return False
        return True


def _group(label: str) -> str:
    return "g_" + re.sub(r"\W", "_", label)


class RestJsonProtocol(Protocol):
    """rest-json: Lambda's protocol."""

    def __init__(self, service_model: Any) -> None:
        super().__init__(service_model)
        routes = [_Route(service_model.operation_model(n)) for n in service_model.operation_names]
        # Most specific first: literal query conditions, then longer literal paths.
        routes.sort(key=lambda r: (-len(r.query), -r.literal_len))
        # Routes by method and first two path segments (each list in the order above); routes whose
        # first two segments are not literal are tried for every path of their method.
        self._routes: dict[tuple[str, str | None], list[_Route]] = {}
        for route in routes:
            self._routes.setdefault((route.method, route.head), []).append(route)
        order = {id(r): i for i, r in enumerate(routes)}
        for (method, head), bucket in list(self._routes.items()):
            if head is not None:
                bucket += self._routes.get((method, None), [])
                bucket.sort(key=lambda r: order[id(r)])

    # -- routing -----------------------------------------------------------

    def match(self, request: Request) -> OperationMatch:
        head = "/".join(request.raw_path.split("/", 3)[1:3])
        routes = self._routes.get((request.method, head))
        if routes is None:
            routes = self._routes.get((request.method, None), [])
        for route in routes:
            m = route.regex.match(request.raw_path)
            if m is None or not route.query_matches(request):
                continue
            params = {label: unquote(m.group(_group(label))) for label in route.labels}
            return OperationMatch(route.operation, params)
        raise UnknownOperationException("Unknown operation")

    # -- parsing -----------------------------------------------------------

    def parse(self, match: OperationMatch, request: Request) -> dict[str, Any]:
        shape = match.operation.input_shape
        if shape is None:
            return {}
        params: dict[str, Any] = {}
        body_members = {}
        payload_name = shape.serialization.get("payload")
        for name, member in shape.members.items():
            loc = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if loc == "uri":
                if wire in match.uri_params:
                    params[name] = _from_text(member, match.uri_params[wire], name)
            elif loc == "querystring":
                self._parse_query_member(request, member, name, wire, params)
            elif loc == "header":
                value = request.headers.get(wire.lower())
                if value is not None:
                    params[name] = _from_text(member, value, name)
            elif loc == "headers":
                prefix = wire.lower()
                found = {k[len(prefix) :]: v for k, v in request.headers.items() if k.startswith(prefix)}
                if found:
                    params[name] = found
            elif name == payload_name:
                if member.type_name == "blob":
                    params[name] = request.body
                elif member.type_name == "string":
                    params[name] = request.body.decode("utf-8", "replace")
                elif request.body:
                    params[name] = from_json(member, load_json(request.body), name)
            else:
                body_members[name] = member
        if body_members and payload_name is None and request.body.strip():
            document = load_json(request.body)
            if not isinstance(document, dict):
                raise SerializationException("Start of list found where not expected")
            for name, member in body_members.items():
                wire = member.serialization.get("name", name)
                if wire in document and document[wire] is not None:
                    params[name] = from_json(member, document[wire], name)
        return params

    @staticmethod
    def _parse_query_member(
        request: Request, member: Any, name: str, wire: str, params: dict[str, Any]
    ) -> None:
        if member.type_name == "list":
            values = [v for k, v in request.query if k == wire]
            if values:
                params[name] = [_from_text(member.member, v, name) for v in values]
        elif member.type_name == "map":
            taken = {k for k in params}
            params[name] = {k: v for k, v in request.query if k not in taken}
        else:
            value = request.query_value(wire)
            if value is not None:
                params[name] = _from_text(member, value, name)

    # -- serialising -------------------------------------------------------

    def serialize(self, match: OperationMatch, output: dict[str, Any], request_id: str) -> Response:
        op = match.operation
        status = int(op.http.get("responseCode", 200))
        headers = [("x-amzn-RequestId", request_id)]
        shape = op.output_shape
        body = b""
        stream: AsyncIterator[bytes] | None = None
        if shape is not None:
            payload_name = shape.serialization.get("payload")
            document: dict[str, Any] = {}
            for name, member in shape.members.items():
                if name not in output or output[name] is None:
                    continue
                value = output[name]
                loc = member.serialization.get("location")
                wire = member.serialization.get("name", name)
                if loc == "header":
                    headers.append((wire, _to_header(member, value)))
                elif loc == "headers":
                    headers.extend((wire + k, str(v)) for k, v in value.items())
                elif loc == "statusCode":
                    status = int(value)
                elif name == payload_name and member.serialization.get("eventstream"):
                    # An async iterator of (event type, members): encoded as they come.
                    stream = _encode_events(member, value)
                elif name == payload_name:
                    if isinstance(value, bytes):
                        body = value
                    elif isinstance(value, str):
                        body = value.encode()
                    else:
                        body = json.dumps(to_json(member, value), separators=(",", ":")).encode()
                else:
                    document[wire] = to_json(member, value)
            if payload_name is None and (document or status != 204):
                body = json.dumps(document, separators=(",", ":")).encode()
        if stream is not None:
            # The output's own Content-Type member (InvokeWithResponseStream's) says what it is.
            return Response(status, headers, stream=stream)
        if body or status != 204:
            headers.append(("Content-Type", "application/json"))
        return Response(status, headers, body)

    def serialize_error(self, error: AwsError, request_id: str) -> Response:
        style = error.style
        body: dict[str, Any]
        if style is BodyStyle.USER_LOWER:
            body = {"Type": "User", "message": error.message}
        elif style is BodyStyle.USER_UPPER:
            body = {"Type": "User", "Message": error.message}
        elif style is BodyStyle.UPPER:
            body = {"Message": error.message}
        else:
            body = {"message": error.message}
        if not error.sender_fault and "Type" in body:
            body["Type"] = "Service"
        body.update(error.fields)
        headers = [
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", error.code),
            ("Content-Type", "application/json"),
        ]
        return Response(error.status, headers, json.dumps(body, separators=(",", ":")).encode())


async def _encode_events(
    shape: Any, events: AsyncIterator[tuple[str, dict[str, Any]]]
) -> AsyncIterator[bytes]:
    """The event stream messages of ``events`` (see :mod:`lamina.api.eventstream`); closing this
    closes ``events`` (the producer learns that its reader is gone)."""
    try:
        async for event_type, members in events:
            yield encode_event(shape, event_type, members)
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


def load_json(body: bytes) -> Any:
    try:
        return jsontext.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SerializationException(f"Could not parse request body into json: {exc}") from exc


# The ranges of Smithy's ``integer`` (32-bit) and ``long`` (64-bit): a number past them is refused
# as AWS's Java deserializers refuse it (Jackson: "Numeric value (...) out of range of long"),
# never accepted as a Python int of any size (it would overflow SQLite, or a time, later: a 500).
INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _in_range(kind: str, value: int, name: str) -> int:
    low, high = INT_RANGES[kind]
    if not low <= value <= high:
        raise SerializationException(f"Numeric value ({value}) out of range of {kind} at '{name}'")
    return value


def _from_text(shape: Any, text: str, name: str) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long"):
        try:
            number = int(text)
        except ValueError as exc:
            raise SerializationException(f"Value '{text}' at '{name}' is not a valid number") from exc
        return _in_range(kind, number, name)
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError as exc:
            raise SerializationException(f"Value '{text}' at '{name}' is not a valid number") from exc
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise SerializationException(f"Value '{text}' at '{name}' is not a valid boolean")
        return text.lower() == "true"
    if kind == "timestamp":
        return _parse_timestamp(text, name)
    if kind == "blob":
        return _b64(text, name)
    return text


def _b64(text: str, name: str) -> bytes:
    try:
        # strict_mode: rejects non-alphabet characters like validate=True, but in C (10x faster).
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise SerializationException(f"Value at '{name}' is not valid base64") from exc


def _parse_timestamp(value: Any, name: str) -> dt.datetime:
    try:
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise SerializationException(f"Value '{value}' at '{name}' is not a valid timestamp") from exc


def _type_error(name: str, expected: str) -> SerializationException:
    return SerializationException(f"Unexpected value type at '{name}': expected {expected}")


def from_json(shape: Any, value: Any, name: str) -> Any:
    kind = shape.type_name
    if value is None:
        return None
    if kind == "structure":
        if not isinstance(value, dict):
            raise _type_error(name, "an object")
        out = {}
        for mname, member in shape.members.items():
            wire = member.serialization.get("name", mname)
            if wire in value and value[wire] is not None:
                out[mname] = from_json(member, value[wire], f"{name}.{mname}")
        return out
    if kind == "list":
        if not isinstance(value, list):
            raise _type_error(name, "a list")
        return [from_json(shape.member, v, name) for v in value]
    if kind == "map":
        if not isinstance(value, dict):
            raise _type_error(name, "an object")
        return {str(k): from_json(shape.value, v, name) for k, v in value.items()}
    if kind == "blob":
        if not isinstance(value, str):
            raise _type_error(name, "a base64 string")
        return _b64(value, name)
    if kind == "string":
        if not isinstance(value, str):
            raise _type_error(name, "a string")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(name, "an integer")
        return _in_range(kind, value, name)
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(name, "a number")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _type_error(name, "a boolean")
        return value
    if kind == "timestamp":
        return _parse_timestamp(value, name)
    return value


def to_json(shape: Any, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                out[member.serialization.get("name", name)] = to_json(member, value[name])
        return out
    if kind == "list":
        return [to_json(shape.member, v) for v in value]
    if kind == "map":
        return {k: to_json(shape.value, v) for k, v in value.items()}
    if kind == "blob":
        return base64.b64encode(value).decode() if isinstance(value, bytes | bytearray) else value
    if kind == "timestamp" and isinstance(value, dt.datetime):
        fmt = shape.serialization.get("timestampFormat", "unixTimestamp")
        if fmt == "iso8601":
            return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return value.timestamp()
    return value


def _to_header(shape: Any, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime):
        return value.strftime("%a, %d %b %Y %H:%M:%S GMT")
    if shape.type_name == "jsonvalue" or shape.serialization.get("jsonvalue"):
        return base64.b64encode(json.dumps(value).encode()).decode()
    return str(value)
