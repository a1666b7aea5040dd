"""``AWS_LAMBDA_EXEC_WRAPPER``: the runtime started through the function's own wrapper script.

Facts (AWS's "Modifying the runtime environment", and the ``/var/runtime/bootstrap`` of AWS's
Python base images):

- When the function's environment sets ``AWS_LAMBDA_EXEC_WRAPPER`` to a path, Lambda starts the
  runtime as that script, with the runtime's own command line as its arguments (for Python,
  ``/var/lang/bin/python3.x /var/runtime/bootstrap.py``). The script changes what it likes
  (environment, interpreter flags) and ``exec "$@"``-s the result: the ADOT layer's
  ``/opt/otel-instrument`` does exactly this.
- AWS's bootstrap does it in bash: an empty or unset variable means no wrapper; a path that is not
  a regular file prints ``<path>: does not exist`` on stdout (the function's log) and exits 127; a
  file that is not executable prints ``<path>: is not an executable`` and exits 126. The platform
  then reports the runtime's exit as ``Runtime.ExitError`` ("Runtime exited with error: exit
  status 127"), and a wrapper that exits 0 without starting anything as "Runtime exited without
  providing a reason".
- Functions on AWS's own userland (an image whose ``/var/runtime/bootstrap`` is that script) get
  their wrapper from it, so lamina wraps only the command lines it makes itself: the host
  interpreter's and custom runtimes' (``/var/task/bootstrap``, ``/opt/bootstrap``). AWS documents
  no wrapper for the ``provided`` family; lamina applies it there too, in the same way.

The check runs inside the sandbox (the path is the sandbox's: ``/opt``, ``/var/task``...), in the
userland's ``/bin/sh``, which then ``exec``-s the wrapper: one shell start, only for functions
that set the variable. The wrapper is function code like any other: same sandbox, same user.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The variable AWS reads (from the function's configuration).
ENV_VAR = "AWS_LAMBDA_EXEC_WRAPPER"

# $0 is the name shells use in their own error messages (as AWS's script is /var/runtime/bootstrap).
_NAME = "/var/runtime/bootstrap"
_LAUNCH = (
    'wrapper="$AWS_LAMBDA_EXEC_WRAPPER"\n'
    'if [ ! -f "$wrapper" ]; then\n'
    '  echo "$wrapper: does not exist"\n'
    "  exit 127\n"
    "fi\n"
    'if [ ! -x "$wrapper" ]; then\n'
    '  echo "$wrapper: is not an executable"\n'
    "  exit 126\n"
    "fi\n"
    'exec "$wrapper" "$@"\n'
)


def wrapped(argv: tuple[str, ...], env: Mapping[str, str]) -> tuple[str, ...]:
    """The command line that starts ``argv`` through the wrapper ``env`` names (the function's
    environment), or ``argv`` itself when it names none (unset or empty, as AWS's bootstrap tests)."""
    if not env.get(ENV_VAR):
        return argv
    return ("/bin/sh", "-c", _LAUNCH, _NAME, *argv)
