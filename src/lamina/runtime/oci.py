"""A small client of the OCI distribution API: what pulling one image needs, and nothing more.

Facts about the protocol (OCI distribution-spec, and Docker's token authentication spec it grew
from): ``GET /v2/`` answers 200 on a registry without authentication, else 401 with
``WWW-Authenticate: Bearer realm="...",service="..."``; an anonymous client then asks
``GET <realm>?service=<service>&scope=repository:<name>:pull`` for a token (JSON ``token`` or
``access_token``) and sends it as ``Authorization: Bearer``. Manifests are fetched by tag or digest
from ``/v2/<name>/manifests/<ref>`` with the media types the client understands in ``Accept``;
a multi-architecture image answers an index (OCI) or manifest list (Docker) whose entries name a
``platform``. Blobs come from ``/v2/<name>/blobs/<digest>``, often through a redirect to a CDN or a
presigned S3 URL: the token must not follow it (S3 refuses a request carrying two authentications),
hence ``add_unredirected_header``. Everything is named by its digest and checked against it: a
registry is trusted for nothing but bytes.

Nor for its pace or its HTTP: a redirect goes to http(s) only (urllib would follow one to ``ftp://``);
a response that is not HTTP is the registry's error, not a crash; and a body must arrive by a deadline
(the timeout, plus its size at ``MIN_BYTES_PER_S``), not only without a pause of a timeout's length,
which a registry sending one byte every few seconds never makes.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from lamina import __version__
from lamina.errors import LaminaError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
#: Layer media types this client unpacks, with their compression as ``LayerUnpacker.apply`` names it
#: (zstd needs Python 3.14's ``compression.zstd``).
LAYER_COMPRESSION = {
    "application/vnd.oci.image.layer.v1.tar": "",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gz",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gz",
    "application/vnd.docker.image.rootfs.diff.tar": "",
}
LAYER_TYPES = tuple(LAYER_COMPRESSION)
#: Lambda's architectures as OCI platforms (image-spec: ``architecture`` uses GOARCH values).
PLATFORMS = {"x86_64": "amd64", "arm64": "arm64"}
MAX_MANIFEST_BYTES = 4 << 20
CHUNK = 1 << 20
TIMEOUT_S = 60.0
#: The slowest transfer a pull waits for (a 10 GB image: some 45 hours).
MIN_BYTES_PER_S = 64 << 10
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(LaminaError):
    """The registry could not be reached, refused, or answered something unusable."""


class DigestMismatchError(RegistryError):
    """Bytes from the registry do not match the digest that names them."""


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest says about one blob."""

    media_type: str
    digest: str
    size: int

    @classmethod
    def parse(cls, doc: Any, what: str) -> Descriptor:
        if not isinstance(doc, dict):
            raise RegistryError(f"{what}: not a descriptor")
        digest, size = doc.get("digest"), doc.get("size")
        if not isinstance(digest, str) or not isinstance(size, int) or size < 0:
            raise RegistryError(f"{what}: descriptor without a digest and size")
        check_digest(digest, what)
        return cls(str(doc.get("mediaType", "")), digest, size)

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


@dataclass(frozen=True)
class ImageManifest:
    """One architecture's image: its manifest's digest, config and layers (bottom first)."""

    digest: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


def check_digest(digest: str, what: str) -> None:
    if not _DIGEST.fullmatch(digest):
        raise RegistryError(f"{what}: unsupported digest {digest!r} (lamina verifies sha256 digests only)")


def parse_challenge(header: str) -> dict[str, str]:
    """The parameters of a ``Bearer`` ``WWW-Authenticate`` challenge ({} if it is not one)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return {}
    return {k.lower(): v for k, v in _CHALLENGE_PARAM.findall(rest)}


def select_platform(index: Any, arch: str) -> Descriptor:
    """The manifest of ``linux/<arch>`` in an index or manifest list; attestations are skipped."""
    want = PLATFORMS[arch]
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list):
        raise RegistryError("image index has no manifests")
    for i, entry in enumerate(entries):
        platform = entry.get("platform") if isinstance(entry, dict) else None
        if not isinstance(platform, dict):
            continue
        if platform.get("os") == "linux" and platform.get("architecture") == want:
            return Descriptor.parse(entry, f"image index entry {i}")
    found = sorted(
        f"{e['platform'].get('os')}/{e['platform'].get('architecture')}"
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("platform"), dict)
    )
    raise RegistryError(f"the image has no linux/{want} manifest (it has: {', '.join(found) or 'none'})")


class _HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """Follows a redirect to an http(s) URL only (urllib's own also follows ``ftp://``)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise RegistryError(f"{req.full_url}: the registry redirects to {newurl!r}, not an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def read_body(response: Any, limit: int, deadline: float, what: str) -> Iterator[bytes]:
    """The body of ``response``, in chunks, up to ``limit`` bytes (the caller sees whether there was
    more); ``RegistryError`` if the connection fails or the body is still arriving at ``deadline``
    (``time.monotonic()``)."""
    while limit > 0:
        try:
            chunk = response.read1(min(CHUNK, limit))
        except (OSError, http.client.HTTPException) as exc:
            raise RegistryError(f"{what}: the registry's answer broke off: {exc!r}") from None
        if not chunk:
            return
        limit -= len(chunk)
        yield chunk
        if time.monotonic() > deadline:
            raise RegistryError(f"{what}: the registry sends too slowly (deadline passed)")


class RegistryClient:
    """Anonymous pulls from one registry (``https://public.ecr.aws``, or ``http://127.0.0.1:PORT``).
    ``timeout``: for any one network operation, and for a whole small answer (manifest, token)."""

    def __init__(self, base_url: str, timeout: float = TIMEOUT_S) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise RegistryError(f"registry URL {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.host = parsed.netloc
        self.timeout = timeout
        self._tokens: dict[str, str] = {}
        self._challenge: dict[str, str] | None = None
        self._opener = urllib.request.build_opener(_HttpRedirectsOnly)

    # -- HTTP --------------------------------------------------------------------------------------

    def _open(self, repository: str, path: str, accept: str | None = None) -> Any:
        """GET ``path`` (under /v2/), with the anonymous token of ``repository`` once challenged."""
        url = f"{self.base_url}/v2/{path}"
        for attempt in range(2):
            request = urllib.request.Request(url, headers={"User-Agent": f"lamina/{__version__}"})
            if accept:
                request.add_header("Accept", accept)
            if repository and self._challenge and repository not in self._tokens:
                self._tokens[repository] = self._token(self._challenge, repository)
            token = self._tokens.get(repository)
            if token:
                request.add_unredirected_header("Authorization", f"Bearer {token}")
            try:
                return self._opener.open(request, timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                challenge = parse_challenge(exc.headers.get("WWW-Authenticate", "") if exc.headers else "")
                if exc.code == 401 and challenge and not repository:
                    exc.close()
                    self._challenge = challenge  # GET /v2/: authentication needed, fine
                    return None
                if exc.code == 401 and challenge and attempt == 0:
                    exc.close()
                    self._challenge = challenge
                    self._tokens.pop(repository, None)
                    continue
                raise RegistryError(f"{url}: {_describe_http_error(exc)}") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise RegistryError(f"cannot reach the registry {self.base_url}: {reason}") from None
            except http.client.HTTPException as exc:
                raise RegistryError(f"{url}: the registry's answer is not HTTP: {exc!r}") from None
        raise RegistryError(f"{url}: the registry refused its own token")

    def _token(self, challenge: dict[str, str], repository: str) -> str:
        realm = challenge.get("realm", "")
        if urllib.parse.urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryError(f"registry {self.base_url} asks for a token from {realm!r}, not a URL")
        query = {"scope": f"repository:{repository}:pull"}
        if "service" in challenge:
            query["service"] = challenge["service"]
        url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers={"User-Agent": f"lamina/{__version__}"})
        deadline = time.monotonic() + self.timeout
        try:
            with self._opener.open(request, timeout=self.timeout) as r:
                doc = json.loads(b"".join(read_body(r, MAX_MANIFEST_BYTES, deadline, "token request")))
        except urllib.error.HTTPError as exc:
            raise RegistryError(f"token request to {realm}: {_describe_http_error(exc)}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            raise RegistryError(f"token request to {realm} failed: {exc}") from None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token request to {realm} answered no token")
        return token

    def ping(self) -> None:
        """``GET /v2/``: the registry speaks the distribution API (authenticating if it asks to)."""
        response = self._open("", "")
        if response is not None:
            response.close()

    # -- manifests ---------------------------------------------------------------------------------

    def _manifest(self, repository: str, reference: str) -> tuple[str, str, Any]:
        """(media type, digest, document) of a manifest, its bytes checked against its digest."""
        accept = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
        deadline = time.monotonic() + self.timeout
        what = f"manifest {repository}:{reference}"
        with self._open(repository, f"{repository}/manifests/{reference}", accept) as r:
            body = b"".join(read_body(r, MAX_MANIFEST_BYTES + 1, deadline, what))
            content_type = (r.headers.get("Content-Type") or "").split(";")[0].strip()
            header_digest = r.headers.get("Docker-Content-Digest")
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError(
                f"manifest {repository}:{reference} is larger than {MAX_MANIFEST_BYTES} bytes"
            )
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = reference if reference.startswith("sha256:") else header_digest
        if expected and expected != digest:
            raise DigestMismatchError(
                f"manifest {repository}@{expected} does not match its digest (the bytes received are {digest})"
            )
        try:
            doc = json.loads(body)
        except ValueError:
            raise RegistryError(f"manifest {repository}:{reference} is not JSON") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"manifest {repository}:{reference} is not a JSON object")
        media_type = str(doc.get("mediaType") or content_type)
        return media_type, digest, doc

    def resolve(self, repository: str, tag: str, arch: str) -> ImageManifest:
        """The image manifest of ``repository:tag`` for Lambda architecture ``arch``."""
        if arch not in PLATFORMS:
            raise ValueError(f"unknown architecture {arch!r}")
        media_type, digest, doc = self._manifest(repository, tag)
        if media_type in INDEX_TYPES or (not media_type and "manifests" in doc):
            chosen = select_platform(doc, arch)
            media_type, digest, doc = self._manifest(repository, chosen.digest)
        if media_type not in MANIFEST_TYPES and "layers" not in doc:
            raise RegistryError(f"{repository}:{tag} is a {media_type or 'untyped'} document, not an image")
        config = Descriptor.parse(doc.get("config"), f"{repository}:{tag} config")
        layers_doc = doc.get("layers")
        if not isinstance(layers_doc, list) or not layers_doc:
            raise RegistryError(f"{repository}:{tag} has no layers")
        layers = tuple(Descriptor.parse(d, f"{repository}:{tag} layer {i}") for i, d in enumerate(layers_doc))
        for i, layer in enumerate(layers):
            if layer.media_type not in LAYER_TYPES:
                raise RegistryError(
                    f"{repository}:{tag} layer {i} is {layer.media_type!r}, which lamina cannot unpack"
                )
        return ImageManifest(digest, config, layers)

    # -- blobs -------------------------------------------------------------------------------------

    def blob(self, repository: str, descriptor: Descriptor) -> Iterator[bytes]:
        """The blob's bytes in chunks (one more than its size, if the registry sends more); the caller
        checks the digest (see ``verified``)."""
        deadline = time.monotonic() + self.timeout + descriptor.size / MIN_BYTES_PER_S
        with self._open(repository, f"{repository}/blobs/{descriptor.digest}") as r:
            yield from read_body(r, descriptor.size + 1, deadline, f"blob {descriptor.digest}")


def verified(chunks: Iterator[bytes], descriptor: Descriptor, what: str) -> Iterator[bytes]:
    """Pass ``chunks`` through; at the end, raise ``DigestMismatchError`` unless they are exactly
    the descriptor's size and sha256 (a consumer must discard what it wrote if this raises)."""
    h = hashlib.sha256()
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > descriptor.size:
            raise DigestMismatchError(
                f"{what} {descriptor.digest} is larger than its {descriptor.size} bytes"
            )
        h.update(chunk)
        yield chunk
    if size != descriptor.size:
        raise DigestMismatchError(
            f"{what} {descriptor.digest}: {size} bytes received, {descriptor.size} expected"
        )
    if h.hexdigest() != descriptor.hex:
        raise DigestMismatchError(
            f"{what} {descriptor.digest} does not match its digest (the bytes received are sha256:{h.hexdigest()})"
        )


def _describe_http_error(exc: urllib.error.HTTPError) -> str:
    """``HTTP 404: MANIFEST_UNKNOWN: manifest unknown`` from the registry's error body, if any."""
    detail = ""
    try:
        doc = json.loads(exc.read(65536))
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            detail = f": {errors[0].get('code', '')}: {errors[0].get('message', '')}"
    except (ValueError, OSError):
        pass
    finally:
        exc.close()
    return f"HTTP {exc.code} {exc.reason}{detail}"
