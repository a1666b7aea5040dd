"""The relay behind lamina's public addresses and VPC endpoints (``runtime.public_api``), on the
host's loopback: it terminates TLS with a certificate of lamina's own CA (checked by name and by
address, strictly), relays to a real server, and caps connections per source address."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from lamina_server import LaminaServer

from lamina.domain import endpoints as P
from lamina.linux import NetNamespace
from lamina.runtime import tls
from lamina.runtime.public_api import ApiAccess, Listener, PublicApi

pytestmark = pytest.mark.privileged  # listeners are made by entering a namespace (setns)
LOOPBACK = IPv4Address("127.0.0.1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina-relay") / "data")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tls.TlsFiles:
    names, addresses = P.certificate_names(["us-east-1", "eu-west-1"])
    return tls.ensure(tmp_path_factory.mktemp("tls"), [*names, "localhost"], [*addresses, "127.0.0.1"])


class Loop:
    """An event loop on a thread of its own, as the server's."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class HostNamespace(NetNamespace):
    """The test's own network namespace, for a listener on the host's loopback."""

    @classmethod
    def here(cls) -> HostNamespace:
        return cls(os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC), "host")


@pytest.fixture
def relay(server: LaminaServer, tls_files: tls.TlsFiles) -> Iterator[tuple[PublicApi, int]]:
    loop = Loop()
    api = PublicApi(server.port, tls_files.server_context(), max_per_source=3)
    loop.run(api.start())
    ns = HostNamespace.here()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api.set("public", [Listener.at(ns, LOOPBACK, port)])
    try:
        yield api, port
    finally:
        loop.run(api.close())
        loop.close()
        ns.close()


def _client(ca: Path, host: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.verify_flags |= getattr(ssl, "VERIFY_X509_STRICT", 0)
    return ctx


def _get(port: int, ca: Path, name: str, source: str = "127.0.0.1") -> bytes:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    with _client(ca, name).wrap_socket(raw, server_hostname=name) as s:
        s.sendall(f"GET /_lamina/health HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data


def test_tls_is_terminated_with_lamina_certificate_and_relayed(
    relay: tuple[PublicApi, int], tls_files: tls.TlsFiles
) -> None:
    api, port = relay
    assert api.listening() == [("public", LOOPBACK, port)]
    for name in (
        "lambda.us-east-1.amazonaws.com",
        "sts.eu-west-1.amazonaws.com",
        "x.s3.us-east-1.amazonaws.com",
    ):
        assert _get(port, tls_files.ca, name).startswith(b"HTTP/1.1 200"), name
    # A name the certificate does not cover fails the client's check.
    with pytest.raises(ssl.SSLCertVerificationError):
        _get(port, tls_files.ca, "lambda.us-east-1.example.com")


def test_connections_are_capped_per_source_address(
    relay: tuple[PublicApi, int], tls_files: tls.TlsFiles
) -> None:
    _, port = relay
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        # The fourth from the same source is reset at once; another source is still served.
        # Reset as it connects (on a busy machine) or as it reads.
        with (
            pytest.raises(ConnectionResetError),
            socket.create_connection(("127.0.0.1", port), timeout=5) as extra,
        ):
            extra.recv(1)
        assert _get(port, tls_files.ca, "lambda.us-east-1.amazonaws.com", source="127.0.0.2").startswith(
            b"HTTP/1.1 200"
        )
    finally:
        for s in held:
            s.close()


def test_listeners_follow_set(relay: tuple[PublicApi, int]) -> None:
    api, port = relay
    api.set("public", [])
    assert api.listening() == []
    deadline = time.monotonic() + 5  # the relay closes on the loop, just after
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            break
        except ConnectionResetError:
            pass  # accepted into the backlog of a listener being closed: not gone yet, try again
        assert time.monotonic() < deadline, "still listening"
        time.sleep(0.01)


def test_what_functions_are_told() -> None:
    env = ApiAccess(Path("/x/ca.pem")).env("eu-west-1")
    assert env["AWS_ENDPOINT_URL"] == f"https://{P.PUBLIC_API_ADDRESS}"
    assert env["AWS_ENDPOINT_URL_S3"] == f"https://{P.PUBLIC_S3_ADDRESS}"
    assert env["AWS_CA_BUNDLE"] == "/var/lamina/ca.pem"
    named = ApiAccess(Path("/x/ca.pem"), by_name=True).env("eu-west-1")
    assert named["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] == "https://logs.eu-west-1.amazonaws.com"
    assert named["AWS_ENDPOINT_URL_IAM"] == "https://iam.amazonaws.com"
    plain = ApiAccess(None).env("us-east-1")
    assert (
        plain["AWS_ENDPOINT_URL_STS"] == f"http://{P.PUBLIC_API_ADDRESS}:443" and "AWS_CA_BUNDLE" not in plain
    )
