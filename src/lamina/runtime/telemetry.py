"""The Telemetry API (``PUT /2022-07-01/telemetry``) and the Logs API (``PUT /2020-08-15/logs``) of
one execution environment: subscriptions, per-subscriber buffers, and batched delivery to each
subscriber's listener inside the sandbox.

Facts (AWS's Lambda guide: "Lambda Telemetry API", "Telemetry API reference", "Lambda Logs API"):

- An extension subscribes during Init with its ``Lambda-Extension-Identifier``; after Init Lambda
  refuses (403 ``Logs.SubscriptionClosed`` "Logs API subscription is closed already", as the runtime
  interface emulator words it; ``Telemetry.`` likewise). An extension subscribed to one of the two
  APIs cannot subscribe to the other. The same subscription again changes nothing (``200
  "AlreadySubscribed"``, and a subscription event whose state is "Already subscribed", as seen on
  AWS); a different one replaces it.
- The body: ``schemaVersion`` (Telemetry: ``2022-07-01``, ``2022-12-13``, ``2025-01-29``, required;
  Logs: ``2020-08-15`` (default) or ``2021-03-18``, which adds ``platform.runtimeDone``), ``types``
  (``platform``, ``function``, ``extension``), ``buffering`` (``maxItems`` 1,000..10,000, default
  1,000 for Telemetry and 10,000 for Logs; ``maxBytes`` 262,144..1,048,576, default 262,144;
  ``timeoutMs`` 25..30,000, default 1,000) and ``destination``: ``{"protocol": "HTTP", "URI":
  "http://sandbox.localdomain:<port>/<path>"}`` (an array of events in JSON, POSTed, or PUT with
  ``"method": "PUT"``, which the Logs API offers) or ``{"protocol": "TCP", "port": <port>}`` (newline
  delimited JSON, no acknowledgement). Port 9001 is Lambda's own.
- Success: ``200 "OK"``. A malformed body: ``400 <Api>.DeserializationError``; a body that breaks a
  rule: ``400 <Api>.ValidationError`` with every broken rule, ``; ``-separated ("URI port is not
  provided; types should not be empty"); a destination elsewhere than ``sandbox.localdomain`` over
  ``http``: ``403 <Api>.AccessDenied``.
- Delivery: a subscriber's batch goes when it holds ``maxItems`` events or ``maxBytes`` bytes, or
  ``timeoutMs`` after its first event. A failed delivery (no listener, an error status, no answer in
  :data:`DELIVERY_TIMEOUT_S`) is retried with backoff; meanwhile events keep arriving up to twice the
  buffer's limits ("expect payloads as large as 2 * maxBytes + metadata"), past which they are
  dropped and counted, and the next batch carries a ``platform.logsDropped`` with the counts.
- Events from the start of Init are kept (bounded) until Init ends, so an extension that subscribes
  during Init still gets ``platform.initStart`` and the function's first lines.

The environment owns one :class:`Telemetry` per execution environment and calls it (see its
docstring for where). Nothing here blocks the event loop:
deliveries are tasks, batching uses ``call_later`` timers, memory per subscriber is bounded whatever
the function prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lamina.errors import LaminaError
from lamina.runtime.logs import EventSplitter
from lamina.runtime.telemetry_delivery import DELIVERY_TIMEOUT_S, Connector, Subscriber
from lamina.runtime.telemetry_events import Category, Event, subscription_record

TELEMETRY = "telemetry"
LOGS = "logs"
_API_NAMES = {TELEMETRY: "Telemetry", LOGS: "Logs"}
_SCHEMAS = {TELEMETRY: ("2022-07-01", "2022-12-13", "2025-01-29"), LOGS: ("2020-08-15", "2021-03-18")}
_SCHEMA_MESSAGES = {
    TELEMETRY: "TelemetryAPI only supports the SchemaVersion released after 2021-03-18",
    LOGS: "LogsAPI only supports the following SchemaVersion: 2020-08-15, 2021-03-18",
}
_TYPES = ("platform", "function", "extension")
_LIMITS = {"maxItems": (1_000, 10_000), "maxBytes": (262_144, 1_048_576), "timeoutMs": (25, 30_000)}
_DEFAULTS = {
    TELEMETRY: {"maxItems": 1_000, "maxBytes": 262_144, "timeoutMs": 1_000},
    LOGS: {"maxItems": 10_000, "maxBytes": 262_144, "timeoutMs": 1_000},
}
_HOSTS = ("sandbox.localdomain", "sandbox")
_TCP_PORTS = (1024, 65_535)
RESERVED_PORT = 9001  # the Runtime API's
__all__ = [
    "ALREADY_SUBSCRIBED",
    "DELIVERY_TIMEOUT_S",
    "LOGS",
    "OK",
    "TELEMETRY",
    "Connector",
    "Subscription",
    "SubscriptionError",
    "Telemetry",
    "parse_subscription",
]

INIT_HISTORY = (10_000, 1_048_576)  # events (count, bytes) kept during Init for later subscribers


class SubscriptionError(LaminaError):
    """A refused subscription: its HTTP status, ``errorType`` and ``errorMessage``."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> bytes:
        """The JSON answer."""
        return json.dumps(
            {"errorMessage": self.message, "errorType": self.error_type}, separators=(",", ":")
        ).encode()


@dataclass(frozen=True)
class Subscription:
    """A validated subscription request."""

    api: str  # TELEMETRY | LOGS
    schema_version: str
    types: tuple[str, ...]
    max_items: int
    max_bytes: int
    timeout_ms: int
    protocol: str  # HTTP | TCP
    port: int
    target: str = "/"  # HTTP: the request target (path and query)
    method: str = "POST"

    @property
    def categories(self) -> frozenset[Category]:
        """The streams subscribed to."""
        return frozenset(Category(t) for t in self.types)


def _unexpected(value: Any) -> str:
    """A JSON value as serde names it in "invalid type" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def _variants(values: Iterable[str]) -> str:
    quoted = [f"`{v}`" for v in values]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return "one of " + ", ".join(quoted)


def parse_subscription(api: str, body: bytes) -> Subscription:
    """The subscription ``body`` asks for, or the :class:`SubscriptionError` AWS answers it with."""
    if api not in _API_NAMES:
        raise ValueError(f"unknown API {api!r}")
    name = _API_NAMES[api]

    def malformed(message: str) -> SubscriptionError:
        return SubscriptionError(400, f"{name}.DeserializationError", message)

    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = (
            f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else str(exc)
        )
        raise malformed(detail) from exc
    except RecursionError as exc:  # nested deeper than the parser goes: no subscription is
        raise malformed("recursion limit exceeded") from exc
    if not isinstance(doc, dict):
        raise malformed(f"invalid type: {_unexpected(doc)}, expected a map")
    for field in ("destination", "types"):
        if field not in doc:
            raise malformed(f"missing field `{field}`")
    version = doc.get("schemaVersion")
    if version is not None and not isinstance(version, str):
        raise malformed(f"invalid type: {_unexpected(version)}, expected a string")
    types = doc["types"]
    if not isinstance(types, list):
        raise malformed(f"invalid type: {_unexpected(types)}, expected a sequence")
    for t in types:
        if not isinstance(t, str):
            raise malformed(f"invalid type: {_unexpected(t)}, expected a string")
        if t not in _TYPES:
            raise malformed(f"unknown variant `{t}`, expected {_variants(_TYPES)}")
    destination = doc["destination"]
    if not isinstance(destination, dict):
        raise malformed(f"invalid type: {_unexpected(destination)}, expected a map")
    protocol = destination.get("protocol")
    if protocol is None:
        raise malformed("missing field `protocol`")
    if not isinstance(protocol, str):
        raise malformed(f"invalid type: {_unexpected(protocol)}, expected a string")
    if protocol not in ("HTTP", "TCP"):
        raise malformed(f"unknown variant `{protocol}`, expected {_variants(('HTTP', 'TCP'))}")
    method = destination.get("method", "POST")
    if method not in ("POST", "PUT"):
        raise malformed(f"unknown variant `{method}`, expected {_variants(('POST', 'PUT'))}")
    buffering = doc.get("buffering")
    if buffering is None:
        buffering = {}
    if not isinstance(buffering, dict):
        raise malformed(f"invalid type: {_unexpected(buffering)}, expected a map")
    sizes = dict(_DEFAULTS[api])
    for key in _LIMITS:
        value = buffering.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise malformed(f"invalid type: {_unexpected(value)}, expected u32")
        sizes[key] = value

    if version is None and api == LOGS:
        version = _SCHEMAS[LOGS][0]
    if version not in _SCHEMAS[api]:
        raise SubscriptionError(400, f"{name}.ValidationError", _SCHEMA_MESSAGES[api])

    problems: list[str] = []
    port, target = _destination(name, protocol, destination, problems)
    if not types:
        problems.append("types should not be empty")
    elif len(set(types)) != len(types):
        problems.append("types should be unique")
    for key, (low, high) in _LIMITS.items():
        if not low <= sizes[key] <= high:
            problems.append(f"{key} should be between {low} and {high}")
    if problems:
        raise SubscriptionError(400, f"{name}.ValidationError", "; ".join(problems))
    return Subscription(
        api=api,
        schema_version=str(version),
        types=tuple(types),
        max_items=sizes["maxItems"],
        max_bytes=sizes["maxBytes"],
        timeout_ms=sizes["timeoutMs"],
        protocol=protocol,
        port=port,
        target=target,
        method=str(method),
    )


def _destination(
    name: str, protocol: str, destination: dict[str, Any], problems: list[str]
) -> tuple[int, str]:
    """The destination's port and request target; a broken rule goes to ``problems`` (port 0)."""
    if protocol == "TCP":
        port = destination.get("port")
        if port is None:
            raise SubscriptionError(400, f"{name}.DeserializationError", "missing field `port`")
        if isinstance(port, bool) or not isinstance(port, int) or port < 0:
            raise SubscriptionError(
                400, f"{name}.DeserializationError", f"invalid type: {_unexpected(port)}, expected u16"
            )
        if not _TCP_PORTS[0] <= port <= _TCP_PORTS[1]:
            problems.append(f"port should be between {_TCP_PORTS[0]} and {_TCP_PORTS[1]}")
            return 0, "/"
        if port == RESERVED_PORT:
            problems.append(f"port {RESERVED_PORT} is reserved")
        return port, "/"
    uri = destination.get("URI")
    if uri is None:
        raise SubscriptionError(400, f"{name}.DeserializationError", "missing field `URI`")
    if not isinstance(uri, str):
        raise SubscriptionError(
            400, f"{name}.DeserializationError", f"invalid type: {_unexpected(uri)}, expected a string"
        )
    try:
        parts = urllib.parse.urlsplit(uri)
        hostname = parts.hostname
    except ValueError as exc:
        problems.append(f"invalid destination URI: {exc}")
        return 0, "/"
    if parts.scheme != "http":
        raise SubscriptionError(403, f"{name}.AccessDenied", "Only 'http' scheme is supported.")
    if hostname not in _HOSTS:
        raise SubscriptionError(
            403, f"{name}.AccessDenied", "Only 'sandbox.localdomain' hostname is supported."
        )
    if parts.username is not None or parts.fragment or any(c in uri for c in "\r\n\t "):
        problems.append("invalid destination URI")
        return 0, "/"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and port <= 0:
        problems.append("invalid destination port")
        return 0, "/"
    if port is None:
        problems.append("URI port is not provided")
        return 0, "/"
    if port == RESERVED_PORT:
        problems.append(f"port {RESERVED_PORT} is reserved")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return port, target


OK = b'"OK"'  # the body of a successful subscription (a JSON string)
ALREADY_SUBSCRIBED = b'"AlreadySubscribed"'  # the body when the same subscription comes again


class Telemetry:
    """The Telemetry and Logs APIs of one execution environment.

    ``connect(port)`` opens a connection to a listener in the sandbox (the environment's connects
    inside the sandbox's network namespace to 127.0.0.1, which ``sandbox.localdomain`` is there).
    ``function_json``: the function's ``LogFormat`` is JSON, so a function line that is a JSON object
    is its event's record. ``delivery_timeout_s``: how long a listener may take to acknowledge a
    batch. All methods are called on the event loop.

    Where the environment calls it (records from :mod:`lamina.runtime.telemetry_events`):

    - Init starts: ``emit("platform.initStart", init_start_record(...))``; each extension registers:
      ``emit("platform.extension", extension_record(name, "Ready", events))``; the Runtime API's
      subscription routes: :meth:`subscribe`; the runtime's first ``next`` (or its init error):
      ``emit("platform.initRuntimeDone", init_runtime_done_record(status, error_type=...))``; Init
      over: ``emit("platform.initReport", init_report_record(ms, status, ...))`` then
      :meth:`init_done`.
    - Each invoke: ``emit("platform.start", start_record(request_id, version, trace=...))``; the
      runtime done with it: ``emit("platform.runtimeDone", runtime_done_record(...))``; the report:
      ``emit("platform.report", report_record(...))``.
    - Output: :meth:`function_output` with each chunk of the function's log pipe,
      :meth:`extension_output` with the extensions', :meth:`end_output` when the pipes close.
    - Freezing: ``await flush(timeout)`` then :meth:`suspend`; thawed: :meth:`resume`. Shutdown:
      ``await flush(timeout)`` then ``await close()``.
    """

    def __init__(
        self,
        connect: Connector,
        *,
        function_json: bool = False,
        delivery_timeout_s: float = DELIVERY_TIMEOUT_S,
    ) -> None:
        self._connect = connect
        self._delivery_timeout_s = delivery_timeout_s
        self._function_json = function_json
        self._subscribers: dict[str, Subscriber] = {}
        self._apis: dict[str, str] = {}  # extension name -> the API it subscribed with
        self._subscriptions: dict[str, Subscription] = {}  # extension name -> its latest subscription
        self._wanted: set[Category] = set()
        self._init_open = True  # subscriptions accepted, events kept for later subscribers
        self._history: deque[Event] = deque()
        self._history_bytes = 0
        self._function = EventSplitter()
        self._extension = EventSplitter()
        self._closed = False

    # -- subscriptions ---------------------------------------------------------------------------

    def subscribe(self, api: str, extension_name: str, body: bytes) -> tuple[int, bytes]:
        """``PUT /2022-07-01/telemetry`` (``api`` "telemetry") or ``PUT /2020-08-15/logs`` ("logs") of
        a registered extension: the answer's status and JSON body."""
        if api not in _API_NAMES:
            raise ValueError(f"unknown API {api!r}")
        name = _API_NAMES[api]
        if not self._init_open or self._closed:
            closed = SubscriptionError(
                403, f"{name}.SubscriptionClosed", f"{name} API subscription is closed already"
            )
            return closed.status, closed.body()
        try:
            sub = parse_subscription(api, body)
        except SubscriptionError as refused:
            return refused.status, refused.body()
        other = self._apis.get(extension_name)
        if other is not None and other != api:
            message = (
                f"The extension {extension_name} is already subscribed to the {_API_NAMES[other]}API. "
                "You must either subscribe to the LogsAPI or the TelemetryAPI"
            )
            denied = SubscriptionError(400, f"{name}.AccessDenied", message)
            return denied.status, denied.body()
        settings: dict[str, Any] = {
            "schema_version": sub.schema_version,
            "categories": sub.categories,
            "max_items": sub.max_items,
            "max_bytes": sub.max_bytes,
            "timeout_ms": sub.timeout_ms,
            "protocol": sub.protocol,
            "port": sub.port,
            "target": sub.target,
            "method": sub.method,
        }
        kind = "platform.telemetrySubscription" if api == TELEMETRY else "platform.logsSubscription"
        if self._subscriptions.get(extension_name) == sub:
            # The same subscription again: nothing changes (observed on AWS: the event's state says so).
            self.emit(kind, subscription_record(extension_name, "Already subscribed", sub.types))
            return 200, ALREADY_SUBSCRIBED
        self._subscriptions[extension_name] = sub
        subscriber = self._subscribers.get(extension_name)
        if subscriber is None:
            subscriber = Subscriber(
                extension_name,
                api,
                connect=self._connect,
                delivery_timeout_s=self._delivery_timeout_s,
                **settings,
            )
            self._subscribers[extension_name] = subscriber
            self._apis[extension_name] = api
            for event in self._history:
                subscriber.offer(event)
            subscriber.start()
        else:
            subscriber.configure(**settings)
        self._wanted = set().union(*(s.categories for s in self._subscribers.values()))
        self.emit(kind, subscription_record(extension_name, "Subscribed", sub.types))
        return 200, OK

    def init_done(self) -> None:
        """The Init phase is over: no more subscriptions, no more history."""
        self._init_open = False
        self._history.clear()
        self._history_bytes = 0

    @property
    def subscribers(self) -> dict[str, Subscriber]:
        """The subscribers by extension name (read only)."""
        return dict(self._subscribers)

    def wants(self, category: Category) -> bool:
        """Whether an event of ``category`` would go anywhere (cheap: call before building one)."""
        return self._init_open or category in self._wanted

    # -- events ----------------------------------------------------------------------------------

    def emit(self, kind: str, record: Any, *, epoch_s: float | None = None) -> None:
        """A platform event (``platform.start`` with a record of :mod:`telemetry_events`' builders)
        that happened at ``epoch_s`` (None: now)."""
        if self.wants(Category.PLATFORM):
            self._dispatch(Event(kind, record, epoch_s=epoch_s))

    def function_output(self, data: bytes) -> None:
        """The function's output, as read from its log pipe (lines may be cut anywhere)."""
        if self.wants(Category.FUNCTION):
            for line in self._function.feed(data):
                self._dispatch(self._line_event("function", line))

    def extension_output(self, data: bytes) -> None:
        """The extensions' output, as read from their log pipe."""
        if self.wants(Category.EXTENSION):
            for line in self._extension.feed(data):
                self._dispatch(self._line_event("extension", line))

    def end_output(self) -> None:
        """The log pipes are closed (the environment's processes are gone): unfinished lines go."""
        for kind, splitter in (("function", self._function), ("extension", self._extension)):
            for line in splitter.flush():
                if self.wants(Category(kind)):
                    self._dispatch(self._line_event(kind, line))

    def _line_event(self, kind: str, line: str) -> Event:
        # One record per line ("each line the function writes to stdout or stderr"): the line as
        # written, with its newline (as AWS sends it), or with LogFormat JSON the object it holds.
        record: Any = line
        if self._function_json and kind == "function" and line.startswith("{"):
            with contextlib.suppress(ValueError, RecursionError):
                parsed = json.loads(line)
                if isinstance(parsed, dict):
                    record = parsed
        return Event(kind, record, line=line)

    def _dispatch(self, event: Event) -> None:
        if self._init_open:
            self._remember(event)
        for subscriber in self._subscribers.values():
            subscriber.offer(event)

    def _remember(self, event: Event) -> None:
        size = len(event.telemetry_json() or b"")
        if len(self._history) >= INIT_HISTORY[0] or self._history_bytes + size > INIT_HISTORY[1]:
            return  # what later subscribers miss of Init's start: bounded like their buffers
        self._history.append(event)
        self._history_bytes += size

    # -- delivery --------------------------------------------------------------------------------

    async def flush(self, timeout_s: float = DELIVERY_TIMEOUT_S) -> bool:
        """Deliver everything buffered now (before a freeze, at shutdown); True when every subscriber
        acknowledged it within ``timeout_s``."""
        waits = [s.flush() for s in self._subscribers.values()]
        if not waits:
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*waits)
        except TimeoutError:
            return False
        return True

    def suspend(self) -> None:
        """The environment is frozen: its listeners cannot answer; no timers or retries meanwhile."""
        for subscriber in self._subscribers.values():
            subscriber.suspend()

    def resume(self) -> None:
        """The environment is thawed."""
        for subscriber in self._subscribers.values():
            subscriber.resume()

    async def close(self) -> None:
        """Stop every delivery (what is still buffered is dropped: :meth:`flush` first)."""
        self._closed = True
        self.init_done()
        subscribers, self._subscribers = self._subscribers, {}
        self._wanted = set()
        for subscriber in subscribers.values():
            await subscriber.close()
