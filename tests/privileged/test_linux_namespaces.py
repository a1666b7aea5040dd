"""Network namespaces held by an fd: loopback up, sockets that stay inside, nothing on the host;
links configured by ioctl and mounts made in a thread's own mount namespace."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lamina.linux import NetNamespace, NetNamespaceError, links, mounts, namespaces

pytestmark = [pytest.mark.privileged, pytest.mark.serial]


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    ns = NetNamespace.create(f"test-{uuid.uuid4().hex[:8]}")
    yield ns
    ns.close()


def _in_ns(ns: NetNamespace, code: str) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a process that joined ``ns`` through the fd we hold."""
    return subprocess.run(
        ["nsenter", f"--net=/proc/{os.getpid()}/fd/{ns.fd}", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _netns_link() -> str:
    return os.readlink("/proc/thread-self/ns/net")


def test_fresh_namespace_has_only_lo_and_it_is_up(netns: NetNamespace) -> None:
    names = netns.call(socket.if_nameindex)
    assert [name for _, name in names] == ["lo"]
    result = _in_ns(
        netns,
        "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen();"
        " c = socket.create_connection(s.getsockname()); print('ok')",
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_namespace_is_not_registered_on_the_host(netns: NetNamespace) -> None:
    listed = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    assert netns.name not in listed
    ours = os.readlink(f"/proc/self/fd/{netns.fd}")
    assert ours.startswith("net:[") and ours != _netns_link()


def test_listen_tcp_is_reachable_inside_only(netns: NetNamespace) -> None:
    before = _netns_link()
    listener = netns.listen_tcp("127.0.0.1", 0)
    try:
        assert _netns_link() == before  # the caller's thread never moved
        port = listener.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        code = f"import socket; s = socket.create_connection(('127.0.0.1', {port}), timeout=5); print(s.recv(10).decode())"
        client = subprocess.Popen(
            ["nsenter", f"--net=/proc/{os.getpid()}/fd/{netns.fd}", sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            text=True,
        )
        listener.settimeout(10)
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"inside")
        out, _ = client.communicate(timeout=30)
        assert client.returncode == 0
        assert out.strip() == "inside"
    finally:
        listener.close()


def test_same_port_in_two_namespaces_and_the_host(netns: NetNamespace) -> None:
    other = NetNamespace.create("test-other")
    host = socket.socket()
    try:
        host.bind(("127.0.0.1", 0))
        host.listen()
        port = host.getsockname()[1]
        a = netns.listen_tcp("127.0.0.1", port)
        b = other.listen_tcp("127.0.0.1", port)
        with pytest.raises(NetNamespaceError, match="Address already in use"):
            netns.listen_tcp("127.0.0.1", port, backlog=1)
        a.close()
        b.close()
    finally:
        host.close()
        other.close()


def test_call_propagates_exceptions_and_results(netns: NetNamespace) -> None:
    def boom() -> None:
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        netns.call(boom)
    assert netns.call(lambda: 42) == 42
    assert netns.call(_netns_link) == os.readlink(f"/proc/self/fd/{netns.fd}")


def test_close_is_idempotent_and_use_after_close_is_refused() -> None:
    ns = NetNamespace.create("test-close")
    fd = ns.fd
    ns.close()
    ns.close()
    assert ns.closed
    with pytest.raises(OSError):
        os.fstat(fd)
    with pytest.raises(ValueError, match="closed"):
        ns.listen_tcp()
    with pytest.raises(ValueError, match="closed"):
        _ = ns.fd


def test_namespace_inode_of_a_namespace_file(netns: NetNamespace, tmp_path: Path) -> None:
    assert namespaces.namespace_inode(f"/proc/self/fd/{netns.fd}") == os.fstat(netns.fd).st_ino
    assert namespaces.namespace_inode(tmp_path) is None
    assert namespaces.namespace_inode(tmp_path / "missing") is None


def test_links_set_ipv4_in_the_thread_namespace(netns: NetNamespace) -> None:
    def configure_and_read() -> tuple[str, str]:
        links.set_ipv4("lo", IPv4Address("127.0.0.9"), 24)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            out = []
            for request in (0x8915, 0x891B):  # SIOCGIFADDR, SIOCGIFNETMASK
                ifreq = fcntl.ioctl(s, request, struct.pack("16s24x", b"lo"))
                out.append(socket.inet_ntoa(ifreq[20:24]))
        return out[0], out[1]

    host_before = socket.if_nameindex()
    assert netns.call(configure_and_read) == ("127.0.0.9", "255.255.255.0")
    assert socket.if_nameindex() == host_before  # the host's links were not touched


def test_private_mounts_read_only_bind_and_umount(tmp_path: Path) -> None:
    """In a thread's own mount namespace: tmpfs, a bind made read-only, unmounted; the host sees none."""
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    before = Path("/proc/self/mountinfo").read_text()

    def inside() -> tuple[str, int | None]:
        namespaces.unshare(namespaces.CLONE_NEWNS)
        mounts.mount(None, b"/", None, mounts.MS_REC | mounts.MS_PRIVATE, None)
        mounts.mount(b"tmpfs", bytes(source), b"tmpfs", mounts.MS_NOSUID | mounts.MS_NODEV, b"size=1m")
        (source / "file").write_text("hello")
        mounts.mount(bytes(source), bytes(target), None, mounts.MS_BIND, None)
        mounts.make_read_only(bytes(target), recursive=False)
        seen = (target / "file").read_text()
        try:
            (target / "other").write_text("refused")
            refused = None
        except OSError as exc:
            refused = exc.errno
        points = mounts.mount_points_under(tmp_path)
        assert points == [source, target]
        mounts.umount(bytes(target), mounts.MNT_DETACH)
        mounts.umount(bytes(source), mounts.MNT_DETACH)
        return seen, refused

    assert namespaces.run_in_thread(inside) == ("hello", errno.EROFS)
    assert Path("/proc/self/mountinfo").read_text() == before
    assert os.listdir(source) == [] and os.listdir(target) == []
    with pytest.raises(OSError) as exc:
        mounts.umount(bytes(target))
    assert exc.value.errno == errno.EINVAL  # nothing is mounted there on the host
