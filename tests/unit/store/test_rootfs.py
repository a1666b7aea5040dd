"""Layer unpacking: whiteouts against the layers below only, replacement of entries, refusals."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from lamina.store.rootfs import LayerUnpacker, UnsafeLayerError, tree_size


def tar(*members: tuple[str, str, bytes | str]) -> io.BytesIO:
    """Members as (name, kind, data or link target); kind: f(ile), d(ir), s(ymlink), h(ard link)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "d" else 0o644
            data = payload.encode() if isinstance(payload, str) else payload
            if kind == "f":
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
                continue
            info.type = {"d": tarfile.DIRTYPE, "s": tarfile.SYMTYPE, "h": tarfile.LNKTYPE}[kind]
            info.linkname = data.decode()
            t.addfile(info)
    buf.seek(0)
    return buf


def test_whiteouts_hide_lower_layers_only(tmp_path: Path) -> None:
    u = LayerUnpacker(tmp_path)
    u.apply(tar(("d/old", "f", "1"), ("d/keep", "f", "1"), ("x", "f", "1"), ("y", "f", "1")))
    # The opaque marker comes after its own layer's entry: that entry stays.
    u.apply(
        tar(
            ("d/new", "f", "2"),
            ("d/.wh..wh..opq", "f", ""),
            ("z", "f", "2"),
            (".wh.z", "f", ""),
            (".wh.x", "f", ""),
        )
    )
    assert sorted(os.listdir(tmp_path / "d")) == ["new"]
    assert sorted(os.listdir(tmp_path)) == ["d", "y", "z"]


def test_entries_replace_lower_ones_of_another_type(tmp_path: Path) -> None:
    u = LayerUnpacker(tmp_path)
    u.apply(tar(("a", "d", ""), ("a/f", "f", "1"), ("b", "f", "1"), ("c", "s", "b")))
    u.apply(tar(("a", "f", "file now"), ("b", "d", ""), ("c", "f", "not a link")))
    assert (tmp_path / "a").read_text() == "file now"
    assert (tmp_path / "b").is_dir() and not (tmp_path / "c").is_symlink()
    assert tree_size(tmp_path) == len("file now") + len("not a link")


def test_whiteout_of_something_absent_creates_nothing(tmp_path: Path) -> None:
    LayerUnpacker(tmp_path).apply(tar(("no/such/.wh.thing", "f", "")))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ((("l", "s", "/"), ("l/x", "f", "")), "written through the symbolic link 'l'"),
        ((("f", "f", ""), ("f/x", "f", "")), "which is not a directory"),
        ((("h", "h", "missing"),), "which is not in the image"),
        ((("h", "h", "."),), "points at the root directory"),
        (
            (("l", "s", "/etc"), (".wh.x", "f", ""), ("l/.wh.passwd", "f", "")),
            "written through the symbolic link",
        ),
    ],
    ids=["symlink-parent", "file-parent", "hardlink-missing", "hardlink-root", "whiteout-through-link"],
)
def test_refusals(tmp_path: Path, members: tuple[tuple[str, str, str], ...], message: str) -> None:
    with pytest.raises(UnsafeLayerError, match=message):
        LayerUnpacker(tmp_path).apply(tar(*members))


def test_not_a_tar(tmp_path: Path) -> None:
    with pytest.raises(UnsafeLayerError, match="not a readable tar archive"):
        LayerUnpacker(tmp_path).apply(io.BytesIO(b"\x1f\x8b garbage" * 100))


def test_size_limit_counts_every_layer(tmp_path: Path) -> None:
    u = LayerUnpacker(tmp_path, max_bytes=10)
    u.apply(tar(("a", "f", "123456")))
    with pytest.raises(UnsafeLayerError, match="larger than 10 bytes uncompressed"):
        u.apply(tar(("b", "f", "123456")))


def test_blob_store_keeps_a_live_process_download(tmp_path: Path) -> None:
    from lamina.store.blobs import BlobStore

    store = BlobStore(tmp_path / "blobs")
    parent = store.tmp / f"{'a' * 32}.{os.getppid()}.part"  # the test runner's parent: alive
    dead = store.tmp / f"{'b' * 32}.999999999.part"
    crashed = store.tmp / f"{'c' * 32}.part"
    for p in (parent, dead, crashed):
        p.write_bytes(b"x")
    BlobStore(tmp_path / "blobs")
    assert sorted(p.name for p in store.tmp.iterdir()) == [parent.name]
