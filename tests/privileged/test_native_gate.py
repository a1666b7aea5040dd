"""The host fallback keeps AWS's limits on native code: a library that needs a newer glibc or
libstdc++ than the runtime's Amazon Linux fails to load as the dynamic loader fails there, though the
host's own glibc (newer) would load it. Real libraries gcc builds here, real functions on a real server.

python3.11 runs on Amazon Linux 2 (glibc 2.26, GLIBCXX_3.4.24); python3.12 on Amazon Linux 2023
(glibc 2.34, GLIBCXX_3.4.29).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip

pytestmark = pytest.mark.privileged

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
NEEDED = ("python3.11", "python3.12")
if not all((RUNTIMES_DIR / r / "lamina-runtime.json").is_file() for r in NEEDED):
    pytest.skip("python3.11 and python3.12 must be installed in lamina-runtimes", allow_module_level=True)
if shutil.which("gcc") is None or shutil.which("g++") is None:
    pytest.skip("needs gcc and g++", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"

# statx() is versioned GLIBC_2.28; std::filesystem's out-of-line functions GLIBCXX_3.4.26 (gcc 9).
STATX = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
int probe(void) { struct statx sx; return statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &sx); }
"""
FILESYSTEM = r"""
#include <filesystem>
extern "C" int probe() { return std::filesystem::create_directory("/nonexistent/x") ? 1 : 0; }
"""
WRAPPER = r"""
int probe(void);
int wrapped(void) { return probe(); }
"""
PLAIN = "int plain(void) { return 7; }\n"

APP = """\
import ctypes
import importlib


def handler(event, context):
    out = {}
    for name in event["libraries"]:
        try:
            ctypes.CDLL(name)
            out[name] = "loaded"
        except OSError as exc:
            out[name] = str(exc)
    for module in event.get("modules", []):
        try:
            importlib.import_module(module)
            out[module] = "imported"
        except ImportError as exc:
            out[module] = str(exc)
    return out
"""


def _build(tmp: Path) -> dict[str, bytes]:
    """The function's files: lib/ with the libraries, and the gated one again as an extension module."""
    lib = tmp / "lib"
    lib.mkdir()

    def cc(compiler: str, name: str, source: str, *flags: str) -> None:
        src = tmp / f"{name}.src"
        src.write_text(source)
        lang = ["-x", "c++", "-std=c++17"] if compiler == "g++" else ["-x", "c"]
        cmd = [compiler, *lang, "-shared", "-fPIC", str(src), "-o", str(lib / name), *flags]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=lib)
        assert proc.returncode == 0, proc.stderr

    cc("gcc", "libstatx.so", STATX)
    cc("g++", "libfs.so", FILESYSTEM)
    cc("gcc", "libplain.so", PLAIN)
    # Depends on libstatx.so, found through DT_RUNPATH $ORIGIN (as auditwheel's wheels find theirs).
    cc("gcc", "libwrapper.so", WRAPPER, "-L.", "-lstatx", "-Wl,-rpath,$ORIGIN", "-Wl,--enable-new-dtags")
    files: dict[str, bytes] = {f"lib/{p.name}": p.read_bytes() for p in lib.iterdir()}
    files["gated.cpython-311-x86_64-linux-gnu.so"] = files["lib/libstatx.so"]
    files["app.py"] = APP.encode()
    return files


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("gate") / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_zip(_build(tmp_path_factory.mktemp("gcc")))


def _function(lam: Any, runtime: str, code: bytes) -> str:
    name = f"gate-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": code},
        Timeout=30,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def _invoke(lam: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event))
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, body
    return dict(body)


LIBRARIES = ["/var/task/lib/libstatx.so", "libfs.so", "/var/task/lib/libwrapper.so", "libplain.so"]


def test_python311_refuses_what_amazon_linux_2_cannot_load(server: LaminaServer, code: bytes) -> None:
    lam = client(server, read_timeout=60)
    name = _function(lam, "python3.11", code)
    out = _invoke(lam, name, {"libraries": LIBRARIES, "modules": ["gated"]})
    statx = "/lib64/libc.so.6: version `GLIBC_2.28' not found (required by /var/task/lib/libstatx.so)"
    assert out == {
        "/var/task/lib/libstatx.so": statx,
        # By name, found in LD_LIBRARY_PATH's /var/task/lib, as the loader finds it.
        "libfs.so": "/lib64/libstdc++.so.6: version `GLIBCXX_3.4.26' not found (required by /var/task/lib/libfs.so)",
        # The loader reports the dependency that fails.
        "/var/task/lib/libwrapper.so": statx,
        "libplain.so": "loaded",
        "gated": "/lib64/libc.so.6: version `GLIBC_2.28' not found "
        "(required by /var/task/gated.cpython-311-x86_64-linux-gnu.so)",
    }


def test_python312_loads_them(server: LaminaServer, code: bytes) -> None:
    lam = client(server, read_timeout=60)
    name = _function(lam, "python3.12", code)
    assert _invoke(lam, name, {"libraries": LIBRARIES}) == dict.fromkeys(LIBRARIES, "loaded")


def test_an_import_at_init_is_aws_import_module_error(
    server: LaminaServer, code: bytes, tmp_path: Path
) -> None:
    """The classic failure: the handler module imports the extension at the top."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(code)) as zf:
        files: dict[str, bytes | str] = {n: zf.read(n) for n in zf.namelist()}
    files["app.py"] = "import gated\n\n\ndef handler(event, context):\n    return 1\n"
    lam = client(server, read_timeout=60)
    name = _function(lam, "python3.11", make_zip(files))
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    body = json.loads(r["Payload"].read())
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"] == (
        "Unable to import module 'app': /lib64/libc.so.6: version `GLIBC_2.28' not found "
        "(required by /var/task/gated.cpython-311-x86_64-linux-gnu.so)"
    )


def test_the_list_never_reaches_function_code(server: LaminaServer, code: bytes) -> None:
    lam = client(server, read_timeout=60)
    name = _function(lam, "python3.11", code)
    app = (
        "import os, subprocess\n\n\ndef handler(event, context):\n"
        "    child = subprocess.run(['/bin/sh', '-c', 'echo -n $_LAMINA_NATIVE_GATE'], capture_output=True, text=True)\n"
        "    return {'seen': '_LAMINA_NATIVE_GATE' in os.environ, 'child': child.stdout}\n"
    )
    lam.update_function_code(FunctionName=name, ZipFile=_with_app(code, app))
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    assert json.loads(r["Payload"].read()) == {"seen": False, "child": ""}


def _with_app(code: bytes, app: str) -> bytes:
    """``code`` with another app.py."""
    with zipfile.ZipFile(io.BytesIO(code)) as zf:
        files: dict[str, bytes | str] = {n: zf.read(n) for n in zf.namelist()}
    files["app.py"] = app
    return make_zip(files)
