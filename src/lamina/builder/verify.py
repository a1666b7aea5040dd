"""Verifying a layer where it will run: import every top-level module of it inside a real lamina
execution environment of the target runtime (the layer at ``/opt``, AWS's runtime client, the
function's sandbox), the way a function using the layer would.

That catches what a static look cannot: wheels for another platform or Python, missing shared
libraries, a wrong folder layout, packages that fail at import. It needs what running functions
needs (root for namespaces and mounts, the runtime installed by ``make setup``) and a host of the
layer's architecture; otherwise it is skipped and the reason given.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lamina.builder.targets import BuildTarget

HANDLER_MODULE = "lamina_layer_verify"
HANDLER = """\
import importlib
import sys
import traceback


def handler(event, context):
    failed = {}
    for name in event["modules"]:
        print("lamina-verify: import " + name, flush=True)
        try:
            importlib.import_module(name)
        except BaseException as exc:
            failed[name] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return {"failed": failed, "python": sys.version.split()[0]}
"""
TIMEOUT_S = 120
MEMORY_MB = 2048
_HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass
class Verification:
    ran: bool
    detail: str  # why it was skipped, or what ran
    failed: dict[str, str] = field(default_factory=dict)  # module -> import error

    @property
    def ok(self) -> bool:
        return not self.failed


def host_arch() -> str:
    machine = platform.machine().lower()
    return _HOST_ARCH.get(machine, machine)


def why_not(target: BuildTarget, runtimes_dir: Path) -> str | None:
    """Why this host cannot run the target's execution environment, or None if it can."""
    if host_arch() != target.arch:
        return f"this host is {host_arch()}; {target.arch} layers cannot run here"
    if os.geteuid() != 0:
        return "execution environments need root (namespaces and mounts); run as root to verify"
    from lamina.runtime.catalog import RuntimeCatalog

    if target.runtime not in RuntimeCatalog(runtimes_dir).python():
        return (
            f"no {target.runtime} runtime is installed in {runtimes_dir} (`make setup` installs one for "
            "each python3.X on this host)"
        )
    return None


def verify(layer_root: Path, modules: list[str], target: BuildTarget, runtimes_dir: Path) -> Verification:
    reason = why_not(target, runtimes_dir)
    if reason is not None:
        return Verification(False, reason)
    if not modules:
        return Verification(False, "the layer has no top-level Python modules to import")
    return asyncio.run(_verify(layer_root, modules, target, runtimes_dir))


async def _verify(
    layer_root: Path, modules: list[str], target: BuildTarget, runtimes_dir: Path
) -> Verification:
    from lamina.runtime.catalog import RuntimeCatalog
    from lamina.runtime.environment import Environment, Outcome, Target
    from lamina.runtime.host_ids import HostIds
    from lamina.runtime.logs import DiscardLogs
    from lamina.runtime.runtime_api import Invocation

    python = RuntimeCatalog(runtimes_dir).python()[target.runtime]
    with tempfile.TemporaryDirectory(prefix="lamina-verify-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        code = work / "task"
        code.mkdir(mode=0o755)
        (code / f"{HANDLER_MODULE}.py").write_text(HANDLER)
        os.chmod(code / f"{HANDLER_MODULE}.py", 0o644)
        env_target = Target(
            account="000000000000",
            region="us-east-1",
            name="lamina-layer-verify",
            version="$LATEST",
            config={"Handler": f"{HANDLER_MODULE}.handler", "MemorySize": MEMORY_MB, "RevisionId": "verify"},
            code_dir=code,
            layer_dirs=(layer_root,),
            python=python,
            credentials=("", "", ""),
            endpoint_port=4566,
        )
        # Only the invoke's tail is read (what the runtime printed before failing): nothing is kept.
        logs = DiscardLogs()
        host_ids = HostIds()
        env = Environment(env_target, work / "envs", logs, attacher=None, host_ids=host_ids)
        try:
            await env.start()
            invocation = Invocation(
                request_id=str(uuid.uuid4()),
                payload=json.dumps({"modules": modules}).encode(),
                deadline_ms=int(time.time() * 1000) + TIMEOUT_S * 1000,
                function_arn="arn:aws:lambda:us-east-1:000000000000:function:lamina-layer-verify",
                trace_id=f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
            )
            result = await env.invoke(invocation, TIMEOUT_S, first=True)
        finally:
            await env.destroy()
            host_ids.close()
    what = f"imported {len(modules)} module(s) in a {target.runtime} execution environment"
    if result.outcome is Outcome.OK:
        doc = json.loads(result.payload)
        return Verification(True, what, dict(doc.get("failed") or {}))
    # The runtime died or timed out: blame the module it was importing (or its start-up).
    log = result.log_tail.decode(errors="replace")
    started = re.findall(r"lamina-verify: import (\S+)", log)
    culprit = started[-1] if started else "(runtime start-up with this layer at /opt)"
    try:
        error = json.loads(result.payload)
        message = f"{error.get('errorType')}: {error.get('errorMessage')}"
    except ValueError:
        message = result.payload.decode(errors="replace")
    return Verification(True, what, {culprit: message})
