"""InvokeWithResponseStream, and the streamed invocation it shares with RESPONSE_STREAM function URLs.

Facts (AWS "InvokeWithResponseStream" API reference, "Configuring a Lambda function to stream
responses"; the wire framing is :mod:`lamina.api.eventstream`):

- ``POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations`` answers 200,
  ``Content-Type: application/vnd.amazon.eventstream`` and ``X-Amz-Executed-Version``, then a
  stream of ``PayloadChunk`` events (``Payload``: raw bytes of the response) ended by one
  ``InvokeComplete`` (``ErrorCode``, ``ErrorDetails``, ``LogResult`` with LogType Tail).
- It is authorized as ``lambda:InvokeFunction``. Errors before the stream starts (no such
  function, throttling, a function not Active) are the usual JSON errors; a failure after it
  started ends it with ``InvokeComplete``'s ``ErrorCode``.
- A function that does not stream (its runtime posts a buffered response: every Python runtime) is
  answered with one ``PayloadChunk`` holding the whole response, then ``InvokeComplete``.
- lamina's choice where AWS publishes no example: a function error ends the stream with
  ``ErrorCode`` the runtime's error type (``Lambda-Runtime-Function-Error-Type``, or ``Unhandled``
  when it named none) and ``ErrorDetails`` the error document (e.g. ``{"errorMessage": ...}``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lamina.runtime.environment import InvokeResult, Outcome, Target
from lamina.runtime.pool import PoolFull
from lamina.runtime.streaming import ResponseStream
from lamina.services.base import OnLoop, RequestContext
from lamina.services.lambda_.invoke import SyncCall, admit, throttled

if TYPE_CHECKING:
    from lamina.services.platform import Platform

log = logging.getLogger("lamina.invoke")

EVENT_STREAM = "application/vnd.amazon.eventstream"
# Streamed bytes are sent as they come, but no single event carries more than this.
MAX_CHUNK_EVENT = 1 << 20

Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class StreamedInvocation:
    """An invocation whose response may stream: read :meth:`chunks`, then :meth:`result`."""

    stream: ResponseStream
    task: asyncio.Future[InvokeResult]

    @property
    def streaming(self) -> bool:
        """Whether the runtime streams its response (else the result's payload is all of it)."""
        return self.stream.streaming

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The streamed response's bytes, as the runtime sends them."""
        while True:
            chunk = await self.stream.next_chunk()
            if chunk is None:
                return
            yield chunk

    async def result(self) -> InvokeResult:
        """How the invocation ended (once the stream is drained)."""
        return await asyncio.shield(self.task)

    def abandon(self) -> None:
        """The reader is gone: the invocation runs on, its output dropped."""
        self.stream.abandon()


def _retrieve(task: asyncio.Future[InvokeResult]) -> None:
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        if not isinstance(exc, PoolFull):
            log.error("streamed invocation failed", exc_info=exc)


async def start(
    platform: Platform,
    target: Target,
    payload: bytes,
    *,
    timeout_s: float,
    client_context: str | None,
    request_id: str,
    invoked_arn: str | None = None,
) -> StreamedInvocation:
    """Start an invocation and return once its runtime streams or it is over. Raises what comes
    before any response: TooManyRequestsException (the function's or the account's concurrency),
    :class:`PoolFull` (the host's)."""
    slot = await platform.limits.take(target.function, target.version)
    stream = ResponseStream()

    async def run() -> InvokeResult:
        try:
            result, _rid = await platform.pool.invoke(
                target,
                payload,
                timeout_s=timeout_s,
                client_context=client_context,
                request_id=request_id,
                invoked_arn=invoked_arn,
                stream=stream,
            )
            return result
        finally:
            try:
                await platform.limits.give_back(slot)
            finally:
                stream.close()

    task = asyncio.ensure_future(run())
    task.add_done_callback(_retrieve)
    try:
        await stream.opened()
        if not stream.streaming:
            await asyncio.shield(task)  # raises PoolFull, or is done: buffered
    except asyncio.CancelledError:
        stream.abandon()  # the caller is gone; the invocation runs to its end
        raise
    return StreamedInvocation(stream, task)


def invoke_with_response_stream(
    platform: Platform, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any] | OnLoop:
    """InvokeWithResponseStream: Invoke's checks on the I/O executor, then the stream on the loop."""
    call = admit(platform, ctx, params)
    if not isinstance(call, SyncCall):
        return call  # DryRun: 204, no events

    async def run() -> dict[str, Any]:
        try:
            invocation = await start(
                platform,
                call.target,
                call.payload,
                timeout_s=call.timeout_s,
                client_context=call.client_context,
                request_id=ctx.request_id,
                invoked_arn=call.invoked_arn,
            )
        except PoolFull as exc:
            raise throttled(ctx.request_id, exc) from exc
        return {
            "StatusCode": 200,
            "ExecutedVersion": call.version,
            "ResponseStreamContentType": EVENT_STREAM,
            "EventStream": events(invocation, tail=call.tail),
        }

    return OnLoop(run)


async def events(invocation: StreamedInvocation, *, tail: bool) -> AsyncIterator[Event]:
    """The invocation's ``PayloadChunk`` events, then its ``InvokeComplete``."""
    done = False
    try:
        if invocation.streaming:
            async for chunk in invocation.chunks():
                for at in range(0, len(chunk), MAX_CHUNK_EVENT):
                    yield "PayloadChunk", {"Payload": chunk[at : at + MAX_CHUNK_EVENT]}
        complete: dict[str, Any] = {}
        try:
            result = await invocation.result()
        except Exception:
            complete = {
                "ErrorCode": "ServiceException",
                "ErrorDetails": "An internal error occurred in lamina.",
            }
        else:
            if not invocation.streaming and result.outcome is Outcome.OK and result.payload:
                yield "PayloadChunk", {"Payload": result.payload}
            if result.outcome is not Outcome.OK:
                complete["ErrorCode"] = result.error_type or "Unhandled"
                complete["ErrorDetails"] = result.payload.decode("utf-8", "replace")
            if tail:
                complete["LogResult"] = base64.b64encode(result.log_tail).decode()
        yield "InvokeComplete", complete
        done = True
    finally:
        if not done:
            invocation.abandon()
