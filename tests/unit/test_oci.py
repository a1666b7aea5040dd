"""The OCI client's pure parts: challenges, platform selection, digests, registry URLs."""

from __future__ import annotations

import hashlib

import pytest

from lamina.runtime.images import image_name, parse_registry
from lamina.runtime.oci import (
    Descriptor,
    DigestMismatchError,
    RegistryError,
    parse_challenge,
    select_platform,
    verified,
)

AMD = "sha256:" + "a" * 64
ARM = "sha256:" + "b" * 64


def test_parse_challenge() -> None:
    header = 'Bearer realm="https://public.ecr.aws/token/",service="public.ecr.aws",scope="aws"'
    assert parse_challenge(header) == {
        "realm": "https://public.ecr.aws/token/",
        "service": "public.ecr.aws",
        "scope": "aws",
    }
    assert parse_challenge('Basic realm="x"') == {}
    assert parse_challenge("") == {}


def entry(digest: str, arch: str, os: str = "linux", **extra: str) -> dict[str, object]:
    return {
        "mediaType": "m",
        "digest": digest,
        "size": 10,
        "platform": {"os": os, "architecture": arch, **extra},
    }


@pytest.mark.parametrize(("arch", "digest"), [("x86_64", AMD), ("arm64", ARM)], ids=["x86_64", "arm64"])
def test_select_platform(arch: str, digest: str) -> None:
    index = {
        "manifests": [
            entry(ARM, "arm64", variant="v8"),
            entry(AMD, "amd64"),
            entry(AMD, "unknown", "unknown"),
        ]
    }
    assert select_platform(index, arch).digest == digest


def test_select_platform_names_what_exists() -> None:
    with pytest.raises(
        RegistryError, match=r"no linux/arm64 manifest \(it has: linux/amd64, windows/arm64\)"
    ):
        select_platform({"manifests": [entry(AMD, "amd64"), entry(ARM, "arm64", "windows")]}, "arm64")
    with pytest.raises(RegistryError, match="has no manifests"):
        select_platform({}, "arm64")


@pytest.mark.parametrize(
    "digest",
    ["sha512:" + "a" * 128, "sha256:" + "A" * 64, "sha256:abc", "sha256:" + "a" * 64 + "/../x"],
    ids=["sha512", "uppercase", "short", "path"],
)
def test_unsupported_digests_are_refused(digest: str) -> None:
    with pytest.raises(RegistryError, match="unsupported digest"):
        Descriptor.parse({"digest": digest, "size": 1}, "layer 0")


def test_verified_checks_size_and_digest() -> None:
    data = b"hello world"
    good = Descriptor("t", "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    assert b"".join(verified(iter([data[:5], data[5:]]), good, "layer")) == data
    with pytest.raises(DigestMismatchError, match="does not match its digest"):
        list(verified(iter([b"hello wOrld"]), good, "layer"))
    with pytest.raises(DigestMismatchError, match="10 bytes received, 11 expected"):
        list(verified(iter([data[:10]]), good, "layer"))
    with pytest.raises(DigestMismatchError, match="larger than its 11 bytes"):
        list(verified(iter([data, b"!"]), good, "layer"))


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("https://public.ecr.aws", True),
        ("http://127.0.0.1:5000/", True),
        ("ftp://x", False),
        ("public.ecr.aws", False),
        ("https://public.ecr.aws/lambda", False),
    ],
    ids=["ecr", "local", "ftp", "no-scheme", "path"],
)
def test_parse_registry(text: str, ok: bool) -> None:
    if ok:
        assert parse_registry(text) == text.rstrip("/")
    else:
        with pytest.raises(ValueError):
            parse_registry(text)


@pytest.mark.parametrize(
    ("runtime", "reference"),
    [
        ("python3.10", "public.ecr.aws/lambda/python:3.10"),
        ("python3.14", "public.ecr.aws/lambda/python:3.14"),
        ("provided.al2023", "public.ecr.aws/lambda/provided:al2023"),
        ("provided.al2", "public.ecr.aws/lambda/provided:al2"),
        ("provided", "public.ecr.aws/lambda/provided:alami"),
    ],
)
def test_image_names(runtime: str, reference: str) -> None:
    assert image_name(runtime).reference("https://public.ecr.aws") == reference
