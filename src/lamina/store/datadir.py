"""The data directory's own permissions: private to the server's user.

Everything under it is either the server's state (the database, logs) or tenants' uploads (zips
and their extracted trees): no other host user may read, list or traverse any of it. Environments
never need to: their code and layers reach them as bind mounts made by the server, and a bind
mount's permissions are those of the mounted tree itself, not of the directories above its source.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700


def open_data_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) or tighten an existing one to 0700. A directory other users may
    write to (``/tmp``: sticky, world-writable) or that belongs to another user is refused with an
    ``OSError`` saying so: lamina does not take over a shared directory."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=PRIVATE_DIR, parents=True)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"{path} is not a directory")
    mode = stat.S_IMODE(st.st_mode)
    if mode == PRIVATE_DIR:
        return
    if st.st_uid != os.geteuid() or mode & stat.S_ISVTX:
        raise PermissionError(
            f"{path} (mode {mode:04o}, owner uid {st.st_uid}) is shared with other users; "
            "give a directory of lamina's own"
        )
    os.chmod(path, PRIVATE_DIR)
    log.warning("data directory %s was mode %04o: now 0700 (only its owner may enter it)", path, mode)
