"""The HTTP front door: an ASGI application serving the AWS APIs.

Transport only: find the service from the SigV4 credential scope, route to an operation
(method/path/query only), enforce the operation's body size limit, read the body, and hand the
request to the one :class:`~lamina.api.pipeline.Pipeline` (authenticate -> parse -> authorize ->
validate -> handle -> serialize). Other front ends (the console) are mounted under a path prefix by
the composition root and call the same pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, Protocol

from lamina import __version__
from lamina.api import sigv4
from lamina.api.http import Request, Response
from lamina.api.pipeline import Pipeline
from lamina.api.protocols.ec2 import Ec2Protocol
from lamina.api.protocols.restxml import virtual_host_bucket
from lamina.domain import function_urls as urls
from lamina.domain.presign import UrlSigner
from lamina.domain.response_streaming import StreamedAnswer
from lamina.errors import AwsError, request_too_large, unknown_service
from lamina.services.base import Principal
from lamina.services.ec2.vpc_run import MAX_BODY as VPC_RUN_MAX_BODY
from lamina.services.ec2.vpc_run import PATH as VPC_RUN_PATH
from lamina.services.lambda_.code import DOWNLOAD_PREFIX
from lamina.store import BlobStore, BlobStoreError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_SERVICE = "lambda"
S3_SERVICE = "s3"
CHUNK = 1 << 20
# A maximum-size publish holds ~200 MB while parsed (body, JSON text, decoded zip): at most this many
# bodies larger than LARGE_BODY are in flight at once, the rest wait their turn.
LARGE_BODY = 1 << 20
MAX_LARGE_IN_FLIGHT = 4
# A streamed body (S3's PutObject, UploadPart) declared this small, from a client not waiting for
# "100 Continue", is gathered on the loop before the handler runs: its thread then reads it
# without a hop back to the loop (about a millisecond of a small PutObject on a busy machine).
PREFETCH_BODY = 64 << 10

log = logging.getLogger("lamina.api")


class Mount(Protocol):
    """A front end served under a path prefix (the console): bodies up to ``max_body`` bytes, or,
    for the requests it :meth:`streams`, a :class:`~lamina.services.base.BodyStream` in
    ``request.stream`` (its uploads, never read whole) and ``body`` empty."""

    prefix: str
    max_body: int

    def streams(self, request: Request) -> bool: ...

    async def handle(self, request: Request, body: bytes | None) -> Response: ...


class UrlFront(Protocol):
    """The function URL endpoint (services/lambda_/url_endpoint.py)."""

    async def handle(
        self, target: urls.Target, request: urls.HttpRequest, authenticate: Callable[[str], Principal]
    ) -> urls.HttpAnswer | StreamedAnswer: ...


class Lifecycle(Protocol):
    """What the server's lifespan starts and stops (the supervisor)."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class VpcRunRoute(Protocol):
    """``lamina vpc run``'s route (``services.ec2.vpc_run.VpcRunFront``)."""

    def handle(
        self, body: bytes, authenticate: Callable[[str], Principal], source_ip: str = ""
    ) -> dict[str, Any]: ...


class LaminaApp:
    """ASGI app: transport for the pipeline, lamina's own endpoints and the mounted front ends."""

    def __init__(
        self,
        pipeline: Pipeline,
        lifecycle: Lifecycle,
        downloads: Downloads,
        executor: Executor,
        *,
        mounts: Sequence[Mount] = (),
        function_urls: UrlFront | None = None,
        vpc_run: VpcRunRoute | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pipeline = pipeline
        self._lifecycle = lifecycle
        self._downloads = downloads
        self._executor = executor
        self._mounts = tuple(mounts)
        self._urls = function_urls
        self._vpc_run = vpc_run
        self.clock = clock
        self._large: asyncio.Semaphore | None = None  # created on the server's loop

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
            scheme=scope.get("scheme", "http"),
        )
        body = _Body(
            receive, expected=headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        )
        url = None if self._urls is None else urls.recognise(headers.get("host", ""), raw_path)
        if url is not None:
            # A function URL, by its Host header or the path form: before SigV4 routing.
            response = await self._function_url(url, request, body)
        elif raw_path.startswith("/_lamina/"):
            response = await self._internal(request, body)
        else:
            mount = self._mount_for(raw_path)
            if mount is not None:
                text = headers.get("content-length", "")
                declared = int(text) if text.isdigit() else None
                data: bytes | None
                if mount.streams(request):
                    request.stream = _Stream(body, asyncio.get_running_loop(), declared)
                    data = b""
                else:
                    data = (
                        await self._read_limited(body, mount.max_body, declared)
                        if (declared or 0) <= mount.max_body
                        else None
                    )
                response = await mount.handle(request, data)
            else:
                response = await self._aws(request, body)
        if not body.done:
            # Answered before the body was read (a 413 on the declared Content-Length): the
            # connection cannot carry another request; the server reads and drops the rest for a
            # bounded time before closing (lamina.api.edge, lingering close).
            response.headers.append(("Connection", "close"))
        await self._send(send, response, body if body.done else None)

    def _mount_for(self, raw_path: str) -> Mount | None:
        for mount in self._mounts:
            if raw_path == mount.prefix or raw_path.startswith(mount.prefix + "/"):
                return mount
        return None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._lifecycle.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._lifecycle.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _send(self, send: Send, response: Response, receive: Receive | None = None) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        if response.stream is not None:
            await self._send_stream(send, response.status, headers, response.stream, receive)
            return
        if response.file_path is None:
            length = len(response.body) if response.length is None else response.length
            headers.append((b"content-length", str(length).encode()))
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": response.body})
            return
        headers.append((b"content-length", str(response.file_size).encode()))
        loop = asyncio.get_running_loop()
        try:
            f = await loop.run_in_executor(self._executor, open, response.file_path, "rb")
        except OSError:
            # Gone between the answer and the send (an object deleted meanwhile): nothing was sent
            # yet, so the client gets S3's words for it.
            await self._send(send, _plain(404, "NoSuchKey", "The specified key does not exist."))
            return
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        with f:
            if response.file_offset:
                f.seek(response.file_offset)
            left = response.file_size
            # The next megabyte is read while this one is sent (at most two in memory).
            ahead = loop.run_in_executor(self._executor, f.read, min(CHUNK, left)) if left > 0 else None
            try:
                while ahead is not None:
                    chunk = await ahead
                    ahead = None
                    if not chunk:
                        break
                    left -= len(chunk)
                    if left > 0:
                        ahead = loop.run_in_executor(self._executor, f.read, min(CHUNK, left))
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            finally:
                if ahead is not None:
                    # The client went away mid-body: the read in flight ends before the file closes.
                    await asyncio.wait([ahead])
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _send_stream(
        send: Send,
        status: int,
        headers: list[tuple[bytes, bytes]],
        stream: AsyncIterator[bytes],
        receive: Receive | None = None,
    ) -> None:
        """Each chunk as it comes: without a Content-Length, the server sends HTTP/1.1 chunked
        transfer encoding. The iterator is closed whatever happens (a client gone mid-stream).
        With ``receive`` (the request's body read to its end), a client that disconnects ends the
        stream at once: uvicorn's ``send`` to a closed connection returns without an error, so a
        stream that waits between chunks (a CloudWatch Logs Live Tail session) would otherwise run
        on unseen."""

        async def pump() -> None:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            async for chunk in stream:
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

        async def disconnected(receive: Receive) -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        try:
            if receive is None:
                await pump()
                return
            pumping = asyncio.ensure_future(pump())
            watching = asyncio.ensure_future(disconnected(receive))
            try:
                await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                watching.cancel()
                if not pumping.done():
                    pumping.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pumping
            if not pumping.cancelled():
                pumping.result()  # the pump's own failure, raised here
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    @staticmethod
    async def _read_body(receive: Receive, limit: int) -> bytes | None:
        """The whole body, or None once it exceeds ``limit``: the rest is never read (the answer
        then closes the connection, see ``__call__``)."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            if chunk:
                parts.append(chunk)
            if not message.get("more_body", False):
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # -- function URLs ----------------------------------------------------------------------------

    async def _function_url(self, url: urls.Target, request: Request, receive: Receive) -> Response:
        assert self._urls is not None
        text = request.headers.get("content-length", "")
        declared = int(text) if text.isdigit() else None
        limit = urls.MAX_BODY
        data = await self._read_limited(receive, limit, declared) if (declared or 0) <= limit else None
        if data is None:
            answer = urls.TOO_LARGE
            return Response(answer.status, list(answer.headers), answer.body)
        request.body = data
        http = urls.HttpRequest(
            request.method, url.path, request.query_string, request.headers, data, request.client_host
        )
        got = await self._urls.handle(
            url,
            http,
            lambda region: self.pipeline.authenticate(request, service="lambda", region=region),
        )
        if isinstance(got, StreamedAnswer):  # InvokeMode RESPONSE_STREAM: sent as it comes, chunked
            return Response(got.status, list(got.headers), stream=got.chunks)
        return Response(got.status, list(got.headers), got.body)

    # -- lamina's own endpoints ---------------------------------------------------------------

    async def _internal(self, request: Request, receive: Receive) -> Response:
        if request.raw_path == "/_lamina/health" and request.method in ("GET", "HEAD"):
            body = json.dumps({"status": "ok", "version": __version__}).encode()
            return Response(200, [("Content-Type", "application/json")], body)
        if request.raw_path.startswith(DOWNLOAD_PREFIX) and request.method in ("GET", "HEAD"):
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._download, request)
        if request.raw_path == VPC_RUN_PATH and request.method == "POST" and self._vpc_run is not None:
            return await self._vpc_run_request(request, receive)
        return _plain(404, "NotFound", "Not found")

    async def _vpc_run_request(self, request: Request, receive: Receive) -> Response:
        """``lamina vpc run``'s own route (``services.ec2.vpc_run``): SigV4 for ec2, JSON."""
        assert self._vpc_run is not None
        text = request.headers.get("content-length", "")
        declared = int(text) if text.isdigit() else None
        data = await self._read_limited(receive, VPC_RUN_MAX_BODY, declared)
        if data is None:
            return _plain(413, "RequestEntityTooLarge", "Request entity too large")
        request.body = data
        vpc_run = self._vpc_run

        def run() -> tuple[int, dict[str, Any]]:
            try:
                return 200, vpc_run.handle(
                    data,
                    lambda region: self.pipeline.authenticate(request, service="ec2", region=region),
                    request.client_host,
                )
            except AwsError as exc:  # in EC2's words, as an EC2 call would have it
                code, status, message = Ec2Protocol.DIALECT.get(exc.code, (exc.code, None, None))
                return status or exc.status, {"Error": {"Code": code, "Message": message or str(exc)}}

        status, answer = await asyncio.get_running_loop().run_in_executor(self._executor, run)
        return Response(status, [("Content-Type", "application/json")], json.dumps(answer).encode())

    def _download(self, request: Request) -> Response:
        """Serve a signed ``Content.Location`` URL (S3-presigned-URL-like semantics)."""
        reason = self._downloads.signer.check(
            request.raw_path,
            request.query_value("Expires"),
            request.query_value("Signature"),
            int(self.clock()),
        )
        if reason is not None:
            return _plain(403, "AccessDenied", reason)
        digest = request.raw_path[len(DOWNLOAD_PREFIX) :]
        try:
            path = self._downloads.blobs.path(digest)
            size = path.stat().st_size
        except (ValueError, OSError):
            return _plain(404, "NoSuchKey", "The specified key does not exist.")
        except BlobStoreError as exc:  # the remote blob store failed, or held altered bytes
            log.error("download of blob %s: %s", digest, exc)
            return _plain(500, "InternalError", "We encountered an internal error. Please try again.")
        headers = [("Content-Type", "application/zip"), ("ETag", f'"{digest}"')]
        if request.method == "HEAD":
            headers.append(("Content-Length", str(size)))
            return Response(200, headers)
        return Response(200, headers, file_path=str(path), file_size=size)

    # -- AWS APIs -----------------------------------------------------------------------------

    def _unsigned_endpoint(self, request: Request) -> str:
        """The service of a request that carries no credential scope: S3 by a virtual-hosted
        ``Host`` (``<bucket>.s3.<anything>``) or when no Lambda route takes it (a path-style
        anonymous S3 request), else Lambda (whose answer says the token is missing)."""
        endpoints = self.pipeline.endpoints
        s3 = endpoints.get(S3_SERVICE)
        if s3 is None:
            return DEFAULT_SERVICE
        if virtual_host_bucket(request.headers.get("host", "")) is not None:
            return S3_SERVICE
        try:
            endpoints[DEFAULT_SERVICE].protocol.match(request)
        except AwsError:
            return S3_SERVICE
        return DEFAULT_SERVICE

    async def _aws(self, request: Request, receive: Receive) -> Response:
        scope = sigv4.parse_scope(request)
        endpoints = self.pipeline.endpoints
        endpoint = endpoints.get(scope[2] if scope else self._unsigned_endpoint(request))
        if endpoint is None:
            return endpoints[DEFAULT_SERVICE].protocol.serialize_error(
                unknown_service(scope[2] if scope else ""),
                str(uuid.uuid4()),
            )
        text = request.headers.get("content-length", "")
        declared = int(text) if text.isdigit() else None
        routed_body: bytes | None = None
        if endpoint.routes_on_body:
            # query/ec2: the operation is the Action parameter, possibly in the form body.
            limit = endpoint.default_max_request_bytes
            routed_body = (
                await self._read_limited(receive, limit, declared) if (declared or 0) <= limit else None
            )
            if routed_body is None:
                error = request_too_large(limit)
                return endpoint.protocol.serialize_error(error, str(uuid.uuid4()))
            request.body = routed_body
        try:
            match = endpoint.protocol.match(request)
        except AwsError as exc:
            return endpoint.protocol.serialize_error(exc, str(uuid.uuid4()))
        name = match.operation.name
        if endpoint.streams_body(name):
            # Read by the handler as it goes (to disk, never whole): no size limit here.
            stream = _Stream(receive, asyncio.get_running_loop(), declared)
            expects = "100-continue" in request.headers.get("expect", "").lower()
            if declared is not None and declared <= PREFETCH_BODY and not expects:
                # (A client waiting for "100 Continue" is answered only once the request passed
                # its checks: it sends nothing when refused.)
                await stream.prefetch()
            request.stream = stream
            return await self.pipeline.http(endpoint, match, request)
        limit = endpoint.max_request_bytes(name)
        body = routed_body
        if body is None and (declared is None or declared <= limit):
            body = await self._read_limited(receive, limit, declared)
        if body is None:
            # A declared Content-Length over the limit is answered before any byte of the body.
            error = request_too_large(limit, endpoint.wire_name(name))
            return endpoint.protocol.serialize_error(error, str(uuid.uuid4()))
        request.body = body
        return await self.pipeline.http(endpoint, match, request)

    async def _read_limited(self, receive: Receive, limit: int, declared: int | None) -> bytes | None:
        if declared is not None and declared <= LARGE_BODY:
            return await self._read_body(receive, limit)
        if self._large is None:
            self._large = asyncio.Semaphore(MAX_LARGE_IN_FLIGHT)
        async with self._large:
            return await self._read_body(receive, limit)


class _Stream:
    """A streaming request body (:class:`~lamina.services.base.BodyStream`) read on an I/O
    executor thread from the event loop's receive channel, about a megabyte per hand-off. uvicorn
    stops reading the socket while the app has not taken what came (its flow control), so a slow
    disk slows the client down instead of filling memory."""

    def __init__(self, receive: Receive, loop: asyncio.AbstractEventLoop, declared: int | None) -> None:
        self._receive = receive
        self._loop = loop
        self._declared = declared
        self._ended = False
        self._first: tuple[bytes, bool] | AwsError | None = None

    async def prefetch(self) -> None:
        """Gather the first hand-off now, on the loop (a small body: all of it), so the handler's
        thread does not hop back to the loop for it. A body cut short is the handler's error
        still, raised when it reads (after the request's authentication, as without this)."""
        try:
            self._first = await self._gather()
        except AwsError as exc:
            self._first = exc

    @property
    def declared_length(self) -> int | None:
        return self._declared

    async def _gather(self) -> tuple[bytes, bool]:
        parts: list[bytes] = []
        size = 0
        while size < CHUNK:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise AwsError(
                    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
                    code="IncompleteBody",
                    status=400,
                    sender_fault=True,
                )
            chunk = message.get("body", b"")
            if chunk:
                parts.append(chunk)
                size += len(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), True
        return b"".join(parts), False

    def chunks(self) -> Iterator[bytes]:
        # The next megabyte is gathered on the loop while the caller stores this one (at most two
        # in memory): receiving and hashing/writing overlap instead of taking turns.
        pending: Future[tuple[bytes, bool]] | None = None
        try:
            first, self._first = self._first, None
            if isinstance(first, AwsError):
                raise first
            if first is not None:
                data, self._ended = first
                if not self._ended:
                    pending = asyncio.run_coroutine_threadsafe(self._gather(), self._loop)
                if data:
                    yield data
            while not self._ended:
                got = pending or asyncio.run_coroutine_threadsafe(self._gather(), self._loop)
                pending = None
                data, self._ended = got.result()
                if not self._ended:
                    pending = asyncio.run_coroutine_threadsafe(self._gather(), self._loop)
                if data:
                    yield data
        finally:
            if pending is not None:
                pending.cancel()


class _Body:
    """A request's receive channel that remembers whether the body was read to its end."""

    def __init__(self, receive: Receive, *, expected: bool) -> None:
        self._receive = receive
        self.done = not expected

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self.done = True
        return message


@dataclass(frozen=True)
class Downloads:
    """What the signed download endpoint serves from: the URL signer and the blob store."""

    signer: UrlSigner
    blobs: BlobStore


def _plain(status: int, code: str, message: str) -> Response:
    """An S3-style XML error, for the download endpoint (what clients of presigned URLs expect)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return Response(status, [("Content-Type", "application/xml")], body)
