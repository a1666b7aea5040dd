"""Layers built by ``lamina layer build`` verified in real execution environments, published with
``lamina layer publish`` and used by a real function."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip
from wheelhouse import (
    RUNTIMES_DIR,
    build_wheelhouse,
    compile_extension,
    fake_elf,
    lamina_build,
    lamina_publish,
    last_json,
    make_wheel,
)

pytestmark = pytest.mark.privileged

RUNTIME = "python3.12"
if not (RUNTIMES_DIR / RUNTIME / "lamina-runtime.json").is_file():
    pytest.skip(f"no {RUNTIME} runtime installed in {RUNTIMES_DIR} (make setup)", allow_module_level=True)
if os.uname().machine != "x86_64":
    pytest.skip("the test wheelhouse's real extension is x86_64", allow_module_level=True)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    house = build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))
    if compile_extension(house / "check") is None:
        pytest.skip("gcc or the Python headers are missing: no real extension module to import")
    make_wheel(
        house,
        "raisesonimport",
        "1.0",
        {"raisesonimport/__init__.py": "raise ImportError('needs libfoo.so.1')\n"},
    )
    # Claims x86_64 and is an x86_64 ELF header, but no loadable object: dlopen refuses it.
    make_wheel(
        house,
        "brokenso",
        "1.0",
        {
            "brokenso/__init__.py": "from brokenso._native import x\n",
            "brokenso/_native.abi3.so": fake_elf(62),
        },
        tag="cp38-abi3-manylinux_2_17_x86_64",
    )
    make_wheel(house, "exitsonimport", "1.0", {"exitsonimport.py": "import os\nos._exit(3)\n"})
    return house


def test_native_layer_is_verified_in_an_execution_environment(tmp_path: Path, wheels: Path) -> None:
    (tmp_path / "requirements.txt").write_text("tinynative\ntinypure\n")
    proc = lamina_build(["-r", "requirements.txt", "--runtime", RUNTIME], tmp_path, wheels)
    assert "Verifying: importing 3 module(s) in a python3.12 execution environment" in proc.stderr
    assert "verified: imported 3 module(s) in a python3.12 execution environment" in proc.stdout
    again = lamina_build(["-r", "requirements.txt", "--runtime", RUNTIME], tmp_path, wheels)
    assert "(cached)" in again.stdout and "Verifying" not in again.stderr


def test_cached_unverified_build_is_verified_when_asked(tmp_path: Path, wheels: Path) -> None:
    (tmp_path / "requirements.txt").write_text("tinynative\n")
    first = lamina_build(["-r", "requirements.txt", "--runtime", RUNTIME, "--no-verify"], tmp_path, wheels)
    assert "not verified: --no-verify given" in first.stdout
    second = lamina_build(["-r", "requirements.txt", "--runtime", RUNTIME, "--json"], tmp_path, wheels)
    assert last_json(second)["cached"] is True
    assert "verified: imported 1 module(s)" in second.stderr


def test_import_failures_fail_the_build_and_write_nothing(tmp_path: Path, wheels: Path) -> None:
    (tmp_path / "requirements.txt").write_text("tinypure\nraisesonimport\nbrokenso\n")
    proc = lamina_build(["-r", "requirements.txt", "--runtime", RUNTIME], tmp_path, wheels, expect=1)
    err = proc.stderr
    assert "verification failed: 2 module(s) do not import in python3.12 (x86_64)" in err
    assert "raisesonimport: ImportError: needs libfoo.so.1" in err
    assert "brokenso: ImportError:" in err and "_native.abi3.so" in err
    assert "tinypure" not in err.split("verification failed")[1]
    assert not (tmp_path / "layer.zip").exists()
    # --no-verify writes it anyway.
    lamina_build(["-r", "requirements.txt", "--runtime", RUNTIME, "--no-verify"], tmp_path, wheels)
    assert (tmp_path / "layer.zip").is_file()


def test_module_that_kills_the_runtime_is_named(tmp_path: Path, wheels: Path) -> None:
    (tmp_path / "requirements.txt").write_text("exitsonimport\n")
    proc = lamina_build(["-r", "requirements.txt", "--runtime", RUNTIME], tmp_path, wheels, expect=1)
    assert "exitsonimport: Runtime.ExitError" in proc.stderr and "exit status 3" in proc.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina-layer-build") / "data")
    yield srv
    srv.stop()


def _publish(server: LaminaServer, zip_path: Path, name: str) -> str:
    args = (str(zip_path), "--layer-name", name, "--compatible-runtimes", RUNTIME, "--json")
    arn: str = last_json(lamina_publish(server.url, *args))["LayerVersionArn"]
    return arn


def test_function_uses_built_layers(tmp_path: Path, wheels: Path, server: LaminaServer) -> None:
    """Two built layers (python/ and python/lib/python3.12/site-packages/ layouts) on one function."""
    (tmp_path / "native.txt").write_text("tinynative==1.0\n")
    (tmp_path / "pure.txt").write_text("tinypure==1.0\n")
    lamina_build(["-r", "native.txt", "--runtime", RUNTIME, "-o", "native.zip"], tmp_path, wheels)
    lamina_build(
        ["-r", "pure.txt", "--runtime", RUNTIME, "--layout", "site-packages", "-o", "pure.zip"],
        tmp_path,
        wheels,
    )
    native_arn = _publish(server, tmp_path / "native.zip", "built-native")
    pure_arn = _publish(server, tmp_path / "pure.zip", "built-pure")
    lam = client(server, read_timeout=60)
    code = (
        "import tinynative, tinypure\n"
        "def handler(event, context):\n"
        "    return {'answer': tinynative.answer(), 'dep': tinypure.DEP,\n"
        "            'native': tinynative.__file__, 'pure': tinypure.__file__}\n"
    )
    lam.create_function(
        FunctionName="uses-built-layers",
        Runtime=RUNTIME,
        Role="arn:aws:iam::000000000000:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": code})},
        Layers=[native_arn, pure_arn],
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName="uses-built-layers", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    out = lam.invoke(FunctionName="uses-built-layers", Payload=b"{}")
    body = json.loads(out["Payload"].read())
    assert "FunctionError" not in out, body
    assert body == {
        "answer": 42,
        "dep": "dep",
        "native": "/opt/python/tinynative/__init__.py",
        "pure": "/opt/python/lib/python3.12/site-packages/tinypure/__init__.py",
    }
