"""The HTTP endpoint of function URLs: request -> access check -> event -> invocation -> response.

The front door (:mod:`lamina.api.app`) recognises a function URL request by its ``Host`` header
(``<url-id>.lambda-url.<region>.localhost``) or the path form ``/_lamina/url/<url-id>/...`` and
hands it here with the means to authenticate it (SigV4, for AuthType AWS_IAM). The invocation
takes the same path as Invoke (:func:`~lamina.services.lambda_.invoke.target_for` and the
environment pool), so warm environments are shared with Invoke.

``InvokeMode`` RESPONSE_STREAM: a function whose runtime streams its response is answered as it
streams, chunked (HTTP/1.1 chunked transfer encoding): with the status and headers of its HTTP
integration prelude (``application/vnd.awslambda.http-integration-response``: JSON, 8 NUL bytes,
then the body; see :mod:`lamina.domain.response_streaming`), or 200 and the runtime's content type.
A function that does not stream (every Python runtime) is answered buffered, as AWS does.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

from lamina.domain import function_urls as U
from lamina.domain import functions as F
from lamina.domain import response_streaming as RS
from lamina.errors import AwsError, TooManyRequestsException
from lamina.runtime.environment import Outcome, Target
from lamina.runtime.pool import PoolFull
from lamina.services.base import AuthorizationRequest, Principal
from lamina.services.lambda_ import streaming
from lamina.services.lambda_.invoke import target_for, why_functions_cannot_run
from lamina.services.platform import Platform
from lamina.store.functions import FunctionRow
from lamina.store.urls import UrlRow
from lamina.supervisor import IoExecutor

log = logging.getLogger("lamina.urls")


@dataclass(frozen=True)
class _Ready:
    """An admitted request: what to invoke, with what, and the CORS rules of its answer."""

    target: Target
    payload: bytes
    timeout_s: float
    cors: U.CorsRules | None
    streams: bool = False  # InvokeMode RESPONSE_STREAM


class UrlEndpoint:
    """Serves every function URL of the platform."""

    def __init__(
        self,
        platform: Platform,
        authorize: Callable[[AuthorizationRequest], None],
        executor: IoExecutor,
    ) -> None:
        self._platform = platform
        self._authorize = authorize
        self._executor = executor

    async def handle(
        self, target: U.Target, request: U.HttpRequest, authenticate: Callable[[str], Principal]
    ) -> U.HttpAnswer | RS.StreamedAnswer:
        """Answer one request to a function URL. ``authenticate(region)`` verifies the request's
        SigV4 signature, scoped to service ``lambda`` and the URL's Region (raising
        :class:`AwsError`); it is called, off the loop, for AWS_IAM URLs only."""
        request_id = str(uuid.uuid4())
        if len(request.body) > U.MAX_BODY:
            return U.TOO_LARGE.with_headers((("x-amzn-RequestId", request_id),))
        admitted = await self._executor.run(self._admit, target, request, authenticate, request_id)
        if isinstance(admitted, U.HttpAnswer):
            return admitted.with_headers((("x-amzn-RequestId", request_id),))
        answer = await (self._stream if admitted.streams else self._invoke)(admitted, request_id)
        # The path form shares lamina's own origin (the console's host and port), which AWS's URLs
        # never do: a function's HTML answer there runs sandboxed (an opaque origin), so it cannot
        # drive the console with a signed-in visitor's cookie. The host form is its own origin.
        sandbox = () if target.host_form else (("Content-Security-Policy", "sandbox"),)
        if isinstance(answer, RS.StreamedAnswer):
            head = U.HttpAnswer(answer.status, answer.headers)
            if admitted.cors is not None:
                head = admitted.cors.apply(head, request.headers.get("origin"))
            return RS.StreamedAnswer(head.status, head.headers, answer.chunks).with_headers(
                (("x-amzn-RequestId", request_id), *sandbox)
            )
        if admitted.cors is not None:
            answer = admitted.cors.apply(answer, request.headers.get("origin"))
        return answer.with_headers((("x-amzn-RequestId", request_id), *sandbox))

    # -- on the I/O executor: store reads, access, the Target ----------------------------------------

    def _admit(
        self,
        target: U.Target,
        request: U.HttpRequest,
        authenticate: Callable[[str], Principal],
        request_id: str,
    ) -> _Ready | U.HttpAnswer:
        platform = self._platform
        url = platform.urls.by_id(target.url_id)
        if url is None:
            return U.FORBIDDEN
        cors = U.CorsRules.of(url.config.get("Cors"))
        origin = request.headers.get("origin")
        preflight = request.method == "OPTIONS" and origin is not None
        if cors is not None and preflight and "access-control-request-method" in request.headers:
            # Lambda answers CORS preflight requests itself, before any authorization (browsers
            # never sign them).
            return cors.preflight(origin, request.headers.get("access-control-request-method"))
        caller: U.IamCaller | None = None
        if url.config.get("AuthType") == U.AuthType.AWS_IAM.value:
            try:
                principal = authenticate(url.ref.region)
                self._authorize(
                    AuthorizationRequest(
                        principal,
                        "lambda",
                        "InvokeFunctionUrl",
                        url.ref.region,
                        {"FunctionName": url.config["FunctionArn"], "AuthType": U.AuthType.AWS_IAM.value},
                        request.source_ip,
                    )
                )
            except AwsError as exc:
                log.info("function URL %s: %s refused: %s", target.url_id, request_id, exc)
                return U.FORBIDDEN
            caller = _iam_caller(principal)
        elif not self._public(url):
            return U.FORBIDDEN
        row = self._version(url)
        if row is None or row.config.get("State") != F.State.ACTIVE.value or why_functions_cannot_run():
            log.info("function URL %s: function not runnable for %s", target.url_id, request_id)
            return U.FUNCTION_ERROR
        event = U.build_event(
            request,
            url_id=target.url_id,
            region=url.ref.region,
            owner=url.ref.account,
            request_id=request_id,
            now_ms=platform.now_ms(),
            caller=caller,
        )
        platform.hyperplane.touch(row.function)
        return _Ready(
            target_for(platform, row),
            json.dumps(event, separators=(",", ":")).encode(),
            float(row.config.get("Timeout", 3)),
            cors,
            url.config.get("InvokeMode") == U.InvokeMode.RESPONSE_STREAM.value,
        )

    def _public(self, url: UrlRow) -> bool:
        """AuthType NONE: whether the function policy lets everyone in."""
        ref = url.ref
        policy = self._platform.functions.function_policy(ref.account, ref.region, ref.name, ref.qualifier)
        return U.public_access(policy, url.config["FunctionArn"], ref.account)

    def _version(self, url: UrlRow) -> FunctionRow | None:
        """The version the URL runs: $LATEST, or the one its alias points to."""
        ref = url.ref
        if ref.qualifier is None:
            return self._platform.functions.get(ref.account, ref.region, ref.name)
        return self._platform.functions.resolve_alias(ref.account, ref.region, ref.name, ref.qualifier)

    # -- on the loop: the invocation --------------------------------------------------------------------

    async def _invoke(self, ready: _Ready, request_id: str) -> U.HttpAnswer:
        # The function's reserved concurrency and the account's limit count URL requests too.
        try:
            slot = await self._platform.limits.take(ready.target.function, ready.target.version)
        except TooManyRequestsException:
            return U.THROTTLED
        try:
            result, _rid = await self._platform.pool.invoke(
                ready.target,
                ready.payload,
                timeout_s=ready.timeout_s,
                client_context=None,
                request_id=request_id,
            )
        except PoolFull as exc:
            log.info("function URL request %s throttled: %s", request_id, exc)
            return U.THROTTLED
        finally:
            await self._platform.limits.give_back(slot)
        if result.outcome is not Outcome.OK:
            return U.FUNCTION_ERROR
        return U.map_result(result.payload)

    async def _stream(self, ready: _Ready, request_id: str) -> U.HttpAnswer | RS.StreamedAnswer:
        """InvokeMode RESPONSE_STREAM: the response as the runtime streams it."""
        try:
            invocation = await streaming.start(
                self._platform,
                ready.target,
                ready.payload,
                timeout_s=ready.timeout_s,
                client_context=None,
                request_id=request_id,
            )
        except TooManyRequestsException:
            return U.THROTTLED
        except PoolFull as exc:
            log.info("function URL request %s throttled: %s", request_id, exc)
            return U.THROTTLED
        if not invocation.streaming:
            result = await invocation.result()
            return U.map_result(result.payload) if result.outcome is Outcome.OK else U.FUNCTION_ERROR
        chunks = invocation.chunks()
        if invocation.stream.content_type != RS.HTTP_INTEGRATION:
            content_type = invocation.stream.content_type or "application/octet-stream"
            return RS.StreamedAnswer(200, (("Content-Type", content_type),), _body(invocation, b"", chunks))
        # The prelude: JSON up to 8 NUL bytes, within the stream's first 16 KB.
        head = b""
        async for chunk in chunks:
            head += chunk
            if RS.DELIMITER in head or len(head) > RS.MAX_PRELUDE_BYTES + len(RS.DELIMITER):
                break
        prelude_text, found, rest = head.partition(RS.DELIMITER)
        prelude = (
            RS.parse_prelude(prelude_text) if found and len(prelude_text) <= RS.MAX_PRELUDE_BYTES else None
        )
        if prelude is None:
            log.info("function URL request %s: the function's stream has no valid prelude", request_id)
            invocation.abandon()
            await chunks.aclose()
            return U.FUNCTION_ERROR
        return RS.StreamedAnswer(prelude.status, prelude.headers, _body(invocation, rest, chunks))


async def _body(
    invocation: streaming.StreamedInvocation, first: bytes, chunks: AsyncGenerator[bytes, None]
) -> AsyncIterator[bytes]:
    """A streamed URL response's body: what came with the prelude, then the rest as it comes."""
    done = False
    try:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk
        done = True
    finally:
        if not done:
            invocation.abandon()
        await chunks.aclose()


def _iam_caller(principal: Principal) -> U.IamCaller:
    """``requestContext.authorizer.iam`` of an authenticated caller."""
    arn = principal.arn
    return U.IamCaller(
        access_key=principal.access_key_id,
        account_id=principal.account_id,
        caller_id=arn.rsplit("/", 1)[-1] if "/" in arn else principal.account_id,
        user_arn=arn,
        user_id=arn.rsplit("/", 1)[-1] if "/" in arn else principal.account_id,
    )
