"""An execution environment's root filesystem: its :class:`SandboxSpec` and the mount plan that
builds it (:func:`mount_plan`, computed first; :func:`apply`, carried out by the thread that enters
the sandbox in :mod:`lamina.runtime.sandbox`). See that module's docstring for the facts.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lamina.errors import LaminaError
from lamina.linux import mounts
from lamina.linux.cgroups import DEFAULT_PARENT
from lamina.linux.mounts import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT
from lamina.linux.namespaces import NetNamespace
from lamina.runtime.init_events import INIT_PATH

SANDBOX_UID = 993
SANDBOX_GID = 990
# lamina-init's own bound on the extensions it starts (Lambda starts at most 10).
MAX_INIT_EXTENSIONS = 64

# Host directories bound read-only into every sandbox (those that exist; symlinks such as
# Debian's /bin -> usr/bin are recreated as symlinks).
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib64", "lib32", "libx32", "etc")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_SHM_BYTES = 64 * 1024 * 1024


class SandboxError(LaminaError):
    """An execution environment could not be started or managed."""


@dataclass(frozen=True)
class SandboxSpec:
    """Everything needed to start one execution environment's process tree."""

    env_id: str  # unique; names the cgroup
    work_dir: Path  # private scratch dir on the host; created by start(), removed by close()
    task_dir: Path  # -> /var/task, read-only
    layer_dirs: tuple[Path, ...]  # -> /opt, merged read-only, later wins
    runtime_dir: Path | None  # -> /var/runtime, read-only
    lang_dir: Path | None  # a language installation prefix -> /var/lang, read-only
    argv: tuple[str, ...]
    env: Mapping[str, str]
    netns: NetNamespace
    memory_bytes: int
    tmp_bytes: int
    host_id: int  # the host uid and gid uid/gid are mapped to: the environment's own
    uid: int = SANDBOX_UID
    gid: int = SANDBOX_GID
    stdout: int | None = None  # fd receiving stdout and stderr; None inherits
    cgroup_parent: str = DEFAULT_PARENT  # the cgroup is <controller root>/<cgroup_parent>/<env_id>
    pids_max: int | None = None  # processes and threads
    cpus: float | None = None  # CPU weight, in CPUs' worth
    cpu_quota: float | None = None  # hard CPU cap, in CPUs
    # Whose system directories (usr, lib, etc...) the sandbox's / shows, read-only: the host's, or the
    # root filesystem of a runtime image (AWS's userland).
    userland: Path = Path("/")
    # The environment's /etc/resolv.conf and /etc/hosts (``domain.dns``); None: the userland's own.
    resolv_conf: str | None = None
    hosts: str = ""
    # lamina's CA certificate -> /var/lamina/ca.pem, read-only (``runtime.public_api``); None: none.
    ca_bundle: Path | None = None
    # External extensions (paths inside the sandbox, in start order; see
    # ``runtime.extension_files``). Empty: the runtime is PID 1 and starts at once. Otherwise
    # lamina-init (``init_binary``, the host path) is PID 1: it starts these, then the runtime on
    # :meth:`Sandbox.start_runtime` (see "Extensions" in the module docstring).
    extensions: tuple[str, ...] = ()
    extension_stdout: int | None = None  # fd receiving the extensions' stdout and stderr; None: stdout's
    extension_env: Mapping[str, str] | None = None  # the extensions' environment; None: ``env``
    init_binary: Path | None = None


def validate(spec: SandboxSpec) -> None:
    """Refuse a spec no sandbox may be started from (ValueError), or whose directories are missing
    (SandboxError)."""
    if not spec.argv:
        raise ValueError(f"empty argv for sandbox {spec.env_id!r}")
    if spec.memory_bytes <= 0 or spec.tmp_bytes <= 0:
        raise ValueError(f"invalid sizes memory={spec.memory_bytes!r} tmp={spec.tmp_bytes!r}")
    if spec.uid == 0 or spec.gid == 0 or spec.host_id <= 0:
        raise ValueError(
            f"sandbox must not run as root (uid={spec.uid!r} gid={spec.gid!r} host_id={spec.host_id!r})"
        )
    if spec.extensions:
        if spec.init_binary is None:
            raise ValueError(f"sandbox {spec.env_id!r} has extensions but no init_binary")
        if len(spec.extensions) > MAX_INIT_EXTENSIONS or not all(
            p.startswith("/") and "\0" not in p for p in spec.extensions
        ):
            raise ValueError(f"invalid extensions {spec.extensions!r}")
    if not spec.userland.is_absolute():
        raise ValueError(f"userland must be an absolute path, got {str(spec.userland)!r}")
    dirs = [spec.userland, spec.task_dir, *spec.layer_dirs, spec.runtime_dir, spec.lang_dir]
    for d in dirs:
        if d is not None and not d.is_dir():
            raise SandboxError(f"not a directory: {str(d)!r}")


# --- the mount plan: computed first, applied by the spawning thread ------------------------


@dataclass(frozen=True)
class Mount:
    target: bytes
    fstype: bytes | None
    flags: int
    source: bytes | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class MakeDir:
    path: bytes
    mode: int = 0o755


@dataclass(frozen=True)
class MakeFile:
    path: bytes


@dataclass(frozen=True)
class Symlink:
    target: bytes
    path: bytes


@dataclass(frozen=True)
class ReadOnly:
    """Make a bind mount read-only, nosuid and nodev (recursively when it is a recursive bind)."""

    path: bytes
    recursive: bool


Op = Mount | MakeDir | MakeFile | Symlink | ReadOnly


def _overlay_escape(path: Path) -> str:
    # The legacy mount-data parser splits options on "," and lowerdirs on ":"; "\" escapes.
    return str(path).replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def _bind_ro(source: Path, target: bytes, *, recursive: bool = False) -> list[Op]:
    flags = MS_BIND | (MS_REC if recursive else 0)
    return [Mount(target, None, flags, source=os.fsencode(source)), ReadOnly(target, recursive)]


def mount_plan(
    spec: SandboxSpec,
    root: Path,
    system: Sequence[tuple[str, str | None]],
    files: Sequence[tuple[Path, bytes]] = (),
) -> list[Op]:
    """The operations that build the sandbox's root filesystem on ``root``.

    ``system`` lists the system directories of ``spec.userland`` (the host's ``/``, or an image's
    root filesystem) as ``(name, symlink target or None)``; ``files``: host files bound read-only at
    paths under ``/var/lamina`` (a zygote's own code, never an environment's).
    """
    r = os.fsencode(root)
    ops: list[Op] = [Mount(r, b"tmpfs", MS_NOSUID | MS_NODEV, source=b"tmpfs", data=b"mode=755,size=1m")]
    for name, link in system:
        target = r + b"/" + name.encode()
        if link is not None:
            ops.append(Symlink(os.fsencode(link), target))
        else:
            ops.append(MakeDir(target))
            ops += _bind_ro(spec.userland / name, target, recursive=True)
    ops += _etc_files(spec, r, system)
    for d in (b"var", b"var/task", b"var/runtime", b"var/lang", b"opt", b"proc", b"dev"):
        ops.append(MakeDir(r + b"/" + d))
    ops.append(MakeDir(r + b"/tmp", 0o1777))
    ops += _bind_ro(spec.task_dir, r + b"/var/task")
    if len(spec.layer_dirs) == 1:
        ops += _bind_ro(spec.layer_dirs[0], r + b"/opt")
    elif spec.layer_dirs:
        lower = ":".join(_overlay_escape(p) for p in reversed(spec.layer_dirs))
        data = f"lowerdir={lower}".encode()
        if len(data) >= 4096:
            raise SandboxError(f"too many or too long layer paths for one overlay mount ({len(data)} bytes)")
        ops.append(
            Mount(r + b"/opt", b"overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, source=b"overlay", data=data)
        )
    if spec.runtime_dir is not None:
        ops += _bind_ro(spec.runtime_dir, r + b"/var/runtime")
    if spec.lang_dir is not None:
        ops += _bind_ro(spec.lang_dir, r + b"/var/lang")
    if spec.ca_bundle is not None or spec.extensions or files:
        ops.append(MakeDir(r + b"/var/lamina"))
    for source, path in files:
        if not path.startswith(b"/var/lamina/") or b"/" in path[len(b"/var/lamina/") :]:
            raise ValueError(f"not a file directly under /var/lamina: {path!r}")
        ops.append(MakeFile(r + path))
        ops += _bind_ro(source, r + path)
    if spec.ca_bundle is not None:
        ops.append(MakeFile(r + b"/var/lamina/ca.pem"))
        ops += _bind_ro(spec.ca_bundle, r + b"/var/lamina/ca.pem")
    if spec.extensions:
        assert spec.init_binary is not None  # _validate
        ops.append(MakeFile(r + os.fsencode(INIT_PATH)))
        ops += _bind_ro(spec.init_binary, r + os.fsencode(INIT_PATH))
    tmp_data = f"mode=1777,size={spec.tmp_bytes}".encode()
    ops.append(Mount(r + b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, source=b"tmpfs", data=tmp_data))
    # /proc itself is mounted by the child, from inside the new PID namespace.
    dev = r + b"/dev"
    ops.append(Mount(dev, b"tmpfs", MS_NOSUID | MS_NOEXEC, source=b"tmpfs", data=b"mode=755,size=64k"))
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            node = dev + b"/" + name.encode()
            ops += [MakeFile(node), Mount(node, None, MS_BIND, source=f"/dev/{name}".encode())]
    for node_name, link_target in (
        (b"fd", b"/proc/self/fd"),
        (b"stdin", b"/proc/self/fd/0"),
        (b"stdout", b"/proc/self/fd/1"),
        (b"stderr", b"/proc/self/fd/2"),
    ):
        ops.append(Symlink(link_target, dev + b"/" + node_name))
    ops.append(MakeDir(dev + b"/shm", 0o1777))
    shm_data = f"mode=1777,size={DEV_SHM_BYTES}".encode()
    ops.append(
        Mount(dev + b"/shm", b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, source=b"tmpfs", data=shm_data)
    )
    # Freeze the skeletons: nothing can be created in / or /dev (the device nodes are their
    # own bind mounts and stay usable).
    ops.append(Mount(dev, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC))
    ops.append(Mount(r, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV))
    return ops


ETC_FILES = ("resolv.conf", "hosts")


def etc_dir(spec: SandboxSpec) -> Path:
    """Where :meth:`Sandbox.start` writes the environment's own ``/etc`` files on the host."""
    return spec.work_dir / "etc"


def _etc_files(spec: SandboxSpec, r: bytes, system: Sequence[tuple[str, str | None]]) -> list[Op]:
    """lamina's ``/etc/resolv.conf`` and ``/etc/hosts`` over the userland's, read-only.

    Each is bound over the userland's file when that is a regular file; when one is missing or a
    symlink (an image's resolv.conf often points into /run), ``/etc`` becomes a read-only overlay
    whose upper lower directory holds lamina's files instead (leftmost lower wins).
    """
    if spec.resolv_conf is None or ("etc", None) not in system:
        return []
    ours = etc_dir(spec)
    theirs = spec.userland / "etc"
    target = r + b"/etc"
    if all(os.path.isfile(theirs / n) and not os.path.islink(theirs / n) for n in ETC_FILES):
        return [op for n in ETC_FILES for op in _bind_ro(ours / n, target + b"/" + n.encode())]
    data = f"lowerdir={_overlay_escape(ours)}:{_overlay_escape(theirs)}".encode()
    return [Mount(target, b"overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, source=b"overlay", data=data)]


def system_dirs(userland: Path = Path("/")) -> tuple[tuple[str, str | None], ...]:
    """The system directories of ``userland`` that exist, with their symlink targets (looked up once
    per userland). A symlink is recreated as one inside the sandbox, where it resolves against the
    sandbox's root; only real directories are bound."""
    return _system_dirs(str(userland))


@functools.cache
def _system_dirs(userland: str) -> tuple[tuple[str, str | None], ...]:
    found: list[tuple[str, str | None]] = []
    for name in SYSTEM_DIRS:
        path = os.path.join(userland, name)
        if os.path.islink(path):
            found.append((name, os.readlink(path)))
        elif os.path.isdir(path):
            found.append((name, None))
    return tuple(found)


def host_system_dirs() -> tuple[tuple[str, str | None], ...]:
    """The host's system directories that exist, with their symlink targets (looked up once)."""
    return system_dirs(Path("/"))


def describe(op: Op) -> str:
    """What ``op`` does, for an error message."""
    if isinstance(op, Mount):
        kind = op.fstype.decode() if op.fstype else ("remount" if op.flags & MS_REMOUNT else "bind")
        return f"mount {kind} on {op.target.decode(errors='replace')}"
    return f"{type(op).__name__} {op.path.decode(errors='replace')}"


def apply(op: Op) -> None:
    """Carry ``op`` out (in the spawning thread's private mount namespace); raises OSError."""
    if isinstance(op, Mount):
        mounts.mount(op.source, op.target, op.fstype, op.flags, op.data)
    elif isinstance(op, MakeDir):
        os.mkdir(op.path, op.mode)
        if op.mode & 0o7000:
            os.chmod(op.path, op.mode)
    elif isinstance(op, MakeFile):
        # mknod, not open: a file open for writing, even for an instant, may be inherited by a
        # child another thread is forking, and a mount with a writer cannot be made read-only.
        os.mknod(op.path, stat.S_IFREG | 0o644)
    elif isinstance(op, Symlink):
        os.symlink(op.target, op.path)
    else:
        mounts.make_read_only(op.path, recursive=op.recursive)
