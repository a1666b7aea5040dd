"""Function URLs: the URL, the event a request becomes, the answer a result becomes, CORS (pure).

Facts from the Lambda Developer Guide, "Invoking Lambda function URLs" and "Control access to
Lambda function URLs":

- A URL is ``https://<url-id>.lambda-url.<region>.on.aws`` with a 32-character lowercase
  alphanumeric id; lamina serves it as ``http://<url-id>.lambda-url.<region>.localhost:<port>/``.
- The request becomes an event in API Gateway's payload format version 2.0: lower-cased headers
  (repeated ones joined with commas), the ``Cookie`` header as the ``cookies`` list, query
  parameters joined with commas, ``routeKey`` and ``stage`` ``$default``, ``requestContext.accountId``
  ``anonymous`` for AuthType NONE and the caller's ``authorizer.iam`` for AWS_IAM; a body that is not
  text is base64-encoded (``isBase64Encoded``).
- The function's result: a JSON object with ``statusCode`` is the response (``headers``,
  ``cookies`` as Set-Cookie headers, ``body``, ``isBase64Encoded``); any other valid JSON is the
  body of a 200 ``application/json`` response as it stands.
- With CORS configured, Lambda answers preflight ``OPTIONS`` requests itself and puts the
  configured ``Access-Control-*`` headers on every response, replacing the function's own.
- AuthType NONE needs a function policy statement allowing everyone ``lambda:InvokeFunctionUrl``
  (condition ``lambda:FunctionUrlAuthType`` = ``NONE``) and, since October 2025,
  ``lambda:InvokeFunction`` too; otherwise the URL answers 403 ``{"Message":"Forbidden"}``.
"""

from __future__ import annotations

import base64
import enum
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from lamina.domain.evaluation import Caller, PolicySet, PrincipalKind, decide
from lamina.domain.models import Cors
from lamina.domain.policy import PolicyKind, parse_policy

URL_ID_LENGTH = 32
URL_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
HOST_SUFFIX = ".localhost"
# The path form, for clients that cannot set a Host header: /_lamina/url/<url-id>/<path...>
PATH_PREFIX = "/_lamina/url/"

_HOST = re.compile(r"([a-z0-9]{32})\.lambda-url\.([a-z0-9-]+)\.localhost(?::\d+)?", re.IGNORECASE)
_PATH = re.compile(r"/_lamina/url/([a-z0-9]{32})(/.*)?")


class AuthType(enum.Enum):
    NONE = "NONE"
    AWS_IAM = "AWS_IAM"


class InvokeMode(enum.Enum):
    BUFFERED = "BUFFERED"
    RESPONSE_STREAM = "RESPONSE_STREAM"


INVOKE_URL_ACTION = "lambda:InvokeFunctionUrl"
INVOKE_ACTION = "lambda:InvokeFunction"
AUTH_TYPE_KEY = "lambda:FunctionUrlAuthType"
VIA_URL_KEY = "lambda:InvokedViaFunctionUrl"


def url_of(url_id: str, region: str, port: int) -> str:
    """The URL lamina answers for a function URL (FunctionUrl)."""
    return f"http://{url_id}.lambda-url.{region}{HOST_SUFFIX}:{port}/"


@dataclass(frozen=True)
class Target:
    """Which URL a request is for, and the path the function sees."""

    url_id: str
    path: str  # the raw path of the function's own request (starts with "/")
    host_form: bool  # recognised by its Host header (else by the path form)


def recognise(host: str, raw_path: str) -> Target | None:
    """The function URL a request is for: by its ``Host`` header, or the path form."""
    m = _HOST.fullmatch(host.strip())
    if m is not None:
        return Target(m.group(1).lower(), raw_path or "/", True)
    p = _PATH.fullmatch(raw_path)
    if p is not None:
        return Target(p.group(1), p.group(2) or "/", False)
    return None


# -- access ---------------------------------------------------------------------------------------


def public_access(policy: str | None, resource: str, owner: str) -> bool:
    """Whether the function policy ``policy`` lets anyone call an AuthType NONE URL of
    ``resource``: both ``lambda:InvokeFunctionUrl`` (with ``lambda:FunctionUrlAuthType`` NONE) and
    ``lambda:InvokeFunction`` allowed to ``"*"``, and neither denied."""
    if not policy:
        return False
    try:
        document = parse_policy(policy, PolicyKind.RESOURCE)
    except Exception:  # a stored policy is always valid; anything else grants nothing
        return False
    # Someone of the owner's account that no identity policy allows: only a grant to "*" (or to
    # this exact principal, which nobody can name) lets it in.
    anonymous = Caller(PrincipalKind.USER, owner, "anonymous")
    policies = PolicySet(resource=document)
    # The invocation a URL makes carries lambda:InvokedViaFunctionUrl (the condition the console
    # and AddPermission's InvokedViaFunctionUrl put on the lambda:InvokeFunction statement).
    contexts = {
        INVOKE_URL_ACTION: {AUTH_TYPE_KEY: AuthType.NONE.value},
        INVOKE_ACTION: {AUTH_TYPE_KEY: AuthType.NONE.value, VIA_URL_KEY: "true"},
    }
    return all(
        decide(anonymous, action, resource, owner, policies, context).allowed
        for action, context in contexts.items()
    )


# -- the event --------------------------------------------------------------------------------------

_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml", "+json", "+xml")


def _is_text(content_type: str | None) -> bool:
    if content_type is None:
        return True
    ct = content_type.lower()
    return any(t in ct for t in _TEXT_TYPES) or "x-www-form-urlencoded" in ct


@dataclass(frozen=True)
class IamCaller:
    """``requestContext.authorizer.iam`` of an AWS_IAM request."""

    access_key: str
    account_id: str
    caller_id: str
    user_arn: str
    user_id: str


@dataclass(frozen=True)
class HttpRequest:
    """The request as the endpoint received it (headers lower-cased, repeated ones comma-joined)."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes
    source_ip: str


def build_event(
    request: HttpRequest,
    *,
    url_id: str,
    region: str,
    owner: str,
    request_id: str,
    now_ms: int,
    caller: IamCaller | None,
) -> dict[str, Any]:
    """The payload format 2.0 event of one request."""
    headers = {k: v for k, v in request.headers.items() if k != "cookie"}
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    domain = headers.get("host", f"{url_id}.lambda-url.{region}{HOST_SUFFIX}").split(":")[0]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query_string,
    }
    cookie = request.headers.get("cookie")
    if cookie:
        event["cookies"] = [c.strip() for c in cookie.replace(",", ";").split(";") if c.strip()]
    event["headers"] = headers
    if request.query_string:
        params: dict[str, str] = {}
        for key, value in parse_qsl(request.query_string, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    context: dict[str, Any] = {
        "accountId": "anonymous" if caller is None else caller.account_id,
        "apiId": url_id,
    }
    if caller is not None:
        context["authorizer"] = {
            "iam": {
                "accessKey": caller.access_key,
                "accountId": caller.account_id,
                "callerId": caller.caller_id,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": caller.user_arn,
                "userId": caller.user_id,
            }
        }
    context |= {
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": "HTTP/1.1",
            "sourceIp": request.source_ip,
            "userAgent": request.headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now_ms // 1000)),
        "timeEpoch": now_ms,
    }
    event["requestContext"] = context
    if request.body:
        text = None
        if _is_text(request.headers.get("content-type")):
            try:
                text = request.body.decode()
            except UnicodeDecodeError:
                text = None
        event["body"] = text if text is not None else base64.b64encode(request.body).decode()
        event["isBase64Encoded"] = text is None
    else:
        event["isBase64Encoded"] = False
    return event


# -- the answer ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpAnswer:
    """What the URL sends back: status, headers (in order, repeats allowed), body."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def with_headers(self, extra: Sequence[tuple[str, str]]) -> HttpAnswer:
        return HttpAnswer(self.status, (*self.headers, *extra), self.body)


JSON = "application/json"
FORBIDDEN = HttpAnswer(
    403, (("Content-Type", JSON), ("x-amzn-ErrorType", "AccessDeniedException")), b'{"Message":"Forbidden"}'
)
THROTTLED = HttpAnswer(
    429,
    (("Content-Type", JSON), ("x-amzn-ErrorType", "TooManyRequestsException")),
    b'{"Message":"Rate Exceeded."}',
)
# A function error (or a result that is no valid response): 502, as the guide's troubleshooting
# section shows; a throttled invocation: 429.
FUNCTION_ERROR = HttpAnswer(502, (("Content-Type", "text/plain; charset=utf-8"),), b"Internal Server Error")
# Invoke's synchronous payload limit bounds a request's body.
MAX_BODY = 6_291_456
TOO_LARGE = HttpAnswer(
    413,
    (("Content-Type", JSON),),
    b'{"Message":"Request must be smaller than 6291456 bytes for the InvokeFunction operation"}',
)


def map_result(payload: bytes) -> HttpAnswer:
    """The HTTP response a function's (successful) result becomes."""
    try:
        value = json.loads(payload) if payload.strip() else None
    except ValueError:
        # Not JSON (a custom runtime may answer anything): its bytes as they stand.
        return HttpAnswer(200, (("Content-Type", JSON),), payload)
    if not isinstance(value, dict) or "statusCode" not in value:
        return HttpAnswer(200, (("Content-Type", JSON),), payload)
    status = value.get("statusCode")
    # 1xx answers are interim (101 would hand the connection over): no final answer of a function.
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        return FUNCTION_ERROR
    headers: list[tuple[str, str]] = []
    raw_headers = value.get("headers") or {}
    cookies = value.get("cookies") or []
    if not isinstance(raw_headers, dict) or not isinstance(cookies, list):
        return FUNCTION_ERROR
    for name, v in raw_headers.items():
        headers.append((str(name), header_text(v)))
    for cookie in cookies:
        headers.append(("Set-Cookie", str(cookie)))
    shown = sendable_headers(headers)
    if shown is None:
        return FUNCTION_ERROR
    headers = shown
    body = value.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        if value.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body, validate=True)
            except ValueError:
                return FUNCTION_ERROR
        else:
            data = body.encode()
    else:
        data = json.dumps(body).encode()
    if status in (204, 304):
        data = b""  # RFC 9110, 15.3.5 and 15.4.5: these answers end with their header section
    if not any(n.lower() == "content-type" for n, _ in headers):
        headers.append(("Content-Type", JSON))
    return HttpAnswer(status, tuple(headers), data)


# The function's own headers become the response's, except those that describe the connection
# rather than the answer (RFC 9110, 7.6.1: hop-by-hop fields; Content-Length and Transfer-Encoding
# frame the body the endpoint itself sends, and Date and Server are the endpoint's): a function
# cannot set those, they are passed on renamed ``x-amzn-Remapped-<name>``, as function URLs and API
# Gateway's HTTP APIs do. A name that is no HTTP token, a value with a control character (CR or LF
# would end the field and start another: response splitting) or a character outside Latin-1 (what
# HTTP/1.1 can carry), or more than ``MAX_RESPONSE_HEADER_BYTES`` of header fields, and the result
# is no valid response (502).
_REMAPPED = frozenset(
    {
        "connection",
        "content-length",
        "date",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
REMAPPED_PREFIX = "x-amzn-Remapped-"
MAX_RESPONSE_HEADER_BYTES = 64 * 1024
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def sendable_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """The function's headers as the endpoint sends them (renamed where they describe the
    connection), or None when one cannot be sent as it stands."""
    out: list[tuple[str, str]] = []
    size = 0
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            return None
        if name.lower() in _REMAPPED:
            name = REMAPPED_PREFIX + name
        size += len(name) + len(value) + 4  # ": " and CRLF
        if size > MAX_RESPONSE_HEADER_BYTES:
            return None
        out.append((name, value))
    return out


def header_text(value: Any) -> str:
    """A header value a function gave as JSON, as text (booleans as JSON writes them)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


# -- CORS ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorsRules:
    """A URL's ``Cors`` configuration, ready to answer requests."""

    allow_credentials: bool = False
    allow_headers: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_origins: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    _origins: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def of(cls, cors: Cors | None) -> CorsRules | None:
        """The rules of a URL's configuration (None: no CORS configured)."""
        if not cors:
            return None
        origins = tuple(cors.get("AllowOrigins") or ())
        return cls(
            bool(cors.get("AllowCredentials")),
            tuple(cors.get("AllowHeaders") or ()),
            tuple(cors.get("AllowMethods") or ()),
            origins,
            tuple(cors.get("ExposeHeaders") or ()),
            cors.get("MaxAge"),
            frozenset(o.lower() for o in origins),
        )

    def allowed_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for ``origin`` (None: not allowed)."""
        if origin is None:
            return None
        if "*" in self._origins:
            return "*"
        return origin if origin.lower() in self._origins else None

    def preflight(self, origin: str | None, method: str | None) -> HttpAnswer:
        """Lambda's own answer to an OPTIONS preflight request (the function is not invoked)."""
        headers: list[tuple[str, str]] = []
        allowed = self.allowed_origin(origin)
        methods = {m.upper() for m in self.allow_methods}
        if allowed is not None and (method is None or "*" in methods or method.upper() in methods):
            headers.append(("Access-Control-Allow-Origin", allowed))
            if self.allow_methods:
                headers.append(("Access-Control-Allow-Methods", ",".join(self.allow_methods)))
            if self.allow_headers:
                headers.append(("Access-Control-Allow-Headers", ",".join(self.allow_headers)))
            if self.allow_credentials:
                headers.append(("Access-Control-Allow-Credentials", "true"))
            if self.max_age is not None:
                headers.append(("Access-Control-Max-Age", str(self.max_age)))
            if allowed != "*":
                headers.append(("Vary", "Origin"))
        return HttpAnswer(200, tuple(headers))

    def apply(self, answer: HttpAnswer, origin: str | None) -> HttpAnswer:
        """The configured CORS headers on a response, replacing the function's own."""
        kept = tuple(h for h in answer.headers if not h[0].lower().startswith("access-control-"))
        extra: list[tuple[str, str]] = []
        allowed = self.allowed_origin(origin)
        if allowed is not None:
            extra.append(("Access-Control-Allow-Origin", allowed))
            if self.expose_headers:
                extra.append(("Access-Control-Expose-Headers", ",".join(self.expose_headers)))
            if self.allow_credentials:
                extra.append(("Access-Control-Allow-Credentials", "true"))
            if allowed != "*":
                extra.append(("Vary", "Origin"))
        return HttpAnswer(answer.status, (*kept, *extra), answer.body)
