"""Accounts and their credentials (pure: parsing and checks, no file I/O)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from lamina.domain.concurrency import DEFAULT_ACCOUNT_LIMIT
from lamina.errors import LaminaError


@dataclass(frozen=True)
class Account:
    account_id: str
    access_key_id: str
    secret_access_key: str
    # An IAM user the keys belong to (created at start with AdministratorAccess if absent); None:
    # the keys are the account root's.
    user: str | None = None
    # The account's concurrency quota in each Region (AWS's default: 1,000), not the host's capacity.
    concurrent_executions: int = DEFAULT_ACCOUNT_LIMIT


# IAM user names: 1 to 64 of letters, digits and +=,.@_- (IAM API Reference, CreateUser).
USER_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)


# The largest concurrency quota an accounts file may give (a sanity bound, far above AWS's quotas).
MAX_LIMIT = 1_000_000


# The convention other local AWS tools use, so awslocal-style wrappers just work.
DEFAULT_ACCOUNT = Account("000000000000", "test", "test")


class AccountsError(LaminaError, ValueError):
    """The accounts file is not valid; the message says where and why."""


def parse_accounts(doc: Any) -> tuple[Account, ...]:
    """Validate ``{"accounts": [{"account_id", "access_key_id", "secret_access_key"[, "user"]
    [, "concurrent_executions"]}, ...]}``. Entries of one account (several keys) agree on its limit."""
    if not isinstance(doc, dict) or not isinstance(doc.get("accounts"), list) or not doc["accounts"]:
        raise AccountsError(
            'expected {"accounts": [{"account_id": ..., "access_key_id": ..., '
            '"secret_access_key": ...}, ...]} with at least one account'
        )
    accounts = []
    keys: set[str] = set()
    limits: dict[str, int] = {}
    for i, entry in enumerate(doc["accounts"]):
        where = f"accounts[{i}]"
        if not isinstance(entry, dict):
            raise AccountsError(f"{where}: expected an object")
        for field in ("account_id", "access_key_id", "secret_access_key"):
            if not isinstance(entry.get(field), str) or not entry[field]:
                raise AccountsError(f"{where}: {field} must be a non-empty string")
        if not re.fullmatch(r"\d{12}", entry["account_id"]):
            raise AccountsError(f"{where}: account_id must be 12 digits, got {entry['account_id']!r}")
        if entry["access_key_id"] in keys:
            raise AccountsError(f"{where}: access_key_id {entry['access_key_id']!r} is used twice")
        keys.add(entry["access_key_id"])
        user = entry.get("user")
        if user is not None and not (isinstance(user, str) and USER_NAME.fullmatch(user)):
            raise AccountsError(
                f"{where}: user must be an IAM user name (1 to 64 letters, digits and +=,.@_-), got {user!r}"
            )
        limit = entry.get("concurrent_executions", DEFAULT_ACCOUNT_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise AccountsError(
                f"{where}: concurrent_executions must be an integer from 1 to {MAX_LIMIT}, got {limit!r}"
            )
        if limits.setdefault(entry["account_id"], limit) != limit:
            raise AccountsError(
                f"{where}: concurrent_executions {limit} differs from an earlier entry of account "
                f"{entry['account_id']} ({limits[entry['account_id']]})"
            )
        accounts.append(
            Account(entry["account_id"], entry["access_key_id"], entry["secret_access_key"], user, limit)
        )
    return tuple(accounts)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def uses_default_credentials(accounts: tuple[Account, ...]) -> bool:
    return any(
        a.access_key_id == DEFAULT_ACCOUNT.access_key_id
        and a.secret_access_key == DEFAULT_ACCOUNT.secret_access_key
        for a in accounts
    )
