"""Publishing a 40 MB layer: lamina's PublishLayerVersion vs ``sha256sum`` + ``unzip`` of the same file.

What is measured, per repetition (median reported):

- lamina: read ``layer.zip`` and ``publish_layer_version(Content={"ZipFile": ...})`` through boto3
  against a fresh ``lamina server`` on loopback, until the response is parsed. That is what a user
  waits for: boto3's base64 + SigV4 payload hashing, the upload, and the server's parse, zip checks,
  SHA-256, durable (fsynced) blob write and metadata commit. The client-side share (until the request
  is handed to the socket) is reported separately.
- baseline: ``sha256sum layer.zip`` then ``unzip -q layer.zip -d TMP`` of the same file, i.e. reading,
  hashing and fully inflating/writing it with the standard tools (TMP removed between repetitions,
  outside the timing).

Each repetition rewrites the zip's trailing comment (identical content otherwise), so every publish
stores a new blob instead of hitting the content-addressed store's "already stored" shortcut; the
baseline processes the very same file. Target: publish <= 2x baseline.

Run: ``.venv/bin/python bench/publish.py [--reps N] [--size-mb M] [--seed S] [--profile]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

TARGET_RATIO = 2.0
COMMENT_LEN = 16
LAYER_NAME = "bench-publish"


# -- the layer ------------------------------------------------------------------------------------


def _python_line_pool(rng: random.Random, size: int) -> list[str]:
    """Lines that look like Python source (identifiers, calls, docstrings, comments)."""
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 10))) for _ in range(400)]
    camel = ["".join(w.capitalize() for w in rng.sample(words, 2)) for _ in range(120)]
    templates = [
        "def {w}_{w}(self, {w}, {w}={n}):",
        "    {w} = {w}.{w}({w}, {w}={w})",
        "        return self._{w}({w}, {n})",
        "    if {w} is None or not isinstance({w}, {C}):",
        '        raise {C}Error(f"invalid {w}: {{{w}!r}}")',
        "class {C}({C}):",
        '    """{W} {w} {w} {w} the {w} of {w}, {w} {w}."""',
        "# {W} {w} {w} {w} {w} {w} {w}",
        "from {w}.{w} import {C}, {w}_{w}",
        "import {w}",
        "    for {w} in range({n}):",
        "            {w}[{w}] = {w}.get({w}, {n}) + {n}",
        "    @property",
        "    @staticmethod",
        "        self.{w} = {w}",
        "    {w}: {C} | None = None",
        "        yield from self.{w}_{w}({w}[{n}:])",
        "        {w} += {w} * {n} - {w} // {n}",
        "",
        "",
    ]

    def fill(t: str) -> str:
        out = []
        for part in t.split("{"):
            if not out:
                out.append(part)
                continue
            key, _, rest = part.partition("}")
            if key == "w":
                out.append(rng.choice(words) + rest)
            elif key == "W":
                out.append(rng.choice(words).capitalize() + rest)
            elif key == "C":
                out.append(rng.choice(camel) + rest)
            elif key == "n":
                out.append(str(rng.randint(0, 4096)) + rest)
            else:  # a literal brace in the template
                out.append("{" + part)
        return "".join(out)

    return [fill(rng.choice(templates)) for _ in range(size)]


def build_layer_zip(path: Path, *, size_mb: int, seed: int) -> dict[str, float]:
    """Write a deterministic ~``size_mb`` MiB layer zip: random ``.so``-like blobs and Python-like sources.

    About 55% of the zipped size is incompressible native-library-like blobs, the rest deflated
    Python-like text (compressing ~3x), spread over a few thousand files under ``python/``, as
    a ``pip install -t python/`` of a scientific stack looks.
    """
    rng = random.Random(seed)
    target = size_mb * 1024 * 1024
    pool = _python_line_pool(rng, 40_000)
    date = (2024, 1, 1, 0, 0, 0)
    files = 0
    unzipped = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        blob_budget = int(target * 0.55)
        n = 0
        while blob_budget > 0:
            size = min(blob_budget, rng.randint(256 * 1024, 4 * 1024 * 1024))
            info = zipfile.ZipInfo(f"python/native{n % 7}/_lib{n}.cpython-311-x86_64-linux-gnu.so", date)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100755 << 16
            zf.writestr(info, rng.randbytes(size))
            blob_budget -= size
            unzipped += size
            files += 1
            n += 1
        m = 0
        # Stop a little short so the central directory brings the total to about the target.
        while zf.fp.tell() < target - 400 * 1024:  # type: ignore[union-attr]
            lines = rng.choices(pool, k=max(10, int(rng.lognormvariate(6.0, 1.0))))
            text = "\n".join(lines) + "\n"
            info = zipfile.ZipInfo(f"python/pkg{m % 23}/sub{m % 11}/mod_{m}.py", date)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            zf.writestr(info, text)
            unzipped += len(text)
            files += 1
            m += 1
        zf.comment = b"0" * COMMENT_LEN
    return {"files": files, "unzipped_mb": unzipped / 2**20, "zipped_mb": path.stat().st_size / 2**20}


def set_comment(path: Path, rep: int) -> None:
    """Rewrite the zip's (fixed-length, trailing) comment: same content, new SHA-256."""
    with open(path, "r+b") as f:
        f.seek(-COMMENT_LEN, 2)
        f.write(f"{rep:0{COMMENT_LEN}d}".encode())


# -- the two sides --------------------------------------------------------------------------------


def run_baseline(zip_path: Path, scratch: Path) -> float:
    dest = scratch / "unzipped"
    t0 = time.perf_counter()
    subprocess.run(["sha256sum", str(zip_path)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["unzip", "-q", str(zip_path), "-d", str(dest)], check=True)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(dest)
    return elapsed


class Publisher:
    """publish_layer_version timed end to end, with the instant boto3 hands the request to the socket."""

    def __init__(self, server: C.LaminaServer) -> None:
        self.client = C.boto_client(server.url, read_timeout=600, connect_timeout=10)
        self._sent = 0.0
        self.client.meta.events.register("before-send.lambda.PublishLayerVersion", self._mark_sent)

    def _mark_sent(self, **_: object) -> None:
        self._sent = time.perf_counter()

    def publish(self, zip_path: Path) -> tuple[float, float, dict[str, object]]:
        """(total seconds, client-side seconds before sending, response)."""
        t0 = time.perf_counter()
        data = zip_path.read_bytes()
        out = self.client.publish_layer_version(
            LayerName=LAYER_NAME,
            Content={"ZipFile": data},
            CompatibleRuntimes=["python3.11"],
            Description="lamina publish benchmark",
        )
        elapsed = time.perf_counter() - t0
        expected = base64.b64encode(hashlib.sha256(data).digest()).decode()
        if out["Content"]["CodeSha256"] != expected or out["Content"]["CodeSize"] != len(data):
            raise RuntimeError(f"publish returned unexpected content metadata: {out['Content']}")
        return elapsed, self._sent - t0, out


def server_peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# -- main -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each side (default 5)")
    parser.add_argument("--size-mb", type=int, default=40, help="zipped layer size in MiB (default 40)")
    parser.add_argument("--seed", type=int, default=20240101, help="seed of the generated layer")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the server with py-spy during the publishes (bench venv) and summarise",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.reps <= 50:
        parser.error("--reps must be 1..50")
    for tool in ("sha256sum", "unzip"):
        if shutil.which(tool) is None:
            print(
                f"the publish benchmark's baseline needs `{tool}` on PATH (apt-get install unzip)",
                file=sys.stderr,
            )
            return 2

    print(f"== publish: {args.size_mb} MiB layer zip, {args.reps} repetitions ==", flush=True)
    with C.workdir("publish") as scratch:
        zip_path = scratch / "layer.zip"
        t0 = time.perf_counter()
        info = build_layer_zip(zip_path, size_mb=args.size_mb, seed=args.seed)
        print(
            f"layer.zip: {info['zipped_mb']:.1f} MiB zipped, {info['unzipped_mb']:.1f} MiB unzipped, "
            f"{info['files']:.0f} files (built in {time.perf_counter() - t0:.1f}s, seed {args.seed})",
            flush=True,
        )

        server = C.LaminaServer(scratch / "data")
        try:
            publisher = Publisher(server)
            # Warm-up: one small publish (lazy imports, SQLite, the connection).
            publisher.client.publish_layer_version(
                LayerName=LAYER_NAME + "-warmup", Content={"ZipFile": C.small_layer_zip()}
            )
            baseline: list[float] = []
            lamina: list[float] = []
            client_side: list[float] = []
            profiler = (
                C.Profiler(server.proc.pid, C.OUT / "publish-server.pyspy.txt") if args.profile else None
            )
            if profiler is not None:
                profiler.__enter__()
            try:
                for rep in range(args.reps):
                    set_comment(zip_path, rep)
                    # Start each side with no dirty pages left by the other (untimed).
                    os.sync()
                    baseline.append(run_baseline(zip_path, scratch))
                    os.sync()
                    total, before_send, _ = publisher.publish(zip_path)
                    lamina.append(total)
                    client_side.append(before_send)
                    print(
                        f"  rep {rep + 1}: baseline {baseline[-1] * 1000:7.0f} ms"
                        f"   publish {total * 1000:7.0f} ms (client-side {before_send * 1000:.0f} ms)",
                        flush=True,
                    )
            finally:
                if profiler is not None:
                    profiler.__exit__(None, None, None)
            rss = server_peak_rss_mb(server.proc.pid)
        finally:
            rc = server.stop()
            if rc not in (0, -15):
                print(f"warning: lamina server exited with {rc}:\n{server.log()}", file=sys.stderr)

    b = statistics.median(baseline)
    p = statistics.median(lamina)
    c = statistics.median(client_side)
    ratio = p / b
    print()
    print(f"{'':34}{'median':>10}{'min':>10}{'max':>10}")
    print(
        f"{'baseline sha256sum + unzip -q':34}{b * 1000:>8.0f}ms{min(baseline) * 1000:>8.0f}ms"
        f"{max(baseline) * 1000:>8.0f}ms"
    )
    print(
        f"{'lamina publish_layer_version':34}{p * 1000:>8.0f}ms{min(lamina) * 1000:>8.0f}ms"
        f"{max(lamina) * 1000:>8.0f}ms"
    )
    print(f"{'  of which boto3 before sending':34}{c * 1000:>8.0f}ms")
    print(f"{'  of which upload + server':34}{(p - c) * 1000:>8.0f}ms")
    print(
        f"publish / baseline = {ratio:.2f}x"
        f"   (target <= {TARGET_RATIO:.0f}x: {C.verdict(ratio <= TARGET_RATIO)})"
    )
    if rss is not None:
        print(f"lamina server peak RSS during the run: {rss:.0f} MiB")
    if profiler is not None:
        print(f"\nserver profile (py-spy, {profiler.out}):")
        print(profiler.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
