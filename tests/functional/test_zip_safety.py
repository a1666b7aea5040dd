"""PublishLayerVersion against hostile and oversized zips, through the real server.

Every refusal must carry AWS's exact status, code and message, leave nothing
behind (no version, no blob, no temp file), cost bounded time and memory, and
leave the server serving. spec/layers.md, "Limits" and "The zip is checked
before anything is stored".
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.client
import io
import json
import os
import shutil
import stat
import struct
import subprocess
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip

MiB = 1 << 20
COULD_NOT_UNZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."
MAX_ZIPPED = 52_428_800
MAX_UNZIPPED = 262_144_000
MAX_REQUEST = 69_905_067
REQUEST_TOO_LARGE = f"Request must be smaller than {MAX_REQUEST} bytes for the PublishLayerVersion operation"
UNZIPPED_TOO_LARGE = f"Unzipped size must be smaller than {MAX_UNZIPPED} bytes"
PUBLISH_PATH = "/2018-10-31/layers/{}/versions"


def unique() -> str:
    return f"zip-{uuid.uuid4().hex[:10]}"


# --- building zips ----------------------------------------------------------------------------------


def link(target: str) -> tuple[bytes, int]:
    return target.encode(), stat.S_IFLNK | 0o777


def zip_of(entries: dict[str, bytes | tuple[bytes, int]]) -> bytes:
    """make_zip with per-entry (data, st_mode) for symlinks and the like."""
    files: dict[str, bytes | str] = {
        name: (v[0] if isinstance(v, tuple) else v) for name, v in entries.items()
    }
    modes = {name: v[1] for name, v in entries.items() if isinstance(v, tuple)}
    return make_zip(files, modes=modes)


def write_zeros(zf: zipfile.ZipFile, name: str, size: int) -> None:
    """A deflated entry of ``size`` zero bytes, written 1 MiB at a time."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o100644 << 16
    chunk = bytes(MiB)
    with zf.open(info, "w") as f:
        for _ in range(size // MiB):
            f.write(chunk)
        f.write(bytes(size % MiB))


def many_entries(n: int) -> bytes:
    """n central directory records (zip64 end records, as n > 65,535) sharing one empty local file.

    Written by hand: zipfile takes seconds to write 200,000 entries. The entry
    count check runs before anything else looks at the records.
    """
    name = b"python/x.py"
    # APPNOTE.TXT 4.3.7 and 4.3.12. Shared fields: flags, method (stored), time, date (1980-01-01),
    # CRC and sizes (an empty file), name length, extra length.
    common = (0, 0, 0, 0x21, 0, 0, 0, len(name), 0)
    local = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, *common) + name
    # Made by 2.0 on unix, needs 2.0; then comment length, disk, internal attributes, mode, offset 0.
    central = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, *common, 0, 0, 0, 0o100644 << 16, 0)
    central += name
    directory = central * n
    end64_at = len(local) + len(directory)
    return (
        local
        + directory
        + struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(directory), len(local))
        + struct.pack("<4sLQL", b"PK\x06\x07", 0, end64_at, 1)
        + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(directory), len(local), 0)
    )


class BigZips:
    """The large test zips, each built on first use and kept (as a file) for the module."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _zeros(self, filename: str, sizes: dict[str, int]) -> Path:
        path = self.root / filename
        with zipfile.ZipFile(path, "w") as zf:
            for name, size in sizes.items():
                write_zeros(zf, name, size)
        return path

    @functools.cached_property
    def bomb(self) -> Path:
        """300 MiB of zeros deflated to ~300 KB: over 1000x amplification."""
        return self._zeros("bomb.zip", {"python/bomb.bin": 300 * MiB})

    @functools.cached_property
    def at_unzipped_limit(self) -> Path:
        """Exactly 262,144,000 bytes unzipped, in two entries."""
        return self._zeros("at-limit.zip", {"python/a.bin": MAX_UNZIPPED - MiB, "python/b.bin": MiB})

    @functools.cached_property
    def just_over_unzipped_limit(self) -> Path:
        """One byte more than the limit: the at-limit zip plus a one-byte file."""
        path = self.root / "just-over.zip"
        path.write_bytes(self.at_unzipped_limit.read_bytes())
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr(zipfile.ZipInfo("python/c.bin", date_time=(2024, 1, 1, 0, 0, 0)), b"\0")
        return path

    @functools.cached_property
    def over_zipped_limit(self) -> Path:
        """A valid zip one byte over 52,428,800: random (incompressible) bytes, stored."""
        path = self.root / "over-50mb.zip"
        path.write_bytes(random_zip(MAX_ZIPPED + 1))
        return path


def random_zip(size: int) -> bytes:
    """A valid zip of exactly ``size`` bytes: one stored entry of random bytes."""
    name = "python/random.bin"
    overhead = (30 + len(name)) + (46 + len(name)) + 22  # local header, central header, end record
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), os.urandom(size - overhead))
    data = buf.getvalue()
    assert len(data) == size
    return data


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> BigZips:
    return BigZips(tmp_path_factory.mktemp("bigzips"))


# --- checking the server ---------------------------------------------------------------------------


def stored_blobs(server: LaminaServer) -> set[str]:
    root = server.data_dir / "blobs"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def assert_nothing_created(server: LaminaServer, lam: Any, name: str, blobs_before: set[str]) -> None:
    assert lam.list_layer_versions(LayerName=name)["LayerVersions"] == []
    assert name not in [layer["LayerName"] for layer in lam.list_layers()["Layers"]]
    assert stored_blobs(server) == blobs_before
    assert list((server.data_dir / "blobs" / "tmp").iterdir()) == []


def assert_still_serving(lam: Any, name: str) -> None:
    """A normal publish right after works, and gets version 1: the refusal used no number."""
    assert lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip()})["Version"] == 1


def error(excinfo: Any) -> tuple[int, str, str, dict[str, Any]]:
    r = excinfo.value.response
    extra = {k: v for k, v in r.items() if k not in ("Error", "ResponseMetadata")}
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"], extra


def invalid(message: str) -> tuple[int, str, str, dict[str, Any]]:
    return 400, "InvalidParameterValueException", message, {"Type": "User", "message": message}


def escapes(detail: str) -> tuple[int, str, str, dict[str, Any]]:
    return invalid(f"{COULD_NOT_UNZIP} {detail}")


def proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


# --- refusals ---------------------------------------------------------------------------------------

Build = Callable[[BigZips], bytes]

REFUSED: list[Any] = [
    pytest.param(lambda b: b"this is not a zip file at all", invalid(COULD_NOT_UNZIP), id="not-a-zip"),
    pytest.param(lambda b: b"", invalid(COULD_NOT_UNZIP), id="empty"),
    pytest.param(lambda b: make_zip()[:-30], invalid(COULD_NOT_UNZIP), id="truncated"),
    pytest.param(
        lambda b: zip_of({"python/ok.py": b"x = 1\n", "../evil.py": b"x = 2\n"}),
        escapes("Entry '../evil.py' points outside the archive root."),
        id="dotdot",
    ),
    pytest.param(
        lambda b: zip_of({"python/../../etc/evil.py": b"x = 2\n"}),
        escapes("Entry 'python/../../etc/evil.py' points outside the archive root."),
        id="dotdot-deep",
    ),
    pytest.param(
        lambda b: zip_of({"/etc/cron.d/evil": b"* * * * * root sh\n"}),
        escapes("Entry '/etc/cron.d/evil' has an absolute path."),
        id="absolute-path",
    ),
    pytest.param(
        lambda b: zip_of({"python/passwd": link("/etc/passwd")}),
        escapes("Entry 'python/passwd' is a symlink to '/etc/passwd', outside the archive root."),
        id="symlink-absolute",
    ),
    pytest.param(
        lambda b: zip_of({"python/etc": link("../../etc")}),
        escapes("Entry 'python/etc' is a symlink to '../../etc', outside the archive root."),
        id="symlink-dotdot",
    ),
    pytest.param(
        lambda b: zip_of({"python/lib": link("real"), "python/lib/evil.py": b"x = 1\n"}),
        escapes("Entry 'python/lib/evil.py' lies below the symlink 'python/lib'."),
        id="entry-below-symlink",
    ),
    pytest.param(
        lambda b: b.just_over_unzipped_limit.read_bytes(),
        invalid(UNZIPPED_TOO_LARGE),
        id="unzipped-just-over-limit",
    ),
    pytest.param(
        lambda b: many_entries(200_001),
        escapes("The archive declares 200001 entries; at most 200000 are accepted."),
        id="too-many-entries",
    ),
    # A zip over 52,428,800 bytes cannot reach the zip check: base64 makes its
    # request body at least 69,905,068 bytes, one over the request limit.
    pytest.param(
        lambda b: b.over_zipped_limit.read_bytes(),
        (413, "RequestEntityTooLargeException", REQUEST_TOO_LARGE, {}),
        id="zipped-over-50MB",
    ),
]


@pytest.mark.parametrize(("build", "expected"), REFUSED)
def test_refused(
    server: LaminaServer, lam: Any, big: BigZips, build: Build, expected: tuple[int, str, str, dict[str, Any]]
) -> None:
    data = build(big)
    name = unique()
    before = stored_blobs(server)
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.publish_layer_version(LayerName=name, Content={"ZipFile": data})
    assert error(e) == expected
    assert_nothing_created(server, lam, name, before)
    assert_still_serving(lam, name)


def test_zip_bomb_refused_fast_in_bounded_memory(tmp_path: Path, big: BigZips) -> None:
    data = big.bomb.read_bytes()
    assert len(data) < MiB  # 300 MiB inside: a real bomb
    # A server of its own: one that already served big requests keeps that
    # memory resident, and a peak reached inside it would not show.
    srv = LaminaServer(tmp_path / "data")
    try:
        lam = client(srv)
        name = unique()
        before = stored_blobs(srv)
        lam.list_layers()  # warm the connection and the server's code paths
        pid = srv.proc.pid
        # Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS (proc(5)).
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        rss_before = proc_status_kib(pid, "VmRSS")
        start = time.monotonic()
        with pytest.raises(lam.exceptions.ClientError) as e:
            lam.publish_layer_version(LayerName=name, Content={"ZipFile": data})
        elapsed = time.monotonic() - start
        growth_mib = (proc_status_kib(pid, "VmHWM") - rss_before) / 1024
        print(
            f"bomb refused in {elapsed:.2f}s; server RSS {rss_before / 1024:.0f} MiB, peak +{growth_mib:.1f} MiB"
        )
        assert error(e) == invalid(UNZIPPED_TOO_LARGE)
        assert elapsed < 20
        # Inflating into memory would cost >= 250 MiB; chunked counting costs a few MiB.
        assert growth_mib < 64
        assert_nothing_created(srv, lam, name, before)
        assert_still_serving(lam, name)
    finally:
        srv.stop()


def test_exactly_at_unzipped_limit_is_accepted(lam: Any, big: BigZips) -> None:
    r = lam.publish_layer_version(LayerName=unique(), Content={"ZipFile": big.at_unzipped_limit.read_bytes()})
    assert r["Version"] == 1


# --- the request body limit, over raw HTTP -----------------------------------------------------------


def publish_body(zip_bytes: bytes, size: int) -> bytes:
    """A PublishLayerVersion JSON body of exactly ``size`` bytes (padded with JSON whitespace)."""
    body = b'{"Content":{"ZipFile":"' + base64.b64encode(zip_bytes) + b'"}}'
    assert len(body) <= size, (len(body), size)
    return body[:-1] + b" " * (size - len(body)) + b"}"


def signed_post(
    server: LaminaServer, path: str, body: bytes, *, chunked: bool
) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` with a real SigV4 signature, by http.client (optionally chunked, no Content-Length)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=server.url + path, data=body)
    SigV4Auth(Credentials("test", "test"), "lambda", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        if chunked:

            def chunks() -> Any:
                view = memoryview(body)
                for i in range(0, len(view), 4 * MiB):
                    yield view[i : i + 4 * MiB]

            conn.request("POST", path, body=chunks(), headers=headers, encode_chunked=True)
        else:
            conn.request("POST", path, body=body, headers={**headers, "Content-Length": str(len(body))})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def largest_zip() -> bytes:
    """The largest zip whose publish body fits the limit: base64 is 4 bytes per 3, plus 26 of JSON."""
    size = (MAX_REQUEST - 26) // 4 * 3
    assert size < MAX_ZIPPED
    return random_zip(size)


@pytest.mark.parametrize(
    ("size", "chunked", "status"),
    [
        pytest.param(MAX_REQUEST, False, 201, id="at-limit"),
        pytest.param(MAX_REQUEST + 1, False, 413, id="one-over"),
        pytest.param(MAX_REQUEST + 1, True, 413, id="one-over-chunked"),
    ],
)
def test_request_body_limit(
    server: LaminaServer, lam: Any, largest_zip: bytes, size: int, chunked: bool, status: int
) -> None:
    name = unique()
    before = stored_blobs(server)
    got_status, headers, body = signed_post(
        server, PUBLISH_PATH.format(name), publish_body(largest_zip, size), chunked=chunked
    )
    assert got_status == status, body[:500]
    if status == 201:
        published = json.loads(body)
        assert published["Version"] == 1
        assert published["Content"]["CodeSize"] == len(largest_zip)
        assert (
            published["Content"]["CodeSha256"]
            == base64.b64encode(hashlib.sha256(largest_zip).digest()).decode()
        )
        return
    assert headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
    assert json.loads(body)["message"] == REQUEST_TOO_LARGE
    assert_nothing_created(server, lam, name, before)
    assert_still_serving(lam, name)


# --- what is accepted is kept exactly ------------------------------------------------------------------


def test_unix_modes_survive_publish_and_download(lam: Any, tmp_path: Path) -> None:
    data = zip_of(
        {
            "bin/": (b"", stat.S_IFDIR | 0o755),
            "bin/tool": (b"#!/bin/sh\necho tool ran\n", stat.S_IFREG | 0o755),
            "python/data.txt": (b"plain\n", stat.S_IFREG | 0o644),
            "python/tool": link("../bin/tool"),
        }
    )
    r = lam.publish_layer_version(LayerName=unique(), Content={"ZipFile": data})
    with urllib.request.urlopen(r["Content"]["Location"]) as resp:
        downloaded = resp.read()
    assert downloaded == data  # byte for byte: nothing rewritten
    modes = {i.filename: i.external_attr >> 16 for i in zipfile.ZipFile(io.BytesIO(downloaded)).infolist()}
    assert modes == {
        "bin/": stat.S_IFDIR | 0o755,
        "bin/tool": stat.S_IFREG | 0o755,
        "python/data.txt": stat.S_IFREG | 0o644,
        "python/tool": stat.S_IFLNK | 0o777,
    }
    # And an ordinary extractor (Info-ZIP, which restores unix modes) gets a working tool.
    if shutil.which("unzip") is None:
        pytest.skip("Info-ZIP unzip not installed (make setup installs it as root)")
    (tmp_path / "layer.zip").write_bytes(downloaded)
    subprocess.run(["unzip", "-q", "layer.zip", "-d", "opt"], cwd=tmp_path, check=True)
    opt = tmp_path / "opt"
    assert stat.S_IMODE((opt / "bin/tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((opt / "python/data.txt").stat().st_mode) == 0o644
    assert os.readlink(opt / "python/tool") == "../bin/tool"
    ran = subprocess.run([opt / "python/tool"], capture_output=True, text=True, check=True)
    assert ran.stdout == "tool ran\n"
