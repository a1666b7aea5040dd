"""What each operation asks IAM: the per-operation authorization table, as data (pure).

For every operation lamina serves, the IAM action(s), the resource ARN(s) each acts on and the
operation-specific condition keys, as AWS's Service Authorization Reference lists them ("Actions,
resources, and condition keys for AWS Lambda / AWS Identity and Access Management / AWS Security Token
Service / Amazon EC2", with the IAM, STS and Lambda API and developer guides where the reference is
terse; each table module names its facts). The rows live per service in
:mod:`lamina.domain.actions_lambda`, :mod:`lamina.domain.actions_iam` (IAM and STS) and
:mod:`lamina.domain.actions_ec2`, :mod:`lamina.domain.actions_logs` and
:mod:`lamina.domain.actions_s3`;
:mod:`lamina.domain.actions_spec` holds their vocabulary.

The authorizer calls :func:`checks` after parsing and before validation (where AWS authorizes), so
the parameters are unvalidated: nothing here raises on a missing or wrong-typed value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lamina.domain import actions_ec2, actions_iam, actions_lambda, actions_logs, actions_s3
from lamina.domain.actions_spec import Call, Check, ContextValue, Lookups, Spec

__all__ = ["NEVER_DENIED", "TABLES", "Check", "ContextValue", "Lookups", "checks", "is_mutating"]

TABLES: Mapping[str, Mapping[str, Spec]] = {
    "lambda": actions_lambda.TABLE,
    "iam": actions_iam.IAM_TABLE,
    "sts": actions_iam.STS_TABLE,
    "ec2": actions_ec2.TABLE,
    "logs": actions_logs.TABLE,
    "s3": actions_s3.TABLE,
}

# "No permissions are required to perform this operation. If an administrator attaches a policy to
# your identity that explicitly denies access to the sts:GetCallerIdentity action, you can still
# perform this operation." (STS API Reference, GetCallerIdentity)
# And GetSessionToken: "No permissions are required for a user to get a session token ... You
# cannot use policies to control authentication operations" (IAM User Guide, "Permissions for
# GetSessionToken"); its handler still refuses session credentials.
NEVER_DENIED: frozenset[tuple[str, str]] = frozenset(
    {("sts", "GetCallerIdentity"), ("sts", "GetSessionToken")}
)

READ_PREFIXES = ("Describe", "Get", "List")


def checks(
    service: str,
    operation: str,
    *,
    account: str,
    region: str,
    params: Mapping[str, Any],
    lookups: Lookups,
    caller_user: str | None = None,
) -> tuple[Check, ...] | None:
    """The checks ``operation`` of ``service`` needs, in order (the operation's own action first,
    then what it also needs, such as ``iam:PassRole``); all must be allowed.

    ``account`` and ``region`` are the caller's (an ARN parameter may name another account's
    resource); ``caller_user`` is the calling IAM user's name, which the IAM operations that take
    an optional ``UserName`` (GetUser, Create/List/Update/DeleteAccessKey) act on without one (the
    account's root user when None). None: the operation is not in the table (the authorizer then
    denies everyone but root)."""
    spec = TABLES.get(service, {}).get(operation)
    if spec is None:
        return None
    if not isinstance(params, Mapping):
        params = {}
    return spec.checks(Call(account, region, params, lookups, caller_user))


def is_mutating(service: str, operation: str) -> bool:
    """Whether the operation changes anything: all but Describe*, Get* and List* (EC2 encodes the
    reason of a denied mutating call in its message)."""
    return not operation.startswith(READ_PREFIXES)
