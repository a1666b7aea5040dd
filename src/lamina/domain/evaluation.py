"""IAM's authorization decision for one request: every policy type, and why a request is denied (pure).

Facts from AWS (IAM User Guide, "Policy evaluation logic", "Cross-account policy evaluation logic",
"Permissions boundaries for IAM entities", "Session policies"; "Troubleshoot access denied error
messages" for the words of each denial):
- An explicit Deny in any applicable policy (identity-based, resource-based, permissions boundary,
  session policy) ends the evaluation: denied.
- Within one account, a request is allowed when a resource-based policy allows it, or when the
  identity-based policies allow it and every present permissions boundary and session policy
  allows it too (they only intersect; they never grant).
- A resource-based policy that names an IAM user, a role session or ``*`` grants by itself; one
  that names only the account (``123456789012`` / ``arn:aws:iam::123456789012:root``) delegates to
  the account's identity policies; one that names a role (not its session) is limited by the
  session's boundary and session policy, as if it were part of the identity's own permissions.
- Across accounts both sides must allow: the caller's identity side (identity policies within
  boundary and session policy) and the resource owner's resource-based policy.
- The account's root user is allowed every action on its account's resources; boundaries and
  session policies never apply to it.
- An anonymous (unsigned) caller has no identity side: only a resource-based policy that names
  ``*`` allows it, and an explicit Deny still wins.
- Messages: ``User: <arn> is not authorized to perform: <action> on resource: <arn> because no
  identity-based policy allows the <action> action``, or ``... with an explicit deny in a
  resource-based policy``, naming the policy type that decided.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lamina.domain.policy import (
    Context,
    Effect,
    PolicyDocument,
    Principals,
    Statement,
    missing_keys,
    normalise_context,
    resource_and_conditions_hold,
    statement_covers,
)

# A statement that covers an action: (index of its document, the statement, variables substituted).
Candidate = tuple[int, Statement, bool]
CANDIDATES_KEPT = 512


class PolicyType(enum.Enum):
    """The kinds of policy a decision can come from, with the words AWS uses in its messages."""

    IDENTITY = "identity-based policy"
    RESOURCE = "resource-based policy"
    BOUNDARY = "permissions boundary"
    SESSION = "session policy"
    VPC_ENDPOINT = "VPC endpoint policy"


class PrincipalKind(enum.Enum):
    ROOT = "Account"
    USER = "User"
    ROLE_SESSION = "AssumedRole"
    # An unsigned request (S3 only): no account, no policies of its own; only a resource policy
    # that grants "*" lets it in (S3 User Guide, "Bucket policies": anonymous access).
    ANONYMOUS = "Anonymous"


@dataclass(frozen=True)
class Caller:
    """The principal making a request, as the evaluation sees it."""

    kind: PrincipalKind
    account: str
    arn: str  # as named in messages: arn:aws:iam::A:root, ...:user/p/n, arn:aws:sts::A:assumed-role/R/S
    role_arn: str | None = None  # a session's role (arn:aws:iam::A:role/path/R)

    def named_by(self, principals: Principals) -> NamedAs | None:
        """How a resource policy's Principal names this caller, if it does."""
        if principals.anyone:
            return NamedAs.DIRECTLY
        best: NamedAs | None = None
        for entry in principals.aws:
            if entry == self.arn:
                return NamedAs.DIRECTLY
            if self.role_arn is not None and entry == self.role_arn:
                best = NamedAs.ROLE
            elif best is None and entry in (self.account, f"arn:aws:iam::{self.account}:root"):
                best = NamedAs.ACCOUNT
        return best


class NamedAs(enum.Enum):
    """How a resource-based policy names the caller (what its grant is worth)."""

    DIRECTLY = "directly"  # the user, the session, or "*": grants by itself
    ROLE = "role"  # the session's role: limited by boundary and session policy
    ACCOUNT = "account"  # the caller's account: delegates to identity policies (same account)


@dataclass(frozen=True)
class PolicySet:
    """Every policy that applies to one request. ``None`` means "this kind does not apply"
    (no boundary set, no session policy passed, no resource policy), which differs from a
    policy that is present and allows nothing."""

    identity: Sequence[PolicyDocument] = ()
    boundary: PolicyDocument | None = None
    session: Sequence[PolicyDocument] | None = None
    resource: PolicyDocument | None = None
    # The statements of each kind that cover an action, found once per action: a set kept for a
    # principal answers its next requests by checking only those (resources and conditions).
    _covering: dict[tuple[PolicyType, str], tuple[Candidate, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def documents(self, kind: PolicyType) -> Sequence[PolicyDocument]:
        """The documents of one kind (empty when the kind does not apply)."""
        if kind is PolicyType.IDENTITY:
            return self.identity
        if kind is PolicyType.SESSION:
            return self.session or ()
        single = self.boundary if kind is PolicyType.BOUNDARY else self.resource
        return () if single is None else (single,)

    def covering(self, kind: PolicyType, action: str) -> tuple[Candidate, ...]:
        """The statements of ``kind`` whose Action/NotAction covers ``action``."""
        key = (kind, action.lower())
        found = self._covering.get(key)
        if found is None:
            found = tuple(
                (index, st, doc.uses_variables)
                for index, doc in enumerate(self.documents(kind))
                for st in doc.statements
                if statement_covers(st, action)
            )
            if len(self._covering) < CANDIDATES_KEPT:
                self._covering[key] = found
        return found


@dataclass(frozen=True)
class Matched:
    """A statement that matched the request (for the policy simulator's MatchedStatements)."""

    policy_type: PolicyType
    policy_index: int  # which document of its type
    statement: Statement


@dataclass(frozen=True)
class Decision:
    """The answer: allowed, or the policy type that denied and whether it was explicit."""

    allowed: bool
    denied_by: PolicyType | None = None
    explicit: bool = False
    matched: tuple[Matched, ...] = ()
    missing_context: tuple[str, ...] = ()

    def reason(self, action: str) -> str:
        """The end of AWS's message: ``because no ... allows the X action`` / ``with an explicit deny in ...``."""
        if self.allowed or self.denied_by is None:
            return ""
        if self.explicit:
            article = "an" if self.denied_by is PolicyType.IDENTITY else "a"
            return f"with an explicit deny in {article} {self.denied_by.value}"
        return f"because no {self.denied_by.value} allows the {action} action"


def denial_message(
    caller_arn: str, action: str, resource: str, decision: Decision, *, show_resource: bool = True
) -> str:
    """AWS's sentence for a denied request (Lambda's message; IAM, STS and EC2 embed it)."""
    on = f" on resource: {resource}" if show_resource else ""
    return f"User: {caller_arn} is not authorized to perform: {action}{on} {decision.reason(action)}"


@dataclass
class _Scan:
    """The outcome of scanning one kind of policy."""

    allow: bool = False
    deny: bool = False


def _scan(
    policies: PolicySet,
    policy_type: PolicyType,
    action: str,
    resource: str,
    ctx: Mapping[str, tuple[str, ...]],
    matched: list[Matched],
    missing: dict[str, None],
    caller: Caller | None = None,
    named: list[NamedAs] | None = None,
) -> _Scan:
    out = _Scan()
    for index, st, variables in policies.covering(policy_type, action):
        how: NamedAs | None = None
        if caller is not None:
            if st.principals is None:
                continue
            how = caller.named_by(st.principals)
            if (how is not None) == st.not_principal:
                continue
            if st.not_principal:
                how = NamedAs.DIRECTLY
        if st.conditions:
            for key in missing_keys(st, ctx):
                missing[key] = None
        if not resource_and_conditions_hold(st, resource, ctx, variables):
            continue
        matched.append(Matched(policy_type, index, st))
        if st.effect is Effect.DENY:
            out.deny = True
        else:
            out.allow = True
            if named is not None and how is not None:
                named.append(how)
    return out


def decide(
    caller: Caller,
    action: str,
    resource: str,
    resource_account: str | None,
    policies: PolicySet,
    context: Context | None = None,
    *,
    normalised: Mapping[str, tuple[str, ...]] | None = None,
) -> Decision:
    """IAM's decision on ``caller`` doing ``action`` on ``resource`` (owned by ``resource_account``;
    None for actions on no account's resource, as ``*`` is). The request's condition keys are
    ``context``, or ``normalised`` when the caller has already put them in the form
    :func:`~lamina.domain.policy.normalise_context` gives (lower-case keys, tuples of values)."""
    ctx = normalised if normalised is not None else normalise_context(context)
    matched: list[Matched] = []
    missing: dict[str, None] = {}
    root = caller.kind is PrincipalKind.ROOT
    identity = (
        _Scan() if root else _scan(policies, PolicyType.IDENTITY, action, resource, ctx, matched, missing)
    )
    named: list[NamedAs] = []
    resource_scan = _scan(
        policies, PolicyType.RESOURCE, action, resource, ctx, matched, missing, caller, named
    )
    boundary = session = None
    if not root:
        if policies.boundary is not None:
            boundary = _scan(policies, PolicyType.BOUNDARY, action, resource, ctx, matched, missing)
        if policies.session is not None:
            session = _scan(policies, PolicyType.SESSION, action, resource, ctx, matched, missing)
    found = tuple(matched), tuple(missing)

    def denied(by: PolicyType, explicit: bool) -> Decision:
        return Decision(False, by, explicit, *found)

    for kind, scan in (
        (PolicyType.IDENTITY, identity),
        (PolicyType.RESOURCE, resource_scan),
        (PolicyType.BOUNDARY, boundary),
        (PolicyType.SESSION, session),
    ):
        if scan is not None and scan.deny:
            return denied(kind, True)
    if caller.kind is PrincipalKind.ANONYMOUS:
        # Nobody's identity side: only a resource policy naming everyone grants.
        if resource_scan.allow and NamedAs.DIRECTLY in named:
            return Decision(True, None, False, *found)
        return denied(PolicyType.RESOURCE, False)
    same_account = resource_account is None or resource_account == caller.account
    # The identity side: the caller's own policies, within its boundary and session policies; the
    # first of them that does not allow names the denial.
    limits_ok = (boundary is None or boundary.allow) and (session is None or session.allow)
    short = next(
        (
            kind
            for kind, ok in (
                (PolicyType.IDENTITY, root or identity.allow),
                (PolicyType.BOUNDARY, boundary is None or boundary.allow),
                (PolicyType.SESSION, session is None or session.allow),
            )
            if not ok
        ),
        None,
    )
    allowed = Decision(True, None, False, *found)
    if same_account:
        # Either side may allow; a grant to the session's role is still bound by its limits.
        if resource_scan.allow and (NamedAs.DIRECTLY in named or (NamedAs.ROLE in named and limits_ok)):
            return allowed
        return allowed if short is None else denied(short, False)
    # Across accounts both sides must allow.
    if short is not None:
        return denied(short, False)
    return allowed if resource_scan.allow else denied(PolicyType.RESOURCE, False)


def endpoint_decision(
    caller: Caller,
    action: str,
    resource: str,
    policy: PolicyDocument,
    normalised: Mapping[str, tuple[str, ...]],
) -> Decision:
    """What a VPC endpoint's policy says of a request that came through the endpoint (VPC User Guide,
    "Control access to VPC endpoints using endpoint policies"): it grants nothing by itself, but
    the request is denied unless one of its statements allows it (its Principal naming the caller;
    ``"*"`` names everyone, the root user included) and none denies it."""
    matched: list[Matched] = []
    missing: dict[str, None] = {}
    named: list[NamedAs] = []
    scan = _scan(
        PolicySet(resource=policy),
        PolicyType.RESOURCE,
        action,
        resource,
        normalised,
        matched,
        missing,
        caller,
        named,
    )
    found = tuple(matched), tuple(missing)
    if scan.deny:
        return Decision(False, PolicyType.VPC_ENDPOINT, True, *found)
    if scan.allow and named:
        return Decision(True, None, False, *found)
    return Decision(False, PolicyType.VPC_ENDPOINT, False, *found)
