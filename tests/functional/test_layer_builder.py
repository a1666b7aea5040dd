"""``lamina layer build``: the real command, pip and a wheelhouse these tests make (no index needed).

Verification (imports inside an execution environment) needs root: it is exercised in
``tests/privileged/test_layer_verify.py``; here builds pass ``--no-verify`` unless the test is about
what happens without it.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
from wheelhouse import (
    ELF_AARCH64,
    ELF_X86_64,
    build_wheelhouse,
    elf_machine,
    lamina_build,
    last_json,
    make_wheel,
)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


def write_requirements(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pure_package_with_dependency_layout_and_json(tmp_path: Path, wheels: Path) -> None:
    req = write_requirements(tmp_path / "requirements.txt", "tinypure")
    proc = lamina_build(
        ["-r", str(req), "--runtime", "python3.12", "--json", "--no-verify"], tmp_path, wheels
    )
    doc = last_json(proc)
    assert list(doc) == ["zip", "sha256", "size", "unzipped_size", "cached"]
    out = tmp_path / "layer.zip"
    data = out.read_bytes()
    assert doc["zip"] == str(out)
    assert doc["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert doc["size"] == len(data)
    assert doc["cached"] is False
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        infos = {i.filename: i for i in zf.infolist()}
        assert doc["unzipped_size"] == sum(i.file_size for i in infos.values())
        names = list(infos)
        assert names == sorted(names)
        assert "python/tinypure/__init__.py" in names and "python/tinydep/__init__.py" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        assert not [n for n in names if n.endswith(("/direct_url.json", "/REQUESTED"))]
        for info in infos.values():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            mode = info.external_attr >> 16
            if info.is_dir():
                assert stat.S_IMODE(mode) == 0o755
            else:
                assert stat.S_IMODE(mode) in (0o644, 0o755), info.filename
        assert stat.S_IMODE(infos["python/tinypure/tool.sh"].external_attr >> 16) == 0o755
        assert stat.S_IMODE(infos["python/tinypure/__init__.py"].external_attr >> 16) == 0o644
        # The console script runs Lambda's interpreter, not the one that built the layer.
        script = zf.read("python/bin/tinypure").decode()
        assert script.startswith("#!/var/lang/bin/python3.12\n"), script
        assert stat.S_IMODE(infos["python/bin/tinypure"].external_attr >> 16) == 0o755
        # RECORD matches the files the layer holds (the rewritten script's hash included).
        record = zf.read("python/tinypure-1.0.dist-info/RECORD").decode()
        for path, digest, size in csv.reader(io.StringIO(record)):
            if not digest:
                continue
            arc = "python/bin/" + path.rsplit("/", 1)[-1] if path.startswith("../") else f"python/{path}"
            content = zf.read(arc)
            assert int(size) == len(content), path
            expected = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}", path
    assert "CodeSha256" in proc.stderr and "not verified: --no-verify given" in proc.stderr


def test_same_inputs_give_the_same_bytes(tmp_path: Path, wheels: Path) -> None:
    req = write_requirements(tmp_path / "requirements.txt", "tinypure==1.0", "tinynative==1.0")
    outputs = []
    for run in ("one", "two"):
        work = tmp_path / run
        work.mkdir()
        os.utime(wheels, None)
        lamina_build(
            ["-r", str(req), "--runtime", "python3.12", "--no-cache", "--no-verify", "-o", "out.zip"],
            work,
            wheels,
        )
        outputs.append((work / "out.zip").read_bytes())
    assert outputs[0] == outputs[1]


def test_unchanged_rebuild_is_cached_and_says_so(tmp_path: Path, wheels: Path) -> None:
    req = write_requirements(tmp_path / "requirements.txt", "tinypure==1.0", "tinydep==1.0")
    args = ["-r", str(req), "--runtime", "python3.12", "--json", "--no-verify"]
    first = last_json(lamina_build(args, tmp_path, wheels))
    (tmp_path / "layer.zip").unlink()
    again = lamina_build(args, tmp_path, wheels)
    second = last_json(again)
    assert first["cached"] is False and second["cached"] is True
    assert "Unchanged" in again.stderr and "reusing cached build" in again.stderr
    assert "Resolving" not in again.stderr and "Collecting" not in again.stderr
    assert second["sha256"] == first["sha256"]
    data = (tmp_path / "layer.zip").read_bytes()
    assert base64.b64encode(hashlib.sha256(data).digest()).decode() == first["sha256"]
    # The key covers the architecture, the runtime, the options and the requirements.
    for changed in (
        ["--arch", "arm64"],
        ["--runtime", "python3.11"],
        ["--slim"],
        ["--layout", "site-packages"],
    ):
        doc = last_json(lamina_build([*args, *changed], tmp_path, wheels))
        assert doc["cached"] is False, changed
    write_requirements(req, "tinypure==1.0", "tinydep==1.0", "tinynative==1.0")
    assert last_json(lamina_build(args, tmp_path, wheels))["cached"] is False


def test_new_release_in_the_wheelhouse_is_picked_up(tmp_path: Path, wheels: Path) -> None:
    house = tmp_path / "house"
    shutil.copytree(wheels, house)
    req = write_requirements(tmp_path / "requirements.txt", "tinydep")
    args = ["-r", str(req), "--runtime", "python3.12", "--json", "--no-verify"]
    assert last_json(lamina_build(args, tmp_path, house))["cached"] is False
    assert last_json(lamina_build(args, tmp_path, house))["cached"] is True
    make_wheel(house, "tinydep", "1.1", {"tinydep/__init__.py": "VALUE = 'dep 1.1'\n"})
    doc = last_json(lamina_build(args, tmp_path, house))
    assert doc["cached"] is False
    with zipfile.ZipFile(tmp_path / "layer.zip") as zf:
        assert zf.read("python/tinydep/__init__.py") == b"VALUE = 'dep 1.1'\n"


@pytest.mark.parametrize(
    ("arch", "machine", "tag"),
    [("x86_64", ELF_X86_64, "manylinux_2_17_x86_64"), ("arm64", ELF_AARCH64, "manylinux_2_17_aarch64")],
)
def test_native_wheels_for_the_target_architecture(
    tmp_path: Path, wheels: Path, arch: str, machine: int, tag: str
) -> None:
    req = write_requirements(tmp_path / "requirements.txt", "tinynative")
    proc = lamina_build(["-r", str(req), "--runtime", "python3.12", "--arch", arch], tmp_path, wheels)
    with zipfile.ZipFile(tmp_path / "layer.zip") as zf:
        sos = [n for n in zf.namelist() if n.endswith(".so")]
        assert sos == ["python/tinynative/_native.abi3.so"]
        assert elf_machine(zf.read(sos[0])) == machine
        wheel_file = zf.read("python/tinynative-1.0.dist-info/WHEEL").decode()
        assert tag in wheel_file
    if arch == "arm64" and os.uname().machine == "x86_64":
        assert "not verified: this host is x86_64; arm64 layers cannot run here" in proc.stdout


def test_glibc_of_the_runtime_decides_which_wheels_fit(tmp_path: Path, wheels: Path) -> None:
    req = write_requirements(tmp_path / "requirements.txt", "newglibc")
    bad = lamina_build(["-r", str(req), "--runtime", "python3.11", "--no-verify"], tmp_path, wheels, expect=1)
    assert "no compatible wheel for requirement 'newglibc'" in bad.stderr
    assert "python3.11 x86_64 (Amazon Linux 2, glibc 2.26" in bad.stderr
    assert not (tmp_path / "layer.zip").exists()
    lamina_build(["-r", str(req), "--runtime", "python3.12", "--no-verify"], tmp_path, wheels)
    assert (tmp_path / "layer.zip").is_file()


@pytest.mark.parametrize("requirement", ["doesnotexist", "sdistonly"])
def test_unresolvable_requirement_names_it_and_writes_nothing(
    tmp_path: Path, wheels: Path, requirement: str
) -> None:
    (tmp_path / "layer.zip").write_bytes(b"previous build")
    req = write_requirements(tmp_path / "requirements.txt", "tinypure", requirement)
    proc = lamina_build(
        ["-r", str(req), "--runtime", "python3.12", "--arch", "arm64"], tmp_path, wheels, expect=1
    )
    assert f"no compatible wheel for requirement '{requirement}' on python3.12 arm64" in proc.stderr
    assert "manylinux_2_34_aarch64" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "layer.zip").read_bytes() == b"previous build"


def test_shared_object_for_another_machine_is_refused(tmp_path: Path, wheels: Path) -> None:
    req = write_requirements(tmp_path / "requirements.txt", "mislabelled")
    proc = lamina_build(
        ["-r", str(req), "--runtime", "python3.12", "--no-verify"], tmp_path, wheels, expect=1
    )
    assert "python/mislabelled/_native.abi3.so (arm64)" in proc.stderr
    assert "another architecture than x86_64" in proc.stderr
    assert not (tmp_path / "layer.zip").exists()


def test_slim_reports_what_it_saved(tmp_path: Path, wheels: Path) -> None:
    req = write_requirements(tmp_path / "requirements.txt", "tinypure")
    full = last_json(
        lamina_build(
            ["-r", str(req), "--runtime", "python3.12", "--no-verify", "--json", "-o", "full.zip"],
            tmp_path,
            wheels,
        )
    )
    proc = lamina_build(
        ["-r", str(req), "--runtime", "python3.12", "--no-verify", "--slim", "-o", "slim.zip"],
        tmp_path,
        wheels,
    )
    assert "slim: removed 3 file(s) (tests, docs, stubs), saved" in proc.stdout
    with zipfile.ZipFile(tmp_path / "slim.zip") as zf:
        names = zf.namelist()
        assert "python/tinypure/__init__.py" in names
        assert not [n for n in names if "/tests/" in n or "/docs/" in n or n.endswith(".pyi")]
        record = zf.read("python/tinypure-1.0.dist-info/RECORD").decode()
        assert "tests/test_it.py" not in record and "__init__.pyi" not in record
        slim_unzipped = sum(i.file_size for i in zf.infolist())
    assert slim_unzipped < int(full["unzipped_size"])  # type: ignore[call-overload]


def test_site_packages_layout_pyproject_and_bin_lib(tmp_path: Path, wheels: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\ndependencies = ["tinydep==1.0"]\n'
        '[project.optional-dependencies]\nextra = ["tinypure"]\n'
    )
    (tmp_path / "mybin").mkdir()
    (tmp_path / "mybin" / "hello").write_text("#!/bin/sh\necho hello\n")
    (tmp_path / "mybin" / "hello").chmod(0o700)
    (tmp_path / "mylib").mkdir()
    (tmp_path / "mylib" / "libdata.txt").write_text("data\n")
    lamina_build(
        [
            "--pyproject",
            "pyproject.toml",
            "--extra",
            "extra",
            "--runtime",
            "python3.11",
            "--layout",
            "site-packages",
            "--bin",
            "mybin",
            "--lib",
            "mylib",
            "--no-verify",
        ],
        tmp_path,
        wheels,
    )
    with zipfile.ZipFile(tmp_path / "layer.zip") as zf:
        names = zf.namelist()
        assert "python/lib/python3.11/site-packages/tinydep/__init__.py" in names
        assert "python/lib/python3.11/site-packages/tinypure/__init__.py" in names
        assert "bin/hello" in names and "lib/libdata.txt" in names
        assert stat.S_IMODE(zf.getinfo("bin/hello").external_attr >> 16) == 0o755
        assert stat.S_IMODE(zf.getinfo("lib/libdata.txt").external_attr >> 16) == 0o644


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runtime", "python3.7"], "unknown runtime 'python3.7'"),
        (["--runtime", "nodejs20.x"], "unknown runtime 'nodejs20.x'"),
        (["-r", "missing.txt"], "no such file: missing.txt"),
        (["--pyproject", "missing.toml"], "no such file: missing.toml"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, wheels: Path, args: list[str], message: str) -> None:
    write_requirements(tmp_path / "requirements.txt", "tinydep")
    base = ["--runtime", "python3.12"] if "--runtime" not in args else []
    source = ["-r", "requirements.txt"] if "-r" not in args and "--pyproject" not in args else []
    proc = lamina_build([*source, *base, *args], tmp_path, wheels, expect=2)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_output_and_cache_problems(tmp_path: Path, wheels: Path) -> None:
    req = write_requirements(tmp_path / "requirements.txt", "tinydep")
    (tmp_path / "out").mkdir()
    proc = lamina_build(
        ["-r", str(req), "--runtime", "python3.12", "--no-verify", "-o", "out"], tmp_path, wheels, expect=1
    )
    assert "cannot write out: it is a directory" in proc.stderr and "Traceback" not in proc.stderr
    # A cache that cannot be written is said, and the build still succeeds.
    (tmp_path / "cachefile").write_text("not a directory")
    proc = lamina_build(
        [
            "-r",
            str(req),
            "--runtime",
            "python3.12",
            "--no-verify",
            "--cache-dir",
            str(tmp_path / "cachefile" / "sub"),
        ],
        tmp_path,
        wheels,
    )
    assert "warning: cannot write the cache" in proc.stderr
    assert (tmp_path / "layer.zip").is_file()
