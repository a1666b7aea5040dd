"""Hostile layer tars, as a registry could serve them: real tar bytes (some crafted by hand, where
Python's tarfile would not write them), unpacked by ``LayerUnpacker``. Each attack must be refused,
or (for the ones the unpacker neutralises) leave nothing outside the root and nothing dangerous in it."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.store.rootfs import MAX_DEPTH, MAX_HEADER_BYTES, LayerUnpacker, UnsafeLayerError, tree_size


def member(
    name: str, kind: str = "f", data: bytes = b"", *, link: str = "", mode: int = 0o644
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    info.type = {
        "f": tarfile.REGTYPE,
        "d": tarfile.DIRTYPE,
        "s": tarfile.SYMTYPE,
        "h": tarfile.LNKTYPE,
        "p": tarfile.FIFOTYPE,
        "c": tarfile.CHRTYPE,
    }[kind]
    info.linkname = link
    info.size = len(data) if kind == "f" else 0
    return info, data


def tar(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buf.seek(0)
    return buf


def header(name: str, typ: bytes, size: int, linkname: str = "") -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = typ, size, linkname
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


class Endless(io.RawIOBase):
    """``head`` then ``fill`` for ``size`` bytes, produced as read (never held in memory)."""

    def __init__(self, head: bytes, size: int, fill: bytes = b"a") -> None:
        self.head, self.left, self.fill = head, size, fill

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self.head:
            n = min(len(b), len(self.head))
            b[:n], self.head = self.head[:n], self.head[n:]
            return n
        n = min(len(b), self.left)
        b[:n] = (self.fill * (n // len(self.fill) + 1))[:n]
        self.left -= n
        return n


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """The tree, beside an ``outside`` directory that must never change."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "passwd").write_text("host's\n")
    (tmp_path / "tree").mkdir()
    yield tmp_path / "tree"
    assert sorted(os.listdir(tmp_path / "outside")) == ["passwd"]
    assert (tmp_path / "outside" / "passwd").read_text() == "host's\n"


# -- refused before tarfile reads what a header announces --------------------------------------------


@pytest.mark.parametrize("typ", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK])
def test_huge_extended_header_is_refused_unread(root: Path, typ: bytes) -> None:
    # 4 GB of pax records or of a long name: tarfile would read them into memory in one piece.
    stream = Endless(header("x", typ, 4 << 30), 4 << 30)
    with pytest.raises(UnsafeLayerError, match="extended header record"):
        LayerUnpacker(root).apply(io.BufferedReader(stream))
    assert stream.left > (4 << 30) - (1 << 20)  # the record was not read


def test_extended_header_within_the_limit_still_works(root: Path) -> None:
    name = "d/" + "n" * 200
    LayerUnpacker(root).apply(tar(member(name, data=b"long"), fmt=tarfile.GNU_FORMAT))
    assert (root / name).read_bytes() == b"long"
    assert MAX_HEADER_BYTES >= 64 << 10


def test_gnu_sparse_1_0_map_is_refused_unread(root: Path) -> None:
    # A pax-announced GNU sparse file (format 1.0): its map is a list of numbers at the start of the
    # data, read into memory whatever their count; "1000000000 blocks" of 0s compress to nothing.
    pax = b"".join(
        pax_record(k, v)
        for k, v in (
            ("GNU.sparse.major", "1"),
            ("GNU.sparse.minor", "0"),
            ("GNU.sparse.name", "sparse"),
            ("GNU.sparse.realsize", "1"),
        )
    )
    head = header("./PaxHeaders/x", tarfile.XHDTYPE, len(pax)) + padded(pax)
    head += header("GNUSparseFile.0/sparse", tarfile.REGTYPE, 4 << 30) + b"1000000000\n"
    stream = Endless(head, 4 << 30, b"0\n")
    with pytest.raises(UnsafeLayerError, match="GNU sparse file"):
        LayerUnpacker(root).apply(io.BufferedReader(stream))
    assert stream.left > (4 << 30) - (1 << 20)


def test_old_gnu_sparse_member_is_refused(root: Path) -> None:
    data = header("sparse", tarfile.GNUTYPE_SPARSE, 0) + b"\0" * 1024
    with pytest.raises(UnsafeLayerError, match="GNU sparse file"):
        LayerUnpacker(root).apply(io.BytesIO(data))


def test_negative_pax_size_is_refused(root: Path) -> None:
    # A negative size would lower the count of bytes written (the 10 GB limit).
    pax = pax_record("size", "-511")
    data = header("./PaxHeaders/f", tarfile.XHDTYPE, len(pax)) + padded(pax)
    data += header("f", tarfile.REGTYPE, 0) + b"\0" * 1024
    with pytest.raises(UnsafeLayerError, match="negative size"):
        LayerUnpacker(root).apply(io.BytesIO(data))


# -- what the host pays in inodes and recursion ------------------------------------------------------


def test_deep_nesting_is_refused_and_the_tree_stays_removable(root: Path) -> None:
    deep = "/".join(["a"] * (MAX_DEPTH + 1))
    with pytest.raises(UnsafeLayerError, match=f"more than {MAX_DEPTH} directories deep"):
        LayerUnpacker(root).apply(tar(member(deep + "/f")))
    ok = "/".join(["a"] * MAX_DEPTH)
    LayerUnpacker(root).apply(tar(member(ok, data=b"x")))
    assert tree_size(root) == 1
    shutil.rmtree(root)  # recurses once a level: 1500 levels would raise RecursionError
    root.mkdir()


def test_entries_are_counted_across_layers(root: Path) -> None:
    u = LayerUnpacker(root, max_entries=100)
    u.apply(tar(*(member(f"d{i}", "d") for i in range(60))))
    with pytest.raises(UnsafeLayerError, match="more than 100 entries"):
        u.apply(tar(*(member(f"e{i}") for i in range(60))))


def test_repeated_opaque_markers_act_once(root: Path) -> None:
    u = LayerUnpacker(root)
    u.apply(tar(member("d/old", data=b"1")))
    u.apply(tar(member("d/new", data=b"2"), *(member("d/.wh..wh..opq") for _ in range(50))))
    assert os.listdir(root / "d") == ["new"]


# -- escapes that held: nothing outside the root changes ------------------------------------------


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([[member("../outside/passwd", data=b"pwned")]], "leaves the root filesystem"),
        ([[member("./../outside/passwd", data=b"pwned")]], "leaves the root filesystem"),
        ([[member("a/../../outside/passwd", data=b"pwned")]], "leaves the root filesystem"),
        ([[member("/etc/passwd", data=b"pwned")]], "absolute path"),
        ([[member("//etc/passwd", data=b"pwned")]], "absolute path"),
        # A symlink planted by a lower layer, then a write through it.
        (
            [[member("lib", "s", link="../outside")], [member("lib/passwd", data=b"pwned")]],
            "symbolic link 'lib'",
        ),
        (
            [[member("lib", "s", link="../outside")], [member("lib/x/y", data=b"pwned")]],
            "symbolic link 'lib'",
        ),
        # Hard links to outside paths, to symlinks, to directories.
        ([[member("h", "h", link="../outside/passwd")]], "leaves the root filesystem"),
        ([[member("h", "h", link="/etc/passwd")]], "absolute path"),
        ([[member("l", "s", link="../outside/passwd"), member("h", "h", link="l")]], "not a file"),
        ([[member("l", "s", link="../outside"), member("h", "h", link="l/passwd")]], "symbolic link 'l'"),
        ([[member("d", "d"), member("h", "h", link="d")]], "not a file"),
        # Whiteouts and opaque markers through a symlink.
        ([[member("l", "s", link="../outside")], [member("l/.wh.passwd")]], "symbolic link 'l'"),
        ([[member("l", "s", link="../outside")], [member("l/.wh..wh..opq")]], "symbolic link 'l'"),
        ([[member(".wh..")]], "names nothing"),
        ([[member("a/.wh..")]], "names nothing"),
    ],
)
def test_escapes_are_refused(
    root: Path, layers: list[list[tuple[tarfile.TarInfo, bytes]]], message: str
) -> None:
    u = LayerUnpacker(root)
    with pytest.raises(UnsafeLayerError, match=message):
        for entries in layers:
            u.apply(tar(*entries))


def test_pax_and_gnu_long_names_are_checked_after_rewriting(root: Path) -> None:
    # The ustar name is harmless; the pax ``path`` (or GNU long name) that replaces it is not.
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        name = "x/" * 60 + "../" * 61 + "outside/passwd"
        with pytest.raises(UnsafeLayerError, match="leaves the root filesystem"):
            LayerUnpacker(root).apply(tar(member(name, data=b"pwned"), fmt=fmt))
    pax = pax_record("path", "../outside/passwd")
    data = header("./PaxHeaders/f", tarfile.XHDTYPE, len(pax)) + padded(pax)
    data += header("innocent", tarfile.REGTYPE, 5) + padded(b"pwned") + b"\0" * 1024
    with pytest.raises(UnsafeLayerError, match="leaves the root filesystem"):
        LayerUnpacker(root).apply(io.BytesIO(data))
    pax = pax_record("linkpath", "../outside/passwd")
    data = header("./PaxHeaders/h", tarfile.XHDTYPE, len(pax)) + padded(pax)
    data += header("h", tarfile.LNKTYPE, 0, "innocent") + b"\0" * 1024
    with pytest.raises(UnsafeLayerError, match="leaves the root filesystem"):
        LayerUnpacker(root).apply(io.BytesIO(data))


def test_a_symlink_replaced_by_a_directory_is_a_directory(root: Path) -> None:
    u = LayerUnpacker(root)
    u.apply(tar(member("etc", "s", link="../outside")))
    u.apply(tar(member("etc", "d"), member("etc/passwd", data=b"image's")))
    assert not (root / "etc").is_symlink() and (root / "etc" / "passwd").read_bytes() == b"image's"
    # A file over a symlink replaces the link, never writes through it.
    u.apply(tar(member("p", "s", link="../outside/passwd")))
    u.apply(tar(member("p", data=b"image's")))
    assert not (root / "p").is_symlink()


def test_modes_and_special_files_are_tamed(root: Path) -> None:
    LayerUnpacker(root).apply(
        tar(
            member("suid", data=b"#!/bin/sh\n", mode=0o6777),
            member("ww", "d", mode=0o777),
            member("tmp", "d", mode=0o1777),
            member("null", "c", mode=0o666),
            member("fifo", "p", mode=0o666),
        )
    )
    assert stat.S_IMODE(os.lstat(root / "suid").st_mode) == 0o755
    assert stat.S_IMODE(os.lstat(root / "ww").st_mode) == 0o755
    assert stat.S_IMODE(os.lstat(root / "tmp").st_mode) == 0o1755
    assert not (root / "null").exists()
    assert stat.S_ISFIFO(os.lstat(root / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(root / "fifo").st_mode) == 0o644
    for name in ("suid", "ww", "fifo"):
        st = os.lstat(root / name)
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


def test_owners_and_capabilities_of_the_tar_are_not_applied(root: Path) -> None:
    info, data = member("ping", data=b"\x7fELF", mode=0o755)
    info.uid, info.gid, info.uname, info.gname = 1234, 1234, "evil", "evil"
    info.pax_headers = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"}
    LayerUnpacker(root).apply(tar((info, data)))
    st = os.lstat(root / "ping")
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert os.listxattr(root / "ping", follow_symlinks=False) == []


def test_only_the_declared_compression_is_decompressed(root: Path) -> None:
    # An xz stream claiming a 1.5 GB dictionary: tarfile's "r|*" would detect and decode it, the
    # decoder holding (and filling) that dictionary for some 150 kB of layer.
    plain = tar(member("f", data=b"x")).getvalue()
    bomb = lzma.compress(plain, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 1536 << 20}])
    for compression in ("", "gz"):
        with pytest.raises(UnsafeLayerError, match="not a readable tar archive"):
            LayerUnpacker(root).apply(io.BytesIO(bomb), compression)
        with pytest.raises(UnsafeLayerError, match="not a readable tar archive"):
            LayerUnpacker(root).apply(io.BytesIO(bz2.compress(plain)), compression)
    with pytest.raises(UnsafeLayerError, match="not a readable tar archive"):
        LayerUnpacker(root).apply(io.BytesIO(gzip.compress(plain)))  # a plain tar's media type
    LayerUnpacker(root).apply(io.BytesIO(gzip.compress(plain)), "gz")
    assert (root / "f").read_bytes() == b"x"
    with pytest.raises(ValueError, match="unknown layer compression"):
        LayerUnpacker(root).apply(io.BytesIO(plain), "*")
