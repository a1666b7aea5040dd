"""Assemble the platform, the services and the HTTP app."""

from __future__ import annotations

from pathlib import Path

import botocore.session

from lamina.api.app import LaminaApp, default_workers
from lamina.domain.accounts import Account
from lamina.services import lambda_
from lamina.services.base import Platform


def build_app(
    data_dir: Path,
    accounts: tuple[Account, ...],
    *,
    runtimes_dir: Path | None = None,
    max_environments: int = 32,
) -> LaminaApp:
    platform = Platform(data_dir, runtimes_dir=runtimes_dir, max_environments=max_environments)
    session = botocore.session.get_session()
    services = {"lambda": lambda_.binding(session)}
    return LaminaApp(platform, services, accounts, workers=default_workers())
