"""What every operation handler receives, and how services are bound to models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from lamina.domain.arns import root_user_arn
from lamina.domain.constraints import MemberOverride
from lamina.domain.s3_chunked import ChunkedRequest
from lamina.errors import AwsError

# What a service's handlers receive first: only what they use (the Platform, or one store).
D = TypeVar("D")


@dataclass(frozen=True)
class RequestContext:
    """Who is calling, where, and how to build URLs back to this server."""

    account_id: str
    region: str
    request_id: str
    base_url: str
    caller_arn: str = ""
    now_ms: int = 0
    access_key_id: str = ""
    # What the SigV4 signature covered as the payload: a SHA-256 hex, ``UNSIGNED-PAYLOAD`` or a
    # ``STREAMING-*`` form (S3 checks a streamed body against it).
    payload_hash: str = ""
    # An aws-chunked body's form, declared length, announced trailer and (signed forms) what its
    # chunks' signatures chain from; None for any other body.
    aws_chunked: ChunkedRequest | None = field(default=None, compare=False, repr=False)
    # The authorize stage for another operation of the same service by the same caller (raises
    # AwsError when IAM would refuse it): what a handler asks when part of its answer needs a
    # further permission (GetFunction's Tags need lambda:ListTags). None: nothing to ask.
    authorize: Callable[[str, Mapping[str, Any]], None] | None = field(default=None, compare=False)
    # The same for an operation of another service (service, operation, params): what a handler asks
    # when it acts for the caller elsewhere (CreateFunction from S3 reads the object as the caller's
    # own GetObject, so IAM's s3:GetObject decides). None: nothing to ask.
    authorize_in: Callable[[str, str, Mapping[str, Any]], None] | None = field(default=None, compare=False)
    # The service whose authorize stage admitted the request ("s3": IAM decided it with the
    # bucket's owner and policy); empty when a front end serves it itself.
    service: str = ""
    # An unsigned request (S3 only), allowed by a bucket policy granting "*": no account acts.
    anonymous: bool = False

    @property
    def caller(self) -> str:
        return self.caller_arn or root_user_arn(self.account_id)

    def denial(
        self, operation: str, params: Mapping[str, Any], *, service: str | None = None
    ) -> AwsError | None:
        """Why IAM would refuse this caller ``operation`` with ``params`` (of ``service``, default
        this request's); None if it would allow it."""
        try:
            if service is not None:
                if self.authorize_in is None:
                    return None
                self.authorize_in(service, operation, params)
            elif self.authorize is not None:
                self.authorize(operation, params)
        except AwsError as exc:
            return exc
        return None


class BodyStream(Protocol):
    """A request body too large to hold (an S3 object, up to 5 GB), which the handler reads in
    chunks on the I/O executor as the client sends it. Nothing is read until the handler asks (a
    client that sent ``Expect: 100-continue`` is told to send only then), so a handler that refuses
    the request first never receives the body."""

    @property
    def declared_length(self) -> int | None:
        """The Content-Length the client declared (None: none, a chunked transfer)."""
        ...

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes, chunk by chunk (read once)."""
        ...


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the account it acts in and its ARN (the account root for the
    account's own keys, ``arn:aws:iam::ACCOUNT:user/PATH/NAME`` for an IAM user's keys,
    ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` for an STS session)."""

    account_id: str
    access_key_id: str
    arn: str
    # The session's expiry (epoch seconds) for temporary credentials, else None.
    expires: float | None = None

    @property
    def is_root(self) -> bool:
        return self.arn == root_user_arn(self.account_id)


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the authorize stage decides on: who asks to do what, where, with which parameters."""

    principal: Principal
    service: str  # the SigV4 signing name: lambda, iam, sts, ec2
    operation: str
    region: str
    params: Mapping[str, Any]
    source_ip: str = ""  # the client's address (aws:SourceIp)
    secure_transport: bool = False  # the request came over TLS (aws:SecureTransport)
    # How the request was authenticated: SigV4 (False) or not at all (True: an anonymous request,
    # which only a resource policy granting "*" may let in; S3's bucket policies).
    anonymous: bool = False


@dataclass(frozen=True)
class FileSlice:
    """A streaming output payload (S3 GetObject's Body): ``length`` bytes of the file at ``path``
    from ``offset``, which the front end sends in chunks without reading it whole."""

    path: str
    offset: int
    length: int


# An output key (not in any AWS shape) by which a handler sets the HTTP status where the model
# cannot say it (S3 GetObject answers 206 for a range).
HTTP_STATUS = "__http_status__"


@dataclass(frozen=True)
class OnLoop:
    """A handler's answer that finishes on the event loop. Handlers run on the I/O executor (store
    reads and writes, files); one that must then await the event loop's world (an invocation in the
    environment pool) returns the coroutine function that does, and the pipeline awaits it there."""

    finish: Callable[[], Awaitable[dict[str, Any]]]


# A handler gets its service's dependencies (``ServiceBinding.deps``), the request's context and
# parameters, and returns the output dict, or the part still to run on the loop.
Handler = Callable[[D, RequestContext, dict[str, Any]], "dict[str, Any] | OnLoop"]


def output(shape: Mapping[str, Any]) -> dict[str, Any]:
    """A typed output shape (a TypedDict of ``lamina.domain.models``) as the handler's output.

    The protocol layer reads outputs as plain dicts keyed like AWS; a TypedDict is one at run time,
    so this only tells the type checker (no copy on the read path)."""
    return cast(dict[str, Any], shape)


@dataclass
class ServiceBinding(Generic[D]):
    """A service: its botocore model, handlers by operation name, what they receive as their first
    argument (``deps``: only what they use), and AWS's wire quirks."""

    model: Any
    deps: D
    handlers: Mapping[str, Handler[D]]
    overrides: Mapping[str, Mapping[str, MemberOverride]] = field(default_factory=dict)
    # Largest request body per operation (AWS answers 413 above it); default for the rest.
    max_request_bytes: Mapping[str, int] = field(default_factory=dict)
    default_max_request_bytes: int = 6 * 1024 * 1024
    # Names AWS uses for an operation in its 413 message (Invoke is "InvokeFunction").
    wire_names: Mapping[str, str] = field(default_factory=dict)
    # AWS's order of members in multi-error validation messages, per operation.
    validation_order: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # Checks run before schema validation (AWS answers some errors first).
    prevalidators: Mapping[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)
    # Operations that need what lamina does not serve: what they need (answered 501, naming it).
    unserved: Mapping[str, str] = field(default_factory=dict)
    # Whether the pipeline checks the input shape's constraints (Coral's "N validation error(s)
    # detected"). S3 has no such stage: its handlers answer each bad value with S3's own error.
    schema_validation: bool = True
    # The error a broken constraint is answered with, given Coral's message (None: AWS's usual
    # ValidationException; CloudWatch Logs answers InvalidParameterException).
    validation_error: Callable[[str], AwsError] | None = None
    # Operations whose streaming payload the handler reads itself as a :class:`BodyStream` (S3
    # PutObject), never held whole; every other body is read (up to its limit) before the pipeline.
    streamed: frozenset[str] = frozenset()
