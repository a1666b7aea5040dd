"""The ``rest-xml`` protocol (S3 ``2006-03-01``): method + path + query routing, members in the
path, query string and headers, XML bodies, S3's XML errors.

Facts about S3's wire (S3 API Reference, "Making requests"; botocore's ``RestXMLSerializer`` and
``RestXMLParser``, which is what every SDK sends and reads):

- Addressing: path style (``/bucket/key``) or virtual-hosted (``Host: bucket.s3.<anything>``,
  path ``/key``). The key is the rest of the path after the bucket, percent-decoded, ``+`` a plus
  sign, slashes and a trailing slash kept.
- Several operations share a method and path; the model's literal query (``?tagging``,
  ``?list-type=2``) and the members an operation requires (``uploadId`` in the query,
  ``x-amz-copy-source`` as a header) pick one: PutObject, CopyObject, UploadPart and
  UploadPartCopy are all ``PUT /{Bucket}/{Key+}``. A ``x-id`` literal is botocore's hint, not a
  condition.
- Outputs: header members as headers (timestamps as HTTP dates), ``x-amz-meta-*`` from the user
  metadata map, and body members as one XML document whose root element is AWS's (``ListBucketResult``,
  ``ListAllMyBucketsResult``, ...) in the S3 namespace; a streaming payload (GetObject) is the
  object's bytes. GetBucketLocation answers a bare ``<LocationConstraint>``, empty for us-east-1.
- Errors: ``<Error><Code/><Message/>...<RequestId/><HostId/></Error>`` without a namespace, the
  error's own elements (``BucketName``, ``Key``, ...) after the message; ``x-amz-request-id`` and
  ``x-amz-id-2`` headers on every answer. A 304, and any answer to HEAD, has no body.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

from lamina.api import sigv4
from lamina.api.http import Request, Response
from lamina.api.protocols import xmlout
from lamina.api.protocols.base import OperationMatch, Protocol
from lamina.domain.clock import iso_millis
from lamina.errors import AwsError
from lamina.services.base import HTTP_STATUS, FileSlice

S3_DIALECT: Final = xmlout.XmlDialect("member", iso_millis)
NAMESPACE: Final = "http://s3.amazonaws.com/doc/2006-03-01/"
_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8"?>\n'
_VIRTUAL_HOST: Final = re.compile(r"(?P<bucket>[a-z0-9][a-z0-9.-]*?)\.s3[.-].*", re.IGNORECASE)

# AWS's root element of each answer with an XML body (botocore does not read it; AWS writes it).
ROOTS: Final[Mapping[str, str]] = {
    "ListBuckets": "ListAllMyBucketsResult",
    "ListObjects": "ListBucketResult",
    "ListObjectsV2": "ListBucketResult",
    "ListObjectVersions": "ListVersionsResult",
    "GetBucketTagging": "Tagging",
    "GetObjectTagging": "Tagging",
    "DeleteObjects": "DeleteResult",
    "GetBucketVersioning": "VersioningConfiguration",
    "CreateMultipartUpload": "InitiateMultipartUploadResult",
    "CompleteMultipartUpload": "CompleteMultipartUploadResult",
    "ListMultipartUploads": "ListMultipartUploadsResult",
    "ListParts": "ListPartsResult",
    "GetBucketAcl": "AccessControlPolicy",
    "GetObjectAcl": "AccessControlPolicy",
}

# Status codes AWS answers where the model names none (recorded: PutBucketTagging is 204).
STATUS: Final[Mapping[str, int]] = {"PutBucketTagging": 204}

# Errors raised by protocol-neutral layers (SigV4, validation, the app), as S3 answers them:
# (code, status, message; None keeps the error's own).
DIALECT: Final[Mapping[str, tuple[str, int, str | None]]] = {
    "MissingAuthenticationTokenException": ("AccessDenied", 403, "Access Denied"),
    "UnrecognizedClientException": (
        "InvalidAccessKeyId",
        403,
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403, None),
    "IncompleteSignatureException": ("AuthorizationHeaderMalformed", 400, None),
    "AccessDeniedException": ("AccessDenied", 403, None),
    "ValidationException": ("InvalidArgument", 400, None),
    "SerializationException": ("InvalidArgument", 400, None),
    "TooManyRequestsException": ("SlowDown", 503, "Please reduce your request rate."),
    "RequestEntityTooLargeException": ("MaxMessageLengthExceeded", 400, "Your request was too big."),
    "ServiceException": ("InternalError", 500, "We encountered an internal error. Please try again."),
}
_SIGNATURE_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. Check your key"
    " and signing method."
)


def virtual_host_bucket(host: str) -> str | None:
    """The bucket a virtual-hosted ``Host`` names (``bucket.s3.localhost:4566``), else None."""
    m = _VIRTUAL_HOST.fullmatch(host.strip().rpartition(":")[0] if ":" in host else host.strip())
    return m.group("bucket").lower() if m is not None else None


class _Route:
    """One operation's routing condition."""

    __slots__ = ("operation", "method", "kind", "query", "required_query", "required_headers")

    def __init__(self, operation: Any) -> None:
        self.operation = operation
        self.method: str = operation.http["method"]
        path, _, query = operation.http["requestUri"].partition("?")
        # "/" (the service), "/{Bucket}", "/{Bucket}/{Key+}", or a literal path.
        self.kind = path
        self.query: list[tuple[str, str | None]] = []
        for part in filter(None, query.split("&")):
            key, eq, value = part.partition("=")
            if key != "x-id":
                self.query.append((key, value if eq else None))
        self.required_query: list[str] = []
        self.required_headers: list[str] = []
        shape = operation.input_shape
        if shape is not None:
            for name in shape.required_members:
                member = shape.members[name]
                location = member.serialization.get("location")
                wire = member.serialization.get("name", name)
                if location == "querystring":
                    self.required_query.append(wire)
                elif location == "header":
                    self.required_headers.append(wire.lower())

    @property
    def specificity(self) -> tuple[int, int]:
        return len(self.query), len(self.required_query) + len(self.required_headers)

    def matches(self, query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        for key, wanted in self.query:
            if key not in query or (wanted is not None and query[key] != wanted):
                return False
        return all(k in query for k in self.required_query) and all(
            h in headers for h in self.required_headers
        )


class RestXmlProtocol(Protocol):
    """rest-xml: S3's protocol."""

    def __init__(self, service_model: Any) -> None:
        super().__init__(service_model)
        routes = [_Route(service_model.operation_model(n)) for n in service_model.operation_names]
        routes = [r for r in routes if r.operation.name != "ListDirectoryBuckets"]  # S3 Express only
        routes.sort(key=lambda r: tuple(-x for x in r.specificity))
        self._routes: dict[tuple[str, str], list[_Route]] = {}
        for route in routes:
            self._routes.setdefault((route.method, route.kind), []).append(route)

    # -- routing -----------------------------------------------------------

    def match(self, request: Request) -> OperationMatch:
        bucket = virtual_host_bucket(request.headers.get("host", ""))
        raw = request.raw_path or "/"
        if bucket is None:
            first, slash, rest = raw[1:].partition("/")
            bucket = unquote(first) if first else None
            key = unquote(rest) if slash else ""
        else:
            key = unquote(raw[1:])
        if bucket is None:
            kind, params = "/", {}
        elif not key:
            kind, params = "/{Bucket}", {"Bucket": bucket}
        else:
            kind, params = "/{Bucket}/{Key+}", {"Bucket": bucket, "Key": key}
        query: dict[str, str] = {}
        for name, value in request.query:
            query.setdefault(name, value)
        for route in self._routes.get((request.method, kind), ()):
            if route.matches(query, request.headers):
                return OperationMatch(route.operation, params)
        raise AwsError(
            "The specified method is not allowed against this resource.",
            code="MethodNotAllowed",
            status=405,
            sender_fault=True,
            fields={"Method": request.method, "ResourceType": "OBJECT" if "Key" in params else "BUCKET"},
        )

    # -- parsing -----------------------------------------------------------

    def parse(self, match: OperationMatch, request: Request) -> dict[str, Any]:
        shape = match.operation.input_shape
        if shape is None:
            return {}
        params: dict[str, Any] = {}
        payload = shape.serialization.get("payload")
        for name, member in shape.members.items():
            serialization = member.serialization
            location = serialization.get("location")
            wire = serialization.get("name", name)
            if location == "uri":
                if wire.rstrip("+") in match.uri_params:
                    params[name] = match.uri_params[wire.rstrip("+")]
            elif location == "querystring":
                value = request.query_value(wire)
                if value is not None:
                    params[name] = _from_text(member, value, wire, header=False)
            elif location == "header":
                value = request.headers.get(wire.lower())
                if value is not None:
                    parsed = _from_text(member, value, wire, header=True)
                    if parsed is not None:
                        params[name] = parsed
            elif location == "headers":
                prefix = wire.lower()
                params[name] = {
                    k[len(prefix) :]: v for k, v in request.headers.items() if k.startswith(prefix)
                }
            elif name == payload:
                if member.type_name == "blob":
                    params[name] = request.stream if request.stream is not None else request.body
                elif member.type_name == "string":
                    params[name] = request.body.decode("utf-8", "replace")
                elif request.body.strip():
                    params[name] = _parse_document(member, request.body)
        return params

    # -- serialising -------------------------------------------------------

    def serialize(self, match: OperationMatch, output: dict[str, Any], request_id: str) -> Response:
        operation = match.operation
        name = operation.name
        status = output.get(HTTP_STATUS) or STATUS.get(name, int(operation.http.get("responseCode", 200)))
        headers = _ids(request_id)
        shape = operation.output_shape
        response = Response(status, headers)
        if shape is None:
            return response
        payload = shape.serialization.get("payload")
        body_members: dict[str, Any] = {}
        for member_name, member in shape.members.items():
            value = output.get(member_name)
            if value is None:
                continue
            location = member.serialization.get("location")
            wire = member.serialization.get("name", member_name)
            if location == "header":
                if wire.lower() == "content-length":
                    response.length = int(value)
                else:
                    headers.append((wire, _header_text(member, value)))
            elif location == "headers":
                headers.extend((wire + k, str(v)) for k, v in value.items())
            elif location == "statusCode":
                response.status = int(value)
            elif member_name == payload:
                _payload(response, member, value)
            else:
                body_members[member_name] = value
        if name == "GetBucketLocation":
            constraint = output.get("LocationConstraint")
            text = (
                f'<LocationConstraint xmlns="{NAMESPACE}">{xmlout.escape(constraint)}</LocationConstraint>'
                if constraint
                else f'<LocationConstraint xmlns="{NAMESPACE}"/>'
            )
            _xml_body(response, _DECLARATION + text)
        elif payload is None and (body_members or name in ROOTS):
            root = ROOTS.get(name, f"{name}Result")
            out = [f'{_DECLARATION}<{root} xmlns="{NAMESPACE}">']
            xmlout.render_members(shape, body_members, S3_DIALECT, out)
            out.append(f"</{root}>")
            _xml_body(response, "".join(out))
        if response.status in (204, 304):
            response.body = b""
        return response

    def serialize_error(self, error: AwsError, request_id: str) -> Response:
        code, status, message = error.code, error.status, error.message
        fields: dict[str, str] = dict(error.fields)
        if isinstance(error, sigv4.ContentSha256Mismatch):
            code, status = "XAmzContentSHA256Mismatch", 400
            message = "The provided 'x-amz-content-sha256' header does not match what was computed."
            fields = {"ClientComputedContentSHA256": error.client, "S3ComputedContentSHA256": error.computed}
        elif isinstance(error, sigv4.SignatureMismatch):
            code, status, message = "SignatureDoesNotMatch", 403, _SIGNATURE_MISMATCH
            fields = {
                "AWSAccessKeyId": error.access_key_id,
                "StringToSign": error.string_to_sign,
                "SignatureProvided": error.provided,
                "StringToSignBytes": _hex_bytes(error.string_to_sign),
                "CanonicalRequest": error.canonical,
                "CanonicalRequestBytes": _hex_bytes(error.canonical),
            }
        elif isinstance(error, sigv4.MissingContentSha256):
            code, status = "InvalidRequest", 400
        elif code in DIALECT:
            code, status, renamed = DIALECT[code]
            message = message if renamed is None else renamed
            if code in ("InternalError", "SlowDown", "AccessDenied") and renamed is not None:
                fields = {}
        headers = _ids(request_id)
        if status == 304:  # no body: its fields (the validators) are headers
            return Response(304, headers + list(fields.items()))
        out = [
            f"{_DECLARATION}<Error><Code>{xmlout.escape(code)}</Code><Message>{xmlout.escape(message)}</Message>"
        ]
        out.extend(f"<{k}>{xmlout.escape(v)}</{k}>" for k, v in fields.items())
        out.append(
            f"<RequestId>{xmlout.escape(request_id)}</RequestId><HostId>{_host_id(request_id)}</HostId></Error>"
        )
        response = Response(status, headers)
        _xml_body(response, "".join(out))
        return response


def _ids(request_id: str) -> list[tuple[str, str]]:
    return [("x-amz-request-id", request_id), ("x-amz-id-2", _host_id(request_id))]


def _host_id(request_id: str) -> str:
    """S3's ``x-amz-id-2`` / ``HostId``: an opaque base64 token (here derived from the request id)."""
    return base64.b64encode(hashlib.sha256(request_id.encode()).digest()).decode()


def _hex_bytes(text: str) -> str:
    return " ".join(f"{b:02x}" for b in text.encode("utf-8"))


def _xml_body(response: Response, text: str) -> None:
    response.headers.append(("Content-Type", "application/xml"))
    response.body = text.encode("utf-8")


def _payload(response: Response, member: Any, value: Any) -> None:
    if isinstance(value, FileSlice):
        # An object's bytes are a tenant's content served from lamina's own origin (path-style
        # addressing shares the console's host and port, unlike AWS where S3 has its own domain):
        # an HTML object opened in a browser must not run as a page of that origin and drive the
        # console with a signed-in victim's cookie. A sandboxed document gets an opaque origin.
        response.headers.append(("Content-Security-Policy", "sandbox"))
        response.file_path = value.path
        response.file_offset = value.offset
        response.file_size = value.length
    elif isinstance(value, bytes | bytearray):
        response.body = bytes(value)
    elif isinstance(value, str):
        response.body = value.encode("utf-8")
    elif member.type_name == "structure":
        tag = member.serialization.get("name", member.name)
        out = [f'{_DECLARATION}<{tag} xmlns="{NAMESPACE}">']
        xmlout.render_members(member, value, S3_DIALECT, out)
        out.append(f"</{tag}>")
        _xml_body(response, "".join(out))


def _header_text(member: Any, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return email.utils.format_datetime(value.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)
    if hasattr(value, "value") and not isinstance(value, str | int):
        return str(value.value)  # an Enum
    return str(value)


def _invalid(message: str, name: str, value: str) -> AwsError:
    return AwsError(
        message,
        code="InvalidArgument",
        status=400,
        sender_fault=True,
        fields={"ArgumentName": name, "ArgumentValue": value},
    )


def _from_text(member: Any, text: str, wire: str, *, header: bool) -> Any:
    kind = member.type_name
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError as exc:
            raise _invalid(f"Provided {wire} not an integer or within integer range", wire, text) from exc
    if kind == "boolean":
        return text.lower() == "true"
    if kind == "timestamp":
        try:
            return email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            try:
                return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                if header:
                    return None  # S3 ignores a conditional header whose date it cannot read
                raise _invalid(f"Invalid {wire}", wire, text) from None
    return text


# -- XML input ------------------------------------------------------------------------------------

_MALFORMED: Final = (
    "The XML you provided was not well-formed or did not validate against our published schema"
)


def _malformed() -> AwsError:
    return AwsError(_MALFORMED, code="MalformedXML", status=400, sender_fault=True)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _parse_document(member: Any, body: bytes) -> Any:
    """An XML payload read by its shape (unknown elements ignored, as S3 does). No DTDs: an
    entity could expand a small body into gigabytes."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise _malformed()
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise _malformed() from exc
    expected = member.serialization.get("name", member.name)
    if _local(root.tag) != expected:
        raise _malformed()
    return _element(member, root)


def _element(shape: Any, element: ET.Element) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        children = list(element)
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if member.type_name == "list" and member.serialization.get("flattened"):
                inner = member.member.serialization.get("name", wire)
                found = [c for c in children if _local(c.tag) == inner]
                if found:
                    out[name] = [_element(member.member, c) for c in found]
                continue
            for child in children:
                if _local(child.tag) == wire:
                    out[name] = _element(member, child)
                    break
        return out
    if kind == "list":
        inner = shape.member.serialization.get("name", "member")
        return [_element(shape.member, c) for c in element if _local(c.tag) == inner]
    text = element.text or ""
    if kind in ("integer", "long"):
        try:
            return int(text.strip())
        except ValueError as exc:
            raise _malformed() from exc
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise _malformed()
        return lowered == "true"
    return text
