"""The one request pipeline every AWS operation goes through, whichever front end it came from.

    authenticate -> parse -> authorize -> validate -> handle -> serialize

The HTTP front door (:mod:`lamina.api.app`) authenticates with SigV4 and parses with the service's
wire protocol; the console (:mod:`lamina.console`) authenticates with its session cookie and parses
JSON. Both then run the remaining stages through this class (:meth:`Pipeline.http`,
:meth:`Pipeline.call`), the only holder of the operation handlers: there is no other way to reach a handler, so the authorize stage cannot be
skipped. Authorization is a single hook (:class:`Authorizer`); :class:`AllowAll` is the default until
IAM evaluation fills it.

Threads: the stages up to and including the handler (signature check, STS session look-up,
parsing, validation, the handler's store reads and writes) run on the I/O executor in one
hand-off; the store refuses to run on the event loop thread. A handler that must then wait on the
loop (Invoke, for its environment) returns :class:`~lamina.services.base.OnLoop`, awaited there.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from lamina.api import s3auth, sigv4
from lamina.api.auth import Credentials
from lamina.api.http import Request, Response
from lamina.api.protocols import OperationMatch, protocol_for
from lamina.api.protocols import Protocol as WireProtocol
from lamina.api.protocols.restxml import virtual_host_bucket
from lamina.api.ratelimit import OFF, RateLimit, RateLimiter
from lamina.api.validation import validate
from lamina.domain.s3_chunked import ChunkedRequest, ChunkSigning, Framing
from lamina.errors import (
    AwsError,
    InvalidSignatureException,
    ServiceException,
    ValidationException,
    not_implemented,
    rate_exceeded,
    unknown_operation,
    unknown_service,
)
from lamina.services.base import AuthorizationRequest, OnLoop, Principal, RequestContext, ServiceBinding
from lamina.store import UnstorableText
from lamina.supervisor import IoExecutor

log = logging.getLogger("lamina.api")

# The operations the per-principal request rate does not meter (the data plane). S3 answers at
# least 3,500 writes and 5,500 reads a second per prefix ("Best practices design patterns:
# optimizing Amazon S3 performance"), far above a control plane's rate: its object operations are
# data plane too.
UNMETERED = frozenset(
    {
        ("lambda", "Invoke"),
        ("lambda", "InvokeWithResponseStream"),
        *(
            ("s3", operation)
            for operation in (
                "GetObject",
                "HeadObject",
                "PutObject",
                "CopyObject",
                "DeleteObject",
                "DeleteObjects",
                "ListObjects",
                "ListObjectsV2",
            )
        ),
    }
)

INTERNAL_ERROR_MESSAGE = "An internal error occurred in lamina."

# Each service's error for a parameter value it cannot take (code, as the service spells it):
# what a value the metadata database cannot store (a NUL on PostgreSQL) is answered with.
INVALID_PARAMETER: Mapping[str, str] = {
    "lambda": "InvalidParameterValueException",
    "s3": "InvalidArgument",
    "logs": "InvalidParameterException",
    "iam": "ValidationError",
    "sts": "ValidationError",
    "ec2": "InvalidParameterValue",
}
UNSTORABLE_MESSAGE = "A parameter holds a character that cannot be stored (NUL, or an unpaired surrogate)."


def unstorable(service: str) -> AwsError:
    """The answer to a request whose values the metadata database refused (nothing was stored)."""
    code = INVALID_PARAMETER.get(service, "ValidationException")
    return AwsError(UNSTORABLE_MESSAGE, code=code, status=400, sender_fault=True)


# S3 is the one service that serves unsigned requests (to whatever a bucket policy grants "*")
# and SigV2 query authentication (botocore's default presigned URL for S3). Such requests have no
# credential scope: they act in the Region of S3's global endpoint.
S3 = "s3"
S3_UNSCOPED_REGION = "us-east-1"
ANONYMOUS = Principal(account_id="", access_key_id="", arn="anonymous")


class Authorizer(Protocol):
    """The authorize stage: return to allow, raise an :class:`AwsError` (AccessDenied...) to refuse."""

    def authorize(self, request: AuthorizationRequest) -> None: ...


class AllowAll:
    """Allows every authenticated request (the hook IAM evaluation replaces)."""

    def authorize(self, request: AuthorizationRequest) -> None:
        return None


class Endpoint:
    """What a front end may know of a service: its protocol and request limits, not its handlers."""

    __slots__ = ("_binding", "name", "protocol")

    def __init__(self, name: str, binding: ServiceBinding[Any]) -> None:
        self.name = name
        self._binding = binding
        self.protocol: WireProtocol = protocol_for(binding.model)

    @property
    def routes_on_body(self) -> bool:
        return self.protocol.routes_on_body

    def streams_body(self, operation: str) -> bool:
        """Whether the operation's payload is a stream the handler reads (S3 PutObject, UploadPart):
        its body is never read whole, whatever its size."""
        return operation in self._binding.streamed

    @property
    def default_max_request_bytes(self) -> int:
        return self._binding.default_max_request_bytes

    def max_request_bytes(self, operation: str) -> int:
        return self._binding.max_request_bytes.get(operation, self._binding.default_max_request_bytes)

    def wire_name(self, operation: str) -> str:
        """The name AWS uses for an operation in its messages (Invoke is "InvokeFunction")."""
        return self._binding.wire_names.get(operation, operation)

    def implemented(self, operation: str) -> bool:
        """Whether lamina has a handler for the operation."""
        return operation in self._binding.handlers

    def operation_model(self, operation: str) -> Any | None:
        """botocore's OperationModel, or None when the service has no such operation."""
        if operation not in self._binding.model.operation_names:
            return None
        return self._binding.model.operation_model(operation)


class Pipeline:
    """Runs operations: the stages after authentication and parsing, for every front end."""

    def __init__(
        self,
        services: Mapping[str, ServiceBinding[Any]],
        credentials: Credentials,
        *,
        authorizer: Authorizer,
        executor: IoExecutor,
        clock: Callable[[], float],
        rate_limit: RateLimit = OFF,
    ) -> None:
        self._bindings = dict(services)
        # One token bucket per principal, taken right after authentication (before parsing).
        self._limiter = RateLimiter(rate_limit, clock) if rate_limit.enabled else None
        self.endpoints = {name: Endpoint(name, b) for name, b in services.items()}
        self.credentials = credentials
        self._authorizer = authorizer
        self._executor = executor
        self._clock = clock

    # -- the stages every front end shares --------------------------------------------------------

    def _throttle(self, principal: Principal, service: str, operation: str) -> None:
        """The rate limit of an authenticated principal: each service's throttling error when its
        bucket is empty (Lambda TooManyRequestsException 429, IAM/STS Throttling, EC2
        RequestLimitExceeded: the protocols rename it). Invocations are not counted: Lambda
        limits them by concurrency (and at 10 requests a second per unit of concurrency, far
        above what the control plane allows), not by a per-principal request rate."""
        if (service, operation) in UNMETERED:
            return
        if self._limiter is not None and not self._limiter.admit(principal.arn):
            log.debug("throttled %s", principal.arn)  # debug: a flood must not fill the log
            raise rate_exceeded()

    def _admit(
        self,
        endpoint: Endpoint,
        operation: Any,
        principal: Principal,
        params: dict[str, Any],
        region: str,
        request_id: str,
        base_url: str,
        now: float,
        source_ip: str = "",
        payload_hash: str = "",
        aws_chunked: ChunkedRequest | None = None,
        anonymous: bool = False,
    ) -> tuple[Any, RequestContext]:
        """authorize -> validate; returns the handler and its context."""
        name = operation.name
        binding = self._bindings[endpoint.name]
        handler = binding.handlers.get(name)
        if handler is None:
            raise not_implemented(name, binding.unserved.get(name))
        self._authorizer.authorize(
            AuthorizationRequest(
                principal, endpoint.name, name, region, params, source_ip, anonymous=anonymous
            )
        )
        pre = binding.prevalidators.get(name)
        if pre is not None:
            pre(params)
        if operation.input_shape is not None and binding.schema_validation:
            try:
                validate(
                    operation.input_shape,
                    params,
                    binding.overrides.get(name),
                    binding.validation_order.get(name, ()),
                )
            except ValidationException as exc:
                if binding.validation_error is None:
                    raise
                raise binding.validation_error(exc.message) from exc
        ctx = RequestContext(
            account_id=principal.account_id,
            region=region,
            request_id=request_id,
            base_url=base_url,
            now_ms=int(now * 1000),
            access_key_id=principal.access_key_id,
            caller_arn="" if principal.is_root else principal.arn,
            payload_hash=payload_hash,
            aws_chunked=aws_chunked,
            authorize=lambda other, other_params: self._authorizer.authorize(
                AuthorizationRequest(
                    principal, endpoint.name, other, region, other_params, source_ip, anonymous=anonymous
                )
            ),
            authorize_in=lambda service, other, other_params: self._authorizer.authorize(
                AuthorizationRequest(
                    principal, service, other, region, other_params, source_ip, anonymous=anonymous
                )
            ),
            service=endpoint.name,
            anonymous=anonymous,
        )
        return handler, ctx

    # -- HTTP: SigV4 + the wire protocol --------------------------------------------------------

    def _authenticate(self, request: Request, now: float) -> tuple[Principal, sigv4.SigningScope]:
        """The SigV4 signature -> (principal, what was signed). A streamed body is not in hand:
        the signed ``x-amz-content-sha256`` stands for it (its reader checks the bytes)."""
        signed = sigv4.verify(
            sigv4.IncomingRequest(
                request.method,
                request.raw_path,
                request.query_string,
                request.headers,
                None if request.stream is not None else request.body,
            ),
            self.credentials.lookup,
            dt.datetime.fromtimestamp(now, dt.UTC),
        )
        return self.credentials.principal(signed.credential), signed

    def authenticate(self, request: Request, *, service: str, region: str) -> Principal:
        """Only the authenticate stage (SigV4), for what a front end serves itself (function URLs
        of AuthType AWS_IAM): the signature must be scoped to ``service`` and ``region`` (a
        signature made for another service or Region is no signature for this one). Raises
        AwsError; call it off the event loop."""
        signed = sigv4.verify(
            sigv4.IncomingRequest(
                request.method, request.raw_path, request.query_string, request.headers, request.body
            ),
            self.credentials.lookup,
            dt.datetime.fromtimestamp(self._clock(), dt.UTC),
            expected_service=service,
        )
        if signed.region != region:
            raise InvalidSignatureException("Credential should be scoped to a valid region. ")
        return self.credentials.principal(signed.credential)

    def _s3_authenticate(self, request: Request, now: float) -> tuple[Principal, str, str] | None:
        """S3's own ways in: (principal, region, payload hash) of a SigV2 query-authenticated
        request or of an unsigned one (the anonymous principal, when the authorizer decides
        anonymous requests); None for SigV4, checked by :meth:`_authenticate` (an expired SigV4
        presigned URL first answers S3's words)."""
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        query = dict(request.query)
        if "authorization" in request.headers:
            return None
        if "X-Amz-Algorithm" in query:
            error = s3auth.sigv4_presign_expired(query, moment)
            if error is not None:
                raise error
            return None
        if s3auth.is_sigv2_query(query):
            host_bucket = virtual_host_bucket(request.headers.get("host", ""))
            path = request.raw_path if host_bucket is None else f"/{host_bucket}{request.raw_path}"
            credential = s3auth.verify_sigv2_query(
                request.method, request.headers, path, request.query, self.credentials.lookup, moment
            )
            return self.credentials.principal(credential), S3_UNSCOPED_REGION, sigv4.UNSIGNED_PAYLOAD
        if getattr(self._authorizer, "decides_anonymous", False):
            return ANONYMOUS, S3_UNSCOPED_REGION, sigv4.UNSIGNED_PAYLOAD
        return None

    def _http_admit(
        self, endpoint: Endpoint, match: OperationMatch, request: Request, request_id: str
    ) -> tuple[Any, RequestContext, dict[str, Any]]:
        now = self._clock()
        other = self._s3_authenticate(request, now) if endpoint.name == S3 else None
        chunked: ChunkedRequest | None = None  # SigV2 and anonymous requests send plain bodies
        if other is not None:
            principal, region, payload_hash = other
        else:
            principal, signed = self._authenticate(request, now)
            region, payload_hash = signed.region, signed.payload_hash
            chunked = _aws_chunked(signed, request)
        self._throttle(principal, endpoint.name, match.operation.name)
        if not endpoint.implemented(match.operation.name):  # 501 before any parse error, as before
            name = match.operation.name
            raise not_implemented(name, self._bindings[endpoint.name].unserved.get(name))
        params = endpoint.protocol.parse(match, request)
        base_url = f"{request.scheme}://{request.headers.get('host', '127.0.0.1')}"
        handler, ctx = self._admit(
            endpoint,
            match.operation,
            principal,
            params,
            region,
            request_id,
            base_url,
            now,
            request.client_host,
            payload_hash,
            chunked,
            anonymous=principal is ANONYMOUS,
        )
        return handler, ctx, params

    def _http_handle(
        self, endpoint: Endpoint, match: OperationMatch, request: Request, request_id: str
    ) -> Response | OnLoop:
        """Every stage on the executor; an :class:`OnLoop` answer is finished by :meth:`http`."""
        try:
            handler, ctx, params = self._http_admit(endpoint, match, request, request_id)
            output = handler(self._bindings[endpoint.name].deps, ctx, params)
            if isinstance(output, OnLoop):
                return output
            return endpoint.protocol.serialize(match, output, request_id)
        except Exception as exc:
            return self._failed(endpoint, match.operation.name, exc, request_id)

    async def http(self, endpoint: Endpoint, match: OperationMatch, request: Request) -> Response:
        """Answer one routed HTTP request whose body has been read."""
        request_id = str(uuid.uuid4())
        answer = await self._executor.run(self._http_handle, endpoint, match, request, request_id)
        if isinstance(answer, Response):
            return answer
        try:
            return endpoint.protocol.serialize(match, await answer.finish(), request_id)
        except Exception as exc:
            return self._failed(endpoint, match.operation.name, exc, request_id)

    def _failed(self, endpoint: Endpoint, operation: str, exc: Exception, request_id: str) -> Response:
        if isinstance(exc, AwsError):
            return endpoint.protocol.serialize_error(exc, request_id)
        if isinstance(exc, UnstorableText):
            log.info("%s refused (request %s): %s", operation, request_id, exc)
            return endpoint.protocol.serialize_error(unstorable(endpoint.name), request_id)
        log.error("internal error in %s (request %s)", operation, request_id, exc_info=exc)
        return endpoint.protocol.serialize_error(ServiceException(INTERNAL_ERROR_MESSAGE), request_id)

    # -- other front ends: an authenticated principal and parsed parameters ----------------------

    def authorize(self, request: AuthorizationRequest) -> None:
        """Only the authorize stage, for what a front end serves itself (the console's log view,
        authorized as CloudWatch Logs' FilterLogEvents would be). Raises AwsError when denied;
        call it off the event loop (it may read the IAM store)."""
        self._authorizer.authorize(request)

    async def call(
        self,
        principal: Principal,
        service: str,
        operation: str,
        params: dict[str, Any],
        *,
        region: str,
        base_url: str,
        request_id: str,
        source_ip: str = "",
    ) -> dict[str, Any]:
        """Run one operation for ``principal`` (already authenticated by the caller, parameters
        already parsed): authorize -> validate -> handle. Raises :class:`AwsError`."""
        endpoint = self.endpoints.get(service)
        if endpoint is None:
            raise unknown_service(service)
        model = endpoint.operation_model(operation)
        if model is None:
            raise unknown_operation(service, operation)
        now = self._clock()

        def run() -> dict[str, Any] | OnLoop:
            self._throttle(principal, service, operation)
            handler, ctx = self._admit(
                endpoint, model, principal, params, region, request_id, base_url, now, source_ip
            )
            try:
                result: dict[str, Any] | OnLoop = handler(self._bindings[endpoint.name].deps, ctx, params)
            except UnstorableText as exc:  # as :meth:`_failed` answers it over HTTP
                raise unstorable(endpoint.name) from exc
            return result

        output = await self._executor.run(run)
        if isinstance(output, OnLoop):
            try:
                return await output.finish()
            except UnstorableText as exc:
                raise unstorable(endpoint.name) from exc
        return output


def _aws_chunked(signed: sigv4.SigningScope, request: Request) -> ChunkedRequest | None:
    """What an aws-chunked body is decoded and checked with (None for any other body)."""
    framing = Framing.of(signed.payload_hash)
    if framing is None:
        return None
    signing = None
    if framing.signed:
        signing = ChunkSigning(
            sigv4.signing_key(signed), signed.timestamp, signed.scope, signed.signature, signed.access_key_id
        )
    return ChunkedRequest(
        framing,
        request.headers.get("x-amz-decoded-content-length"),
        request.headers.get("x-amz-trailer"),
        signing,
    )
