"""The big transfers as ``aws s3`` users make them, against the real server: ``cp`` of a 200 MB file
up (multipart) and back byte-identical with the server's memory bounded, ``sync`` of a directory
tree up and down (a second sync sends nothing, a changed file alone goes again, ``--delete``), and
``ls --recursive --human-readable --summarize``."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client, run_aws
from s3_kit import PATH_STYLE

MIB = 1024 * 1024
CLI_PART = 8 * MIB  # the AWS CLI's default multipart_chunksize (and multipart_threshold)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina") / "data", lambda_role=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3(server: LaminaServer) -> Any:
    return client(server, "s3", s3=PATH_STYLE)


_counter = iter(range(1_000_000))


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"transfers-{next(_counter)}-{os.getpid()}"
    s3.create_bucket(Bucket=name)
    return name


def aws(server: LaminaServer, *args: str, cwd: Path) -> str:
    r = run_aws(server, "s3", *args, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout


def write_numbered(path: Path, size: int) -> str:
    """``size`` incompressible bytes, quickly: one random MiB, each copy numbered (so no two
    parts are alike and a part out of place shows); their SHA-256."""
    block = os.urandom(MIB)
    sha = hashlib.sha256()
    with path.open("wb") as f:
        written = 0
        i = 0
        while written < size:
            chunk = (i.to_bytes(8, "big") + block[8:])[: size - written]
            sha.update(chunk)
            f.write(chunk)
            written += len(chunk)
            i += 1
    return sha.hexdigest()


def sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            sha.update(chunk)
    return sha.hexdigest()


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_cp_200mb_multipart_round_trip(server: LaminaServer, s3: Any, bucket: str, tmp_path: Path) -> None:
    size = 200 * MIB + 4321
    path = tmp_path / "big.bin"
    sha = write_numbered(path, size)
    before = peak_rss_kb(server.proc.pid)

    up = aws(server, "cp", "--no-progress", "big.bin", f"s3://{bucket}/dir/big.bin", cwd=tmp_path)
    assert up.splitlines() == [f"upload: ./big.bin to s3://{bucket}/dir/big.bin"]
    head = s3.head_object(Bucket=bucket, Key="dir/big.bin")
    assert head["ContentLength"] == size
    md5s = []
    with path.open("rb") as f:
        while part := f.read(CLI_PART):
            md5s.append(hashlib.md5(part).digest())
    assert len(md5s) == 26
    assert head["ETag"] == f'"{hashlib.md5(b"".join(md5s)).hexdigest()}-26"'
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads") is None

    back = tmp_path / "back.bin"
    down = aws(server, "cp", "--no-progress", f"s3://{bucket}/dir/big.bin", "back.bin", cwd=tmp_path)
    assert down.splitlines() == [f"download: s3://{bucket}/dir/big.bin to ./back.bin"]
    assert back.stat().st_size == size
    assert sha256_of(back) == sha

    growth_mb = (peak_rss_kb(server.proc.pid) - before) / 1024
    assert growth_mb < 100, f"server peak RSS grew by {growth_mb:.0f} MB for a 200 MB object"


def make_tree(root: Path) -> dict[str, bytes]:
    """A small project tree: nested directories, an empty file, names with spaces and non-ASCII
    characters, and one file over the CLI's multipart threshold. Its files by relative path."""
    files = {
        "README.md": b"# tree\n",
        "empty.txt": b"",
        "src/app.py": b"print('hello')\n" * 100,
        "src/pkg/__init__.py": b"",
        "src/pkg/mod.py": b"x = 1\n" * 1000,
        "assets/with space.txt": b"spaced\n",
        "assets/caf\u00e9/menu \u00fcber.txt": "caf\u00e9\n".encode(),
        "deep/a/b/c/d/e/leaf.json": b'{"leaf": true}\n',
        "data/big.bin": os.urandom(CLI_PART) + os.urandom(MIB // 2),
    }
    for i in range(20):
        files[f"logs/2026/{i:02d}.log"] = f"line {i}\n".encode() * (i + 1)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def tree_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def transfers(output: str, verb: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"{verb}: ")]


def test_sync_up_and_down(server: LaminaServer, s3: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src)
    target = f"s3://{bucket}/site"

    up = aws(server, "sync", "--no-progress", "src", target, cwd=tmp_path)
    assert len(transfers(up, "upload")) == len(files)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="site/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(f"site/{rel}" for rel in files)
    assert (
        s3.get_object(Bucket=bucket, Key="site/assets/caf\u00e9/menu \u00fcber.txt")["Body"].read()
        == (files["assets/caf\u00e9/menu \u00fcber.txt"])
    )
    assert (
        aws(server, "sync", "--no-progress", "src", target, cwd=tmp_path) == ""
    )  # nothing changed: nothing sent

    (src / "src" / "app.py").write_bytes(b"print('changed')\n")
    again = aws(server, "sync", "--no-progress", "src", target, cwd=tmp_path)
    assert transfers(again, "upload") == [f"upload: src/src/app.py to {target}/src/app.py"]

    down = tmp_path / "down"
    got = aws(server, "sync", "--no-progress", target, "down", cwd=tmp_path)
    assert len(transfers(got, "download")) == len(files)
    files["src/app.py"] = b"print('changed')\n"
    assert tree_of(down) == files
    assert (
        aws(server, "sync", "--no-progress", target, "down", cwd=tmp_path) == ""
    )  # up to date: nothing fetched

    (src / "logs" / "2026" / "00.log").unlink()
    deleted = aws(server, "sync", "--no-progress", "--delete", "src", target, cwd=tmp_path)
    assert transfers(deleted, "delete") == [f"delete: {target}/logs/2026/00.log"]
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=bucket, Key="site/logs/2026/00.log")


_LS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +(?P<size>[\d.]+ (?:Bytes|KiB|MiB|GiB)) (?P<key>.+)$")


def test_ls_recursive_human_readable(server: LaminaServer, s3: Any, bucket: str, tmp_path: Path) -> None:
    sizes = {"a.txt": 5, "docs/guide.md": 2048, "docs/img/logo.png": 1536 * 1024, "z/last": 0}
    for key, n in sizes.items():
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * n)

    out = aws(server, "ls", f"s3://{bucket}", "--recursive", "--human-readable", "--summarize", cwd=tmp_path)
    lines = out.splitlines()
    rows = [m for m in map(_LS_LINE.match, lines) if m is not None]
    assert [(m["key"], m["size"]) for m in rows] == [
        ("a.txt", "5 Bytes"),
        ("docs/guide.md", "2.0 KiB"),
        ("docs/img/logo.png", "1.5 MiB"),
        ("z/last", "0 Bytes"),
    ]
    assert "Total Objects: 4" in lines[-2]
    assert lines[-1].strip() == "Total Size: 1.5 MiB"

    top = aws(server, "ls", f"s3://{bucket}/", cwd=tmp_path).splitlines()
    assert [line.split()[-1] for line in top] == ["docs/", "z/", "a.txt"]
    assert top[0].strip() == "PRE docs/"
    nested = aws(server, "ls", f"s3://{bucket}/docs/", cwd=tmp_path).splitlines()
    assert nested[0].strip() == "PRE img/"
    assert nested[1].endswith(" 2048 guide.md")
