"""Which runtimes this host can run: python3.X with an installed runtime directory, and provided.*."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from lamina.domain.functions import CUSTOM_RUNTIMES


@dataclass(frozen=True)
class PythonRuntime:
    name: str  # python3.12
    runtime_dir: Path  # mounted at /var/runtime
    prefix: Path  # the interpreter's installation prefix, mounted at /var/lang
    executable: str  # path of the interpreter under the prefix, e.g. bin/python3.12


class RuntimeCatalog:
    """Reads ``<runtimes_dir>/python3.X/lamina-runtime.json`` written by the runtime installer."""

    def __init__(self, runtimes_dir: Path | None) -> None:
        self.runtimes_dir = runtimes_dir
        self._python: dict[str, PythonRuntime] | None = None

    def python(self) -> dict[str, PythonRuntime]:
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

    def offered(self) -> list[str]:
        pythons = sorted(self.python(), key=lambda n: int(n.split(".")[1]))
        return [*pythons, *CUSTOM_RUNTIMES]
