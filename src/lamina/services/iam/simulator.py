"""IAM's policy simulator (SimulatePrincipalPolicy, SimulateCustomPolicy), answered by the evaluator
every request is authorized with (:mod:`lamina.domain.evaluation`).

Facts from AWS (IAM API Reference: SimulatePrincipalPolicy, SimulateCustomPolicy, EvaluationResult,
ResourceSpecificResult, Statement):
- One EvaluationResult per action. With resource ARNs, each resource's decision is in
  ResourceSpecificResults and the top-level EvalDecision is the most restrictive of them
  (explicitDeny over implicitDeny over allowed); without, the resource is ``*``.
- MatchedStatements name the policy (SourcePolicyId, SourcePolicyType) and where the statement
  sits in its document (StartPosition, EndPosition: 1-based line and column). When a Deny decides,
  only the deny statements are listed.
- MissingContextValues: condition keys the policies test that ContextEntries do not provide.
- PermissionsBoundaryDecisionDetail appears when a permissions boundary takes part.
- Only the given ContextEntries are known to the simulation: request keys are not invented.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lamina.domain.arns import Arn
from lamina.domain.evaluation import Caller, Decision, Matched, PolicySet, PolicyType, PrincipalKind, decide
from lamina.domain.policy import MalformedPolicy, PolicyDocument, PolicyKind, Statement, parse_policy
from lamina.errors import AwsError

CUSTOM_TYPE = "IAM Policy"
_RANK = {"allowed": 0, "implicitDeny": 1, "explicitDeny": 2}


@dataclass(frozen=True)
class SourcedPolicy:
    """A policy document and where it came from, as the simulator names it."""

    source_id: str  # the policy's name, or "PolicyInputList.1" for a policy passed in
    source_type: str  # user | group | role | aws-managed | user-managed | resource | IAM Policy
    text: str
    document: PolicyDocument


def invalid_input(message: str) -> AwsError:
    return AwsError(message, code="InvalidInput", status=400, sender_fault=True)


def sourced(
    source_id: str, source_type: str, text: str, kind: PolicyKind = PolicyKind.IDENTITY
) -> SourcedPolicy:
    """A document to simulate; a malformed one is IAM's MalformedPolicyDocument error."""
    try:
        document = parse_policy(text, kind)
    except MalformedPolicy as exc:
        raise AwsError(str(exc), code="MalformedPolicyDocument", status=400, sender_fault=True) from exc
    return SourcedPolicy(source_id, source_type, text, document)


def inputs(params: dict[str, Any], name: str, kind: PolicyKind = PolicyKind.IDENTITY) -> list[SourcedPolicy]:
    """The policies passed in ``params[name]`` (PolicyInputList...), named ``PolicyInputList.N``."""
    texts = params.get(name) or []
    return [sourced(f"{name}.{i}", CUSTOM_TYPE, str(t), kind) for i, t in enumerate(texts, 1)]


def context_entries(params: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """ContextEntries as condition keys: every value a string, as policies compare them."""
    out: dict[str, tuple[str, ...]] = {}
    for entry in params.get("ContextEntries") or []:
        if not isinstance(entry, dict) or not entry.get("ContextKeyName"):
            continue
        values = entry.get("ContextKeyValues") or []
        out[str(entry["ContextKeyName"])] = tuple(str(v) for v in values)
    return out


def simulate(
    *,
    caller: Caller,
    identity: Sequence[SourcedPolicy],
    boundary: Sequence[SourcedPolicy],
    params: dict[str, Any],
) -> dict[str, Any]:
    """The EvaluationResults (and paging) for ``params``' ActionNames x ResourceArns."""
    resource_policy = None
    if params.get("ResourcePolicy"):
        resource_policy = sourced(
            "ResourcePolicy", "resource", str(params["ResourcePolicy"]), PolicyKind.RESOURCE
        )
    owner = str(params.get("ResourceOwner") or "") or None
    resources = [str(r) for r in params.get("ResourceArns") or []] or ["*"]
    context = context_entries(params)
    boundary_doc = _merged([p.document for p in boundary]) if boundary else None
    by_type: dict[PolicyType, list[SourcedPolicy]] = {
        PolicyType.IDENTITY: list(identity),
        PolicyType.BOUNDARY: list(boundary),
        PolicyType.RESOURCE: [resource_policy] if resource_policy else [],
    }
    results = []
    for action in params.get("ActionNames") or []:
        action = str(action)
        specific = []
        for resource in resources:
            resource_owner = owner or _account_of(resource) or caller.account
            policies = PolicySet(
                [p.document for p in identity],
                boundary_doc,
                None,
                resource_policy.document if resource_policy else None,
            )
            decision = decide(caller, action, resource, resource_owner, policies, context)
            specific.append((resource, decision))
        results.append(_result(action, specific, by_type, boundary_doc is not None, resources != ["*"]))
    return _page(results, params)


def _merged(documents: Sequence[PolicyDocument]) -> PolicyDocument:
    """Several boundary inputs act as one boundary: their statements together."""
    if len(documents) == 1:
        return documents[0]
    statements = tuple(st for d in documents for st in d.statements)
    return PolicyDocument(PolicyKind.IDENTITY, statements, documents[0].version)


def _account_of(resource: str) -> str | None:
    arn = Arn.parse(resource)
    return arn.account if arn is not None and arn.account.isdigit() else None


def _eval_decision(decision: Decision) -> str:
    if decision.allowed:
        return "allowed"
    return "explicitDeny" if decision.explicit else "implicitDeny"


def _result(
    action: str,
    specific: list[tuple[str, Decision]],
    by_type: dict[PolicyType, list[SourcedPolicy]],
    with_boundary: bool,
    with_resources: bool,
) -> dict[str, Any]:
    worst = max((d for _, d in specific), key=lambda d: _RANK[_eval_decision(d)])
    out: dict[str, Any] = {"EvalActionName": action}
    if not with_resources:
        out["EvalResourceName"] = "*"
    out["EvalDecision"] = _eval_decision(worst)
    out["MatchedStatements"] = _statements(worst, by_type)
    out["MissingContextValues"] = list(dict.fromkeys(k for _, d in specific for k in d.missing_context))
    if with_boundary:
        out["PermissionsBoundaryDecisionDetail"] = {
            "AllowedByPermissionsBoundary": worst.denied_by is not PolicyType.BOUNDARY
        }
    if with_resources:
        out["EvalDecisionDetails"] = {}
        out["ResourceSpecificResults"] = [
            {
                "EvalResourceName": resource,
                "EvalResourceDecision": _eval_decision(decision),
                "MatchedStatements": _statements(decision, by_type),
                "MissingContextValues": list(decision.missing_context),
            }
            for resource, decision in specific
        ]
    return out


def _statements(decision: Decision, by_type: dict[PolicyType, list[SourcedPolicy]]) -> list[dict[str, Any]]:
    matched: list[Matched] = list(decision.matched)
    if decision.explicit:  # a Deny decided: only the deny statements are shown
        matched = [m for m in matched if m.statement.effect.value == "Deny"]
    elif not decision.allowed:
        matched = []
    out = []
    for m in matched:
        sources = by_type.get(m.policy_type, [])
        if m.policy_type is PolicyType.BOUNDARY and sources:
            # the boundary inputs were merged into one document: find the statement's own input
            source = next((s for s in sources if m.statement in s.document.statements), sources[0])
        elif m.policy_index < len(sources):
            source = sources[m.policy_index]
        else:
            continue
        start, end = _position(source, m.statement)
        out.append(
            {
                "SourcePolicyId": source.source_id,
                "SourcePolicyType": source.source_type,
                "StartPosition": {"Line": start[0], "Column": start[1]},
                "EndPosition": {"Line": end[0], "Column": end[1]},
            }
        )
    return out


def _position(source: SourcedPolicy, statement: Statement) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where ``statement`` sits in its document's text: (line, column) of its first and last
    characters, 1-based (the whole document if it cannot be found)."""
    index = source.document.statements.index(statement)
    span = _statement_spans(source.text)
    start, end = span[index] if index < len(span) else (0, max(len(source.text) - 1, 0))
    return _line_column(source.text, start), _line_column(source.text, end)


def _statement_spans(text: str) -> list[tuple[int, int]]:
    """The character span of each statement object in a policy's JSON text."""
    decoder = json.JSONDecoder()
    key = text.find('"Statement"')
    if key < 0:
        return []
    pos = text.find(":", key) + 1
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos < len(text) and text[pos] == "{":
        _, end = decoder.raw_decode(text, pos)
        return [(pos, end - 1)]
    spans = []
    pos += 1  # past "["
    while pos < len(text):
        while pos < len(text) and (text[pos].isspace() or text[pos] == ","):
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            break
        try:
            _, end = decoder.raw_decode(text, pos)
        except ValueError:
            break
        spans.append((pos, end - 1))
        pos = end
    return spans


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _page(results: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    start = int(params["Marker"]) if str(params.get("Marker") or "").isdigit() else 0
    limit = int(params.get("MaxItems") or 1000)
    page = results[start : start + limit]
    out: dict[str, Any] = {"EvaluationResults": page, "IsTruncated": start + limit < len(results)}
    if out["IsTruncated"]:
        out["Marker"] = str(start + limit)
    return out


def caller_for(source_arn: str, account: str) -> Caller:
    """The simulated caller: the user, or the role as one of its sessions would be."""
    arn = Arn.parse(source_arn)
    if arn is not None and arn.resource.startswith("role/"):
        return Caller(PrincipalKind.ROLE_SESSION, account, source_arn, source_arn)
    return Caller(PrincipalKind.USER, account, source_arn)
