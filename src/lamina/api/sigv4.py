"""Server-side AWS Signature Version 4 verification (header and presigned-query forms).

Pure: no I/O, and the clock is an argument. :func:`verify` rebuilds the canonical request
exactly as botocore's ``SigV4Auth`` / ``SigV4QueryAuth`` build it for non-S3 services, and
raises the error AWS itself answers, with AWS's message, when anything is wrong.

Facts about SigV4 as AWS checks it (docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html,
and the error ordering of real endpoints):

- The canonical URI is the path *as sent on the wire*, with dot segments and empty segments
  removed, percent-encoded once more (``%3A`` becomes ``%253A``). Only S3 signs the path as is
  (botocore's ``S3SigV4Auth`` does not normalise it).
- S3 signs the ``x-amz-content-sha256`` header's value as the payload hash: a hash, or
  ``UNSIGNED-PAYLOAD``, or a ``STREAMING-*`` form (aws-chunked bodies); a presigned S3 URL signs
  ``UNSIGNED-PAYLOAD``. A body too large to hold (an S3 upload) is verified against the signed hash
  while it is streamed (``IncomingRequest.body`` None): the signature covers the declared value.
- The canonical query string is every parameter, decoded then RFC 3986-encoded, sorted by
  encoded key then value; the presigned form leaves out ``X-Amz-Signature`` only.
- Checks happen in this order, and the first failure is the answer: form of the Authorization
  header or query, ``host`` signed, timestamp syntax, clock skew (15 minutes either way),
  credential scope, access key, session token, payload hash, signature.
- The scope messages about region, service and terminator end in ``". "`` (a trailing space)
  and are concatenated; the credential-date message ends in ``"."``. Recorded responses show both.
- A signature mismatch message carries the canonical request and string-to-sign the server
  computed, so a client author can diff them against their own.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Protocol
from urllib.parse import quote, unquote, unquote_plus

from lamina.errors import (
    INVALID_TOKEN_MESSAGE,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

__all__ = [
    "ALGORITHM",
    "ContentSha256Mismatch",
    "Credential",
    "HasCredentialScope",
    "IncomingRequest",
    "SignatureMismatch",
    "SigningScope",
    "parse_scope",
    "signing_key",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# AWS accepts a request timestamp up to 15 minutes either side of its own clock.
MAX_SKEW = timedelta(minutes=15)
# A presigned URL may not live longer than the signing key is valid: seven days.
MAX_PRESIGN_EXPIRES = 604_800

_TERMINATOR = "aws4_request"
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_MISSING_TOKEN = "Missing Authentication Token"
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
# AWS splits the Authorization parameters on commas *and* whitespace: a stray space in
# "Credential= AKID/..." is reported as "'AKID/...' not a valid key=value pair".
_AUTH_PARAM_SPLIT = re.compile(r"[,\s]+")
_CREDENTIAL_IN_HEADER = re.compile(r"Credential=([^,\s]*)")
# Region names as AWS spells them: us-east-1, us-gov-west-1, eu-central-2, ...
_REGION = re.compile(r"[a-z]{2,}(?:-[a-z]+)+-\d+")


@dataclass(frozen=True)
class Credential:
    """A known access key and what it maps to."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    account_id: str
    # Set for STS temporary credentials: the request must then carry the same
    # X-Amz-Security-Token (header, or query parameter when presigned).
    session_token: str | None = field(default=None, repr=False)
    # Who signs with it, for the caller (the account root's or the session's ARN) and, for a
    # session, when it expires (epoch seconds); verification does not read them.
    arn: str = ""
    expires: float | None = None


@dataclass(frozen=True)
class SigningScope:
    """Who signed a verified request, and for which region and service."""

    access_key_id: str
    account_id: str
    region: str
    service: str
    credential: Credential
    # What the signature covered as the payload (a SHA-256 hex, UNSIGNED-PAYLOAD or a STREAMING-*
    # form), and the signature itself: the seed of an aws-chunked body's chunk signatures.
    payload_hash: str = field(default="", compare=False)
    signature: str = field(default="", compare=False, repr=False)
    presigned: bool = field(default=False, compare=False)
    # The request's X-Amz-Date (ISO 8601 basic) and credential scope (date/region/service/aws4_request):
    # with the signing key (:func:`signing_key`), what an aws-chunked body's chunks are signed with.
    timestamp: str = field(default="", compare=False)
    scope: str = field(default="", compare=False)


@dataclass(frozen=True)
class IncomingRequest:
    """A request as it arrived, before any decoding.

    ``raw_path`` is still percent-encoded and has no query; ``query_string`` has no ``?``;
    header names are lower-case, and a repeated header's values are joined with ``,``.
    """

    method: str
    raw_path: str
    query_string: str
    headers: Mapping[str, str]
    # None: the body is not in hand (streamed later); the signed x-amz-content-sha256 stands for it
    # and its reader checks the bytes against it.
    body: bytes | None


class HasCredentialScope(Protocol):
    """What :func:`parse_scope` reads: any request object with these two attributes."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def query_string(self) -> str: ...


@dataclass(frozen=True)
class _AuthParams:
    """The signature parameters, from the Authorization header or the presigned query."""

    credential: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    session_token: str | None
    presigned: bool
    expires: int | None  # presigned form only, and optional there


def verify(
    request: IncomingRequest,
    lookup: Callable[[str], Credential | None],
    now: datetime,
    *,
    expected_service: str | None = None,
) -> SigningScope:
    """Check the request's SigV4 signature and return who signed it.

    ``lookup`` maps an access key id to its :class:`Credential` (None when unknown); ``now``
    must be timezone-aware. When ``expected_service`` is given, a credential scoped to another
    service is refused as AWS refuses it. Raises the lamina AWS error AWS would answer with.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    now = now.astimezone(UTC)

    query = _parse_query(request.query_string)
    params = _auth_params(request, query)
    if "host" not in params.signed_headers:
        raise InvalidSignatureException(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )

    signed_at, timestamp = _parse_timestamp(params.timestamp)
    _check_clock(signed_at, now, params.expires)

    parts = params.credential.split("/")
    if len(parts) != 5:
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{params.credential}'"
        )
    access_key_id, scope_date, region, service, terminator = parts
    _check_scope(scope_date, region, service, terminator, timestamp, expected_service)

    credential = lookup(access_key_id)
    if credential is None:
        raise UnrecognizedClientException(INVALID_TOKEN_MESSAGE)
    if not _same_token(credential.session_token, params.session_token):
        raise UnrecognizedClientException(INVALID_TOKEN_MESSAGE)

    # botocore signs the X-Amz-Content-SHA256 header's value in place of the body hash when
    # the header is present; anything but UNSIGNED-PAYLOAD must then be the real hash. The
    # body is hashed at most once (it can be a 50 MB layer zip), and not at all when unsigned.
    declared = request.headers.get("x-amz-content-sha256")
    if declared is None and service == "s3" and params.presigned:
        declared = UNSIGNED_PAYLOAD  # what botocore's S3SigV4QueryAuth signs
    computed: str | None = None
    if declared == UNSIGNED_PAYLOAD or (declared is not None and request.body is None):
        payload_hash, payload_ok = declared, True
    elif request.body is None:
        raise MissingContentSha256("Missing required header for this request: x-amz-content-sha256")
    else:
        computed = payload_hash = hashlib.sha256(request.body).hexdigest()
        payload_ok = declared is None or declared == payload_hash

    canonical = _canonical_request(request, query, params, declared or payload_hash, raw_uri=service == "s3")
    string_to_sign = "\n".join(
        (
            ALGORITHM,
            timestamp,
            params.credential.partition("/")[2],
            hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        )
    )
    key = _signing_key(credential.secret_access_key, scope_date, region, service)
    expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    provided = params.signature.encode("utf-8", "backslashreplace")
    if not hmac.compare_digest(expected.encode("ascii"), provided):
        raise SignatureMismatch(
            f"{_MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
            f"The String-to-Sign should have been\n'{string_to_sign}'\n",
            access_key_id=access_key_id,
            provided=params.signature,
            canonical=canonical,
            string_to_sign=string_to_sign,
        )
    if not payload_ok:
        # Signed correctly, over a payload hash the body does not have.
        raise ContentSha256Mismatch(
            f"{_MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
            f"The String-to-Sign should have been\n'{string_to_sign}'\n",
            client=declared or "",
            computed=computed or "",
        )
    return SigningScope(
        access_key_id=access_key_id,
        account_id=credential.account_id,
        region=region,
        service=service,
        credential=credential,
        payload_hash=declared or payload_hash,
        signature=params.signature,
        presigned=params.presigned,
        timestamp=timestamp,
        scope=params.credential.partition("/")[2],
    )


class SignatureMismatch(InvalidSignatureException):
    """The signature is not the one the server computed; says what the server signed (S3 answers
    these as elements of its error)."""

    def __init__(
        self, message: str, *, access_key_id: str, provided: str, canonical: str, string_to_sign: str
    ) -> None:
        super().__init__(message)
        self.access_key_id = access_key_id
        self.provided = provided
        self.canonical = canonical
        self.string_to_sign = string_to_sign


class ContentSha256Mismatch(InvalidSignatureException):
    """A correctly signed request whose body does not hash to its signed ``x-amz-content-sha256``
    (other services answer a signature mismatch; S3 answers XAmzContentSHA256Mismatch)."""

    def __init__(self, message: str, *, client: str, computed: str) -> None:
        super().__init__(message)
        self.client = client
        self.computed = computed


class MissingContentSha256(IncompleteSignatureException):
    """An S3 request signed in the header form without ``x-amz-content-sha256``."""


def parse_scope(request: HasCredentialScope) -> tuple[str, str, str] | None:
    """Return (access key id, region, service) from the credential scope, without verifying.

    For routing a request to its service before :func:`verify` runs; None when the request
    carries no parseable credential (verify then reports why).
    """
    auth = request.headers.get("authorization")
    credential: str | None = None
    if auth is not None:
        match = _CREDENTIAL_IN_HEADER.search(auth)
        credential = match.group(1) if match else None
    elif "X-Amz-Credential=" in request.query_string:
        for piece in request.query_string.split("&"):
            if piece.startswith("X-Amz-Credential="):
                credential = unquote(piece[len("X-Amz-Credential=") :])
                break
    if credential is None:
        return None
    parts = credential.split("/")
    if len(parts) != 5:
        return None
    return parts[0], parts[2], parts[3]


def _auth_params(request: IncomingRequest, query: list[tuple[str, str]]) -> _AuthParams:
    """Find the signature parameters in the header or the query, checking their form."""
    auth = request.headers.get("authorization")
    presigned = _first(query, "X-Amz-Algorithm")
    if auth is not None and presigned is not None:
        # Two signatures for one request: AWS refuses rather than pick one.
        raise InvalidSignatureException(_MISMATCH)
    if auth is not None:
        return _header_params(auth, request.headers)
    if presigned is not None:
        return _query_params(presigned, query)
    raise MissingAuthenticationTokenException(_MISSING_TOKEN)


def _header_params(auth: str, headers: Mapping[str, str]) -> _AuthParams:
    algorithm, _, rest = auth.strip().partition(" ")
    values: dict[str, str] = {}
    if algorithm == ALGORITHM:
        for token in _AUTH_PARAM_SPLIT.split(rest):
            if not token:
                continue
            name, equals, value = token.partition("=")
            if not equals:
                raise IncompleteSignatureException(
                    f"'{token}' not a valid key=value pair (missing equal-sign) "
                    f"in Authorization header: '{auth}'."
                )
            values[name] = value  # the last occurrence wins, as in AWS
    elif algorithm.startswith("AWS4-"):
        raise IncompleteSignatureException(f"Unsupported AWS 'algorithm': '{algorithm}'.")
    # Anything else (a SigV2 "AWS key:sig" header, a bearer token) has none of the SigV4
    # parameters, and AWS answers with the full list of what is missing.
    timestamp = headers.get("x-amz-date")
    if timestamp is None:
        timestamp = headers.get("date")
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if name not in values
    ]
    if timestamp is None:
        missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if missing:
        raise IncompleteSignatureException(f"{' '.join(missing)} Authorization={auth}")
    assert timestamp is not None  # for mypy: a missing one is in `missing`
    return _AuthParams(
        credential=values["Credential"],
        signed_headers=_signed_header_names(values["SignedHeaders"]),
        signature=values["Signature"],
        timestamp=timestamp,
        session_token=headers.get("x-amz-security-token"),
        presigned=False,
        expires=None,
    )


def _query_params(algorithm: str, query: list[tuple[str, str]]) -> _AuthParams:
    if algorithm != ALGORITHM:
        # An unknown presigning algorithm is treated as no signature at all.
        raise MissingAuthenticationTokenException(_MISSING_TOKEN)
    credential = _first(query, "X-Amz-Credential")
    signature = _first(query, "X-Amz-Signature")
    signed_headers = _first(query, "X-Amz-SignedHeaders")
    timestamp = _first(query, "X-Amz-Date")
    missing = [
        f"AWS query-string parameters must include '{name}'."
        for name, value in (
            ("X-Amz-Credential", credential),
            ("X-Amz-Signature", signature),
            ("X-Amz-SignedHeaders", signed_headers),
            ("X-Amz-Date", timestamp),
        )
        if value is None
    ]
    if missing:
        raise IncompleteSignatureException(f"{' '.join(missing)} Re-examine the query-string parameters.")
    assert credential is not None and signature is not None and signed_headers is not None
    assert timestamp is not None
    return _AuthParams(
        credential=credential,
        signed_headers=_signed_header_names(signed_headers),
        signature=signature,
        timestamp=timestamp,
        session_token=_first(query, "X-Amz-Security-Token"),
        presigned=True,
        expires=_parse_expires(_first(query, "X-Amz-Expires")),
    )


def _parse_expires(value: str | None) -> int | None:
    # Wording from S3, the one service documenting these checks.
    if value is None:
        return None
    if not (value.isascii() and value.lstrip("-").isdigit()):
        raise IncompleteSignatureException("X-Amz-Expires should be a number")
    expires = int(value)
    if expires < 0:
        raise IncompleteSignatureException("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES:
        raise IncompleteSignatureException(
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}"
        )
    return expires


def _canonical_uri(raw_path: str) -> str:
    """The path as SigV4 signs it (dot segments removed, encoded once more). Cached for paths of
    ordinary length: clients call the same few paths over and over (a hostile client's long ones
    cannot fill the cache)."""
    if len(raw_path) > _CACHED_TEXT:
        return _encode_path(raw_path)
    return _cached_encode_path(raw_path)


def _encode_path(raw_path: str) -> str:
    return quote(_remove_dot_segments(raw_path), safe="/~")


_CACHED_TEXT = 512
_cached_encode_path = lru_cache(maxsize=1024)(_encode_path)


def _signed_header_names(value: str) -> tuple[str, ...]:
    if len(value) > _CACHED_TEXT:
        return _sorted_header_names(value)
    return _cached_header_names(value)


def _sorted_header_names(value: str) -> tuple[str, ...]:
    # AWS sorts and lower-cases the list itself; botocore always sends it that way anyway.
    return tuple(sorted(name.strip().lower() for name in value.split(";")))


_cached_header_names = lru_cache(maxsize=256)(_sorted_header_names)


def _parse_timestamp(value: str) -> tuple[datetime, str]:
    """Parse X-Amz-Date (ISO 8601 basic) or, failing that form, an RFC 7231 Date header.

    Returns the moment and its ISO 8601 basic spelling, which is what the string to sign
    carries even when the request used a Date header.
    """
    parsed = _parse_amz_date(value)
    if parsed is not None:
        return parsed, value
    if "," in value or " " in value:
        try:
            http_date = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            pass
        else:
            # "-0000" parses to a naive datetime; HTTP dates are always UTC.
            http_date = (
                http_date.replace(tzinfo=UTC) if http_date.tzinfo is None else http_date.astimezone(UTC)
            )
            return http_date, _fmt(http_date)
    raise IncompleteSignatureException(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _parse_amz_date(value: str) -> datetime | None:
    # Sliced by hand: strptime costs several microseconds on every request.
    if len(value) != 16 or value[8] != "T" or value[15] != "Z":
        return None
    digits = value[:8] + value[9:15]
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[9:11]),
            int(value[11:13]),
            int(value[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _check_clock(signed_at: datetime, now: datetime, expires: int | None) -> None:
    """Refuse a timestamp too far from ``now``, or a presigned URL past its expiry."""
    latest = now + MAX_SKEW
    if signed_at > latest:
        raise InvalidSignatureException(
            f"Signature not yet current: {_fmt(signed_at)} is still later than {_fmt(latest)} "
            f"({_fmt(now)} + 15 min.)"
        )
    # Real non-S3 services ignore X-Amz-Expires and allow a presigned URL the same 15 minutes
    # as a header signature; lamina honours the expiry the signer asked for instead, which is
    # what SDK users expect (botocore presigns for an hour by default).
    window = MAX_SKEW if expires is None else timedelta(seconds=expires)
    earliest = now - window
    if signed_at < earliest:
        raise InvalidSignatureException(
            f"Signature expired: {_fmt(signed_at)} is now earlier than {_fmt(earliest)} "
            f"({_fmt(now)} - {_duration(window)}.)"
        )


def _check_scope(
    scope_date: str,
    region: str,
    service: str,
    terminator: str,
    timestamp: str,
    expected_service: str | None,
) -> None:
    errors = ""
    if not _REGION.fullmatch(region):
        errors += f"Credential should be scoped to a valid region, not '{region}'. "
    if expected_service is not None and service != expected_service:
        errors += f"Credential should be scoped to correct service: '{expected_service}'. "
    if terminator != _TERMINATOR:
        errors += (
            f"Credential should be scoped with a valid terminator: '{_TERMINATOR}', not '{terminator}'. "
        )
    if scope_date != timestamp[:8]:
        errors += (
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{scope_date}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    if errors:
        raise InvalidSignatureException(errors)


def _same_token(expected: str | None, provided: str | None) -> bool:
    # A permanent key sent with a session token is refused as well: AWS looks the token up
    # and finds nothing.
    if expected is None or provided is None:
        return expected is None and provided is None
    return hmac.compare_digest(expected.encode("utf-8"), provided.encode("utf-8", "backslashreplace"))


def _canonical_request(
    request: IncomingRequest,
    query: list[tuple[str, str]],
    params: _AuthParams,
    payload_hash: str,
    *,
    raw_uri: bool = False,
) -> str:
    """Build the canonical request as botocore's SigV4Auth.canonical_request does."""
    # The presigned form signs every query parameter but the signature itself.
    pairs = sorted(
        (_uri_encode(name), _uri_encode(value))
        for name, value in query
        if not (params.presigned and name == "X-Amz-Signature")
    )
    header_lines = []
    for name in params.signed_headers:
        value = request.headers.get(name)
        if value is not None:
            # "Trimall": strip, and collapse runs of whitespace to one space.
            header_lines.append(f"{name}:{' '.join(value.split())}")
    return "\n".join(
        (
            request.method.upper(),
            (request.raw_path or "/") if raw_uri else _canonical_uri(request.raw_path),
            "&".join(f"{name}={value}" for name, value in pairs),
            "\n".join(header_lines) + "\n",
            ";".join(params.signed_headers),
            payload_hash,
        )
    )


def _parse_query(query_string: str) -> list[tuple[str, str]]:
    """Split and percent-decode a raw query string, keeping order and repeats.

    A raw '+' is a space, as in HTML forms: SDKs never send one (they write %20 and %2B), but
    botocore's own ``AWSRequest(params=...)`` puts spaces on the wire as '+' while signing
    them as %20, and AWS's front ends read it the same way.
    """
    pairs = []
    for piece in query_string.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def _first(query: list[tuple[str, str]], name: str) -> str | None:
    for key, value in query:
        if key == name:
            return value
    return None


def _uri_encode(value: str) -> str:
    # RFC 3986 unreserved characters stay; everything else, '/' included, is %XX-encoded.
    return quote(value, safe="-_.~")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, also dropping empty segments, as botocore's normalize_url_path."""
    if not path:
        return "/"
    output: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and output else ""
    return first + "/".join(output) + last


def signing_key(scope: SigningScope) -> bytes:
    """The SigV4 signing key (kSigning) of a verified request: what the chunks of its aws-chunked
    body are signed with, chained from its signature."""
    return _signing_key(
        scope.credential.secret_access_key, scope.scope.partition("/")[0], scope.region, scope.service
    )


@lru_cache(maxsize=256)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derive kSigning; cached because four HMACs per request is most of verify's cost."""
    key = hmac.new(f"AWS4{secret}".encode(), date.encode("utf-8"), hashlib.sha256).digest()
    for part in (region, service, _TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def _fmt(moment: datetime) -> str:
    return moment.strftime(_AMZ_DATE_FORMAT)


def _duration(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} sec"
