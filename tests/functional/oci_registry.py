"""A small OCI registry for tests, and test images built here (no network, no container tools).

``OciRegistry`` serves the distribution API's GET endpoints on 127.0.0.1: ``/v2/``, manifests by tag
or digest and blobs by digest, optionally behind the anonymous bearer token flow public.ecr.aws
uses, optionally answering blobs with a redirect to a "CDN" path that, like a presigned S3 URL,
refuses a request still carrying the registry's ``Authorization``. Images are built by
``layer()`` / ``build_image()``; ``busybox_image()`` makes a runnable ``provided.al2023``-like one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
GOARCH = {"x86_64": "amd64", "arm64": "arm64"}
BUSYBOX = "/bin/busybox"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- layers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One tar member: kind is file, dir, symlink, hardlink, whiteout, opaque, chardev or fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""


def file(name: str, data: bytes | str = b"", mode: int = 0o644) -> Entry:
    return Entry(name, "file", data.encode() if isinstance(data, str) else data, mode)


def directory(name: str, mode: int = 0o755) -> Entry:
    return Entry(name, "dir", mode=mode)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, "symlink", mode=0o777, target=target)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", target=target)


def whiteout(path: str) -> Entry:
    """``.wh.<name>``: deletes ``path`` of the layers below."""
    parent, _, base = path.rpartition("/")
    return Entry(f"{parent}/.wh.{base}" if parent else f".wh.{base}")


def opaque(directory_path: str) -> Entry:
    """``.wh..wh..opq``: hides what the layers below have in ``directory_path``."""
    return Entry(f"{directory_path}/.wh..wh..opq")


def chardev(name: str) -> Entry:
    return Entry(name, "chardev", mode=0o666)


def layer(entries: Iterable[Entry], *, compress: bool = True) -> bytes:
    """A layer tar (gzip-compressed by default) holding ``entries`` in order, owned by root."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mode, info.mtime, info.uid, info.gid = e.mode, 1_700_000_000, 0, 0
            payload = None
            if e.kind == "file":
                info.size, payload = len(e.data), io.BytesIO(e.data)
            elif e.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif e.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e.target
            elif e.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, e.target
            elif e.kind == "chardev":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif e.kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:
                raise ValueError(f"unknown entry kind {e.kind!r}")
            tar.addfile(info, payload)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


# -- images ---------------------------------------------------------------------------------------


@dataclass
class Image:
    """One architecture's image: manifest, config and layer blobs."""

    arch: str
    media_type: str
    config: bytes
    layers: list[bytes]
    manifest: bytes = b""
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def build_image(layers: list[bytes], arch: str = "x86_64", *, docker: bool = False) -> Image:
    """An image manifest over ``layers`` (bottom first) with a minimal config for ``arch``: OCI media
    types, or ``docker=True`` Docker's (schema 2), as older images in public.ecr.aws have."""
    media_type, config_type, layer_type = (
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER) if docker else (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
    )
    config = json.dumps(
        {
            "architecture": GOARCH[arch],
            "os": "linux",
            "config": {"Entrypoint": ["/lambda-entrypoint.sh"], "WorkingDir": "/var/task"},
            "rootfs": {"type": "layers", "diff_ids": [sha256(gzip.decompress(x)) for x in layers]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": sha256(x), "size": len(x)} for x in layers],
        }
    ).encode()
    blobs = {sha256(config): config, **{sha256(x): x for x in layers}}
    return Image(arch, media_type, config, layers, manifest, blobs)


def index_of(images: Iterable[Image]) -> bytes:
    """An image index (OCI's; Docker's manifest list for Docker images) naming each image's platform,
    plus an attestation entry (as BuildKit pushes them, platform unknown/unknown) a client must skip."""
    images = list(images)
    docker = images[0].media_type == DOCKER_MANIFEST
    manifests: list[dict[str, Any]] = [
        {
            "mediaType": img.media_type,
            "digest": img.digest,
            "size": len(img.manifest),
            "platform": {
                "architecture": GOARCH[img.arch],
                "os": "linux",
                **({"variant": "v8"} if img.arch == "arm64" else {}),
            },
        }
        for img in images
    ]
    manifests.append(
        {
            "mediaType": OCI_MANIFEST,
            "digest": "sha256:" + "0" * 64,
            "size": 2,
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
        }
    )
    index_type = DOCKER_LIST if docker else OCI_INDEX
    return json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": manifests}).encode()


def is_static_elf(binary: bytes) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP): it needs no libc of the host."""
    if binary[:4] != b"\x7fELF" or binary[4] != 2:  # ELFCLASS64 (both Lambda architectures)
        return False
    order = "little" if binary[5] == 1 else "big"
    phoff = int.from_bytes(binary[32:40], order)
    phentsize = int.from_bytes(binary[54:56], order)
    phnum = int.from_bytes(binary[56:58], order)
    types = [
        int.from_bytes(binary[phoff + i * phentsize : phoff + i * phentsize + 4], order) for i in range(phnum)
    ]
    return 3 not in types  # PT_INTERP


def busybox_available() -> bool:
    """Debian's static busybox (package ``busybox-static``) is installed."""
    try:
        with open(BUSYBOX, "rb") as f:
            return is_static_elf(f.read())
    except OSError:
        return False


def busybox_applets() -> list[str]:
    return sorted(
        name for name in subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True).stdout.split()
    )


def busybox_rootfs_entries() -> list[Entry]:
    """A ``provided.al2023``-like root filesystem of Debian's static busybox alone: ``/bin/busybox``,
    its applets as symlinks in ``/bin`` (``/bin/sh`` among them), the directories Lambda mounts over
    and nothing of the host's. Needs the ``busybox-static`` package (``make setup`` installs it)."""
    if not busybox_available():
        raise FileNotFoundError(
            f"{BUSYBOX} is missing or not static: install Debian's busybox-static package"
        )
    with open(BUSYBOX, "rb") as f:
        binary = f.read()
    dirs = ["bin", "dev", "etc", "opt", "proc", "sys", "tmp", "var", "var/lang", "var/runtime", "var/task"]
    entries = [directory(d, 0o1777 if d == "tmp" else 0o755) for d in dirs]
    entries.append(file("bin/busybox", binary, 0o755))
    entries += [symlink(f"bin/{a}", "busybox") for a in busybox_applets() if a != "busybox"]
    entries.append(
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nsbx_user1051:x:993:990::/tmp:/sbin/nologin\n")
    )
    entries.append(file("etc/group", "root:x:0:\nsbx_user1051:x:990:\n"))
    entries.append(file("etc/os-release", 'NAME="lamina test image"\nID=lamina-busybox\n'))
    return entries


def busybox_image(arch: str = "x86_64") -> Image:
    """A runnable one-layer image of :func:`busybox_rootfs_entries` (busybox is the host's own, so
    ``arch`` should be the host's)."""
    return build_image([layer(busybox_rootfs_entries())], arch)


# -- the registry ---------------------------------------------------------------------------------


class OciRegistry:
    """A registry on 127.0.0.1:<free port> serving what ``push`` gave it. ``auth``: the anonymous
    token flow (``/token``) guards every repository path; ``redirect_blobs``: blobs answer 307 to
    ``/cdn/<digest>``, which refuses a request with ``Authorization``. ``requests`` logs the paths
    asked for, ``corrupt(digest)`` makes a blob's bytes wrong; ``raw[path]`` answers ``path`` (query
    ignored) with whatever the function writes to the handler: a hostile registry's answers."""

    def __init__(self, *, auth: bool = True, redirect_blobs: bool = True) -> None:
        self.auth = auth
        self.redirect_blobs = redirect_blobs
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.requests: list[str] = []
        self.tokens_issued: list[str] = []
        self.raw: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.lock = threading.Lock()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with registry.lock:
                    registry.requests.append(self.path)
                registry.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> OciRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- content --

    def push(self, repository: str, tag: str, images: list[Image], *, index: bool = True) -> None:
        """``repository:tag`` as an index of ``images`` (or, ``index=False``, the one image itself)."""
        for img in images:
            self.blobs.update(img.blobs)
            self.manifests[(repository, img.digest)] = (img.media_type, img.manifest)
        if index:
            body = index_of(images)
            index_type = json.loads(body)["mediaType"]
            self.manifests[(repository, tag)] = (index_type, body)
            self.manifests[(repository, sha256(body))] = (index_type, body)
        else:
            self.manifests[(repository, tag)] = (images[0].media_type, images[0].manifest)

    def corrupt(self, digest: str) -> None:
        data = bytearray(self.blobs[digest])
        data[len(data) // 2] ^= 0xFF
        self.blobs[digest] = bytes(data)

    def blob_requests(self) -> list[str]:
        return [p for p in self.requests if "/blobs/" in p]

    # -- HTTP --

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        path = url.path
        if path in self.raw:
            return self.raw[path](h)
        if path == "/token":
            scope = parse_qs(url.query).get("scope", [""])[0]
            service = parse_qs(url.query).get("service", [""])[0]
            if service != "test-registry" or not scope.endswith(":pull"):
                return self._error(h, 400, "DENIED", "bad token request")
            token = f"token-for-{scope}"
            self.tokens_issued.append(token)
            return self._send(h, 200, json.dumps({"token": token}).encode(), "application/json")
        if path.startswith("/cdn/"):
            if h.headers.get("Authorization"):
                return self._error(h, 400, "InvalidArgument", "Only one auth mechanism allowed")
            data = self.blobs.get(path[len("/cdn/") :])
            if data is None:
                return self._error(h, 404, "BLOB_UNKNOWN", "blob unknown to registry")
            return self._send(h, 200, data, "application/octet-stream")
        if path == "/v2/" or path == "/v2":
            if self.auth and not h.headers.get("Authorization"):
                return self._challenge(h, "")
            return self._send(h, 200, b"{}", "application/json")
        if not path.startswith("/v2/"):
            return self._error(h, 404, "NOT_FOUND", "not found")
        rest = path[len("/v2/") :]
        for kind in ("/manifests/", "/blobs/"):
            if kind in rest:
                repository, _, ref = rest.rpartition(kind)
                break
        else:
            return self._error(h, 404, "NOT_FOUND", "not found")
        if self.auth and h.headers.get("Authorization") != f"Bearer token-for-repository:{repository}:pull":
            return self._challenge(h, repository)
        if kind == "/manifests/":
            found = self.manifests.get((repository, ref))
            if found is None:
                return self._error(h, 404, "MANIFEST_UNKNOWN", "manifest unknown")
            media_type, body = found
            accepted = h.headers.get("Accept", "")
            if media_type not in accepted:
                return self._error(h, 404, "MANIFEST_UNKNOWN", f"no {media_type} in Accept")
            return self._send(h, 200, body, media_type, {"Docker-Content-Digest": sha256(body)})
        if ref not in self.blobs:
            return self._error(h, 404, "BLOB_UNKNOWN", "blob unknown to registry")
        if self.redirect_blobs:
            h.send_response(307)
            h.send_header("Location", f"/cdn/{ref}")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        return self._send(h, 200, self.blobs[ref], "application/octet-stream")

    def _challenge(self, h: BaseHTTPRequestHandler, repository: str) -> None:
        scope = f',scope="repository:{repository}:pull"' if repository else ""
        realm = f"{self.url}/token"
        header = f'Bearer realm="{realm}",service="test-registry"{scope}'
        self._error(h, 401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": header})

    def _error(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._send(h, status, body, "application/json", headers)

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)


def install_busybox_runtime(data_dir: Path, runtime: str = "provided.al2023", arch: str = "x86_64") -> Path:
    """Install :func:`busybox_image` as ``runtime``'s image in a lamina data directory (through a
    registry of its own, as ``lamina runtime pull`` would); return the root filesystem."""
    from lamina.runtime.images import ImageStore

    repository, _, tag = image_name_of(runtime)
    with OciRegistry() as reg:
        reg.push(repository, tag, [busybox_image(arch)])
        return ImageStore(data_dir / "images").pull(runtime, arch, reg.url)


def image_name_of(runtime: str) -> tuple[str, str, str]:
    """(repository, ':', tag) of a runtime's AWS image, e.g. ``lambda/provided``, ``al2023``."""
    from lamina.runtime.images import image_name

    name = image_name(runtime)
    return name.repository, ":", name.tag
