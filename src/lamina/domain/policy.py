"""IAM policy documents: IAM's grammar checks and policy evaluation (pure).

Facts from AWS (IAM User Guide: "Policy evaluation logic", "IAM JSON policy elements",
"Condition operators"; the MalformedPolicyDocument messages are IAM's own words, as quoted
from real AWS answers in public issue threads and in moto's IAM test-suite):
- Three kinds of document share one grammar. Identity policies (inline or managed) must not
  name a principal; a role's trust policy (AssumeRolePolicyDocument) must name one and must not
  have a Resource; resource-based policies have both.
- An explicit Deny in any applicable statement wins; otherwise some statement must Allow;
  otherwise the request is implicitly denied.
- Action names are case-insensitive, resource ARNs case-sensitive; in both ``*`` matches any
  run of characters and ``?`` exactly one.
- Within a Condition block every operator, and every key under an operator, must hold (AND);
  the values listed for one key are alternatives (OR). A key missing from the request makes the
  condition false, except for negated operators (true), ``...IfExists`` (true), ``Null``, and
  ``ForAllValues:`` (true).
- Policy variables (``${aws:username}``) are substituted only in documents of version
  2012-10-17; in 2008-10-17 documents they are plain text.
- IAM checks a document in stages and reports the first failing stage: syntax, version, "legacy
  parsing", Sid uniqueness, actions present, resources present, resource format, action format.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lamina.domain.arns import PARTITION
from lamina.errors import AwsError, LaminaError

CURRENT_VERSION = "2012-10-17"
VERSIONS = ("2008-10-17", CURRENT_VERSION)

# Context values as a request presents them: one string, or several for multi-valued keys
# (aws:TagKeys and the like).
Context = Mapping[str, "str | Sequence[str]"]

# MalformedPolicyDocument messages, worded as IAM words them.
SYNTAX_ERROR = "Syntax errors in policy."
VERSION_TOO_OLD = "Policy document must be version 2012-10-17 or greater."
LEGACY_PARSING = "The policy failed legacy parsing"
SID_NOT_UNIQUE = "Statement IDs (SID) in a single policy must be unique."
# Remembered from IAM answers, not confirmed against a recording (also TRUST_ACTIONS_ONLY):
SID_NOT_ALPHANUMERIC = (
    "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular "
    "expression [0-9A-Za-z]*"
)
NO_ACTIONS = "Policy statement must contain actions."
NO_RESOURCES = "Policy statement must contain resources."
PRINCIPAL_NOT_ALLOWED = "Policy document should not specify a principal."
PRINCIPAL_MISSING = "Missing required field Principal"
NO_PRINCIPALS = (
    "Invalid principal in policy: com.amazon.balsa.error.InvalidPolicyException: "
    "The passed in policy has a statement with no principals!"
)
TRUST_ACTIONS_ONLY = "AssumeRole policy may only specify STS AssumeRole actions."
NO_VENDOR = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
ONE_COLON = "Actions/Condition can contain only one colon."


class MalformedPolicy(AwsError):
    """IAM's MalformedPolicyDocument (400); ``str(exc)`` is IAM's message."""

    code = "MalformedPolicyDocument"
    status = 400
    sender_fault = True


def invalid_principal(principal_type: str, value: str) -> MalformedPolicy:
    """``Invalid principal in policy: "AWS":"arn:..."`` (IAM upper-cases the type: "SERVICE")."""
    return MalformedPolicy(f'Invalid principal in policy: "{principal_type.upper()}":"{value}"')


class PolicyKind(enum.Enum):
    IDENTITY = "identity"  # attached to a user, group or role: no Principal
    TRUST = "trust"  # a role's AssumeRolePolicyDocument: Principal, no Resource
    RESOURCE = "resource"  # attached to a resource: Principal and Resource


class Effect(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"


@dataclass(frozen=True)
class Principals:
    """A Principal or NotPrincipal element; ``anyone`` for ``"*"`` or ``{"AWS": "*"}``."""

    anyone: bool = False
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()


@dataclass(frozen=True)
class Condition:
    """One key under one operator: ``{"StringEquals": {"aws:SourceAccount": ["1", "2"]}}``."""

    operator: str  # as written, qualifiers included: "ForAnyValue:StringLikeIfExists"
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    effect: Effect
    actions: tuple[str, ...]
    not_action: bool = False
    resources: tuple[str, ...] | None = None  # None: no Resource element (trust policies)
    not_resource: bool = False
    principals: Principals | None = None  # None: no Principal element (identity policies)
    not_principal: bool = False
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None


@dataclass(frozen=True)
class PolicyDocument:
    kind: PolicyKind
    statements: tuple[Statement, ...]
    version: str | None = None
    id: str | None = None

    @property
    def uses_variables(self) -> bool:
        """Policy variables are only substituted in 2012-10-17 documents."""
        return self.version == CURRENT_VERSION

    def aws_principals(self) -> tuple[str, ...]:
        """Every ``"AWS"`` principal named, so a service can check that users and roles exist."""
        return tuple(p for s in self.statements if s.principals for p in s.principals.aws)


# -- parsing -----------------------------------------------------------------------------------

_TOP_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    [
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
    ]
)
_PRINCIPAL_TYPES = {
    "AWS": "aws",
    "Service": "service",
    "Federated": "federated",
    "CanonicalUser": "canonical_user",
}
_SET_QUALIFIERS = ("ForAnyValue:", "ForAllValues:")
_SID = re.compile(r"[0-9A-Za-z]*")
_VENDOR_INVALID = re.compile(r"[^a-zA-Z0-9\-.]")
_AWS_PRINCIPAL = re.compile(
    r"\*|\d{12}|arn:aws[a-z-]*:iam::\d{12}:(?:root|user/[^*?]+|role/[^*?]+)"
    r"|arn:aws[a-z-]*:sts::\d{12}:(?:assumed-role/[^/*?]+/[^*?]+|federated-user/[^*?]+)"
)
_SERVICE_PRINCIPAL = re.compile(
    r"[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:amazonaws\.com(?:\.cn)?|aws\.internal)", re.I
)
_CANONICAL_USER = re.compile(r"[0-9a-f]{64}")
# The actions a trust policy may grant (IAM User Guide, "Role trust policy").
_TRUST_ACTIONS = tuple(
    [
        "sts:assumerole",
        "sts:assumerolewithsaml",
        "sts:assumerolewithwebidentity",
        "sts:tagsession",
        "sts:setsourceidentity",
        "sts:setcontext",
    ]
)
_PARTITIONS = frozenset(
    {"*", "aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}
)
_REGIONLESS = {
    "iam": "IAM resource {resource} cannot contain region information.",
    "s3": "Resource {resource} can not contain region information.",
}
_IAM_PATHS = tuple(
    [
        "user/",
        "federated-user/",
        "role/",
        "group/",
        "instance-profile/",
        "mfa/",
        "server-certificate/",
        "policy/",
        "sms-mfa/",
        "saml-provider/",
        "oidc-provider/",
        "report/",
        "access-report/",
    ]
)


class _Syntax(LaminaError):
    """Raised inside the grammar walk; turned into "Syntax errors in policy." at the boundary."""


def parse_policy(
    text: str, kind: PolicyKind = PolicyKind.IDENTITY, *, require_current_version: bool = False
) -> PolicyDocument:
    """Validate ``text`` as IAM does and return the document; raises :class:`MalformedPolicy`.

    ``require_current_version`` is for managed policies (CreatePolicy, CreatePolicyVersion),
    which IAM refuses unless their Version is 2012-10-17; inline and trust policies may omit it.
    """
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
        if not isinstance(raw, dict) or not set(raw) <= _TOP_KEYS:
            raise _Syntax
        version, policy_id = raw.get("Version"), raw.get("Id")
        if version is not None and version not in VERSIONS:
            raise _Syntax
        if policy_id is not None and not isinstance(policy_id, str):
            raise _Syntax
        body = raw.get("Statement")
        items = [body] if isinstance(body, dict) else body
        if not isinstance(items, list) or not items:
            raise _Syntax
        statements = tuple(_statement(item) for item in items)
    except (ValueError, RecursionError, _Syntax) as exc:
        raise MalformedPolicy(SYNTAX_ERROR) from exc
    if require_current_version and version != CURRENT_VERSION:
        raise MalformedPolicy(VERSION_TOO_OLD)
    _check_kind(kind, statements)
    resource_error = _check_legacy(items, statements)
    _check_sids(kind, statements)
    if any(not st.actions for st in statements):
        raise MalformedPolicy(NO_ACTIONS)
    if kind is not PolicyKind.TRUST and any(not st.resources for st in statements):
        raise MalformedPolicy(NO_RESOURCES)
    if resource_error:
        raise MalformedPolicy(resource_error)
    for st in statements:
        for action in st.actions:
            _check_action(action)
    if kind is PolicyKind.TRUST:
        _check_trust_actions(statements)
    for principals in (st.principals for st in statements if st.principals):
        _check_principals(principals)
    return PolicyDocument(kind, statements, version, policy_id)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _strings(value: Any) -> tuple[str, ...]:
    """A string or a list of strings (Action, Resource and principal values)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _Syntax


def _condition_value(value: Any) -> str:
    # The grammar allows strings, numbers and booleans ("Bool": {"aws:SecureTransport": false}).
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _Syntax


def _statement(item: Any) -> Statement:
    if not isinstance(item, dict) or not set(item) <= _STATEMENT_KEYS:
        raise _Syntax
    if ("Action" in item and "NotAction" in item) or ("Resource" in item and "NotResource" in item):
        raise _Syntax
    if "Principal" in item and "NotPrincipal" in item:
        raise _Syntax
    effect = item.get("Effect")
    if not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
        raise _Syntax
    sid = item.get("Sid")
    if "Sid" in item and not isinstance(sid, str):
        raise _Syntax
    action_key = "NotAction" if "NotAction" in item else "Action"
    resource_key = "NotResource" if "NotResource" in item else "Resource"
    principal_key = "NotPrincipal" if "NotPrincipal" in item else "Principal"
    return Statement(
        effect=Effect.ALLOW if effect.lower() == "allow" else Effect.DENY,
        actions=_strings(item[action_key]) if action_key in item else (),
        not_action=action_key == "NotAction",
        resources=_strings(item[resource_key]) if resource_key in item else None,
        not_resource=resource_key == "NotResource",
        principals=_principals(item[principal_key]) if principal_key in item else None,
        not_principal=principal_key == "NotPrincipal",
        conditions=_conditions(item.get("Condition", {})),
        sid=sid,
    )


def _principals(value: Any) -> Principals:
    if value == "*":
        return Principals(anyone=True)
    if not isinstance(value, dict) or not set(value) <= set(_PRINCIPAL_TYPES):
        raise _Syntax
    found = {_PRINCIPAL_TYPES[k]: _strings(v) for k, v in value.items()}
    if not any(found.values()):
        raise MalformedPolicy(NO_PRINCIPALS)
    aws = found.get("aws", ())
    return Principals(
        anyone="*" in aws,
        aws=aws,
        service=found.get("service", ()),
        federated=found.get("federated", ()),
        canonical_user=found.get("canonical_user", ()),
    )


def _conditions(block: Any) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        raise _Syntax
    out = []
    for name, keys in block.items():
        if not isinstance(keys, dict):
            raise _Syntax
        if _base_operator(name)[0] not in _OPERATORS and keys:
            raise _Syntax
        for key, value in keys.items():
            values = value if isinstance(value, list) else [value]
            out.append(Condition(name, key, tuple(_condition_value(v) for v in values)))
    return tuple(out)


@lru_cache(maxsize=256)
def _base_operator(name: str) -> tuple[str, str | None, bool]:
    """("StringLike", "ForAnyValue:", if_exists) for "ForAnyValue:StringLikeIfExists"."""
    qualifier = next((q for q in _SET_QUALIFIERS if name.startswith(q)), None)
    base = name[len(qualifier) :] if qualifier else name
    if_exists = base.endswith("IfExists") and base != "IfExists"
    return (base[: -len("IfExists")] if if_exists else base), qualifier, if_exists


def _check_kind(kind: PolicyKind, statements: tuple[Statement, ...]) -> None:
    for st in statements:
        if kind is PolicyKind.IDENTITY and st.principals is not None:
            raise MalformedPolicy(PRINCIPAL_NOT_ALLOWED)
        if kind is PolicyKind.TRUST and st.resources is not None:
            raise MalformedPolicy(f"Has prohibited field {'NotResource' if st.not_resource else 'Resource'}")
        if kind is not PolicyKind.IDENTITY and st.principals is None:
            raise MalformedPolicy(PRINCIPAL_MISSING)


def _check_legacy(raw_statements: list[Any], statements: tuple[Statement, ...]) -> str | None:
    """IAM's "legacy parsing" stage: exact-case Effect, valid dates, well-formed ARNs.

    Returns the resource format error IAM reports later, after the Sid, action and resource
    checks: the error of the last resource it examines, each statement's resources in reverse
    lexical order; once it has one it skips the legacy ARN check (as moto's recordings of real
    IAM answers show).
    """
    for raw, st in zip(raw_statements, statements, strict=True):
        if raw["Effect"] not in ("Allow", "Deny"):
            raise MalformedPolicy(LEGACY_PARSING)
        for cond in st.conditions:
            dates = _base_operator(cond.operator)[0].startswith("Date")
            if dates and any(_parse_date(v) is None for v in cond.values):
                raise MalformedPolicy(LEGACY_PARSING)
    error = None
    for st in statements:
        for resource in sorted(st.resources or (), reverse=True):
            error = _resource_format_error(resource) or error
        if error is None:
            for resource in st.resources or ():
                parts = resource.split(":")
                if resource != "*" and (
                    (resource.count(":") < 5 and "::" in resource) or len(parts) < 3 or not parts[2]
                ):
                    raise MalformedPolicy(LEGACY_PARSING)
    return error


def _check_sids(kind: PolicyKind, statements: tuple[Statement, ...]) -> None:
    seen: set[str] = set()
    for st in statements:
        if st.sid:
            if st.sid in seen:
                raise MalformedPolicy(SID_NOT_UNIQUE)
            seen.add(st.sid)
    if kind is not PolicyKind.RESOURCE:
        for st in statements:
            if st.sid is not None and not _SID.fullmatch(st.sid):
                raise MalformedPolicy(SID_NOT_ALPHANUMERIC)


def _resource_format_error(resource: str) -> str | None:
    if resource == "*":
        return None
    _, sep, rest = resource.partition(":")
    if not sep:
        return f'Resource {resource} must be in ARN format or "*".'
    partition, sep, rest = rest.partition(":")
    if partition not in _PARTITIONS:
        # IAM shows the ARN it tried to read, "*" standing for the missing parts.
        parts = rest.split(":")
        shown = [
            parts[0] if parts[0] or len(parts) > 1 else "*",
            parts[1] if len(parts) > 1 else "*",
            parts[2] if len(parts) > 2 else "*",
            ":".join(parts[3:]) if len(parts) > 3 else "*",
        ]
        return f'Partition "{partition}" is not valid for resource "arn:{partition}:{":".join(shown)}".'
    if not sep:
        return "Resource vendor must be fully qualified and cannot contain regexes."
    service, _, rest = rest.partition(":")
    path = rest.partition(":")[2].partition(":")[2]
    # S3 access points are regional; buckets and objects are not.
    if (
        service in _REGIONLESS
        and not rest.startswith(":")
        and not (service == "s3" and path.startswith("accesspoint/"))
    ):
        return _REGIONLESS[service].format(resource=resource)
    if service == "iam" and path != "*" and not path.startswith(_IAM_PATHS):
        return f'IAM resource path must either be "*" or start with {", ".join(_IAM_PATHS)}.'
    return None


def _check_action(action: str) -> None:
    parts = action.split(":")
    if len(parts) == 1 and action != "*":
        raise MalformedPolicy(NO_VENDOR)
    if len(parts) > 2:
        raise MalformedPolicy(ONE_COLON)
    if parts[0] != "*" and _VENDOR_INVALID.search(parts[0]):
        raise MalformedPolicy(f"Vendor {parts[0]} is not valid")


def _check_trust_actions(statements: tuple[Statement, ...]) -> None:
    for st in statements:
        if st.not_action:
            continue
        for action in st.actions:
            if not any(action_matches(action, allowed) for allowed in _TRUST_ACTIONS):
                raise MalformedPolicy(TRUST_ACTIONS_ONLY)


def _check_principals(p: Principals) -> None:
    for value in p.aws:
        if not _AWS_PRINCIPAL.fullmatch(value):
            raise invalid_principal("AWS", value)
    for value in p.service:
        if not _SERVICE_PRINCIPAL.fullmatch(value):
            raise invalid_principal("Service", value)
    for value in p.federated:
        if not value or "*" in value:
            raise invalid_principal("Federated", value)
    for value in p.canonical_user:
        if not _CANONICAL_USER.fullmatch(value):
            raise invalid_principal("CanonicalUser", value)


# -- matching ------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _wildcards(text: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(_wildcards(pattern), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _variable(spec: str, ctx: Mapping[str, tuple[str, ...]]) -> str | None:
    """The text a ``${...}`` stands for, or None when its key is missing and has no default."""
    if spec in ("*", "?", "$"):
        return spec
    key, comma, default = spec.partition(",")
    values = ctx.get(key.strip().lower())
    if values and len(values) == 1:
        return values[0]
    default = default.strip()
    if comma and len(default) >= 2 and default[0] == default[-1] == "'":
        return default[1:-1]
    return None


def _pattern(
    pattern: str, ignore_case: bool, ctx: Mapping[str, tuple[str, ...]] | None
) -> re.Pattern[str] | None:
    """``pattern`` as a regex; with ``ctx``, policy variables are replaced by literal text."""
    if ctx is None or "${" not in pattern:
        return _glob(pattern, ignore_case)
    out, pos = [], 0
    for m in _VARIABLE.finditer(pattern):
        value = _variable(m.group(1), ctx)
        if value is None:
            return None
        out += [_wildcards(pattern[pos : m.start()]), re.escape(value)]
        pos = m.end()
    out.append(_wildcards(pattern[pos:]))
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def action_matches(pattern: str, action: str) -> bool:
    """``ec2:Create*`` matches ``EC2:CreateNetworkInterface``: actions are case-insensitive."""
    return _glob(pattern, True).fullmatch(action) is not None


def resource_matches(pattern: str, resource: str, ctx: Context | None = None) -> bool:
    """Case-sensitive ARN match with ``*``/``?``; ``ctx`` enables policy variables."""
    compiled = _pattern(pattern, False, None if ctx is None else normalise_context(ctx))
    return compiled is not None and compiled.fullmatch(resource) is not None


def normalise_context(ctx: Context | None) -> dict[str, tuple[str, ...]]:
    """Condition keys are case-insensitive; every value becomes a tuple of strings."""
    if not ctx:
        return {}
    return {k.lower(): (v,) if isinstance(v, str) else tuple(v) for k, v in ctx.items()}


# -- conditions -------------------------------------------------------------------------------------

_DATE = re.compile(
    r"(-?\d+)(?:-(\d{1,2})(?:-(\d{1,2}))?)?"
    r"(?:t(\d{1,2})(?::(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,9}))?)?)?)?"
    r"(z|[+-]\d{2}(?::?\d{2})?)?"
)


def _parse_date(text: str) -> float | None:
    """Epoch seconds of an ISO 8601 date-time or of an epoch number; None if neither."""
    if text.isdigit():
        n = int(text)
        return float(n) if n <= 2**63 - 1 else None
    m = _DATE.fullmatch(text.lower())
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        offset = dt.timedelta()
        if zone and zone != "z":
            hours, minutes = zone[1:3], zone[3:].lstrip(":") or "0"
            if int(hours) > 23 or int(minutes) > 59:
                return None
            offset = dt.timedelta(hours=int(hours), minutes=int(minutes)) * (-1 if zone[0] == "-" else 1)
        when = dt.datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=dt.timezone(offset),
        )
    except (ValueError, OverflowError):
        return None
    return when.timestamp() + (float("0." + fraction) if fraction else 0.0)


def _numeric(a: str, b: str, compare: Callable[[float, float], bool]) -> bool:
    try:
        return compare(float(a), float(b))
    except ValueError:
        return False


def _date(a: str, b: str, compare: Callable[[float, float], bool]) -> bool:
    x, y = _parse_date(a), _parse_date(b)
    return x is not None and y is not None and compare(x, y)


def _arn_like(value: str, pattern: str) -> bool:
    # Each of the six colon-separated parts is matched on its own (Condition operators, "ARN").
    parts, wanted = value.split(":", 5), pattern.split(":", 5)
    return len(parts) == len(wanted) == 6 and all(
        _glob(w, False).fullmatch(p) is not None for p, w in zip(parts, wanted, strict=True)
    )


def _ip(value: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


_Matcher = Callable[[str, str], bool]
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "LessThanEquals": operator.le,
    "GreaterThan": operator.gt,
    "GreaterThanEquals": operator.ge,
}


def _numeric_matcher(compare: Callable[[float, float], bool]) -> _Matcher:
    return lambda a, b: _numeric(a, b, compare)


def _date_matcher(compare: Callable[[float, float], bool]) -> _Matcher:
    return lambda a, b: _date(a, b, compare)


# Operator -> (request value, policy value) -> match, for the operators that are not negations.
_POSITIVE: dict[str, _Matcher] = {
    "StringEquals": lambda a, b: a == b,
    "StringEqualsIgnoreCase": lambda a, b: a.casefold() == b.casefold(),
    "StringLike": lambda a, b: _glob(b, False).fullmatch(a) is not None,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": lambda a, b: a.lower() == b.lower(),
    "BinaryEquals": lambda a, b: a == b,
    "IpAddress": _ip,
    **{f"Numeric{n}": _numeric_matcher(c) for n, c in _COMPARISONS.items()},
    **{f"Date{n}": _date_matcher(c) for n, c in _COMPARISONS.items()},
}
# Negated operator -> the operator it negates.
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
}
_OPERATORS = frozenset({*_POSITIVE, *_NEGATED, "Null"})


def _condition_holds(cond: Condition, ctx: Mapping[str, tuple[str, ...]], variables: bool) -> bool:
    base, qualifier, if_exists = _base_operator(cond.operator)
    present = ctx.get(cond.key.lower())
    if base == "Null":
        # "Null": "true" asks for the key to be absent, "false" for it to be present.
        return any((not present) == (v.lower() == "true") for v in cond.values)
    if base not in _OPERATORS:
        return False
    negated = base in _NEGATED
    if not present:
        if qualifier == "ForAllValues:":
            return True
        if qualifier == "ForAnyValue:":
            return False
        return if_exists or negated
    match = _POSITIVE[_NEGATED.get(base, base)]
    wanted = [_substitute(v, ctx) if variables and "${" in v else v for v in cond.values]
    targets = [w for w in wanted if w is not None]

    def one(value: str) -> bool:
        hit = any(match(value, w) for w in targets)
        return not hit if negated else hit

    if qualifier == "ForAllValues:":
        return all(one(v) for v in present)
    return any(one(v) for v in present)


def missing_keys(st: Statement, ctx: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The condition keys ``st`` tests that ``ctx`` does not hold (IAM's MissingContextValues)."""
    return tuple(dict.fromkeys(c.key for c in st.conditions if c.key.lower() not in ctx))


def _substitute(value: str, ctx: Mapping[str, tuple[str, ...]]) -> str | None:
    """Policy variables in a condition value; None when one of them cannot be resolved."""
    missing = False

    def replace(m: re.Match[str]) -> str:
        nonlocal missing
        found = _variable(m.group(1), ctx)
        missing = missing or found is None
        return found or ""

    out = _VARIABLE.sub(replace, value)
    return None if missing else out


# -- evaluation -----------------------------------------------------------------------------------


def statement_applies(
    st: Statement,
    action: str,
    resource: str | None,
    ctx: Mapping[str, tuple[str, ...]],
    variables: bool,
) -> bool:
    """Whether ``st`` matches the action, the resource (None: not checked, as for trust policies)
    and its conditions hold for ``ctx`` (from :func:`normalise_context`); ``variables``: the
    document substitutes policy variables (see :attr:`PolicyDocument.uses_variables`)."""
    return statement_covers(st, action) and resource_and_conditions_hold(st, resource, ctx, variables)


def statement_covers(st: Statement, action: str) -> bool:
    """Whether the statement's Action (or NotAction) element covers ``action``."""
    return any(action_matches(a, action) for a in st.actions) != st.not_action


def resource_and_conditions_hold(
    st: Statement, resource: str | None, ctx: Mapping[str, tuple[str, ...]], variables: bool
) -> bool:
    """The rest of :func:`statement_applies`, for a statement already known to cover the action."""
    if resource is not None and st.resources is not None:
        compiled = (_pattern(r, False, ctx if variables else None) for r in st.resources)
        hit = any(c is not None and c.fullmatch(resource) is not None for c in compiled)
        if hit == st.not_resource:
            return False
    return all(_condition_holds(c, ctx, variables) for c in st.conditions)


def _decide(
    policies: Sequence[PolicyDocument],
    action: str,
    resource: str | None,
    context: Context | None,
    principal: Callable[[Principals], bool] | None = None,
) -> Decision:
    ctx = normalise_context(context)
    allowed = False
    for policy in policies:
        for st in policy.statements:
            # A statement applies when its Principal names the caller (NotPrincipal: does not).
            if principal and (st.principals is None or principal(st.principals) == st.not_principal):
                continue
            if statement_applies(st, action, resource, ctx, policy.uses_variables):
                if st.effect is Effect.DENY:
                    return Decision.EXPLICIT_DENY
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def evaluate(
    identity_policies: Sequence[PolicyDocument],
    action: str,
    resource: str,
    context: Context | None = None,
) -> Decision:
    """Whether the identity holding these policies (managed and inline) may do ``action``.

    An explicit Deny in any statement wins over every Allow; without an Allow the request is
    implicitly denied. ``context`` holds the request's condition keys (``aws:SourceIp``, ...).
    """
    return _decide(identity_policies, action, resource, context)


def trust_decision(
    trust_policy: PolicyDocument,
    principal: Callable[[Principals], bool],
    action: str = "sts:AssumeRole",
    context: Context | None = None,
) -> Decision:
    """Evaluate a trust (or resource) policy for the callers ``principal`` accepts."""
    return _decide([trust_policy], action, None, context, principal)


def trusts(
    trust_policy: PolicyDocument,
    service_principal: str,
    action: str = "sts:AssumeRole",
    context: Context | None = None,
) -> bool:
    """Whether the trust policy lets a service (``lambda.amazonaws.com``) assume the role."""
    service = service_principal.lower()

    def names(p: Principals) -> bool:
        return p.anyone or service in (s.lower() for s in p.service)

    return trust_decision(trust_policy, names, action, context) is Decision.ALLOW


def trusts_account(
    trust_policy: PolicyDocument,
    account_id: str,
    caller_arn: str,
    action: str = "sts:AssumeRole",
    context: Context | None = None,
) -> bool:
    """Whether the trust policy lets ``caller_arn``, of account ``account_id``, assume the role.

    An account principal (``123456789012`` or ``arn:aws:iam::123456789012:root``) trusts every
    identity of that account (whose own policies must still allow sts:AssumeRole); a user or
    role ARN trusts that identity, a role ARN also its sessions (``...:assumed-role/Name/s``).
    """
    session = re.fullmatch(r"arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/.+", caller_arn)

    def names(p: Principals) -> bool:
        for entry in p.aws:
            if entry in ("*", account_id, caller_arn) or entry == f"arn:{PARTITION}:iam::{account_id}:root":
                return True
            role = re.fullmatch(r"arn:([^:]+):iam::(\d{12}):role/(?:.*/)?([^/]+)", entry)
            if session and role and session.group(1, 2, 3) == role.group(1, 2, 3):
                return True
        return p.anyone

    return trust_decision(trust_policy, names, action, context) is Decision.ALLOW
