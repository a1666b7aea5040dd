"""This node among the lamina nodes sharing its database (docs/nodes.md).

:class:`Cluster` registers the node, heartbeats every ``interval_s`` (its load, its idle warm
environments by configuration, its Event claims' leases) off the event loop, keeps the view of
the live nodes the heartbeat read, decides where a synchronous invocation runs
(:func:`lamina.domain.nodes.route`, on the loop, from that view: no database read per invoke)
and forwards one to another node over HTTP, signed with the cluster secret from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.client
import logging
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit

from lamina.domain import nodes as N
from lamina.domain.nodes import ClusterView, ForwardedInvoke, ForwardedResult, NodeRecord, NodeState, WarmKey
from lamina.errors import LaminaError, ServiceException, TooManyRequestsException
from lamina.store.iam import IamStore
from lamina.store.nodes import NodeConflict, NodeStore

if TYPE_CHECKING:
    from lamina.runtime.environment import Target
    from lamina.runtime.pool import EnvironmentPool
    from lamina.services.lambda_.invoke import EventQueue

log = logging.getLogger("lamina.nodes")
T = TypeVar("T")

FORWARD_PATH: Final = "/_lamina-node/invoke"
SECRET_SETTING: Final = "cluster-secret"
MAX_NONCES: Final = 200_000
MAX_ANSWER: Final = 16 * 1024 * 1024  # a 6 MB payload and a 4 KB log tail, base64 in JSON


class NodeLost(ServiceException):
    """The node running a forwarded invocation stopped answering (it died or was cut off): the
    invocation's outcome is unknown, as when Lambda loses a worker. Answered exactly as any
    internal failure is (the pipeline's 500 ``ServiceException``, its message)."""


class NotStarted(LaminaError):
    """The forward never reached the other node (nothing ran there): run it here instead."""


class Cluster:
    """This node's membership: registry, heartbeats, the view of the others, routing, forwarding."""

    def __init__(
        self,
        store: NodeStore,
        pool: EnvironmentPool,
        events: EventQueue,
        *,
        name: str,
        url: str,
        secret: bytes,
        interval_s: float,
        max_environments: int,
        iam: IamStore | None = None,
        followers: Sequence[Callable[[], Callable[[], None]]] = (),
        executor: Executor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``iam``: its authorization caches are dropped when another node changed IAM;
        ``followers``: at each heartbeat while other nodes are live, each is called off the loop
        (it reads what other nodes may have changed) and what it returns on the loop (it applies
        that to this node's in-memory mirrors)."""
        self.store = store
        # On PostgreSQL the store's own change notifications tell every node of an IAM write at
        # once (and a node's generation then counts the others' writes too, which the follow below
        # would take for its own); on SQLite, nodes of one host, the heartbeats do.
        self.iam = iam if getattr(store.db, "dialect", "sqlite") == "sqlite" else None
        self.followers = tuple(followers)
        self.pool = pool
        self.events = events
        self.name = N.check_name(name)
        self.url = N.check_url(url)
        self.secret = secret
        self.interval_s = interval_s
        self.max_environments = max_environments
        self.executor = executor
        self.clock = clock
        self.instance = secrets.token_hex(8)
        self.view = ClusterView(self.name)
        self.state = NodeState.ACTIVE
        self.removed = False
        self._task: asyncio.Task[None] | None = None
        self._advertised: dict[WarmKey, int] | None = None
        self._nonces: dict[str, float] = {}
        self._pruned = 0.0
        # Invocations this node is forwarding now, by node: added to that node's load as the
        # last heartbeat gave it, so that a burst is not all sent to the node that was idle then.
        self._forwarding: dict[str, int] = {}
        # IAM: invalidations this node made for the others' writes (its own writes are the rest of
        # the store's generation), and the others' write counts last seen, by (name, instance).
        self._invalidations = 0
        self._iam_seen: dict[tuple[str, str], int] = {}

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    @property
    def lease_s(self) -> float:
        """How long an Event claim holds without a heartbeat (as long as a node takes to be dead)."""
        return N.MISSED_HEARTBEATS * self.interval_s

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register (NodeConflict when another live process holds the name) and start heartbeating."""
        register = functools.partial(
            self.store.register,
            self.name,
            self.url,
            self.instance,
            self.clock(),
            self.max_environments,
            self.interval_s,
        )
        try:
            record = await self._off_loop(register)
        except NodeConflict as exc:
            # Heartbeats not yet run out: a process killed and started again at once, or another
            # process that really is this node. Whatever listens at its URL tells which.
            if await self._off_loop(_listening, exc.url):
                raise
            log.info("node %s: the previous process of this name is gone (nothing at %s)", self.name, exc.url)
            record = await self._off_loop(functools.partial(register, take_over=True))
        self.view = ClusterView(self.name, (record,))
        self.events.node = self.name
        self.events.lease_s = self.lease_s
        self.events.poll_s = self.interval_s
        await self.beat()
        self._task = asyncio.get_running_loop().create_task(self._beating())
        log.info("node %s (%s) registered", self.name, self.url)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if not self.removed:
            with contextlib.suppress(Exception):
                await self._off_loop(self.store.leave, self.name, self.instance)

    async def _beating(self) -> None:
        while not self.removed:
            await asyncio.sleep(self.interval_s)
            try:
                await self.beat()
            except Exception:
                log.exception("node %s: heartbeat failed", self.name)

    async def beat(self) -> None:
        """One heartbeat: this node's load and (when they changed) idle warm environments, read
        on the loop (the pool's state lives there), written off it; then the others, read back."""
        warm: dict[WarmKey, int] = {
            (ref.account, ref.region, ref.name, version, revision): n
            for (ref, version, revision), n in self.pool.idle_counts().items()
        }
        changed = None if warm == self._advertised else warm
        now = self.clock()
        iam_writes = 0 if self.iam is None else self.iam.generation - self._invalidations
        mine = await self._off_loop(
            self.store.heartbeat,
            self.name,
            self.instance,
            now,
            self.pool.busy,
            changed,
            now + self.lease_s,
            iam_writes,
        )
        if mine is None:
            self.removed = True
            self.state = NodeState.DRAINING
            self.events.paused = True
            log.warning(
                "node %s was removed from the registry: it claims nothing more; stop this process", self.name
            )
            return
        self._advertised = warm
        self.view = await self._off_loop(self.store.view, self.name, self.clock(), self.interval_s)
        self._follow_iam(self.view)
        if not self.view.alone:
            for follower in self.followers:
                apply = await self._off_loop(follower)
                apply()
        self.state = mine.state
        self.events.paused = mine.state is NodeState.DRAINING

    def _follow_iam(self, view: ClusterView) -> None:
        """Another node's IAM writes moved since the last heartbeat: what this node derived from
        IAM (its authorizer's caches) is dropped, so a change made through any node applies on
        every node within about two heartbeat intervals."""
        seen = {(n.name, n.instance): n.iam_writes for n in view.nodes if n.name != self.name}
        moved = any(self._iam_seen.get(key) != writes for key, writes in seen.items())
        self._iam_seen = seen
        if moved and self.iam is not None:
            self._invalidations += 1
            self.iam.invalidate()

    # -- routing ---------------------------------------------------------------------------------

    def route(self, target: Target) -> NodeRecord | None:
        """Where an invocation of ``target`` runs (None: here). On the loop, no I/O, nothing
        copied: the view as the last heartbeat left it, with the invocations being forwarded now."""
        if self.view.alone and not self.removed:
            return None
        if self.pool.has_idle(target.key):
            return None
        ref, version, revision = target.key
        key = (ref.account, ref.region, ref.name, version, revision)
        load = self.pool.busy / self.max_environments if self.max_environments else 1.0
        # Draining (or removed): what this node gets goes elsewhere when another node can run it
        # (and runs here when none can).
        return N.route(
            self.view,
            key,
            local_idle=False,
            local_load=load,
            forwarding=self._forwarding,
            here=self.state is NodeState.ACTIVE,
        )

    # -- forwarding: the sending side ------------------------------------------------------------

    async def forward(self, node: NodeRecord, call: ForwardedInvoke, timeout_s: float) -> ForwardedResult:
        """Run ``call`` on ``node``. NotStarted: it could not be reached (nothing ran; run it
        here); NodeLost: it stopped answering after it had the invocation;
        TooManyRequestsException: it had no room."""
        self._forwarding[node.name] = self._forwarding.get(node.name, 0) + 1
        try:
            return await self._forward(node, call, timeout_s)
        finally:
            left = self._forwarding[node.name] - 1
            if left:
                self._forwarding[node.name] = left
            else:
                del self._forwarding[node.name]

    async def _forward(self, node: NodeRecord, call: ForwardedInvoke, timeout_s: float) -> ForwardedResult:
        body = call.encode()
        path = FORWARD_PATH
        nonce = secrets.token_hex(16)
        signature = N.sign(
            self.secret,
            target=node.name,
            instance=node.instance,
            path=path,
            timestamp=self.clock(),
            nonce=nonce,
            body=body,
        )
        parts = urlsplit(node.url)
        https = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if https else 80)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ssl.create_default_context() if https else None),
                timeout=5.0,
            )
        except (OSError, TimeoutError) as exc:
            log.warning("node %s: cannot reach node %s at %s: %s", self.name, node.name, node.url, exc)
            raise NotStarted(str(exc)) from exc
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{N.SIGNATURE_HEADER}: {signature}\r\nConnection: close\r\n\r\n"
        )
        try:
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            answer = await asyncio.wait_for(_read_all(reader), timeout=timeout_s + 30.0)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise self._lost(node, str(exc)) from exc
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        status, answer_signature, answer_body = _parse_response(answer)
        if status == 200:
            if not N.verify_answer(self.secret, answer_signature, nonce=nonce, body=answer_body):
                # Not the node's answer (something else answered at its address): what ran, if
                # anything did, is unknown.
                raise self._lost(node, "an answer not signed with the cluster secret")
            try:
                return ForwardedResult.decode(answer_body)
            except ValueError as exc:
                raise self._lost(node, f"unreadable answer: {exc}") from exc
        if status == 403:
            # Refused before anything ran (signed for this node's previous process, which the
            # view still had, or a cluster secret that differs): run it here.
            log.warning("node %s: node %s refused a forwarded invocation", self.name, node.name)
            raise NotStarted("refused")
        if status == 429:
            raise TooManyRequestsException(
                "Rate Exceeded.", fields={"Reason": "ConcurrentInvocationLimitExceeded"}
            )
        raise self._lost(node, f"status {status}: {answer_body[:200]!r}")

    def _lost(self, node: NodeRecord, why: str) -> NodeLost:
        log.warning("node %s: invocation forwarded to node %s lost: %s", self.name, node.name, why)
        return NodeLost("An internal error occurred in lamina.")

    # -- forwarding: the receiving side ----------------------------------------------------------

    def sign_answer(self, request_signature: str, body: bytes) -> str:
        """The signature header of ``body`` answering the request :meth:`accept` took."""
        return N.sign_answer(self.secret, nonce=N.request_nonce(request_signature), body=body)

    def accept(self, signature: str, path: str, body: bytes, digest: str | None = None) -> ForwardedInvoke:
        """The invocation of a request another node signed for this one; NodeError says why not
        (forged, for another node, too old, replayed, malformed). On the loop, no I/O;
        ``digest``: the body's :func:`~lamina.domain.nodes.body_digest`, computed off the loop."""
        self.verify(signature, path, body, digest)
        try:
            return ForwardedInvoke.decode(body)
        except ValueError as exc:
            raise N.NodeError(f"malformed invocation: {exc}") from exc

    def verify(self, signature: str, path: str, body: bytes, digest: str | None = None) -> None:
        """Accept a request another node signed for this one's process (at ``path``, with
        ``body``), once; NodeError says why not (forged, for another node or process, too old,
        replayed). On the loop, no I/O; ``digest`` as for :meth:`accept`."""
        now = self.clock()
        if now - self._pruned > N.FORWARD_WINDOW_S:
            self._nonces = {n: t for n, t in self._nonces.items() if t > now}
            self._pruned = now
        if len(self._nonces) >= MAX_NONCES:
            raise N.NodeError("too many requests in the replay window")
        nonce = N.verify(
            self.secret,
            signature,
            me=self.name,
            instance=self.instance,
            path=path,
            now=now,
            body=body,
            seen=self._nonces,
            digest=digest,
        )
        self._nonces[nonce] = now + 2 * N.FORWARD_WINDOW_S

    # -- other node-to-node calls (blocking: from a worker thread) -------------------------------

    def call(self, node: str, path: str, body: bytes, timeout_s: float = 30.0) -> tuple[int, bytes]:
        """POST ``body`` to ``path`` on the live node ``node``, signed with the cluster secret as a
        forwarded invocation is; its status and body (a 200 taken only if the answer is signed
        for this request, as a forwarded invocation's is). OSError: it could not be reached, or
        what answered is not the node."""
        record = next((n for n in self.view.nodes if n.name == node), None)
        if record is None:
            record = self.store.get(node)
        if record is None:
            raise OSError(f"no node {node!r} in the registry")
        nonce = secrets.token_hex(16)
        signature = N.sign(
            self.secret,
            target=node,
            instance=record.instance,
            path=path,
            timestamp=self.clock(),
            nonce=nonce,
            body=body,
        )
        parts = urlsplit(record.url)
        host, https = parts.hostname or "", parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        conn: http.client.HTTPConnection = (
            http.client.HTTPSConnection(host, port, timeout=timeout_s, context=ssl.create_default_context())
            if https
            else http.client.HTTPConnection(host, port, timeout=timeout_s)
        )
        try:
            conn.request(
                "POST",
                path,
                body,
                {"Content-Type": "application/json", N.SIGNATURE_HEADER: signature, "Connection": "close"},
            )
            answer = conn.getresponse()
            content = answer.read(MAX_ANSWER)
            if answer.status == 200 and not N.verify_answer(
                self.secret, answer.getheader(N.SIGNATURE_HEADER) or "", nonce=nonce, body=content
            ):
                # Something else answered at the node's address: its answer is not taken.
                raise OSError(f"node {node}: an answer not signed with the cluster secret")
            return answer.status, content
        except http.client.HTTPException as exc:
            raise OSError(f"node {node}: {exc}") from exc
        finally:
            conn.close()


def _listening(url: str) -> bool:
    """Whether anything accepts connections at ``url``'s host and port (blocks up to 2 s)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=2.0):
            return True
    except (OSError, ValueError):
        return False


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    """The whole response (the connection closes after it), up to :data:`MAX_ANSWER` and a head."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_ANSWER + 65536:
        chunk = await reader.read(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _parse_response(data: bytes) -> tuple[int, str, bytes]:
    """Status, signature header and body of an HTTP/1.1 response read to its end
    (``Connection: close``)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return 0, "", b""
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ")[1])
    except (IndexError, ValueError):
        return 0, "", b""
    length = None
    signature = ""
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
        elif name == N.SIGNATURE_HEADER.encode():
            signature = value.strip().decode("latin-1")
    if length is not None and len(rest) < length:
        return 0, "", b""  # cut off: the node died while answering
    return status, signature, rest if length is None else rest[:length]
