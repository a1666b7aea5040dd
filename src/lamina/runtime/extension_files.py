"""A function's external extensions: the entries of ``/opt/extensions`` its layers make.

AWS's Lambda platform (rapid, ``agents.ListExternalAgentPaths``) reads ``/opt/extensions`` with Go's
``os.ReadDir``: entries sorted by name (bytewise), every entry that is not a directory, by its own
type (``lstat``: a symlink is listed, whatever it points to), none below it. Files that are not
executable, not readable or empty are listed too: starting them fails, as an ``Extension.LaunchError``
(rapid's test ``TestFindAgentMixed``). Lambda starts at most 10 (``core.MaxAgentsAllowed``; the
quota "Extensions: 10"): the 11th is a launch error (``ErrTooManyExtensions``) and Init fails.

``/opt`` is the read-only overlay of the layers, the later layer winning a name (see
:mod:`lamina.runtime.sandbox`), so the listing is worked out on the host from the layer trees,
without starting anything: for each name the last layer that has ``extensions/<name>`` decides
whether it is a directory. A layer whose ``extensions`` is not a directory (a file, or a symlink
the overlay would resolve inside the sandbox) hides the earlier layers' and lists nothing.

A name is the extension's identity everywhere after: its ``Lambda-Extension-Name`` (an HTTP header
value), the ``EXTENSION`` and launch-error lines of the function's log, its Telemetry records. A file
name that is not UTF-8 or holds a control character (a newline would end the log line and start a
forged one, such as a fake ``REPORT``) can be none of these, so such a listing is refused as a whole
(:class:`ExtensionListingError`) rather than started.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from lamina.errors import LaminaError

SANDBOX_DIR = "/opt/extensions"
#: Lambda's quota: at most this many extensions start.
MAX_EXTENSIONS = 10
#: Entries read per layer's ``extensions`` directory before giving up (a hostile layer).
MAX_ENTRIES = 4096


class ExtensionListingError(LaminaError):
    """A layer's ``extensions`` directory cannot be listed (unreadable, absurdly large, or a name
    that is not UTF-8 or holds a control character). Its message is the function's to read (the
    Init error): it names the sandbox's paths, never the host's."""


def _valid_name(name: bytes) -> bool:
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.isprintable()


def external_extensions(layer_dirs: Sequence[Path]) -> tuple[str, ...]:
    """The in-sandbox paths (``/opt/extensions/<name>``) of every external extension the merged
    layers give, sorted by name as Lambda starts them (all of them: the caller applies
    :data:`MAX_EXTENSIONS`)."""
    merged: dict[bytes, bool] = {}  # name -> is a directory (later layer wins)
    for layer in layer_dirs:
        top = os.path.join(os.fsencode(layer), b"extensions")
        try:
            mode = os.lstat(top).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ExtensionListingError(f"cannot read {SANDBOX_DIR}: {exc.strerror}") from exc
        if not stat.S_ISDIR(mode):
            merged = {}  # a non-directory hides the earlier layers' extensions
            continue
        try:
            with os.scandir(top) as entries:
                for count, entry in enumerate(entries):
                    if count >= MAX_ENTRIES:
                        raise ExtensionListingError(f"more than {MAX_ENTRIES} entries in {SANDBOX_DIR}")
                    merged[entry.name] = entry.is_dir(follow_symlinks=False)
        except OSError as exc:
            raise ExtensionListingError(f"cannot read {SANDBOX_DIR}: {exc.strerror}") from exc
    names = [name for name in sorted(merged) if not merged[name]]
    for name in names:
        if not _valid_name(name):
            raise ExtensionListingError(
                f"extension file name {name!r} is not UTF-8 or holds a control character"
            )
    prefix = os.fsencode(SANDBOX_DIR)
    return tuple(os.fsdecode(prefix + b"/" + name) for name in names)


#: What rapid's ``AgentExecEnv`` leaves out of an extension's environment besides every name
#: starting with ``_`` (``_HANDLER``, ``_X_AMZN_TRACE_ID``...): the runtime's own variables.
RUNTIME_ONLY_VARIABLES = frozenset(
    {
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "AWS_XRAY_CONTEXT_MISSING",
    }
)


def extension_environment(runtime_env: dict[str, str]) -> dict[str, str]:
    """An external extension's environment, from the runtime's (rapid's ``AgentExecEnv``)."""
    return {k: v for k, v in runtime_env.items() if not k.startswith("_") and k not in RUNTIME_ONLY_VARIABLES}
