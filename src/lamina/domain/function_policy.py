"""Function resource policies (AddPermission / GetPolicy / RemovePermission): values and decisions (pure).

Facts from AWS (recorded, see tests/functional/test_function_policy.py):
- each function version has its own policy ($LATEST, 1, 2, ...; aliases too); publishing a version
  does not copy $LATEST's, and AddPermission refuses ``$LATEST`` named as a qualifier;
- the policy document is ``{"Version":"2012-10-17","Id":"default","Statement":[...]}`` in compact
  JSON, statements in the order they were added, each keyed Sid, Effect, Principal, Action, Resource,
  Condition;
- a principal is ``*``, an account id (rendered as its root ARN), an IAM ARN, or a service
  (``s3.amazonaws.com``); the optional parameters become conditions: StringEquals for
  SourceAccount, EventSourceToken, FunctionUrlAuthType and PrincipalOrgID, ArnLike for SourceArn,
  and Bool for InvokedViaFunctionUrl
  (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html);
- every change gives the policy a new RevisionId, and the version's own RevisionId becomes the same.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

from lamina.domain.arns import root_user_arn
from lamina.domain.functions import LATEST, version_number
from lamina.domain.layers import MAX_POLICY_BYTES, PolicyStatement, policy_document

__all__ = [
    "MAX_POLICY_BYTES",
    "FunctionPolicy",
    "QualifierKind",
    "make_statement",
    "policy_document",
    "qualifier_kind",
    "valid_principal",
    "version_seq",
]

# An IAM or STS principal ARN, e.g. arn:aws:iam::123456789012:role/r or ...:assumed-role/r/s.
_IAM_ARN = re.compile(r"arn:aws[a-zA-Z-]*:(?:iam|sts)::\d{12}:\S+")
# A service principal: a domain-style identifier of AWS (s3.amazonaws.com, alexa-appkit.amazon.com).
_SERVICE = re.compile(r"[a-z0-9][a-z0-9.-]*\.(?:amazonaws\.com(?:\.cn)?|amazon\.com)")
_ACCOUNT = re.compile(r"\d{12}")
# An alias name (botocore's Alias pattern): not all digits.
_ALIAS = re.compile(r"(?!^[0-9]+$)[a-zA-Z0-9-_]+")


@dataclass(frozen=True)
class FunctionPolicy:
    """One version's policy as stored: its statements and RevisionId (None: never had one)."""

    statements: tuple[PolicyStatement, ...]
    revision_id: str | None

    @classmethod
    def from_document(cls, document: str | None, revision_id: str | None) -> FunctionPolicy:
        """The policy from its stored document (None or absent: no statements)."""
        if not document:
            return cls((), revision_id)
        return cls(tuple(json.loads(document)["Statement"]), revision_id)

    def document(self) -> str | None:
        """The stored and answered document; None once the last statement is removed."""
        return policy_document(self.statements) if self.statements else None

    def has(self, sid: str) -> bool:
        return any(s.get("Sid") == sid for s in self.statements)


class QualifierKind(enum.Enum):
    """What a qualifier names: the unpublished version, a published version, or an alias."""

    LATEST = "latest"
    VERSION = "version"
    ALIAS = "alias"
    OTHER = "other"  # e.g. "valid-with-$": neither a version nor an alias name


def qualifier_kind(qualifier: str | None) -> QualifierKind:
    """Classify ``qualifier`` (None names $LATEST)."""
    if qualifier is None or qualifier == LATEST:
        return QualifierKind.LATEST
    if qualifier.isdigit():
        return QualifierKind.VERSION
    if _ALIAS.fullmatch(qualifier):
        return QualifierKind.ALIAS
    return QualifierKind.OTHER


def version_seq(qualifier: str | None) -> int | None:
    """The stored version ($LATEST is 0) a qualifier names; None for anything else (aliases)."""
    kind = qualifier_kind(qualifier)
    if kind == QualifierKind.LATEST:
        return 0
    if kind == QualifierKind.VERSION:
        assert qualifier is not None
        return version_number(qualifier)
    return None


def valid_principal(principal: str) -> bool:
    """Whether AddPermission accepts ``principal`` (else "The provided principal was invalid...")."""
    return (
        principal == "*"
        or _ACCOUNT.fullmatch(principal) is not None
        or _IAM_ARN.fullmatch(principal) is not None
        or _SERVICE.fullmatch(principal) is not None
    )


def _render_principal(principal: str) -> str | dict[str, str]:
    if principal == "*":
        return "*"
    if _ACCOUNT.fullmatch(principal):
        return {"AWS": root_user_arn(principal)}
    if principal.startswith("arn:"):
        return {"AWS": principal}
    return {"Service": principal}


def make_statement(params: dict[str, Any], resource_arn: str) -> PolicyStatement:
    """The statement AddPermission adds, built from its parameters, in AWS's key order."""
    statement: PolicyStatement = {
        "Sid": params["StatementId"],
        "Effect": "Allow",
        "Principal": _render_principal(params["Principal"]),
        "Action": params["Action"],
        "Resource": resource_arn,
    }
    equals: dict[str, str] = {}
    for param, key in (
        ("SourceAccount", "AWS:SourceAccount"),
        ("EventSourceToken", "lambda:EventSourceToken"),
        ("FunctionUrlAuthType", "lambda:FunctionUrlAuthType"),
        ("PrincipalOrgID", "aws:PrincipalOrgID"),
    ):
        if params.get(param) is not None:
            equals[key] = str(params[param])
    condition: dict[str, dict[str, str]] = {}
    if equals:
        condition["StringEquals"] = equals
    if params.get("SourceArn") is not None:
        condition["ArnLike"] = {"AWS:SourceArn": params["SourceArn"]}
    if params.get("InvokedViaFunctionUrl"):
        condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
    if condition:
        statement["Condition"] = condition
    return statement
