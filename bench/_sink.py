"""A do-nothing HTTP server for ``bench/s3.py``'s *boto3 alone* rows: what no S3 server can beat.

``python bench/_sink.py PORT SIZE`` serves one connection at a time on 127.0.0.1:PORT (keep-alive):
a PUT's body is read and dropped (``100 Continue`` first when asked), answered ``200`` with an
ETag; a GET is answered with SIZE bytes from memory. It stores nothing and hashes nothing: the
time boto3 takes against it is boto3's own work plus the loopback transfer. Ends on SIGTERM.
"""

from __future__ import annotations

import socket
import sys

BLOCK = 1 << 20


def _headers(conn: socket.socket, pending: bytearray) -> tuple[bytes, dict[str, str]] | None:
    """The request line and headers of the next request (``pending``: bytes read past them)."""
    while b"\r\n\r\n" not in pending:
        data = conn.recv(65536)
        if not data:
            return None
        pending += data
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    pending[:] = rest
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return lines[0].encode(), fields


def _serve(conn: socket.socket, body: memoryview) -> None:
    pending = bytearray()
    sink = bytearray(BLOCK)
    while (got := _headers(conn, pending)) is not None:
        line, fields = got
        method = line.split(b" ", 1)[0]
        if method == b"PUT":
            if fields.get("expect", "").lower() == "100-continue":
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            left = int(fields.get("content-length", "0")) - len(pending)
            pending.clear()
            while left > 0:
                n = conn.recv_into(sink, min(BLOCK, left))
                if not n:
                    return
                left -= n
            conn.sendall(b'HTTP/1.1 200 OK\r\nETag: "sink"\r\nContent-Length: 0\r\n\r\n')
        else:
            conn.sendall(
                b'HTTP/1.1 200 OK\r\nETag: "sink"\r\nContent-Type: binary/octet-stream\r\n'
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            conn.sendall(body)


def main() -> int:
    port, size = int(sys.argv[1]), int(sys.argv[2])
    body = memoryview(bytes(size))
    with socket.create_server(("127.0.0.1", port)) as server:
        while True:
            conn, _ = server.accept()
            with conn:
                _serve(conn, body)


if __name__ == "__main__":
    sys.exit(main())
