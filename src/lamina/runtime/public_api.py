"""lamina's API where a VPC or the default network reaches it: its public addresses (in the edge
and default-network namespaces) and its VPC endpoints (an S3 gateway endpoint in a VPC's router,
an interface endpoint's network interface), each a listening socket the server makes inside that
namespace (a socket stays in the namespace it was made in) relaying to the API on the host's
loopback, with TLS terminated by the relay (:class:`lamina.runtime.proxy.EndpointRelay`).

The data plane (``net.manager``, on its worker thread) says where to listen with :meth:`PublicApi.set`,
per owner (``public`` for the public addresses, one owner per VPC): the sockets are made on the
calling thread, the relays run on the server's event loop. Connections are capped per source
address: everything of one NAT gateway arrives as its Elastic IP, everything of one environment
of the default network as its own link address.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from lamina.domain.endpoints import EndpointOrigin, endpoint_urls
from lamina.linux import NetNamespace, NetNamespaceError
from lamina.runtime.proxy import EndpointRelay

log = logging.getLogger("lamina.runtime")

#: Connections one source address may hold open through one listener at once.
MAX_PER_SOURCE = 256
#: Where the relays' connections to the API come from (one address per listener).
SOURCE_BLOCK = IPv4Network("127.100.0.0/16")


def relayed(client: str) -> bool:
    """Whether the API's peer ``client`` is one of lamina's relays (a function, a VPC reaching
    the API), though it is an address of the host's loopback."""
    try:
        return IPv4Address(client) in SOURCE_BLOCK
    except ValueError:
        return False


@dataclass(frozen=True)
class Listener:
    """Where to listen: an address and port inside a namespace (``transparent`` when the address
    is only routed there, not one of the namespace's: see ``NetNamespace.listen_tcp``)."""

    ns: NetNamespace = field(compare=False)
    address: IPv4Address
    port: int
    transparent: bool = False
    ns_id: int = 0  # the namespace object's identity: the same address in a new namespace is new
    # The VPC endpoints behind this listener (None: lamina's public addresses).
    origin: EndpointOrigin | None = field(default=None, compare=False)

    @classmethod
    def at(
        cls,
        ns: NetNamespace,
        address: IPv4Address,
        port: int,
        *,
        transparent: bool = False,
        origin: EndpointOrigin | None = None,
    ) -> Listener:
        return cls(ns, address, port, transparent, id(ns), origin)


class PublicApi:
    """Listeners relaying to the API on ``target_port``; thread-safe :meth:`set`."""

    def __init__(
        self,
        target_port: int,
        tls: ssl.SSLContext | None,
        *,
        max_per_source: int = MAX_PER_SOURCE,
        target_tls: bool = False,
        owner_caps: Mapping[str, int] | None = None,
    ) -> None:
        """``target_tls``: the API on ``target_port`` serves HTTPS (``--tls-cert``): the relays
        speak TLS to it (the server's own loopback port: its certificate is not checked).
        ``owner_caps``: another per-source cap for some owners' listeners (where a source is one
        environment, not a NAT gateway or interface many share)."""
        self._caps = dict(owner_caps or {})
        self._target = target_port
        self._tls = tls
        self._upstream: ssl.SSLContext | None = None
        if target_tls:
            self._upstream = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._upstream.check_hostname = False
            self._upstream.verify_mode = ssl.CERT_NONE
        self._max = max_per_source
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        # owner -> listener -> its relay (the namespace object is held by the Listener: its id
        # cannot be reused while it is here)
        self._relays: dict[str, dict[Listener, EndpointRelay]] = {}
        # Each listener's relays reach the API from a loopback address of their own (from
        # SOURCE_BLOCK), by which the API knows which endpoints a request came through.
        self._sources: dict[Listener, str] = {}
        self._origins: dict[str, EndpointOrigin] = {}
        self._free = (str(a) for a in SOURCE_BLOCK.hosts())
        self._released: list[str] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            self._loop = loop
            pending = [r for relays in self._relays.values() for r in relays.values()]
        for relay in pending:
            await relay.start()

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            relays = [r for relays in self._relays.values() for r in relays.values()]
            self._relays.clear()
            self._loop = None
        for relay in relays:
            await relay.close()

    def set(self, owner: str, listeners: Sequence[Listener]) -> None:
        """Make ``owner``'s listeners exactly ``listeners`` (from any thread but the loop's)."""
        with self._lock:
            if self._closed:
                return
            current = self._relays.setdefault(owner, {})
            wanted = {listener for listener in listeners if not listener.ns.closed}
            gone = []
            for k in [k for k in current if k not in wanted]:
                gone.append(current.pop(k))
                self._release(k)
            for listener in wanted & set(current):  # the same listener: its endpoints may change
                self._set_origin(self._sources[listener], listener.origin)
            new: list[EndpointRelay] = []
            for listener in wanted - set(current):
                try:
                    sock = listener.ns.listen_tcp(
                        str(listener.address), listener.port, backlog=512, transparent=listener.transparent
                    )
                except NetNamespaceError as exc:
                    log.warning("the API at %s:%d (%s): %s", listener.address, listener.port, owner, exc)
                    continue
                source = self._released.pop() if self._released else next(self._free)
                self._sources[listener] = source
                self._set_origin(source, listener.origin)
                relay = EndpointRelay(
                    sock,
                    self._target,
                    max_connections=self._caps.get(owner, self._max),
                    per_source=True,
                    tls=self._tls,
                    upstream=self._upstream,
                    source_address=source,
                )
                current[listener] = relay
                new.append(relay)
            if not current:
                del self._relays[owner]
            loop = self._loop
        if loop is None:
            for relay in gone:
                relay.discard()
            return  # started by start()
        for relay in new:
            asyncio.run_coroutine_threadsafe(relay.start(), loop)
        for relay in gone:
            asyncio.run_coroutine_threadsafe(relay.close(), loop)

    def _set_origin(self, source: str, origin: EndpointOrigin | None) -> None:
        if origin is None:
            self._origins.pop(source, None)
        else:
            self._origins[source] = origin

    def _release(self, listener: Listener) -> None:
        source = self._sources.pop(listener, None)
        if source is not None:
            self._origins.pop(source, None)
            self._released.append(source)

    def origin(self, client: str) -> EndpointOrigin | None:
        """The VPC endpoints a request from ``client`` (the API's peer address) came through, or
        None (not through an endpoint, or not through lamina's relays at all)."""
        return self._origins.get(client)

    def listening(self) -> list[tuple[str, IPv4Address, int]]:
        """(owner, address, port) of every listener."""
        with self._lock:
            return sorted((o, k.address, k.port) for o, relays in self._relays.items() for k in relays)


#: Where a function finds lamina's CA certificate (a read-only bind of ``<data_dir>/tls/ca.pem``).
CA_BUNDLE_IN_SANDBOX = "/var/lamina/ca.pem"


@dataclass(frozen=True)
class ApiAccess:
    """How functions with a data plane name lamina: at its public addresses (or, with a resolver,
    its names) on port 443, over TLS with ``ca`` (None: plain HTTP on port 443)."""

    ca: Path | None
    by_name: bool = False

    def env(self, region: str) -> dict[str, str]:
        """``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>`` and ``AWS_CA_BUNDLE``."""
        urls = endpoint_urls(region, by_name=self.by_name)
        if self.ca is None:
            urls = {k: v.replace("https://", "http://") + ":443" for k, v in urls.items()}
        else:
            urls["AWS_CA_BUNDLE"] = CA_BUNDLE_IN_SANDBOX
        return urls
