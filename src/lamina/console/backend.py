"""The console's JSON back end (see the package docstring)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lamina.api.http import Request, Response
from lamina.api.pipeline import INTERNAL_ERROR_MESSAGE, Pipeline
from lamina.api.protocols.restxml import DIALECT as S3_DIALECT
from lamina.console.throttle import FailureBackoff
from lamina.domain import jsontext
from lamina.errors import (
    INVALID_TOKEN_MESSAGE,
    AwsError,
    not_implemented,
    request_too_large,
    unknown_operation,
    unknown_service,
)
from lamina.services.base import AuthorizationRequest, FileSlice, Principal
from lamina.store.console_sessions import (
    ConsoleDownload,
    ConsoleDownloadStore,
    ConsoleSession,
    ConsoleSessionStore,
)
from lamina.store.logs import DAY_MS, LogGroupStore, Scope

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
SESSION_S = 12 * 3600
COOKIE = "lamina_console"
MAX_BODY = 72 * 1024 * 1024  # a 50 MB zip, base64-encoded, in JSON
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}$")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_LOG_BYTES = 64 * 1024
# The Logs tab: the newest events of a function's log group, newest streams first (by their last
# event, as the CloudWatch console lists them), at most this many streams and _LOG_BYTES in all.
_LOG_STREAMS = 10
_LOG_EVENTS = 2_000  # events read from one stream at most (its newest)
_LOG_GROUP = re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$")  # CloudWatch Logs' logGroupName pattern
_END_OF_TIME_MS = 2**62
# (layer zip's SHA-256 hex, compatible runtimes, compatible architectures) -> one JSON document per
# (runtime, arch): ``lamina layer check``'s, handed in by the composition root (the builder is above
# the console in the layering).
LayerChecker = Callable[[str, Sequence[str], Sequence[str]], list[dict[str, object]]]
MAX_SESSIONS = 10_000
# An object upload: ``PUT`` of the file's bytes, streamed by the front door into S3 PutObject (never
# held whole, here or in the browser); query ``region``, ``bucket``, ``key``, and for one part of a
# multipart upload ``uploadId`` and ``partNumber`` (UploadPart).
UPLOAD_PATH = "/console/api/upload"
# An object download: ``GET`` of a one-use link the page asked for (POST /console/api/download),
# valid this many seconds, for the session that asked.
DOWNLOAD_PATH = "/console/download/"
DOWNLOAD_S = 60
MAX_DOWNLOADS = 10_000
# Live sessions of one access key: a new sign-in past this many signs the key's oldest out.
MAX_SESSIONS_PER_KEY = 10
# Every console response: no other page may frame it (clickjacking its buttons), it loads only its
# own scripts and styles and talks only to its own origin, and its URLs (a layer's presigned
# download link) never leave in a Referer header.
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
)


@dataclass(frozen=True)
class Session:
    principal: Principal
    expires: float


def _digest(token: str) -> str:
    """What the database keeps of a session's token: its SHA-256 (a reader of the database
    cannot present it)."""
    return hashlib.sha256(token.encode()).hexdigest()


def attachment(key: str) -> str:
    """A Content-Disposition saving the object under its key's last segment (RFC 6266: an ASCII
    ``filename`` for old clients, the UTF-8 ``filename*`` for the rest)."""
    name = key.rstrip("/").rpartition("/")[2] or "download"
    plain = re.sub(r"[^A-Za-z0-9._ -]", "_", name)[:200] or "download"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name[:200], safe='')}"


def _json(status: int, doc: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(doc, default=_default).encode()
    return Response(
        status, [("Content-Type", "application/json"), ("Cache-Control", "no-store"), *(headers or [])], body
    )


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


async def _collect_event_streams(output: dict[str, Any]) -> dict[str, Any]:
    """An output's event stream (InvokeWithResponseStream's), read to its end: the console answers
    in one JSON document, the events as boto3 shows them (``[{"PayloadChunk": {...}}, ...]``)."""
    for key, value in list(output.items()):
        if isinstance(value, AsyncIterator):
            events: list[dict[str, Any]] = []
            try:
                async for kind, members in value:
                    events.append({kind: members})
            finally:
                close = getattr(value, "aclose", None)
                if close is not None:
                    await close()
            output[key] = events
    return output


def _error(status: int, code: str, message: str) -> Response:
    return _json(status, {"error": {"code": code, "message": message}})


def _aws_error(exc: AwsError, service: str = "") -> Response:
    """``exc`` as the console answers it; S3's in S3's words (the protocol-neutral layers' errors,
    AccessDeniedException and the like, renamed as its XML answers name them)."""
    if service == "s3" and exc.code in S3_DIALECT:
        code, status, message = S3_DIALECT[exc.code]
        return _error(status, code, exc.message if message is None else message)
    return _error(exc.status, exc.code, exc.message)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "float": (int, float),
    "double": (int, float),
    "timestamp": (str, int, float),
    "blob": (str,),
    "list": (list,),
    "map": (dict,),
    "structure": (dict,),
}


def _decode_blobs(shape: Any, value: Any, where: str = "params") -> Any:
    """The params as boto3 takes them: each value of its shape's JSON type (a client mistake is a
    400, never a handler's 500), blobs as base64 text (JSON has no bytes)."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    allowed = _JSON_TYPES.get(kind, (object,))
    if not isinstance(value, allowed) or (
        kind in ("integer", "long", "float", "double") and isinstance(value, bool)
    ):
        raise AwsError(
            f"{where} must be of type {kind}, not {type(value).__name__}.",
            code="SerializationException",
            status=400,
        )
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise AwsError(
                "A blob parameter is not valid base64.", code="ValidationException", status=400
            ) from None
    if kind == "structure" and isinstance(value, dict):
        return {k: _decode_blobs(shape.members.get(k), v, f"{where}.{k}") for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_decode_blobs(shape.member, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind == "map" and isinstance(value, dict):
        return {k: _decode_blobs(shape.value, v, f"{where}.{k}") for k, v in value.items()}
    return value


class Console:
    """The console's back end, mounted at ``/console`` by the composition root. Operations go
    through the one pipeline with the signed-in principal; nothing here reaches a handler."""

    prefix = "/console"
    max_body = MAX_BODY

    def __init__(
        self,
        pipeline: Pipeline,
        logs: LogGroupStore,
        executor: Executor,
        *,
        sessions: ConsoleSessionStore,
        downloads: ConsoleDownloadStore,
        clock: Callable[[], float] = time.time,
        layer_checker: LayerChecker | None = None,
    ) -> None:
        """``sessions``, ``downloads``: where signed-in sessions and one-use download links live
        (the database: any node that shares it serves a session or a link another node made)."""
        self._pipeline = pipeline
        self._layer_checker = layer_checker
        self._logs = logs
        self._executor = executor
        self._clock = clock
        self.sessions = sessions
        self.downloads = downloads
        # Failed sign-ins back off per client address (one guesser, many keys) and per access key
        # (many addresses, one key); either one locked out refuses the attempt.
        self.by_address = FailureBackoff()
        self.by_key = FailureBackoff()
        # The pages are read once: no file I/O on the event loop per request.
        self._pages = {f.name: f.read_bytes() for f in STATIC.iterdir() if f.suffix in _TYPES}

    async def handle(self, request: Request, body: bytes | None) -> Response:
        response = await self._handle(request, body)
        names = {k.lower() for k, _ in response.headers}
        response.headers += [(k, v) for k, v in SECURITY_HEADERS if k.lower() not in names]
        return response

    def streams(self, request: Request) -> bool:
        """Whether the front door hands this request's body over as a stream (an upload)."""
        return request.method == "PUT" and request.raw_path == UPLOAD_PATH

    async def _handle(self, request: Request, body: bytes | None) -> Response:
        path = request.raw_path
        if path == "/console":
            return Response(301, [("Location", "/console/")])
        if path.startswith(DOWNLOAD_PATH) and request.method == "GET":
            return await self._download(request, path[len(DOWNLOAD_PATH) :])
        if path == UPLOAD_PATH and request.method == "PUT":
            return await self._upload(request)
        if not path.startswith("/console/api/"):
            return self._static(path)
        if request.method != "POST":
            return _error(405, "MethodNotAllowed", "Use POST.")
        # Only the console's own scripts send this header; a cross-site form cannot.
        if request.headers.get("x-lamina-console") != "1":
            return _error(403, "AccessDenied", "Missing the X-Lamina-Console header.")
        if body is None:
            return _aws_error(request_too_large(MAX_BODY))
        try:
            doc = jsontext.loads(body or b"{}")
            if not isinstance(doc, dict):
                raise ValueError
        except ValueError:
            return _error(400, "SerializationException", "The request body is not a JSON object.")
        action = path[len("/console/api/") :]
        if action == "signin":
            return await self._signin(doc, request.client_host)
        session = await self._session(request)
        if session is None:
            return _error(401, "NotSignedIn", "Sign in with an access key and secret.")
        if action == "signout":
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self.sessions.delete, _digest(self._token(request) or "")
            )
            return _json(
                200, {}, [("Set-Cookie", f"{COOKIE}=; Path=/console/; Max-Age=0; HttpOnly; SameSite=Strict")]
            )
        if action == "whoami":
            return _json(
                200,
                {
                    "account": session.principal.account_id,
                    "accessKeyId": session.principal.access_key_id,
                    "arn": "" if session.principal.is_root else session.principal.arn,
                },
            )
        if action == "call":
            return await self._call(request, session, doc)
        if action == "download":
            return await self._download_link(request, session, doc)
        if action == "layer-check":
            return await self._check_layer(request, session, doc)
        if action == "logs":
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._read_logs, session, doc, request.client_host
            )
        return _error(404, "NotFound", f"No console action {action!r}.")

    # -- pages -------------------------------------------------------------------------------

    def _static(self, path: str) -> Response:
        name = path[len("/console/") :] or "index.html"
        if not re.fullmatch(r"[a-z0-9_-]+\.(html|js|css|svg)", name):
            name = "index.html"  # client-side routes
        page = self._pages.get(name)
        if page is None:
            return _error(404, "NotFound", "Not found.")
        return Response(
            200,
            [
                ("Content-Type", _TYPES[Path(name).suffix]),
                ("Cache-Control", "no-cache"),
            ],
            page,
        )

    # -- sessions ------------------------------------------------------------------------------

    async def _signin(self, doc: dict[str, Any], client: str) -> Response:
        key = str(doc.get("accessKeyId") or "").strip()[:128]
        secret = str(doc.get("secretAccessKey") or "")
        token = str(doc.get("sessionToken") or "")
        credentials = self._pipeline.credentials
        now = self._clock()
        wait = max(self.by_address.retry_after(client, now), self.by_key.retry_after(key, now))
        if wait:
            # Refused without looking at the secret, and not counted as a failure.
            return _json(
                429,
                {
                    "error": {
                        "code": "TooManyRequestsException",
                        "message": f"Too many failed sign-ins: try again in {wait} second"
                        + ("." if wait == 1 else "s."),
                    }
                },
                [("Retry-After", str(wait))],
            )

        def check() -> Principal | Response:
            try:
                cred = credentials.lookup(key) if key else None
            except AwsError as exc:
                return _aws_error(exc)
            if cred is None or not hmac.compare_digest(cred.secret_access_key.encode(), secret.encode()):
                return _error(
                    403, "InvalidClientTokenId", "The access key ID or secret access key is not valid."
                )
            if cred.session_token and not hmac.compare_digest(cred.session_token.encode(), token.encode()):
                return _error(403, "InvalidClientTokenId", INVALID_TOKEN_MESSAGE)
            return credentials.principal(cred)

        self.by_address.begin(client)
        self.by_key.begin(key)
        found: Principal | Response = _error(500, "ServiceException", INTERNAL_ERROR_MESSAGE)
        try:
            found = await asyncio.get_running_loop().run_in_executor(self._executor, check)
        finally:
            now = self._clock()
            failed = isinstance(found, Response)
            self.by_address.finish(client, now, failed=failed)
            self.by_key.finish(key, now, failed=failed)
        if isinstance(found, Response):
            return found
        # A success forgets the key's failures, not the address's: one valid key must not buy an
        # address fresh guesses at other keys.
        self.by_key.succeeded(key)
        expires = now + SESSION_S
        if found.expires is not None:
            expires = min(expires, found.expires)
        value = secrets.token_urlsafe(32)
        # Ended sessions are dropped; past MAX_SESSIONS the oldest sign-in is signed out, past
        # MAX_SESSIONS_PER_KEY the key's oldest.
        stored = ConsoleSession(found.account_id, found.access_key_id, found.arn, found.expires, expires)
        await asyncio.get_running_loop().run_in_executor(
            self._executor,
            functools.partial(
                self.sessions.create,
                _digest(value),
                stored,
                now,
                per_key=MAX_SESSIONS_PER_KEY,
                total=MAX_SESSIONS,
            ),
        )
        cookie = f"{COOKIE}={value}; Path=/console/; Max-Age={int(expires - now)}; HttpOnly; SameSite=Strict"
        return _json(200, {"account": found.account_id, "accessKeyId": key}, [("Set-Cookie", cookie)])

    @staticmethod
    def _token(request: Request) -> str | None:
        for part in request.headers.get("cookie", "").replace(",", ";").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
        return None

    async def _session(self, request: Request) -> Session | None:
        token = self._token(request)
        if not token:
            return None
        stored = await asyncio.get_running_loop().run_in_executor(
            self._executor, self.sessions.get, _digest(token), self._clock()
        )
        if stored is None or stored.expires < self._clock():
            return None
        principal = Principal(stored.account, stored.access_key_id, stored.arn, stored.principal_expires)
        return Session(principal, stored.expires)

    # -- operations ----------------------------------------------------------------------------

    async def _call(self, request: Request, session: Session, doc: dict[str, Any]) -> Response:
        name = str(doc.get("service") or "")
        operation = str(doc.get("operation") or "")
        region = str(doc.get("region") or "us-east-1")
        params = doc.get("params") or {}
        endpoint = self._pipeline.endpoints.get(name)
        if endpoint is None:
            return _aws_error(unknown_service(name))
        if not _REGION.match(region):
            return _error(400, "InvalidRegion", f"'{region}' is not a region name.")
        if not isinstance(params, dict):
            return _error(400, "SerializationException", "params must be a JSON object.")
        model = endpoint.operation_model(operation)
        if model is None:
            return _aws_error(unknown_operation(name, operation))
        if not endpoint.implemented(operation):
            return _aws_error(not_implemented(operation))
        if name == "s3" and (model.has_streaming_input or model.has_streaming_output):
            # Object bodies are streamed by the HTTP front door, never carried in JSON.
            return _error(
                400, "UnsupportedOperation", f"{operation} is not available through the console's calls."
            )
        request_id = str(uuid.uuid4())
        try:
            output = await self._pipeline.call(
                session.principal,
                name,
                operation,
                _decode_blobs(model.input_shape, params),
                region=region,
                base_url=f"http://{request.headers.get('host', '127.0.0.1')}",
                request_id=request_id,
                source_ip=request.client_host,
            )
            output = await _collect_event_streams(output)
        except AwsError as exc:
            return _aws_error(exc, name)
        except Exception:
            log.exception("console: internal error in %s.%s (request %s)", name, operation, request_id)
            return _error(500, "ServiceException", INTERNAL_ERROR_MESSAGE)
        return _json(200, {"result": output, "requestId": request_id})

    async def _check_layer(self, request: Request, session: Session, doc: dict[str, Any]) -> Response:
        """``lamina layer check`` of one layer version for each of its compatible runtimes and
        architectures, for a principal allowed GetLayerVersion on it (asked through the pipeline)."""
        if self._layer_checker is None:
            return _error(404, "NotFound", "This server does not check layers.")
        region = str(doc.get("region") or "us-east-1")
        name, version = doc.get("LayerName"), doc.get("VersionNumber")
        if (
            not _REGION.match(region)
            or not isinstance(name, str)
            or not isinstance(version, int)
            or isinstance(version, bool)
        ):
            return _error(
                400, "ValidationException", "A LayerName, a VersionNumber and a region are required."
            )
        request_id = str(uuid.uuid4())
        try:
            got = await self._pipeline.call(
                session.principal,
                "lambda",
                "GetLayerVersion",
                {"LayerName": name, "VersionNumber": version},
                region=region,
                base_url=f"http://{request.headers.get('host', '127.0.0.1')}",
                request_id=request_id,
                source_ip=request.client_host,
            )
            sha = base64.b64decode(got["Content"]["CodeSha256"]).hex()
            checks = await asyncio.get_running_loop().run_in_executor(
                self._executor,
                self._layer_checker,
                sha,
                list(got.get("CompatibleRuntimes") or []),
                list(got.get("CompatibleArchitectures") or []),
            )
        except AwsError as exc:
            return _aws_error(exc)
        except Exception:
            log.exception(
                "console: internal error checking layer %s:%s (request %s)", name, version, request_id
            )
            return _error(500, "ServiceException", INTERNAL_ERROR_MESSAGE)
        return _json(200, {"LayerVersionArn": got.get("LayerVersionArn"), "checks": checks})

    def _read_logs(self, session: Session, doc: dict[str, Any], client: str) -> Response:
        """The newest events of a function's log group (``logGroup``: its LoggingConfig.LogGroup;
        without it ``/aws/lambda/<function>``), newest streams first, for a principal CloudWatch
        Logs would let read them (logs:FilterLogEvents on the group). Read from the CloudWatch Logs
        store, the group's retention applied as FilterLogEvents applies it."""
        region = str(doc.get("region") or "us-east-1")
        function = str(doc.get("function") or "")
        group = doc.get("logGroup")
        if not _REGION.match(region) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", function):
            return _error(400, "ValidationException", "A function name and a region are required.")
        if group is None:
            group = f"/aws/lambda/{function}"
        if not isinstance(group, str) or not _LOG_GROUP.match(group):
            return _error(400, "ValidationException", "The log group name is not valid.")
        try:
            self._pipeline.authorize(
                AuthorizationRequest(
                    session.principal,
                    "logs",
                    "FilterLogEvents",
                    region,
                    {"logGroupName": group},
                    client,
                )
            )
        except AwsError as exc:
            return _aws_error(exc)
        scope = Scope(session.principal.account_id, region)
        found = self._logs.group(scope, group)
        if found is None:
            return _json(200, {"streams": []})
        now_ms = int(self._clock() * 1000)
        since = 0 if found.retention_days is None else now_ms - found.retention_days * DAY_MS
        # The newest streams, sorted in SQL: a group may hold many thousands of streams.
        newest = self._logs.streams_page(
            scope, group, prefix="", by_last_event=True, descending=True, after=None, limit=_LOG_STREAMS
        )
        streams = [s for s in newest if s.last_ms is not None]
        out: list[dict[str, str]] = []
        budget = _LOG_BYTES
        for stream in streams[:_LOG_STREAMS]:
            if budget <= 0:
                break
            events = self._logs.stream_events(
                scope,
                group,
                stream.name,
                since_ms=since,
                until_ms=_END_OF_TIME_MS,
                cursor=None,
                forward=False,
                limit=_LOG_EVENTS,
            )
            lines: list[str] = []
            for event in reversed(events):  # newest first, while they fit
                line = event.message if event.message.endswith("\n") else event.message + "\n"
                size = len(line.encode())
                if size > budget:
                    if not lines:  # one event larger than what is left: its end
                        lines.append(line.encode()[-budget:].decode(errors="replace"))
                        budget = 0
                    break
                lines.append(line)
                budget -= size
            if lines:
                out.append({"stream": stream.name, "text": "".join(reversed(lines))})
        return _json(200, {"streams": out})

    # -- objects: bodies streamed, never in JSON ------------------------------------------------

    async def _upload(self, request: Request) -> Response:
        """PutObject (or UploadPart) of the request's body, streamed to the blob store as it arrives, for the
        signed-in principal (authorized and checked by the pipeline like any PutObject). Everything
        that refuses it answers before a byte of the body is read."""
        # Only the console's script sets this header; a cross-site form cannot send a PUT at all.
        if request.headers.get("x-lamina-console") != "1":
            return _error(403, "AccessDenied", "Missing the X-Lamina-Console header.")
        session = await self._session(request)
        if session is None:
            return _error(401, "NotSignedIn", "Sign in with an access key and secret.")
        region = request.query_value("region") or "us-east-1"
        bucket, key = request.query_value("bucket"), request.query_value("key")
        if not _REGION.match(region):
            return _error(400, "InvalidRegion", f"'{region}' is not a region name.")
        if not bucket or not key or request.stream is None:
            return _error(400, "ValidationException", "A bucket and a key are required.")
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": request.stream}
        upload_id, part = request.query_value("uploadId"), request.query_value("partNumber")
        if upload_id is not None or part is not None:
            # One part of a multipart upload the page started (a file over PutObject's 5 GB).
            if not upload_id or part is None or not part.isdigit() or len(part) > 5:
                return _error(400, "ValidationException", "An uploadId and a partNumber are required.")
            params.update(UploadId=upload_id, PartNumber=int(part))
            operation = "UploadPart"
        else:
            content_type = request.headers.get("content-type", "")
            if content_type and len(content_type) <= 256:
                params["ContentType"] = content_type
            operation = "PutObject"
        output = await self._s3(request, session, operation, params, region)
        if isinstance(output, Response):
            return output
        return _json(200, {"result": {"ETag": output.get("ETag")}})

    async def _download_link(self, request: Request, session: Session, doc: dict[str, Any]) -> Response:
        """A one-use link to one object, for a principal S3 lets read it (HeadObject, authorized as
        s3:GetObject, through the pipeline): the page navigates to it and the browser saves the
        file as it comes, whatever its size."""
        region = str(doc.get("region") or "us-east-1")
        bucket, key = doc.get("Bucket"), doc.get("Key")
        if not _REGION.match(region) or not isinstance(bucket, str) or not isinstance(key, str):
            return _error(400, "ValidationException", "A Bucket, a Key and a region are required.")
        head = await self._s3(request, session, "HeadObject", {"Bucket": bucket, "Key": key}, region)
        if isinstance(head, Response):
            return head
        now = self._clock()
        token = secrets.token_urlsafe(32)
        # Past MAX_DOWNLOADS links the oldest is dropped.
        link = ConsoleDownload(_digest(self._token(request) or ""), region, bucket, key, now + DOWNLOAD_S)
        await asyncio.get_running_loop().run_in_executor(
            self._executor,
            functools.partial(self.downloads.create, _digest(token), link, now, total=MAX_DOWNLOADS),
        )
        return _json(200, {"url": DOWNLOAD_PATH + token, "ContentLength": head.get("ContentLength")})

    async def _download(self, request: Request, token: str) -> Response:
        """The object of a download link, sent from its file in chunks as an attachment (never
        shown in the console's origin), by a GetObject run now for the session's principal."""
        session = await self._session(request)
        if session is None:  # (checked first: no write for a request without a session)
            return _error(403, "AccessDenied", "This download link is not valid (any more).")
        wanted = await asyncio.get_running_loop().run_in_executor(
            self._executor, self.downloads.take, _digest(token)
        )
        if wanted is None or wanted.expires < self._clock():
            return _error(403, "AccessDenied", "This download link is not valid (any more).")
        if not hmac.compare_digest(
            wanted.session_hash.encode(), _digest(self._token(request) or "").encode()
        ):
            return _error(403, "AccessDenied", "This download link is not valid (any more).")
        params = {"Bucket": wanted.bucket, "Key": wanted.key}
        output = await self._s3(request, session, "GetObject", params, wanted.region)
        if isinstance(output, Response):
            return output
        body = output.get("Body")
        if not isinstance(body, FileSlice):
            return _error(500, "ServiceException", INTERNAL_ERROR_MESSAGE)
        headers = [
            # Bytes to save, whatever the object says it is: an HTML object must not run as a
            # page of the console's origin (the sandbox, too, for a browser that renders it).
            ("Content-Type", "application/octet-stream"),
            ("Content-Disposition", attachment(wanted.key)),
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", "default-src 'none'; sandbox; frame-ancestors 'none'"),
        ]
        if isinstance(output.get("ETag"), str):
            headers.append(("ETag", output["ETag"]))
        return Response(200, headers, file_path=body.path, file_offset=body.offset, file_size=body.length)

    async def _s3(
        self, request: Request, session: Session, operation: str, params: dict[str, Any], region: str
    ) -> dict[str, Any] | Response:
        """One S3 operation through the pipeline for the session's principal: its output, or the
        error as the console answers it."""
        request_id = str(uuid.uuid4())
        try:
            return await self._pipeline.call(
                session.principal,
                "s3",
                operation,
                params,
                region=region,
                base_url=f"http://{request.headers.get('host', '127.0.0.1')}",
                request_id=request_id,
                source_ip=request.client_host,
            )
        except AwsError as exc:
            return _aws_error(exc, "s3")
        except Exception:
            log.exception("console: internal error in s3.%s (request %s)", operation, request_id)
            return _error(500, "ServiceException", INTERNAL_ERROR_MESSAGE)
