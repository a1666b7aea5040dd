"""Host hygiene: what tenants upload never becomes setuid, writable or readable by other host users.

The attack (issue 13): a layer zip holding a mode-04755 executable was extracted on the host as a
root-owned setuid file under a world-traversable data directory, so any local user who ran it got
euid 0. Now every extracted tree drops setuid, setgid, sticky and group/other write bits, keeps read
and execute bits as the zip says, and the data directory is 0700 with blobs 0600.
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from testzips import make_zip

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
SCRIPT = b"#!/bin/sh\nid -u\n"
# A layer as a hostile tenant zips it: setuid/setgid executables, a sticky world-writable
# directory, a world-writable file, a private file.
HOSTILE = {
    "bin/": b"",
    "bin/suid": SCRIPT,
    "bin/sgid": SCRIPT,
    "bin/both": SCRIPT,
    "bin/world-writable": SCRIPT,
    "shared/": b"",
    "setgid-dir/": b"",
    "setgid-dir/file": b"x",
    "private/secret": b"only the owner may read this\n",
    "implicit/parent/file": b"y",
}
MODES = {
    "bin/": stat.S_IFDIR | 0o755,
    "bin/suid": stat.S_IFREG | 0o4755,
    "bin/sgid": stat.S_IFREG | 0o2755,
    "bin/both": stat.S_IFREG | 0o6777,
    "bin/world-writable": stat.S_IFREG | 0o777,
    "shared/": stat.S_IFDIR | 0o1777,
    "setgid-dir/": stat.S_IFDIR | 0o2775,
    "setgid-dir/file": stat.S_IFREG | 0o664,
    "private/secret": stat.S_IFREG | 0o600,
    "implicit/parent/file": stat.S_IFREG | 0o644,
}
EXPECTED = {
    "bin/suid": 0o755,
    "bin/sgid": 0o755,
    "bin/both": 0o755,
    "bin/world-writable": 0o755,
    "shared": 0o755,
    "setgid-dir": 0o755,
    "setgid-dir/file": 0o644,
    "private/secret": 0o600,
    "implicit/parent/file": 0o644,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = tmp_path_factory.mktemp("hygiene") / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # as an older lamina left it: world-traversable
    srv = LaminaServer(data)
    yield srv
    srv.stop()


def _published_and_extracted(server: LaminaServer) -> tuple[str, str]:
    """Publish the hostile layer and a function using it (its code as hostile); wait until the
    function is Active, i.e. both trees are extracted. The two CodeSha256 values, as hex."""
    lam = client(server)
    layer = lam.publish_layer_version(
        LayerName="hostile", Content={"ZipFile": make_zip(HOSTILE, modes=MODES)}
    )
    fn = "hygiene"
    code = make_zip(
        {"handler": SCRIPT, "suid-handler": SCRIPT}, modes={"suid-handler": stat.S_IFREG | 0o4755}
    )
    created = lam.create_function(
        FunctionName=fn,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="handler",
        Code={"ZipFile": code},
        Layers=[layer["LayerVersionArn"]],
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=fn, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    return (
        base64.b64decode(layer["Content"]["CodeSha256"]).hex(),
        base64.b64decode(created["CodeSha256"]).hex(),
    )


def test_a_setuid_layer_is_extracted_without_privilege_and_the_data_dir_is_private(
    server: LaminaServer,
) -> None:
    layer_sha, code_sha = _published_and_extracted(server)
    data = server.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700, "the data directory is only its owner's"
    trees = data / "trees"
    layer_tree, code_tree = trees / layer_sha, trees / code_sha
    assert layer_tree.is_dir() and code_tree.is_dir(), sorted(p.name for p in trees.iterdir())

    # No setuid, setgid or sticky bit anywhere under the data directory, nothing in a tree that
    # group or other may write, everything owned by the server's user (root here).
    for path in [data, *data.rglob("*")]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX), (path, oct(st.st_mode))
        if trees in path.parents:
            assert not st.st_mode & 0o022, (path, oct(st.st_mode))
            assert st.st_uid == os.geteuid(), (path, st.st_uid)

    for name, mode in EXPECTED.items():
        assert stat.S_IMODE((layer_tree / name).lstat().st_mode) == mode, name
    assert stat.S_IMODE((code_tree / "suid-handler").stat().st_mode) == 0o755
    assert (layer_tree / "bin" / "suid").read_bytes() == SCRIPT  # the content is untouched

    # The zips themselves: 0600 in 0700 directories.
    blobs = data / "blobs"
    for sha in (layer_sha, code_sha):
        blob = blobs / sha[:2] / sha
        assert stat.S_IMODE(blob.stat().st_mode) == 0o600
        assert stat.S_IMODE(blob.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(blobs.stat().st_mode) == 0o700
    assert stat.S_IMODE((blobs / "tmp").stat().st_mode) == 0o700


def test_a_shared_directory_is_refused_as_the_data_dir(tmp_path: Path) -> None:
    """``--data-dir /tmp`` (sticky, world-writable) is not taken over and made 0700: refused."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    done = subprocess.run(
        [sys.executable, "-m", "lamina.cli.main", "server", "--port", "0", "--data-dir", str(shared)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LAMINA_UPLINK": "none"},
    )
    assert done.returncode == 1, done.stderr
    assert "is shared with other users" in done.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
