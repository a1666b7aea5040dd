"""Layer builder pieces: target tags, deterministic zips, input fingerprints, tree normalisation."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from lamina.builder import inputs
from lamina.builder.targets import BuildTarget, TargetError
from lamina.builder.tree import TreeError, check_machine, normalise, top_level_modules
from lamina.builder.zipout import Entry, entries_of, write_zip


def test_amazon_linux_2_runtimes_accept_glibc_2_26_and_older() -> None:
    tags = BuildTarget.parse("python3.11", "x86_64").platform_tags()
    assert tags[0] == "manylinux_2_26_x86_64"
    assert "manylinux_2_27_x86_64" not in tags and "manylinux_2_28_x86_64" not in tags
    for legacy in (
        "manylinux2014_x86_64",
        "manylinux2010_x86_64",
        "manylinux1_x86_64",
        "manylinux_2_5_x86_64",
    ):
        assert legacy in tags
    assert (
        tags.index("manylinux_2_17_x86_64")
        < tags.index("manylinux2014_x86_64")
        < tags.index("manylinux_2_16_x86_64")
    )


def test_amazon_linux_2023_runtimes_accept_glibc_2_34() -> None:
    t = BuildTarget.parse("python3.12", "arm64")
    tags = t.platform_tags()
    assert tags[0] == "manylinux_2_34_aarch64" and tags[-1] == "manylinux2014_aarch64"
    assert "manylinux_2_35_aarch64" not in tags and "manylinux2010_aarch64" not in tags
    assert t.machine == "aarch64" and t.python_version == "3.12" and t.base_image == "Amazon Linux 2023"
    assert BuildTarget.parse("python3.8").glibc == (2, 26)
    assert BuildTarget.parse("python3.13").glibc == (2, 34)


@pytest.mark.parametrize(
    ("runtime", "arch"), [("python3.7", "x86_64"), ("python3", "x86_64"), ("python3.12", "amd64")]
)
def test_unknown_targets(runtime: str, arch: str) -> None:
    with pytest.raises(TargetError):
        BuildTarget.parse(runtime, arch)


def _tree(root: Path) -> None:
    (root / "python" / "pkg").mkdir(parents=True)
    (root / "python" / "pkg" / "__init__.py").write_text("X = 1\n" * 100)
    (root / "python" / "pkg" / "run.sh").write_text("#!/bin/sh\n")
    (root / "python" / "pkg" / "run.sh").chmod(0o700)
    (root / "python" / "pkg" / "empty.txt").write_bytes(b"")
    (root / "python" / "pkg" / "random.bin").write_bytes(os.urandom(3000))  # stored, not deflated
    (root / "python" / "ünï.py").write_text("")


def test_zip_is_deterministic_and_standard(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        _tree(root)
    (b / "python" / "pkg" / "random.bin").write_bytes((a / "python" / "pkg" / "random.bin").read_bytes())
    os.utime(b / "python" / "pkg" / "__init__.py", (1, 1))
    ra = write_zip(entries_of(a), tmp_path / "a.zip")
    rb = write_zip(entries_of(b), tmp_path / "b.zip")
    data = (tmp_path / "a.zip").read_bytes()
    assert data == (tmp_path / "b.zip").read_bytes()
    assert ra == rb
    assert ra.sha256 == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert ra.size == len(data) and ra.files == 5
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        infos = {i.filename: i for i in zf.infolist()}
        assert list(infos) == sorted(infos)
        assert infos["python/pkg/random.bin"].compress_type == zipfile.ZIP_STORED
        assert infos["python/pkg/__init__.py"].compress_type == zipfile.ZIP_DEFLATED
        assert zf.read("python/pkg/__init__.py") == b"X = 1\n" * 100
        assert stat.S_IMODE(infos["python/pkg/run.sh"].external_attr >> 16) == 0o755
        assert stat.S_IMODE(infos["python/pkg/empty.txt"].external_attr >> 16) == 0o644
        assert infos["python/pkg/"].is_dir()
        assert "python/ünï.py" in infos
        assert {i.date_time for i in infos.values()} == {(1980, 1, 1, 0, 0, 0)}
        assert ra.unzipped_size == sum(i.file_size for i in infos.values())


def test_source_date_epoch_sets_the_timestamp(tmp_path: Path) -> None:
    _tree(tmp_path / "t")
    write_zip(entries_of(tmp_path / "t"), tmp_path / "e.zip", epoch=1_700_000_000)
    with zipfile.ZipFile(tmp_path / "e.zip") as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_write_zip_refuses_too_many_entries(tmp_path: Path) -> None:
    from lamina.builder.zipout import ZipError

    with pytest.raises(ZipError):
        write_zip([Entry(f"d{i}/", None) for i in range(70_000)], tmp_path / "x.zip")


def test_pinned_requirements_are_a_lock(tmp_path: Path) -> None:
    locked = tmp_path / "locked.txt"
    locked.write_text(
        "# pinned\nrequests==2.32.3 \\\n    --hash=sha256:abc\nidna==3.7 ; python_version >= '3.8'\n-c constraints.txt\n"
    )
    (tmp_path / "constraints.txt").write_text("urllib3<3\n")
    reqs = inputs.from_requirements_file(locked)
    assert reqs.pinned and reqs.count == 2
    assert any("urllib3<3" in m for m in reqs.material)  # the constraints file is part of the key
    loose = tmp_path / "loose.txt"
    loose.write_text("requests>=2\nidna==3.7\n")
    assert not inputs.from_requirements_file(loose).pinned
    before = inputs.from_requirements_file(locked).fingerprint()
    (tmp_path / "constraints.txt").write_text("urllib3<2\n")
    assert inputs.from_requirements_file(locked).fingerprint() != before


def test_requirement_input_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(inputs.InputError, match="lists no requirements"):
        inputs.from_requirements_file(tmp_path / "empty.txt")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndynamic = ["dependencies"]\n')
    with pytest.raises(inputs.InputError, match="dynamic"):
        inputs.from_pyproject(tmp_path / "pyproject.toml")
    (tmp_path / "bad.toml").write_text("[project\n")
    with pytest.raises(inputs.InputError, match="not valid TOML"):
        inputs.from_pyproject(tmp_path / "bad.toml")
    (tmp_path / "noextra.toml").write_text('[project]\nname = "x"\ndependencies = ["a"]\n')
    with pytest.raises(inputs.InputError, match="no optional-dependencies group 'dev'"):
        inputs.from_pyproject(tmp_path / "noextra.toml", ["dev"])


def test_normalise_rewrites_shebangs_records_and_drops_run_dependent_files(tmp_path: Path) -> None:
    site = tmp_path / "python"
    info = site / "pkg-1.0.dist-info"
    (site / "pkg" / "__pycache__").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("")
    (site / "pkg" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"x")
    (site / "bin").mkdir()
    (site / "bin" / "pkg").write_text("#!/home/me/venv/bin/python3 -E\nimport pkg\n")
    info.mkdir()
    for name in ("METADATA", "INSTALLER", "REQUESTED", "direct_url.json"):
        (info / name).write_text(name)
    (info / "RECORD").write_text(
        "pkg/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"
        "pkg/__pycache__/__init__.cpython-312.pyc,,\n"
        "../../bin/pkg,sha256=old,40\n"
        "pkg-1.0.dist-info/REQUESTED,sha256=x,0\n"
        "pkg-1.0.dist-info/direct_url.json,sha256=x,9\n"
        "pkg-1.0.dist-info/INSTALLER,sha256=x,9\n"
        "pkg-1.0.dist-info/RECORD,,\n"
    )
    report = normalise(site, BuildTarget.parse("python3.13"), slim=False)
    assert (site / "bin" / "pkg").read_text() == "#!/var/lang/bin/python3.13 -E\nimport pkg\n"
    assert not (site / "pkg" / "__pycache__").exists()
    assert not (info / "REQUESTED").exists() and not (info / "direct_url.json").exists()
    script = (site / "bin" / "pkg").read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(script).digest()).rstrip(b"=").decode()
    assert (info / "RECORD").read_text().splitlines() == [
        "pkg/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0",
        f"../../bin/pkg,sha256={digest},{len(script)}",
        "pkg-1.0.dist-info/INSTALLER,sha256=x,9",
        "pkg-1.0.dist-info/RECORD,,",
    ]
    assert report.modules == ["pkg"] and set(report.packages) == {"pkg"}


def test_top_level_modules(tmp_path: Path) -> None:
    for d in ("pkg", "ns/sub", "x.dist-info", "bin", "data_only"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "ns" / "sub" / "m.py").write_text("")
    (tmp_path / "data_only" / "x.txt").write_text("")
    (tmp_path / "single.py").write_text("")
    (tmp_path / "_ext.cpython-312-x86_64-linux-gnu.so").write_bytes(b"")
    (tmp_path / "not-a-module.py").write_text("")
    assert top_level_modules(tmp_path) == ["_ext", "ns", "pkg", "single"]


def test_check_machine(tmp_path: Path) -> None:
    header = b"\x7fELF\x02\x01\x01" + bytes(9) + (3).to_bytes(2, "little")
    (tmp_path / "a.so").write_bytes(header + (62).to_bytes(2, "little") + bytes(40))
    check_machine(tmp_path, BuildTarget.parse("python3.12", "x86_64"))
    with pytest.raises(TreeError, match=r"a.so \(x86_64\)"):
        check_machine(tmp_path, BuildTarget.parse("python3.12", "arm64"))
