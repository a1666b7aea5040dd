"""ELF files as the dynamic loader reads them: machine, type, symbol versions, dependencies.

Facts this relies on (System V gABI; LSB "Symbol Versioning"; ld.so(8)):
- ``e_ident[EI_CLASS]`` 1/2 = 32/64-bit, ``e_ident[EI_DATA]`` 1/2 = little/big endian; ``e_machine``
  62 is x86-64, 183 AArch64. Only ``ET_EXEC`` (2) and ``ET_DYN`` (3) files are loaded by anyone.
- ``.gnu.version_r`` (``SHT_GNU_verneed``) lists, per needed library, the version names the file needs
  (``GLIBC_2.28`` from ``libc.so.6``); the loader refuses a file when the library it found lacks one:
  ``<library path>: version `GLIBC_2.28' not found (required by <file>)``. Files stripped of section
  headers still carry it through ``DT_VERNEED``/``DT_VERNEEDNUM`` in ``PT_DYNAMIC``.
  ``.gnu.version_d`` (``SHT_GNU_verdef``) lists what a library itself defines.
- The dynamic segment names the libraries a file needs (``DT_NEEDED``) and where to look first
  (``DT_RPATH``, searched before ``LD_LIBRARY_PATH`` unless ``DT_RUNPATH`` is present; ``DT_RUNPATH``,
  searched after it); ``$ORIGIN`` in them is the file's own directory.
- Everything here works on any buffer: an ``mmap`` of a large library reads only the pages touched.

Shared by ``lamina layer check`` (:mod:`lamina.builder.elfcheck`) and the host fallback's native-code
gate (:mod:`lamina.runtime.native_gate`).
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass

from lamina.errors import LaminaError

Buffer = bytes | mmap.mmap  # what the parser reads: whole bytes, or a mapped file

ET_EXEC = 2
ET_DYN = 3
SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERNEED = 0x6FFFFFFE
PT_LOAD = 1
PT_DYNAMIC = 2
DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
DT_RPATH = 15
DT_RUNPATH = 29
DT_VERDEF = 0x6FFFFFFC
DT_VERDEFNUM = 0x6FFFFFFD
DT_VERNEED = 0x6FFFFFFE
DT_VERNEEDNUM = 0x6FFFFFFF
# e_machine -> the name ``uname -m`` and wheel tags use.
MACHINES = {
    62: "x86_64",
    183: "aarch64",
    3: "i386",
    40: "arm",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    243: "riscv64",
}
_VERSIONED = re.compile(r"(GLIBC|GLIBCXX|CXXABI)_(\d+(?:\.\d+)+)")
_MAX_RECORDS = 4096  # a corrupt chain must not loop for ever


class ElfError(LaminaError, ValueError):
    """The bytes start like ELF but cannot be read as ELF (truncated or corrupt)."""


@dataclass(frozen=True)
class VersionNeed:
    library: str  # the DT_NEEDED name, e.g. libc.so.6
    versions: tuple[str, ...]  # GLIBC_2.2.5, GLIBC_2.28, ...


@dataclass(frozen=True)
class ElfFile:
    bits: int  # 32 | 64
    little: bool
    type: int  # e_type
    machine: int  # e_machine
    needs: tuple[VersionNeed, ...] = ()
    defines: tuple[str, ...] = ()  # version definitions (a library's own, e.g. GLIBCXX_3.4.28)
    needed: tuple[str, ...] = ()  # DT_NEEDED: the libraries it loads, in order
    rpath: tuple[str, ...] = ()  # DT_RPATH directories (searched before LD_LIBRARY_PATH)
    runpath: tuple[str, ...] = ()  # DT_RUNPATH directories (searched after it)

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"ELF machine {self.machine}")

    @property
    def loadable(self) -> bool:
        """An executable or shared object (what a loader or exec would take), not a ``.o``."""
        return self.type in (ET_EXEC, ET_DYN)


def is_elf(data: Buffer) -> bool:
    """True when the bytes start with ELF's magic."""
    return data[:4] == b"\x7fELF"


class _Reader:
    def __init__(self, data: Buffer, bits: int, little: bool) -> None:
        self.data = data
        self.bits = bits
        self.end = "<" if little else ">"
        self.word = "Q" if bits == 64 else "I"

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        fmt = self.end + fmt.replace("W", self.word)
        size = struct.calcsize(fmt)
        if offset < 0 or offset + size > len(self.data):
            raise ElfError(
                f"truncated: {size} bytes wanted at offset {offset}, the file has {len(self.data)}"
            )
        return struct.unpack_from(fmt, self.data, offset)

    def string(self, offset: int) -> str:
        if not 0 <= offset < len(self.data):
            raise ElfError(f"string offset {offset} is outside the file")
        end = self.data.find(b"\0", offset)
        if end < 0:
            raise ElfError(f"unterminated string at offset {offset}")
        return bytes(self.data[offset:end]).decode("utf-8", "replace")


def parse_elf(data: Buffer) -> ElfFile:
    """Read the header and symbol-version records of an ELF file's bytes (32/64-bit, either endian)."""
    if not is_elf(data):
        raise ElfError("not an ELF file")
    if len(data) < 16 or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ElfError("unknown ELF class or byte order")
    r = _Reader(data, 32 if data[4] == 1 else 64, data[5] == 1)
    if r.bits == 64:
        e_type, e_machine, _v, _entry, phoff, shoff, _fl, _eh, phentsize, phnum, shentsize, shnum, _si = (
            r.unpack("HHIQQQIHHHHHH", 16)
        )
    else:
        e_type, e_machine, _v, _entry, phoff, shoff, _fl, _eh, phentsize, phnum, shentsize, shnum, _si = (
            r.unpack("HHIIIIIHHHHHH", 16)
        )
    if e_type not in (ET_EXEC, ET_DYN):
        return ElfFile(r.bits, r.end == "<", e_type, e_machine)
    dyn = _Dynamic(r, phoff, phentsize, phnum)
    found = _from_sections(r, shoff, shentsize, shnum)
    needs, defines = found if found is not None else _from_dynamic(r, dyn)
    return ElfFile(
        r.bits,
        r.end == "<",
        e_type,
        e_machine,
        needs,
        defines,
        needed=dyn.strings(r, DT_NEEDED),
        rpath=_paths(dyn.strings(r, DT_RPATH)),
        runpath=_paths(dyn.strings(r, DT_RUNPATH)),
    )


def _paths(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p for value in values for p in value.split(":") if p)


def _sections(r: _Reader, shoff: int, shentsize: int, shnum: int) -> list[tuple[int, ...]]:
    fmt = "IIWWWWIIWW"
    if shoff == 0:
        return []
    if shnum == 0:  # more than 0xff00 sections: the count is in section 0's sh_size
        shnum = r.unpack(fmt, shoff)[5]
    if shnum > 65536 or shentsize < struct.calcsize(r.end + fmt.replace("W", r.word)):
        raise ElfError(f"implausible section headers ({shnum} of {shentsize} bytes)")
    return [r.unpack(fmt, shoff + i * shentsize) for i in range(shnum)]


def _from_sections(
    r: _Reader, shoff: int, shentsize: int, shnum: int
) -> tuple[tuple[VersionNeed, ...], tuple[str, ...]] | None:
    sections = _sections(r, shoff, shentsize, shnum)
    if not sections:
        return None
    needs: tuple[VersionNeed, ...] = ()
    defines: tuple[str, ...] = ()
    for _name, sh_type, _flags, _addr, offset, _size, link, info, _align, _entsize in sections:
        if sh_type not in (SHT_GNU_VERNEED, SHT_GNU_VERDEF):
            continue
        if link >= len(sections):
            raise ElfError(f"version section links to section {link}, the file has {len(sections)}")
        strtab = sections[link][4]
        if sh_type == SHT_GNU_VERNEED:
            needs = _verneed(r, offset, info, strtab)
        else:
            defines = _verdef(r, offset, info, strtab)
    return needs, defines


class _Dynamic:
    """A file's dynamic segment: its entries in order, and file offsets of its addresses."""

    def __init__(self, r: _Reader, phoff: int, phentsize: int, phnum: int) -> None:
        fmt = "IIWWWWWW" if r.bits == 64 else "IWWWWWII"
        self.loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
        self.entries: list[tuple[int, int]] = []
        dynamic: tuple[int, int] | None = None
        for i in range(min(phnum, 4096)):
            fields = r.unpack(fmt, phoff + i * phentsize)
            if r.bits == 64:
                p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = fields[:6]
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz = fields[:5]
            if p_type == PT_LOAD:
                self.loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            return
        entry = 16 if r.bits == 64 else 8
        for i in range(min(dynamic[1] // entry, _MAX_RECORDS)):
            tag, value = r.unpack("qQ" if r.bits == 64 else "iI", dynamic[0] + i * entry)
            if tag == DT_NULL:
                break
            self.entries.append((tag, value))

    def first(self, tag: int) -> int | None:
        return next((value for t, value in self.entries if t == tag), None)

    def offset_of(self, vaddr: int) -> int:
        for start, offset, size in self.loads:
            if start <= vaddr < start + size:
                return vaddr - start + offset
        raise ElfError(f"address {vaddr:#x} is in no loaded segment")

    def strings(self, r: _Reader, tag: int) -> tuple[str, ...]:
        """The string values of every ``tag`` entry (``DT_NEEDED`` names, ``DT_RUNPATH`` lists)."""
        strtab = self.first(DT_STRTAB)
        if strtab is None:
            return ()
        base = self.offset_of(strtab)
        return tuple(r.string(base + value) for t, value in self.entries if t == tag)


def _from_dynamic(r: _Reader, dyn: _Dynamic) -> tuple[tuple[VersionNeed, ...], tuple[str, ...]]:
    """The version records found through the dynamic segment (files stripped of section headers)."""
    strtab_vaddr = dyn.first(DT_STRTAB)
    if strtab_vaddr is None:
        return (), ()
    strtab = dyn.offset_of(strtab_vaddr)
    needs: tuple[VersionNeed, ...] = ()
    defines: tuple[str, ...] = ()
    verneed = dyn.first(DT_VERNEED)
    if verneed is not None:
        count = dyn.first(DT_VERNEEDNUM)
        needs = _verneed(r, dyn.offset_of(verneed), _MAX_RECORDS if count is None else count, strtab)
    verdef = dyn.first(DT_VERDEF)
    if verdef is not None:
        count = dyn.first(DT_VERDEFNUM)
        defines = _verdef(r, dyn.offset_of(verdef), _MAX_RECORDS if count is None else count, strtab)
    return needs, defines


def _verneed(r: _Reader, offset: int, count: int, strtab: int) -> tuple[VersionNeed, ...]:
    # Elf_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32.
    # Elf_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
    out: list[VersionNeed] = []
    for _ in range(min(count, _MAX_RECORDS)):
        _version, cnt, file, aux, nxt = r.unpack("HHIII", offset)
        versions: list[str] = []
        at = offset + aux
        for _ in range(min(cnt, _MAX_RECORDS)):
            _hash, _flags, _other, name, anext = r.unpack("IHHII", at)
            versions.append(r.string(strtab + name))
            if anext == 0:
                break
            at += anext
        out.append(VersionNeed(r.string(strtab + file), tuple(versions)))
        if nxt == 0:
            break
        offset += nxt
    return tuple(out)


def _verdef(r: _Reader, offset: int, count: int, strtab: int) -> tuple[str, ...]:
    # Elf_Verdef: vd_version u16, vd_flags u16, vd_ndx u16, vd_cnt u16, vd_hash u32, vd_aux u32,
    # vd_next u32; its first Elf_Verdaux (vda_name u32, vda_next u32) names the version.
    names: list[str] = []
    for _ in range(min(count, _MAX_RECORDS)):
        _version, _flags, _ndx, cnt, _hash, aux, nxt = r.unpack("HHHHIII", offset)
        if cnt:
            names.append(r.string(strtab + r.unpack("II", offset + aux)[0]))
        if nxt == 0:
            break
        offset += nxt
    return tuple(names)


def version_of(name: str) -> tuple[str, tuple[int, ...]] | None:
    """``GLIBC_2.28`` -> ``("GLIBC", (2, 28))``; None for names not checked (``GLIBC_PRIVATE``, ...)."""
    m = _VERSIONED.fullmatch(name)
    if m is None:
        return None
    return m.group(1), tuple(int(p) for p in m.group(2).split("."))
