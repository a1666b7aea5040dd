"""The Lambda Extensions API of one execution environment: its registry and state machine.

Facts about the Extensions API (AWS "Lambda Extensions API" and the runtime interface emulator's
``rapid``: ``lambda/rapi/handler/agent*.go``, ``lambda/core/*agent*.go``, ``lambda/fatalerror``):

- It shares the Runtime API's address (``AWS_LAMBDA_RUNTIME_API``) under ``/2020-01-01/extension``:
  ``POST register`` (header ``Lambda-Extension-Name``, body ``{"events": [...]}``), ``GET event/next``
  (a long poll), ``POST init/error`` and ``POST exit/error`` (header
  ``Lambda-Extension-Function-Error-Type``). Every call but register names the extension by the
  ``Lambda-Extension-Identifier`` the register answer gave (a UUID); any connection may carry it.
- An *external* extension is a launched file of ``/opt/extensions``: it registers with its file name.
  Any other name registered while registration is open (the runtime's Init) makes an *internal*
  extension (a thread of the runtime process); internal extensions may subscribe to INVOKE only
  (SHUTDOWN: ``ShutdownEventNotSupportedForInternalExtension``). At most 10 extensions.
- States (rapid's names): Started -> Registered (register) -> Ready (next; waiting for an event) ->
  Running (an event was handed out) -> Ready (next again) ...; InitError and ExitError after the
  error posts; Exited / LaunchError from the process side. A call the state does not allow is 403
  ``Extension.InvalidExtensionState`` "State transition from A to B failed for extension X. Error:
  State transition is not allowed".
- Init ends when the runtime and every registered extension called next; an invocation is over (the
  environment may be frozen) when the runtime answered and every extension that was handed the
  INVOKE event called next again.

Everything here runs on the server's event loop and never blocks: the connections of
:mod:`lamina.runtime.runtime_api` call :meth:`ExtensionsApi.handle`; a long poll is parked on its
connection (:class:`Waiter`) and answered when an event comes.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "MAX_EXTENSIONS",
    "MAX_EXTENSION_BODY_BYTES",
    "EVENT_INVOKE",
    "EVENT_SHUTDOWN",
    "Extension",
    "ExtensionState",
    "ExtensionsApi",
    "FunctionMetadata",
    "Waiter",
]

MAX_EXTENSIONS = 10  # rapid's MaxAgentsAllowed; AWS: "up to 10 extensions"
# Bodies of register, init/error and exit/error: a register body is a short JSON list; error bodies
# are free text AWS does not return anywhere. Anything bigger is refused (413) and kept nowhere.
MAX_EXTENSION_BODY_BYTES = 64 * 1024
# The longest extension name accepted (a file name: NAME_MAX).
MAX_NAME_BYTES = 255

EVENT_INVOKE = "INVOKE"
EVENT_SHUTDOWN = "SHUTDOWN"
_EVENTS = (EVENT_INVOKE, EVENT_SHUTDOWN)


class ExtensionState(enum.Enum):
    """rapid's agent states (their names appear in error messages and in EXTENSION log lines)."""

    STARTED = "Started"
    REGISTERED = "Registered"
    READY = "Ready"
    RUNNING = "Running"
    INIT_ERROR = "InitError"
    EXIT_ERROR = "ExitError"
    EXITED = "Exited"
    LAUNCH_ERROR = "LaunchError"


class Waiter(Protocol):
    """A parked request's connection: one complete response may be sent to it."""

    @property
    def alive(self) -> bool: ...

    def send(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class FunctionMetadata:
    """What the register answer tells an extension about its function."""

    function_name: str
    function_version: str
    handler: str
    account_id: str


class Extension:
    """One extension's registration and place in the lifecycle."""

    __slots__ = ("name", "internal", "id", "state", "events", "error_type", "waiter", "queued")

    def __init__(self, name: str, internal: bool) -> None:
        self.name = name
        self.internal = internal
        self.id = ""  # given at registration
        self.state = ExtensionState.STARTED
        self.events: tuple[str, ...] = ()
        self.error_type: str | None = None
        self.waiter: Waiter | None = None  # its parked event/next
        self.queued: bytes | None = None  # an event for it while no next of its was parked

    def subscribed(self, event: str) -> bool:
        """Whether it registered for ``event``."""
        return event in self.events

    @property
    def registered(self) -> bool:
        """Whether it registered (whatever it did since)."""
        return bool(self.id)

    @property
    def failed(self) -> bool:
        """Whether it reported or met a fatal error."""
        return self.state in (
            ExtensionState.INIT_ERROR,
            ExtensionState.EXIT_ERROR,
            ExtensionState.LAUNCH_ERROR,
        )


# Who gets an event: INVOKE only extensions done with Init; SHUTDOWN also those still in it (they
# find it when they call next).
_RECEIVING = {
    EVENT_INVOKE: (ExtensionState.READY, ExtensionState.RUNNING),
    EVENT_SHUTDOWN: (ExtensionState.REGISTERED, ExtensionState.READY, ExtensionState.RUNNING),
}


def _printable(text: str) -> bool:
    # Not only ASCII's control characters: C1 controls (NEL) and Unicode's line and paragraph
    # separators end a line for str.splitlines and for many log readers.
    return text.isprintable()


def _reply(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (
        status,
        extra,
        len(body),
        body,
    )


def _forbidden(error_type: str, message: str) -> bytes:
    return _reply(b"403 Forbidden", json.dumps({"errorMessage": message, "errorType": error_type}).encode())


def _transition(ext: Extension, target: ExtensionState, who: str) -> bytes:
    return _forbidden(
        "Extension.InvalidExtensionState",
        f"State transition from {ext.state.value} to {target.value} failed for extension {who}. "
        "Error: State transition is not allowed",
    )


_ACCEPTED = _reply(b"202 Accepted", b'{"status":"OK"}')
TOO_LARGE = _reply(
    b"413 Request Entity Too Large",
    b'{"errorMessage":"Exceeded maximum allowed payload size (%d bytes).","errorType":"RequestEntityTooLarge"}'
    % MAX_EXTENSION_BODY_BYTES,
)


class ExtensionsApi:
    """The extensions of one environment: ``external`` are the launched files' names.

    ``on_change`` is called (on the loop, synchronously) whenever something the environment waits
    for may have happened: a registration, a next, an error post. ``on_event`` receives the
    platform's extension records (name, state, events, error type) as they happen.
    """

    def __init__(
        self,
        metadata: FunctionMetadata,
        external: Iterable[str] = (),
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.metadata = metadata
        self._by_name: dict[str, Extension] = {}
        self._by_id: dict[str, Extension] = {}
        for name in external:
            self._by_name[name] = Extension(name, internal=False)
        self.registration_open = True
        self.any_registered = False  # read on every invoke: an attribute, not a scan
        self.on_change = on_change
        self.shutting_down = False

    # -- what the environment reads and does ---------------------------------------------------

    @property
    def extensions(self) -> list[Extension]:
        """Every extension, external ones first (in launch order), then internal ones."""
        ext = [e for e in self._by_name.values() if not e.internal]
        return ext + [e for e in self._by_name.values() if e.internal]

    def external(self, name: str) -> Extension | None:
        """The external extension launched as ``name``."""
        ext = self._by_name.get(name)
        return ext if ext is not None and not ext.internal else None

    def all_external_registered(self) -> bool:
        """Whether every launched extension registered or cannot any more."""
        return all(
            e.registered or e.state in (ExtensionState.EXITED, ExtensionState.LAUNCH_ERROR)
            for e in self._by_name.values()
            if not e.internal
        )

    def busy(self) -> list[Extension]:
        """Registered extensions that have not (yet again) called next: Init or the last event
        is not over for them."""
        return [
            e
            for e in self._by_name.values()
            if e.state in (ExtensionState.REGISTERED, ExtensionState.RUNNING)
        ]

    def first_error(self) -> Extension | None:
        """The first extension (in :attr:`extensions` order) that posted an error."""
        for e in self.extensions:
            if e.state in (ExtensionState.INIT_ERROR, ExtensionState.EXIT_ERROR):
                return e
        return None

    def registered(self) -> list[Extension]:
        """Registered extensions, in :attr:`extensions` order."""
        return [e for e in self.extensions if e.registered]

    def close_registration(self) -> None:
        """The runtime's Init is over: no internal extension may register any more."""
        self.registration_open = False

    def launch_failed(self, name: str) -> None:
        """The launched file ``name`` could not be executed."""
        ext = self.external(name)
        if ext is not None:
            ext.state = ExtensionState.LAUNCH_ERROR
            self._changed()

    def exited(self, name: str) -> None:
        """The process of the external extension ``name`` is gone."""
        ext = self.external(name)
        if ext is not None:
            if ext.state not in (ExtensionState.INIT_ERROR, ExtensionState.EXIT_ERROR):
                ext.state = ExtensionState.EXITED
            ext.waiter = None
            ext.queued = None
            self._changed()

    def invoke(self, request_id: str, deadline_ms: int, function_arn: str, trace_id: str) -> int:
        """Hand the INVOKE event to every extension registered for it; how many got it."""
        body = json.dumps(
            {
                "eventType": EVENT_INVOKE,
                "deadlineMs": deadline_ms,
                "requestId": request_id,
                "invokedFunctionArn": function_arn,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id},
            }
        ).encode()
        return self._broadcast(EVENT_INVOKE, body)

    def shutdown(self, reason: str, deadline_ms: int) -> int:
        """Hand the SHUTDOWN event to every extension registered for it; how many got it."""
        self.shutting_down = True
        self.registration_open = False
        body = json.dumps(
            {"eventType": EVENT_SHUTDOWN, "shutdownReason": reason, "deadlineMs": deadline_ms}
        ).encode()
        return self._broadcast(EVENT_SHUTDOWN, body)

    def close(self) -> None:
        """Forget every parked long poll (their connections are being closed)."""
        self.on_change = None
        for e in self._by_name.values():
            e.waiter = None
            e.queued = None

    # -- requests --------------------------------------------------------------------------------

    def register(self, name: str | None, features: str | None, body: bytes) -> bytes:
        """``POST /extension/register``."""
        if not name:
            return _forbidden("Extension.InvalidExtensionName", "Empty extension name")
        events = self._parse_register(body)
        if isinstance(events, bytes):
            return events
        ext = self._by_name.get(name)
        if ext is None or ext.internal:
            for event in events:
                if event == EVENT_SHUTDOWN:
                    return _forbidden(
                        "Extension.InvalidEventType",
                        f"{event}: ShutdownEventNotSupportedForInternalExtension",
                    )
            if not self.registration_open:
                return _forbidden("Extension.RegistrationClosed", "Extension registration closed already")
            if ext is not None:
                return _forbidden(
                    "Extension.InvalidExtensionState", "Extension with this name already registered"
                )
            if len(self._by_name) >= MAX_EXTENSIONS:
                return _forbidden(
                    "Extension.TooManyExtensions", f"Extension limit ({MAX_EXTENSIONS}) reached"
                )
            if len(name.encode()) > MAX_NAME_BYTES or not _printable(name):
                # It is written into the function's log (EXTENSION lines): no control characters.
                return _forbidden("Extension.InvalidExtensionName", "Invalid extension name")
            ext = self._by_name[name] = Extension(name, internal=True)
        elif ext.state is not ExtensionState.STARTED:
            return _transition(ext, ExtensionState.REGISTERED, ext.name)
        ext.state = ExtensionState.REGISTERED
        ext.events = tuple(e for e in _EVENTS if e in events)
        ext.id = str(uuid.uuid4())
        self._by_id[ext.id] = ext
        self.any_registered = True
        m = self.metadata
        answer: dict[str, str] = {
            "functionName": m.function_name,
            "functionVersion": m.function_version,
            "handler": m.handler,
        }
        if features and "accountId" in (f.strip() for f in features.split(",")):
            answer = {"accountId": m.account_id, **answer}
        self._changed()
        return _reply(
            b"200 OK", json.dumps(answer).encode(), b"Lambda-Extension-Identifier: %s\r\n" % ext.id.encode()
        )

    @staticmethod
    def _parse_register(body: bytes) -> list[str] | bytes:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _forbidden("InvalidRequestFormat", str(exc).split(":")[0])
        except RecursionError:  # nested deeper than the parser goes: no register body is
            return _forbidden("InvalidRequestFormat", "json: exceeded max depth")
        if not isinstance(doc, dict):
            return _forbidden("InvalidRequestFormat", "json: cannot unmarshal into a register request")
        if doc.get("configurationKeys"):
            return _forbidden(
                "InvalidRequestFormat", "configurationKeys are deprecated; use environment variables instead"
            )
        events = doc.get("events")
        if events is None:
            return []
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            return _forbidden("InvalidRequestFormat", "json: cannot unmarshal events into []core.Event")
        for event in events:
            if event not in _EVENTS:
                return _forbidden("Extension.InvalidEventType", f"{event[:64]}: ErrorInvalidEventType")
        return events

    def find(self, identifier: str | None) -> Extension | bytes:
        """The registered extension ``identifier`` names, or the 403 answer AWS gives."""
        if not identifier:
            return _forbidden(
                "Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header"
            )
        try:
            key = str(uuid.UUID(identifier))
        except ValueError:
            return _forbidden("Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier")
        ext = self._by_id.get(key)
        if ext is None:
            return _forbidden("Extension.UnknownExtensionIdentifier", f"Unknown extension {key}")
        return ext

    def next(self, identifier: str | None, waiter: Waiter) -> bytes | None:
        """``GET /extension/event/next``: None parks it on ``waiter`` until an event comes."""
        found = self.find(identifier)
        if isinstance(found, bytes):
            return found
        ext = found
        state = ext.state
        if state is ExtensionState.READY:
            if ext.waiter is not None and ext.waiter.alive:
                return _transition(ext, ExtensionState.READY, ext.id)  # two long polls at once
        elif state in (ExtensionState.REGISTERED, ExtensionState.RUNNING):
            ext.state = ExtensionState.READY
        else:
            return _transition(ext, ExtensionState.READY, ext.id)
        queued = ext.queued
        if queued is not None:
            ext.queued = None
            ext.state = ExtensionState.RUNNING
            self._changed()
            return queued
        ext.waiter = waiter
        self._changed()
        return None

    def error(self, identifier: str | None, error_type: str | None, *, init: bool) -> bytes:
        """``POST /extension/init/error`` (``init``) or ``/extension/exit/error``."""
        found = self.find(identifier)
        if isinstance(found, bytes):
            return found
        ext = found
        if not error_type:
            return _forbidden("Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found")
        target = ExtensionState.INIT_ERROR if init else ExtensionState.EXIT_ERROR
        if ext.state is target:
            return _ACCEPTED  # again: only the first error counts
        allowed = (
            (ExtensionState.REGISTERED,)
            if init
            else (ExtensionState.REGISTERED, ExtensionState.READY, ExtensionState.RUNNING)
        )
        if ext.state not in allowed:
            return _transition(ext, target, ext.id)
        ext.state = target
        ext.error_type = "".join(c if _printable(c) else "?" for c in error_type[:256])
        ext.waiter = None
        ext.queued = None
        self._changed()
        return _ACCEPTED

    # -- internals -------------------------------------------------------------------------------

    def _broadcast(self, event: str, body: bytes) -> int:
        response = _reply(
            b"200 OK", body, b"Lambda-Extension-Event-Identifier: %s\r\n" % str(uuid.uuid4()).encode()
        )
        count = 0
        for ext in self._by_name.values():
            if not ext.subscribed(event) or ext.state not in _RECEIVING[event]:
                continue
            count += 1
            waiter, ext.waiter = ext.waiter, None
            if ext.state is ExtensionState.READY and waiter is not None and waiter.alive:
                ext.state = ExtensionState.RUNNING
                waiter.send(response)
            else:
                # Not (yet) waiting: the event is its answer to its next call.
                ext.queued = response
                if ext.state is ExtensionState.READY:
                    # it counts as busy until it asks for the event and is done with it
                    ext.state = ExtensionState.RUNNING
        return count

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
