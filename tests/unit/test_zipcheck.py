"""Unit tests for lamina.domain.zipcheck: zips are checked before anything is stored."""

from __future__ import annotations

import dataclasses
import io
import stat
import struct
import time
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from typing import Any

import pytest

from lamina.domain.zipcheck import (
    COULD_NOT_UNZIP,
    ZipProblem,
    ZipRejected,
    ZipReport,
    inspect_zip,
    to_aws_error,
)

AWS_MAX_UNZIPPED = 262_144_000
MiB = 1 << 20


@dataclasses.dataclass(frozen=True)
class E:
    """An entry to put in a test zip."""

    name: str
    data: bytes = b""
    mode: int = stat.S_IFREG | 0o644
    method: int = zipfile.ZIP_DEFLATED


def dir_(name: str) -> E:
    return E(name, b"", stat.S_IFDIR | 0o755, zipfile.ZIP_STORED)


def link(name: str, target: str) -> E:
    return E(name, target.encode(), stat.S_IFLNK | 0o777, zipfile.ZIP_STORED)


def build(entries: Sequence[E]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
        # Duplicate names are legal (AWS accepts them); zipfile only warns.
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        for e in entries:
            info = zipfile.ZipInfo(e.name, date_time=(2024, 1, 1, 0, 0, 0))
            info.create_system = 3  # unix, so the mode bits mean what they say
            info.external_attr = e.mode << 16
            info.compress_type = e.method
            zf.writestr(info, e.data)
    return buf.getvalue()


def inspect(data: bytes, max_unzipped: int = AWS_MAX_UNZIPPED) -> ZipReport:
    return inspect_zip(io.BytesIO(data), max_unzipped=max_unzipped)


def rejected(data: bytes, max_unzipped: int = AWS_MAX_UNZIPPED) -> ZipRejected:
    with pytest.raises(ZipRejected) as info:
        inspect(data, max_unzipped)
    return info.value


def patch_u16(data: bytes, magic: bytes, field_offset: int, value: int) -> bytes:
    """OR a little-endian u16 into field_offset of the first header starting with magic."""
    pos = data.index(magic)
    out = bytearray(data)
    (old,) = struct.unpack_from("<H", out, pos + field_offset)
    struct.pack_into("<H", out, pos + field_offset, old | value)
    return bytes(out)


def patch_u32(data: bytes, magic: bytes, field_offset: int, value: int, *, nth: int = 0) -> bytes:
    """Overwrite a little-endian u32 at field_offset of the nth header starting with magic."""
    pos = -1
    for _ in range(nth + 1):
        pos = data.index(magic, pos + 1)
    out = bytearray(data)
    struct.pack_into("<L", out, pos + field_offset, value)
    return bytes(out)


# Offsets of header fields (APPNOTE.TXT 4.3.7 and 4.3.12).
LOCAL, CENTRAL = b"PK\x03\x04", b"PK\x01\x02"
LOCAL_FLAGS, CENTRAL_FLAGS = 6, 8
LOCAL_USIZE, CENTRAL_USIZE = 22, 24
CENTRAL_EXTERNAL_ATTR, CENTRAL_OFFSET = 38, 42


def set_usize(data: bytes, size: int) -> bytes:
    """Make both headers of the first entry claim an uncompressed size of `size`."""
    return patch_u32(patch_u32(data, LOCAL, LOCAL_USIZE, size), CENTRAL, CENTRAL_USIZE, size)


# --- accepted -------------------------------------------------------------------

PYTHON_TREE = [
    dir_("python/"),
    dir_("python/pkg/"),
    E("python/pkg/__init__.py", b""),
    E("python/pkg/mod.py", b"def f():\n    return 42\n" * 50),
    E("python/pkg/data.bin", bytes(range(256)) * 4, method=zipfile.ZIP_STORED),
    E("bin/tool", b"#!/bin/sh\necho hi\n", stat.S_IFREG | 0o755),
]


def test_valid_python_tree_is_measured() -> None:
    report = inspect(build(PYTHON_TREE))
    assert [e.name for e in report.entries] == [e.name for e in PYTHON_TREE]
    assert [e.size for e in report.entries] == [len(e.data) for e in PYTHON_TREE]
    assert report.unzipped_size == sum(len(e.data) for e in PYTHON_TREE) == 1150 + 1024 + 18
    assert [e.is_dir for e in report.entries] == [True, True, False, False, False, False]
    assert not any(e.is_symlink or e.link_target for e in report.entries)


def test_exec_bit_is_reported() -> None:
    by_name = {e.name: e for e in inspect(build(PYTHON_TREE)).entries}
    tool = by_name["bin/tool"]
    assert tool.mode == stat.S_IFREG | 0o755
    assert tool.mode & 0o111 == 0o111
    assert by_name["python/pkg/mod.py"].mode & 0o111 == 0
    assert stat.S_ISDIR(by_name["python/"].mode)


def test_mode_is_zero_when_zip_has_none() -> None:
    # As written on Windows: only the DOS archive attribute, no unix mode.
    # (zipfile fills in 0o600 when writing, hence the patch.)
    data = patch_u32(build([E("a.txt", b"x")]), CENTRAL, CENTRAL_EXTERNAL_ATTR, 0x20)
    report = inspect(data)
    assert report.entries[0].mode == 0 and not report.entries[0].is_dir


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([], id="empty-zip"),
        pytest.param(
            [link("lib/libfoo.so", "libfoo.so.1"), E("lib/libfoo.so.1", b"elf")], id="symlink-sibling"
        ),
        pytest.param([link("python/a/b", "../c/d")], id="symlink-up-but-inside"),
        pytest.param([link("a/l", ".."), link("b", "a/l/x")], id="link-to-root-then-down"),
        pytest.param([link("x", "y"), link("y", "x")], id="symlink-loop-harmless"),
        pytest.param([E("dup.txt", b"1"), E("dup.txt", b"22")], id="duplicate-names"),
        pytest.param([E("./a.txt", b"1"), dir_("./")], id="dot-components"),
        pytest.param([E("a..b/c..", b"1")], id="dots-inside-names"),
    ],
)
def test_accepted(entries: list[E]) -> None:
    report = inspect(build(entries))
    assert len(report.entries) == len(entries)
    assert report.unzipped_size == sum(len(e.data) for e in entries)


def test_symlink_target_is_reported() -> None:
    (entry,) = inspect(build([link("python/lib.so", "real/lib.so.2")])).entries
    assert entry.is_symlink and not entry.is_dir
    assert entry.link_target == "real/lib.so.2"
    assert entry.size == len("real/lib.so.2")
    assert stat.S_ISLNK(entry.mode)


# --- size -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "ok"),
    [
        pytest.param(3000, True, id="exactly-at-limit"),
        pytest.param(2999, False, id="one-over-limit"),
        pytest.param(0, False, id="zero-limit"),
    ],
)
def test_limit_boundary(limit: int, ok: bool) -> None:
    data = build([E("a", b"a" * 1000), E("b", b"b" * 2000, method=zipfile.ZIP_STORED)])
    if ok:
        assert inspect(data, limit).unzipped_size == 3000
    else:
        exc = rejected(data, limit)
        assert exc.problem is ZipProblem.TOO_LARGE_UNZIPPED
        # The detail names the entry during which the running total passed the limit.
        expected = "'b'" if limit else "'a'"
        assert f"at entry {expected}" in exc.detail


def test_lying_header_size_is_not_trusted() -> None:
    real = 512 * 1024
    data = set_usize(build([E("big.bin", bytes(real))]), 10)
    # The headers now say 10 bytes: a checker trusting them would accept.
    assert sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist()) == 10
    exc = rejected(data, max_unzipped=1000)
    assert exc.problem is ZipProblem.TOO_LARGE_UNZIPPED
    assert "'big.bin'" in exc.detail


def test_lying_header_size_under_limit_is_corrupt() -> None:
    data = set_usize(build([E("a.bin", bytes(100))]), 10)
    exc = rejected(data, max_unzipped=1000)
    assert exc.problem is ZipProblem.CORRUPT
    assert "claims 10 bytes, data has 100" in exc.detail


class ReadTracker(io.BytesIO):
    """BytesIO that records every byte range read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.ranges: list[tuple[int, int]] = []

    def read(self, size: int | None = -1, /) -> bytes:
        start = self.tell()
        out = super().read(size)
        self.ranges.append((start, start + len(out)))
        return out

    def was_read(self, offset: int) -> bool:
        return any(start <= offset < end for start, end in self.ranges)


@pytest.fixture(scope="module")
def bomb() -> tuple[bytes, int]:
    """300 MiB of zeros deflated into ~300 KB, followed by a small entry."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("bomb.bin", "w") as f:
            zeros = bytes(MiB)
            for _ in range(300):
                f.write(zeros)
        zf.writestr("after.txt", b"not reached")
        after_offset = zf.getinfo("after.txt").header_offset
    return buf.getvalue(), after_offset


def test_zip_bomb_refused_fast_in_bounded_memory(bomb: tuple[bytes, int]) -> None:
    data, after_offset = bomb
    assert len(data) < 1 * MiB  # it really is a bomb: >300x amplification
    fileobj = ReadTracker(data)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ZipRejected) as info:
            inspect_zip(fileobj, max_unzipped=AWS_MAX_UNZIPPED)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"bomb: refused in {elapsed:.2f}s, peak traced memory {peak / MiB:.1f} MiB")
    assert info.value.problem is ZipProblem.TOO_LARGE_UNZIPPED
    assert "'bomb.bin'" in info.value.detail
    assert elapsed < 5.0
    assert peak < 8 * MiB  # a few 1 MiB chunks, not the 250 MiB inflated
    # Stopped inside the bomb: the next entry's local header was never read
    # (zipfile itself read the central directory, which lies after it).
    assert fileobj.was_read(after_offset - 1)  # the bomb's own data was
    assert not fileobj.was_read(after_offset)


def test_overlapping_entries_refused() -> None:
    # Fifield-style: two central records sharing one local header. Equal names
    # (duplicates are allowed) so only the overlap can be the reason.
    one = build([E("a", b"x" * 100), E("a", b"x" * 100)])
    assert len(inspect(one).entries) == 2
    data = patch_u32(one, CENTRAL, CENTRAL_OFFSET, one.index(LOCAL), nth=1)
    exc = rejected(data)
    assert exc.problem is ZipProblem.CORRUPT
    assert "overlaps" in exc.detail


# --- not a zip / corrupt --------------------------------------------------------


def flip_data_byte(data: bytes) -> bytes:
    return data.replace(b"hello world", b"hellO world", 1)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(b"this is not a zip file at all", ZipProblem.NOT_A_ZIP, id="not-a-zip"),
        pytest.param(b"", ZipProblem.NOT_A_ZIP, id="zero-bytes"),
        pytest.param(build(PYTHON_TREE)[:-40], ZipProblem.NOT_A_ZIP, id="truncated"),
        pytest.param(
            flip_data_byte(build([E("a.txt", b"hello world", method=zipfile.ZIP_STORED)])),
            ZipProblem.CORRUPT,
            id="crc-mismatch",
        ),
        pytest.param(
            build([E("a.txt", b"hello world" * 100)]).replace(b"PK\x03\x04", b"PK\x03\x05", 1),
            ZipProblem.CORRUPT,
            id="bad-local-header",
        ),
        pytest.param(
            build([E("aaaa.txt", b"hello")]).replace(b"aaaa", b"bbbb", 1),
            ZipProblem.CORRUPT,
            id="local-name-differs",
        ),
        pytest.param(
            build([E("a.txt", b"q" * 5000, method=zipfile.ZIP_BZIP2)]),
            ZipProblem.UNSUPPORTED_COMPRESSION,
            id="bzip2",
        ),
        pytest.param(
            patch_u16(
                patch_u16(build([E("a.txt", b"secret")]), LOCAL, LOCAL_FLAGS, 1),
                CENTRAL,
                CENTRAL_FLAGS,
                1,
            ),
            ZipProblem.ENCRYPTED,
            id="encrypted",
        ),
    ],
)
def test_unreadable(data: bytes, problem: ZipProblem) -> None:
    exc = rejected(data)
    assert exc.problem is problem, exc
    assert to_aws_error(exc, AWS_MAX_UNZIPPED).message == COULD_NOT_UNZIP


def corrupt_deflate(data: bytes) -> bytes:
    """Overwrite the start of the first entry's compressed data with an invalid block type."""
    out = bytearray(data)
    name_len, extra_len = struct.unpack_from("<HH", out, 26)
    start = 30 + name_len + extra_len
    out[start] = 0x07  # BFINAL=1, BTYPE=11: reserved, an error in every inflater
    return bytes(out)


def test_bad_deflate_stream_is_corrupt() -> None:
    exc = rejected(corrupt_deflate(build([E("a.txt", b"abc" * 1000)])))
    assert exc.problem is ZipProblem.CORRUPT
    assert "deflate" in exc.detail


def test_deflate_stream_without_final_block_is_corrupt() -> None:
    # Sizes and CRC all agree with what inflates, but the stream never ends:
    # the upload was cut. Stored first, then relabelled as deflated.
    payload = b"abc" * 1000
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    unfinished = deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)
    data = build([E("a.txt", unfinished, method=zipfile.ZIP_STORED)])
    for magic, method_at, crc_at in ((LOCAL, 8, 14), (CENTRAL, 10, 16)):
        pos = data.index(magic)
        out = bytearray(data)
        struct.pack_into("<H", out, pos + method_at, zipfile.ZIP_DEFLATED)
        struct.pack_into("<L", out, pos + crc_at, zlib.crc32(payload))
        data = bytes(out)
    data = set_usize(data, len(payload))
    assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(unfinished) == payload
    exc = rejected(data)
    assert exc.problem is ZipProblem.CORRUPT
    assert exc.detail == "Entry 'a.txt': deflate stream is truncated."


def test_crc_detail_names_entry() -> None:
    exc = rejected(flip_data_byte(build([E("a.txt", b"hello world", method=zipfile.ZIP_STORED)])))
    assert exc.detail == "Entry 'a.txt': bad CRC-32."


def test_stdlib_agrees_crc_case_is_broken() -> None:
    # Guard that the crc-mismatch fixture is really broken, not just rejected by us.
    data = flip_data_byte(build([E("a.txt", b"hello world", method=zipfile.ZIP_STORED)]))
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        zipfile.ZipFile(io.BytesIO(data)).read("a.txt")


# --- escaping the root ----------------------------------------------------------


def with_nul_name() -> bytes:
    # zipfile cuts names at NUL when writing, so put the NUL in afterwards.
    return build([E("okXevil.txt", b"1")]).replace(b"okXevil", b"ok\x00evil")


@pytest.mark.parametrize(
    ("data", "offender"),
    [
        pytest.param(build([E("../evil", b"1")]), "../evil", id="dotdot"),
        pytest.param(build([E("python/../../evil", b"1")]), "python/../../evil", id="dotdot-deep"),
        pytest.param(build([E("a/../b", b"1")]), "a/../b", id="dotdot-even-if-inside"),
        pytest.param(build([E("/etc/cron.d/x", b"1")]), "/etc/cron.d/x", id="absolute"),
        pytest.param(build([E("..\\evil", b"1")]), "..\\evil", id="backslash-dotdot"),
        pytest.param(build([E("\\evil", b"1")]), "\\evil", id="backslash-absolute"),
        pytest.param(build([E("C:/evil", b"1")]), "C:/evil", id="drive-letter"),
        pytest.param(with_nul_name(), "ok\x00evil.txt", id="nul-in-name"),
        pytest.param(build([E(".", b"1")]), ".", id="file-replacing-root"),
        pytest.param(build([link("passwd", "/etc/passwd")]), "passwd", id="symlink-absolute"),
        pytest.param(build([link("a/b", "../../x")]), "a/b", id="symlink-dotdot-escape"),
        pytest.param(build([link("a", "..")]), "a", id="symlink-to-parent-of-root"),
        pytest.param(build([link("x", "")]), "x", id="symlink-empty-target"),
        pytest.param(build([link("x", "a" * 5000)]), "x", id="symlink-overlong-target"),
        pytest.param(build([link("d", "sub"), E("d/f", b"1")]), "d/f", id="entry-below-symlink"),
        # Each link is inside on paper; resolved like the kernel, b is the root's parent.
        pytest.param(build([link("a/l", ".."), link("b", "a/l/../..")]), "b", id="symlink-chain-escape"),
        pytest.param(
            build([link("b", "a/l/../.."), link("a/l", "..")]), "b", id="symlink-chain-escape-reordered"
        ),
        # 50 links ending harmlessly: the kernel would stop at 40 (ELOOP); we refuse.
        pytest.param(
            build([link(f"l{i}", f"l{i + 1}") for i in range(50)] + [E("l50", b"end")]),
            "l0",
            id="symlink-chain-too-deep",
        ),
    ],
)
def test_escapes_root(data: bytes, offender: str) -> None:
    exc = rejected(data)
    assert exc.problem is ZipProblem.ESCAPES_ROOT, exc
    assert exc.detail.startswith(f"Entry {offender!r} ")
    err = to_aws_error(exc, AWS_MAX_UNZIPPED)
    assert err.code == "InvalidParameterValueException" and err.status == 400
    assert err.message.startswith(COULD_NOT_UNZIP + " Entry ")
    assert repr(offender) in err.message


def test_bad_name_reported_before_size() -> None:
    # Names are checked from the central directory before any data is inflated.
    exc = rejected(build([E("../evil", bytes(10_000))]), max_unzipped=100)
    assert exc.problem is ZipProblem.ESCAPES_ROOT


def test_escape_message_reads_well() -> None:
    err = to_aws_error(rejected(build([E("../evil", b"1")])), AWS_MAX_UNZIPPED)
    assert err.message == (
        "Could not unzip uploaded file. Please check your file, then try to upload again. "
        "Entry '../evil' points outside the archive root."
    )


# --- AWS errors and misuse --------------------------------------------------------


def test_too_large_maps_to_exact_aws_text() -> None:
    exc = rejected(build([E("a", bytes(100))]), 50)
    err = to_aws_error(exc, AWS_MAX_UNZIPPED)
    assert err.code == "InvalidParameterValueException" and err.status == 400
    assert err.message == "Unzipped size must be smaller than 262144000 bytes"


@pytest.mark.parametrize("bad", [pytest.param(-1, id="negative"), pytest.param(True, id="bool")])
def test_bad_limit_is_programmer_error(bad: int) -> None:
    with pytest.raises(ValueError, match=repr(bad)):
        inspect(build([]), bad)


def test_zip_rejected_str_and_pickle() -> None:
    import pickle

    exc = ZipRejected(ZipProblem.CORRUPT, "Entry 'a': bad CRC-32.")
    assert str(exc) == "corrupt: Entry 'a': bad CRC-32."
    again = pickle.loads(pickle.dumps(exc))
    assert again.problem is ZipProblem.CORRUPT and again.detail == exc.detail


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_multi_chunk_entries_counted_exactly(method: int) -> None:
    # Several 1 MiB read/inflate chunks, with an odd tail, for both methods.
    payload = bytes(range(256)) * (3 * MiB // 256) + b"tail" * 7
    report = inspect(build([E("big", payload, method=method), E("small", b"z" * 5)]))
    assert [e.size for e in report.entries] == [len(payload), 5]
    assert report.unzipped_size == len(payload) + 5


# --- entry count ----------------------------------------------------------------

_LOCAL_HDR = struct.Struct("<4s2B4HL2L2H")
_CENTRAL_HDR = struct.Struct("<4s4B4HL2L5H2L")
_END_REC = struct.Struct("<4s4H2LH")
_END64_REC = struct.Struct("<4sQ2H2L4Q")
_END64_LOC = struct.Struct("<4sLQL")


def many_entries(
    n: int,
    *,
    zip64: bool = False,
    declared: int | None = None,
    prefix: bytes = b"",
    comment: bytes = b"",
) -> bytes:
    """n empty stored files, written directly (zipfile takes seconds for 200,000 entries).

    ``zip64`` adds the zip64 end records (forced above 65,535 entries, as zipfile
    does); ``declared`` makes the end records claim another entry count;
    ``prefix`` prepends bytes (a self-extractor stub); ``comment`` is the archive comment.
    """
    zip64 = zip64 or n > 0xFFFF
    locals_: list[bytes] = []
    centrals: list[bytes] = []
    offset = 0
    for i in range(n):
        name = f"f{i:07d}".encode()
        local = _LOCAL_HDR.pack(LOCAL, 20, 0, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0) + name
        centrals.append(
            _CENTRAL_HDR.pack(
                CENTRAL, 20, 3, 20, 0, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0, 0, 0, 0, 0o100644 << 16, offset
            )
            + name
        )
        locals_.append(local)
        offset += len(local)
    directory = b"".join(centrals)
    count = n if declared is None else declared
    tail = b""
    if zip64:
        end64_at = offset + len(directory)
        tail += _END64_REC.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(directory), offset)
        tail += _END64_LOC.pack(b"PK\x06\x07", 0, end64_at, 1)
        short_count = 0xFFFF
    else:
        short_count = count
    tail += _END_REC.pack(b"PK\x05\x06", 0, 0, short_count, short_count, len(directory), offset, len(comment))
    return prefix + b"".join(locals_) + directory + tail + comment


def rejected_with_cap(data: bytes, cap: int) -> ZipRejected:
    with pytest.raises(ZipRejected) as info:
        inspect_zip(io.BytesIO(data), max_unzipped=AWS_MAX_UNZIPPED, max_entries=cap)
    return info.value


def test_entry_cap_is_200000() -> None:
    from lamina.domain.zipcheck import MAX_ENTRIES

    assert MAX_ENTRIES == 200_000


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="plain"),
        pytest.param({"zip64": True}, id="zip64"),
        pytest.param({"prefix": b"#!/bin/sh\nexit 0\n" * 10, "comment": b"built by hand"}, id="sfx+comment"),
    ],
)
def test_many_entries_builder_agrees_with_zipfile(kwargs: dict[str, Any]) -> None:
    data = many_entries(12, **kwargs)
    assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == 12
    assert len(inspect_zip(io.BytesIO(data), max_unzipped=0, max_entries=12).entries) == 12


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        pytest.param({}, "declares 11 entries", id="plain"),
        pytest.param({"zip64": True}, "declares 11 entries", id="zip64"),
        # The end records understate the count; zipfile ignores them and parses every record.
        pytest.param({"declared": 1}, "has more than 10 entries", id="lying-count"),
        pytest.param({"declared": 0}, "has more than 10 entries", id="lying-count-zero"),
        pytest.param({"zip64": True, "declared": 3}, "has more than 10 entries", id="zip64-lying-count"),
        pytest.param(
            {"prefix": b"MZ" + bytes(500), "comment": b"hello"}, "declares 11 entries", id="sfx+comment"
        ),
        pytest.param(
            {"prefix": b"MZ" + bytes(500), "declared": 2}, "has more than 10 entries", id="sfx-lying-count"
        ),
    ],
)
def test_more_entries_than_cap_refused(kwargs: dict[str, Any], detail: str) -> None:
    data = many_entries(11, **kwargs)
    assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == 11
    exc = rejected_with_cap(data, 10)
    assert exc.problem is ZipProblem.TOO_MANY_ENTRIES
    assert exc.detail == f"The archive {detail}; at most 10 are accepted."
    err = to_aws_error(exc, AWS_MAX_UNZIPPED)
    assert err.code == "InvalidParameterValueException" and err.status == 400
    assert err.message == f"{COULD_NOT_UNZIP} {exc.detail}"


def test_overstated_count_is_refused_too() -> None:
    # Only 5 records, but the end record claims 11: a malformed zip, refused on its word.
    exc = rejected_with_cap(many_entries(5, declared=11), 10)
    assert exc.problem is ZipProblem.TOO_MANY_ENTRIES


@pytest.mark.parametrize("declared", [None, 7], ids=["honest", "lying"])
def test_exactly_cap_entries_accepted(declared: int | None) -> None:
    # A lying count that stays under the cap is not our business: zipfile ignores it.
    data = many_entries(10, declared=declared)
    assert len(inspect_zip(io.BytesIO(data), max_unzipped=0, max_entries=10).entries) == 10


@pytest.mark.parametrize(
    ("declared", "detail"),
    [
        pytest.param(None, "declares 200001 entries", id="zip64-count"),
        pytest.param(1, "has more than 200000 entries", id="records-counted"),
    ],
)
def test_200001_entries_refused_before_zipfile_parses(declared: int | None, detail: str) -> None:
    data = many_entries(200_001, declared=declared)
    assert b"PK\x06\x06" in data  # more than 65,535 entries: zip64 end records
    tracemalloc.start()
    try:
        exc = rejected(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exc.problem is ZipProblem.TOO_MANY_ENTRIES
    assert exc.detail == f"The archive {detail}; at most 200000 are accepted."
    # zipfile's 200,001 ZipInfo objects would be ~100 MiB; counting reads 1 MiB chunks.
    assert peak < 4 * MiB, peak


def test_bad_entry_cap_is_programmer_error() -> None:
    with pytest.raises(ValueError, match="max_entries must be a non-negative int, got -1"):
        inspect_zip(io.BytesIO(build([])), max_unzipped=0, max_entries=-1)
