"""S3 through boto3: 100 MB PutObject/GetObject, ListObjectsV2 over 10,000 keys, and the server's
memory during a 2 GB upload; lamina against ``moto_server`` and ``cp`` + ``sync``, same run.

Everything runs twice, over plain HTTP and over HTTPS (``--tls``/``--no-tls``: one of them), each
with its own servers and baselines. Over HTTP boto3 reads the body twice before sending it (the
SHA-256 it signs, the CRC32 header); over HTTPS, as SDK users talk to S3, it streams it aws-chunked
(``STREAMING-UNSIGNED-PAYLOAD-TRAILER``) with a trailing CRC32. For HTTPS, lamina, moto and the sink
serve one certificate the bench makes with ``openssl``; boto3 verifies it.

- **Transfers**: ``put_object(Body=<100 MB file>)`` and ``get_object`` read to its end (1 MiB
  chunks, discarded) through one boto3 S3 client (path style, no retries) per server. Throughput =
  bytes / wall time of the call (the GET until the last byte is read). Before each repetition the
  file's last 8 bytes are rewritten, so lamina's content-addressed store never takes its "already
  stored" shortcut. Baselines: moto's server doing the same calls, and ``cp FILE DEST && sync
  DEST`` on the disk of lamina's data directory (copy and fsync: what "durable at disk speed"
  costs). Repetitions alternate the sides; medians are compared.
- **Listing**: 10,000 keys (``--keys``) put into a bucket on each server (in parallel, untimed),
  then ``--rounds`` whole listings (ListObjectsV2 pages of 1000 keys, following the continuation
  token) per server in alternating blocks. Figures: p50/p90 of one page call, its wire part
  (boto3's ``before-send`` to ``before-parse``) and a *boto3 alone* row (the first page answered
  from a canned copy of lamina's answer: what parsing 1000 keys costs boto3 without any server).
- **Memory**: a fresh lamina server; a 2 GB (``--big-mb``) sparse file uploaded with one
  ``put_object`` and then with ``upload_file`` (multipart, boto3's default 8 MiB parts over 10
  threads, as ``aws s3 cp``). The server's RSS is sampled from ``/proc/<pid>/status`` every 10 ms
  and its ``VmHWM`` read after each upload (reset first through ``/proc/<pid>/clear_refs``).

Targets (issue 16): PUT and GET >= 3x moto's throughput and >= 0.5x ``cp`` + ``sync``'s;
ListObjectsV2 p50 >= 3x moto's (i.e. <= a third of its latency); RSS during the 2 GB upload < 200 MB.

Run: ``.venv/bin/python bench/s3.py [--size-mb N] [--reps N] [--keys N] [--rounds N] [--big-mb N]
[--skip-big] [--tls | --no-tls] [--profile]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

MIB = 1024 * 1024
PATH_STYLE = {"addressing_style": "path"}
BUCKET = "bench-s3"
KEY = "object.bin"
TARGET_VS_MOTO = 3.0
TARGET_VS_DISK = 0.5
TARGET_LIST_VS_MOTO = 3.0
TARGET_RSS_MB = 200.0
LIST_BLOCKS = 4


# -- files ------------------------------------------------------------------------------------------


def make_file(path: Path, size: int, seed: int) -> None:
    """``size`` bytes of seeded, incompressible data (a random MiB, each copy numbered)."""
    block = random.Random(seed).randbytes(MIB)
    with path.open("wb") as f:
        written = 0
        i = 0
        while written < size:
            chunk = (i.to_bytes(8, "big") + block[8:])[: size - written]
            f.write(chunk)
            written += len(chunk)
            i += 1


def restamp(path: Path, stamp: int) -> str:
    """Rewrite the file's last 8 bytes with ``stamp``; its MD5 (the ETag to expect)."""
    with path.open("r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(stamp.to_bytes(8, "big"))
    md5 = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            md5.update(chunk)
    return md5.hexdigest()


def cp_sync(src: Path, dest: Path) -> float:
    """Seconds for ``cp SRC DEST && sync DEST`` (the copy's bytes durable); DEST removed after."""
    t0 = time.perf_counter()
    subprocess.run(["cp", str(src), str(dest)], check=True)
    subprocess.run(["sync", str(dest)], check=True)
    elapsed = time.perf_counter() - t0
    dest.unlink()
    return elapsed


# -- transfers --------------------------------------------------------------------------------------


class Transfers:
    """One server's S3 client with its timed PUT and GET of the benchmark file (``sink``: the
    do-nothing server, whose ETag is not the body's)."""

    def __init__(self, url: str, *, sink: bool = False, ca: Path | None = None) -> None:
        self.client = C.boto_client(url, "s3", ca=ca, s3=PATH_STYLE)
        self.sink = sink
        if not sink:
            self.client.create_bucket(Bucket=BUCKET)
        self.put_s: list[float] = []
        self.put_prep_s: list[float] = []  # boto3's own share: hashing the body before sending it
        self.get_s: list[float] = []
        self._sent = 0.0
        self.client.meta.events.register_first("before-send.s3.PutObject", self._mark)

    def _mark(self, **_: object) -> None:
        self._sent = time.perf_counter()

    def put(self, path: Path, etag: str) -> None:
        with path.open("rb") as f:
            t0 = time.perf_counter()
            r = self.client.put_object(Bucket=BUCKET, Key=KEY, Body=f)
            elapsed = time.perf_counter() - t0
        if r["ETag"] != ('"sink"' if self.sink else f'"{etag}"'):
            raise RuntimeError(f"PutObject answered ETag {r['ETag']}, expected {etag}")
        self.put_s.append(elapsed)
        self.put_prep_s.append(self._sent - t0)

    def get(self, size: int, etag: str) -> None:
        t0 = time.perf_counter()
        r = self.client.get_object(Bucket=BUCKET, Key=KEY)
        got = 0
        for chunk in r["Body"].iter_chunks(MIB):
            got += len(chunk)
        elapsed = time.perf_counter() - t0
        if got != size or r["ETag"] != ('"sink"' if self.sink else f'"{etag}"'):
            raise RuntimeError(f"GetObject gave {got} bytes, ETag {r['ETag']}; expected {size}, {etag}")
        self.get_s.append(elapsed)


class Sink:
    """``bench/_sink.py`` (stores nothing, hashes nothing) on a free loopback port, stopped by pid;
    ``tls``: (certificate, key) to serve HTTPS with (:attr:`ca`: what clients verify it with)."""

    def __init__(self, size: int, *, tls: tuple[Path, Path] | None = None) -> None:
        self.port = C.free_port()
        self.ca = tls[0] if tls is not None else None
        tls_args = [str(tls[0]), str(tls[1])] if tls is not None else []
        self.proc = subprocess.Popen(
            [sys.executable, str(C.BENCH / "_sink.py"), str(self.port), str(size), *tls_args]
        )
        deadline = time.monotonic() + 20
        while not C.port_is_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sink server did not start")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"{'https' if self.ca is not None else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        C.stop_process(self.proc)


def md5_seconds(path: Path) -> float:
    """Seconds to MD5 the file (from the page cache): the least an S3 server spends on a PUT, whose
    ETag is the body's MD5."""
    t0 = time.perf_counter()
    md5 = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            md5.update(chunk)
    return time.perf_counter() - t0


def mbps(size: int, seconds: float) -> float:
    return size / MIB / seconds


# -- listing -----------------------------------------------------------------------------------------


def list_keys(n: int) -> list[str]:
    """``n`` keys spread over 50 'directories', as a build's artefacts or a log bucket."""
    return [f"logs/{i % 50:02d}/part-{i:06d}.json" for i in range(n)]


def fill_bucket(url: str, ca: Path | None, bucket: str, keys: list[str]) -> None:
    """Put a small object under every key (8 connections in parallel, untimed)."""
    s3 = C.boto_client(url, "s3", ca=ca, s3=PATH_STYLE, max_pool_connections=8)
    s3.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(8) as pool:
        for _ in pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"{}"), keys):
            pass


def whole_listing(tc: C.TimedClient, bucket: str, n: int, into: C.Series | None) -> None:
    """ListObjectsV2 page after page to the end, each call timed; the keys counted."""
    seen = 0
    kwargs: dict[str, Any] = {"Bucket": bucket}
    while True:
        out = tc.timed(lambda c: c.list_objects_v2(**kwargs), into)
        seen += out["KeyCount"]
        if not out["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = out["NextContinuationToken"]
    if seen != n:
        raise RuntimeError(f"listed {seen} keys, expected {n}")


# -- memory ------------------------------------------------------------------------------------------


class RssSampler:
    """The peak of a process's VmRSS, sampled every 10 ms in a thread, and its VmHWM (reset at start
    through ``/proc/<pid>/clear_refs`` where permitted)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _field(self, name: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._field("VmRSS:"))
            self._stop.wait(0.01)

    def __enter__(self) -> RssSampler:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.hwm_reset = True
        except OSError:
            pass
        self.start_kb = self._field("VmRSS:")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.hwm_kb = self._field("VmHWM:")
        self.peak_kb = max(self.peak_kb, self._field("VmRSS:"))


def big_uploads(
    scratch: Path, size: int, tls: tuple[Path, Path] | None
) -> list[tuple[str, float, RssSampler]]:
    """A fresh server; the sparse file put whole, then uploaded in parts. (name, seconds, sampler)."""
    from boto3.s3.transfer import TransferConfig

    path = scratch / "big.bin"
    with path.open("wb") as f:
        f.truncate(size)
    server = C.LaminaServer(scratch / "big-data", tls=tls)
    results = []
    try:
        s3 = C.boto_client(server.url, "s3", ca=server.ca, s3=PATH_STYLE, max_pool_connections=10)
        s3.create_bucket(Bucket=BUCKET)
        uploads: list[tuple[str, Callable[[], None]]] = [
            ("PutObject", lambda: _put_file(s3, path)),
            (
                "upload_file (multipart)",
                lambda: s3.upload_file(str(path), BUCKET, "big-mpu.bin", Config=TransferConfig()),
            ),
        ]
        for name, upload in uploads:
            with RssSampler(server.proc.pid) as sampler:
                t0 = time.perf_counter()
                upload()
                elapsed = time.perf_counter() - t0
            results.append((name, elapsed, sampler))
        for key in (KEY, "big-mpu.bin"):
            if s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] != size:
                raise RuntimeError(f"{key}: the stored object is not {size} bytes")
    finally:
        server.stop()
        path.unlink()
        shutil.rmtree(scratch / "big-data", ignore_errors=True)  # the next mode's test starts afresh
    return results


def _put_file(s3: Any, path: Path) -> None:
    with path.open("rb") as f:
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=f)


# -- main --------------------------------------------------------------------------------------------


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, made with ``openssl``: the
    one certificate every HTTPS server of the run serves and boto3 verifies."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class Run:
    """One mode's figures (HTTP or HTTPS): every server and baseline of it measured in the same run."""

    scheme: str
    sides: dict[str, Transfers] = field(default_factory=dict)
    disk: list[float] = field(default_factory=list)  # cp + sync seconds
    md5: list[float] = field(default_factory=list)
    listing: dict[str, C.Series] = field(
        default_factory=lambda: {"lamina": C.Series(), "moto": C.Series(), "boto3": C.Series()}
    )
    big: list[tuple[str, float, RssSampler]] = field(default_factory=list)
    profiler: C.Profiler | None = None


def measure(args: argparse.Namespace, scratch: Path, src: Path, tls: tuple[Path, Path] | None) -> Run:
    """Transfers, listing and (unless ``--skip-big``) the memory test, with lamina, moto and the sink
    all serving HTTPS with ``tls`` (certificate, key), or all plain HTTP (None)."""
    size = args.size_mb * MIB
    run = Run("HTTPS" if tls is not None else "HTTP")
    ca = tls[0] if tls is not None else None
    print(f"-- over {run.scheme}: transfers ...", flush=True)
    data = scratch / f"data-{run.scheme.lower()}"
    lamina = C.LaminaServer(data, tls=tls)
    moto: C.MotoServer | None = None
    sink: Sink | None = None
    try:
        moto = C.MotoServer(scratch, tls=tls)
        sink = Sink(size, tls=tls)
        run.sides = {
            "lamina": Transfers(lamina.url, ca=ca),
            "moto": Transfers(moto.url, ca=ca),
            "boto3": Transfers(sink.url, sink=True, ca=ca),
        }
        # Warm up each (connections, TLS sessions, first-call imports) on a small object, untimed.
        for t in run.sides.values():
            t.client.put_object(Bucket=BUCKET, Key="warm", Body=b"x" * MIB)
            t.client.get_object(Bucket=BUCKET, Key="warm")["Body"].read()
        if args.profile:
            out = C.OUT / f"s3-transfers-server{'-tls' if tls is not None else ''}.pyspy.txt"
            run.profiler = C.Profiler(lamina.proc.pid, out).__enter__()
        for rep in range(args.reps):
            etag = restamp(src, rep + 1)
            run.disk.append(cp_sync(src, data / "cp-baseline.bin"))
            run.md5.append(md5_seconds(src))
            order = list(run.sides.values()) if rep % 2 == 0 else list(reversed(run.sides.values()))
            for t in order:
                t.put(src, etag)
            for t in order:
                t.get(size, etag)
        if run.profiler is not None:
            run.profiler.__exit__(None, None, None)
        print(
            f"-- over {run.scheme}: transfers done; filling {args.keys} keys on each server ...", flush=True
        )

        keys = list_keys(args.keys)
        for url in (lamina.url, moto.url):
            fill_bucket(url, ca, "bench-list", keys)
        tcs = {
            "lamina": C.TimedClient(lamina.url, "s3", ca=ca, s3=PATH_STYLE),
            "moto": C.TimedClient(moto.url, "s3", ca=ca, s3=PATH_STYLE),
        }
        canned = C.record(
            C.boto_client(lamina.url, "s3", ca=ca, s3=PATH_STYLE),
            "s3",
            {"ListObjectsV2": lambda c: c.list_objects_v2(Bucket="bench-list")},
        )
        boto_alone = C.TimedClient(lamina.url, "s3", canned=canned, ca=ca, s3=PATH_STYLE)
        for tc in tcs.values():
            whole_listing(tc, "bench-list", args.keys, None)  # warm-up
        pages = -(-args.keys // 1000)
        per_block = args.rounds // LIST_BLOCKS
        for block in range(LIST_BLOCKS):
            n = per_block if block < LIST_BLOCKS - 1 else args.rounds - per_block * (LIST_BLOCKS - 1)
            for side, tc in tcs.items():
                for _ in range(n):
                    whole_listing(tc, "bench-list", args.keys, run.listing[side])
            for _ in range(n * pages):  # as many calls, in the same blocks
                boto_alone.timed(lambda c: c.list_objects_v2(Bucket="bench-list"), run.listing["boto3"])
    finally:
        if run.profiler is not None and run.profiler.proc is not None and run.profiler.proc.poll() is None:
            run.profiler.__exit__(None, None, None)
        if moto is not None:
            moto.stop()
        if sink is not None:
            sink.stop()
        lamina.stop()
        shutil.rmtree(data, ignore_errors=True)
    if not args.skip_big:
        print(f"-- over {run.scheme}: the {args.big_mb} MiB memory test ...", flush=True)
        run.big = big_uploads(scratch, args.big_mb * MIB, tls)
    return run


def report(run: Run, args: argparse.Namespace) -> list[str]:
    """Print one mode's tables; its verdict lines."""
    size = args.size_mb * MIB
    la, mo, b3t = run.sides["lamina"], run.sides["moto"], run.sides["boto3"]
    disk_mbps = mbps(size, statistics.median(run.disk))
    md5 = statistics.median(run.md5)
    # The fastest PUT an S3 server could answer with this client: no sooner than against the sink,
    # and not before it has the MD5 of the body (the ETag), whose bytes come after boto3's own share.
    floor_put = mbps(size, max(statistics.median(b3t.put_s), statistics.median(b3t.put_prep_s) + md5))
    print(f"\n== over {run.scheme} ==")
    header = (
        f"{'transfer':<10}| {'lamina':>10} | {'moto':>10} | {'cp + sync':>10} | {'boto3 alone':>11} "
        f"| {'vs moto':>7} | {'vs disk':>7} | {'vs boto3 alone':>14}"
    )
    print(header)
    print("-" * len(header))
    verdicts = []
    for name, la_s, mo_s, b3_s in (
        ("PutObject", la.put_s, mo.put_s, b3t.put_s),
        ("GetObject", la.get_s, mo.get_s, b3t.get_s),
    ):
        la_t, mo_t = mbps(size, statistics.median(la_s)), mbps(size, statistics.median(mo_s))
        b3_t = mbps(size, statistics.median(b3_s))
        print(
            f"{name:<10}| {la_t:>5.0f} MB/s | {mo_t:>5.0f} MB/s | {disk_mbps:>5.0f} MB/s | {b3_t:>6.0f} MB/s "
            f"| {la_t / mo_t:>6.2f}x | {la_t / disk_mbps:>6.2f}x | {la_t / b3_t:>13.2f}x"
        )
        verdicts.append(
            f"{run.scheme} {name}: {la_t / mo_t:.2f}x moto (target >= {TARGET_VS_MOTO:.0f}x: "
            f"{C.verdict(la_t / mo_t >= TARGET_VS_MOTO)}), {la_t / disk_mbps:.2f}x cp + sync (target >= "
            f"{TARGET_VS_DISK}x: {C.verdict(la_t / disk_mbps >= TARGET_VS_DISK)}); this client allows at most "
            f"{(floor_put if name == 'PutObject' else b3_t) / mo_t:.2f}x moto"
        )
    prep = (
        "(SHA-256 and CRC32 of the body, read twice)"
        if run.scheme == "HTTP"
        else "(none to speak of: the body goes aws-chunked, its CRC32 computed as it is sent and sent in the trailer)"
    )
    print(
        f"(MiB/s, medians of {args.reps}; {args.size_mb} MiB per call. boto3 alone: the same calls against a"
        " server that stores and hashes nothing (bench/_sink.py). boto3's own share of a PUT before the first"
        f" byte is sent {prep}: {statistics.median(la.put_prep_s):.2f} s (lamina),"
        f" {statistics.median(mo.put_prep_s):.2f} s (moto). MD5 of the body here: {md5:.2f} s;"
        f" the best PUT any server could do here (boto3 alone, and no sooner than boto3's share + that MD5):"
        f" {floor_put:.0f} MB/s = {floor_put / mbps(size, statistics.median(mo.put_s)):.2f}x moto."
        " moto keeps bodies in memory.)"
    )
    print()
    lo, mt, b3 = run.listing["lamina"], run.listing["moto"], run.listing["boto3"]
    header = f"{'ListObjectsV2 page':<19}| {'p50':>8} {'p90':>8} {'wire p50':>9} | {'whole listing':>13}"
    print(header)
    print("-" * len(header))
    pages = -(-args.keys // 1000)
    for name, s in (("lamina", lo), ("moto", mt), ("boto3 alone", b3)):
        whole = (
            f"{C.ms(s.p(50)) * pages:>10.0f} ms"
            if name == "boto3 alone"
            else f"{C.ms(s.elapsed / args.rounds):>10.0f} ms"
        )
        print(
            f"{name:<19}| {C.ms(s.p(50)):>6.1f}ms {C.ms(s.p(90)):>6.1f}ms {C.ms(s.wire_p(50)):>7.1f}ms | {whole}"
        )
    ratio = mt.p(50) / lo.p(50)
    wire_ratio = mt.wire_p(50) / lo.wire_p(50)
    print(
        f"(one call = one page of up to 1000 keys; {args.rounds} whole listings of {args.keys} keys per server;"
        " wire = HTTP exchange incl. server, without boto3's serialising, signing and parsing; the boto3"
        " alone whole-listing figure is its p50 x pages)"
    )
    verdicts.append(
        f"{run.scheme} ListObjectsV2: p50 {C.ms(lo.p(50)):.1f} ms vs moto {C.ms(mt.p(50)):.1f} ms = {ratio:.2f}x"
        f" faster (target >= {TARGET_LIST_VS_MOTO:.0f}x: {C.verdict(ratio >= TARGET_LIST_VS_MOTO)}); on the"
        f" wire {wire_ratio:.2f}x; boto3's parsing alone allows at most {mt.p(50) / b3.p(50):.2f}x"
    )
    if run.big:
        print()
        for name, elapsed, sampler in run.big:
            peak = max(sampler.peak_kb, sampler.hwm_kb if sampler.hwm_reset else 0) / 1024
            print(
                f"{args.big_mb} MiB {name}: {elapsed:.1f} s ({args.big_mb / elapsed:.0f} MiB/s); server RSS "
                f"{sampler.start_kb / 1024:.0f} MiB before, peak {peak:.0f} MiB "
                f"(sampled {sampler.peak_kb / 1024:.0f}, VmHWM {'after reset ' if sampler.hwm_reset else ''}"
                f"{sampler.hwm_kb / 1024:.0f})"
            )
            verdicts.append(
                f"{run.scheme} server RSS during the {args.big_mb} MiB {name}: peak {peak:.0f} MiB "
                f"(target < {TARGET_RSS_MB:.0f} MiB: {C.verdict(peak < TARGET_RSS_MB)})"
            )
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100, help="object size for PUT/GET in MiB (100)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each transfer (5)")
    parser.add_argument("--keys", type=int, default=10_000, help="keys in the listed bucket (10000)")
    parser.add_argument("--rounds", type=int, default=12, help="whole listings per server (12)")
    parser.add_argument("--big-mb", type=int, default=2048, help="size of the memory test's upload (2048)")
    parser.add_argument("--skip-big", action="store_true", help="leave the 2 GB memory test out")
    parser.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="HTTPS only (--tls) or plain HTTP only (--no-tls); default: both, HTTP first",
    )
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--profile", action="store_true", help="sample the lamina server with py-spy during its transfers"
    )
    args = parser.parse_args(argv)
    if not (
        1 <= args.size_mb <= 1024
        and 1 <= args.reps <= 50
        and 1 <= args.keys <= 50_000
        and LIST_BLOCKS <= args.rounds <= 200
        and 1 <= args.big_mb <= 5 * 1024
    ):
        parser.error("--size-mb 1..1024, --reps 1..50, --keys 1..50000, --rounds 4..200, --big-mb 1..5120")

    modes = [False, True] if args.tls is None else [args.tls]
    print(
        f"== S3 through boto3 over {' and '.join('HTTPS' if m else 'HTTP' for m in modes)}: {args.size_mb} MiB"
        f" PUT/GET x{args.reps}, ListObjectsV2 over {args.keys} keys x{args.rounds}, server RSS during a"
        f" {args.big_mb} MiB upload ==",
        flush=True,
    )
    C.bench_venv_bin("moto_server")  # set the bench venv up before any server starts
    with C.workdir("s3") as scratch:
        src = scratch / "object.bin"
        make_file(src, args.size_mb * MIB, args.seed)
        cert = make_certificate(scratch) if True in modes else None
        runs = [measure(args, scratch, src, cert if tls else None) for tls in modes]

    verdicts = [line for run in runs for line in report(run, args)]
    print()
    for line in verdicts:
        print(line)
    for run in runs:
        if run.profiler is not None:
            print(
                f"\nlamina server profile during the {run.scheme} transfers (py-spy, {run.profiler.out};"
                " it was sampling on these 2 cores: the figures above are perturbed):"
            )
            print(run.profiler.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
