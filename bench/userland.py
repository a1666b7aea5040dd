"""Cold start on an image userland against the host userland, in the same run (issue 14).

Two ``lamina server`` processes with the same runtime image installed (the test kit's busybox stand-in
for ``provided.al2023``: no registry is reachable here): one uses it (``--runtime-source auto``),
the baseline does not (``--runtime-source host``). The function is the same on both: a shell
bootstrap that calls busybox's own applets (``busybox wget``...), present on the host and in the image,
so that only the userland differs. Each cold start creates a function and waits for it (untimed),
times its first invoke (a new sandbox on that userland, the bootstrap's first Runtime API round trip),
then deletes it (untimed); the sides alternate in blocks.

**Target**: image p50 <= 1.05x the host's. Root, and Debian's ``busybox-static``.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from typing import Any

import _common as C

sys.path.insert(0, str(C.ROOT / "tests" / "functional"))
from oci_registry import busybox_available, install_busybox_runtime  # noqa: E402

BLOCKS = 8
TARGET = 1.05
BOOTSTRAP = r"""#!/bin/busybox sh
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
while true; do
  busybox wget -S -O /tmp/event "$API/next" 2>/tmp/headers
  ID=$(busybox sed -n 's/^ *[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p' /tmp/headers | busybox tr -d '\r')
  busybox wget -q -O /dev/null --post-data '{}' "$API/$ID/response"
done
"""


def _code() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16
        zf.writestr(info, BOOTSTRAP)
    return buf.getvalue()


def _cold(lam: Any, n: int) -> float:
    return C.cold_start(
        lam, f"userland-{n}", Runtime="provided.al2023", Handler="unused", Code={"ZipFile": _code()}
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--colds", type=int, default=48, help="cold starts per side (default 48)")
    args = parser.parse_args(argv)
    if not busybox_available():
        print("userland: skipped (Debian's busybox-static is not installed)")
        return 0
    with C.workdir("userland") as scratch:
        servers: dict[str, C.LaminaServer] = {}
        try:
            for label, source in (("host (baseline)", "host"), ("image", "auto")):
                data = scratch / source / "data"
                install_busybox_runtime(data, "provided.al2023")
                servers[label] = C.LaminaServer(data, extra_args=("--runtime-source", source))
            clients = {
                label: C.boto_client(s.url, read_timeout=60, connect_timeout=10)
                for label, s in servers.items()
            }
            times: dict[str, list[float]] = {label: [] for label in servers}
            per_block = max(1, args.colds // BLOCKS)
            n = 0
            for block in range(BLOCKS):
                order = list(servers) if block % 2 == 0 else list(reversed(servers))
                for label in order:
                    for _ in range(per_block):
                        n += 1
                        times[label].append(_cold(clients[label], n))
        finally:
            for server in servers.values():
                server.stop()
    base, image = (C.percentile(times[k], 50) * 1000 for k in ("host (baseline)", "image"))
    ratio = image / base
    print("userland: cold start of a provided.al2023 function, p50 / p90 in ms")
    for label, samples in times.items():
        print(
            f"  {label:16s} {C.percentile(samples, 50) * 1000:7.2f} / {C.percentile(samples, 90) * 1000:7.2f}"
        )
    print(f"  image / host: {ratio:.3f}x ({'MET' if ratio <= TARGET else 'MISSED'}: <= {TARGET}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
