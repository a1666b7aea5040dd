"""A real PostgreSQL server for the ``backend`` tests: Debian's binaries, a cluster in a temporary
directory, on a loopback port, stopped (by its own pid) when the session ends.

PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` user and its
processes run as it. A test module gets a database of its own (store tests share one, emptied before each).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest


def binaries() -> Path | None:
    """The directory of Debian's PostgreSQL server binaries (the newest installed), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """One running PostgreSQL server; ``url(name)`` for its databases."""

    def __init__(self) -> None:
        bindir = binaries()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (make setup installs Debian's postgresql)")
        self.dir = Path(tempfile.mkdtemp(prefix="lamina-pg-"))
        self.port = _free_port()
        self.password = uuid.uuid4().hex
        as_root = os.geteuid() == 0
        owner = pwd.getpwnam("postgres") if as_root else None
        data, sockets = self.dir / "data", self.dir / "run"
        sockets.mkdir()
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password)
        if owner is not None:
            for path in (self.dir, sockets, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)

        def as_owner() -> None:
            if owner is not None:
                os.setgid(owner.pw_gid)
                os.setgroups([])
                os.setuid(owner.pw_uid)

        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "lamina", "--pwfile", str(pwfile),
             "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, preexec_fn=as_owner,
        )  # fmt: skip
        self.log = self.dir / "postgres.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(sockets),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=400",
                 "-c", "shared_buffers=32MB"],
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=as_owner,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"PostgreSQL did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.1)

    def url(self, database: str) -> str:
        return f"postgresql://lamina:{self.password}@127.0.0.1:{self.port}/{database}"

    def create(self) -> str:
        """A new empty database's URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def emptied(self, url: str) -> str:
        """``url`` with every table of lamina's emptied (identities restarted), its schema kept:
        much faster than a new database for each test."""
        with psycopg.connect(url, autocommit=True) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'lamina_schema'"
                )
            ]
            if tables:
                conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        return url

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)


def backend_params() -> list[object]:
    """The metadata backends a ``backend`` test runs against: SQLite, and PostgreSQL (marked)."""
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.backend)]
