"""The HTTP front door: an ASGI application serving the AWS APIs.

Request path: find the service from the SigV4 credential scope, route to an
operation (method/path/query only), enforce the operation's body size limit,
read the body, then -- in a worker thread, so big uploads never stall the event
loop -- verify the signature, parse, validate, run the handler, serialise.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lamina import __version__
from lamina.api import sigv4
from lamina.api.http import Request, Response
from lamina.api.protocols import OperationMatch, Protocol, protocol_for
from lamina.api.validation import validate
from lamina.console.backend import MAX_BODY as CONSOLE_MAX_BODY
from lamina.console.backend import Console
from lamina.domain.accounts import Account
from lamina.errors import AwsError, RequestEntityTooLargeException, ServiceException
from lamina.services.base import RequestContext, ServiceBinding
from lamina.services.lambda_.code import DOWNLOAD_PREFIX
from lamina.services.platform import Platform

log = logging.getLogger("lamina.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_SERVICE = "lambda"
CHUNK = 1 << 20
# A maximum-size publish holds ~200 MB while parsed (body, JSON text, decoded zip): at most this many
# bodies larger than LARGE_BODY are in flight at once, the rest wait their turn.
LARGE_BODY = 1 << 20
MAX_LARGE_IN_FLIGHT = 4


class _Service:
    __slots__ = ("binding", "protocol")

    def __init__(self, binding: ServiceBinding) -> None:
        self.binding = binding
        self.protocol: Protocol = protocol_for(binding.model)


class LaminaApp:
    """ASGI app. ``services`` maps SigV4 signing names (``lambda``, ``iam``...) to bindings."""

    def __init__(
        self,
        platform: Platform,
        services: dict[str, ServiceBinding],
        accounts: tuple[Account, ...],
        *,
        clock: Callable[[], float] = time.time,
        workers: int = 16,
    ) -> None:
        self.platform = platform
        self.services = {name: _Service(b) for name, b in services.items()}
        self._credentials = {
            a.access_key_id: sigv4.Credential(a.access_key_id, a.secret_access_key, a.account_id)
            for a in accounts
        }
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lamina-api")
        self._large: asyncio.Semaphore | None = None  # created on the server's loop
        self.console = Console(self)

    def lookup_credential(self, access_key_id: str) -> sigv4.Credential | None:
        """Long-term keys from the accounts, else an STS session (refused once expired)."""
        found = self._credentials.get(access_key_id)
        if found is not None or not access_key_id.startswith("ASIA"):
            return found
        session = self.platform.iam.session(access_key_id)
        if session is None:
            return None
        if session.expires < self.clock():
            raise ExpiredToken("The security token included in the request is expired")
        return sigv4.Credential(access_key_id, session.secret, session.account, session_token=session.token)

    def caller_arn(self, access_key_id: str) -> str:
        if access_key_id in self._credentials:
            return ""
        session = self.platform.iam.session(access_key_id)
        return session.arn if session is not None else ""

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw.decode("latin-1").partition("?")[0]
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            key = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        request = Request(
            method=scope["method"],
            raw_path=raw_path,
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            client_host=(scope.get("client") or ("", 0))[0],
        )
        if raw_path.startswith("/_lamina/"):
            response = await self._internal(request, receive)
        elif raw_path == "/console" or raw_path.startswith("/console/"):
            text = headers.get("content-length", "")
            body = await self._read_limited(receive, CONSOLE_MAX_BODY, int(text) if text.isdigit() else None)
            response = await self.console.handle(request, body)
        else:
            response = await self._aws(request, receive)
        await self._send(send, response)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.platform.attach_loop(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.platform.aclose()
                self._pool.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _send(self, send: Send, response: Response) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        if response.file_path is None:
            headers.append((b"content-length", str(len(response.body)).encode()))
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": response.body})
            return
        headers.append((b"content-length", str(response.file_size).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        loop = asyncio.get_running_loop()
        with open(response.file_path, "rb") as f:
            while True:
                chunk = await loop.run_in_executor(self._pool, f.read, CHUNK)
                if not chunk:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _read_body(receive: Receive, limit: int) -> bytes | None:
        """The whole body, or None once it exceeds ``limit`` (the rest is drained, not kept)."""
        parts: list[bytes] = []
        size = 0
        too_big = False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                too_big = True
                parts.clear()
            elif chunk:
                parts.append(chunk)
            if not message.get("more_body", False):
                break
        if too_big:
            return None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # -- lamina's own endpoints ---------------------------------------------------------------

    async def _internal(self, request: Request, receive: Receive) -> Response:
        await self._read_body(receive, 1 << 16)
        if request.raw_path == "/_lamina/health" and request.method in ("GET", "HEAD"):
            body = json.dumps({"status": "ok", "version": __version__}).encode()
            return Response(200, [("Content-Type", "application/json")], body)
        if request.raw_path.startswith(DOWNLOAD_PREFIX) and request.method in ("GET", "HEAD"):
            return self._download(request)
        return _plain(404, "NotFound", "Not found")

    def _download(self, request: Request) -> Response:
        """Serve a signed ``Content.Location`` URL (S3-presigned-URL-like semantics)."""
        reason = self.platform.signer.check(
            request.raw_path,
            request.query_value("Expires"),
            request.query_value("Signature"),
            int(self.clock()),
        )
        if reason is not None:
            return _plain(403, "AccessDenied", reason)
        digest = request.raw_path[len(DOWNLOAD_PREFIX) :]
        try:
            path = self.platform.blobs.path(digest)
            size = path.stat().st_size
        except (ValueError, OSError):
            return _plain(404, "NoSuchKey", "The specified key does not exist.")
        headers = [("Content-Type", "application/zip"), ("ETag", f'"{digest}"')]
        if request.method == "HEAD":
            headers.append(("Content-Length", str(size)))
            return Response(200, headers)
        return Response(200, headers, file_path=str(path), file_size=size)

    # -- AWS APIs -----------------------------------------------------------------------------

    async def _aws(self, request: Request, receive: Receive) -> Response:
        request_id = str(uuid.uuid4())
        scope = sigv4.parse_scope(request)
        service = self.services.get(scope[2] if scope else DEFAULT_SERVICE)
        if service is None:
            service = self.services[DEFAULT_SERVICE]
            await self._read_body(receive, 1 << 16)
            return service.protocol.serialize_error(
                AwsError(
                    f"Service '{scope[2] if scope else ''}' is not served by lamina.",
                    code="UnknownService",
                    status=400,
                    sender_fault=True,
                ),
                request_id,
            )
        text = request.headers.get("content-length", "")
        declared = int(text) if text.isdigit() else None
        routed_body: bytes | None = None
        if service.protocol.routes_on_body:
            # query/ec2: the operation is the Action parameter, possibly in the form body.
            limit = service.binding.default_max_request_bytes
            routed_body = (
                await self._read_limited(receive, limit, declared) if (declared or 0) <= limit else None
            )
            if routed_body is None:
                if declared is not None and declared > limit:
                    await self._read_body(receive, 0)
                error = RequestEntityTooLargeException(f"Request must be smaller than {limit} bytes")
                return service.protocol.serialize_error(error, request_id)
            request.body = routed_body
        try:
            match = service.protocol.match(request)
        except AwsError as exc:
            if routed_body is None:
                await self._read_body(receive, 1 << 16)
            return service.protocol.serialize_error(exc, request_id)
        name = match.operation.name
        limit = service.binding.max_request_bytes.get(name, service.binding.default_max_request_bytes)
        body = routed_body
        if body is None and (declared is None or declared <= limit):
            body = await self._read_limited(receive, limit, declared)
        if body is None:
            if declared is not None and declared > limit:
                await self._read_body(receive, 0)  # drain, so the client reads our answer
            wire = service.binding.wire_names.get(name, name)
            error = RequestEntityTooLargeException(
                f"Request must be smaller than {limit} bytes for the {wire} operation"
            )
            return service.protocol.serialize_error(error, request_id)
        request.body = body
        handler = service.binding.handlers.get(name)
        if inspect.iscoroutinefunction(handler):
            return await self._dispatch_async(service, match, request, request_id)
        if (request.method == "GET" and not body) or _reads_only(handler):
            # Reads are short (a few SQLite lookups): answering on the loop saves the two thread
            # hand-offs, about a fifth of a metadata call's server time (0.2 ms of the 0.6 an
            # EC2 Describe* call took; those are POSTs, hence the handlers' ``reads_only`` mark).
            return self._dispatch(service, match, request, request_id)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._dispatch, service, match, request, request_id)

    async def _read_limited(self, receive: Receive, limit: int, declared: int | None) -> bytes | None:
        if declared is not None and declared <= LARGE_BODY:
            return await self._read_body(receive, limit)
        if self._large is None:
            self._large = asyncio.Semaphore(MAX_LARGE_IN_FLIGHT)
        async with self._large:
            return await self._read_body(receive, limit)

    def _prepare(
        self, service: _Service, match: OperationMatch, request: Request, request_id: str
    ) -> tuple[Any, RequestContext, dict[str, Any]]:
        """Verify the signature, parse and validate: (handler, context, params)."""
        protocol = service.protocol
        now = self.clock()
        signed = sigv4.verify(
            sigv4.IncomingRequest(
                request.method, request.raw_path, request.query_string, request.headers, request.body
            ),
            self.lookup_credential,
            _utc(now),
        )
        name = match.operation.name
        handler = service.binding.handlers.get(name)
        if handler is None:
            raise AwsError(
                f"The {name} operation is not implemented by lamina yet.",
                code="NotImplemented",
                status=501,
                sender_fault=False,
            )
        params = protocol.parse(match, request)
        pre = service.binding.prevalidators.get(name)
        if pre is not None:
            pre(params)
        validate(
            match.operation.input_shape,
            params,
            service.binding.overrides.get(name),
            service.binding.validation_order.get(name, ()),
        )
        host = request.headers.get("host", "127.0.0.1")
        ctx = RequestContext(
            account_id=signed.account_id,
            region=signed.region,
            request_id=request_id,
            base_url=f"http://{host}",
            now_ms=int(now * 1000),
            access_key_id=signed.access_key_id,
            caller_arn=self.caller_arn(signed.access_key_id),
        )
        return handler, ctx, params

    def _failed(self, service: _Service, match: OperationMatch, exc: Exception, request_id: str) -> Response:
        if isinstance(exc, AwsError):
            return service.protocol.serialize_error(exc, request_id)
        log.error("internal error in %s (request %s)", match.operation.name, request_id, exc_info=exc)
        return service.protocol.serialize_error(
            ServiceException("An internal error occurred in lamina."), request_id
        )

    def _dispatch(
        self, service: _Service, match: OperationMatch, request: Request, request_id: str
    ) -> Response:
        try:
            handler, ctx, params = self._prepare(service, match, request, request_id)
            if inspect.iscoroutinefunction(handler):
                raise TypeError(f"async handler {handler!r} dispatched on a thread")
            return service.protocol.serialize(match, handler(self.platform, ctx, params), request_id)
        except Exception as exc:
            return self._failed(service, match, exc, request_id)

    async def _dispatch_async(
        self, service: _Service, match: OperationMatch, request: Request, request_id: str
    ) -> Response:
        """Async handlers (Invoke) run on the loop: no thread hand-offs on the invoke path.

        Hashing and parsing a big body (up to 6 MB for Invoke) is done on a worker thread first.
        """
        try:
            if len(request.body) > LARGE_BODY:
                loop = asyncio.get_running_loop()
                handler, ctx, params = await loop.run_in_executor(
                    self._pool, self._prepare, service, match, request, request_id
                )
            else:
                handler, ctx, params = self._prepare(service, match, request, request_id)
            output = await handler(self.platform, ctx, params)
            return service.protocol.serialize(match, output, request_id)
        except Exception as exc:
            return self._failed(service, match, exc, request_id)


class ExpiredToken(AwsError):
    """Temporary credentials past their expiry (Lambda: ExpiredTokenException; query: ExpiredToken)."""

    code = "ExpiredTokenException"
    status = 403
    sender_fault = True


def _reads_only(handler: object) -> bool:
    """Whether a handler is marked as one that only reads (``reads_only = True``, as
    :func:`lamina.services.ec2.handlers_tags.reads_only` does): a snapshot read of the store, no
    write transaction, no listener, nothing else that blocks. Unmarked handlers of POSTs (every
    query and ec2 call) run on the worker pool: a handler that writes must never run on the loop.
    """
    return getattr(handler, "reads_only", False) is True


def _utc(ts: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _plain(status: int, code: str, message: str) -> Response:
    """An S3-style XML error, for the download endpoint (what clients of presigned URLs expect)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return Response(status, [("Content-Type", "application/xml")], body)


def default_workers() -> int:
    return max(8, (os.cpu_count() or 2) * 4)
