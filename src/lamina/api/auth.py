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
from lamina.errors import EXPIRED_TOKEN_MESSAGE, AwsError
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
        self._accounts = {
            a.access_key_id: sigv4.Credential(
                a.access_key_id, a.secret_access_key, a.account_id, arn=root_user_arn(a.account_id)
            )
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
        return sigv4.Credential(
            access_key_id,
            session.secret,
            session.account,
            session_token=session.token,
            arn=session.arn,
            expires=session.expires,
        )

    @staticmethod
    def principal(credential: sigv4.Credential) -> Principal:
        """The principal behind a credential :meth:`lookup` returned (no second look-up)."""
        return Principal(credential.account_id, credential.access_key_id, credential.arn, credential.expires)
