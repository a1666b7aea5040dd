"""Image layers (tar archives) unpacked into one root filesystem, safely.

Facts about OCI layers (image-spec ``layer.md``): a layer is a tar (gzip-compressed as a rule) of the
changes to the layers below it; they are applied in order, each entry replacing what was there. A
file named ``.wh.<name>`` deletes ``<name>`` of the layers below (a *whiteout*); a file named
``.wh..wh..opq`` in a directory hides everything the layers below had in that directory (an *opaque*
whiteout); neither appears in the result, and neither hides what its own layer adds.

A layer is data from the network, unpacked on the host, so every entry is checked before anything
is written: no absolute name, no ``..``, no entry written through a symbolic link (a layer that
plants ``etc -> /`` and then writes ``etc/passwd`` would write the host's), hard links only to files
of the tree itself, no device nodes (skipped: a root filesystem image needs none, the sandbox gives
its own ``/dev``), no setuid or setgid bit, no group or other write. Files belong to the server's
user; the image's root filesystem is mounted read-only into environments.

What a layer costs the host is bounded too, not only its file bytes: a pax or GNU long-name header is
read into memory whole, so its size is capped; entries (inodes, each a directory's block) are
counted; paths are at most ``MAX_DEPTH`` deep (the host's tools, ``shutil.rmtree`` and ``os.walk``
among them, recurse once a level); GNU sparse files (which docker and BuildKit never write) are
refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from lamina.errors import LaminaError

CHUNK = 1 << 20
WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
#: What survives of an entry's mode: rwx for the owner, r-x for group and other, and the sticky bit
#: (``/tmp`` keeps it). Gone: setuid, setgid, group and other write.
KEPT_MODE_BITS = 0o1755
#: Lambda's limit on a container image: 10 GB uncompressed, all layers included ("Lambda container
#: image settings", AWS Lambda quotas). Also what a decompression bomb meets.
MAX_IMAGE_BYTES = 10 * 1000**3
#: Entries of all layers (files, directories, links, whiteouts): an image of empty files or
#: directories has no bytes to count but exhausts inodes. AWS's largest base images hold tens of
#: thousands.
MAX_IMAGE_ENTRIES = 1_000_000
#: Components of an entry's path. Linux allows 4096 bytes (``PATH_MAX``), some 2000 levels, more
#: than Python's recursion limit lets ``shutil.rmtree`` remove.
MAX_DEPTH = 128
#: Bytes of a pax extended header or GNU long name/link record, which tarfile reads into memory.
MAX_HEADER_BYTES = 1 << 20
_HEADER_RECORDS = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class UnsafeLayerError(LaminaError):
    """A layer holds an entry that would escape the root filesystem, or is not a readable tar."""


@dataclass(frozen=True)
class LayerStats:
    """What unpacking one layer did."""

    files: int
    bytes: int
    skipped_devices: int


class _CheckedTarInfo(tarfile.TarInfo):
    """A tar header, refused before tarfile reads what it announces into memory."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _CheckedTarInfo:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _HEADER_RECORDS and info.size > MAX_HEADER_BYTES:
            raise UnsafeLayerError(
                f"layer has a {info.size}-byte extended header record (at most {MAX_HEADER_BYTES})"
            )
        if info.type == tarfile.GNUTYPE_SPARSE:
            raise UnsafeLayerError(f"layer entry {info.name!r} is a GNU sparse file")
        return info

    def _proc_gnusparse_10(self, next: tarfile.TarInfo, pax_headers: object, tarfile: object) -> None:
        # tarfile's hook for a pax header announcing a GNU sparse file of format 1.0, whose map
        # (read into a list, one number per line of the member's data) has no bound but the
        # stream's length: refused before it is read.
        raise UnsafeLayerError(f"layer entry {next.name!r} is a GNU sparse file")


def _clean_name(name: str, what: str = "entry") -> str:
    """The entry's path relative to the root ('' for the root itself); unsafe names refused."""
    if name.startswith("/"):
        raise UnsafeLayerError(f"layer {what} {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayerError(f"layer {what} {name!r} leaves the root filesystem ('..')")
    if any("\0" in p for p in parts):
        raise UnsafeLayerError(f"layer {what} {name!r} has a NUL byte in its name")
    if len(parts) > MAX_DEPTH:
        raise UnsafeLayerError(f"layer {what} {name[:200]!r}... is more than {MAX_DEPTH} directories deep")
    return "/".join(parts)


class LayerUnpacker:
    """Applies layers, in order, to the directory ``root`` (which it alone writes while it works)."""

    def __init__(
        self, root: Path, max_bytes: int = MAX_IMAGE_BYTES, max_entries: int = MAX_IMAGE_ENTRIES
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.written = 0  # bytes of regular files written so far, all layers
        self.entries = 0  # entries read so far, all layers
        self._created: set[str] = set()
        self._opaqued: set[str] = set()

    def _parent_dir(self, rel: str, name: str, *, create: bool = True) -> str | None:
        """The host path of ``rel``'s parent, created as directories if missing (else None); refuses
        a parent that is (or passes through) a symbolic link or a file."""
        parent = self.root
        parts = rel.split("/")[:-1]
        for part in parts:
            parent = parent / part
            try:
                st = os.lstat(parent)
            except FileNotFoundError:
                if not create:
                    return None
                os.mkdir(parent, 0o755)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeLayerError(
                    f"layer entry {name!r} is written through the symbolic link "
                    f"{str(parent.relative_to(self.root))!r}"
                )
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafeLayerError(f"layer entry {name!r} is under {part!r}, which is not a directory")
        return str(parent)

    def _remove(self, path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def apply(self, fileobj: IO[bytes], compression: str = "") -> LayerStats:
        """Unpack one layer from a stream on top of the tree: a tar, ``compression="gz"`` gzipped.
        Only what the layer's media type says is decompressed: xz, which tarfile would detect too,
        lets 150 kB of layer claim a 1.5 GB dictionary in memory."""
        if compression not in ("", "gz"):
            raise ValueError(f"unknown layer compression {compression!r}")
        tar_mode: Literal["r|", "r|gz"] = "r|gz" if compression else "r|"
        self._created = set()
        self._opaqued = set()
        files = size = devices = 0
        try:
            with tarfile.open(fileobj=fileobj, mode=tar_mode, tarinfo=_CheckedTarInfo) as tar:
                while (member := tar.next()) is not None:
                    # A stream's TarFile keeps every member it read: a million entries, a million
                    # objects in memory. None is needed again (hard links are resolved on disk).
                    tar.members.clear()  # type: ignore[attr-defined]  # (not in typeshed)
                    self.entries += 1
                    if self.entries > self.max_entries:
                        raise UnsafeLayerError(
                            f"the image has more than {self.max_entries} entries (files, directories, links)"
                        )
                    if member.sparse is not None:
                        raise UnsafeLayerError(f"layer entry {member.name!r} is a GNU sparse file")
                    if member.size < 0:
                        raise UnsafeLayerError(f"layer entry {member.name!r} has a negative size")
                    rel = _clean_name(member.name)
                    if not rel:
                        continue  # the root itself: its mode stays ours
                    base = rel.rsplit("/", 1)[-1]
                    if base == OPAQUE:
                        self._opaque(rel, member.name)
                        continue
                    if base.startswith(WHITEOUT_PREFIX):
                        self._whiteout(rel, base, member.name)
                        continue
                    if member.ischr() or member.isblk():
                        devices += 1
                        continue
                    parent = self._parent_dir(rel, member.name)
                    assert parent is not None  # created
                    target = os.path.join(parent, base)
                    mode = member.mode & KEPT_MODE_BITS
                    if member.isdir():
                        with contextlib.suppress(FileNotFoundError):
                            if not stat.S_ISDIR(os.lstat(target).st_mode):
                                os.unlink(target)
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(target, 0o700)
                        os.chmod(target, mode | 0o700)
                    elif member.isreg():
                        self.written += member.size
                        if self.written > self.max_bytes:
                            raise UnsafeLayerError(
                                f"the image is larger than {self.max_bytes} bytes uncompressed "
                                "(Lambda's limit for an image, all layers included)"
                            )
                        self._remove(target)
                        src = tar.extractfile(member)
                        assert src is not None  # a regular member always has a stream
                        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                        with os.fdopen(fd, "wb") as out:
                            shutil.copyfileobj(src, out, CHUNK)
                        os.chmod(target, mode)
                        os.utime(target, (member.mtime, member.mtime))
                        files += 1
                        size += member.size
                    elif member.issym():
                        # Any target may be stored: it is resolved inside the environment's own root,
                        # and nothing here is ever written through a link (see _parent_dir).
                        self._remove(target)
                        os.symlink(member.linkname, target)
                        with contextlib.suppress(OSError):
                            os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
                    elif member.islnk():
                        self._hardlink(member, rel, target)
                        files += 1
                    elif member.isfifo():
                        self._remove(target)
                        os.mkfifo(target, mode)
                    else:
                        raise UnsafeLayerError(f"layer entry {member.name!r} is of an unknown type")
                    self._mark_created(rel)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise UnsafeLayerError(f"layer is not a readable tar archive: {exc}") from exc
        return LayerStats(files, size, devices)

    def _mark_created(self, rel: str) -> None:
        # Its parents too: an opaque whiteout keeps a directory its own layer fills.
        while rel and rel not in self._created:
            self._created.add(rel)
            rel = rel.rpartition("/")[0]

    def _hardlink(self, member: tarfile.TarInfo, rel: str, target: str) -> None:
        source_rel = _clean_name(member.linkname, "hard link target")
        if not source_rel:
            raise UnsafeLayerError(f"layer hard link {member.name!r} points at the root directory")
        source_dir = self._parent_dir(source_rel, member.linkname, create=False)
        source = os.path.join(source_dir or str(self.root), source_rel.rsplit("/", 1)[-1])
        try:
            if source_dir is None:
                raise FileNotFoundError(source)
            st = os.lstat(source)
        except FileNotFoundError:
            raise UnsafeLayerError(
                f"layer hard link {member.name!r} points at {member.linkname!r}, which is not in the image"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeLayerError(
                f"layer hard link {member.name!r} points at {member.linkname!r}, which is not a file"
            )
        if source_rel == rel:
            return
        self._remove(target)
        os.link(source, target, follow_symlinks=False)

    def _whiteout(self, rel: str, base: str, name: str) -> None:
        hidden = base[len(WHITEOUT_PREFIX) :]
        if not hidden or hidden in (".", ".."):
            raise UnsafeLayerError(f"layer whiteout {name!r} names nothing")
        victim_rel = rel[: -len(base)] + hidden
        if victim_rel in self._created:
            return  # a whiteout hides the layers below, never its own layer's entries
        parent = self._parent_dir(rel, name, create=False)
        if parent is not None:
            self._remove(os.path.join(parent, hidden))

    def _opaque(self, rel: str, name: str) -> None:
        directory_rel = rel[: -len(OPAQUE)].rstrip("/")
        if directory_rel in self._opaqued:
            return  # a repeated marker would list (and compare) the whole directory again
        self._opaqued.add(directory_rel)
        directory = self._parent_dir(rel, name)
        assert directory is not None  # created
        prefix = f"{directory_rel}/" if directory_rel else ""
        for entry in os.listdir(directory):
            if f"{prefix}{entry}" not in self._created:
                self._remove(os.path.join(directory, entry))


def tree_size(root: Path) -> int:
    """Bytes of the regular files under ``root`` (each hard-linked file once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total
