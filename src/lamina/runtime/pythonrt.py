"""The Python runtimes: which interpreters the host has, and the /var/runtime tree for each.

Facts about running the host's CPython as Lambda's ``/var/lang/bin/python3.X``:

- An interpreter finds its standard library relative to its own executable: from
  ``<prefix>/bin/python3.X`` it looks for the landmark ``<prefix>/lib/python3.X/os.py``. So
  bind-mounting the install prefix (``sys.base_prefix``) at ``/var/lang`` gives a working
  ``/var/lang/bin/python3.X`` whose ``sys.prefix`` is ``/var/lang``, as in AWS's images.
- pyenv puts *shims* on PATH: bash scripts that exec whichever version is selected, and fail for
  the others ("command not found ... exists in these Python versions"). The real interpreters are
  ``$PYENV_ROOT/versions/<X.Y.Z>/bin/python3.X``; read those instead of running the shim.
- A venv's ``bin/python3.X`` is a symlink to the base interpreter; resolving it gives the install.
- ``pip install --target`` ignores what the interpreter already has installed and compiles .pyc
  files: the runtime tree is mounted read-only, so bytecode must be there beforehand or every cold
  start recompiles boto3.

A runtime directory ``<dest>/python3.X/`` holds awslambdaric, boto3 and their dependencies at its
top level plus ``bootstrap.py`` and ``lamina-runtime.json`` (which interpreter runs it: read by
``lamina.runtime.catalog``); inside the sandbox it is ``/var/runtime``, and the runtime starts as
``/var/lang/bin/python3.X /var/runtime/bootstrap.py``. Build them all with
``python -m lamina.runtime.pythonrt install --dest DIR`` (``list`` shows what was found).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = [
    "BOOTSTRAP_PY",
    "MIN_MINOR",
    "PythonInterpreter",
    "discover_pythons",
    "install_runtime",
    "main",
    "requirements_for",
    "runtime_installed",
]

MIN_MINOR = 9  # python3.9 is the oldest runtime offered
_MAX_MINOR = 30
# Read by lamina.runtime.catalog: which interpreter (prefix + executable under it) runs this tree.
_STAMP = "lamina-runtime.json"
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")

# What AWS's Python images ship in the runtime: the runtime interface client and the SDK. Pinned so
# that every host builds the same runtime; 3.9 is past the current releases' support.
_REQUIREMENTS_DEFAULT = ("awslambdaric==4.2.2", "boto3==1.44.8")
_REQUIREMENTS_BY_VERSION = {
    "python3.9": ("awslambdaric==4.0.4", "boto3==1.42.97"),
}


@dataclass(frozen=True)
class PythonInterpreter:
    """One CPython install on the host, as the sandbox will mount it."""

    version: str  # "python3.12"
    executable: Path  # the real interpreter on the host (symlinks and shims resolved)
    base_prefix: Path  # its install prefix: bind-mounted at /var/lang
    relative_executable: PurePosixPath  # the interpreter under the prefix, e.g. bin/python3.12

    @property
    def sandbox_executable(self) -> PurePosixPath:
        """The interpreter's path inside the sandbox."""
        return PurePosixPath("/var/lang") / self.relative_executable


def requirements_for(version: str) -> tuple[str, ...]:
    """The pinned packages installed into ``version``'s runtime directory."""
    return _REQUIREMENTS_BY_VERSION.get(version, _REQUIREMENTS_DEFAULT)


# -- discovery


def _is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _pyenv_root(shim: Path) -> Path | None:
    """The pyenv root a shim belongs to, or None if ``shim`` is not a pyenv shim."""
    try:
        with shim.open("rb") as f:
            head = f.read(1024)
    except OSError:
        return None
    if not head.startswith(b"#!") or b"pyenv" not in head:
        return None
    match = re.search(rb'export PYENV_ROOT="([^"]+)"', head)
    if match:
        return Path(os.fsdecode(match.group(1)))
    return shim.parent.parent if shim.parent.name == "shims" else None


def _pyenv_candidates(root: Path, minor: int) -> list[Path]:
    """CPython ``python3.<minor>`` interpreters under a pyenv root, newest patch release first."""
    found: list[tuple[tuple[int, int, int], Path]] = []
    try:
        entries = list((root / "versions").iterdir())
    except OSError:
        return []
    for entry in entries:
        m = _SEMVER.match(entry.name)  # plain CPython releases only (no pypy, conda, venvs)
        if not m or (int(m.group(1)), int(m.group(2))) != (3, minor):
            continue
        exe = entry / "bin" / f"python3.{minor}"
        if exe.is_file() and os.access(exe, os.X_OK):
            found.append(((int(m.group(1)), int(m.group(2)), int(m.group(3))), exe))
    return [exe for _, exe in sorted(found, reverse=True)]


def _prefix_from_layout(exe: Path, minor: int) -> Path | None:
    """``<prefix>`` for ``<prefix>/bin/python3.X`` when ``<prefix>/lib/python3.X/os.py`` exists."""
    if exe.parent.name != "bin":
        return None
    prefix = exe.parent.parent
    return prefix if (prefix / "lib" / f"python3.{minor}" / "os.py").is_file() else None


def _query(exe: Path) -> tuple[Path, Path, tuple[int, int]] | None:
    """Ask the interpreter itself (once) for its executable, base prefix and version."""
    code = "import sys;print(sys.executable);print(sys.base_prefix);print(*sys.version_info[:2])"
    try:
        out = subprocess.run(
            [str(exe), "-I", "-c", code], capture_output=True, text=True, timeout=30, check=True
        ).stdout.splitlines()
        major, minor = (int(x) for x in out[2].split())
        return Path(out[0]), Path(out[1]), (major, minor)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _resolve(candidate: Path, minor: int) -> PythonInterpreter | None:
    """The interpreter behind one PATH entry's ``python3.<minor>``, or None if it gives none."""
    version = f"python3.{minor}"
    real = Path(os.path.realpath(candidate))
    if not _is_elf(real):
        root = _pyenv_root(real)
        if root is None:
            return None  # some other wrapper script: not something we can mount
        for exe in _pyenv_candidates(root, minor):
            found = _resolve(exe, minor)
            if found is not None:
                return found
        return None
    prefix = _prefix_from_layout(real, minor)
    if prefix is None:
        queried = _query(real)
        if queried is None or queried[2] != (3, minor):
            return None
        real = Path(os.path.realpath(queried[0]))
        prefix = queried[1]
    try:
        relative = PurePosixPath(real.relative_to(prefix).as_posix())
    except ValueError:
        return None  # the interpreter lives outside its prefix: a mount of the prefix won't hold it
    return PythonInterpreter(version, real, prefix, relative)


def discover_pythons(path: str | None = None) -> dict[str, PythonInterpreter]:
    """Every CPython 3.9+ reachable as ``python3.N`` on ``path`` (default ``$PATH``).

    Keyed by runtime name (``"python3.12"``) in version order; for each version the first PATH
    entry that yields a real interpreter wins, as a shell would pick it.
    """
    search = path if path is not None else os.environ.get("PATH", os.defpath)
    dirs = [Path(d) for d in search.split(os.pathsep) if d]
    found: dict[str, PythonInterpreter] = {}
    for minor in range(MIN_MINOR, _MAX_MINOR + 1):
        for d in dirs:
            candidate = d / f"python3.{minor}"
            if not (candidate.is_file() and os.access(candidate, os.X_OK)):
                continue
            interp = _resolve(candidate, minor)
            if interp is not None:
                found[interp.version] = interp
                break
    return found


# -- the runtime directory


def _stamp_content(version: str, python: Path) -> dict[str, object]:
    interp = _resolve(python, int(version.split(".")[1]))
    if interp is None or interp.version != version:
        raise ValueError(f"{str(python)!r} is not a usable {version} interpreter")
    return {
        "version": version,
        "python": str(python),
        "prefix": str(interp.base_prefix),
        "executable": str(interp.relative_executable),
        "requirements": list(requirements_for(version)),
        "bootstrap_sha256": hashlib.sha256(BOOTSTRAP_PY.encode()).hexdigest(),
    }


def runtime_installed(version: str, python: Path, dest: Path) -> bool:
    """Whether ``dest/version`` already holds this exact runtime (same interpreter, pins, bootstrap)."""
    try:
        stamp = json.loads((dest / version / _STAMP).read_text())
        return bool(stamp == _stamp_content(version, python))
    except (OSError, ValueError):
        return False


def install_runtime(
    version: str, python: Path, dest: Path, *, quiet: bool = True, extra_pip_args: Sequence[str] = ()
) -> Path:
    """Build ``dest/<version>/`` (the future /var/runtime) with ``python``; idempotent.

    Installs into a scratch directory and renames it into place, so an interrupted install never
    leaves a half-built runtime that looks finished. Writes ``lamina-runtime.json`` (interpreter
    prefix and executable, pins) last. Raises ``ValueError`` when ``python`` is not a mountable
    ``version`` interpreter and ``subprocess.CalledProcessError`` when pip fails.
    """
    if not re.fullmatch(r"python3\.\d+", version):
        raise ValueError(f"not a Python runtime name: {version!r}")
    target = dest / version
    stamp = _stamp_content(version, python)  # refuses an interpreter that is not ``version``
    if runtime_installed(version, python, dest):
        return target
    dest.mkdir(parents=True, exist_ok=True)
    scratch = dest / f".{version}.building-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        cmd = [
            str(python),
            "-m",
            "pip",
            "install",
            "--target",
            str(scratch),
            "--only-binary=:all:",  # no compilers at setup time; a version without wheels is skipped
            "--no-warn-script-location",
            "--no-warn-conflicts",  # pip compares against the host interpreter's own packages
            "--disable-pip-version-check",
            *(["--quiet"] if quiet else []),
            *extra_pip_args,
            *requirements_for(version),
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.pop("PIP_TARGET", None)
        env["PIP_ROOT_USER_ACTION"] = "ignore"  # building as root is the normal case here
        subprocess.run(cmd, check=True, env=env, stdin=subprocess.DEVNULL)
        (scratch / "bootstrap.py").write_text(BOOTSTRAP_PY)
        (scratch / _STAMP).write_text(json.dumps(stamp, indent=1))
        old = dest / f".{version}.old-{os.getpid()}"
        if target.exists():
            target.rename(old)
        scratch.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


# -- /var/runtime/bootstrap.py

# Started as `/var/lang/bin/python3.X /var/runtime/bootstrap.py`. Mirrors AWS's own bootstrap.py for
# the managed Python runtimes. Must run on every supported version (3.9+), so no newer syntax.
BOOTSTRAP_PY = '''\
"""lamina's /var/runtime/bootstrap.py: start awslambdaric the way AWS's Python runtimes do.

sys.path, when the function did not set PYTHONPATH:
    /var/task, /opt/python/lib/python3.X/site-packages, /opt/python, /var/runtime, standard library
with .pth files in /var/task and the /opt directories processed (site.addsitedir). With PYTHONPATH
set, the /opt entries are not added. Child processes get PYTHONPATH=/var/runtime.
LAMBDA_TASK_ROOT and LAMBDA_RUNTIME_DIR name the task and runtime roots (as on AWS);
LAMINA_OPT_ROOT (default /opt) exists only so tests can run this outside a sandbox.
"""
import os
import site
import sys

# The platform's runtime client is imported before the function's directories join sys.path, so a
# function that ships its own copy of awslambdaric or its dependencies cannot break the runtime.
from awslambdaric import __main__ as awslambdaric_main


def _pythonpath_set():
    return "PYTHONPATH" in os.environ


def _opt_dirs():
    opt = os.environ.get("LAMINA_OPT_ROOT", "/opt")
    python = os.path.join(opt, "python")
    site_packages = os.path.join(
        python, "lib", "python%d.%d" % sys.version_info[:2], "site-packages"
    )
    return site_packages, python


def _interpreter_site_dirs():
    # The interpreter is the host's, mounted at /var/lang: its own site-packages hold whatever the
    # host installed there, which is not part of Lambda's runtime (that is /var/runtime).
    dirs = set()
    try:
        dirs.update(site.getsitepackages())
    except AttributeError:
        pass
    try:
        dirs.add(site.getusersitepackages())
    except AttributeError:
        pass
    return dirs


def set_sys_path(task_root):
    drop = _interpreter_site_dirs()
    sys.path[:] = [p for p in sys.path if p not in drop]
    if not _pythonpath_set():
        site_packages, python = _opt_dirs()
        sys.path.insert(0, python)
        sys.path.insert(0, site_packages)
    sys.path.insert(0, task_root)
    # Already on sys.path, so these only process the directories' .pth files.
    site.addsitedir(task_root)
    if not _pythonpath_set():
        site_packages, python = _opt_dirs()
        site.addsitedir(site_packages)
        site.addsitedir(python)


def _install_native_gate():
    # On the host's userland, lamina's server lists the function's shared objects that AWS's older
    # glibc/libstdc++ could not load, with the dynamic loader's message (lamina.runtime.native_gate);
    # loading one fails here as it would there. The list is taken out of the environment first.
    listed = os.environ.pop("_LAMINA_NATIVE_GATE", None)
    if not listed:
        return
    import json
    from importlib import machinery

    try:
        blocked = json.loads(listed)
    except ValueError:
        return
    create = machinery.ExtensionFileLoader.create_module

    def create_module(self, spec):
        message = blocked.get(os.path.realpath(self.path))
        if message is not None:
            raise ImportError(message, name=spec.name, path=self.path)
        return create(self, spec)

    machinery.ExtensionFileLoader.create_module = create_module
    search = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]

    def patch_ctypes(ctypes):
        load = ctypes.CDLL.__init__

        def cdll_init(self, name, *args, **kwargs):
            path = None
            if isinstance(name, str) and "/" in name:
                path = name
            elif isinstance(name, str):
                path = next((os.path.join(d, name) for d in search if os.path.exists(os.path.join(d, name))), None)
            message = blocked.get(os.path.realpath(path)) if path else None
            if message is not None:
                raise OSError(message)
            load(self, name, *args, **kwargs)

        ctypes.CDLL.__init__ = cdll_init

    if "ctypes" in sys.modules:
        patch_ctypes(sys.modules["ctypes"])
        return

    class CtypesPatcher:
        # ctypes is patched when something first imports it (numpy does), not imported here: most
        # functions never load a library through it, and importing it costs a cold start ~1.5 ms.
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name != "ctypes":
                return None
            sys.meta_path.remove(CtypesPatcher)
            from importlib import util

            spec = util.find_spec("ctypes")
            if spec is None or spec.loader is None:
                return spec
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                patch_ctypes(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, CtypesPatcher)


def main():
    _install_native_gate()
    task_root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    runtime_dir = os.environ.get("LAMBDA_RUNTIME_DIR", "/var/runtime")
    set_sys_path(task_root)
    if not _pythonpath_set():
        os.environ["PYTHONPATH"] = runtime_dir
    handler = os.environ["_HANDLER"]
    # awslambdaric's own entry point: it reads AWS_LAMBDA_RUNTIME_API (and AWS_EXECUTION_ENV, which
    # picks its polling mode) from the environment, as `python -m awslambdaric <handler>` would.
    awslambdaric_main.main([sys.argv[0], handler])


def _polls_from_thread():
    from awslambdaric.lambda_config import LambdaConfigProvider

    polling = getattr(LambdaConfigProvider, "SUPPORTED_THREADPOLLING_ENVS", ())
    return os.environ.get("AWS_EXECUTION_ENV") in polling


def _zygote():
    # lamina's zygote (lamina.runtime.zygote): this process waits here with everything above
    # imported, and forks environments; it returns only in a forked child, as a cold-started runtime
    # at this point would be.
    baseline = set(sys.modules)
    # Imported by the runtime client before user code when it polls /next from a thread (3.12+):
    # imported here ahead of need, and kept by a forked runtime that will poll so.
    try:
        import concurrent.futures.thread  # noqa: F401
    except ImportError:
        pass
    ahead = set(sys.modules) - baseline
    from importlib import util

    spec = util.spec_from_file_location("_lamina_zygote", "/var/lamina/zygote.py")
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.serve(baseline, ahead, _polls_from_thread)
    # awslambdaric reads these at import: read again from the function's environment.
    ric = sys.modules.get("awslambdaric.bootstrap")
    if ric is not None and hasattr(ric, "_AWS_LAMBDA_LOG_FORMAT"):
        ric._AWS_LAMBDA_LOG_FORMAT = ric.LogFormat.from_str(os.environ.get("AWS_LAMBDA_LOG_FORMAT"))
        ric._AWS_LAMBDA_LOG_LEVEL = ric._get_log_level_from_env_var(os.environ.get("AWS_LAMBDA_LOG_LEVEL"))


if __name__ == "__main__":
    if "_LAMINA_ZYGOTE" in os.environ:
        _zygote()
    main()
'''


# -- command line: python -m lamina.runtime.pythonrt {list,install}


def _install_all(dest: Path, versions: Iterable[str] | None, *, quiet: bool) -> int:
    pythons = discover_pythons()
    wanted = set(versions) if versions else None
    if not pythons:
        print("no python3.9+ interpreters found on PATH", file=sys.stderr)
        return 1
    failed = 0
    installed = 0
    for version, interp in pythons.items():
        if wanted is not None and version not in wanted:
            continue
        if runtime_installed(version, interp.executable, dest):
            print(f"{version}: up to date ({dest / version})")
            installed += 1
            continue
        print(f"{version}: installing {' '.join(requirements_for(version))} with {interp.executable}")
        sys.stdout.flush()
        try:
            install_runtime(version, interp.executable, dest, quiet=quiet)
        except (subprocess.CalledProcessError, OSError, ValueError) as exc:
            print(f"warning: {version}: skipped, install failed: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{version}: installed in {dest / version}")
        installed += 1
    print(f"{installed} Python runtime(s) ready in {dest}" + (f", {failed} skipped" if failed else ""))
    return 0 if installed else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``list`` the host's interpreters, or ``install`` a runtime directory for each."""
    parser = argparse.ArgumentParser(prog="python -m lamina.runtime.pythonrt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="show the python3.X interpreters found on PATH")
    install = sub.add_parser("install", help="build <dest>/python3.X/ for every interpreter found")
    install.add_argument("--dest", required=True, type=Path, help="directory of runtime trees")
    install.add_argument("--version", action="append", help="only this runtime (repeatable)")
    install.add_argument("--verbose", action="store_true", help="show pip's output")
    args = parser.parse_args(argv)
    if args.command == "list":
        for version, interp in discover_pythons().items():
            print(f"{version}\t{interp.executable}\t{interp.base_prefix}\t{interp.relative_executable}")
        return 0
    return _install_all(args.dest, args.version, quiet=not args.verbose)


if __name__ == "__main__":
    sys.exit(main())
