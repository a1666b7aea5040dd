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

PutResourcePolicy ("Working with resource-based policies in Lambda", Lambda Developer Guide) sets the
whole document of the same policy: any statements (Deny, several principals, any condition keys), at
most 20 KB; AddPermission then appends to it and RemovePermission removes by Sid. The checks a Put
document passes are :func:`check_document`'s; lamina keeps it as compact JSON (Version, Id,
Statement as a list), which GetPolicy and GetResourcePolicy both answer.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, replace
from typing import Any

from lamina.domain.arns import Arn, root_user_arn
from lamina.domain.functions import LATEST, version_number
from lamina.domain.layers import MAX_POLICY_BYTES, PolicyStatement, policy_document
from lamina.domain.policy import CURRENT_VERSION, MalformedPolicy, PolicyKind, parse_policy, resource_matches
from lamina.errors import InvalidParameterValueException

__all__ = [
    "MAX_POLICY_BYTES",
    "FunctionPolicy",
    "InvalidDocument",
    "TargetKind",
    "ResourceTarget",
    "check_document",
    "parse_resource_arn",
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
    # The document's Version and Id: AddPermission's policies have "2012-10-17" and "default"; a
    # PutResourcePolicy document keeps its own (Id None: it has none).
    version: str = CURRENT_VERSION
    policy_id: str | None = "default"

    @classmethod
    def from_document(cls, document: str | None, revision_id: str | None) -> FunctionPolicy:
        """The policy from its stored document (None or absent: no statements)."""
        if not document:
            return cls((), revision_id)
        raw = json.loads(document)
        return cls(tuple(raw["Statement"]), revision_id, raw.get("Version", CURRENT_VERSION), raw.get("Id"))

    def document(self) -> str | None:
        """The stored and answered document; None once the last statement is removed."""
        if not self.statements:
            return None
        if (self.version, self.policy_id) == (CURRENT_VERSION, "default"):
            return policy_document(self.statements)
        head: dict[str, Any] = {"Version": self.version}
        if self.policy_id is not None:
            head["Id"] = self.policy_id
        return json.dumps({**head, "Statement": list(self.statements)}, separators=(",", ":"))

    def changed(self, statements: tuple[PolicyStatement, ...], revision_id: str) -> FunctionPolicy:
        """This policy with other statements and a new RevisionId (its Version and Id kept; with
        no statements left it is gone, so a later AddPermission starts AWS's default document)."""
        if not statements:
            return FunctionPolicy((), revision_id)
        return replace(self, statements=statements, revision_id=revision_id)

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


# -- PutResourcePolicy -------------------------------------------------------------------------------


class InvalidDocument(InvalidParameterValueException):
    """A PutResourcePolicy document lamina refuses (400 InvalidParameterValueException); the message
    is lamina's wording: AWS's own for these were not found in recordings or documentation."""


class TargetKind(enum.Enum):
    """What a PolicyResourceArn names: a function (with a qualifier or not) or a runtime."""

    FUNCTION = "function"
    RUNTIME = "runtime"


@dataclass(frozen=True)
class ResourceTarget:
    """A ``ResourceArn`` of the resource-policy operations, read: the function's account, region and
    name, and the qualifier (None for the function itself, ``$LATEST`` included)."""

    kind: TargetKind
    account: str
    region: str
    name: str
    qualifier: str | None = None


def parse_resource_arn(text: str) -> ResourceTarget | None:
    """Read a ResourceArn the model's pattern has admitted (``arn:P:lambda:R:A:function:NAME[:Q]`` or
    ``...:runtime/...``); None for anything else. ``$LATEST`` names the function's own policy, as
    an unqualified ARN does (GetPolicy's ``$LATEST`` is the same policy)."""
    arn = Arn.parse(text)
    if arn is None or arn.service != "lambda":
        return None
    if arn.resource.startswith("runtime/"):
        return ResourceTarget(TargetKind.RUNTIME, arn.account, arn.region, arn.resource)
    parts = arn.resource.split(":")
    if parts[0] != "function" or len(parts) not in (2, 3) or not parts[1]:
        return None
    qualifier = parts[2] if len(parts) == 3 else None
    if qualifier == LATEST:
        qualifier = None
    return ResourceTarget(TargetKind.FUNCTION, arn.account, arn.region, parts[1], qualifier)


def _names_this_resource(entry: str, function_arn: str, qualified_arn: str | None) -> bool:
    """Whether a statement's Resource entry stays within the resource the policy is attached to.

    The function's policy (``qualified_arn`` None) may name the function and its versions and
    aliases (the Developer Guide's example lists ``...:function:my-function`` and
    ``...:function:my-function:*``); a version's or alias's policy, only that qualifier (its ARN, or
    a pattern that matches it and nothing beyond the function)."""
    if entry != function_arn and not entry.startswith(function_arn + ":"):
        return False
    if qualified_arn is None:
        return True
    return resource_matches(entry, qualified_arn)


def check_document(text: str, function_arn: str, qualified_arn: str | None) -> FunctionPolicy:
    """The policy a PutResourcePolicy ``text`` sets on a function (``qualified_arn`` None) or on one
    of its versions or aliases, without a RevisionId yet; raises :class:`InvalidDocument` (IAM's
    grammar errors included, naming IAM's message).

    Checked: IAM's grammar for a resource-based policy (JSON, Version, Statement, each with Effect,
    Principal, Action and Resource), actions of the ``lambda:`` namespace only (the policy is
    Lambda's: it can grant nothing else), and every Resource within the resource it is attached to
    (a policy cannot grant another function)."""
    try:
        parsed = parse_policy(text, PolicyKind.RESOURCE)
    except MalformedPolicy as exc:
        raise InvalidDocument(f"The policy document is not a valid resource-based policy: {exc}") from exc
    raw = json.loads(text)
    body = raw["Statement"]
    items: list[Any] = [body] if isinstance(body, dict) else list(body)
    target = qualified_arn or function_arn
    for statement in parsed.statements:
        if statement.not_action or statement.not_resource:
            raise InvalidDocument(
                "NotAction and NotResource are not supported in a Lambda resource-based policy: "
                "name the actions and this resource."
            )
        for action in statement.actions:
            if not action.lower().startswith("lambda:"):
                raise InvalidDocument(
                    f"The action {action} is not a Lambda action: a Lambda resource-based policy "
                    "grants actions of the lambda: namespace only."
                )
        for entry in statement.resources or ():
            if not _names_this_resource(entry, function_arn, qualified_arn):
                raise InvalidDocument(
                    f"The resource {entry} does not name the resource the policy is attached to: {target}"
                )
    version = raw.get("Version", CURRENT_VERSION)
    policy_id = raw.get("Id")
    return FunctionPolicy(tuple(items), None, version, policy_id)


def document_size(policy: FunctionPolicy) -> int:
    """The stored document's size in bytes (PolicyLengthExceededException past MAX_POLICY_BYTES)."""
    document = policy.document()
    return len(document.encode()) if document is not None else 0
