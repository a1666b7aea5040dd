"""Which runtimes this host can run, and on which userland.

- The host's userland: python3.X with an installed runtime directory (``make setup``), and
  ``provided.*`` (a bootstrap of the function's own).
- AWS's: the root filesystem of the runtime's image (``lamina runtime pull``), for the host's own
  architecture (an arm64 image cannot run on an x86_64 host, nor the reverse).

``--runtime-source`` chooses: ``auto`` (the image when one is installed, else the host), ``images``
(images only) or ``host`` (never images).
"""

from __future__ import annotations

import enum
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from lamina.domain import runtimes
from lamina.domain.functions import CUSTOM_RUNTIMES
from lamina.runtime.images import ImageStore


class RuntimeSource(enum.Enum):
    """Where environments' userland comes from."""

    AUTO = "auto"
    IMAGES = "images"
    HOST = "host"

    @classmethod
    def parse(cls, text: str) -> RuntimeSource:
        """``auto``, ``images`` or ``host``; ``ValueError`` otherwise."""
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"expected one of auto, images, host, got {text!r}") from None

    def __str__(self) -> str:
        return self.value


def host_architecture() -> str | None:
    """This host's architecture in Lambda's words (``x86_64``, ``arm64``), or None for another."""
    return {"x86_64": "x86_64", "aarch64": "arm64"}.get(os.uname().machine)


@dataclass(frozen=True)
class PythonRuntime:
    name: str  # python3.12
    runtime_dir: Path  # mounted at /var/runtime
    prefix: Path  # the interpreter's installation prefix, mounted at /var/lang
    executable: str  # path of the interpreter under the prefix, e.g. bin/python3.12


class RuntimeCatalog:
    """Reads ``<runtimes_dir>/python3.X/lamina-runtime.json`` written by the runtime installer, and
    the images ``images`` holds."""

    def __init__(
        self,
        runtimes_dir: Path | None,
        images: ImageStore | None = None,
        source: RuntimeSource = RuntimeSource.AUTO,
    ) -> None:
        self.runtimes_dir = runtimes_dir
        self.images = images if source is not RuntimeSource.HOST else None
        self.source = source
        self._python: dict[str, PythonRuntime] | None = None

    def python(self) -> dict[str, PythonRuntime]:
        """The host's Python runtimes (none with ``--runtime-source images``)."""
        if self.source is RuntimeSource.IMAGES:
            return {}
        if self._python is None:
            found: dict[str, PythonRuntime] = {}
            if self.runtimes_dir is not None and self.runtimes_dir.is_dir():
                for d in self.runtimes_dir.iterdir():
                    info = d / "lamina-runtime.json"
                    if not re.fullmatch(r"python3\.\d+", d.name) or not info.is_file():
                        continue
                    try:
                        meta = json.loads(info.read_text())
                        prefix = Path(meta["prefix"])
                        usable = (prefix / meta["executable"]).exists()
                    except (OSError, ValueError, KeyError, TypeError):
                        continue  # unreadable or broken install: not offered
                    if usable:
                        found[d.name] = PythonRuntime(d.name, d, prefix, meta["executable"])
            self._python = found
        return self._python

    def userland(self, runtime: str) -> Path | None:
        """The root filesystem of ``runtime``'s installed image for this host's architecture, when
        environments are to use it; None: the host's userland."""
        arch = host_architecture()
        if self.images is None or arch is None or runtimes.lookup(runtime) is None:
            return None
        return self.images.rootfs(runtime, arch)

    def offered(self) -> list[str]:
        """Runtimes a function can be created with here: installed images, then (unless
        ``--runtime-source images``) the host's Pythons and the OS-only runtimes."""
        imaged = {name for name in (r.identifier for r in runtimes.RUNTIMES) if self.userland(name)}
        hosted = set(self.python()) | (
            set(CUSTOM_RUNTIMES) if self.source is not RuntimeSource.IMAGES else set()
        )
        known = hosted | imaged
        pythons = sorted((n for n in known if n.startswith("python")), key=lambda n: int(n.split(".")[1]))
        return [*pythons, *(r for r in CUSTOM_RUNTIMES if r in known)]
