"""What tests that run real Python functions share: the runtime installed for them, a server that
runs them, and a function made from source and waited for until Active."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer
from testzips import make_zip

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def installed_python(wanted: str = "python3.12") -> str:
    """``wanted`` when ``make setup`` installed it, else the newest Python runtime installed; the
    calling module is skipped when there is none."""
    installed = sorted(
        (d.name for d in RUNTIMES_DIR.glob("python3.*") if (d / "lamina-runtime.json").is_file()),
        key=lambda name: int(name.removeprefix("python3.")),
    )
    if not installed:
        pytest.skip(
            f"no Python runtime installed in {RUNTIMES_DIR} (run `make setup`)", allow_module_level=True
        )
    return wanted if wanted in installed else installed[-1]


def runtime_server(
    tmp_path_factory: pytest.TempPathFactory,
    label: str,
    *extra: str,
    accounts: list[dict[str, str]] | None = None,
) -> LaminaServer:
    """A server running functions on the installed runtimes: at most 4 environments, kept 60 s."""
    return LaminaServer(
        tmp_path_factory.mktemp(label) / "data",
        accounts=ACCOUNTS if accounts is None else accounts,
        extra_args=(
            "--runtimes-dir",
            str(RUNTIMES_DIR),
            "--max-environments",
            "4",
            "--idle-timeout",
            "60",
            *extra,
        ),
    )


def python_function(
    lam: Any,
    source: str | dict[str, bytes | str],
    *,
    runtime: str,
    prefix: str = "fn",
    handler: str = "app.handler",
    role: str = ROLE,
    **extra: Any,
) -> str:
    """A new function (``source``: app.py's text, or every file of the zip), Active."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    files = {"app.py": source} if isinstance(source, str) else source
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=role,
        Handler=handler,
        Code={"ZipFile": make_zip(files)},
        **extra,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return name


def function_log_text(server: LaminaServer, name: str, *, key: str = "test", secret: str = "test") -> str:
    """Everything a function has logged so far, read from CloudWatch Logs (its ``/aws/lambda/<name>``
    group, every stream, in time order) as one text; empty before its first line is delivered."""
    from lamina_server import client

    logs = client(server, "logs", key=key, secret=secret)
    messages: list[str] = []
    params: dict[str, Any] = {"logGroupName": f"/aws/lambda/{name}"}
    while True:
        try:
            page = logs.filter_log_events(**params)
        except logs.exceptions.ResourceNotFoundException:
            return ""
        messages += [e["message"] for e in page["events"]]
        if not page.get("nextToken"):
            return "".join(messages)
        params["nextToken"] = page["nextToken"]
