"""Wheels made by the tests, so that building layers needs no package index.

``make_wheel`` writes a valid wheel (METADATA, WHEEL, entry points, RECORD with hashes);
``compile_extension`` builds a real CPython extension module for this host with gcc (stable ABI,
so one file serves every python3.X); ``fake_elf`` is a shared-object header for another machine
(enough for the builder's and the tests' architecture checks, never loaded).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
ELF_X86_64 = 62
ELF_AARCH64 = 183

EXTENSION_C = r"""
#define Py_LIMITED_API 0x03080000
#include <Python.h>

static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, "42"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};
PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
"""


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    wheelhouse: Path,
    name: str,
    version: str,
    files: dict[str, bytes | str],
    *,
    tag: str = "py3-none-any",
    requires: tuple[str, ...] = (),
    scripts: dict[str, str] | None = None,
    modes: dict[str, int] | None = None,
) -> Path:
    """Write ``<name>-<version>-<tag>.whl`` into ``wheelhouse``; ``scripts`` are console entry points."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    meta = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    pure = tag.endswith("-none-any")
    py, abi, plat = tag.split("-")
    wheel_tags = [f"Tag: {p}-{a}-{pl}" for p in py.split(".") for a in abi.split(".") for pl in plat.split(".")]
    contents: dict[str, bytes] = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    contents[f"{info}/METADATA"] = ("\n".join(meta) + "\n\n").encode()
    contents[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: lamina-tests\n"
        f"Root-Is-Purelib: {'true' if pure else 'false'}\n" + "\n".join(wheel_tags) + "\n"
    ).encode()
    if scripts:
        contents[f"{info}/entry_points.txt"] = (
            "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())
        ).encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in contents.items():
        writer.writerow([path, _record_hash(data), len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    contents[f"{info}/RECORD"] = record.getvalue().encode()
    path = wheelhouse / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc, data in contents.items():
            zi = zipfile.ZipInfo(arc, date_time=(2024, 1, 1, 0, 0, 0))
            zi.external_attr = ((modes or {}).get(arc, 0o644) | 0o100000) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    return path


def python_include(runtime: str = "python3.12") -> Path | None:
    """The C headers of an installed runtime's interpreter, or of this interpreter."""
    stamp = RUNTIMES_DIR / runtime / "lamina-runtime.json"
    candidates = []
    if stamp.is_file():
        prefix = Path(json.loads(stamp.read_text())["prefix"])
        candidates.append(prefix / "include" / runtime)
    candidates.append(Path(sys.base_prefix) / "include" / f"python{sys.version_info[0]}.{sys.version_info[1]}")
    return next((c for c in candidates if (c / "Python.h").is_file()), None)


def compile_extension(workdir: Path, runtime: str = "python3.12") -> bytes | None:
    """A real ``_native`` extension module (stable ABI) for this host, or None without gcc/headers."""
    include = python_include(runtime)
    if shutil.which("gcc") is None or include is None:
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / "native.c"
    src.write_text(EXTENSION_C)
    out = workdir / "_native.abi3.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", f"-I{include}", str(src), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def fake_elf(machine: int) -> bytes:
    """A little-endian ELF64 shared-object header claiming ``machine``."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    return ident + struct.pack("<HHI", 3, machine, 1) + bytes(64 - 24)


def elf_machine(data: bytes) -> int:
    """e_machine of an ELF file's bytes (the tests' own reading, independent of the builder's)."""
    assert data[:4] == b"\x7fELF", "not an ELF file"
    return int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")


def builder_env(cache: Path) -> dict[str, str]:
    """Environment for ``lamina layer build`` in tests: no pip configuration from the host, own cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["LAMINA_CACHE_DIR"] = str(cache)
    env.pop("SOURCE_DATE_EPOCH", None)
    return env
