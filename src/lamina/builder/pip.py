"""Running pip for a target that is not the host.

``pip install --target DIR --platform TAG... --implementation cp --python-version 3.X
--only-binary=:all: --no-compile`` resolves and installs exactly what the target accepts; with
``--dry-run --report`` it only resolves. The report (pip's installation report, format 1) names
every distribution with its version and the wheel it chose (URL and sha256), which is what the
build cache is keyed on.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from lamina.builder.targets import BuildTarget
from lamina.errors import LaminaError

Progress = Callable[[str], None]
# pip's own progress lines worth passing on while it works.
_PROGRESS = ("Collecting ", "Downloading ", "Processing ", "Installing collected", "Using cached ")


class PipError(LaminaError):
    """pip could not resolve or install: the message names the requirement and the platform."""


@dataclass(frozen=True)
class Resolved:
    name: str
    version: str
    url: str
    sha256: str  # of the wheel; for a wheel without a known hash, of its URL
    requested: bool

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def wheel(self) -> str:
        return unquote(urlparse(self.url).path.rsplit("/", 1)[-1])


def target_options(target: BuildTarget) -> list[str]:
    opts = ["--implementation", "cp", "--python-version", target.python_version, "--only-binary=:all:"]
    for tag in target.platform_tags():
        opts += ["--platform", tag]
    return opts


def _pip(args: list[str], progress: Progress) -> tuple[int, str]:
    if importlib.util.find_spec("pip") is None:
        raise PipError(f"pip is not installed for {sys.executable} (python -m ensurepip installs it)")
    env = {
        **os.environ,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    cmd = [sys.executable, "-m", "pip", *args]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        stripped = line.strip()
        if stripped.startswith(_PROGRESS):
            progress("  " + stripped)
    return proc.wait(), "".join(lines)


def failure(output: str, target: BuildTarget) -> PipError:
    """pip's failure as one clear message."""
    missing = re.search(r"No matching distribution found for (.+)", output)
    if missing:
        req = missing.group(1).strip()
        versions = re.search(
            r"Could not find a version that satisfies the requirement .* \(from versions: (.*)\)", output
        )
        found = versions.group(1).strip() if versions else "none"
        detail = (
            "the index has no wheel of it at all"
            if found == "none"
            else f"versions with a compatible wheel: {found}"
        )
        return PipError(
            f"no compatible wheel for requirement '{req}' on {target.describe()}; {detail}. "
            "Source distributions are not built (they would be built for this host, not for Lambda): "
            "pin a version that publishes a manylinux wheel for this platform, or choose another runtime."
        )
    errors = [ln.strip() for ln in output.splitlines() if ln.strip() and not ln.startswith("WARNING")]
    tail = "\n  ".join(errors[-12:]) or "pip failed without output"
    return PipError(f"pip could not install the requirements for {target.describe()}:\n  {tail}")


def _report(path: Path) -> list[Resolved]:
    doc = json.loads(path.read_text())
    out: list[Resolved] = []
    for item in doc.get("install", []):
        meta = item["metadata"]
        info = item.get("download_info") or {}
        url = info.get("url", "")
        digest = ((info.get("archive_info") or {}).get("hashes") or {}).get("sha256")
        if digest is None:
            parsed = urlparse(url)
            local = Path(unquote(parsed.path)) if parsed.scheme == "file" else None
            if local is not None and local.is_file():
                digest = hashlib.sha256(local.read_bytes()).hexdigest()
            else:
                digest = hashlib.sha256(url.encode()).hexdigest()
        out.append(Resolved(meta["name"], meta["version"], url, digest, bool(item.get("requested"))))
    return sorted(out, key=lambda r: r.name.lower())


def install(
    requirements: list[str],
    target: BuildTarget,
    index_args: list[str],
    dest: Path,
    report: Path,
    progress: Progress,
    *,
    dry_run: bool = False,
    no_deps: bool = False,
) -> list[Resolved]:
    """Resolve (``dry_run``) or resolve and install into ``dest``; returns what pip chose."""
    args = [
        "install",
        "--target",
        str(dest),
        "--no-compile",
        "--progress-bar",
        "off",
        "--report",
        str(report),
    ]
    args += ["--ignore-installed", *target_options(target), *index_args]
    if dry_run:
        args.append("--dry-run")
    if no_deps:
        args.append("--no-deps")
    code, output = _pip([*args, *requirements], progress)
    if code != 0:
        raise failure(output, target)
    return _report(report)
