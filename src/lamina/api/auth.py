"""Who is calling: long-term account keys and STS sessions, resolved to a :class:`Principal`.

Both front ends use this one lookup: SigV4 verification (``api.pipeline``) and the console's
sign-in. A session's secret and token live in the IAM store; it is refused once expired.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lamina.api import sigv4
from lamina.domain.accounts import Account
from lamina.domain.arns import root_user_arn
from lamina.errors import EXPIRED_TOKEN_MESSAGE, INVALID_TOKEN_MESSAGE, AwsError, UnrecognizedClientException
from lamina.store.iam import IamStore


class ExpiredToken(AwsError):
    """Temporary credentials past their expiry (Lambda: ExpiredTokenException; query: ExpiredToken)."""

    code = "ExpiredTokenException"
    status = 403
    sender_fault = True


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the account it acts in and its ARN (the account root for the
    account's own keys, ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` for an STS session)."""

    account_id: str
    access_key_id: str
    arn: str
    # The session's expiry (epoch seconds) for temporary credentials, else None.
    expires: float | None = None

    @property
    def is_root(self) -> bool:
        return self.arn == root_user_arn(self.account_id)


class Credentials:
    """Access keys -> credentials and principals. Reads the IAM store for STS sessions: call it
    off the event loop (the pipeline does)."""

    def __init__(self, accounts: Iterable[Account], iam: IamStore, clock: Callable[[], float]) -> None:
        accounts = tuple(accounts)
        self._accounts = {
            a.access_key_id: sigv4.Credential(a.access_key_id, a.secret_access_key, a.account_id)
            for a in accounts
        }
        self._roots = {
            a.access_key_id: Principal(a.account_id, a.access_key_id, root_user_arn(a.account_id))
            for a in accounts
        }
        self._iam = iam
        self._clock = clock

    def lookup(self, access_key_id: str) -> sigv4.Credential | None:
        """Long-term keys from the accounts, else an STS session (:class:`ExpiredToken` once expired)."""
        found = self._accounts.get(access_key_id)
        if found is not None or not access_key_id.startswith("ASIA"):
            return found
        session = self._iam.session(access_key_id)
        if session is None:
            return None
        if session.expires < self._clock():
            raise ExpiredToken(EXPIRED_TOKEN_MESSAGE)
        return sigv4.Credential(access_key_id, session.secret, session.account, session_token=session.token)

    def principal(self, credential: sigv4.Credential) -> Principal:
        """The principal behind a verified credential."""
        if credential.access_key_id in self._accounts:
            return Principal(
                credential.account_id, credential.access_key_id, root_user_arn(credential.account_id)
            )
        session = self._iam.session(credential.access_key_id)
        if session is None:  # deleted between verification and now: treat as unknown
            raise UnrecognizedClientException(INVALID_TOKEN_MESSAGE)
        return Principal(session.account, session.access_key, session.arn, session.expires)
