"""The vocabulary of the authorization table (pure): what one operation asks IAM, and the small readers
the per-service tables (:mod:`lamina.domain.actions_lambda`, ``actions_iam``, ``actions_ec2``) build
their entries from. :mod:`lamina.domain.actions` is the entry point.

Request parameters arrive parsed but unvalidated (AWS authorizes before it validates), so every
reader here accepts anything: a missing or wrong-typed value reads as absent and never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from lamina.domain.arns import PARTITION

ContextValue = str | tuple[str, ...]


@dataclass(frozen=True)
class Check:
    """One question for the evaluator: may the principal perform ``action`` on ``resource``?

    ``context`` holds the operation's own condition keys (``lambda:VpcIds``, ``aws:RequestTag/k``,
    ...); a multi-valued key is a tuple. A key the request does not supply is absent, never empty,
    so ``"Null": {"lambda:VpcIds": "true"}`` holds exactly when no VPC was asked for."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class IamEntity:
    """An existing IAM user, role or group as the table needs it: its own path and name (the request
    may spell the name in another case) and the ARN of its permissions boundary, if any."""

    path: str
    name: str
    boundary: str | None = None


class Lookups(Protocol):
    """What the table may ask the stores (the authorizer implements it)."""

    def subnet_vpc(self, account: str, region: str, subnet_id: str) -> str | None:
        """The VPC id of the subnet, None if there is no such subnet."""
        ...

    def iam_entity(self, account: str, kind: str, name: str) -> IamEntity | None:
        """The IAM ``kind`` ("user", "role", "group") called ``name`` in any case (IAM names are
        case-insensitive), None if absent."""
        ...


@dataclass(frozen=True)
class Call:
    """One request as the table sees it: where it runs, its parameters and who asks."""

    account: str
    region: str
    params: Mapping[str, Any]
    lookups: Lookups
    caller_user: str | None = None

    def text(self, key: str) -> str | None:
        """The parameter ``key`` if it is a string, else None."""
        value = self.params.get(key)
        return value if isinstance(value, str) else None

    def texts(self, key: str) -> tuple[str, ...]:
        """The strings of the list parameter ``key`` (other members and non-lists read as none)."""
        return strings(self.params.get(key))


def star(_call: Call) -> str:
    """Actions with no resource type: "the Resource element must be *" (Service Authorization
    Reference, "Resource types" column empty)."""
    return "*"


Resource = Callable[[Call], "str | tuple[str, ...]"]
Context = Callable[[Call], Mapping[str, ContextValue]]
Extra = Callable[[Call], tuple[Check, ...]]


@dataclass(frozen=True)
class Spec:
    """One operation's row: the action it needs on the resource(s) ``resource`` reads from the request
    (one Check per resource when it reads several), the condition keys ``context`` adds, and the
    further checks ``also`` adds (``iam:PassRole``, ``sts:TagSession``)."""

    action: str
    resource: Resource = star
    context: tuple[Context, ...] = ()
    also: tuple[Extra, ...] = ()

    def checks(self, call: Call) -> tuple[Check, ...]:
        """The checks this row asks for ``call``."""
        found_keys: dict[str, ContextValue] = {}
        for reader in self.context:
            found_keys.update(reader(call))
        # Read-only: the checks of a multi-resource row share one context.
        context = MappingProxyType(found_keys)
        found = self.resource(call)
        resources = (found,) if isinstance(found, str) else found
        primary = tuple(Check(self.action, resource, context) for resource in resources)
        return primary + tuple(check for extra in self.also for check in extra(call))


def strings(value: object) -> tuple[str, ...]:
    """The string members of ``value`` if it is a list or tuple, else none."""
    if not isinstance(value, list | tuple):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def multi(key: str, values: Iterable[str]) -> dict[str, ContextValue]:
    """``{key: values}`` without duplicates in first-seen order; nothing when there are no values."""
    found = tuple(dict.fromkeys(values))
    return {key: found} if found else {}


def tag_pairs(value: object) -> list[tuple[str, str]]:
    """Tags as ``[{"Key": k, "Value": v}]`` (IAM, STS, EC2) or ``{k: v}`` (Lambda); odd members skipped."""
    if isinstance(value, Mapping):
        return [(k, v) for k, v in value.items() if isinstance(k, str) and isinstance(v, str)]
    pairs = []
    for item in value if isinstance(value, list | tuple) else ():
        if isinstance(item, Mapping) and isinstance(item.get("Key"), str):
            tag_value = item.get("Value")
            pairs.append((item["Key"], tag_value if isinstance(tag_value, str) else ""))
    return pairs


def request_tags(pairs: Iterable[tuple[str, str]]) -> dict[str, ContextValue]:
    """``aws:RequestTag/<key>`` for each tag the request sets and ``aws:TagKeys`` for their keys (the
    global keys of the IAM User Guide, "Controlling access during AWS requests")."""
    context: dict[str, ContextValue] = {}
    keys = []
    for key, value in pairs:
        context[f"aws:RequestTag/{key}"] = value
        keys.append(key)
    return context | multi("aws:TagKeys", keys)


def tags_in(key: str) -> Context:
    """The request-tag keys of the tag parameter ``key``."""
    return lambda call: request_tags(tag_pairs(call.params.get(key)))


def tag_keys_in(key: str) -> Context:
    """``aws:TagKeys`` of an untag request's list of keys ``key``."""
    return lambda call: multi("aws:TagKeys", call.texts(key))


def copy_text(param: str, condition_key: str) -> Context:
    """The condition key ``condition_key`` set to the string parameter ``param`` when given."""

    def read(call: Call) -> Mapping[str, ContextValue]:
        value = call.text(param)
        return {condition_key: value} if value is not None else {}

    return read


def given(param: str, otherwise: Callable[[Call], str]) -> Callable[[Call], str]:
    """An ARN parameter as given (a policy ARN, a role ARN); ``otherwise`` when it is absent."""
    return lambda call: call.text(param) or otherwise(call)


def iam_root(account: str) -> str:
    return f"arn:{PARTITION}:iam::{account}:root"


def tag_on_create(action: str, resource: Resource) -> Extra:
    """Tagging while creating also needs the tagging action on the new resource, with the request's
    tag keys (Lambda Developer Guide, "Using attribute-based access control": CreateFunction with
    Tags needs lambda:TagResource; IAM User Guide, "Tagging IAM resources": CreateRole and CreateUser
    with Tags need iam:TagRole and iam:TagUser)."""

    def extra(call: Call) -> tuple[Check, ...]:
        pairs = tag_pairs(call.params.get("Tags"))
        if not pairs:
            return ()
        found = resource(call)
        target = found if isinstance(found, str) else (found[0] if found else "*")
        return (Check(action, target, MappingProxyType(request_tags(pairs))),)

    return extra
