"""The server's settings: one frozen value, declared once, read from flags, environment and defaults.

Every server option is a field of :class:`Settings` with its flag, environment variable, default and
help text beside it; ``lamina server --help`` and the README's table are made from these fields, and
the composition root (:mod:`lamina.server`) takes nothing else. Precedence, as usual for daemons: a
flag given on the command line, else the environment variable, else the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from lamina.api.ratelimit import RateLimit
from lamina.domain import nodes
from lamina.domain.accounts import DEFAULT_ACCOUNT, Account
from lamina.domain.dataplane import LINK_BLOCK
from lamina.domain.overlay import valid_node_address
from lamina.errors import LaminaError
from lamina.net.dns import Upstream
from lamina.net.uplink import UplinkKind, UplinkSpec
from lamina.runtime.catalog import RuntimeSource
from lamina.runtime.host_ids import DEFAULT_RANGE, HostIdRange
from lamina.runtime.images import DEFAULT_REGISTRY, parse_registry
from lamina.runtime.sizing import CpuLimit
from lamina.store.inline_blobs import INLINE_LIMIT, INLINE_MAX
from lamina.store.remote_blobs import DELETE_GRACE_S, BlobStoreUrl, parse_endpoint

LOG_LEVELS = ("debug", "info", "warning", "error")

#: Per principal: sustained 100 requests per second, bursts of 1,000. Generous next to AWS's own
#: control-plane rates (Lambda's is 15 to 100 per second per account and API), so that no honest
#: client meets it, while one tenant's loop cannot take the API from the others.
DEFAULT_API_RATE_LIMIT = RateLimit(100.0, 1000)


def default_data_dir() -> Path:
    """``/var/lib/lamina`` as root, else ``~/.local/share/lamina``."""
    if os.geteuid() == 0:
        return Path("/var/lib/lamina")
    return Path.home() / ".local" / "share" / "lamina"


def default_runtimes_dir() -> Path:
    """The runtimes ``make setup`` installs beside the Python environment lamina runs from."""
    return Path(sys.prefix) / "lamina-runtimes"


def parse_public_ip_pool(text: str) -> IPv4Network:
    """An IPv4 block Elastic IPs can come from; ``ValueError`` says why not."""
    try:
        pool = IPv4Network(text)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 block: {exc}") from None
    if pool.prefixlen > 30:
        raise ValueError(f"{pool} holds no address to allocate (at most /30)")
    if pool.overlaps(LINK_BLOCK):
        raise ValueError(f"{pool} overlaps {LINK_BLOCK}, lamina's own links")
    return pool


def parse_dns_upstreams(text: str) -> tuple[Upstream, ...]:
    """``IP[:PORT][,IP[:PORT]...]``, or ``none`` (public names are not resolved)."""
    if text == "none":
        return ()
    return tuple(Upstream.parse(part.strip()) for part in text.split(",") if part.strip())


def parse_egress_block(text: str) -> IPv4Network:
    """A destination block functions may reach through the uplink although it is private."""
    try:
        return IPv4Network(text)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 block: {exc}") from None


def parse_database(text: str) -> str:
    """A ``postgresql://`` (or ``postgres://``) URL, or the path of a SQLite file."""
    if not text:
        raise ValueError("expected a postgresql:// URL or a file path, got nothing")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme and scheme not in ("postgresql", "postgres"):
        raise ValueError(f"expected a postgresql:// URL or a file path, got a {scheme}:// URL")
    return text


def parse_region(text: str) -> str:
    """A region name such as ``us-east-1`` (letters, digits and hyphens)."""
    if not text or len(text) > 64 or not all(c.isascii() and (c.isalnum() or c == "-") for c in text):
        raise ValueError(f"expected a region name such as us-east-1, got {text!r}")
    return text


def parse_switch(text: str) -> bool:
    """``on``/``off`` (also ``true``/``false``, ``yes``/``no``, ``1``/``0``)."""
    value = {
        "on": True,
        "true": True,
        "yes": True,
        "1": True,
        "off": False,
        "false": False,
        "no": False,
        "0": False,
    }
    if text.lower() not in value:
        raise ValueError(f"expected on or off, got {text!r}")
    return value[text.lower()]


def parse_node_name(text: str) -> str:
    """A node name: 1-64 letters, digits, ``.``, ``-`` or ``_``."""
    return nodes.check_name(text)


def parse_advertise_url(text: str) -> str:
    """``http(s)://HOST:PORT``: where the other nodes reach this one."""
    return nodes.check_url(text)


def parse_node_address(text: str) -> IPv4Address:
    """A unicast IPv4 address (not loopback, link-local or multicast)."""
    try:
        address = IPv4Address(text)
    except ValueError:
        raise ValueError(f"expected an IPv4 address, got {text!r}") from None
    if not valid_node_address(address):
        raise ValueError(f"{text} cannot be a node's address (loopback, link-local, multicast or reserved)")
    return address


def parse_log_level(text: str) -> str:
    if text not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return text


def _non_negative(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"must be a non-negative number, got {text!r}")
        return value

    return parse


def parse_inline_max(text: str) -> int:
    value = int(text)
    if not 0 <= value <= INLINE_LIMIT:
        raise ValueError(f"must be from 0 to {INLINE_LIMIT} bytes, got {text!r}")
    return value


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"must be a positive number, got {text!r}")
        return value

    return parse


def parse_port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"must be a port number from 0 to 65535, got {text!r}")
    return port


def _option(
    flag: str, env: str, help: str, parse: Callable[[str], Any], default: Any = None, **kw: Any
) -> Any:
    """A settings field: where it comes from and how it is read."""
    meta = {"flag": flag, "env": env, "help": help, "parse": parse, "repeat": kw.get("repeat", False)}
    if "default_factory" in kw:
        return field(default_factory=kw["default_factory"], metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Everything ``lamina server`` can be told. Build with :meth:`from_sources` (flags, environment,
    defaults) or directly (tests, benchmarks); the fields are the whole configuration."""

    host: str = _option("--host", "LAMINA_HOST", "address to bind", str, "127.0.0.1")
    port: int = _option("--port", "LAMINA_PORT", "port to bind, 0 for any free port", parse_port, 4566)
    tls_cert: Path | None = _option(
        "--tls-cert",
        "LAMINA_TLS_CERT",
        "PEM certificate (chain) to serve HTTPS with, instead of HTTP; needs --tls-key",
        Path,
    )
    tls_key: Path | None = _option("--tls-key", "LAMINA_TLS_KEY", "PEM private key of --tls-cert", Path)
    data_dir: Path = _option(
        "--data-dir",
        "LAMINA_DATA_DIR",
        "state directory (default /var/lib/lamina as root, else ~/.local/share/lamina)",
        Path,
        default_factory=default_data_dir,
    )
    database: str | None = _option(
        "--database",
        "LAMINA_DATABASE",
        "the metadata database: a postgresql:// URL (several nodes share it; docs/database.md) or a "
        "SQLite file (default: lamina.db in the data directory)",
        parse_database,
    )
    blob_store: BlobStoreUrl | None = _option(
        "--blob-store",
        "LAMINA_BLOB_STORE",
        "s3://BUCKET[/PREFIX]: keep blobs (code, layers, S3 objects' bodies) in an S3-compatible store, "
        "the data directory's blobs/ being this node's cache of them (docs/blobs.md). Default: the "
        "data directory only",
        BlobStoreUrl.parse,
    )
    blob_endpoint: str | None = _option(
        "--blob-endpoint",
        "LAMINA_BLOB_ENDPOINT",
        "http(s) URL of --blob-store's S3 endpoint (MinIO, Ceph RGW, ...; default: AWS's). Credentials "
        "come from AWS's usual chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws",
        parse_endpoint,
    )
    blob_region: str | None = _option(
        "--blob-region",
        "LAMINA_BLOB_REGION",
        "region --blob-store's requests are signed for (default: AWS_DEFAULT_REGION, the profile's, else us-east-1)",
        parse_region,
    )
    blob_delete_grace: float = _option(
        "--blob-delete-grace",
        "LAMINA_BLOB_DELETE_GRACE",
        "seconds an object of --blob-store that nothing refers to any more stays before a sweep "
        "deletes it (docs/blobs.md)",
        _non_negative(float),
        DELETE_GRACE_S,
    )
    blob_inline_max: int = _option(
        "--blob-inline-max",
        "LAMINA_BLOB_INLINE_MAX",
        "zips sent in requests smaller than this many bytes are kept in the database, not uploaded "
        "to --blob-store (0: none; docs/blobs.md)",
        parse_inline_max,
        INLINE_MAX,
    )
    accounts_file: Path | None = _option(
        "--accounts",
        "LAMINA_ACCOUNTS",
        "JSON accounts file (default: account 000000000000 with access key 'test' and secret 'test')",
        Path,
    )
    runtimes_dir: Path = _option(
        "--runtimes-dir",
        "LAMINA_RUNTIMES_DIR",
        "installed language runtimes (default: lamina-runtimes in the Python environment lamina runs "
        "from, filled by make setup)",
        Path,
        default_factory=default_runtimes_dir,
    )
    runtime_source: RuntimeSource = _option(
        "--runtime-source",
        "LAMINA_RUNTIME_SOURCE",
        "where environments' userland comes from: auto (AWS's image of the runtime when `lamina runtime "
        "pull` installed one, else the host's), images (AWS's images only) or host (never images)",
        RuntimeSource.parse,
        RuntimeSource.AUTO,
    )
    image_registry: str = _option(
        "--image-registry",
        "LAMINA_IMAGE_REGISTRY",
        "the OCI registry AWS's Lambda base images are pulled from (lamina runtime pull), an http(s) URL",
        parse_registry,
        DEFAULT_REGISTRY,
    )
    max_environments: int = _option(
        "--max-environments",
        "LAMINA_MAX_ENVIRONMENTS",
        "most execution environments at once",
        _non_negative(int),
        32,
    )
    node_name: str | None = _option(
        "--node-name",
        "LAMINA_NODE_NAME",
        "this node's name among the nodes sharing the database (docs/nodes.md; default: the host name)",
        parse_node_name,
    )
    advertise_url: str | None = _option(
        "--advertise-url",
        "LAMINA_ADVERTISE_URL",
        "the URL other nodes reach this node's API at, http(s)://HOST:PORT (default: the server's own "
        "URL, its --host, or the host name when that is a wildcard, and --port)",
        parse_advertise_url,
    )
    node_address: IPv4Address | None = _option(
        "--node-address",
        "LAMINA_NODE_ADDRESS",
        "this node's IPv4 address on the network between the nodes, where VPCs' VXLAN tunnels end "
        "(docs/overlay.md; default: the --advertise-url host when it is such an address, else VPCs "
        "stay on the node that builds them)",
        parse_node_address,
    )
    heartbeat_interval_s: float = _option(
        "--heartbeat-interval",
        "LAMINA_HEARTBEAT_INTERVAL",
        "seconds between this node's heartbeats in the node registry; a node that misses 3 is dead",
        _positive(float),
        5.0,
    )
    zygotes: bool = _option(
        "--zygotes",
        "LAMINA_ZYGOTES",
        "on: a Python function's cold start forks a zygote that has started the interpreter and imported "
        "the runtime (docs/zygotes.md); off (or --no-zygotes): every cold start starts the interpreter",
        parse_switch,
        True,
    )
    idle_timeout_s: float = _option(
        "--idle-timeout",
        "LAMINA_IDLE_TIMEOUT",
        "seconds before an idle execution environment is reclaimed",
        _non_negative(float),
        600.0,
    )
    cpu_limit: CpuLimit = _option(
        "--cpu-limit",
        "LAMINA_CPU_LIMIT",
        "none (an environment's CPU weight is proportional to its MemorySize, 1,769 MB = one vCPU) or "
        "aws (also a hard quota of MemorySize/1769 vCPUs, as Lambda throttles)",
        CpuLimit.parse,
        CpuLimit.NONE,
    )
    uid_range: HostIdRange = _option(
        "--uid-range",
        "LAMINA_UID_RANGE",
        "host uids (and gids) execution environments run as, FIRST-LAST: one of its own for each "
        "environment, mapped to the function's uid 993 (gid 990) inside; no user or group of this host "
        f"may have one (default {DEFAULT_RANGE}, a block systemd leaves unused)",
        HostIdRange.parse,
        DEFAULT_RANGE,
    )
    test_init_timeout_s: float = _option(
        "--test-init-timeout",
        "LAMINA_TEST_INIT_TIMEOUT",
        "for tests only: seconds an on-demand Init may take instead of AWS's 10 (a lower value makes "
        "Init timeouts quick to test; provisioned Init keeps its 130 s)",
        _positive(float),
        10.0,
    )
    event_retry_delay_s: float = _option(
        "--event-retry-delay",
        "LAMINA_EVENT_RETRY_DELAY",
        "seconds before the first retry of a failed Event invocation; the second waits twice that",
        _non_negative(float),
        60.0,
    )
    eni_release_delay_s: float = _option(
        "--eni-release-delay",
        "LAMINA_ENI_RELEASE_DELAY",
        "seconds before a Hyperplane network interface no function uses is deleted (0 = at once)",
        _non_negative(float),
        30.0,
    )
    vpc_idle_reclaim_s: float = _option(
        "--vpc-idle-reclaim",
        "LAMINA_VPC_IDLE_RECLAIM",
        "seconds without invocations after which a VPC function loses its interfaces and goes Inactive "
        "(default 14 days)",
        _non_negative(float),
        14 * 24 * 3600.0,
    )
    uplink: UplinkSpec = _option(
        "--uplink",
        "LAMINA_UPLINK",
        "the internet for NAT gateways, internet gateways and functions without a VPC: host (the host's "
        "network; lamina adds one link and its own nftables table there), netns:NAME (a namespace made "
        "with ip netns add NAME standing for the internet, as in tests) or none (no way out)",
        UplinkSpec.parse,
        UplinkSpec(UplinkKind.HOST),
    )
    public_ip_pool: IPv4Network = _option(
        "--public-ip-pool",
        "LAMINA_PUBLIC_IP_POOL",
        "IPv4 block Elastic IPs are allocated from",
        parse_public_ip_pool,
        IPv4Network("203.0.113.0/24"),
    )
    network_acl_rule_limit: int = _option(
        "--network-acl-rule-limit",
        "LAMINA_NETWORK_ACL_RULE_LIMIT",
        "rules per direction a network ACL may have (AWS's quota: 20 by default, raised on request)",
        _positive(int),
        20,
    )
    dns_upstream: tuple[Upstream, ...] | None = _option(
        "--dns-upstream",
        "LAMINA_DNS_UPSTREAM",
        "resolvers the VPCs' DNS server forwards public names to, IP[:PORT][,IP[:PORT]...], asked from "
        "the server's own network; none: public names do not resolve (default: the nameservers of "
        "the host's /etc/resolv.conf)",
        parse_dns_upstreams,
    )
    allow_egress_to: tuple[IPv4Network, ...] = _option(
        "--allow-egress-to",
        "LAMINA_ALLOW_EGRESS_TO",
        "a destination block functions and NAT gateways may reach through the uplink although it is "
        "private (RFC 1918, 100.64.0.0/10, 169.254.0.0/16, loopback) or, with --uplink host, the host's "
        "own; repeat the flag for more (the variable: comma-separated). Default: none",
        parse_egress_block,
        (),
        repeat=True,
    )
    api_rate_limit: RateLimit = _option(
        "--api-rate-limit",
        "LAMINA_API_RATE_LIMIT",
        "API requests per second each principal may make, as RATE or RATE/BURST (a token bucket of "
        "BURST tokens refilled at RATE per second), or off; over it, each service's throttling error "
        f"(default {DEFAULT_API_RATE_LIMIT})",
        RateLimit.parse,
        DEFAULT_API_RATE_LIMIT,
    )
    header_timeout_s: float = _option(
        "--header-timeout",
        "LAMINA_HEADER_TIMEOUT",
        "seconds a client has to send a request's line and headers (a new connection as long for its "
        "first), and a body's first period (then one more second per 500 bytes received); then 408 and "
        "the connection is closed",
        _positive(float),
        20.0,
    )
    log_level: str = _option(
        "--log-level", "LAMINA_LOG_LEVEL", f"one of {', '.join(LOG_LEVELS)}", parse_log_level, "info"
    )
    # Not options: the accounts read from ``accounts_file`` (see cli), and the API worker threads.
    accounts: tuple[Account, ...] = (DEFAULT_ACCOUNT,)

    @classmethod
    def options(cls) -> list[dataclasses.Field[Any]]:
        """The fields that are server options (flag + environment variable)."""
        return [f for f in dataclasses.fields(cls) if "flag" in f.metadata]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One argparse option per settings field; unset flags stay None so the environment and
        the default can apply (:meth:`from_sources`)."""
        for f in cls.options():
            parse = f.metadata["parse"]
            parser.add_argument(
                f.metadata["flag"],
                dest=f.name,
                type=_argtype(parse),
                default=None,
                action="append" if f.metadata["repeat"] else "store",
                metavar=f.name.upper().removesuffix("_S"),
                help=f"{f.metadata['help']} (env {f.metadata['env']}{_default_text(f)})",
            )

    @classmethod
    def from_sources(
        cls, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None, **extra: Any
    ) -> Settings:
        """Flags over environment over defaults. A bad environment value raises ``SettingsError``
        naming the variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in cls.options():
            given = getattr(args, f.name, None) if args is not None else None
            if f.metadata["repeat"] and given is not None:
                given = tuple(g for g in given if g is not None) or None
            if given is not None:
                values[f.name] = given
                continue
            text = environ.get(f.metadata["env"])
            if text is None or text == "":
                continue
            try:
                if f.metadata["repeat"]:
                    values[f.name] = tuple(
                        f.metadata["parse"](t.strip()) for t in text.split(",") if t.strip()
                    )
                else:
                    values[f.name] = f.metadata["parse"](text)
            except ValueError as exc:
                raise SettingsError(f"{f.metadata['env']}={text!r}: {exc}") from None
        values.update(extra)
        return cls(**values)

    def describe(self) -> Sequence[tuple[str, str]]:
        """(flag, value) pairs, for a startup log line or a diagnosis."""
        return [(f.metadata["flag"], str(getattr(self, f.name))) for f in self.options()]


class SettingsError(LaminaError, ValueError):
    """A setting's value cannot be used; the message names the setting."""


def _argtype(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        if text == "":
            return None  # an empty flag is no flag, as an empty variable is none
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _default_text(f: dataclasses.Field[Any]) -> str:
    """``; default X`` for a plain default (a computed one is described in the help itself)."""
    if (
        f.default_factory is not dataclasses.MISSING
        or f.default is None
        or f.default == ()
        or "default" in f.metadata["help"]
    ):
        return ""
    value = f.default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"; default {value}"
