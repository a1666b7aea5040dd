"""A do-nothing HTTP server for ``bench/s3.py``'s *boto3 alone* rows: what no S3 server can beat.

``python bench/_sink.py PORT SIZE [CERT KEY]`` serves one connection at a time on 127.0.0.1:PORT
(keep-alive; HTTPS with CERT and KEY): a PUT's body is read and dropped (``100 Continue`` first
when asked; a ``Transfer-Encoding: chunked`` body, as boto3 sends its aws-chunked bodies over
HTTPS, is de-framed and dropped the same way), answered ``200`` with an ETag; a GET is answered
with SIZE bytes from memory. It stores nothing and hashes nothing: the time boto3 takes against it
is boto3's own work plus the loopback transfer (and TLS). Ends on SIGTERM.
"""

from __future__ import annotations

import socket
import ssl
import sys

BLOCK = 1 << 20


class _Conn:
    """One connection's reads, with the bytes read past what was asked for kept for the next read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = bytearray()
        self.sink = bytearray(BLOCK)

    def line(self) -> bytes | None:
        """The next CRLF-terminated line, without its CRLF (None: the peer closed)."""
        while (end := self.pending.find(b"\r\n")) < 0:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.pending += data
        out = bytes(self.pending[:end])
        del self.pending[: end + 2]
        return out

    def drop(self, n: int) -> bool:
        """Read and discard ``n`` bytes (False: the peer closed first)."""
        taken = min(n, len(self.pending))
        del self.pending[:taken]
        n -= taken
        while n > 0:
            got = self.sock.recv_into(self.sink, min(BLOCK, n))
            if not got:
                return False
            n -= got
        return True

    def headers(self) -> tuple[bytes, dict[str, str]] | None:
        """The request line and header fields of the next request."""
        first = self.line()
        if first is None:
            return None
        fields = {}
        while line := self.line():
            name, _, value = line.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        return first, fields

    def drop_chunked(self) -> bool:
        """Read and discard a ``Transfer-Encoding: chunked`` body and its trailer fields."""
        while (size_line := self.line()) is not None:
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                while line := self.line():  # trailer fields up to the empty line
                    pass
                return line is not None
            if not self.drop(size) or self.line() != b"":
                return False
        return False


def _serve(sock: socket.socket, body: memoryview) -> None:
    conn = _Conn(sock)
    while (got := conn.headers()) is not None:
        line, fields = got
        method = line.split(b" ", 1)[0]
        if method == b"PUT":
            if fields.get("expect", "").lower() == "100-continue":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if "chunked" in fields.get("transfer-encoding", "").lower():
                ok = conn.drop_chunked()
            else:
                ok = conn.drop(int(fields.get("content-length", "0")))
            if not ok:
                return
            sock.sendall(b'HTTP/1.1 200 OK\r\nETag: "sink"\r\nContent-Length: 0\r\n\r\n')
        else:
            sock.sendall(
                b'HTTP/1.1 200 OK\r\nETag: "sink"\r\nContent-Type: binary/octet-stream\r\n'
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            sock.sendall(body)


def main() -> int:
    port, size = int(sys.argv[1]), int(sys.argv[2])
    context = None
    if len(sys.argv) == 5:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
    body = memoryview(bytes(size))
    with socket.create_server(("127.0.0.1", port)) as server:
        while True:
            conn, _ = server.accept()
            try:
                if context is not None:
                    conn = context.wrap_socket(conn, server_side=True)
                with conn:
                    _serve(conn, body)
            except (OSError, ssl.SSLError):
                conn.close()  # a client that went away (or a readiness probe): the next one


if __name__ == "__main__":
    sys.exit(main())
