"""What an environment runs (:class:`Target`: one function version resolved to host paths), how
it is connected to a network (:class:`Attacher`), and what an invocation gives back
(:class:`InvokeResult`)."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from lamina.domain.functions import FunctionRef
from lamina.domain.models import FunctionConfiguration
from lamina.domain.overlay import RemoteInterface
from lamina.linux import NetNamespace
from lamina.runtime.catalog import PythonRuntime
from lamina.runtime.public_api import ApiAccess

__all__ = ["Attacher", "InvokeResult", "NetworkAttachment", "Outcome", "Target", "error_body", "exit_reason"]


class NetworkAttachment(Protocol):
    """An environment's link to an interface namespace, removed by ``close()`` (idempotent).
    ``cut``: the link is gone from under it (a remote interface's home node died or restarted):
    the environment takes no more invocations."""

    cut: bool

    def close(self) -> None: ...


class Attacher(Protocol):
    """Connects an environment's network namespace to an interface namespace (a VPC function's
    Hyperplane interface, or the default network's), blocking; the data plane implements it
    (``net.attach.attach``) and whoever builds the pool hands it in."""

    def __call__(
        self, env_ns: NetNamespace, eni_ns: NetNamespace | RemoteInterface, /
    ) -> NetworkAttachment: ...


@dataclasses.dataclass(frozen=True)
class Target:
    """What an environment runs: one function version, resolved to host paths."""

    account: str
    region: str
    name: str
    version: str
    config: FunctionConfiguration
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    python: PythonRuntime | None
    credentials: tuple[str, str, str]  # access key, secret, session token (the role's)
    endpoint_port: int
    # VPC functions: the namespaces of the Hyperplane interfaces (one per subnet); environments are
    # spread across them; an interface homed on another node is a RemoteInterface (the attacher
    # reaches it over the VPC's tunnel). Other functions: the default network's. Empty: only
    # loopback (no data plane or no uplink on this host).
    vpc_namespaces: tuple[NetNamespace | RemoteInterface, ...] = ()
    # With ``vpc_namespaces``: how the function reaches lamina's API, as a VPC sees it (its public
    # addresses or endpoints, ``runtime.public_api``) instead of the in-sandbox relay; None: the relay.
    api: ApiAccess | None = None
    # The root filesystem of AWS's image for the runtime (its /usr, /lib, /etc, /var/lang and
    # /var/runtime), or None: the host's system directories and ``python``'s installation.
    userland: Path | None = None
    # The host fallback's native-code gate for this code and these layers (:mod:`lamina.runtime.native_gate`):
    # the blocked files and the loader's messages, as the runtime's bootstrap reads them; None: none.
    native_gate: str | None = None
    # When ``credentials`` expire (epoch seconds): an environment is not used past it (see the pool).
    credentials_expire: float = math.inf
    # The environment's /etc/resolv.conf (``domain.dns``: its VPC's DNS server and search domains,
    # or the default network's), or what gives it when an environment starts (a VPC's DHCP option
    # set may change while the Target is cached); None: the userland's own file.
    resolv_conf: str | Callable[[], str] | None = None

    def python_dirs(self) -> tuple[Path | None, Path | None]:
        """What is mounted at ``/var/runtime`` and ``/var/lang``: the image's, or the host runtime's."""
        if self.userland is not None:
            return _image_dir(self.userland, "var/runtime"), _image_dir(self.userland, "var/lang")
        if self.python is not None:
            return self.python.runtime_dir, self.python.prefix
        return None, None

    # Both computed once per Target (the pool reads them on every invoke); cached_property writes
    # the instance's __dict__ directly, which a frozen dataclass allows.
    @functools.cached_property
    def function(self) -> FunctionRef:
        """The function this is a version of."""
        return FunctionRef(self.account, self.region, self.name)

    @functools.cached_property
    def key(self) -> tuple[FunctionRef, str, str]:
        """Environments are reused only for exactly this configuration: (function, version, RevisionId)."""
        return (self.function, self.version, str(self.config.get("RevisionId")))


class Outcome(enum.Enum):
    OK = "ok"
    ERROR = "error"  # the function (or its init) reported an error
    TIMEOUT = "timeout"
    EXITED = "exited"


@dataclasses.dataclass
class InvokeResult:
    outcome: Outcome
    payload: bytes
    log_tail: bytes
    duration_ms: float
    error_type: str | None = None


def _image_dir(userland: Path, name: str) -> Path | None:
    """A directory of an image's root filesystem (``var/runtime``, ``var/lang``), if it has one."""
    path = userland / name
    return path if path.is_dir() and not path.is_symlink() else None


def error_body(request_id: str, error_type: str, reason: str) -> bytes:
    """The platform's error body for an invocation: ``{"errorType", "errorMessage": "RequestId: <id>
    Error: <reason>"}``."""
    return json.dumps(
        {"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: {reason}"}
    ).encode()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "signal: killed"
    if code < 0:
        return "signal: killed" if code == -9 else f"signal: {-code}"
    return f"exit status {code}"


def exit_reason(code: int | None) -> str:
    """Lambda's words for a runtime that exited (status ``code``, negative: a signal) before
    answering (rapid's process termination): status 0 gave no reason, any other is an error."""
    if code == 0:
        return "Runtime exited without providing a reason"
    return f"Runtime exited with error: {_exit_text(code)}"
