"""``lamina layer build``: requirements in, a verified, deterministic layer zip out.

Steps: fingerprint the inputs -> reuse a cached resolution and build when nothing changed ->
otherwise resolve and install with pip for the target -> normalise the tree -> check every shared
object's architecture -> write the deterministic zip -> verify in an execution environment ->
cache -> write the output atomically. Any failure leaves the output untouched.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina import __version__
from lamina.builder import pip, tree
from lamina.builder.cache import BuildCache, key_of
from lamina.builder.inputs import Requirements, directory_listing
from lamina.builder.targets import BuildTarget
from lamina.builder.verify import Verification, verify, why_not
from lamina.builder.zipout import ZipError, entries_of, source_date_epoch, write_zip
from lamina.domain import functions as F
from lamina.errors import LaminaError

# Bumped when the builder's output for the same inputs changes: old cache entries stop matching.
FORMAT = 1
# Lambda's limits: a zip in the request (PublishLayerVersion, CreateFunction), and a function's code
# plus all its layers unzipped. AWS calls them 50 MB and 250 MB (MiB: 50 * 2**20, 250 * 2**20 / 1.024).
ZIPPED_LIMIT = F.MAX_ZIPPED
UNZIPPED_LIMIT = F.MAX_UNZIPPED
_PIP_CONFIGS = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "~/.config/pip/pip.conf", "~/.pip/pip.conf")

Progress = Callable[[str], None]


class BuildError(LaminaError):
    """The build failed; nothing was written."""


@dataclass
class BuildOptions:
    target: BuildTarget
    requirements: Requirements
    output: Path
    cache_dir: Path
    runtimes_dir: Path
    layout: str = "python"
    slim: bool = False
    verify: bool = True
    bin_dir: Path | None = None
    lib_dir: Path | None = None
    index_args: list[str] = field(default_factory=list)
    use_cache: bool = True
    refresh: bool = False


@dataclass
class BuildResult:
    zip: Path
    sha256: str
    size: int
    unzipped_size: int
    files: int
    cached: bool
    largest: list[tuple[str, int]]
    slim_saved: int
    slim_files: int
    verification: Verification
    warnings: list[str]
    packages: int

    def json(self) -> dict[str, Any]:
        return {
            "zip": str(self.zip),
            "sha256": self.sha256,
            "size": self.size,
            "unzipped_size": self.unzipped_size,
            "cached": self.cached,
        }


def site_dir(layout: str, target: BuildTarget) -> str:
    """Where packages go inside the layer; both are on sys.path in Lambda."""
    return "python" if layout == "python" else f"python/lib/python{target.python_version}/site-packages"


def _pip_configuration() -> list[str]:
    """What in pip's configuration can change a resolution: PIP_* variables and config files."""
    parts = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("PIP_")]
    files = [*_PIP_CONFIGS, os.path.join(sys.prefix, "pip.conf")]
    for name in files:
        path = Path(name).expanduser()
        try:
            parts.append(f"{path}\n{path.read_text()}")
        except OSError:
            continue
    return parts


def _tree_fingerprint(root: Path | None) -> str | None:
    if root is None:
        return None
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            path = Path(dirpath) / f
            st = path.stat()
            digest.update(f"{path.relative_to(root)}\0{st.st_mode & 0o111}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _index_material(index_args: list[str]) -> list[str]:
    out: list[str] = []
    for i, arg in enumerate(index_args):
        out.append(arg)
        if i and index_args[i - 1] == "--find-links" and "://" not in arg and Path(arg).is_dir():
            out.append(directory_listing(Path(arg)))
    return out


def _normalise_modes(root: Path) -> None:
    """What the zip will hold: 0755 directories, 0755/0644 files, readable by the sandbox's user."""
    os.chmod(root, 0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(Path(dirpath) / d, 0o755)
        for f in filenames:
            path = Path(dirpath) / f
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            os.chmod(path, 0o755 if mode & 0o111 else 0o644)


def _copy_dir(src: Path, dest: Path, what: str) -> None:
    if not src.is_dir():
        raise BuildError(f"--{what} {src}: not a directory")
    shutil.copytree(src, dest, symlinks=False, dirs_exist_ok=True)


def _write_output(src: Path, output: Path) -> None:
    """Copy the zip to ``output`` atomically (a reader never sees half a zip)."""
    if output.is_dir():
        raise BuildError(f"cannot write {output}: it is a directory")
    tmp: str | None = None
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except OSError as exc:
        raise BuildError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _mb(n: int) -> str:
    """Sizes as Lambda's limits are written (50 MB = 52,428,800 bytes)."""
    return f"{n / 1_048_576:.1f} MB"


def canonical(name: str) -> str:
    """A distribution's normalised name (PEP 503): Charset_Normalizer -> charset-normalizer."""
    return re.sub(r"[-_.]+", "-", name).lower()


class Builder:
    def __init__(self, options: BuildOptions, progress: Progress) -> None:
        self.o = options
        self.progress = progress
        self.cache = BuildCache(options.cache_dir)
        self.started = time.perf_counter()

    def _say(self, message: str) -> None:
        self.progress(message)

    def _elapsed(self) -> str:
        return f"{time.perf_counter() - self.started:.1f}s"

    # -- keys ----------------------------------------------------------------------------------

    def input_key(self) -> str:
        o = self.o
        return key_of(
            {
                "format": FORMAT,
                "inputs": o.requirements.fingerprint(),
                "python": o.target.python_version,
                "tags": o.target.platform_tags(),
                "index": _index_material(o.index_args),
                "pip": _pip_configuration(),
            }
        )

    def build_key(self, wheels: list[list[Any]]) -> str:
        o = self.o
        return key_of(
            {
                "format": FORMAT,
                "lamina": __version__,
                "runtime": o.target.runtime,
                "arch": o.target.arch,
                "tags": o.target.platform_tags(),
                "layout": o.layout,
                "slim": o.slim,
                "wheels": [[w[0], w[1], w[3]] for w in wheels],
                "bin": _tree_fingerprint(o.bin_dir),
                "lib": _tree_fingerprint(o.lib_dir),
                "epoch": source_date_epoch(),
            }
        )

    # -- build ---------------------------------------------------------------------------------

    def run(self) -> BuildResult:
        o = self.o
        t = o.target
        with tempfile.TemporaryDirectory(prefix="lamina-build-") as tmp_name:
            tmp = Path(tmp_name)
            in_key = self.input_key()
            resolution = self.cache.resolution(in_key) if o.use_cache and not o.refresh else None
            if resolution is not None:
                hit = self._cached(resolution["wheels"], tmp, "nothing changed since the last build")
                if hit is not None:
                    return hit
            wheels: list[list[Any]] | None = None
            if resolution is None and o.use_cache and self.cache.root.joinpath("builds").is_dir():
                # A resolution is needed before the cache can be looked up: resolve only, then
                # install only if the result is not cached already.
                self._say(f"Resolving {o.requirements.count} requirement(s) for {t.describe()}")
                resolved = pip.install(
                    o.requirements.pip_args,
                    t,
                    o.index_args,
                    tmp / "resolve",
                    tmp / "resolve.json",
                    self.progress,
                    dry_run=True,
                )
                wheels = self._save_resolution(in_key, resolved)
                hit = self._cached(wheels, tmp, "the resolution is unchanged")
                if hit is not None:
                    return hit
            return self._build(tmp, in_key, wheels)

    def _save_resolution(self, in_key: str, resolved: list[pip.Resolved]) -> list[list[Any]]:
        wheels = [[r.name, r.version, r.url, r.sha256, r.requested] for r in resolved]
        complete = self.o.requirements.pinned and len(resolved) == self.o.requirements.count
        if self.o.use_cache:
            self._cache_write(
                self.cache.save_resolution, in_key, {"wheels": wheels, "complete_lock": complete}
            )
        return wheels

    def _cache_write(self, write: Callable[..., Any], *args: Any) -> None:
        """The cache is an optimisation: failing to write it is said, not fatal."""
        try:
            write(*args)
        except OSError as exc:
            self._say(f"warning: cannot write the cache in {self.cache.root}: {exc.strerror or exc}")

    def _cached(self, wheels: list[list[Any]], tmp: Path, why: str) -> BuildResult | None:
        key = self.build_key(wheels)
        found = self.cache.build(key)
        if found is None:
            return None
        zip_path, meta = found
        self._say(f"Unchanged ({why}): reusing cached build {key[:12]} from {self.cache.root}")
        self._refuse_unusable(meta)
        verification = self._verify_cached(key, zip_path, meta, tmp)
        _write_output(zip_path, self.o.output)
        return self._result(meta, True, verification)

    def _verify_cached(self, key: str, zip_path: Path, meta: dict[str, Any], tmp: Path) -> Verification:
        o = self.o
        if not o.verify:
            return Verification(False, "--no-verify given")
        if meta.get("verified"):
            return Verification(True, f"{meta['verified']} (cached)")
        reason = why_not(o.target, o.runtimes_dir)
        if reason is not None:
            return Verification(False, reason)
        root = tmp / "verify"
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(root)
        _normalise_modes(root)
        result = self._verify(root, meta["modules"])
        meta["verified"] = result.detail
        self._cache_write(self.cache.update_meta, key, meta)
        return result

    def _verify(self, root: Path, modules: list[str]) -> Verification:
        o = self.o
        reason = why_not(o.target, o.runtimes_dir)
        if reason is None:
            self._say(
                f"Verifying: importing {len(modules)} module(s) in a {o.target.runtime} execution environment"
            )
        result = verify(root, modules, o.target, o.runtimes_dir)
        if result.failed:
            lines = "\n".join(f"  {name}: {error}" for name, error in sorted(result.failed.items()))
            raise BuildError(
                f"verification failed: {len(result.failed)} module(s) do not import in {o.target.runtime} "
                f"({o.target.arch}) with the layer at /opt:\n{lines}\n"
                "No zip was written (--no-verify writes it anyway)."
            )
        return result

    def _build(self, tmp: Path, in_key: str, wheels: list[list[Any]] | None) -> BuildResult:
        o, t = self.o, self.o.target
        stage = tmp / "layer"
        site = stage / site_dir(o.layout, t)
        site.mkdir(parents=True)
        if wheels is None:
            self._say(f"Resolving and installing {o.requirements.count} requirement(s) for {t.describe()}")
            resolved = pip.install(
                o.requirements.pip_args, t, o.index_args, site, tmp / "report.json", self.progress
            )
            wheels = self._save_resolution(in_key, resolved)
        else:
            self._say(f"Installing {len(wheels)} package(s) for {t.describe()}")
            pins = [f"{w[0]}=={w[1]}" for w in wheels]
            pip.install(pins, t, o.index_args, site, tmp / "report.json", self.progress, no_deps=True)
        key = self.build_key(wheels)
        report = tree.normalise(site, t, slim=o.slim)
        if o.bin_dir is not None:
            _copy_dir(o.bin_dir, stage / "bin", "bin")
        if o.lib_dir is not None:
            _copy_dir(o.lib_dir, stage / "lib", "lib")
        try:
            tree.check_machine(stage, t)
        except tree.TreeError as exc:
            raise BuildError(str(exc)) from None
        _normalise_modes(stage)
        self._say(f"Writing the zip ({self._elapsed()})")
        built = tmp / "layer.zip"
        try:
            z = write_zip(entries_of(stage), built, epoch=source_date_epoch())
        except ZipError as exc:
            raise BuildError(str(exc)) from None
        names = {canonical(w[0]): f"{w[0]} {w[1]}" for w in wheels}
        packages = sorted(report.packages.items(), key=lambda kv: (-kv[1], canonical(kv[0])))
        largest = [(names.get(canonical(name), name), size) for name, size in packages[:5]]
        for extra in ("bin", "lib"):
            if (stage / extra).is_dir():
                size = sum(p.stat().st_size for p in (stage / extra).rglob("*") if p.is_file())
                largest = sorted([*largest, (f"{extra}/", size)], key=lambda kv: -kv[1])[:5]
        meta: dict[str, Any] = {
            "sha256": z.sha256,
            "size": z.size,
            "unzipped_size": z.unzipped_size,
            "files": z.files,
            "largest": largest,
            "modules": report.modules,
            "slim_saved": report.slim_saved,
            "slim_files": report.slim_files,
            "warnings": report.warnings,
            "packages": len(wheels),
            "verified": None,
        }
        self._refuse_unusable(meta)
        if o.verify:
            verification = self._verify(stage, report.modules)
            if verification.ran:
                meta["verified"] = verification.detail
        else:
            verification = Verification(False, "--no-verify given")
        if o.use_cache:
            self._cache_write(self.cache.save_build, key, built, meta)
        _write_output(built, o.output)
        return self._result(meta, False, verification)

    def _refuse_unusable(self, meta: dict[str, Any]) -> None:
        """A layer over 250 MB unzipped can never be attached to a function (the limit is for the
        function's code and all its layers together, so splitting it does not help): a failed build,
        nothing written."""
        unzipped = int(meta["unzipped_size"])
        if unzipped <= UNZIPPED_LIMIT:
            return
        largest = ", ".join(f"{name} {_mb(size)}" for name, size in meta.get("largest") or [])
        advice = (
            "leave out the largest packages (or move them to another function)"
            if self.o.slim
            else "--slim (leaves out tests, docs, examples and type stubs), or leave out the largest packages"
        )
        raise BuildError(
            f"unzipped the layer is {_mb(unzipped)} ({unzipped} bytes), over the {_mb(UNZIPPED_LIMIT)} "
            f"({UNZIPPED_LIMIT} bytes) a function and all its layers may take together: Lambda refuses it "
            f"(splitting it into several layers does not help). Largest: {largest or 'n/a'}. "
            f"Try {advice}. No zip was written."
        )

    def _result(self, meta: dict[str, Any], cached: bool, verification: Verification) -> BuildResult:
        warnings = list(meta.get("warnings") or [])
        if meta["size"] > ZIPPED_LIMIT:
            warnings.append(
                f"the zip is {_mb(meta['size'])}, over the {_mb(ZIPPED_LIMIT)} Lambda takes in the request "
                "itself: `lamina layer publish` uploads it to S3 and publishes it from there "
                "(with the AWS CLI: `aws s3 cp`, then `aws lambda publish-layer-version --content "
                "S3Bucket=...,S3Key=...`)" + ("" if self.o.slim else "; --slim makes it smaller")
            )
        return BuildResult(
            zip=self.o.output.resolve(),
            sha256=meta["sha256"],
            size=meta["size"],
            unzipped_size=meta["unzipped_size"],
            files=meta["files"],
            cached=cached,
            largest=[(str(n), int(s)) for n, s in meta["largest"]],
            slim_saved=int(meta.get("slim_saved") or 0),
            slim_files=int(meta.get("slim_files") or 0),
            verification=verification,
            warnings=warnings,
            packages=int(meta.get("packages") or 0),
        )


def summary(result: BuildResult, options: BuildOptions) -> list[str]:
    """The human report: sizes against the limits, the largest packages, slimming, verification."""
    lines = [
        f"{result.zip}: {result.packages} package(s), {result.files} files"
        + (" (cached: nothing changed)" if result.cached else ""),
        f"  CodeSha256 {result.sha256}",
        f"  zipped   {_mb(result.size):>9} of {_mb(ZIPPED_LIMIT)} ({100 * result.size / ZIPPED_LIMIT:.0f}%, "
        "direct upload limit)",
        f"  unzipped {_mb(result.unzipped_size):>9} of {_mb(UNZIPPED_LIMIT)} "
        f"({100 * result.unzipped_size / UNZIPPED_LIMIT:.0f}%, function + all layers)",
    ]
    if result.largest:
        lines.append("  largest: " + ", ".join(f"{name} {_mb(size)}" for name, size in result.largest))
    if options.slim:
        lines.append(
            f"  slim: removed {result.slim_files} file(s) (tests, docs, stubs), saved {_mb(result.slim_saved)}"
        )
    v = result.verification
    lines.append(f"  verified: {v.detail}" if v.ran else f"  not verified: {v.detail}")
    lines += [f"  warning: {w}" for w in result.warnings]
    lines.append(
        f"  layout: {site_dir(options.layout, options.target)}/ (at /opt/{site_dir(options.layout, options.target)} in Lambda)"
    )
    return lines
