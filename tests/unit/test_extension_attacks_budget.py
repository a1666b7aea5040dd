"""The request-body budget of one environment: many connections posting the largest body for the
invocation in flight at once make the server hold at most MAX_HELD_BODY_BYTES of bodies; the rest
is read, dropped and answered 413, and every counted byte is given back."""

from __future__ import annotations

import asyncio
import json
import sys
import tracemalloc

from test_runtime_api import PREFIX, Client, Connect, deliver, invocation, request_bytes, run

from lamina.runtime.runtime_api import MAX_HELD_BODY_BYTES, MAX_RESPONSE_BYTES, RuntimeApi

ATTACKERS = 12

# Run in another process so that tracemalloc here sees only the server's allocations: each
# connection sends all of its body but the last byte, then all send their last byte, then each
# reads its answer; prints the statuses.
_ATTACK = r"""
import json, socket, sys
port, path, size, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode()
body = b"x" * (size - 1)
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
for s in socks:
    s.sendall(head)
    s.sendall(body)
for s in socks:
    s.sendall(b"x")
statuses = []
for s in socks:
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    statuses.append(int(data.split(b" ", 2)[1]))
    s.close()
print(json.dumps(statuses))
"""


async def _attack(port: int, path: str, size: int, count: int) -> list[int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _ATTACK, str(port), path, str(size), str(count), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    statuses: list[int] = json.loads(out)
    return statuses


def _port(client: Client) -> int:
    """The server's port (where ``client`` is connected)."""
    port: int = client.writer.get_extra_info("peername")[1]
    return port


def test_many_connections_posting_the_largest_response_at_once_hold_at_most_the_budget() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        runtime = await connect()
        future, _ = await deliver(api, runtime, invocation("req-1"))
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            statuses = await _attack(
                _port(runtime), f"{PREFIX}/invocation/req-1/response", MAX_RESPONSE_BYTES, ATTACKERS
            )
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        # Bodies kept: at most the budget, plus one body joined from its pieces when it completes
        # (and some slack for the server's own small allocations). Without a budget: ~75 MB.
        assert peak < MAX_HELD_BODY_BYTES + MAX_RESPONSE_BYTES + 2 * 1024 * 1024, peak
        # One request answered the invocation (202, or 413 if its body was over the budget); the
        # others came after it (400 Invalid request ID).
        assert set(statuses) <= {202, 400, 413}
        assert statuses.count(202) + statuses.count(413) == 1
        # The invocation got one answer: an attacker's body or the oversized-response error.
        result = await future
        assert (
            result.body == b"x" * MAX_RESPONSE_BYTES or result.error_type == "Function.ResponseSizeTooLarge"
        )
        assert api.held_body_bytes == 0  # every counted byte was given back
        assert (await runtime.request("GET", "/nowhere")).status == 404

    run(scenario)


def test_a_connection_closed_mid_body_gives_its_bytes_back_and_the_runtime_answer_goes_through() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        runtime = await connect()
        future, _ = await deliver(api, runtime, invocation("req-1"))
        attackers = [await connect() for _ in range(3)]
        head = request_bytes("POST", f"{PREFIX}/invocation/req-1/response", b"x" * MAX_RESPONSE_BYTES)
        partial = head[:-1]  # all but the last byte: the server holds the body
        for attacker in attackers:
            await attacker.send(partial)
        while api.held_body_bytes < MAX_HELD_BODY_BYTES - MAX_RESPONSE_BYTES:
            await asyncio.sleep(0.05)
        assert api.held_body_bytes <= MAX_HELD_BODY_BYTES
        for attacker in attackers:
            attacker.writer.transport.abort()
        while api.held_body_bytes:
            await asyncio.sleep(0.05)
        # Nothing held now: the runtime's own largest response is kept and delivered.
        big = b"y" * MAX_RESPONSE_BYTES
        resp = await runtime.request("POST", f"{PREFIX}/invocation/req-1/response", big)
        assert resp.status == 202
        assert (await future).body == big
        assert api.held_body_bytes == 0

    run(scenario)


def test_a_body_over_the_budget_is_answered_413_and_the_invocation_gets_response_size_too_large() -> None:
    async def scenario(api: RuntimeApi, connect: Connect) -> None:
        runtime = await connect()
        future, _ = await deliver(api, runtime, invocation("req-1"))
        holder = await connect()
        body = b"x" * MAX_RESPONSE_BYTES
        await holder.send(request_bytes("POST", f"{PREFIX}/invocation/req-1/response", body)[:-1])
        while api.held_body_bytes < MAX_RESPONSE_BYTES - 1:
            await asyncio.sleep(0.05)
        # The runtime's answer does not fit beside what the holder keeps.
        resp = await runtime.request("POST", f"{PREFIX}/invocation/req-1/response", body[: 2 * 1024 * 1024])
        assert (resp.status, resp.json()) == (
            413,
            {
                "errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                "errorType": "RequestEntityTooLarge",
            },
        )
        result = await future
        assert result.error_type == "Function.ResponseSizeTooLarge"
        assert api.held_body_bytes == MAX_RESPONSE_BYTES - 1  # the holder's, still counted
        # Small requests still get through beside it.
        assert (await runtime.request("GET", "/nowhere")).status == 404

    run(scenario)
