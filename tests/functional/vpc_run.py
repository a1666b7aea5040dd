"""``lamina vpc run`` from tests and benchmarks: a command put into a VPC by the CLI, with pipes.

Every process started here is stopped by its own pid (:meth:`VpcRun.close`).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time

from lamina_server import LaminaServer

# What `VpcRun.probe` waits by default: nothing on a VPC's links is lost or slow (an allowed
# connection completes in well under a millisecond), so a connection still pending after this was
# dropped.
DROPPED_AFTER_S = 0.5


def lamina(*args: str) -> list[str]:
    return [sys.executable, "-m", "lamina.cli.main", *args]


def cli_env() -> dict[str, str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.pop("AWS_PROFILE", None)
    return env


class VpcRun:
    """A ``lamina vpc run`` process with pipes to its command; stopped (and its command with it)
    by :meth:`close`."""

    def __init__(
        self,
        server: LaminaServer,
        subnet: str,
        groups: list[str],
        *command: str,
        ip: str = "",
        data_dir: bool = False,
        options: tuple[str, ...] = (),
    ) -> None:
        """``data_dir``: pass ``--data-dir`` (else lamina vpc run asks the server, on this host);
        ``options``: more of ``lamina vpc run``'s options."""
        args = ["vpc", "run", "--endpoint-url", server.url, "--subnet", subnet, *options]
        if data_dir:
            args += ["--data-dir", str(server.data_dir)]
        for group in groups:
            args += ["--security-group", group]
        if ip:
            args += ["--private-ip", ip]
        self.proc = subprocess.Popen(
            lamina(*args, "--", *command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            env=cli_env(),
        )
        self._out = b""
        self.child_pid = 0
        self.eni_id = ""

    def start(self, timeout: float = 30.0) -> VpcRun:
        """Wait for the command's ``ready <pid>`` line; learn the interface from stderr."""
        words = self.line(timeout).split()
        assert words[:1] == ["ready"], (words, self.stderr())
        self.child_pid = int(words[1])
        return self

    def line(self, timeout: float = 10.0) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise TimeoutError(f"no line from the command within {timeout} s: {self.stderr()}")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise EOFError(f"the command ended: {self.stderr()}")
            self._out += chunk
        line, self._out = self._out.split(b"\n", 1)
        return line.decode()

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())

    def ask(self, text: str, timeout: float = 10.0) -> str:
        """Send ``text`` to the command and return the line it answers."""
        self.send(text)
        return self.line(timeout)

    def probe(self, host: str, port: int, timeout: float = DROPPED_AFTER_S) -> str:
        return self.ask(f"{host} {port} {timeout}\n", timeout + 10)

    def stderr(self) -> str:
        """What lamina vpc run said (only once it has ended: the pipe is read to its end)."""
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read().decode(errors="replace")

    def interface(self) -> str:
        """The interface id, from the first line lamina vpc run writes to stderr."""
        if not self.eni_id:
            assert self.proc.stderr is not None
            first = b""
            while not first.endswith(b"\n") and select.select([self.proc.stderr], [], [], 10)[0]:
                byte = os.read(self.proc.stderr.fileno(), 1)
                if not byte:
                    break
                first += byte
            found = re.search(r"eni-[0-9a-z]+", first.decode())
            assert found, first
            self.eni_id = found.group(0)
        return self.eni_id

    def wait(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # forwarded to the command; the interface is deleted
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                if self.child_pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.child_pid, signal.SIGKILL)  # it outlived lamina vpc run
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
