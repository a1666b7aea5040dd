"""Several lamina nodes sharing one metadata database: who is alive, where an Invoke runs, and
how one node proves to another that a forwarded invocation comes from a node (docs/nodes.md).

Pure rules: the clock and the secret are passed in.
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import hmac
import json
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from lamina.errors import LaminaError

# A node that has missed this many heartbeats is dead: its claimed events go to others once
# their leases (as long) run out, and no invocation is routed to it.
MISSED_HEARTBEATS: Final = 3
# A forwarded invocation's signature is good this many seconds either side of the receiver's
# clock (nodes of one deployment keep their clocks in step with NTP); within it, each nonce once.
FORWARD_WINDOW_S: Final = 30.0
SIGNATURE_HEADER: Final = "x-lamina-node-signature"
# What an answer's MAC has in the place of a request's path (every request path starts with "/").
ANSWER: Final = "answer"
MAX_NODE_NAME: Final = 64


class NodeState(enum.Enum):
    ACTIVE = "active"
    DRAINING = "draining"  # no new routed invocations nor event claims; in-flight ones finish


class NodeError(LaminaError, ValueError):
    """A node name, URL or state change that cannot be used; the message says why."""


def check_name(name: str) -> str:
    """A node name: 1-64 letters, digits, ``.``, ``-`` or ``_``."""
    if (
        not 0 < len(name) <= MAX_NODE_NAME
        or not all(c.isalnum() or c in ".-_" for c in name)
        or not name.isascii()
    ):
        raise NodeError(f"a node name is 1 to {MAX_NODE_NAME} letters, digits, '.', '-' or '_', got {name!r}")
    return name


def check_url(url: str) -> str:
    """The base URL other nodes reach a node at: ``http://HOST:PORT`` or ``https://HOST:PORT``."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or "/" in rest.rstrip("/"):
        raise NodeError(f"an advertised URL is http(s)://HOST[:PORT], got {url!r}")
    return url.rstrip("/")


@dataclass(frozen=True)
class NodeRecord:
    """One node as the registry has it. ``instance``: a random id of the running process, so that
    a second process started under the same name is told apart from the first; ``busy``: its
    environments in use (all but the idle ones) at its last heartbeat."""

    name: str
    url: str
    instance: str
    started: float
    heartbeat: float
    state: NodeState
    busy: int
    max_environments: int
    # How many IAM writes the node's process has made (its clients' changes): a node that sees
    # another's number move forgets what it derived from IAM (its authorization caches).
    iam_writes: int = 0

    def live(self, now: float, interval_s: float) -> bool:
        """Whether it has heartbeated within the last :data:`MISSED_HEARTBEATS` intervals."""
        return now - self.heartbeat <= MISSED_HEARTBEATS * interval_s

    @property
    def load(self) -> float:
        """busy / max environments (1.0: full; a node without environments is always full)."""
        return self.busy / self.max_environments if self.max_environments > 0 else 1.0


# No invocations being forwarded (route's default).
_NONE: Mapping[str, int] = MappingProxyType({})

# (account, region, function name, version, RevisionId): one configuration's environments.
WarmKey = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class ClusterView:
    """What a node knows of the others, refreshed at each heartbeat: the live nodes (itself
    included) and which nodes had idle warm environments of which configuration."""

    me: str
    nodes: tuple[NodeRecord, ...] = ()
    warm: Mapping[WarmKey, tuple[str, ...]] = field(default_factory=dict)

    @functools.cached_property
    def alone(self) -> bool:
        """No other live node: every invocation runs here, with no look at anything else
        (computed once per view: the invoke path asks)."""
        return all(n.name == self.me for n in self.nodes)


def route(
    view: ClusterView,
    key: WarmKey,
    *,
    local_idle: bool,
    local_load: float,
    forwarding: Mapping[str, int] = _NONE,
    here: bool = True,
) -> NodeRecord | None:
    """Where a synchronous invocation runs: None for this node, else the node to forward it to.

    Here if this node has an idle warm environment of the configuration; else a live, active node
    that advertised one (the least loaded of them); else the least loaded live, active node with
    room, this node winning ties (no hop). A draining node (``here`` False) sends what it receives
    elsewhere, and runs it itself only when no other node can. ``forwarding``: invocations this
    node is forwarding now, by node, added to that node's load as the view has it."""
    if local_idle or view.alone:
        return None

    def busy(n: NodeRecord) -> int:
        return n.busy + forwarding.get(n.name, 0)

    def load(n: NodeRecord) -> tuple[float, str]:
        return (busy(n) / n.max_environments, n.name)

    others = [
        n for n in view.nodes if n.name != view.me and n.state is NodeState.ACTIVE and n.max_environments > 0
    ]
    warm = view.warm.get(key, ())
    with_idle = [n for n in others if n.name in warm and busy(n) < n.max_environments]
    if with_idle:
        return min(with_idle, key=load)
    roomy = [n for n in others if busy(n) < n.max_environments]
    if not roomy:
        return None
    best = min(roomy, key=load)
    if not here:
        return best
    me = next((n for n in view.nodes if n.name == view.me), None)
    if me is not None and me.state is NodeState.ACTIVE and local_load <= load(best)[0]:
        return None
    return best


# -- forwarded invocations ---------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardedInvoke:
    """An Invoke another node authenticated and authorized, for this node to run as it is: which
    function version (its configuration by RevisionId), with what, as which request."""

    account: str
    region: str
    name: str
    version: str
    revision: str
    payload: bytes
    request_id: str
    client_context: str | None
    invoked_arn: str | None
    tail: bool

    def encode(self) -> bytes:
        doc = {
            "account": self.account,
            "region": self.region,
            "name": self.name,
            "version": self.version,
            "revision": self.revision,
            "payload": base64.b64encode(self.payload).decode(),
            "requestId": self.request_id,
            "clientContext": self.client_context,
            "invokedArn": self.invoked_arn,
            "tail": self.tail,
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, body: bytes) -> ForwardedInvoke:
        """ValueError when ``body`` is not one (it was signed by a node: a bug, not an attack)."""
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        return cls(
            account=_text(doc, "account"),
            region=_text(doc, "region"),
            name=_text(doc, "name"),
            version=_text(doc, "version"),
            revision=_text(doc, "revision"),
            payload=base64.b64decode(_text(doc, "payload"), validate=True),
            request_id=_text(doc, "requestId"),
            client_context=_optional(doc, "clientContext"),
            invoked_arn=_optional(doc, "invokedArn"),
            tail=bool(doc.get("tail")),
        )


@dataclass(frozen=True)
class ForwardedResult:
    """What the node that ran a forwarded invocation answers: the outcome as the Invoke shows it."""

    payload: bytes
    function_error: bool
    log_tail: bytes

    def encode(self) -> bytes:
        doc = {
            "payload": base64.b64encode(self.payload).decode(),
            "functionError": self.function_error,
            "logTail": base64.b64encode(self.log_tail).decode(),
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, body: bytes) -> ForwardedResult:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        return cls(
            base64.b64decode(_text(doc, "payload"), validate=True),
            bool(doc.get("functionError")),
            base64.b64decode(_text(doc, "logTail"), validate=True),
        )


def _text(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def _optional(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return None if value is None else _text(doc, key)


def sign(
    secret: bytes, *, target: str, path: str, timestamp: float, nonce: str, body: bytes, instance: str = ""
) -> str:
    """The signature header of a node-to-node request: ``t=TIME,n=NONCE,s=HMAC`` where the HMAC
    (SHA-256, the cluster secret) covers the node it is for (its name and ``instance``, the random
    id of its running process), the path, the time, the nonce and the body's digest: it cannot be
    sent to another node, nor to the same node's next process (whose nonces seen start empty),
    replayed later, or given another body."""
    mac = _mac(secret, _recipient(target, instance), path, f"{timestamp:.3f}", nonce, body)
    return f"t={timestamp:.3f},n={nonce},s={mac}"


def verify(
    secret: bytes,
    header: str,
    *,
    me: str,
    path: str,
    now: float,
    body: bytes,
    seen: Container[str],
    instance: str = "",
    digest: str | None = None,
) -> str:
    """The nonce of a good signature ``header`` of a request to node ``me`` (its process
    ``instance``); NodeError says why it is refused (bad form or MAC, outside
    :data:`FORWARD_WINDOW_S`, a nonce in ``seen``). ``digest``: :func:`body_digest` of ``body``
    when the caller computed it already (off the event loop: a large body takes milliseconds)."""
    parts = dict(p.partition("=")[::2] for p in header.split(","))
    stamp, nonce, mac = parts.get("t", ""), parts.get("n", ""), parts.get("s", "")
    try:
        when = float(stamp)
    except ValueError:
        raise NodeError("malformed signature") from None
    if not nonce or len(nonce) > 64 or len(mac) != 64 or when != when:
        raise NodeError("malformed signature")
    if not hmac.compare_digest(_mac(secret, _recipient(me, instance), path, stamp, nonce, body, digest), mac):
        raise NodeError("bad signature")
    if abs(now - when) > FORWARD_WINDOW_S:
        raise NodeError("signature expired")
    if nonce in seen:
        raise NodeError("replayed request")
    return nonce


def sign_answer(secret: bytes, *, nonce: str, body: bytes) -> str:
    """The signature header of the answer to the request of ``nonce``: ``s=HMAC`` over the
    request's nonce and the answer's digest, so that whoever answers at a node's address without
    the cluster secret (a party on the node network) cannot pass off a result of its own."""
    return "s=" + _mac(secret, "", ANSWER, "", nonce, body)


def verify_answer(secret: bytes, header: str, *, nonce: str, body: bytes) -> bool:
    """Whether ``header`` is the signature of ``body`` answering the request of ``nonce``."""
    mac = header.removeprefix("s=")
    return len(mac) == 64 and hmac.compare_digest(_mac(secret, "", ANSWER, "", nonce, body), mac)


def request_nonce(header: str) -> str:
    """The nonce of a request's signature ``header`` (one :func:`verify` accepted)."""
    return dict(p.partition("=")[::2] for p in header.split(",")).get("n", "")


def _recipient(name: str, instance: str) -> str:
    """The receiving node as a signature names it (a name holds no ``/``)."""
    return f"{name}/{instance}" if instance else name


def body_digest(body: bytes) -> str:
    """The SHA-256 a signature covers of a body (hex)."""
    return hashlib.sha256(body).hexdigest()


def _mac(
    secret: bytes, target: str, path: str, stamp: str, nonce: str, body: bytes, digest: str | None = None
) -> str:
    message = "\n".join((target, path, stamp, nonce, digest or body_digest(body))).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
