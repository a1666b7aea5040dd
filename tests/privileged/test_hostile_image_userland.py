"""A hostile runtime image as a function's userland: a setuid-root shell, symlinks out of the image,
a FIFO, world-writable modes in the layer. What the function sees must give it nothing more than a
function on a clean image: no setuid, a read-only nosuid/nodev userland, links resolved inside."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from lamina_server import LaminaServer, client
from oci_registry import (
    BUSYBOX,
    Entry,
    OciRegistry,
    build_image,
    busybox_available,
    busybox_rootfs_entries,
    directory,
    file,
    image_name_of,
    layer,
    symlink,
)
from testzips import make_zip

from lamina.runtime.images import ImageStore

pytestmark = pytest.mark.privileged

if not busybox_available():
    pytest.skip("needs Debian's busybox-static (make setup installs it)", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"

BOOTSTRAP = r"""#!/bin/sh
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
while true; do
  wget -S -O /tmp/event "$API/next" 2>/tmp/headers
  ID=$(sed -n 's/^ *[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p' /tmp/headers | tr -d '\r')
  MODE=$(stat -c %a /bin/busybox-suid)
  EUID=$(/bin/busybox-suid id -u)
  MOUNTS=$(awk '$5=="/bin" || $5=="/etc" {printf "%s %s;", $5, $6}' /proc/self/mountinfo)
  if cat /etc/host-shadow >/dev/null 2>&1; then SHADOW=read; else SHADOW=refused; fi
  if echo x >/etc/ww/new 2>/dev/null; then WW=written; else WW=refused; fi
  if echo x >/etc/fifo 2>/dev/null; then FIFO=written; else FIFO=refused; fi
  BODY="{\"mode\": \"$MODE\", \"euid\": $EUID, \"uid\": $(id -u), \"mounts\": \"$MOUNTS\", \"shadow\": \"$SHADOW\", \"ww\": \"$WW\", \"fifo\": \"$FIFO\"}"
  wget -q -O /dev/null --post-data "$BODY" "$API/$ID/response"
done
"""


def hostile_entries() -> list[Entry]:
    with open(BUSYBOX, "rb") as f:
        binary = f.read()
    return [
        *busybox_rootfs_entries(),
        file("bin/busybox-suid", binary, 0o4755),  # a setuid-root busybox: "su" for everyone
        symlink("etc/host-shadow", "/proc/1/root/etc/shadow"),  # the host's, if resolved on the host
        directory("etc/ww", 0o777),
        Entry("etc/fifo", "fifo", mode=0o666),
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    data = tmp_path_factory.mktemp("hostile-image") / "data"
    repository, _, tag = image_name_of("provided.al2023")
    with OciRegistry() as reg:
        reg.push(repository, tag, [build_image([layer(hostile_entries())])])
        ImageStore(data / "images").pull("provided.al2023", "x86_64", reg.url)
    srv = LaminaServer(data)
    yield srv
    srv.stop()


def test_a_hostile_image_gives_its_function_nothing_more(server: LaminaServer) -> None:
    lam = client(server, read_timeout=60)
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="unused",
        Code={"ZipFile": make_zip({"bootstrap": BOOTSTRAP}, modes={"bootstrap": 0o100755})},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    body = r["Payload"].read()
    assert "FunctionError" not in r, body
    out = json.loads(body)
    assert out["mode"] == "755"  # the setuid bit was dropped at unpacking
    assert out["euid"] == out["uid"] != 0
    mounts = dict(m.split(" ") for m in out["mounts"].strip(";").split(";"))
    for d in ("/bin", "/etc"):
        assert {"ro", "nosuid", "nodev"} <= set(mounts[d].split(",")), mounts
    assert out["shadow"] == "refused"
    assert out["ww"] == "refused" and out["fifo"] == "refused"
