"""``lamina layer check``: the real command on zips holding objects gcc builds here (one needing glibc
2.28, one a newer libstdc++), a hand-made aarch64 object, a wrong-ABI extension module, and a layer
``lamina layer build`` made."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from lamina_server import LaminaServer
from wheelhouse import ELF_AARCH64, build_wheelhouse, fake_elf, lamina_build, lamina_layer, last_json

NEEDS_GLIBC_2_28 = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
int probe(void) { struct statx sx; return statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &sx); }
"""
NEEDS_GLIBCXX_3_4_26 = r"""
#include <filesystem>
int probe() { return std::filesystem::create_directory("/nonexistent/x") ? 1 : 0; }
"""
SO = "python/probe/_probe.cpython-311-x86_64-linux-gnu.so"

pytestmark = pytest.mark.skipif(
    os.uname().machine != "x86_64" or shutil.which("gcc") is None or shutil.which("g++") is None,
    reason="compiles x86_64 shared objects with gcc and g++",
)


def _compile(tmp: Path, name: str, source: str, compiler: str, *flags: str) -> bytes:
    src = tmp / name
    src.write_text(source)
    out = tmp / f"{name}.so"
    subprocess.run([compiler, *flags, "-shared", "-fPIC", str(src), "-o", str(out)], check=True)
    return out.read_bytes()


def _zip(path: Path, files: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("objects")
    return {
        "glibc": _compile(tmp, "statx.c", NEEDS_GLIBC_2_28, "gcc"),
        "glibcxx": _compile(tmp, "fs.cpp", NEEDS_GLIBCXX_3_4_26, "g++", "-std=c++17"),
    }


def test_glibc_too_new_for_amazon_linux_2(tmp_path: Path, objects: dict[str, bytes]) -> None:
    layer = _zip(tmp_path / "layer.zip", {"python/probe/__init__.py": "", SO: objects["glibc"]})
    proc = lamina_layer(["check", str(layer), "--runtime", "python3.11"], expect=1)
    lines = proc.stdout.splitlines()
    assert lines[0] == (
        f"{layer}: 1 file(s) cannot load on python3.11 x86_64 (Amazon Linux 2: glibc 2.26, GLIBCXX_3.4.24, "
        "CXXABI_1.3.11) (1 ELF file(s), 1 extension module(s) checked):"
    )
    assert lines[1] == f"  {SO}: needs GLIBC_2.28, python3.11 (Amazon Linux 2) has glibc 2.26"
    assert lines[2].startswith(
        "fix: rebuild it for the runtime with `lamina layer build -r requirements.txt --runtime python3.11 "
        "--arch x86_64`"
    )
    assert len(lines) == 3 and proc.stderr == ""


def test_same_object_on_python312_names_the_abi_not_glibc(tmp_path: Path, objects: dict[str, bytes]) -> None:
    layer = _zip(tmp_path / "layer.zip", {SO: objects["glibc"]})
    proc = lamina_layer(["check", str(layer), "--runtime", "python3.12", "--json"], expect=1)
    doc = last_json(proc)
    assert doc["problems"] == [
        {"path": SO, "issue": "python-abi", "detail": "is built for Python 3.11, not python3.12 (x86_64)"}
    ]
    assert "--runtime python3.12 --arch x86_64" in doc["fix"]
    assert f"  {SO}: is built for Python 3.11" in proc.stderr
    ok = _zip(tmp_path / "ok.zip", {"python/probe/_probe.cpython-312-x86_64-linux-gnu.so": objects["glibc"]})
    proc = lamina_layer(["check", str(ok), "--runtime", "python3.12"])
    assert proc.stdout == (
        f"{ok}: ok on python3.12 x86_64 (Amazon Linux 2023: glibc 2.34, GLIBCXX_3.4.29, CXXABI_1.3.13): "
        "1 ELF file(s), 1 extension module(s) checked\n"
    )


def test_libstdcxx_too_new_and_an_aarch64_library(tmp_path: Path, objects: dict[str, bytes]) -> None:
    layer = _zip(
        tmp_path / "layer.zip",
        {"lib/libfs.so": objects["glibcxx"], "lib/libarm.so.1": fake_elf(ELF_AARCH64), "python/x.py": ""},
    )
    proc = lamina_layer(["check", str(layer), "--runtime", "python3.10", "--json"], expect=1)
    doc = last_json(proc)
    assert [(p["path"], p["detail"]) for p in doc["problems"]] == [
        (
            "lib/libfs.so",
            "needs GLIBCXX_3.4.26, python3.10 (Amazon Linux 2) has GLIBCXX_3.4.24 (libstdc++.so.6)",
        ),
        ("lib/libarm.so.1", "built for aarch64 (64-bit), python3.10 x86_64 runs x86_64 code"),
    ]
    assert doc["elf_files"] == 2 and doc["extensions"] == 0
    arm = lamina_layer(["check", str(layer), "--runtime", "python3.13", "--arch", "arm64"], expect=1)
    assert "  lib/libfs.so: built for x86_64 (64-bit), python3.13 arm64 runs aarch64 code" in arm.stdout
    assert "libarm" not in arm.stdout
    assert "--runtime python3.13 --arch arm64" in arm.stdout


def test_layer_built_by_lamina_passes(tmp_path: Path) -> None:
    house = build_wheelhouse(tmp_path / "house")
    (tmp_path / "requirements.txt").write_text("tinynative\n")
    lamina_build(["-r", "requirements.txt", "--runtime", "python3.12", "--no-verify", "-q"], tmp_path, house)
    layer = tmp_path / "layer.zip"
    proc = lamina_layer(["check", str(layer), "--runtime", "python3.12", "--json"])
    doc = last_json(proc)
    assert doc["ok"] is True and doc["problems"] == [] and doc["fix"] is None
    assert doc["extensions"] == 1
    # The wheel is abi3 for cp38: fine on python3.9; an arm64 function cannot load the x86_64 module.
    lamina_layer(["check", str(layer), "--runtime", "python3.9"])
    proc = lamina_layer(["check", str(layer), "--runtime", "python3.12", "--arch", "arm64"], expect=1)
    assert "python/tinynative/_native.abi3.so: built for x86_64" in proc.stdout


def test_bad_input(tmp_path: Path) -> None:
    layer = _zip(tmp_path / "layer.zip", {"python/x.py": ""})
    proc = lamina_layer(["check", str(layer), "--runtime", "python3.7"], expect=2)
    assert proc.stderr.startswith("lamina: unknown runtime 'python3.7'")
    proc = lamina_layer(["check", str(tmp_path / "missing.zip"), "--runtime", "python3.12"], expect=2)
    assert proc.stderr == f"lamina: no such file: {tmp_path / 'missing.zip'}\n"
    (tmp_path / "not.zip").write_text("hello")
    proc = lamina_layer(["check", str(tmp_path / "not.zip"), "--runtime", "python3.12"], expect=2)
    assert proc.stderr.startswith(f"lamina: {tmp_path / 'not.zip'}: cannot read the zip:")
    assert proc.stdout == ""
    json.loads(lamina_layer(["check", str(layer), "--runtime", "python3.12", "--json"]).stdout)


def test_console_checks_a_layer_version_on_its_compatible_runtimes(
    server: LaminaServer, tmp_path: Path, objects: dict[str, bytes]
) -> None:
    from test_console_api import Browser

    alice, bob = Browser(server), Browser(server)
    assert alice.signin("AKIDALICE111", "alice-secret")[0] == 200
    assert bob.signin("AKIDBOB22222", "bob-secret")[0] == 200
    data = _zip(tmp_path / "l.zip", {"python/probe/_probe.abi3.so": objects["glibc"]}).read_bytes()
    status, doc = alice.call(
        "lambda",
        "PublishLayerVersion",
        {
            "LayerName": "checked",
            "Content": {"ZipFile": base64.b64encode(data).decode()},
            "CompatibleRuntimes": ["python3.11", "python3.12", "nodejs20.x"],
        },
    )
    assert status == 200, doc
    status, doc = alice.post(
        "layer-check", {"region": "us-east-1", "LayerName": "checked", "VersionNumber": 1}
    )
    assert status == 200, doc
    assert doc["LayerVersionArn"] == "arn:aws:lambda:us-east-1:111111111111:layer:checked:1"
    by_runtime = {c["runtime"]: c for c in doc["checks"]}
    assert list(by_runtime) == ["python3.11", "python3.12", "nodejs20.x"]
    assert by_runtime["python3.11"]["problems"] == [
        {
            "path": "python/probe/_probe.abi3.so",
            "issue": "symbol-version",
            "detail": "needs GLIBC_2.28, python3.11 (Amazon Linux 2) has glibc 2.26",
        }
    ]
    assert by_runtime["python3.12"]["ok"] is True and by_runtime["python3.12"]["arch"] == "x86_64"
    assert by_runtime["nodejs20.x"] == {
        "runtime": "nodejs20.x",
        "arch": "x86_64",
        "skipped": "not a Python runtime lamina knows",
    }
    # Checked as GetLayerVersion: another account without permission is refused, as through the API.
    status, doc = bob.post(
        "layer-check",
        {
            "region": "us-east-1",
            "LayerName": "arn:aws:lambda:us-east-1:111111111111:layer:checked",
            "VersionNumber": 1,
        },
    )
    assert status == 403 and doc["error"]["code"] == "AccessDeniedException"
    status, doc = alice.post("layer-check", {"LayerName": "checked", "VersionNumber": "1"})
    assert status == 400 and doc["error"]["code"] == "ValidationException"
    status, doc = alice.post("layer-check", {"LayerName": "missing", "VersionNumber": 1})
    assert status == 404 and doc["error"]["code"] == "ResourceNotFoundException"
