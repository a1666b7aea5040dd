"""Which environments are forked from a zygote and which take the exec path (lamina.runtime.zygote)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lamina.linux import NetNamespace
from lamina.runtime.runtime_env import BASE_ENVIRONMENT
from lamina.runtime.sandbox_root import SandboxSpec
from lamina.runtime.zygote import exec_reason

PYTHON = ("/var/lang/bin/python3.12", "/var/runtime/bootstrap.py")


def spec(tmp_path: Path, **changes: object) -> SandboxSpec:
    base = SandboxSpec(
        env_id="lamina-x",
        work_dir=tmp_path / "w",
        task_dir=tmp_path,
        layer_dirs=(),
        runtime_dir=tmp_path,
        lang_dir=tmp_path,
        argv=PYTHON,
        env={**BASE_ENVIRONMENT, "_HANDLER": "app.handler", "AWS_REGION": "us-east-1", "HOME": "/tmp"},
        netns=NetNamespace(-1, "none"),
        memory_bytes=1,
        tmp_bytes=1,
        host_id=1,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_plain_python_function_is_forked(tmp_path: Path) -> None:
    assert exec_reason(spec(tmp_path)) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"extensions": ("/opt/extensions/x",)}, "extensions"),
        ({"userland": Path("/images/python3.12")}, "AWS's image"),
        ({"runtime_dir": None, "lang_dir": None, "argv": ("/var/task/bootstrap",)}, "custom runtime"),
        ({"argv": ("/opt/wrapper", *PYTHON)}, "AWS_LAMBDA_EXEC_WRAPPER"),
        (
            {"argv": ("/var/lang/bin/python3.12", "-X", "importtime", "/var/runtime/bootstrap.py")},
            "AWS_LAMBDA_EXEC_WRAPPER",
        ),
    ],
)
def test_what_cannot_be_forked(tmp_path: Path, changes: dict[str, object], reason: str) -> None:
    got = exec_reason(spec(tmp_path, **changes))
    assert got is not None and reason in got


@pytest.mark.parametrize(
    "name",
    [
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONHASHSEED",
        "PYTHONSAFEPATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LC_ALL",
        "LANG",
        "LANGUAGE",
        "LOCPATH",
        "MALLOC_ARENA_MAX",
        "GLIBC_TUNABLES",
    ],
)
def test_startup_variables_of_other_values_are_execd(tmp_path: Path, name: str) -> None:
    s = spec(tmp_path)
    env = {**s.env, name: "something-else"}
    got = exec_reason(dataclasses.replace(s, env=env))
    assert got == f"it sets {name}, which the interpreter reads when it starts"


def test_the_zygotes_own_values_are_not_a_reason(tmp_path: Path) -> None:
    s = spec(tmp_path)
    assert exec_reason(dataclasses.replace(s, env={**s.env, "LANG": BASE_ENVIRONMENT["LANG"]})) is None
    # Read after start-up (PATH, TZ, HOME, TMPDIR...): the forked runtime reads the function's.
    later = {**s.env, "PATH": "/opt/bin:/usr/bin", "TZ": "Europe/Paris", "TMPDIR": "/tmp/x"}
    assert exec_reason(dataclasses.replace(s, env=later)) is None
