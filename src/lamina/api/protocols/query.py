"""The ``query`` protocol (IAM ``2010-05-08``, STS ``2011-06-15``): form parameters in, XML out.

A request is a flat list of ``key=value`` parameters, in an
``application/x-www-form-urlencoded`` POST body or in the query string of a GET (both
are read; the body wins on a clash). ``Action`` names the operation and ``Version`` the
API version. The other keys spell out the input shape (the inverse of botocore's
``QuerySerializer``, which is what every SDK sends):

- structure members: ``Parent.Member`` (``locationName`` if the model gives one);
- lists: ``Name.member.N`` (N from 1), or ``Name.N`` for flattened lists; an empty list
  is sent as ``Name=`` with no entries;
- maps: ``Name.entry.N.key`` / ``Name.entry.N.value``;
- booleans ``true``/``false``, ISO 8601 timestamps, base64 blobs.

Unknown parameters are ignored, as AWS does. Responses are
``<OpResponse xmlns=...><OpResult>...</OpResult><ResponseMetadata>...</OpResponse>``
(the result element is the output shape's ``resultWrapper``) and errors
``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>``.

Routing already reads every parameter (``Action`` may be in the body), so the flat
parameters ride along to :meth:`QueryProtocol.parse` in ``OperationMatch.uri_params``.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from lamina.api.http import Request, Response
from lamina.api.protocols import xmlout
from lamina.api.protocols.base import OperationMatch, Protocol
from lamina.api.validation import lower_camel
from lamina.errors import AwsError

FORM_TYPE: Final = "application/x-www-form-urlencoded"
_INTEGER = re.compile(r"[+-]?[0-9]+")
_BOUNDS = {"integer": (-(1 << 31), (1 << 31) - 1), "long": (-(1 << 63), (1 << 63) - 1)}


class _Absent:
    """Marks a member that was not sent (distinct from any parsed value)."""


_ABSENT: Final = _Absent()


class FormNode:
    """One dotted-key segment: ``Tags.member.1.Key`` is root > Tags > member > 1 > Key."""

    __slots__ = ("value", "children")

    def __init__(self) -> None:
        self.value: str | None = None
        self.children: dict[str, FormNode] = {}


def form_params(request: Request) -> dict[str, str]:
    """Every parameter of a query-style request: the query string, then the form body."""
    params = dict(request.query)
    if request.body:
        content_type = request.headers.get("content-type", FORM_TYPE).lower()
        if content_type.startswith(FORM_TYPE):
            text = request.body.decode("utf-8", "replace")
            params.update(parse_qsl(text, keep_blank_values=True))
    return params


def _tree(params: Mapping[str, str]) -> FormNode:
    root = FormNode()
    for key, value in params.items():
        node = root
        for part in key.split("."):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = FormNode()
            node = child
        node.value = value
    return root


def numbered_children(node: FormNode) -> list[tuple[int, FormNode]]:
    """Children ``1``, ``2``, ... with their numbers, in numeric order (other keys are not entries)."""
    items = [(int(key), child) for key, child in node.children.items() if key.isdigit()]
    items.sort(key=lambda pair: pair[0])
    return items


class QueryProtocol(Protocol):
    """query: IAM's and STS's protocol."""

    routes_on_body = True
    dialect: xmlout.XmlDialect = xmlout.QUERY
    content_type = "text/xml"

    def __init__(self, service_model: Any) -> None:
        super().__init__(service_model)
        self.version: str = service_model.api_version
        namespace = service_model.metadata.get("xmlNamespace") or ""
        self.namespace = namespace if not namespace or namespace.endswith("/") else namespace + "/"
        self._operations = {
            name: service_model.operation_model(name) for name in service_model.operation_names
        }

    # -- routing -----------------------------------------------------------

    def match(self, request: Request) -> OperationMatch:
        params = form_params(request)
        action = params.get("Action")
        if not action:
            raise self.missing_action()
        operation = self._operations.get(action)
        version = params.get("Version")
        if operation is None or version != self.version:
            raise self.unknown_action(action, version)
        return OperationMatch(operation, params)

    def missing_action(self) -> AwsError:
        return AwsError(
            "No action was supplied with this request.", code="MissingAction", status=400, sender_fault=True
        )

    def unknown_action(self, action: str, version: str | None) -> AwsError:
        # AWS's query front end (the SES report in aws/aws-cli#37): operations are looked up
        # by (Action, Version), so an unknown version is reported the same way.
        return AwsError(
            f"Could not find operation {action} for version {version or 'NO_VERSION_SPECIFIED'}",
            code="InvalidAction",
            status=400,
            sender_fault=True,
        )

    # -- parsing -----------------------------------------------------------

    def parse(self, match: OperationMatch, request: Request) -> dict[str, Any]:
        shape = match.operation.input_shape
        if shape is None:
            return {}
        params = match.uri_params if "Action" in match.uri_params else form_params(request)
        return self._structure(shape, _tree(params), "")

    def wire_name(self, member: Any, name: str) -> str:
        """The key of a structure member (its last dotted segment)."""
        if member.type_name == "list" and member.serialization.get("flattened"):
            # botocore: a flattened list is keyed by its member's locationName if it has one.
            inner = member.member.serialization.get("name")
            if inner:
                return str(inner)
        return str(member.serialization.get("name", name))

    def key_name(self, shape: Any, default: str) -> str:
        """The key of a map entry's key or value."""
        return str(shape.serialization.get("name", default))

    def member_where(self, where: str, name: str, wire: str) -> str:
        """Where a member is, for messages: AWS's member path (``tags.1.member.key``)."""
        return f"{where}.{lower_camel(name)}" if where else lower_camel(name)

    def item_where(self, where: str, index: int) -> str:
        return f"{where}.{index}.member"

    def list_entries(self, shape: Any, node: FormNode) -> list[tuple[int, FormNode]] | None:
        """A list's entries (wire number, node) in order, or None when the list was not sent."""
        if shape.serialization.get("flattened"):
            container: FormNode | None = node
        else:
            container = node.children.get(shape.member.serialization.get("name", "member"))
        if container is None or not container.children:
            # The query serializer sends an empty list as ``Name=``.
            return [] if node.value == "" else None
        return numbered_children(container)

    def bad_value(self, text: str, where: str, expected: str) -> AwsError:
        """A value that cannot be read as its type."""
        return AwsError(
            f"Value '{text}' at '{where}' is not {expected}",
            code="ValidationError",
            status=400,
            sender_fault=True,
        )

    def check_required(self, shape: Any, parsed: dict[str, Any], where: str) -> None:
        """Hook: query leaves required members to :mod:`lamina.api.validation` (Coral's text)."""

    def _read(self, shape: Any, node: FormNode, where: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape, node, where)
        if kind == "list":
            entries = self.list_entries(shape, node)
            if entries is None:
                return _ABSENT
            out = []
            for index, entry in entries:
                value = self._read(shape.member, entry, self.item_where(where, index))
                if value is not _ABSENT:
                    out.append(value)
            return out
        if kind == "map":
            return self._map(shape, node, where)
        if node.value is None:
            return _ABSENT
        return self._scalar(shape, node.value, where)

    def _structure(self, shape: Any, node: FormNode, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = self.wire_name(member, name)
            child = node.children.get(wire)
            if child is None:
                continue
            value = self._read(member, child, self.member_where(where, name, wire))
            if value is not _ABSENT:
                out[name] = value
        self.check_required(shape, out, where)
        return out

    def _map(self, shape: Any, node: FormNode, where: str) -> Any:
        container = node if shape.serialization.get("flattened") else node.children.get("entry")
        if container is None:
            return _ABSENT
        key_name = self.key_name(shape.key, "key")
        value_name = self.key_name(shape.value, "value")
        out: dict[str, Any] = {}
        for _, entry in numbered_children(container):
            key_node = entry.children.get(key_name)
            value_node = entry.children.get(value_name)
            if key_node is None or key_node.value is None or value_node is None:
                continue
            value = self._read(shape.value, value_node, f"{where}.{key_node.value}")
            if value is not _ABSENT:
                out[key_node.value] = value
        return out

    def _scalar(self, shape: Any, text: str, where: str) -> Any:
        kind = shape.type_name
        if kind in ("string", "character"):
            return text
        if kind in ("integer", "long"):
            low, high = _BOUNDS[kind]
            if _INTEGER.fullmatch(text) is None or not low <= int(text) <= high:
                raise self.bad_value(text, where, "an integer" if kind == "integer" else "a long")
            return int(text)
        if kind == "boolean":
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise self.bad_value(text, where, "a boolean")
            return lowered == "true"
        if kind in ("float", "double"):
            try:
                if "_" in text:
                    raise ValueError(text)
                return float(text)
            except ValueError as exc:
                raise self.bad_value(text, where, "a number") from exc
        if kind == "timestamp":
            return self._timestamp(shape, text, where)
        if kind == "blob":
            try:
                return binascii.a2b_base64(text, strict_mode=True)
            except (binascii.Error, ValueError) as exc:
                raise self.bad_value(text, where, "base64-encoded binary data") from exc
        return text

    def _timestamp(self, shape: Any, text: str, where: str) -> dt.datetime:
        try:
            if shape.serialization.get("timestampFormat") == "unixTimestamp" or _looks_numeric(text):
                return dt.datetime.fromtimestamp(float(text), dt.UTC)
            value = dt.datetime.fromisoformat(text)
        except (ValueError, OverflowError, OSError) as exc:
            raise self.bad_value(text, where, "an ISO 8601 timestamp") from exc
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

    # -- serialising -------------------------------------------------------

    def serialize(self, match: OperationMatch, output: dict[str, Any], request_id: str) -> Response:
        operation = match.operation
        name = operation.name
        out = [f'<{name}Response xmlns="{self.namespace}">']
        shape = operation.output_shape
        if shape is not None:
            wrapper = shape.serialization.get("resultWrapper")
            if wrapper:
                out.append(f"<{wrapper}>")
            xmlout.render_members(shape, output or {}, self.dialect, out)
            if wrapper:
                out.append(f"</{wrapper}>")
        out.append(
            f"<ResponseMetadata><RequestId>{xmlout.escape(request_id)}</RequestId></ResponseMetadata>"
            f"</{name}Response>"
        )
        return self._xml(int(operation.http.get("responseCode", 200)), out, request_id)

    def serialize_error(self, error: AwsError, request_id: str) -> Response:
        code, status, message = self.dialect_error(error)
        kind = "Sender" if error.sender_fault else "Receiver"
        out = [
            f'<ErrorResponse xmlns="{self.namespace}"><Error><Type>{kind}</Type>'
            f"<Code>{xmlout.escape(code)}</Code><Message>{xmlout.escape(message)}</Message></Error>"
            f"<RequestId>{xmlout.escape(request_id)}</RequestId></ErrorResponse>"
        ]
        return self._xml(status, out, request_id)

    #: Codes raised by protocol-neutral layers (SigV4, validation, the app), renamed to what
    #: query services answer: (code, status or None to keep, message or None to keep).
    DIALECT: Mapping[str, tuple[str, int | None, str | None]] = {
        "ValidationException": ("ValidationError", None, None),
        "UnrecognizedClientException": ("InvalidClientTokenId", None, None),
        "InvalidSignatureException": ("SignatureDoesNotMatch", None, None),
        "IncompleteSignatureException": ("IncompleteSignature", None, None),
        "MissingAuthenticationTokenException": ("MissingAuthenticationToken", None, None),
        "AccessDeniedException": ("AccessDenied", None, None),
        "ServiceException": ("InternalFailure", None, None),
        # IAM and STS throttle with a 400 Sender error "Throttling: Rate exceeded".
        "TooManyRequestsException": ("Throttling", 400, None),
    }

    def dialect_error(self, error: AwsError) -> tuple[str, int, str]:
        """``error``'s code, status and message as this protocol's services spell them."""
        renamed = self.DIALECT.get(error.code)
        if renamed is None:
            return error.code, error.status, error.message
        code, status, message = renamed
        return code, error.status if status is None else status, error.message if message is None else message

    def _xml(self, status: int, out: list[str], request_id: str) -> Response:
        headers = [("x-amzn-RequestId", request_id), ("Content-Type", self.content_type)]
        return Response(status, headers, "".join(out).encode("utf-8"))


def _looks_numeric(text: str) -> bool:
    return bool(text) and text.replace(".", "", 1).lstrip("+-").isdigit()
