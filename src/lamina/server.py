"""Assemble the platform, the services and the HTTP app."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

import botocore.session

from lamina.api.app import LaminaApp, default_workers
from lamina.domain.accounts import Account
from lamina.net.uplink import UplinkSpec
from lamina.services import ec2, iam, lambda_, sts
from lamina.services.platform import Platform
from lamina.store.ec2 import DEFAULT_PUBLIC_POOL


def build_app(
    data_dir: Path,
    accounts: tuple[Account, ...],
    *,
    runtimes_dir: Path | None = None,
    max_environments: int = 32,
    idle_timeout_s: float = 600.0,
    endpoint_port: int = 4566,
    event_retry_delay_s: float = 60.0,
    eni_release_delay_s: float = 30.0,
    vpc_idle_reclaim_s: float = 14 * 24 * 3600.0,
    uplink: UplinkSpec | None = None,
    public_ip_pool: IPv4Network = DEFAULT_PUBLIC_POOL,
) -> LaminaApp:
    platform = Platform(
        data_dir,
        runtimes_dir=runtimes_dir,
        max_environments=max_environments,
        idle_timeout_s=idle_timeout_s,
        endpoint_port=endpoint_port,
        credentials={a.account_id: (a.access_key_id, a.secret_access_key) for a in accounts},
        event_retry_delay_s=event_retry_delay_s,
        eni_release_delay_s=eni_release_delay_s,
        vpc_idle_reclaim_s=vpc_idle_reclaim_s,
        uplink=uplink,
        public_ip_pool=public_ip_pool,
    )
    session = botocore.session.get_session()
    services = {
        "lambda": lambda_.binding(session),
        "iam": iam.binding(session),
        "sts": sts.binding(session),
        "ec2": ec2.binding(session),
    }
    # Invocations hold a worker thread while they run: room for every environment plus API calls.
    return LaminaApp(platform, services, accounts, workers=default_workers() + max_environments)
