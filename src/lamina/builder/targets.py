"""What a layer is built for: a Lambda Python runtime and an architecture, and the wheel tags they accept.

The runtimes, their userland (Amazon Linux 2 or 2023), its glibc level and the architectures come
from the one runtime table, :mod:`lamina.domain.runtimes`. Facts about wheel tags:
- A ``manylinux_2_X`` wheel needs glibc >= 2.X.
- pip expands only the legacy ``manylinux2014``/``manylinux2010`` names to older ones; a
  ``manylinux_2_X`` platform is taken literally, so every accepted glibc level is listed, newest
  first (pip prefers earlier tags).
- aarch64 wheels start at manylinux2014 (glibc 2.17); x86_64 ones at manylinux1 (glibc 2.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from lamina.domain import runtimes as R
from lamina.errors import LaminaError

# The builder targets the Python runtimes of Amazon Linux 2 and 2023 (python3.8 and newer): the
# older ones ran on Amazon Linux 1, which no current manylinux wheel or pip targets.
BUILDABLE: tuple[R.Runtime, ...] = tuple(
    sorted(
        (r for r in R.python_runtimes() if r.userland in (R.AMAZON_LINUX_2, R.AMAZON_LINUX_2023)),
        key=lambda r: r.python_version or (0, 0),
    )
)
ARCHITECTURES = tuple(a.value for a in R.Architecture)
# ELF e_machine values: what a shared object says it was built for.
ELF_MACHINES = {
    62: "x86_64",
    183: "arm64",
    3: "i386",
    40: "arm",
    8: "mips",
    21: "ppc64",
    22: "s390x",
    243: "riscv64",
}
# Legacy manylinux names and the glibc level they stand for (PEP 599/571/513).
_LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


class TargetError(LaminaError, ValueError):
    """A runtime or architecture the builder cannot target."""


@dataclass(frozen=True)
class BuildTarget:
    runtime: str  # python3.12
    arch: str  # x86_64 | arm64

    @classmethod
    def parse(cls, runtime: str, arch: str = "x86_64") -> BuildTarget:
        if all(r.identifier != runtime for r in BUILDABLE):
            offered = ", ".join(r.identifier for r in BUILDABLE)
            raise TargetError(f"unknown runtime {runtime!r}: choose one of {offered}")
        if arch not in ARCHITECTURES:
            raise TargetError(f"unknown architecture {arch!r}: choose x86_64 or arm64")
        return cls(runtime, arch)

    @property
    def table(self) -> R.Runtime:
        """This target's row of the runtime table."""
        return R.get(self.runtime)

    @property
    def minor(self) -> int:
        return int(self.runtime.split(".")[1])

    @property
    def python_version(self) -> str:
        return f"3.{self.minor}"

    @property
    def machine(self) -> str:
        """The architecture as wheel tags, ELF and ``uname -m`` name it."""
        return R.Architecture(self.arch).machine

    @property
    def base_image(self) -> str:
        """The userland's name, e.g. ``Amazon Linux 2023``."""
        return self.table.userland.name

    @property
    def glibc(self) -> tuple[int, int]:
        return self.table.userland.glibc

    def platform_tags(self) -> list[str]:
        """Every manylinux platform tag this target runs, newest glibc first."""
        oldest = 5 if self.arch == "x86_64" else 17
        tags: list[str] = []
        for minor in range(self.glibc[1], oldest - 1, -1):
            tags.append(f"manylinux_2_{minor}_{self.machine}")
            legacy = _LEGACY.get(minor)
            if legacy is not None and (minor == 17 or self.arch == "x86_64"):
                tags.append(f"{legacy}_{self.machine}")
        return tags

    def describe(self) -> str:
        """e.g. ``python3.12 x86_64 (Amazon Linux 2023, glibc 2.34: cp312, manylinux_2_34_x86_64 and older)``."""
        major, minor = self.glibc
        return (
            f"{self.runtime} {self.arch} ({self.base_image}, glibc {major}.{minor}: cp3{self.minor}, "
            f"manylinux_{major}_{minor}_{self.machine} and older)"
        )
