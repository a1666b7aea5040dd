"""Who is calling: long-term account keys, IAM users' access keys and STS sessions, resolved to
a :class:`Principal`.

Both front ends use this one lookup: SigV4 verification (``api.pipeline``) and the console's
sign-in. Users' keys and sessions live in the IAM store: an Inactive or deleted key is unknown,
a session is refused once expired.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace

from lamina.api import sigv4
from lamina.domain.accounts import Account
from lamina.domain.arns import root_user_arn, user_arn
from lamina.errors import EXPIRED_TOKEN_MESSAGE, AwsError
from lamina.services.base import Principal
from lamina.store.iam import IamStore


class ExpiredToken(AwsError):
    """Temporary credentials past their expiry (Lambda: ExpiredTokenException; query: ExpiredToken)."""

    code = "ExpiredTokenException"
    status = 403
    sender_fault = True


SESSIONS_KEPT = 4096  # STS sessions' credentials kept in memory (oldest dropped first)


class Credentials:
    """Access keys -> credentials and principals. Reads the IAM store for STS sessions: call it
    off the event loop (the pipeline does)."""

    def __init__(self, accounts: Iterable[Account], iam: IamStore, clock: Callable[[], float]) -> None:
        self._accounts = {
            a.access_key_id: sigv4.Credential(
                a.access_key_id, a.secret_access_key, a.account_id, arn=root_user_arn(a.account_id)
            )
            for a in accounts
        }
        # Accounts-file keys that belong to an IAM user rather than to the root: key -> user name.
        self._users = {a.access_key_id: a.user for a in accounts if a.user is not None}
        self._iam = iam
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, sigv4.Credential] = OrderedDict()
        # PostgreSQL (a read is a round trip): IAM users' keys as last read, with the IAM
        # generation they were read at (any IAM write on any node moves it: store/iam.py).
        # SQLite reads them at every request, as ever.
        self._keys: OrderedDict[str, tuple[int, sigv4.Credential]] | None = (
            OrderedDict() if getattr(iam.db, "dialect", "sqlite") == "postgresql" else None
        )

    def lookup(self, access_key_id: str) -> sigv4.Credential | None:
        """Long-term keys from the accounts, else an IAM user's Active access key, else an STS
        session (:class:`ExpiredToken` once expired)."""
        found = self._accounts.get(access_key_id)
        if found is not None:
            user = self._users.get(access_key_id)
            if user is None:
                return found
            # The user's ARN as it is now (UpdateUser may have moved it to another path).
            record = self._iam.get_user(found.account_id, user)
            arn = str(record["Arn"]) if record is not None else user_arn(found.account_id, "/", user)
            return replace(found, arn=arn)
        if access_key_id.startswith("AKIA"):
            return self._user_key(access_key_id)
        if not access_key_id.startswith("ASIA"):
            return None
        credential = self._sessions.get(access_key_id)
        if credential is None:
            credential = self._session(access_key_id)
            if credential is None:
                return None
        if credential.expires is not None and credential.expires < self._clock():
            raise ExpiredToken(EXPIRED_TOKEN_MESSAGE)
        return credential

    def _session(self, access_key_id: str) -> sigv4.Credential | None:
        """An STS session's credential, read once: a session never changes after it is issued (it
        only expires), so the credential is kept (a bounded number of them)."""
        session = self._iam.session(access_key_id)
        if session is None:
            return None
        credential = sigv4.Credential(
            access_key_id,
            session.secret,
            session.account,
            session_token=session.token,
            arn=session.arn,
            expires=session.expires,
        )
        with self._lock:
            self._sessions[access_key_id] = credential
            while len(self._sessions) > SESSIONS_KEPT:
                self._sessions.popitem(last=False)
        return credential

    def _user_key(self, access_key_id: str) -> sigv4.Credential | None:
        """An IAM user's Active key, from the keys kept while IAM has not changed (PostgreSQL).
        Unknown keys are never kept (anyone can make up as many as they like)."""
        if self._keys is None:
            return self._read_user_key(access_key_id)
        generation = self._iam.generation
        with self._lock:
            kept = self._keys.get(access_key_id)
            if kept is not None and kept[0] == generation:
                return kept[1]
        credential = self._read_user_key(access_key_id)
        if credential is not None and self._iam.generation == generation:  # no change meanwhile
            with self._lock:
                self._keys[access_key_id] = (generation, credential)
                self._keys.move_to_end(access_key_id)
                while len(self._keys) > SESSIONS_KEPT:
                    self._keys.popitem(last=False)
        return credential

    def _read_user_key(self, access_key_id: str) -> sigv4.Credential | None:
        key = self._iam.access_key(access_key_id)
        if key is None or key.status != "Active":
            return None
        user = self._iam.get_user(key.account, key.user_name)
        if user is None:
            return None
        return sigv4.Credential(access_key_id, key.secret, key.account, arn=str(user["Arn"]))

    @staticmethod
    def principal(credential: sigv4.Credential) -> Principal:
        """The principal behind a credential :meth:`lookup` returned (no second look-up)."""
        return Principal(credential.account_id, credential.access_key_id, credential.arn, credential.expires)
