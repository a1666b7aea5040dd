"""aws-chunked framing and S3's additional checksums (pure rules)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from lamina.domain.s3_checksums import Algorithm, Tee, crc64nvme, decode_value, encode_value, hasher
from lamina.domain.s3_chunked import (
    ChunkedBody,
    ChunkSigning,
    Framing,
    announced_trailer,
    decoded_length,
)
from lamina.errors import AwsError

SEED = "a" * 64
SIGNING = ChunkSigning(
    key=b"k" * 32,
    timestamp="20261206T120000Z",
    scope="20261206/us-east-1/s3/aws4_request",
    seed=SEED,
    access_key_id="test",
)


def checksum_of(algorithm: Algorithm, data: bytes) -> str:
    """The checksum value of ``data`` (base64), as S3 writes it."""
    h = hasher(algorithm)
    h.update(data)
    return encode_value(h.digest())


def signed_body(
    chunks: list[bytes], *, trailer: dict[str, str] | None = None, signing: ChunkSigning = SIGNING
) -> bytes:
    """A signed aws-chunked body as the AWS SDKs frame it (the last chunk empty)."""
    out = bytearray()
    previous = signing.seed
    for data in [*chunks, b""]:
        previous, _ = signing.chunk_signature(previous, hashlib.sha256(data).hexdigest())
        out += f"{len(data):x};chunk-signature={previous}\r\n".encode() + data
        if data:
            out += b"\r\n"
    if trailer is None:
        return bytes(out + b"\r\n")
    lines = "".join(f"{k}:{v}\n" for k, v in trailer.items()).encode()
    signature, _ = signing.trailer_signature(previous, lines)
    for k, v in trailer.items():
        out += f"{k}:{v}\r\n".encode()
    return bytes(out + f"x-amz-trailer-signature:{signature}\r\n\r\n".encode())


def unsigned_body(chunks: list[bytes], trailer: dict[str, str]) -> bytes:
    """STREAMING-UNSIGNED-PAYLOAD-TRAILER as botocore frames it."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n"
    return out + b"".join(f"{k}:{v}\r\n".encode() for k, v in trailer.items()) + b"\r\n"


def decode(
    raw: bytes, framing: Framing, length: int, *, trailer: str | None = None, piece: int = 7
) -> tuple[bytes, dict[str, str]]:
    """Decode ``raw`` fed in pieces of ``piece`` bytes (framing split anywhere)."""
    body = ChunkedBody(
        (raw[i : i + piece] for i in range(0, len(raw), piece)),
        framing,
        length=length,
        signing=SIGNING if framing.signed else None,
        trailer=trailer,
    )
    return b"".join(body), body.trailers


def error_of(raw: bytes, framing: Framing, length: int, trailer: str | None = None) -> AwsError:
    with pytest.raises(AwsError) as caught:
        decode(raw, framing, length, trailer=trailer)
    return caught.value


# -- checksums ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "data", "value"),
    [
        # Recorded against AWS (PutObject of these bytes answered these values).
        (Algorithm.CRC64NVME, b"test-checksum", "1f2xscCCZCU="),
        (Algorithm.CRC32C, b"test-checksum", "Fz3epA=="),
        (Algorithm.CRC32, b"", "AAAAAA=="),
        (Algorithm.SHA256, b"", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
    ],
    ids=["crc64nvme", "crc32c", "crc32-empty", "sha256-empty"],
)
def test_checksum_values(algorithm: Algorithm, data: bytes, value: str) -> None:
    assert checksum_of(algorithm, data) == value


def test_crc64nvme_check_value_and_continuation() -> None:
    # The CRC catalogue's check value for CRC-64/NVME ("123456789").
    assert crc64nvme(b"123456789") == 0xAE8B14860A799888
    assert crc64nvme(b"6789", crc64nvme(b"12345")) == crc64nvme(b"123456789")


def test_tee_passes_chunks_through() -> None:
    tee = Tee([b"test-", b"checksum"], Algorithm.CRC64NVME)
    assert b"".join(tee) == b"test-checksum"
    assert decode_value(Algorithm.CRC64NVME, "1f2xscCCZCU=") == tee.digest()


@pytest.mark.parametrize("value", ["not base64!", "AAAA", "AAAAAAAAAAA="], ids=["garbage", "short", "long"])
def test_malformed_checksum_value(value: str) -> None:
    with pytest.raises(AwsError) as caught:
        decode_value(Algorithm.CRC32, value)
    assert (caught.value.code, caught.value.message) == (
        "InvalidRequest",
        "Value for x-amz-checksum-crc32 header is invalid.",
    )


def test_algorithm_from_header() -> None:
    assert Algorithm.from_header("X-Amz-Checksum-CRC32C") is Algorithm.CRC32C
    assert Algorithm.from_header("x-amz-checksum-md5") is None
    assert Algorithm.from_header("x-amz-meta-a") is None


# -- signed chunks --------------------------------------------------------------------------------


def test_signed_chunks_decode() -> None:
    data = [b"a" * 8192, b"b" * 9000, b"tail"]
    raw = signed_body(data)
    assert decode(raw, Framing.SIGNED, 8192 + 9000 + 4) == (b"".join(data), {})
    # In one piece as well as in small ones.
    assert decode(raw, Framing.SIGNED, 8192 + 9000 + 4, piece=len(raw))[0] == b"".join(data)


def test_signature_chain_matches_the_documented_example() -> None:
    # The S3 API Reference's example ("Example: PUT Object", 66560 bytes of 'a' in 64 KB chunks,
    # secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY): seed and first chunk signatures.
    key = hmac.new(b"AWS4wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", b"20130524", hashlib.sha256).digest()
    for part in (b"us-east-1", b"s3", b"aws4_request"):
        key = hmac.new(key, part, hashlib.sha256).digest()
    signing = ChunkSigning(
        key,
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    )
    first, _ = signing.chunk_signature(signing.seed, hashlib.sha256(b"a" * 65536).hexdigest())
    assert first == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    second, _ = signing.chunk_signature(first, hashlib.sha256(b"a" * 1024).hexdigest())
    assert second == "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    last, _ = signing.chunk_signature(second, hashlib.sha256(b"").hexdigest())
    assert last == "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"


def test_tampered_chunk_is_signature_does_not_match() -> None:
    raw = signed_body([b"a" * 8192, b"tail"])
    tampered = raw.replace(b"tail", b"TAIL")
    error = error_of(tampered, Framing.SIGNED, 8196)
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    assert error.fields["StringToSign"].startswith("AWS4-HMAC-SHA256-PAYLOAD\n20261206T120000Z\n")
    assert error.fields["AWSAccessKeyId"] == "test"


def test_tampered_signature_is_refused() -> None:
    raw = signed_body([b"a" * 8192])
    first_sig = raw.index(b"chunk-signature=") + len(b"chunk-signature=")
    tampered = raw[:first_sig] + b"0" * 64 + raw[first_sig + 64 :]
    assert error_of(tampered, Framing.SIGNED, 8192).code == "SignatureDoesNotMatch"


def test_wrong_seed_is_refused() -> None:
    other = ChunkSigning(SIGNING.key, SIGNING.timestamp, SIGNING.scope, "b" * 64)
    assert error_of(signed_body([b"x"], signing=other), Framing.SIGNED, 1).code == "SignatureDoesNotMatch"


def test_small_chunk_before_the_last() -> None:
    error = error_of(signed_body([b"a" * 100, b"b" * 8192]), Framing.SIGNED, 8292)
    assert error.code == "InvalidChunkSizeError"
    assert error.message == "Only the last chunk is allowed to have a size less than 8192 bytes"
    assert dict(error.fields) == {"Chunk": "1", "BadChunkSize": "100"}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda raw: raw[:-1],  # the final CRLF cut short
        lambda raw: raw[:100],  # the body ends inside a chunk
        lambda raw: raw.replace(b"\r\n", b"\n", 1),  # a chunk header without its CRLF
        lambda raw: b"zz" + raw[raw.index(b";") :],  # a size that is no hex
        lambda raw: raw.replace(b";chunk-signature=", b";chunk-sig=", 1),  # no signature
        lambda raw: raw + b"extra",  # bytes after the end
        lambda raw: b"1" * 5000 + raw,  # a chunk header longer than any real one
    ],
    ids=[
        "truncated-end",
        "truncated-chunk",
        "bare-lf",
        "bad-size",
        "no-signature",
        "trailing-bytes",
        "oversize-header",
    ],
)
def test_malformed_framing_is_incomplete_body(mutate: object) -> None:
    raw = signed_body([b"a" * 8192, b"tail"])
    error = error_of(mutate(raw), Framing.SIGNED, 8196)  # type: ignore[operator]
    assert (error.code, error.message, error.status) == (
        "IncompleteBody",
        "The request body terminated unexpectedly",
        400,
    )


@pytest.mark.parametrize("declared", [8195, 8197, 0], ids=["shorter", "longer", "zero"])
def test_decoded_length_must_match(declared: int) -> None:
    raw = signed_body([b"a" * 8192, b"tail"])
    assert error_of(raw, Framing.SIGNED, declared).code == "IncompleteBody"


# -- trailers -------------------------------------------------------------------------------------


def test_unsigned_trailer_decodes() -> None:
    value = checksum_of(Algorithm.CRC32, b"hello world")
    raw = unsigned_body([b"hello ", b"world"], {"x-amz-checksum-crc32": value})
    data, trailers = decode(raw, Framing.UNSIGNED_TRAILER, 11, trailer="x-amz-checksum-crc32")
    assert data == b"hello world"
    assert trailers == {"x-amz-checksum-crc32": value}


def test_empty_body_with_trailer() -> None:
    raw = unsigned_body([], {"x-amz-checksum-crc32": "AAAAAA=="})
    assert decode(raw, Framing.UNSIGNED_TRAILER, 0, trailer="x-amz-checksum-crc32") == (
        b"",
        {"x-amz-checksum-crc32": "AAAAAA=="},
    )


@pytest.mark.parametrize(
    ("trailer", "announced"),
    [
        ({}, "x-amz-checksum-crc32"),  # announced, never sent
        ({"x-amz-checksum-sha256": "x"}, "x-amz-checksum-crc32"),  # another one came
        ({"x-amz-checksum-crc32": "AAAAAA=="}, None),  # sent, not announced
    ],
    ids=["missing", "other", "unannounced"],
)
def test_trailer_other_than_announced(trailer: dict[str, str], announced: str | None) -> None:
    raw = unsigned_body([b"hi"], trailer)
    error = error_of(raw, Framing.UNSIGNED_TRAILER, 2, trailer=announced)
    assert error.code == "MalformedTrailerError"
    assert error.message == (
        "The request contained trailing data that was not well-formed or did not conform to our published schema."
    )


def test_trailer_line_without_colon() -> None:
    raw = b"2\r\nhi\r\n0\r\nx-amz-checksum-crc32\r\n\r\n"
    assert error_of(raw, Framing.UNSIGNED_TRAILER, 2, "x-amz-checksum-crc32").code == "MalformedTrailerError"


def test_signed_trailer() -> None:
    value = checksum_of(Algorithm.CRC32C, b"a" * 8192)
    raw = signed_body([b"a" * 8192], trailer={"x-amz-checksum-crc32c": value})
    assert decode(raw, Framing.SIGNED_TRAILER, 8192, trailer="x-amz-checksum-crc32c")[1] == {
        "x-amz-checksum-crc32c": value
    }
    tampered = raw.replace(value.encode(), b"AAAAAA==")
    error = error_of(tampered, Framing.SIGNED_TRAILER, 8192, "x-amz-checksum-crc32c")
    assert error.code == "SignatureDoesNotMatch"
    assert error.fields["StringToSign"].startswith("AWS4-HMAC-SHA256-TRAILER\n")


def test_signed_trailer_without_its_signature() -> None:
    raw = signed_body([b"a" * 8192], trailer={"x-amz-checksum-crc32": "AAAAAA=="})
    unsigned = raw[: raw.index(b"x-amz-trailer-signature")] + b"\r\n"
    assert error_of(unsigned, Framing.SIGNED_TRAILER, 8192, "x-amz-checksum-crc32").code == "IncompleteBody"


def test_oversize_trailer() -> None:
    raw = b"0\r\nx-amz-checksum-crc32:" + b"A" * 20000 + b"\r\n\r\n"
    assert error_of(raw, Framing.UNSIGNED_TRAILER, 0, "x-amz-checksum-crc32").code == "IncompleteBody"


# -- headers --------------------------------------------------------------------------------------


def test_decoded_content_length_header() -> None:
    assert decoded_length("66560") == 66560
    with pytest.raises(AwsError) as caught:
        decoded_length(None)
    assert (caught.value.code, caught.value.status) == ("MissingContentLength", 411)
    with pytest.raises(AwsError) as caught:
        decoded_length("-1")
    assert caught.value.code == "InvalidArgument"


def test_announced_trailer() -> None:
    assert announced_trailer(None) is None
    assert announced_trailer(" X-Amz-Checksum-CRC32 ") == "x-amz-checksum-crc32"
    with pytest.raises(AwsError):
        announced_trailer("x-amz-checksum-crc32, x-amz-checksum-sha1")


def test_framing_of_payload() -> None:
    assert Framing.of("STREAMING-UNSIGNED-PAYLOAD-TRAILER") is Framing.UNSIGNED_TRAILER
    assert Framing.of("UNSIGNED-PAYLOAD") is None
    assert Framing.of("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") is None
