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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    pure = tag.endswith("-none-any")
    py, abi, plat = tag.split("-")
    wheel_tags = [
        f"Tag: {p}-{a}-{pl}" for p in py.split(".") for a in abi.split(".") for pl in plat.split(".")
    ]
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
    candidates.append(
        Path(sys.base_prefix) / "include" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    )
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


NATIVE_INIT = "from tinynative._native import answer\n"


def build_wheelhouse(house: Path) -> Path:
    """The wheels the builder tests use (see each one's comment)."""
    make_wheel(house, "tinydep", "1.0", {"tinydep/__init__.py": "VALUE = 'dep'\n"})
    make_wheel(
        house,
        "tinypure",
        "1.0",
        {
            "tinypure/__init__.py": "from tinydep import VALUE as DEP\n\ndef main():\n    print('tinypure', DEP)\n",
            "tinypure/__init__.pyi": "DEP: str\n",
            "tinypure/tests/test_it.py": "def test():\n    pass\n" * 50,
            "tinypure/docs/guide.txt": "words " * 500,
            "tinypure/tool.sh": "#!/bin/sh\necho tool\n",
        },
        requires=("tinydep>=1.0",),
        scripts={"tinypure": "tinypure:main"},
        modes={"tinypure/tool.sh": 0o755},
    )
    native = compile_extension(house / "build") or fake_elf(ELF_X86_64)
    for tag, so in (
        ("cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64", native),
        ("cp38-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64", fake_elf(ELF_AARCH64)),
    ):
        make_wheel(
            house,
            "tinynative",
            "1.0",
            {"tinynative/__init__.py": NATIVE_INIT, "tinynative/_native.abi3.so": so},
            tag=tag,
        )
    # Only for glibc >= 2.28: Amazon Linux 2023 (python3.12+) runs it, Amazon Linux 2 does not.
    make_wheel(
        house,
        "newglibc",
        "1.0",
        {"newglibc/__init__.py": "", "newglibc/_native.abi3.so": native},
        tag="cp38-abi3-manylinux_2_28_x86_64",
    )
    # Says x86_64, holds an aarch64 shared object.
    make_wheel(
        house,
        "mislabelled",
        "1.0",
        {"mislabelled/__init__.py": "", "mislabelled/_native.abi3.so": fake_elf(ELF_AARCH64)},
        tag="cp38-abi3-manylinux_2_17_x86_64",
    )
    (house / "sdistonly-1.0.tar.gz").write_bytes(b"not really a tarball")
    return house


def lamina_layer(
    args: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, expect: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """``lamina layer ARGS...`` as a user runs it; asserts its exit status unless ``expect`` is None."""
    cmd = [sys.executable, "-m", "lamina.cli.main", "layer", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if expect is not None:
        assert proc.returncode == expect, (
            f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def lamina_build(
    args: Sequence[str], cwd: Path, wheels: Path, *, cache: Path | None = None, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    """``lamina layer build`` with only the test wheelhouse as its index."""
    build = ["build", "--no-index", "--find-links", str(wheels), *args]
    return lamina_layer(build, cwd=cwd, env=builder_env(cache or cwd / "cache"), expect=expect)


def lamina_publish(
    endpoint: str,
    *args: str,
    key: str = "test",
    secret: str = "test",
    region: str = "us-east-1",
    expect: int = 0,
) -> subprocess.CompletedProcess[str]:
    """``lamina layer publish`` with credentials from the environment only (no AWS config files)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    return lamina_layer(["publish", *args, "--endpoint-url", endpoint], env=env, expect=expect)


def last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON object a ``--json`` command prints as its last line."""
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc
