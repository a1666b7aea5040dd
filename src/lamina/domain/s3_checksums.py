"""S3's additional checksums (``x-amz-checksum-*``): the algorithms, how their values are written,
and a running computation of each.

Facts, from the Amazon S3 User Guide ("Checking object integrity") and recordings against AWS:

- Five algorithms: CRC32 (S3's default: every new object has one), CRC32C, CRC64NVME, SHA1 and
  SHA256. A value is the base64 of the big-endian digest (4 bytes for the CRC32s, 8 for CRC64NVME,
  20 and 32 for the SHAs).
- An object keeps the checksum of the algorithm its upload used (sent as a header or a trailer);
  HeadObject and GetObject answer it (``ChecksumCRC32C`` ...) with ``ChecksumMode=ENABLED``.
- A value that is not base64 of the right length is ``InvalidRequest`` (*Value for
  x-amz-checksum-crc32c header is invalid.*); a wrong one is ``BadDigest`` (*The CRC32C you
  specified did not match the calculated checksum.*).

CRC32 is zlib's; CRC32C is the ``crc32c`` package's (hardware-accelerated, what the SDKs' own
checksum libraries compute); CRC64NVME (CRC-64/NVME: reflected polynomial 0x9a6c9329ac4bc9b5,
initial value and final xor all ones) is computed here, a table at a time: no well-kept library
computes it without also changing how botocore signs every request (``awscrt``, which botocore
picks up as its signer whenever it is importable). Clients send CRC64NVME only when told to.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Final, Protocol

from lamina.domain.s3 import s3_error
from lamina.errors import AwsError


class Algorithm(enum.Enum):
    """An additional checksum algorithm; the value is its name in headers (``x-amz-checksum-<value>``)."""

    CRC32 = "crc32"
    CRC32C = "crc32c"
    CRC64NVME = "crc64nvme"
    SHA1 = "sha1"
    SHA256 = "sha256"

    @property
    def header(self) -> str:
        """The request and response header that carries a value: ``x-amz-checksum-crc32``."""
        return f"x-amz-checksum-{self.value}"

    @property
    def member(self) -> str:
        """The model's member for a value: ``ChecksumCRC32``."""
        return f"Checksum{self.name}"

    @property
    def size(self) -> int:
        """Bytes of a digest."""
        return _SIZES[self]

    @classmethod
    def from_header(cls, name: str) -> Algorithm | None:
        """The algorithm of an ``x-amz-checksum-*`` header or trailer name (any case), else None."""
        lowered = name.strip().lower()
        if not lowered.startswith("x-amz-checksum-"):
            return None
        try:
            return cls(lowered.removeprefix("x-amz-checksum-"))
        except ValueError:
            return None


_SIZES: Final = {
    Algorithm.CRC32: 4,
    Algorithm.CRC32C: 4,
    Algorithm.CRC64NVME: 8,
    Algorithm.SHA1: 20,
    Algorithm.SHA256: 32,
}


def bad_checksum(algorithm: Algorithm) -> AwsError:
    """The bytes do not have the checksum sent."""
    return s3_error(
        "BadDigest", f"The {algorithm.name} you specified did not match the calculated checksum.", 400
    )


def invalid_checksum(algorithm: Algorithm) -> AwsError:
    """A checksum value that is not base64 of the algorithm's digest size."""
    return s3_error("InvalidRequest", f"Value for {algorithm.header} header is invalid.", 400)


def decode_value(algorithm: Algorithm, value: str) -> bytes:
    """The digest a checksum value (base64) stands for, or InvalidRequest."""
    try:
        raw = binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != algorithm.size:
        raise invalid_checksum(algorithm)
    return raw


def encode_value(digest: bytes) -> str:
    """A digest as S3 writes a checksum value."""
    return base64.b64encode(digest).decode("ascii")


class Hasher(Protocol):
    """A running checksum."""

    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    def __init__(self, step: Callable[[bytes, int], int], width: int) -> None:
        self._step = step
        self._value = 0
        self._width = width

    def update(self, data: bytes) -> None:
        self._value = self._step(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


def _crc32c_step() -> Callable[[bytes, int], int]:
    """The ``crc32c`` package's function, imported when first asked for (only uploads that choose
    CRC32C need it); a server installed without it answers S3's 501 for the header."""
    try:
        from crc32c import crc32c
    except ImportError:
        raise s3_error(
            "NotImplemented",
            "A header you provided implies functionality that is not implemented",
            501,
            Header=Algorithm.CRC32C.header,
        ) from None

    def step(data: bytes, value: int) -> int:
        return int(crc32c(data, value))

    return step


# CRC-64/NVME, reflected: the table of each byte's contribution.
_CRC64_POLY: Final = 0x9A6C9329AC4BC9B5
_MASK64: Final = 0xFFFFFFFFFFFFFFFF


def _crc64_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC64_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC64_TABLE: Final = _crc64_table()


def crc64nvme(data: bytes, value: int = 0) -> int:
    """CRC-64/NVME of ``data``, continuing from ``value`` (the CRC of what came before)."""
    crc = value ^ _MASK64
    table = _CRC64_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _MASK64


def hasher(algorithm: Algorithm) -> Hasher:
    """A running checksum of ``algorithm``."""
    if algorithm is Algorithm.CRC32:
        return _Crc(zlib.crc32, 4)
    if algorithm is Algorithm.CRC32C:
        return _Crc(_crc32c_step(), 4)
    if algorithm is Algorithm.CRC64NVME:
        return _Crc(crc64nvme, 8)
    return hashlib.sha1(usedforsecurity=False) if algorithm is Algorithm.SHA1 else hashlib.sha256()


class Tee:
    """Chunks passed through unchanged while a checksum of them is computed (read ``digest`` once
    they are all through)."""

    def __init__(self, chunks: Iterable[bytes], algorithm: Algorithm) -> None:
        self._chunks = chunks
        self._hasher = hasher(algorithm)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._hasher.update(chunk)
            yield chunk

    def digest(self) -> bytes:
        return self._hasher.digest()
