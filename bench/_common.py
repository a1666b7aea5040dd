"""Shared pieces of lamina's benchmarks: statistics, servers, the bench venv, profiles.

Every process started here is stopped by its own pid; every temporary directory is
removed by the caller's ``with`` block. Only loopback addresses are ever contacted.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BENCH_VENV = BENCH / ".venv-bench"
OUT = BENCH / "out"  # gitignored: profiles land here

sys.path.insert(0, str(ROOT / "tests" / "functional"))
from lamina_server import LaminaServer as _TestServer  # noqa: E402
from lamina_server import client, free_port, stop_process, wait_http_ok  # noqa: E402

#: A benchmark is one client calling as fast as it can: by design over the default rate limit per
#: principal. Its servers keep the limiter on (its cost is part of what is measured) with a bucket no
#: benchmark empties; trees from before the limiter ignore the variable.
BENCH_ENV = {"LAMINA_API_RATE_LIMIT": "1000000/1000000"}


class LaminaServer(_TestServer):
    """The tests' server, with :data:`BENCH_ENV` under the caller's ``env`` (``tls``: (certificate,
    key) to serve HTTPS with; its ``ca`` is what clients verify it with)."""

    def __init__(self, data_dir: Path, *, env: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(data_dir, env={**BENCH_ENV, **(env or {})}, **kw)


__all__ = [
    "LaminaServer",
    "MotoServer",
    "Profiler",
    "Series",
    "TimedClient",
    "bench_venv_bin",
    "client",
    "free_port",
    "ms",
    "percentile",
    "record",
    "small_layer_zip",
    "workdir",
]


# -- statistics ---------------------------------------------------------------------------------


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank-with-interpolation percentile (p in 0..100) of unsorted ``samples``."""
    if not samples:
        raise ValueError("no samples")
    data = sorted(samples)
    k = (len(data) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


# -- scratch space ---------------------------------------------------------------------------------


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A temporary directory on the same filesystem as the server's data (removed at exit)."""
    path = Path(tempfile.mkdtemp(prefix=f"lamina-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def cold_start(lam: Any, name: str, **create: Any) -> float:
    """One cold start: create function ``name`` (``create``: CreateFunction's other parameters) and
    wait for it, untimed; time its first invoke (seconds); delete it, untimed."""
    lam.create_function(FunctionName=name, Role="arn:aws:iam::000000000000:role/lambda-role", **create)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
    started = time.perf_counter()
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    elapsed = time.perf_counter() - started
    body = r["Payload"].read()
    if "FunctionError" in r:
        raise SystemExit(f"the benchmark function failed: {body!r}")
    lam.delete_function(FunctionName=name)
    return elapsed


def small_layer_zip() -> bytes:
    """A small, deterministic python layer (a few modules), as most layers' metadata calls see."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(8):
            info = zipfile.ZipInfo(f"python/benchpkg/mod{i}.py", date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            zf.writestr(info, "".join(f"def f{j}(x):\n    return x + {j}\n" for j in range(200)))
    return buf.getvalue()


# -- the benchmark venv (moto, py-spy: never installed into lamina's own venv) ----------------------


def bench_venv_bin(name: str) -> Path:
    """``bench/.venv-bench/bin/NAME``, creating the venv and installing moto/boto3/py-spy if missing."""
    exe = BENCH_VENV / "bin" / name
    needed = [BENCH_VENV / "bin" / "moto_server", BENCH_VENV / "bin" / "py-spy"]
    if all(p.exists() for p in needed):
        return exe
    python = shutil.which("python3") or sys.executable
    if not (BENCH_VENV / "bin" / "pip").exists():
        print(f"[bench] creating {BENCH_VENV} ...", flush=True)
        subprocess.run([python, "-m", "venv", str(BENCH_VENV)], check=True)
    print("[bench] installing moto[server], boto3, py-spy into the bench venv ...", flush=True)
    subprocess.run(
        [
            str(BENCH_VENV / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "moto[server]",
            "boto3",
            "py-spy",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return exe


# -- moto -----------------------------------------------------------------------------------------


class MotoServer:
    """``moto_server`` from the bench venv on a free loopback port; ``stop()`` ends it by its pid.
    ``tls``: (certificate, key) to serve HTTPS with, the certificate being its own CA (:attr:`ca`)."""

    def __init__(self, scratch: Path, *, tls: tuple[Path, Path] | None = None) -> None:
        self.port = free_port()
        self.ca: Path | None = tls[0] if tls is not None else None
        self.log_path = scratch / f"moto-{self.port}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        exe = bench_venv_bin("moto_server")
        tls_args = ["--ssl-cert", str(tls[0]), "--ssl-key", str(tls[1])] if tls is not None else []
        self.proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(self.port), *tls_args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        context = None if self.ca is None else ssl.create_default_context(cafile=str(self.ca))
        try:
            wait_http_ok(self.proc, f"{self.url}/moto-api/data.json", "moto_server", self.log, 60.0, context)
        except RuntimeError:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"{'https' if self.ca is not None else 'http'}://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


@dataclass(frozen=True)
class _Endpoint:
    """A URL and the certificate to verify it with, in the shape the test kit's ``client`` takes a server."""

    url: str
    ca: Path


def boto_client(url: str, service: str = "lambda", *, ca: Path | None = None, **config: Any) -> Any:
    """The test kit's client of ``service`` on ``url`` (lamina, moto or the sink), over one keep-alive
    connection unless ``max_pool_connections`` says otherwise; ``ca``: the certificate an HTTPS
    ``url`` is verified with (boto3's ``verify=``)."""
    endpoint = url if ca is None else _Endpoint(url, ca)
    return client(endpoint, service, **{"max_pool_connections": 1, **config})


# -- timed boto3 calls ----------------------------------------------------------------------------------


@dataclass
class Series:
    """Timed calls of one kind: client-observed latencies and their wire part, in seconds."""

    samples: list[float] = field(default_factory=list)  # client-observed
    wire: list[float] = field(default_factory=list)  # boto3's before-send -> before-parse
    elapsed: float = 0.0  # spent inside the timed calls

    def p(self, q: float) -> float:
        return percentile(self.samples, q)

    def wire_p(self, q: float) -> float:
        return percentile(self.wire, q) if self.wire else float("nan")

    @property
    def rps(self) -> float:
        return len(self.samples) / self.elapsed


class TimedClient:
    """A boto3 client (one keep-alive connection) whose calls are timed and whose wire exchange is
    marked by events; with ``canned``, each named operation is answered from a recorded response
    (body, content type) instead of the server: the 'boto3 alone' floor no server can go below."""

    def __init__(
        self,
        url: str,
        service: str = "lambda",
        *,
        canned: dict[str, tuple[bytes, str]] | None = None,
        **config: Any,
    ) -> None:
        self.client = boto_client(url, service, **config)
        self._sent = 0.0
        self._received = 0.0
        events = self.client.meta.events
        events.register_first(f"before-send.{service}.*", self._mark_sent)
        events.register_last(f"before-parse.{service}.*", self._mark_received)
        for op, (body, ctype) in (canned or {}).items():
            events.register_last(f"before-send.{service}.{op}", functools.partial(_answer, body, ctype))

    def _mark_sent(self, **_: object) -> None:
        self._sent = time.perf_counter()

    def _mark_received(self, **_: object) -> None:
        self._received = time.perf_counter()

    def timed(self, call: Callable[[Any], Any], into: Series | None) -> Any:
        """Make one call, recording its latency into ``into`` (unless None: a warm-up); its answer."""
        t0 = time.perf_counter()
        out = call(self.client)
        elapsed = time.perf_counter() - t0
        if into is not None:
            into.samples.append(elapsed)
            into.elapsed += elapsed
            if self._received > self._sent > t0:
                into.wire.append(self._received - self._sent)
        return out

    def run(
        self, call: Callable[[Any], Any], check: Callable[[Any], bool], n: int, into: Series | None
    ) -> None:
        """Make ``n`` timed calls, each answer checked."""
        for _ in range(n):
            out = self.timed(call, into)
            if not check(out):
                raise RuntimeError(f"unexpected response: {out}")


def _answer(body: bytes, ctype: str, request: Any, **_: object) -> Any:
    from botocore.awsrequest import AWSResponse

    return AWSResponse(
        request.url, 200, {"content-type": ctype, "content-length": str(len(body))}, _Raw(body)
    )


class _Raw:
    """The minimal urllib3-response surface botocore reads a canned body through."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: object, **__: object) -> Any:
        yield self._body


def record(client: Any, service: str, calls: dict[str, Callable[[Any], Any]]) -> dict[str, tuple[bytes, str]]:
    """Raw bodies and content types of the server's answers to ``calls`` (for 'boto3 alone' clients)."""
    got: dict[str, tuple[bytes, str]] = {}

    def keep(http_response: Any, model: Any, **_: object) -> None:
        got[model.name] = (http_response.content, http_response.headers.get("content-type", ""))

    client.meta.events.register(f"after-call.{service}.*", keep)
    for call in calls.values():
        call(client)
    client.meta.events.unregister(f"after-call.{service}.*", keep)
    return got


def port_is_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# -- profiles -----------------------------------------------------------------------------------------


class Profiler:
    """``py-spy record`` attached to a pid (sampling, native threads included), writing collapsed stacks.

    Use as a context manager around the measured section; ``summary()`` then names where time went.
    """

    def __init__(self, pid: int, out: Path, *, rate: int = 500) -> None:
        self.pid = pid
        self.out = out
        self.rate = rate
        self.proc: subprocess.Popen[bytes] | None = None
        self.error = ""

    def __enter__(self) -> Profiler:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        exe = bench_venv_bin("py-spy")
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [
                str(exe),
                "record",
                "--pid",
                str(self.pid),
                "--format",
                "raw",
                "--rate",
                str(self.rate),
                "--threads",
                "--output",
                str(self.out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._err,
        )
        time.sleep(1.0)  # py-spy attaches asynchronously
        if self.proc.poll() is not None:
            self._err.seek(0)
            self.error = self._err.read().decode(errors="replace")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._err.seek(0)
        self.error = self.error or (
            self._err.read().decode(errors="replace") if not self.out.exists() else ""
        )
        self._err.close()

    def summary(self, top: int = 18) -> str:
        """Self and inclusive sample shares of the busiest functions (idle/waiting frames left out)."""
        if not self.out.exists():
            return f"  (no profile: {self.error.strip() or 'py-spy wrote nothing'})"
        return summarize_collapsed(self.out.read_text(errors="replace"), top)


_IDLE = (
    "select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "wait (threading.py",
    "run_forever",
    "_run_once (asyncio/base_events.py",
    "epoll",
    "poll (selectors.py",
)


# Frames on every stack of a thread (thread start, event loop, executor): left out of the inclusive list.
_PLUMBING = (
    "threading.py",
    "concurrent/futures",
    "runpy",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "asyncio/events.py",
    "<module>",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "lamina/cli/main.py",
)


def summarize_collapsed(text: str, top: int) -> str:
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in text.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        leaf = frames[-1]
        if any(m in leaf for m in _IDLE) or "idle" in leaf:
            continue
        n = int(count_s)
        busy += n
        self_counts[_short(leaf)] += n
        for f in set(map(_short, frames)):
            incl_counts[f] += n
    if not busy:
        return "  (profile holds no busy samples)"
    lines = [f"  busy samples: {busy}", "  self time (leaf frames):"]
    lines += [f"    {100 * n / busy:5.1f}%  {name}" for name, n in self_counts.most_common(top)]
    lines.append("  inclusive time (frame anywhere on the stack):")
    plumbing = [(name, n) for name, n in incl_counts.most_common() if not any(m in name for m in _PLUMBING)]
    lines += [f"    {100 * n / busy:5.1f}%  {name}" for name, n in plumbing[:top]]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``func (path/to/site-packages/pkg/mod.py:123)`` -> ``func (pkg/mod.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({os.path.normpath(path)})" if path else name
