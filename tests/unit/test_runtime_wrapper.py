"""``runtime.wrapper``: the command line that starts a runtime through AWS_LAMBDA_EXEC_WRAPPER,
run here with the host's /bin/sh (in a sandbox it is the userland's), checked for AWS's messages
and exit statuses."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lamina.runtime.wrapper import ENV_VAR, wrapped

ARGV = ("/var/lang/bin/python3.12", "/var/runtime/bootstrap.py")


def run(argv: tuple[str, ...], wrapper: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", ENV_VAR: wrapper}
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False, timeout=10)


def test_no_wrapper_leaves_the_command_line_alone() -> None:
    assert wrapped(ARGV, {}) == ARGV
    assert wrapped(ARGV, {ENV_VAR: ""}) == ARGV  # AWS's bootstrap tests -z
    assert wrapped(ARGV, {"OTHER": "/opt/x"}) == ARGV


def test_wrapper_gets_the_runtime_command_line(tmp_path: Path) -> None:
    script = tmp_path / "wrap"
    script.write_text('#!/bin/sh\necho "args: $*"\n')
    script.chmod(0o755)
    out = run(wrapped(ARGV, {ENV_VAR: str(script)}), str(script))
    assert (out.returncode, out.stdout) == (0, f"args: {' '.join(ARGV)}\n")


def test_missing_wrapper(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    out = run(wrapped(ARGV, {ENV_VAR: missing}), missing)
    assert (out.returncode, out.stdout) == (127, f"{missing}: does not exist\n")


def test_directory_is_not_a_wrapper(tmp_path: Path) -> None:
    out = run(wrapped(ARGV, {ENV_VAR: str(tmp_path)}), str(tmp_path))
    assert (out.returncode, out.stdout) == (127, f"{tmp_path}: does not exist\n")


def test_wrapper_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "wrap"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    out = run(wrapped(ARGV, {ENV_VAR: str(script)}), str(script))
    # As root, access(X_OK) is true only when some execute bit is set: 0644 has none.
    assert (out.returncode, out.stdout) == (126, f"{script}: is not an executable\n")
