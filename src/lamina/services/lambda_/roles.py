"""Execution role sessions: the temporary credentials a function's environments get."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from lamina.domain.arns import Arn
from lamina.domain.policy import Decision, PolicyKind, evaluate, parse_policy
from lamina.errors import AwsError, InvalidParameterValueException
from lamina.services.iam.identities import IdentityKind, load_identity
from lamina.services.lambda_.messages import ROLE_CANNOT_BE_ASSUMED
from lamina.services.sts.sessions import issue_session
from lamina.store.iam import IamStore, Session

ROLE_SESSION_S = 43_200  # Lambda's execution role sessions last 12 hours
REFRESH_S = 3600  # a session with less than this left is replaced for new environments


class RoleSessions:
    """Issues and reuses the role sessions of functions (session named after the function)."""

    def __init__(self, iam: IamStore, clock: Callable[[], float] = time.time) -> None:
        self._iam = iam
        self._clock = clock
        self._sessions: dict[tuple[str, str, str], Session] = {}

    def credentials(self, account: str, role_arn: str, function: str) -> tuple[str, str, str]:
        """(access key, secret, token) of the function's execution role, reused while they have more
        than an hour left, as Lambda refreshes them for new environments."""
        key = (account, role_arn, function)
        cached = self._sessions.get(key)
        now = self._clock()
        if cached is not None and cached.expires - now > REFRESH_S:
            return cached.access_key, cached.secret, cached.token
        arn = Arn.parse(role_arn)
        role = None
        if arn is not None and arn.role_name is not None:
            role = self._iam.get_role(arn.account, arn.role_name)
        # A function only ever gets a role of its own account (one stored before that was checked
        # at creation gets none).
        if arn is None or role is None or arn.account != account:
            raise InvalidParameterValueException(ROLE_CANNOT_BE_ASSUMED)
        session = issue_session(self._iam, arn.account, role, function, ROLE_SESSION_S, now)
        self._sessions[key] = session
        return session.access_key, session.secret, session.token

    def expires(self, account: str, role_arn: str, function: str) -> float:
        """When the credentials :meth:`credentials` last gave for this function expire (epoch
        seconds; infinity when it gave none)."""
        cached = self._sessions.get((account, role_arn, function))
        return cached.expires if cached is not None else math.inf


def role_allows(iam: IamStore, account: str, role_arn: str, action: str, resource: str) -> bool:
    """Whether an execution role's own policies allow ``action`` on ``resource`` within its
    permissions boundary: what Lambda checks before it acts for a function with the role (creating
    a VPC function's network interfaces, delivering to a destination). A role of another account, or
    none, allows nothing; a malformed stored policy grants nothing."""
    arn = Arn.parse(role_arn)
    if arn is None or arn.role_name is None or arn.account != account:
        return False
    identity = load_identity(iam, account, IdentityKind.ROLE, arn.role_name)
    if identity is None:
        return False
    documents = []
    for text in identity.documents:
        try:
            documents.append(parse_policy(text, PolicyKind.IDENTITY))
        except AwsError:
            continue
    if evaluate(documents, action, resource) is not Decision.ALLOW:
        return False
    if not identity.boundary:
        return True
    try:
        boundary = parse_policy(identity.boundary, PolicyKind.IDENTITY)
    except AwsError:
        return False
    return evaluate([boundary], action, resource) is Decision.ALLOW
