"""A real PostgreSQL server for the ``backend`` tests: Debian's binaries, a cluster in a temporary
directory, on a loopback port, stopped (by its own pid) when the session ends.

PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` user and its
processes run as it. A test module gets a database of its own (store tests share one, emptied before each).

``netns``: run it inside a named network namespace (``ip netns add NAME``), listening on ``host``
there (the test bed's database host, tests/lamina_testbed.py); this process reaches it from a
short-lived thread that enters that namespace.
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
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest

from lamina.linux.namespaces import CLONE_NEWNET, run_in_thread, setns

T = TypeVar("T")


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

    def __init__(self, *, netns: str | None = None, host: str = "127.0.0.1", port: int | None = None) -> None:
        bindir = binaries()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (make setup installs Debian's postgresql)")
        self.dir = Path(tempfile.mkdtemp(prefix="lamina-pg-"))
        self.netns, self.host = netns, host
        self.port = port or _free_port()
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
            if netns is not None:
                enter_netns(netns)
            if owner is not None:
                os.setgid(owner.pw_gid)
                os.setgroups([])
                os.setuid(owner.pw_uid)

        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "lamina", "--pwfile", str(pwfile),
             "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, preexec_fn=as_owner,
        )  # fmt: skip
        if host != "127.0.0.1":  # clients on the namespace's own networks, with the password
            with open(data / "pg_hba.conf", "a") as hba:
                hba.write("host all lamina samenet scram-sha-256\n")
        self.log = self.dir / "postgres.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(sockets),
                 "-c", f"listen_addresses={host}", "-c", "fsync=off", "-c", "max_connections=400",
                 "-c", "shared_buffers=32MB"],
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=as_owner,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                self.in_netns(lambda: psycopg.connect(self.url("postgres"), connect_timeout=2).close())
                break
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log.read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"PostgreSQL did not start: {log}") from None
                time.sleep(0.1)

    def url(self, database: str) -> str:
        return f"postgresql://lamina:{self.password}@{self.host}:{self.port}/{database}"

    def in_netns(self, fn: Callable[[], T]) -> T:
        """``fn()`` where the server can be reached: here, or on a thread in its namespace."""
        if self.netns is None:
            return fn()
        name = self.netns

        def inside() -> T:
            enter_netns(name)
            return fn()

        return run_in_thread(inside)

    def create(self, name: str | None = None) -> str:
        """A new empty database's URL (``name``: its name, default a random one)."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"

        def create() -> None:
            with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')

        self.in_netns(create)
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


def enter_netns(name: str) -> None:
    """Move the calling thread (or a child between fork and exec) into network namespace ``name``."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)


def backend_params() -> list[object]:
    """The metadata backends a ``backend`` test runs against: SQLite, and PostgreSQL (marked)."""
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.backend)]
