"""The composition root: one :class:`~lamina.settings.Settings` in, the whole server out.

Every part is constructed here, once, and handed to its users by constructor; every background
worker is handed to the :class:`~lamina.supervisor.Supervisor`, which the ASGI lifespan starts and
stops. Nothing else in lamina builds a store, a pool or a thread.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session

from lamina.api.app import Downloads, LaminaApp
from lamina.api.auth import Credentials
from lamina.api.nodes import NodeEndpoint
from lamina.api.pipeline import Authorizer, Pipeline
from lamina.console.backend import Console
from lamina.domain import endpoints as endpoint_names
from lamina.domain.functions import FunctionRef
from lamina.domain.nodes import MAX_NODE_NAME
from lamina.domain.overlay import OverlayError, RemoteInterface, valid_node_address
from lamina.domain.presign import UrlSigner
from lamina.domain.s3 import REGIONS
from lamina.errors import AwsError
from lamina.linux import NetNamespace, affinity
from lamina.linux.fdlimit import install_accept_failure_filter, raise_nofile_limit
from lamina.net.attach import attach
from lamina.net.commands import DataplaneError, tool
from lamina.net.dns import host_upstreams
from lamina.net.manager import DEFAULT_NETWORK_OWNER, ApiPlaces, DataplaneManager, ExtraRecords
from lamina.net.overlay import Overlay
from lamina.net.uplink import host_holds
from lamina.runtime import tls
from lamina.runtime.catalog import RuntimeCatalog
from lamina.runtime.images import ImageStore
from lamina.runtime.pool import EnvironmentPool
from lamina.runtime.proxy import MAX_RELAY_CONNECTIONS
from lamina.runtime.public_api import ApiAccess, Listener, PublicApi, relayed
from lamina.runtime.sizing import CgroupPolicy, cgroup_parent
from lamina.runtime.target import NetworkAttachment
from lamina.services import ec2, iam, lambda_, s3, sts
from lamina.services import logs as cloudwatch_logs
from lamina.services.base import ServiceBinding
from lamina.services.cluster import SECRET_SETTING, Cluster
from lamina.services.ec2 import endpoint_names as endpoint_dns
from lamina.services.ec2.vpc_run import VpcRunFront
from lamina.services.iam.authorizer import IamAuthorizer, IamLookups, trust_policies
from lamina.services.iam.handlers import provision_user
from lamina.services.lambda_ import resource_policies as lambda_resource_policies
from lamina.services.lambda_ import tags as lambda_tags
from lamina.services.lambda_.concurrency import InvocationLimits, SharedSlots
from lamina.services.lambda_.function_logs import FunctionLogs
from lamina.services.lambda_.invoke import EventQueue
from lamina.services.lambda_.prepare import Preparer
from lamina.services.lambda_.provisioned import Provisioner
from lamina.services.lambda_.roles import RoleSessions, role_allows
from lamina.services.lambda_.url_endpoint import UrlEndpoint
from lamina.services.lambda_.vpc import Hyperplane
from lamina.services.platform import Platform
from lamina.services.vpc_nodes import VpcNodes
from lamina.settings import Settings
from lamina.store import (
    BlobStore,
    CodeSigningStore,
    ConcurrencyStore,
    Database,
    Ec2Store,
    EventStore,
    FunctionSettingsStore,
    FunctionStore,
    HyperplaneStore,
    IamStore,
    LayerStore,
    ProvisionedStore,
    S3Store,
    TreeStore,
    open_data_dir,
    open_database,
)
from lamina.store.blob_deletes import BlobDeletes
from lamina.store.concurrency import ConcurrencySlots
from lamina.store.console_sessions import ConsoleDownloadStore, ConsoleSessionStore
from lamina.store.logs import LogGroupStore
from lamina.store.nodes import NodeStore
from lamina.store.overlay import HomeStore, VniStore
from lamina.store.remote_blobs import CachedBlobStore, ObjectStore
from lamina.store.urls import FunctionUrlStore
from lamina.supervisor import Hooks, IoExecutor, Supervisor, ThreadedWorker

log = logging.getLogger("lamina.server")


def api_workers(max_environments: int) -> int:
    """Threads of the I/O executor: invocations wait on the loop, not in it, but every API call,
    store access and file read from the loop takes one while it runs; room for a burst of calls
    per core plus one per environment (each may be calling back into the API)."""
    return max(8, (os.cpu_count() or 2) * 4) + max_environments


@dataclass(frozen=True)
class Server:
    """The assembled server: the ASGI app and what a test or the CLI may want to look at."""

    app: LaminaApp
    platform: Platform
    supervisor: Supervisor


def attach_environment(
    platform: Platform, env_ns: NetNamespace, eni: NetNamespace | RemoteInterface
) -> NetworkAttachment:
    """The pool's attacher: a local interface namespace directly, a remote one through its VPC's
    home node (services/vpc_nodes.py)."""
    if platform.vpc_nodes is not None:
        return platform.vpc_nodes.attach(env_ns, eni)
    if isinstance(eni, NetNamespace):
        return attach(env_ns, eni)
    raise DataplaneError(f"the interface {eni.eni_id} is not built on this node")


def node_address(settings: Settings, url: str) -> IPv4Address | None:
    """This node's underlay address: ``--node-address``, else its advertised URL's host when that
    is a unicast IPv4 address (not loopback); None: no VPC overlay."""
    if settings.node_address is not None:
        return settings.node_address
    try:
        address = IPv4Address(urlsplit(url).hostname or "")
    except ValueError:
        return None
    return address if valid_node_address(address) else None


def vpc_nodes_for(
    settings: Settings, db: Database, ec2: Ec2Store, cluster: Cluster, dataplane: DataplaneManager | None
) -> VpcNodes | None:
    """VPCs across nodes, when this node has a data plane and an underlay address."""
    address = node_address(settings, cluster.url)
    if dataplane is None or address is None:
        return None
    try:
        overlay = Overlay(address)
    except (OverlayError, OSError) as exc:
        logging.getLogger("lamina.net").warning("no VPC overlay: %s", exc)
        return None
    return VpcNodes(cluster, dataplane, ec2, HyperplaneStore(db), HomeStore(db), VniStore(db), overlay)


def default_node_name() -> str:
    """The host's name, cut to a node name's length and alphabet."""
    name = "".join(c if c.isascii() and (c.isalnum() or c in ".-_") else "-" for c in socket.gethostname())
    return name[:MAX_NODE_NAME] or "lamina"


def own_url(settings: Settings) -> str:
    """The server's own URL as other nodes reach it: its address (the host's name when it listens
    on every address) and port."""
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"{'https' if settings.tls_cert is not None else 'http'}://{host}:{settings.port}"


def on_this_host(client: str) -> bool:
    """Whether the API's peer ``client`` runs on the server's host (``lamina vpc run`` may be told
    host paths): a loopback or local address, and not one of lamina's relays, through which
    functions reach the API."""
    return host_holds(client) and not relayed(client)


def public_api_for(data_dir: Path, port: int, target_tls: bool = False) -> tuple[PublicApi, ApiAccess]:
    """lamina's API as VPCs and the default network reach it (``runtime.public_api``): over TLS
    with lamina's own CA (made in ``<data_dir>/tls`` at first start), or, when ``openssl`` cannot
    make it, plain HTTP on port 443 (said in the log)."""
    names, addresses = endpoint_names.certificate_names(REGIONS)
    context: ssl.SSLContext | None = None
    ca: Path | None = None
    try:
        files = tls.ensure(data_dir / "tls", names, addresses)
        context, ca = files.server_context(), files.ca
    except (tls.TlsError, OSError, ssl.SSLError) as exc:
        logging.getLogger("lamina.net").warning("the public API serves plain HTTP on port 443: %s", exc)
    # Each environment of the default network is a source of its own: the in-sandbox relay's cap.
    caps = {DEFAULT_NETWORK_OWNER: MAX_RELAY_CONNECTIONS}
    return PublicApi(port, context, target_tls=target_tls, owner_caps=caps), ApiAccess(ca)


def dataplane_for_host(
    ec2_store: Ec2Store,
    state_dir: Path,
    settings: Settings,
    extra_records: ExtraRecords | None = None,
    public_api: PublicApi | None = None,
) -> DataplaneManager | None:
    """The VPC data plane when this process may build it (root, iproute2 and nftables), else None,
    saying why. ``extra_records``: names the VPCs' DNS server answers besides the interfaces'
    private names (``net.manager.ExtraRecords``)."""
    why = None
    if os.geteuid() != 0:
        why = "not running as root"
    else:
        try:
            tool("ip")
            tool("nft")
        except DataplaneError as exc:
            why = str(exc)
    if why is None:
        try:
            upstreams = settings.dns_upstream
            listeners = None
            if public_api is not None:
                api = public_api

                def listeners(owner: str, places: ApiPlaces) -> None:
                    api.set(
                        owner,
                        [
                            Listener.at(ns, a, endpoint_names.API_PORT, transparent=t, origin=o)
                            for ns, a, t, o in places
                        ],
                    )

            return DataplaneManager(
                ec2_store,
                state_dir,
                uplink=settings.uplink,
                public_pool=ec2_store.public_pool,
                dns_upstreams=host_upstreams() if upstreams is None else upstreams,
                extra_records=extra_records,
                allow_egress_to=settings.allow_egress_to,
                api_listeners=listeners,
            )
        except (OSError, DataplaneError) as exc:
            why = f"cannot set it up: {exc}"
    logging.getLogger("lamina.net").warning(
        "VPC data plane off (%s): VPC resources are stored but carry no traffic", why
    )
    return None


def iam_authorizer(
    platform: Platform, s3_store: S3Store | None = None, public_api: PublicApi | None = None
) -> IamAuthorizer:
    """IAM's evaluation of every request, reading what it needs from the platform's stores (and
    S3's buckets: their owners and bucket policies)."""

    def subnet_vpc(account: str, region: str, subnet_id: str) -> str | None:
        try:
            return str(platform.ec2.get_subnet(account, region, subnet_id)["VpcId"])
        except AwsError:
            return None

    return IamAuthorizer(
        platform.iam,
        lookups=IamLookups(platform.iam, subnet_vpc),
        resource_policies={
            "lambda": lambda_resource_policies.reader(platform),
            "iam": trust_policies(platform.iam),
        },
        clock=time.time,
        resource_tags={"lambda": lambda_tags.reader(platform)},
        buckets=s3.bucket_access(s3_store) if s3_store is not None else None,
        endpoint_origin=public_api.origin if public_api is not None else None,
        endpoint_policies=endpoint_dns.policies_for(platform.ec2),
    )


def blob_store(settings: Settings, root: Path, db: Database) -> BlobStore:
    """The data directory's blobs, or with ``--blob-store`` a remote store the directory caches
    (its objects' deletes deferred by ``--blob-delete-grace``, recorded in ``db``)."""
    if settings.blob_store is None:
        return BlobStore(root)
    remote = ObjectStore(settings.blob_store, settings.blob_endpoint, settings.blob_region)
    log.info(
        "blobs in %s (endpoint %s), cached in %s", settings.blob_store, settings.blob_endpoint or "AWS", root
    )
    return CachedBlobStore(
        root,
        remote,
        BlobDeletes(db),
        grace_s=settings.blob_delete_grace,
        inline_max=settings.blob_inline_max,
    )


def build(
    settings: Settings,
    *,
    authorizer: Authorizer | None = None,
    zip_checker: Callable[[Path, Sequence[str], Sequence[str]], list[dict[str, object]]] | None = None,
) -> Server:
    """Construct every part of a server from ``settings``. Opens the data directory (``OSError``
    when it cannot be used); starts nothing: the app's lifespan runs the supervisor. ``zip_checker``
    (``lamina layer check`` for a zip and runtimes, given by the cli: the builder is not the server's
    to import) backs the console's layer check."""
    data_dir = settings.data_dir
    open_data_dir(data_dir)
    # Every environment holds descriptors (relay, Runtime API, logs): take all the kernel allows,
    # and keep the log to one line a second if even that runs out.
    soft, hard = raise_nofile_limit()
    log.debug("RLIMIT_NOFILE %d (hard %d)", soft, hard)
    install_accept_failure_filter()
    io = IoExecutor(api_workers(settings.max_environments))
    db = open_database(settings.database or data_dir / "lamina.db")
    blobs = blob_store(settings, data_dir / "blobs", db)
    trees = TreeStore(data_dir / "trees", blobs)
    functions = FunctionStore(db)
    iam_store = IamStore(db)
    for account in settings.accounts:
        # An accounts-file entry whose keys belong to an IAM user: the user exists from the start.
        if account.user is not None and provision_user(
            iam_store, account.account_id, account.user, dt.datetime.now(dt.UTC)
        ):
            log.info(
                "created IAM user %s in account %s (AdministratorAccess)", account.user, account.account_id
            )
    ec2_store = Ec2Store(
        db, public_pool=settings.public_ip_pool, nacl_entry_limit=settings.network_acl_rule_limit
    )
    public_api, api_access = None, None
    if os.geteuid() == 0:
        public_api, api_access = public_api_for(data_dir, settings.port, settings.tls_cert is not None)
    # The Amazon DNS server answers lamina's own names too (its public addresses, VPC endpoints).
    records = endpoint_dns.records_for(ec2_store, REGIONS)
    dataplane = dataplane_for_host(ec2_store, data_dir / "run", settings, records, public_api)
    if dataplane is None:
        public_api, api_access = None, None
    elif api_access is not None and dataplane.dns is not None:
        # Functions have the Amazon DNS server: they name lamina as code in AWS names AWS.
        api_access = dataclasses.replace(api_access, by_name=True)
    key = db.setting("download-signing-key", lambda: os.urandom(32).hex())
    signer = UrlSigner(bytes.fromhex(key))
    log_groups = LogGroupStore(db)
    # Functions' output goes into CloudWatch Logs as their execution roles allow.
    logs = FunctionLogs(
        log_groups,
        lambda account, role, action, resource: role_allows(iam_store, account, role, action, resource),
    )
    platform: Platform  # made below; the attacher reads it when an environment attaches
    pool = EnvironmentPool(
        data_dir / "envs",
        logs,
        max_environments=settings.max_environments,
        idle_timeout_s=settings.idle_timeout_s,
        # A VPC function's interface may be homed on another node (services/vpc_nodes.py).
        attacher=lambda env_ns, eni: attach_environment(platform, env_ns, eni),
        cgroup_policy=CgroupPolicy(cgroup_parent(data_dir), settings.cpu_limit),
        host_ids=settings.uid_range,
        zygotes=settings.zygotes,
        init_timeout_s=settings.test_init_timeout_s,
    )
    platform = Platform(
        endpoint_port=settings.port,
        max_environments=settings.max_environments,
        layers=LayerStore(db),
        blobs=blobs,
        trees=trees,
        functions=functions,
        iam=iam_store,
        ec2=ec2_store,
        dataplane=dataplane,
        signer=signer,
        catalog=RuntimeCatalog(
            settings.runtimes_dir, ImageStore(data_dir / "images"), settings.runtime_source
        ),
        pool=pool,
        role_sessions=RoleSessions(iam_store),
    )
    platform.api_access = api_access
    platform.events = EventQueue(
        platform,
        EventStore(db),
        retry_delay_s=settings.event_retry_delay_s,
        executor=io,
        workers=settings.max_environments,
    )
    # This node among the nodes sharing the database (docs/nodes.md): the secret that signs their
    # forwarded invocations is the database's, like the download-signing key.
    secret = db.setting(SECRET_SETTING, lambda: os.urandom(32).hex())
    cluster = Cluster(
        NodeStore(db),
        pool,
        platform.events,
        name=settings.node_name or default_node_name(),
        url=settings.advertise_url or own_url(settings),
        secret=bytes.fromhex(secret),
        interval_s=settings.heartbeat_interval_s,
        max_environments=settings.max_environments,
        iam=iam_store,
        executor=io,
    )
    platform.hyperplane = Hyperplane(
        platform, HyperplaneStore(db), release_delay_s=settings.eni_release_delay_s
    )
    platform.preparer = Preparer(platform)
    platform.urls = FunctionUrlStore(db)
    platform.settings = FunctionSettingsStore(db)
    platform.code_signing = CodeSigningStore(db)
    platform.reservations = ConcurrencyStore(db, origin=cluster.instance)
    platform.limits = InvocationLimits(
        {a.account_id: a.concurrent_executions for a in settings.accounts},
        platform.reservations.all_reserved(),
    )
    # While other nodes are live, reserved concurrency is counted across them in the database.
    platform.limits.shared = SharedSlots(
        ConcurrencySlots(db),
        io,
        node=cluster.name,
        instance=cluster.instance,
        alone=lambda: cluster.view.alone,
    )
    # Reservations other nodes set reach this node's limits at once on PostgreSQL (a notification)
    # and at its heartbeats on both engines.
    limits, reservations = platform.limits, platform.reservations
    reservations.listen(
        lambda account, region, name, value: limits.reserved_changed(
            FunctionRef(account, region, name), value
        )
    )
    cluster.followers = (lambda: functools.partial(limits.follow, reservations.all_reserved()),)
    platform.cluster = cluster
    vpc_nodes = vpc_nodes_for(settings, db, ec2_store, cluster, dataplane)
    if vpc_nodes is not None:
        platform.vpc_nodes = vpc_nodes
        cluster.followers = (*cluster.followers, vpc_nodes.follow)
    platform.provisioned = Provisioner(platform, ProvisionedStore(db), executor=io)
    # Code and layer content from S3 objects are read through S3's access checks (the same blobs).
    s3_store = S3Store(db)
    platform.s3 = s3.S3Deps(s3_store, blobs)

    session = botocore.session.get_session()
    services: dict[str, ServiceBinding[Any]] = {
        "lambda": lambda_.binding(session, platform),
        "iam": iam.binding(session, iam_store),
        "sts": sts.binding(session, iam_store),
        "ec2": ec2.binding(session, ec2_store),
        "s3": s3.binding(session, platform.s3),
        "logs": cloudwatch_logs.binding(session, log_groups),
    }
    pipeline = Pipeline(
        services,
        Credentials(settings.accounts, iam_store, time.time),
        authorizer=authorizer if authorizer is not None else iam_authorizer(platform, s3_store, public_api),
        executor=io,
        clock=time.time,
        rate_limit=settings.api_rate_limit,
    )
    console = Console(
        pipeline,
        log_groups,
        io,
        sessions=ConsoleSessionStore(db),
        downloads=ConsoleDownloadStore(db),
        layer_checker=None
        if zip_checker is None
        else lambda sha, runtimes, archs: zip_checker(blobs.path(sha), runtimes, archs),
    )

    workers: list[tuple[str, Hooks | ThreadedWorker | Platform]] = [
        ("store", ThreadedWorker("store", lambda: None, db.close, io)),
        ("platform", platform),
    ]
    if isinstance(blobs, CachedBlobStore):  # deferred deletes of the remote store's objects
        sweeper = blobs
        workers.append(
            (
                "blob sweeper",
                ThreadedWorker(
                    "blob sweeper", lambda: sweeper.start_sweeper(affinity.release_thread), sweeper.close, io
                ),
            )
        )
    if public_api is not None:
        workers.append(("public api", Hooks("public api", public_api.start, public_api.close)))
    if vpc_nodes is not None:  # before the data plane: its first sync asks for VPCs' homes
        workers.append(("vpc nodes", ThreadedWorker("vpc nodes", vpc_nodes.start, vpc_nodes.close, io)))
    if dataplane is not None:
        workers.append(("dataplane", ThreadedWorker("dataplane", dataplane.start, dataplane.close, io)))
    workers += [
        ("logs", ThreadedWorker("logs", logs.start, logs.close, io)),
        ("environments", Hooks("environments", pool.start, pool.close)),
        (
            "provisioned concurrency",
            Hooks("provisioned concurrency", platform.provisioned.start, platform.provisioned.close),
        ),
        # Before the event queue: the queue claims events under this node's name.
        ("nodes", Hooks("nodes", cluster.start, cluster.close)),
        ("event queue", Hooks("event queue", platform.events.start, platform.events.close)),
        ("preparer", ThreadedWorker("preparer", platform.preparer.resume, platform.preparer.close, io)),
        (
            "hyperplane",
            ThreadedWorker(
                "hyperplane",
                lambda: platform.hyperplane.start_idle_reclaim(settings.vpc_idle_reclaim_s),
                platform.hyperplane.close,
                io,
            ),
        ),
    ]
    supervisor = Supervisor(workers, io)
    app = LaminaApp(
        pipeline,
        supervisor,
        Downloads(signer, blobs),
        io,
        mounts=(console, NodeEndpoint(cluster, platform, io)),
        function_urls=UrlEndpoint(platform, pipeline.authorize, io),
        vpc_run=VpcRunFront(
            ec2_store,
            pipeline.authorize,
            dataplane.netns_dir if dataplane is not None else None,
            time.time,
            dataplane.resolv_conf if dataplane is not None else None,
            local=on_this_host,
            join=vpc_nodes.run_join if vpc_nodes is not None else None,
            leave=vpc_nodes.run_leave if vpc_nodes is not None else None,
        ),
    )
    return Server(app, platform, supervisor)
