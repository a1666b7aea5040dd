"""The sandbox an environment's Init starts: its :class:`SandboxSpec`, built from the
:class:`Target` and what the Init made for it (network namespace, host uid, log pipes, command
line, environment variables, extensions), and its start off the event loop."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lamina.domain import dns
from lamina.linux import NetNamespace
from lamina.runtime.extension_files import extension_environment
from lamina.runtime.public_api import ApiAccess
from lamina.runtime.sandbox import Sandbox, SandboxSpec
from lamina.runtime.sizing import CgroupPolicy
from lamina.runtime.target import Target
from lamina.runtime.zygote import ZygoteLost, Zygotes

__all__ = ["sandbox_spec", "start_sandbox"]

log = logging.getLogger(__name__)


def sandbox_spec(
    target: Target,
    *,
    env_id: str,
    work_dir: Path,
    argv: tuple[str, ...],
    env: dict[str, str],
    netns: NetNamespace,
    cgroups: CgroupPolicy,
    host_id: int,
    stdout: int,
    public_api: ApiAccess | None,
    extensions: tuple[str, ...],
    extension_stdout: int | None,
    init_binary: Path | None,
) -> SandboxSpec:
    """The sandbox of one environment of ``target``: its code and layers, its runtime's directories,
    MemorySize and EphemeralStorage as limits, its DNS files, and (with ``extensions``) lamina-init
    as PID 1 starting them with the runtime's variables minus the runtime's own. ``public_api``: how
    the function reaches lamina's API as a VPC does (its CA bundle is mounted), or None."""
    cfg = target.config
    limits = cgroups.limits(int(cfg.get("MemorySize", 128)))
    runtime_dir, lang_dir = target.python_dirs()
    resolv_conf = target.resolv_conf
    return SandboxSpec(
        env_id=env_id,
        work_dir=work_dir,
        task_dir=target.code_dir,
        layer_dirs=target.layer_dirs,
        runtime_dir=runtime_dir,
        lang_dir=lang_dir,
        userland=target.userland or Path("/"),
        argv=argv,
        env=env,
        netns=netns,
        memory_bytes=limits.memory_bytes,
        tmp_bytes=int((cfg.get("EphemeralStorage") or {}).get("Size", 512)) * 1024 * 1024,
        host_id=host_id,
        stdout=stdout,
        cgroup_parent=cgroups.parent,
        pids_max=limits.pids_max,
        cpus=limits.cpus,
        cpu_quota=limits.cpu_quota,
        resolv_conf=resolv_conf() if callable(resolv_conf) else resolv_conf,
        hosts=dns.HOSTS,
        ca_bundle=public_api.ca if public_api is not None else None,
        extensions=extensions,
        extension_stdout=extension_stdout,
        extension_env=extension_environment(env) if extensions else None,
        init_binary=init_binary,
    )


def start_sandbox(
    spec: SandboxSpec,
    write_fd: int,
    ext_fd: int | None,
    zygotes: Zygotes | None,
    function: str,
    account: str,
) -> Sandbox:
    """``Sandbox.start`` (blocking: run it in a thread), forked from a zygote when ``zygotes`` has one
    for it (:func:`lamina.runtime.zygote.exec_reason`; ``function`` names the function in the log,
    ``account`` is whose zygote it is),
    then the server's copies of the log pipes' write ends closed (here, not on the loop: a start
    whose caller was cancelled still uses them). A zygote that does not fork (:class:`ZygoteLost`:
    nothing was started) leaves the cold start to the exec path."""
    try:
        forker = zygotes.forker(spec, function, account) if zygotes is not None else None
        try:
            return Sandbox.start(spec, forker)
        except ZygoteLost as exc:
            log.warning("%s starts its interpreter: %s", function, exc)
            return Sandbox.start(spec, None)
    finally:
        os.close(write_fd)
        if ext_fd is not None:
            os.close(ext_fd)
