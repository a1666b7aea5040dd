"""``lamina layer build`` against the real package index (skipped when it cannot be reached): a
package with native wheels, for both architectures, as users build it."""

from __future__ import annotations

import os
import urllib.request
import zipfile
from pathlib import Path

import pytest
from wheelhouse import ELF_AARCH64, ELF_X86_64, elf_machine, lamina_layer

pytestmark = pytest.mark.network


def _index_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/markupsafe/", timeout=10) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.mark.parametrize(("arch", "machine"), [("x86_64", ELF_X86_64), ("arm64", ELF_AARCH64)])
def test_markupsafe_from_pypi(tmp_path: Path, arch: str, machine: int) -> None:
    if not _index_reachable():
        pytest.skip("the package index (pypi.org) cannot be reached from here")
    (tmp_path / "requirements.txt").write_text("markupsafe==3.0.2\n")
    env = {**os.environ, "LAMINA_CACHE_DIR": str(tmp_path / "cache")}
    lamina_layer(
        ["build", "-r", "requirements.txt", "--runtime", "python3.12", "--arch", arch], cwd=tmp_path, env=env
    )
    with zipfile.ZipFile(tmp_path / "layer.zip") as zf:
        sos = [n for n in zf.namelist() if n.endswith(".so")]
        assert sos and all(
            f"-{'x86_64' if arch == 'x86_64' else 'aarch64'}-linux-gnu.so" in n for n in sos
        ), sos
        assert {elf_machine(zf.read(n)) for n in sos} == {machine}
        wheel = zf.read("python/MarkupSafe-3.0.2.dist-info/WHEEL").decode()
        assert f"cp312-cp312-manylinux_2_17_{'x86_64' if arch == 'x86_64' else 'aarch64'}" in wheel
