"""A hostile registry against ``lamina runtime pull``: answers that are not HTTP, redirects away from
http(s), bodies that drip, sizes and lengths that lie, manifests that loop, two pulls at once. Each
pull must fail with an ``ImageError`` (or succeed, for the concurrent one) and leave nothing behind."""

from __future__ import annotations

import gzip
import io
import json
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from oci_registry import OciRegistry, build_image, file, layer, sha256

from lamina.runtime.images import ImageError, ImageStore
from lamina.runtime.oci import Descriptor, RegistryClient, RegistryError

REPO, TAG, RUNTIME = "lambda/provided", "al2023", "provided.al2023"
IMAGE = build_image([layer([file("bootstrap", "#!/bin/sh\n" + "x" * 4000, 0o755)])])
LAYER = sha256(IMAGE.layers[0])
LAYER_PATH = f"/v2/{REPO}/blobs/{LAYER}"
TAG_PATH = f"/v2/{REPO}/manifests/{TAG}"


@pytest.fixture
def registry() -> Iterator[OciRegistry]:
    with OciRegistry(auth=False, redirect_blobs=False) as reg:
        reg.push(REPO, TAG, [IMAGE], index=False)
        yield reg


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def assert_nothing_installed(store: ImageStore) -> None:
    assert store.installed() == []
    assert sorted(p.name for p in store.rootfs_dir.iterdir()) == [".tmp"]
    assert list(store.staging.iterdir()) == [] and list(store.blobs.tmp.iterdir()) == []
    assert not store.blobs.exists(LAYER.split(":")[1])


def raw(data: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(data)
        h.close_connection = True

    return answer


def drip(body: bytes, every_s: float = 0.05) -> Callable[[BaseHTTPRequestHandler], None]:
    """200 with ``body``, one byte at a time: never a pause long enough for a socket timeout."""

    def answer(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                time.sleep(every_s)
        except OSError:
            pass  # the client gave up: what it should do
        h.close_connection = True

    return answer


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"HTTP/1.1 abc\r\n\r\n", id="bad-status-line"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", id="header-too-long"),
        pytest.param(b"SSH-2.0-OpenSSH\r\n", id="not-http"),
    ],
)
@pytest.mark.parametrize("path", [TAG_PATH, LAYER_PATH])
def test_answers_that_are_not_http_are_registry_errors(
    registry: OciRegistry, store: ImageStore, path: str, answer: bytes
) -> None:
    registry.raw[path] = raw(answer)
    with pytest.raises(ImageError, match="cannot pull .*(not HTTP|cannot reach)"):
        store.pull(RUNTIME, "x86_64", registry.url)
    assert_nothing_installed(store)


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher"])
def test_redirects_leave_http_never(registry: OciRegistry, store: ImageStore, scheme: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        target = f"{scheme}://127.0.0.1:{port}/{LAYER}" if scheme != "file" else "file:///etc/passwd"

        def redirect(h: BaseHTTPRequestHandler) -> None:
            h.send_response(307)
            h.send_header("Location", target)
            h.send_header("Content-Length", "0")
            h.end_headers()

        registry.raw[LAYER_PATH] = redirect
        with pytest.raises(ImageError, match="not an http|HTTP 307"):
            store.pull(RUNTIME, "x86_64", registry.url)
        with pytest.raises(TimeoutError):
            listener.accept()  # urllib's FTP handler would have connected here
    assert_nothing_installed(store)


def test_a_dripping_manifest_meets_a_deadline(registry: OciRegistry) -> None:
    # 0.05 s a byte, a 0.5 s timeout: the socket never times out, only a deadline ends it (some
    # 20 s of body otherwise).
    _, body = registry.manifests[(REPO, TAG)]
    registry.raw[TAG_PATH] = drip(body)
    client = RegistryClient(registry.url, timeout=0.5)
    with pytest.raises(RegistryError, match="sends too slowly"):
        client.resolve(REPO, TAG, "x86_64")


def test_a_dripping_blob_meets_a_deadline(registry: OciRegistry) -> None:
    blob = IMAGE.layers[0]
    registry.raw[LAYER_PATH] = drip(blob)
    client = RegistryClient(registry.url, timeout=0.5)
    with pytest.raises(RegistryError, match="sends too slowly"):
        b"".join(client.blob(REPO, Descriptor("", LAYER, len(blob))))


def test_layers_declared_larger_than_an_image_are_not_downloaded(
    registry: OciRegistry, store: ImageStore
) -> None:
    manifest = json.loads(IMAGE.manifest)
    manifest["layers"] = [
        dict(manifest["layers"][0], size=6 * 1000**3),
        dict(manifest["layers"][0], size=6 * 1000**3),
    ]
    body = json.dumps(manifest).encode()
    registry.manifests[(REPO, TAG)] = (IMAGE.media_type, body)
    with pytest.raises(ImageError, match="more than Lambda's 10000000000-byte limit"):
        store.pull(RUNTIME, "x86_64", registry.url)
    assert registry.blob_requests() == []
    assert_nothing_installed(store)


@pytest.mark.parametrize("length", ["999999", "10"], ids=["longer", "shorter"])
def test_content_length_lies_are_caught_by_the_digest(
    registry: OciRegistry, store: ImageStore, length: str
) -> None:
    def lie(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", length)
        h.end_headers()
        h.wfile.write(IMAGE.layers[0][:100])
        h.close_connection = True

    registry.raw[LAYER_PATH] = lie
    with pytest.raises(ImageError, match="bytes received|broke off|does not match"):
        store.pull(RUNTIME, "x86_64", registry.url)
    assert_nothing_installed(store)


def test_a_blob_longer_than_its_descriptor_is_cut_off(registry: OciRegistry, store: ImageStore) -> None:
    registry.blobs[LAYER] = IMAGE.layers[0] + b"\0" * (8 << 20)
    with pytest.raises(ImageError, match="is larger than its"):
        store.pull(RUNTIME, "x86_64", registry.url)
    assert_nothing_installed(store)


def test_an_index_that_names_itself_or_another_index_is_refused(
    registry: OciRegistry, store: ImageStore
) -> None:
    inner = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "digest": sha256(b"x"),
                    "size": 1,
                    "platform": {"os": "linux", "architecture": "amd64"},
                }
            ],
        }
    ).encode()
    outer = inner.replace(sha256(b"x").encode(), sha256(inner).encode())
    index_type = "application/vnd.oci.image.index.v1+json"
    registry.manifests[(REPO, sha256(inner))] = (index_type, inner)
    registry.manifests[(REPO, TAG)] = (index_type, outer)
    with pytest.raises(ImageError, match="not an image"):
        store.pull(RUNTIME, "x86_64", registry.url)
    assert registry.requests.count(f"/v2/{REPO}/manifests/{sha256(inner)}") == 1
    assert_nothing_installed(store)


def test_two_pulls_of_one_image_at_once(registry: OciRegistry, tmp_path: Path) -> None:
    # Two processes (two ``lamina runtime pull``): the blob store and the tree rename decide, each
    # pull succeeds, and one complete tree remains, nothing half-built.
    registry.raw[LAYER_PATH] = drip(IMAGE.layers[0], every_s=0)
    code = (
        "import sys; from pathlib import Path; from lamina.runtime.images import ImageStore; "
        f"print(ImageStore(Path(sys.argv[1])).pull({RUNTIME!r}, 'x86_64', sys.argv[2]))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "images"), registry.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert results[0][0] == results[1][0]
    store = ImageStore(tmp_path / "images")
    tree = store.rootfs(RUNTIME, "x86_64")
    assert tree is not None and (tree / "bootstrap").read_text().startswith("#!/bin/sh\n")
    assert sorted(p.name for p in store.rootfs_dir.iterdir()) == [".tmp", tree.name]
    assert list(store.staging.iterdir()) == [] and list(store.blobs.tmp.iterdir()) == []


def test_a_pull_killed_while_unpacking_leaves_nothing_a_function_would_use(tmp_path: Path) -> None:
    # 512 MB of zeros (half a megabyte gzipped): the unpacking takes long enough to be caught in
    # the act; the process is killed with its tree half-written in the staging directory.
    zeros = tarfile.TarInfo("var/task/zeros")
    zeros.size = 512 << 20
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w|") as t:
        t.addfile(zeros, io.BufferedReader(Zeros(zeros.size)))
    image = build_image([layer([file("bootstrap", "#!/bin/sh\n", 0o755)]), buf.getvalue()])
    code = (
        "import sys; from pathlib import Path; from lamina.runtime.images import ImageStore; "
        f"ImageStore(Path(sys.argv[1])).pull({RUNTIME!r}, 'x86_64', sys.argv[2])"
    )
    images = tmp_path / "images"
    with OciRegistry(auth=False, redirect_blobs=False) as reg:
        reg.push(REPO, TAG, [image], index=False)
        proc = subprocess.Popen([sys.executable, "-c", code, str(images), reg.url])
        try:
            staging = images / "rootfs" / ".tmp"
            while proc.poll() is None and not (staging.is_dir() and any(staging.glob("*/var/task/zeros"))):
                time.sleep(0.001)
            if proc.poll() is not None:
                pytest.skip("the pull finished before it could be killed")
            proc.kill()
        finally:
            proc.wait()
        assert any(staging.iterdir())  # the half tree is there...
        store = ImageStore(images)  # ... until the next ImageStore (the next command, the server)
        assert store.rootfs(RUNTIME, "x86_64") is None and store.installed() == []
        assert list(store.staging.iterdir()) == [] and list(store.blobs.tmp.iterdir()) == []
        tree = store.pull(RUNTIME, "x86_64", reg.url)
    assert (tree / "var/task/zeros").stat().st_size == 512 << 20


class Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n
