"""How AWS sizes an execution environment, as cgroup limits.

Facts (AWS Lambda developer guide, "Configuring Lambda function memory" and "Lambda quotas"):
- CPU is allocated in proportion to memory: at 1,769 MB a function has the equivalent of one
  vCPU (one vCPU-second of credit per second); up to 6 vCPUs at 10,240 MB.
- "Processes and threads: 1,024" per execution environment.
- Between invocations the environment is frozen: nothing runs while no request is in flight.

lamina applies the CPU share always, as a scheduler *weight* (an environment with more memory gets
proportionally more of a contended CPU, none is held back on an idle host), and as a hard quota
only when asked (``--cpu-limit aws``), for people who want AWS's throttling.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from pathlib import Path

from lamina.linux.cgroups import DEFAULT_PARENT, Limits

MB_PER_VCPU = 1769
PIDS_MAX = 1024


class CpuLimit(enum.Enum):
    """Whether environments get a hard CPU quota besides their weight."""

    NONE = "none"
    AWS = "aws"

    @classmethod
    def parse(cls, text: str) -> CpuLimit:
        """``none`` or ``aws``; ``ValueError`` otherwise."""
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"expected one of none, aws, got {text!r}") from None

    def __str__(self) -> str:
        return self.value


def vcpus(memory_mb: int) -> float:
    """The vCPUs AWS gives a function of ``memory_mb`` MB."""
    return memory_mb / MB_PER_VCPU


def cgroup_parent(data_dir: Path) -> str:
    """The cgroup under which a server with ``data_dir`` puts its environments' groups: named
    after the data directory, so that a restarted server finds (and removes) what it left."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return f"lamina-{digest}"


@dataclass(frozen=True)
class CgroupPolicy:
    """A server's choices for its environments' groups."""

    parent: str = DEFAULT_PARENT
    cpu_limit: CpuLimit = CpuLimit.NONE

    def limits(self, memory_mb: int) -> Limits:
        """The limits of an environment of ``memory_mb`` MB (MemorySize)."""
        share = vcpus(memory_mb)
        quota = share if self.cpu_limit is CpuLimit.AWS else None
        return Limits(memory_mb * 1024 * 1024, PIDS_MAX, share, quota)
