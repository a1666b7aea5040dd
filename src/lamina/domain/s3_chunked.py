"""aws-chunked request bodies (pure): the framing S3 clients stream uploads in, decoded as it comes,
each chunk's signature checked, and the trailer read.

Facts, from the Amazon S3 API Reference ("Signature calculations for the Authorization header:
transferring payload in multiple chunks", "... including trailing headers") and what SDKs send:

- ``x-amz-content-sha256`` names the form, and the seed signature (the request's own) covers it:
  ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` (every chunk signed),
  ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`` (chunks and the trailer signed),
  ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` (nothing signed but the headers; a trailing checksum:
  what boto3 and the AWS CLI send for PutObject and UploadPart over HTTPS).
- A chunk is ``<size in hex>[;chunk-signature=<64 hex>]\\r\\n<size bytes>\\r\\n``; the last has size
  0. The trailer follows the last chunk: ``name:value\\r\\n`` lines (a signed trailer ends with
  ``x-amz-trailer-signature:<64 hex>\\r\\n``) and an empty line. Without a trailer the body ends
  with ``0;chunk-signature=<sig>\\r\\n\\r\\n``.
- A chunk's signature is the HMAC, with the request's signing key, of
  ``AWS4-HMAC-SHA256-PAYLOAD\\n<X-Amz-Date>\\n<scope>\\n<previous signature>\\n<SHA-256 of "">\\n<SHA-256
  of the chunk>``, the first chunk's previous signature being the request's (the seed); the
  trailer's is of ``AWS4-HMAC-SHA256-TRAILER\\n<X-Amz-Date>\\n<scope>\\n<previous signature>\\n<SHA-256
  of the trailer lines, each "name:value\\n">``. A wrong one is ``SignatureDoesNotMatch`` (403).
- In the signed forms every chunk but the last holds at least 8 KB (``InvalidChunkSizeError``).
- ``x-amz-decoded-content-length`` is the length of the data; framing that does not parse, data
  longer or shorter than declared, or a body ending early is ``IncompleteBody`` (*The request body
  terminated unexpectedly*). A trailer other than the one ``x-amz-trailer`` announced, or a
  malformed trailer line, is ``MalformedTrailerError``.

Nothing is held but the bytes not yet passed on (a chunk header, the trailer: both bounded); a
chunk's data goes through as it arrives, and its signature is checked at its end, before the next
chunk is read. The consumer (the blob store's spool) keeps nothing until the whole body has been
verified, so a tampered chunk stores nothing.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from lamina.domain.s3 import s3_error
from lamina.errors import AwsError

SIGNED: Final = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER: Final = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER: Final = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

MIN_CHUNK: Final = 8192  # a signed chunk other than the last holds at least this much
MAX_HEADER_LINE: Final = 4096  # a chunk header: hex size and a signature (about 90 bytes)
MAX_TRAILER: Final = 16384  # the trailer, all lines
_EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
_SIGNATURE_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. Check your key"
    " and signing method."
)


class Framing(enum.Enum):
    """The aws-chunked forms, by their ``x-amz-content-sha256`` value."""

    SIGNED = SIGNED
    SIGNED_TRAILER = SIGNED_TRAILER
    UNSIGNED_TRAILER = UNSIGNED_TRAILER

    @property
    def signed(self) -> bool:
        return self is not Framing.UNSIGNED_TRAILER

    @property
    def trailer(self) -> bool:
        return self is not Framing.SIGNED

    @classmethod
    def of(cls, payload: str) -> Framing | None:
        """The form a signed ``x-amz-content-sha256`` names; None for a hash or UNSIGNED-PAYLOAD."""
        try:
            return cls(payload)
        except ValueError:
            return None


@dataclass(frozen=True)
class ChunkSigning:
    """What chunk signatures are computed from: the request's signing key, its X-Amz-Date, its
    credential scope (``date/region/service/aws4_request``) and its own signature (the seed)."""

    key: bytes
    timestamp: str
    scope: str
    seed: str
    access_key_id: str = ""

    def chunk_signature(self, previous: str, chunk_sha256: str) -> tuple[str, str]:
        """(signature, string to sign) of a chunk whose data hashes to ``chunk_sha256``."""
        string_to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256-PAYLOAD",
                self.timestamp,
                self.scope,
                previous,
                _EMPTY_SHA256,
                chunk_sha256,
            )
        )
        return self._sign(string_to_sign), string_to_sign

    def trailer_signature(self, previous: str, trailer: bytes) -> tuple[str, str]:
        """(signature, string to sign) of the trailer lines (each ``name:value\\n``)."""
        string_to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256-TRAILER",
                self.timestamp,
                self.scope,
                previous,
                hashlib.sha256(trailer).hexdigest(),
            )
        )
        return self._sign(string_to_sign), string_to_sign

    def _sign(self, string_to_sign: str) -> str:
        return hmac.new(self.key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChunkedRequest:
    """What a request says of its aws-chunked body: the form, ``x-amz-decoded-content-length`` and
    ``x-amz-trailer`` as sent, and (signed forms) what the chunk signatures chain from."""

    framing: Framing
    decoded_length: str | None
    trailer: str | None
    signing: ChunkSigning | None = None


def incomplete_body() -> AwsError:
    return s3_error("IncompleteBody", "The request body terminated unexpectedly", 400)


def malformed_trailer() -> AwsError:
    return s3_error(
        "MalformedTrailerError",
        "The request contained trailing data that was not well-formed or did not conform to our"
        " published schema.",
        400,
    )


def invalid_chunk_size(chunk: int, size: int) -> AwsError:
    return s3_error(
        "InvalidChunkSizeError",
        "Only the last chunk is allowed to have a size less than 8192 bytes",
        400,
        Chunk=str(chunk),
        BadChunkSize=str(size),
    )


def signature_mismatch(signing: ChunkSigning, provided: str, string_to_sign: str) -> AwsError:
    return s3_error(
        "SignatureDoesNotMatch",
        _SIGNATURE_MISMATCH,
        403,
        AWSAccessKeyId=signing.access_key_id,
        StringToSign=string_to_sign,
        SignatureProvided=provided,
        StringToSignBytes=" ".join(f"{b:02x}" for b in string_to_sign.encode("utf-8")),
    )


def missing_decoded_length() -> AwsError:
    return s3_error("MissingContentLength", "You must provide the Content-Length HTTP header.", 411)


def decoded_length(header: str | None) -> int:
    """The ``x-amz-decoded-content-length`` of an aws-chunked body (required)."""
    if header is None:
        raise missing_decoded_length()
    text = header.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise s3_error(
            "InvalidArgument",
            "x-amz-decoded-content-length must be a non-negative integer",
            400,
            ArgumentName="x-amz-decoded-content-length",
            ArgumentValue=header,
        )
    return int(text)


def announced_trailer(header: str | None) -> str | None:
    """The trailer ``x-amz-trailer`` announces (lower-case), None when none; several are not a
    checksum S3 knows (MalformedTrailerError)."""
    if header is None or not header.strip():
        return None
    names = [n.strip().lower() for n in header.split(",") if n.strip()]
    if len(names) != 1:
        raise malformed_trailer()
    return names[0]


class ChunkedBody:
    """The data of an aws-chunked body, decoded from ``raw`` as it is iterated; once the iteration
    ends without an error, :attr:`trailers` holds the trailer (names lower-case)."""

    def __init__(
        self,
        raw: Iterable[bytes],
        framing: Framing,
        *,
        length: int,
        signing: ChunkSigning | None = None,
        trailer: str | None = None,
    ) -> None:
        if framing.signed and signing is None:
            raise ValueError(f"{framing.value} needs the request's signing values")
        self._raw = iter(raw)
        self._framing = framing
        self._length = length
        self._signing = signing
        self._trailer = trailer
        self._buffer = bytearray()
        self._ended = False
        self.trailers: dict[str, str] = {}

    def __iter__(self) -> Iterator[bytes]:
        previous = self._signing.seed if self._signing is not None else ""
        total = 0
        number = 0
        short: int | None = None  # the size of a signed chunk under MIN_CHUNK seen so far
        while True:
            size, signature = self._chunk_header()
            number += 1
            if short is not None and size > 0:
                # A chunk under 8 KB was not the last one with data.
                raise invalid_chunk_size(number - 1, short)
            if total + size > self._length:
                raise incomplete_body()
            digest = hashlib.sha256() if self._framing.signed else None
            remaining = size
            while remaining:
                piece = self._take(remaining)
                if digest is not None:
                    digest.update(piece)
                remaining -= len(piece)
                yield piece
            total += size
            if self._signing is not None and digest is not None:
                previous = self._check_chunk(previous, signature, digest.hexdigest())
                if 0 < size < MIN_CHUNK:
                    short = size
            if size == 0:
                break
            if self._line(2) != b"":
                raise incomplete_body()
        if total != self._length:
            raise incomplete_body()
        self._read_trailer(previous)
        if self._buffer or self._more():
            raise incomplete_body()

    # -- framing ----------------------------------------------------------------------------------

    def _more(self) -> bool:
        """Append the next raw piece to the buffer; False at the end of the body."""
        if self._ended:
            return False
        for piece in self._raw:
            if piece:
                self._buffer += piece
                return True
        self._ended = True
        return False

    def _line(self, limit: int) -> bytes:
        """The next line (without its CRLF), at most ``limit`` bytes long."""
        start = 0
        while True:
            end = self._buffer.find(b"\r\n", start)
            if end >= 0:
                if end > limit:
                    raise incomplete_body()
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            if len(self._buffer) > limit + 1:
                raise incomplete_body()
            start = max(0, len(self._buffer) - 1)
            if not self._more():
                raise incomplete_body()

    def _take(self, most: int) -> bytes:
        """Up to ``most`` bytes of chunk data (at least one)."""
        if not self._buffer and not self._more():
            raise incomplete_body()
        piece = bytes(self._buffer[:most])
        del self._buffer[:most]
        return piece

    def _chunk_header(self) -> tuple[int, str]:
        """A chunk's size and signature (empty in the unsigned form)."""
        line = self._line(MAX_HEADER_LINE)
        size_text, _, extensions = line.partition(b";")
        size_text = size_text.strip()
        if not size_text or len(size_text) > 16 or not all(c in b"0123456789abcdefABCDEF" for c in size_text):
            raise incomplete_body()
        signature = ""
        if self._framing.signed:
            name, equals, value = extensions.partition(b"=")
            if name.strip() != b"chunk-signature" or not equals:
                raise incomplete_body()
            try:
                signature = value.strip().decode("ascii")
            except UnicodeDecodeError:
                raise incomplete_body() from None
        return int(size_text, 16), signature

    def _check_chunk(self, previous: str, provided: str, chunk_sha256: str) -> str:
        assert self._signing is not None
        expected, string_to_sign = self._signing.chunk_signature(previous, chunk_sha256)
        if not hmac.compare_digest(expected.encode("ascii"), provided.encode("ascii")):
            raise signature_mismatch(self._signing, provided, string_to_sign)
        return expected

    # -- trailer ----------------------------------------------------------------------------------

    def _read_trailer(self, previous: str) -> None:
        lines: list[bytes] = []
        size = 0
        while True:
            line = self._line(MAX_TRAILER)
            if not line:
                break
            size += len(line) + 2
            if size > MAX_TRAILER:
                raise malformed_trailer()
            lines.append(line)
        if not self._framing.trailer:
            if lines:
                raise incomplete_body()
            return
        signature: str | None = None
        signed_part = bytearray()
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon:
                raise malformed_trailer()
            try:
                key, text = name.strip().decode("ascii").lower(), value.strip().decode("ascii")
            except UnicodeDecodeError:
                raise malformed_trailer() from None
            if key == "x-amz-trailer-signature":
                signature = text
                continue
            if signature is not None or key in self.trailers:
                raise malformed_trailer()
            self.trailers[key] = text
            signed_part += f"{key}:{text}\n".encode("ascii")
        if set(self.trailers) != ({self._trailer} if self._trailer else set()):
            raise malformed_trailer()
        if self._framing is Framing.SIGNED_TRAILER:
            assert self._signing is not None
            if signature is None:
                raise incomplete_body()
            expected, string_to_sign = self._signing.trailer_signature(previous, bytes(signed_part))
            if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
                raise signature_mismatch(self._signing, signature, string_to_sign)
        elif signature is not None:
            raise malformed_trailer()
