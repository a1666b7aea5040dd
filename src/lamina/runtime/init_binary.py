"""``lamina-init``, the static PID 1 of environments whose function has external extensions.

Its C source ships in the package (``runtime/native/lamina_init.c``); the binary never does.
``make setup`` builds it into ``<venv>/lamina-init``; otherwise the server builds it on first use
into ``<data_dir>/bin/lamina-init``, keyed by the source's hash so an upgraded lamina rebuilds
it. It is linked statically (``gcc -static -O2``): bound read-only into every sandbox at
``/var/lamina/init``, it must run whatever userland (host or AWS image) the sandbox shows.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path

from lamina.errors import LaminaError

NAME = "lamina-init"


class InitBinaryError(LaminaError):
    """``lamina-init`` is missing and cannot be built (no C compiler, or the build failed)."""


_lock = threading.Lock()
_found: dict[Path, Path] = {}


def source() -> bytes:
    """The C source of ``lamina-init``."""
    return resources.files("lamina.runtime").joinpath("native/lamina_init.c").read_bytes()


def _stamp() -> str:
    return hashlib.sha256(source()).hexdigest()[:16]


def build(dest: Path, *, compiler: str | None = None) -> Path:
    """Compile ``lamina-init`` to ``dest`` (atomically: a temp file renamed); ``InitBinaryError``
    when no C compiler is there or it fails."""
    name = compiler or os.environ.get("CC") or "gcc"
    cc = shutil.which(name) or (shutil.which("cc") if compiler is None else None)
    if cc is None:
        raise InitBinaryError(
            f"cannot build lamina-init (needed by functions with extensions): no C compiler ({name!r}; "
            "install gcc and the C library's static archive, e.g. Debian's gcc and libc6-dev)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    src = dest.with_name(f".{dest.name}.{os.getpid()}.c")
    try:
        src.write_bytes(source())
        done = subprocess.run(
            [cc, "-static", "-O2", "-o", str(tmp), str(src)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise InitBinaryError(f"cannot build lamina-init with {cc}: {done.stderr.strip()[-800:]}")
        tmp.chmod(0o755)
        tmp.rename(dest)
        (dest.parent / f"{dest.name}.source").write_text(_stamp())
    except OSError as exc:
        raise InitBinaryError(f"cannot build lamina-init into {str(dest)!r}: {exc}") from exc
    finally:
        for leftover in (tmp, src):
            leftover.unlink(missing_ok=True)
    return dest


def _current(path: Path) -> bool:
    stamp = path.parent / f"{path.name}.source"
    try:
        return path.is_file() and os.access(path, os.X_OK) and stamp.read_text() == _stamp()
    except OSError:
        return False


def ensure(data_dir: Path, prefix: Path | None = None) -> Path:
    """The path of an up-to-date ``lamina-init``: the one ``make setup`` built beside the Python
    environment (``prefix``, default ``sys.prefix``), else ``<data_dir>/bin/lamina-init``, built now if missing or stale (once per
    process; ``InitBinaryError`` if it cannot be)."""
    with _lock:
        found = _found.get(data_dir)
        if found is not None:
            return found
        beside = (Path(sys.prefix) if prefix is None else prefix) / NAME
        if _current(beside):
            found = beside
        else:
            found = data_dir / "bin" / NAME
            if not _current(found):
                build(found)
        _found[data_dir] = found
        return found


def main(argv: list[str] | None = None) -> int:
    """``python -m lamina.runtime.init_binary DEST``: build ``lamina-init`` (``make setup``)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m lamina.runtime.init_binary DEST", file=sys.stderr)
        return 2
    try:
        build(Path(args[0]))
    except InitBinaryError as exc:
        print(f"note: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
