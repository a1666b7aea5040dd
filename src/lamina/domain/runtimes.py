"""The one table of Lambda's Python and OS-only runtimes, as data (pure: today's date is passed in).

Facts, from AWS's runtime documentation ("Lambda runtimes", docs.aws.amazon.com/lambda/latest/dg/
lambda-runtimes.html, and "Runtime deprecation", runtime-support-policy.html), as published in 2026:

- Each runtime pairs a language with an Amazon Linux userland: python3.12 and newer and
  provided.al2023 run on Amazon Linux 2023; python3.8 to python3.11 and provided.al2 on Amazon
  Linux 2; python2.7, python3.6, python3.7 and provided on the original Amazon Linux (2018.03).
- The userland fixes the native code a function can load: glibc 2.17 (Amazon Linux), 2.26 (AL2),
  2.34 (AL2023); libstdc++ from gcc 4.8 (AL1: ``GLIBCXX_3.4.19``, ``CXXABI_1.3.7``), gcc 7
  (AL2: ``GLIBCXX_3.4.24``, ``CXXABI_1.3.11``) and gcc 11 (AL2023: ``GLIBCXX_3.4.29``,
  ``CXXABI_1.3.13``), the symbol versions of libstdc++'s ABI history (gcc.gnu.org, "ABI Policy
  and Guidelines").
- Runtimes on AL2 and AL2023 exist for ``x86_64`` and ``arm64``; the Amazon Linux (AL1) ones were
  ``x86_64`` only.
- Deprecation happens in stages: at the deprecation date AWS stops patching; from the "block
  function create" date CreateFunction refuses the runtime; from the "block function update"
  date UpdateFunctionConfiguration and UpdateFunctionCode refuse functions on it. Invocations are
  never blocked. The dates below are AWS's of 2026: AWS moved many in 2026 (python3.8,
  python3.9 and python3.10 now block creates on Feb 1, 2027 and updates on Mar 3, 2027;
  python3.11 got a year more, and provided.al2 is given the same AL2 dates). The AL1 runtimes'
  update blocks are the last AWS published before removing them from its table (Nov 1, 2025);
  CreateFunction with python3.7 or provided was refused when recorded in January 2026.
  ``None``: not scheduled.
- Refused runtimes answer ``InvalidParameterValueException`` with :data:`DEPRECATED_MESSAGE`
  (recorded against AWS in January 2026 for python3.7, provided, java8, go1.x...).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

# AWS's words when a runtime is past its block date (recorded for CreateFunction; the same
# sentence names both operations).
DEPRECATED_MESSAGE = (
    "The runtime parameter of {runtime} is no longer supported for creating or updating AWS Lambda "
    "functions. We recommend you use a supported runtime while creating or updating functions."
)


class Architecture(enum.Enum):
    """Lambda's instruction set architectures, as the API names them."""

    X86_64 = "x86_64"
    ARM64 = "arm64"

    @property
    def machine(self) -> str:
        """The name wheel tags, ELF and ``uname -m`` use (``aarch64`` for arm64)."""
        return "aarch64" if self is Architecture.ARM64 else "x86_64"


class Family(enum.Enum):
    """What a runtime provides besides the operating system."""

    PYTHON = "python"
    OS_ONLY = "provided"  # the function brings its own bootstrap


@dataclass(frozen=True)
class Userland:
    """An Amazon Linux release as Lambda ships it: what native code may require of it."""

    name: str  # "Amazon Linux 2023", as AWS's runtime table prints it
    key: str  # "al2023": short name, as in the provided.al2023 identifier and image tags
    glibc: tuple[int, int]  # highest GLIBC_2.x symbol version
    glibcxx: tuple[int, int, int]  # highest GLIBCXX_3.4.x symbol version of its libstdc++
    cxxabi: tuple[int, int, int]  # highest CXXABI_1.3.x symbol version of its libstdc++

    @property
    def glibc_text(self) -> str:
        return f"{self.glibc[0]}.{self.glibc[1]}"

    @property
    def glibcxx_text(self) -> str:
        """``GLIBCXX_3.4.29``: the symbol version string, as the dynamic loader prints it."""
        return "GLIBCXX_" + ".".join(map(str, self.glibcxx))

    @property
    def cxxabi_text(self) -> str:
        """``CXXABI_1.3.13``."""
        return "CXXABI_" + ".".join(map(str, self.cxxabi))


AMAZON_LINUX = Userland("Amazon Linux", "alami", (2, 17), (3, 4, 19), (1, 3, 7))
AMAZON_LINUX_2 = Userland("Amazon Linux 2", "al2", (2, 26), (3, 4, 24), (1, 3, 11))
AMAZON_LINUX_2023 = Userland("Amazon Linux 2023", "al2023", (2, 34), (3, 4, 29), (1, 3, 13))
USERLANDS = (AMAZON_LINUX, AMAZON_LINUX_2, AMAZON_LINUX_2023)

_BOTH = (Architecture.X86_64, Architecture.ARM64)
_X86 = (Architecture.X86_64,)


@dataclass(frozen=True)
class Runtime:
    """One row of AWS's runtime table."""

    identifier: str  # python3.12, provided.al2023: the API's Runtime value
    name: str  # "Python 3.12", "OS-only Runtime"
    family: Family
    userland: Userland
    architectures: tuple[Architecture, ...]
    base_image: str  # AWS's public base image, e.g. public.ecr.aws/lambda/python:3.12
    deprecated: dt.date | None  # AWS stops patching
    block_create: dt.date | None  # CreateFunction refuses from this day (UTC)
    block_update: dt.date | None  # updates refuse from this day (UTC)

    @property
    def python_version(self) -> tuple[int, int] | None:
        """``(3, 12)`` for python3.12; ``None`` for OS-only runtimes."""
        if self.family is not Family.PYTHON:
            return None
        major, minor = self.identifier.removeprefix("python").split(".")
        return int(major), int(minor)

    @property
    def cpython_tag(self) -> str | None:
        """``cp312``: the CPython tag of wheels and extension modules this runtime loads."""
        version = self.python_version
        return None if version is None else f"cp{version[0]}{version[1]}"

    def is_deprecated(self, today: dt.date) -> bool:
        return self.deprecated is not None and today >= self.deprecated

    def create_blocked(self, today: dt.date) -> bool:
        """Whether CreateFunction refuses this runtime on ``today`` (a UTC date)."""
        return self.block_create is not None and today >= self.block_create

    def update_blocked(self, today: dt.date) -> bool:
        """Whether updating a function to or on this runtime is refused on ``today`` (UTC)."""
        return self.block_update is not None and today >= self.block_update

    def supports(self, arch: str) -> bool:
        return any(a.value == arch for a in self.architectures)


def _d(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _python(minor: int, userland: Userland, dates: tuple[str | None, str | None, str | None]) -> Runtime:
    return Runtime(
        f"python3.{minor}",
        f"Python 3.{minor}",
        Family.PYTHON,
        userland,
        _X86 if userland is AMAZON_LINUX else _BOTH,
        f"public.ecr.aws/lambda/python:3.{minor}",
        *map(_d, dates),
    )


# Newest first within each family, as AWS lists them. Dates: deprecation, block create, block update.
RUNTIMES: tuple[Runtime, ...] = (
    # python3.15 is in the API's enum; AWS has not published its dates yet.
    _python(15, AMAZON_LINUX_2023, (None, None, None)),
    _python(14, AMAZON_LINUX_2023, ("2029-06-30", "2029-07-31", "2029-08-31")),
    _python(13, AMAZON_LINUX_2023, ("2029-06-30", "2029-07-31", "2029-08-31")),
    _python(12, AMAZON_LINUX_2023, ("2028-10-31", "2028-11-30", "2029-01-10")),
    _python(11, AMAZON_LINUX_2, ("2027-06-30", "2027-07-31", "2027-08-31")),
    _python(10, AMAZON_LINUX_2, ("2026-10-31", "2027-02-01", "2027-03-03")),
    _python(9, AMAZON_LINUX_2, ("2025-12-15", "2027-02-01", "2027-03-03")),
    _python(8, AMAZON_LINUX_2, ("2024-10-14", "2027-02-01", "2027-03-03")),
    _python(7, AMAZON_LINUX, ("2023-12-04", "2024-01-09", "2025-11-01")),
    _python(6, AMAZON_LINUX, ("2022-07-18", "2022-07-18", "2022-08-29")),
    Runtime(
        "python2.7",
        "Python 2.7",
        Family.PYTHON,
        AMAZON_LINUX,
        _X86,
        "public.ecr.aws/lambda/python:2.7",
        _d("2021-07-15"),
        _d("2021-07-15"),
        _d("2022-05-30"),
    ),
    Runtime(
        "provided.al2023",
        "OS-only Runtime",
        Family.OS_ONLY,
        AMAZON_LINUX_2023,
        _BOTH,
        "public.ecr.aws/lambda/provided:al2023",
        _d("2029-06-30"),
        _d("2029-07-31"),
        _d("2029-08-31"),
    ),
    Runtime(
        "provided.al2",
        "OS-only Runtime",
        Family.OS_ONLY,
        AMAZON_LINUX_2,
        _BOTH,
        "public.ecr.aws/lambda/provided:al2",
        _d("2027-06-30"),
        _d("2027-07-31"),
        _d("2027-08-31"),
    ),
    Runtime(
        "provided",
        "OS-only Runtime",
        Family.OS_ONLY,
        AMAZON_LINUX,
        _X86,
        "public.ecr.aws/lambda/provided:alami",
        _d("2024-01-08"),
        _d("2024-02-08"),
        _d("2025-11-01"),
    ),
)

_BY_ID = {r.identifier: r for r in RUNTIMES}


def lookup(identifier: str) -> Runtime | None:
    """The table's row for a Runtime value, or ``None`` for one it does not hold (nodejs22.x...)."""
    return _BY_ID.get(identifier)


def get(identifier: str) -> Runtime:
    """The table's row for ``identifier``; ``ValueError`` when the table has none."""
    runtime = _BY_ID.get(identifier)
    if runtime is None:
        raise ValueError(f"not a Lambda Python or OS-only runtime: {identifier!r}")
    return runtime


def python_runtimes() -> tuple[Runtime, ...]:
    """The Python runtimes, newest first."""
    return tuple(r for r in RUNTIMES if r.family is Family.PYTHON)


def os_only_runtimes() -> tuple[Runtime, ...]:
    """``provided.al2023``, ``provided.al2``, ``provided``."""
    return tuple(r for r in RUNTIMES if r.family is Family.OS_ONLY)


def utc_date(epoch_ms: int) -> dt.date:
    """The UTC calendar day of an instant: AWS's block dates are days."""
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).date()


def create_blocked(identifier: str, today: dt.date) -> bool:
    """Whether CreateFunction refuses ``identifier`` on ``today`` (runtimes outside the table: no)."""
    runtime = _BY_ID.get(identifier)
    return runtime is not None and runtime.create_blocked(today)


def update_blocked(identifier: str, today: dt.date) -> bool:
    """Whether an update to or of a function on ``identifier`` is refused on ``today``."""
    runtime = _BY_ID.get(identifier)
    return runtime is not None and runtime.update_blocked(today)


def deprecated_message(identifier: str) -> str:
    """AWS's InvalidParameterValueException message for a runtime past its block date."""
    return DEPRECATED_MESSAGE.format(runtime=identifier)
