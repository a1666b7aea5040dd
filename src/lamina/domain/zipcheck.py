"""Checks on an uploaded Lambda zip (layer or function code) before anything is stored.

``inspect_zip`` either returns a :class:`ZipReport` (every entry with its real
size, unix mode and symlink target) or raises :class:`ZipRejected` naming the
:class:`ZipProblem`. ``to_aws_error`` turns that into the error real AWS answers.

Facts about zips that shape this module:

- Sizes in the headers are claims, not facts. ``zipfile.ZipExtFile`` even cuts
  its output at the central directory's ``file_size``, so it would happily
  "confirm" a lying header. We therefore inflate the raw compressed bytes
  ourselves, in bounded chunks, and count what actually comes out, stopping
  the moment the running total passes the limit: a zip bomb costs at most
  ``max_unzipped`` bytes of inflating and a few MiB of memory.
- The central directory (which ``zipfile`` parses) and the local headers (which
  streaming extractors read) can disagree. We require the local header's name
  to match, as ``zipfile`` does, so the name we check is the name written.
- Several central directory records may point at the same local data
  ("overlapping" bombs, Fifield 2019, https://www.bamsoftware.com/hacks/zipbomb/).
  Counting each entry's output already defeats the size amplification, but a
  stream of empty deflate blocks inflates to nothing while still costing CPU
  per record, so overlapping entries are refused outright: no real tool writes them.
- ``zipfile`` builds a ``ZipInfo`` (several hundred bytes) for every central
  directory record before we see any of them, and a 50 MB upload can hold a
  million empty records. So the end record's entry count (zip64 included) is
  read first, and the central directory is walked and counted the way
  ``zipfile`` will walk it (the count in the end record may lie): past
  ``max_entries`` the zip is refused before ``zipfile`` parses anything.
- A symlink's target must be judged the way the kernel resolves it, not
  lexically: with ``a/l -> ..`` (harmless alone), ``b -> a/l/../..`` looks
  inside the root on paper but is the root's parent on disk. So links are
  resolved through the archive's other links, and no entry may sit below a
  symlink entry (an extractor would write through the link).

The checker is pure: it reads the given file object and nothing else.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import BinaryIO

from lamina.errors import AwsError, InvalidParameterValueException, LaminaError

__all__ = [
    "MAX_ENTRIES",
    "ZipEntryInfo",
    "ZipProblem",
    "ZipRejected",
    "ZipReport",
    "inspect_zip",
    "to_aws_error",
]

# Exact AWS wording, from reference/aws-lambda-api-recordings.json.
COULD_NOT_UNZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."

# Most entries accepted in one zip. AWS documents no such limit; real layers
# hold tens of thousands of files at most (a full scipy+numpy+pandas tree is
# ~20,000), and the cap bounds the memory the central directory can cost.
MAX_ENTRIES = 200_000

# Reads and inflated output are both capped at this, so memory stays at a few
# chunks whatever the archive claims or contains.
_CHUNK = 1 << 20

# Only stored and deflated entries are accepted. These are the methods every
# zip tool writes by default and every extractor (java.util.zip, Info-ZIP,
# Python's zipfile) reads; Lambda's own unzipping is undocumented, and refusing
# the exotic methods (bzip2, lzma, Windows' Deflate64) keeps a package that
# works here from failing on AWS.
_SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})

# General purpose flag bits (APPNOTE.TXT 4.4.4).
_FLAG_ENCRYPTED = 0x0001
_FLAG_PATCHED = 0x0020
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_FLAG_CD_ENCRYPTED = 0x2000

# Local file header (APPNOTE.TXT 4.3.7), same layout zipfile uses.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_MAGIC = b"PK\x03\x04"

# Central directory file header (APPNOTE.TXT 4.3.12): only the signature and
# the three variable lengths matter for counting records.
_CENTRAL_HEADER = struct.Struct("<4s24x3H12x")
_CENTRAL_MAGIC = b"PK\x01\x02"
# End of central directory record (4.3.16), zip64 locator (4.3.15) and zip64
# end record (4.3.14), as zipfile reads them.
_END = struct.Struct("<4s4H2LH")
_END_MAGIC = b"PK\x05\x06"
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64_LOCATOR_MAGIC = b"PK\x06\x07"
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_MAGIC = b"PK\x06\x06"
_MAX_ARCHIVE_COMMENT = 0xFFFF

# Linux refuses to create a symlink whose target is PATH_MAX (4096) bytes or
# more, so a longer "target" cannot be a real link.
_MAX_LINK_TARGET = 4095
# The kernel gives up after 40 nested links (MAXSYMLINKS, ELOOP); a chain that
# deep is not something a real package contains.
_MAX_LINK_DEPTH = 40

_DRIVE = re.compile(r"^[A-Za-z]:")


class ZipProblem(enum.Enum):
    """Why an upload was refused."""

    NOT_A_ZIP = "not-a-zip"  # no readable end record / central directory
    CORRUPT = "corrupt"  # an entry's data is unreadable, truncated, or fails its CRC
    ENCRYPTED = "encrypted"
    UNSUPPORTED_COMPRESSION = "unsupported-compression"
    UNSUPPORTED_FEATURE = "unsupported-feature"  # e.g. patch data, a newer zip version
    ESCAPES_ROOT = "escapes-root"  # a name or link target leaves the extraction root
    TOO_LARGE_UNZIPPED = "too-large-unzipped"
    TOO_MANY_ENTRIES = "too-many-entries"


class ZipRejected(LaminaError):
    """The upload is not an acceptable zip; ``detail`` says why, naming the entry."""

    def __init__(self, problem: ZipProblem, detail: str) -> None:
        # Both go to Exception.__init__ so the exception pickles and reprs sanely.
        super().__init__(problem, detail)
        self.problem = problem
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.problem.value}: {self.detail}"


@dataclasses.dataclass(frozen=True)
class ZipEntryInfo:
    """One archive entry as measured, in central directory order."""

    name: str  # as stored in the archive (already checked to stay inside the root)
    mode: int  # unix st_mode including the type bits, 0 when the zip carries none
    size: int  # real uncompressed size, counted while inflating
    is_dir: bool
    is_symlink: bool
    link_target: str | None  # the link's content for symlinks, else None


@dataclasses.dataclass(frozen=True)
class ZipReport:
    """A zip that passed every check."""

    entries: tuple[ZipEntryInfo, ...]
    unzipped_size: int  # sum of the entries' real sizes


def inspect_zip(fileobj: BinaryIO, *, max_unzipped: int, max_entries: int = MAX_ENTRIES) -> ZipReport:
    """Check a seekable zip file and measure it, raising :class:`ZipRejected` if unfit.

    Every entry is inflated (never trusting header sizes) and its CRC checked;
    the running total of real bytes may not exceed ``max_unzipped``. At most
    ``max_entries`` entries (counted before the central directory is parsed).
    Names and symlink targets must stay inside the extraction root. The file
    position is left wherever reading ended.
    """
    for label, limit in (("max_unzipped", max_unzipped), ("max_entries", max_entries)):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"{label} must be a non-negative int, got {limit!r}")
    _check_entry_count(fileobj, max_entries)
    try:
        archive = zipfile.ZipFile(fileobj)
    except NotImplementedError as exc:  # zipfile refuses newer "version needed" values
        raise ZipRejected(ZipProblem.UNSUPPORTED_FEATURE, str(exc)) from exc
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error) as exc:
        # ValueError covers undecodable UTF-8 names and seeks to negative offsets.
        raise ZipRejected(ZipProblem.NOT_A_ZIP, str(exc) or type(exc).__name__) from exc
    with archive:
        infos = archive.infolist()
    if len(infos) > max_entries:  # unreachable unless the pre-count and zipfile disagree
        raise _too_many(max_entries)

    # Everything decidable from the central directory first: a bad name is
    # reported as such even when its data would also blow the size limit.
    keys: list[tuple[str, ...]] = []
    for info in infos:
        _check_flags_and_method(info)
        keys.append(_name_key(info))

    # Read in file order: sequential I/O, and overlap shows as a backwards step.
    measured: dict[int, tuple[int, bytes | None]] = {}
    total = 0
    data_end = 0
    for index in sorted(range(len(infos)), key=lambda i: infos[i].header_offset):
        info = infos[index]
        if info.header_offset < data_end:
            raise ZipRejected(
                ZipProblem.CORRUPT, f"Entry {_q(info.orig_filename)} overlaps the previous entry."
            )
        data_start = _data_offset(fileobj, info)
        data_end = data_start + info.compress_size
        is_link = _kind(info)[1]
        size, head = _measure(fileobj, info, data_start, total, max_unzipped, keep_head=is_link)
        total += size
        measured[index] = (size, head)

    entries = tuple(_entry_info(info, *measured[i]) for i, info in enumerate(infos))
    _check_links(entries, keys)
    return ZipReport(entries=entries, unzipped_size=total)


def to_aws_error(exc: ZipRejected, max_unzipped: int) -> AwsError:
    """The AWS error for a rejected zip; raise it ``from exc`` at the service boundary."""
    if exc.problem is ZipProblem.TOO_LARGE_UNZIPPED:
        # Exact AWS text (recorded), even though AWS accepts a size equal to the limit.
        return InvalidParameterValueException(f"Unzipped size must be smaller than {max_unzipped} bytes")
    if exc.problem in (ZipProblem.ESCAPES_ROOT, ZipProblem.TOO_MANY_ENTRIES):
        # AWS only says "Could not unzip"; keep that sentence first so clients
        # matching on it still match, and say which entry is at fault.
        return InvalidParameterValueException(f"{COULD_NOT_UNZIP} {exc.detail}")
    return InvalidParameterValueException(COULD_NOT_UNZIP)


# --- entry count ----------------------------------------------------------------


def _too_many(max_entries: int, declared: int | None = None) -> ZipRejected:
    what = f"declares {declared} entries" if declared is not None else f"has more than {max_entries} entries"
    return ZipRejected(
        ZipProblem.TOO_MANY_ENTRIES, f"The archive {what}; at most {max_entries} are accepted."
    )


def _check_entry_count(fileobj: BinaryIO, max_entries: int) -> None:
    """Refuse more than ``max_entries`` central directory records, before zipfile parses them.

    Anything malformed is left for ``zipfile`` to report: this only counts.
    """
    try:
        directory = _central_directory(fileobj)
        if directory is None:
            return
        start, size, declared = directory
        if declared > max_entries:
            raise _too_many(max_entries, declared)
        if _count_records(fileobj, start, size, stop_after=max_entries) > max_entries:
            raise _too_many(max_entries)
    except (OSError, ValueError, struct.error):
        return


def _central_directory(fileobj: BinaryIO) -> tuple[int, int, int] | None:
    """(start, size, declared entry count) of the central directory, found as zipfile finds it.

    Mirrors ``zipfile._EndRecData``/``_RealGetContents``: the end record is at
    the very end, or else the last signature in the final 64 KiB (an archive
    comment may follow it); a zip64 locator just before it takes over the
    counts; the directory's start is corrected for bytes prepended to the
    archive (self-extractors).
    """
    file_size = fileobj.seek(0, 2)
    if file_size < _END.size:
        return None
    fileobj.seek(file_size - _END.size)
    tail = fileobj.read(_END.size)
    if tail[:4] == _END_MAGIC and tail[-2:] == b"\x00\x00":
        end_at, record = file_size - _END.size, tail
    else:
        search_from = max(file_size - _MAX_ARCHIVE_COMMENT - _END.size, 0)
        fileobj.seek(search_from)
        window = fileobj.read()
        found = window.rfind(_END_MAGIC)
        if found < 0 or len(window) - found < _END.size:
            return None
        end_at, record = search_from + found, window[found : found + _END.size]
    fields = _END.unpack(record)
    # The directory's own offset field is not needed: zipfile locates the
    # directory as ending where the end records begin.
    count, size = int(fields[4]), int(fields[5])
    extra = 0
    if end_at >= _END64_LOCATOR.size + _END64.size:
        fileobj.seek(end_at - _END64_LOCATOR.size)
        locator = fileobj.read(_END64_LOCATOR.size)
        if locator[:4] == _END64_LOCATOR_MAGIC:
            fileobj.seek(end_at - _END64_LOCATOR.size - _END64.size)
            record64 = fileobj.read(_END64.size)
            if record64[:4] == _END64_MAGIC:
                fields64 = _END64.unpack(record64)
                count, size = int(fields64[7]), int(fields64[8])
                extra = _END64_LOCATOR.size + _END64.size
    start = end_at - size - extra  # == offset + concat in zipfile's terms
    if start < 0:
        return None
    return start, size, count


def _count_records(fileobj: BinaryIO, start: int, size: int, *, stop_after: int) -> int:
    """Central directory records zipfile would parse (at most ``stop_after + 1``), a chunk at a time."""
    count = 0
    pos = 0  # offset inside the directory
    buf = b""
    buf_at = 0  # directory offset of buf[0]
    while pos < size and count <= stop_after:
        rel = pos - buf_at
        if rel + _CENTRAL_HEADER.size > len(buf):
            fileobj.seek(start + pos)
            buf = fileobj.read(min(_CHUNK, size - pos))
            buf_at, rel = pos, 0
            if len(buf) < _CENTRAL_HEADER.size:
                break  # truncated: zipfile says so
        magic, name_len, extra_len, comment_len = _CENTRAL_HEADER.unpack_from(buf, rel)
        if magic != _CENTRAL_MAGIC:
            break  # zipfile says so
        pos += _CENTRAL_HEADER.size + name_len + extra_len + comment_len
        count += 1
    return count


# --- entry data ---------------------------------------------------------------


def _check_flags_and_method(info: zipfile.ZipInfo) -> None:
    name = _q(info.orig_filename)
    if info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_CD_ENCRYPTED):
        raise ZipRejected(ZipProblem.ENCRYPTED, f"Entry {name} is encrypted.")
    if info.flag_bits & _FLAG_PATCHED:
        raise ZipRejected(ZipProblem.UNSUPPORTED_FEATURE, f"Entry {name} is compressed patch data.")
    if info.compress_type not in _SUPPORTED_METHODS:
        raise ZipRejected(
            ZipProblem.UNSUPPORTED_COMPRESSION,
            f"Entry {name} uses compression method {info.compress_type}.",
        )


def _data_offset(fileobj: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Validate the entry's local header and return where its data starts."""
    name = _q(info.orig_filename)
    try:
        fileobj.seek(info.header_offset)
        raw = fileobj.read(_LOCAL_HEADER.size)
        if len(raw) != _LOCAL_HEADER.size:
            raise ZipRejected(ZipProblem.CORRUPT, f"Entry {name}: truncated local header.")
        fields = _LOCAL_HEADER.unpack(raw)
        magic = fields[0]
        flags, name_len, extra_len = int(fields[3]), int(fields[10]), int(fields[11])
        if magic != _LOCAL_MAGIC:
            raise ZipRejected(ZipProblem.CORRUPT, f"Entry {name}: bad local header signature.")
        local_name_raw = fileobj.read(name_len)
    except (OSError, ValueError) as exc:
        raise ZipRejected(ZipProblem.CORRUPT, f"Entry {name}: unreadable local header ({exc}).") from exc
    try:
        local_name = local_name_raw.decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
    except UnicodeDecodeError:
        local_name = None
    if local_name != info.orig_filename:
        # A streaming extractor would use the local name: it must be the one we check.
        raise ZipRejected(ZipProblem.CORRUPT, f"Entry {name}: local header names {local_name_raw!r}.")
    if flags & _FLAG_ENCRYPTED:
        raise ZipRejected(ZipProblem.ENCRYPTED, f"Entry {name} is encrypted.")
    return info.header_offset + _LOCAL_HEADER.size + name_len + extra_len


def _raw_chunks(fileobj: BinaryIO, start: int, length: int, name: str) -> Iterator[bytes]:
    """The entry's compressed bytes, at most ``_CHUNK`` at a time."""
    try:
        fileobj.seek(start)
        left = length
        while left > 0:
            chunk = fileobj.read(min(_CHUNK, left))
            if not chunk:
                raise ZipRejected(ZipProblem.CORRUPT, f"Entry {name}: data is truncated.")
            left -= len(chunk)
            yield chunk
    except (OSError, ValueError) as exc:
        raise ZipRejected(ZipProblem.CORRUPT, f"Entry {name}: unreadable data ({exc}).") from exc


def _inflated_chunks(raw: Iterable[bytes], name: str) -> Iterator[bytes]:
    """Raw deflate (wbits -15, as zip stores it) in, at most ``_CHUNK`` bytes out per step."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        for chunk in raw:
            data = chunk
            while not inflater.eof:
                out = inflater.decompress(data, _CHUNK)
                if out:
                    yield out
                data = inflater.unconsumed_tail
                # Output shorter than the cap means zlib ran out of input rather
                # than room: nothing is pending, fetch more input.
                if not data and len(out) < _CHUNK:
                    break
            if inflater.eof:
                break  # trailing bytes after the final block are ignored, as zipfile does
    except zlib.error as exc:
        raise ZipRejected(ZipProblem.CORRUPT, f"Entry {name}: bad deflate data ({exc}).") from exc
    if not inflater.eof:
        raise ZipRejected(ZipProblem.CORRUPT, f"Entry {name}: deflate stream is truncated.")


def _measure(
    fileobj: BinaryIO,
    info: zipfile.ZipInfo,
    data_start: int,
    total_before: int,
    max_unzipped: int,
    *,
    keep_head: bool,
) -> tuple[int, bytes | None]:
    """Inflate one entry, returning its real size (and content, for a symlink)."""
    name = _q(info.orig_filename)
    raw = _raw_chunks(fileobj, data_start, info.compress_size, name)
    chunks = raw if info.compress_type == zipfile.ZIP_STORED else _inflated_chunks(raw, name)
    size = 0
    crc = 0
    head = bytearray()
    for out in chunks:
        size += len(out)
        if total_before + size > max_unzipped:
            raise ZipRejected(
                ZipProblem.TOO_LARGE_UNZIPPED,
                f"Unzipped size exceeds {max_unzipped} bytes at entry {name}.",
            )
        crc = zlib.crc32(out, crc)
        if keep_head and len(head) <= _MAX_LINK_TARGET:
            head += out[: _MAX_LINK_TARGET + 1 - len(head)]
    if crc != info.CRC:
        raise ZipRejected(ZipProblem.CORRUPT, f"Entry {name}: bad CRC-32.")
    if size != info.file_size:
        # The headers lie (the data is genuine: its CRC matched). zipfile, and
        # so any extractor built on it, would cut or pad the file; refuse instead.
        raise ZipRejected(
            ZipProblem.CORRUPT,
            f"Entry {name}: header claims {info.file_size} bytes, data has {size}.",
        )
    return size, (bytes(head) if keep_head else None)


def _kind(info: zipfile.ZipInfo) -> tuple[int, bool, bool]:
    """(st_mode, is_symlink, is_dir) of an entry."""
    # The high 16 bits of external_attr hold st_mode when the zip was made on
    # unix (Info-ZIP convention). We honour a link type whatever create_system
    # says: the extractor acts on this report, so checker and extractor agree.
    mode = info.external_attr >> 16
    is_symlink = stat.S_ISLNK(mode)
    is_dir = not is_symlink and (info.orig_filename.endswith(("/", "\\")) or stat.S_ISDIR(mode))
    return mode, is_symlink, is_dir


def _entry_info(info: zipfile.ZipInfo, size: int, head: bytes | None) -> ZipEntryInfo:
    mode, is_symlink, is_dir = _kind(info)
    target: str | None = None
    if is_symlink:
        assert head is not None  # _measure keeps the head of every link entry
        # surrogateescape keeps non-UTF-8 targets byte-exact via os.fsencode.
        target = head.decode("utf-8", "surrogateescape")
    return ZipEntryInfo(
        name=info.orig_filename,
        mode=mode,
        size=size,
        is_dir=is_dir,
        is_symlink=is_symlink,
        link_target=target,
    )


# --- paths --------------------------------------------------------------------


def _q(name: str) -> str:
    # repr quotes the name and makes NULs and control characters visible.
    return repr(name)


def _escapes(name: str, why: str = "points outside the archive root") -> ZipRejected:
    return ZipRejected(ZipProblem.ESCAPES_ROOT, f"Entry {_q(name)} {why}.")


def _is_absolute(path: str) -> bool:
    # Backslash counts as a separator and drive letters as roots: an extractor
    # on Windows (or a careless one on Linux) would read them that way.
    return path.startswith(("/", "\\")) or bool(_DRIVE.match(path))


def _components(path: str) -> list[str]:
    """Path components, splitting on both separators, without empty and '.' parts."""
    return [part for part in re.split(r"[/\\]", path) if part not in ("", ".")]


def _name_key(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """Refuse a name that would land outside the extraction root; return its components."""
    name = info.orig_filename  # zipfile's .filename silently cuts at NUL
    if "\x00" in name:
        raise _escapes(name, "has a NUL byte in its name")
    if _is_absolute(name):
        raise _escapes(name, "has an absolute path")
    parts = _components(name)
    if ".." in parts:
        raise _escapes(name)
    if not parts and not _kind(info)[2]:
        raise _escapes(name, "would replace the archive root")
    return tuple(parts)


def _check_links(entries: tuple[ZipEntryInfo, ...], keys: list[tuple[str, ...]]) -> None:
    """Refuse symlinks whose target, resolved as the kernel would, leaves the root."""
    links: dict[tuple[str, ...], str] = {}
    for entry, key in zip(entries, keys, strict=True):
        if entry.is_symlink:
            target = entry.link_target or ""
            if (
                not target
                or "\x00" in target
                or len(target.encode("utf-8", "surrogateescape")) > _MAX_LINK_TARGET
            ):
                raise _escapes(entry.name, "is a symlink with an invalid target")
            if _is_absolute(target):
                raise _escapes(entry.name, f"is a symlink to {_q(target)}, outside the archive root")
            links[key] = target

    if not links:
        return
    # An entry below a symlink would be written through it, wherever it points.
    for entry, key in zip(entries, keys, strict=True):
        for depth in range(1, len(key)):
            if key[:depth] in links:
                raise _escapes(entry.name, f"lies below the symlink {_q('/'.join(key[:depth]))}")

    resolver = _LinkResolver(links)
    for entry, key in zip(entries, keys, strict=True):
        if entry.is_symlink:
            why = resolver.escape_reason(key)
            if why is not None:
                raise _escapes(entry.name, why)


class _Escape(LaminaError):
    """Internal: a link resolution left the root (or could not be proven not to)."""


class _LinkResolver:
    """Resolves links within the archive's own tree the way the kernel would.

    A path is a tuple of components from the root. Link targets are walked
    component by component from the link's directory; ``..`` above the root is
    an escape, and a component that is itself a link is replaced by that link's
    resolution. Results are memoised (a link resolves the same from anywhere),
    so each target is walked once. A loop resolves to ``None``: the kernel
    stops with ELOOP there, so nothing beyond it is ever reached.
    """

    def __init__(self, links: Mapping[tuple[str, ...], str]) -> None:
        self._links = links
        self._memo: dict[tuple[str, ...], tuple[str, ...] | None] = {}
        self._active: list[tuple[str, ...]] = []

    def escape_reason(self, link: tuple[str, ...]) -> str | None:
        """Why the link at ``link`` is unsafe, or None when it stays inside."""
        try:
            self._resolve(link)
        except _Escape as exc:
            return str(exc)
        return None

    def _resolve(self, link: tuple[str, ...]) -> tuple[str, ...] | None:
        if link in self._memo:
            return self._memo[link]
        if link in self._active:
            return None
        if len(self._active) >= _MAX_LINK_DEPTH:
            # Deeper than the kernel would follow; refusing is simpler than
            # proving such a chain harmless (and keeps recursion bounded), and
            # no real package has one.
            raise _Escape(f"starts a chain of more than {_MAX_LINK_DEPTH} symlinks")
        self._active.append(link)
        try:
            result: tuple[str, ...] | None
            stack = list(link[:-1])
            for part in _components(self._links[link]):
                if part == "..":
                    if not stack:
                        raise _Escape(
                            f"is a symlink to {_q(self._links[self._active[0]])}, outside the archive root"
                        )
                    stack.pop()
                    continue
                stack.append(part)
                key = tuple(stack)
                if key in self._links:
                    resolved = self._resolve(key)
                    if resolved is None:
                        result = None
                        break
                    stack = list(resolved)
            else:
                result = tuple(stack)
        finally:
            self._active.pop()
        self._memo[link] = result
        return result
