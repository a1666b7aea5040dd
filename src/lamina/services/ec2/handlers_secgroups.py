"""Security groups and their rules.

The rule model and its checks (duplicates, limits, ports, protocols) are
:mod:`lamina.domain.secgroups`; here they meet the store. Group names are unique per VPC
(``InvalidGroup.Duplicate``); the VPC's ``default`` group cannot be deleted (``CannotDelete``);
a group in use by an interface or referenced by another group's rule is a
``DependencyViolation``. A group named by ``GroupName`` alone is looked for in the default VPC,
as EC2 does. Rules change in place with ModifySecurityGroupRules (a rule's new definition, same
id) and UpdateSecurityGroupRuleDescriptionsIngress/Egress (descriptions only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from lamina.domain import ec2
from lamina.domain import secgroups as S
from lamina.domain.ec2 import StoredRule, error, public
from lamina.domain.ec2_models import RevokedSecurityGroupRule, SecurityGroup, SecurityGroupRule
from lamina.errors import missing_parameter
from lamina.services.base import RequestContext
from lamina.services.ec2.handlers_tags import (
    Extractor,
    apply_filters,
    by_ids,
    dry_run,
    field,
    paginate,
    read,
    spec_tags,
    with_token,
    write,
)
from lamina.services.ec2.handlers_vpcs import new_group
from lamina.store.ec2 import Ec2Store, Ec2Tx

MAX_NAME = 255


def _no_default_vpc() -> Exception:
    return error("VPCIdNotSpecified", "No default VPC for this user")


def _default_vpc_id(tx: Ec2Tx) -> str | None:
    return next((v["VpcId"] for v in tx.find(ec2.VPC) if v.get("IsDefault")), None)


def _by_name(name: str, vpc_id: str | None) -> Exception:
    return error(
        "InvalidGroup.NotFound",
        f"The security group '{name}' does not exist in default VPC '{vpc_id or 'none'}'",
    )


def resolve_group(tx: Ec2Tx, params: Mapping[str, Any]) -> SecurityGroup:
    """The group a request names by ``GroupId`` (or by ``GroupName``, which EC2 resolves in the
    default VPC)."""
    group_id = params.get("GroupId")
    if group_id:
        return tx.require(ec2.SECURITY_GROUP, group_id)
    name = params.get("GroupName")
    if not name:
        raise missing_parameter("GroupId")
    vpc_id = _default_vpc_id(tx)
    if vpc_id is not None:
        for group in tx.find(ec2.SECURITY_GROUP, vpc_id=vpc_id):
            if group["GroupName"] == name:
                return group
    raise _by_name(name, vpc_id)


def _rule_item(tx: Ec2Tx, stored: StoredRule) -> SecurityGroupRule:
    item = S.to_rule_item(stored.rule_id, stored.rule, group_id=stored.group_id, owner_id=tx.account)
    item["Tags"] = list(stored.tags)
    item["SecurityGroupRuleArn"] = (
        f"arn:aws:ec2:{tx.region}:{tx.account}:security-group-rule/{stored.rule_id}"
    )
    return item


# -- groups -----------------------------------------------------------------------------------------


def create_security_group(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["GroupName"]
    description = params["Description"]
    if name.lower().startswith("sg-"):
        raise error("InvalidParameterValue", "Group names may not be in the format sg-*.")
    if not 0 < len(name) <= MAX_NAME:
        raise error(
            "InvalidParameterValue", f"Value ({name}) for parameter groupName is invalid. Invalid length."
        )
    if len(description) > MAX_NAME:
        raise error(
            "InvalidParameterValue",
            f"Value ({description}) for parameter GroupDescription is invalid. Invalid length.",
        )
    tags = spec_tags(params, ec2.SECURITY_GROUP)
    with write(store, ctx) as tx:
        vpc_id = params.get("VpcId") or _default_vpc_id(tx)
        if not vpc_id:
            raise _no_default_vpc()
        tx.require(ec2.VPC, vpc_id)
        if any(g["GroupName"] == name for g in tx.find(ec2.SECURITY_GROUP, vpc_id=vpc_id)):
            raise error(
                "InvalidGroup.Duplicate", f"The security group '{name}' already exists for VPC '{vpc_id}'"
            )
        dry_run(params)
        group = new_group(tx, vpc_id, name, description, tags)
        tx.add_rules(group["GroupId"], S.new_group_rules())
        tx.emit(ec2.SECURITY_GROUP_CHANGED, tx.group_view(group))
    out: dict[str, Any] = {"GroupId": group["GroupId"], "SecurityGroupArn": group["SecurityGroupArn"]}
    if tags:
        out["Tags"] = tags
    return out


def _permission_filters(prefix: str, direction: S.Direction) -> dict[str, Extractor]:
    key = "IpPermissions" if direction is S.Direction.INGRESS else "IpPermissionsEgress"
    return {
        f"{prefix}ip-permission.cidr": field(key, "IpRanges", "CidrIp"),
        f"{prefix}ip-permission.ipv6-cidr": field(key, "Ipv6Ranges", "CidrIpv6"),
        f"{prefix}ip-permission.from-port": field(key, "FromPort"),
        f"{prefix}ip-permission.to-port": field(key, "ToPort"),
        f"{prefix}ip-permission.protocol": field(key, "IpProtocol"),
        f"{prefix}ip-permission.group-id": field(key, "UserIdGroupPairs", "GroupId"),
        f"{prefix}ip-permission.user-id": field(key, "UserIdGroupPairs", "UserId"),
        f"{prefix}ip-permission.prefix-list-id": field(key, "PrefixListIds", "PrefixListId"),
    }


_GROUP_FILTERS = {
    "group-id": field("GroupId"),
    "group-name": field("GroupName"),
    "description": field("Description"),
    "vpc-id": field("VpcId"),
    "owner-id": field("OwnerId"),
    **_permission_filters("", S.Direction.INGRESS),
    **_permission_filters("egress.", S.Direction.EGRESS),
}


def describe_security_groups(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    def run(tx: Ec2Tx) -> list[SecurityGroup]:
        found = by_ids(tx, ec2.SECURITY_GROUP, params.get("GroupIds"))
        groups = found if found is not None else tx.find(ec2.SECURITY_GROUP)
        names = params.get("GroupNames")
        if names:
            # Names are those of the default VPC's groups, as in EC2.
            default_vpc = _default_vpc_id(tx)
            groups = [g for g in groups if g["VpcId"] == default_vpc]
            for name in names:
                if not any(g["GroupName"] == name for g in groups):
                    raise _by_name(name, default_vpc)
            groups = [g for g in groups if g["GroupName"] in names]
        return [tx.group_view(g) for g in groups]

    groups = apply_filters(read(store, ctx, run), params.get("Filters"), _GROUP_FILTERS)
    dry_run(params)
    page, token = paginate(groups, params)
    return with_token({"SecurityGroups": page}, token)


def delete_security_group(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    with write(store, ctx) as tx:
        group = resolve_group(tx, params)
        group_id = group["GroupId"]
        if group["GroupName"] == "default":
            raise error(
                "CannotDelete",
                f'the specified group: "{group_id}" name: "default" cannot be deleted by a user',
            )
        if tx.interfaces_in_group(group_id) or tx.referencing_groups(group_id):
            raise error("DependencyViolation", f"resource {group_id} has a dependent object")
        dry_run(params)
        tx.remove_rules(r.rule_id for r in tx.rules(group_id))
        tx.remove(group_id)
        tx.emit(ec2.SECURITY_GROUP_CHANGED, {**public(group), "Deleted": True})
    return {"Return": True, "GroupId": group_id}


# -- rules ---------------------------------------------------------------------------------------------


def _permissions(tx: Ec2Tx, group: SecurityGroup, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``IpPermissions``, or the older flat form (``IpProtocol``, ``FromPort``, ``CidrIp``, ...)."""
    permissions = params.get("IpPermissions")
    if permissions:
        return list(permissions)
    cidr = params.get("CidrIp")
    source = params.get("SourceSecurityGroupName")
    if cidr is None and source is None:
        raise missing_parameter("IpPermissions")
    flat: dict[str, Any] = {"IpProtocol": params.get("IpProtocol") or "-1"}
    for key in ("FromPort", "ToPort"):
        if params.get(key) is not None:
            flat[key] = params[key]
    if cidr is not None:
        flat["IpRanges"] = [{"CidrIp": cidr}]
    if source is not None:
        matches = [g for g in tx.find(ec2.SECURITY_GROUP, vpc_id=group["VpcId"]) if g["GroupName"] == source]
        if not matches:
            raise error(
                "InvalidGroup.NotFound",
                f"The security group '{source}' does not exist in VPC '{group['VpcId']}'",
            )
        flat["UserIdGroupPairs"] = [{"GroupId": matches[0]["GroupId"]}]
    return [flat]


def _check_peers(tx: Ec2Tx, rules: Sequence[S.Rule]) -> None:
    for rule in rules:
        if rule.group_id is not None and rule.group_owner in (None, tx.account):
            tx.require(ec2.SECURITY_GROUP, rule.group_id)


def _authorize(
    direction: S.Direction, store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    with write(store, ctx) as tx:
        group = resolve_group(tx, params)
        rules = S.expand_permissions(direction, _permissions(tx, group, params))
        _check_peers(tx, rules)
        existing = [r.rule for r in tx.rules(group["GroupId"])]
        new = S.authorize(existing, rules)
        tags = spec_tags(params, ec2.SECURITY_GROUP_RULE)
        dry_run(params)
        added = tx.add_rules(group["GroupId"], new)
        if tags:
            for stored in added:
                tx.set_rule_tags(stored, tags)
            added = [StoredRule(s.rule_id, s.group_id, s.rule, tags) for s in added]
        tx.emit(ec2.SECURITY_GROUP_CHANGED, tx.group_view(group))
        items = [_rule_item(tx, s) for s in added]
    return {"Return": True, "SecurityGroupRules": items}


def _revoked_item(stored: StoredRule) -> RevokedSecurityGroupRule:
    rule = stored.rule
    item: RevokedSecurityGroupRule = {
        "SecurityGroupRuleId": stored.rule_id,
        "GroupId": stored.group_id,
        "IsEgress": rule.direction is S.Direction.EGRESS,
        "IpProtocol": rule.protocol,
        "FromPort": rule.from_port,
        "ToPort": rule.to_port,
    }
    if rule.cidr_v4 is not None:
        item["CidrIpv4"] = str(rule.cidr_v4)
    elif rule.cidr_v6 is not None:
        item["CidrIpv6"] = str(rule.cidr_v6)
    else:
        assert rule.group_id is not None  # a rule without an address range has a group peer
        item["ReferencedGroupId"] = rule.group_id
    if rule.description is not None:
        item["Description"] = rule.description
    return item


def _revoke(
    direction: S.Direction, store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    with write(store, ctx) as tx:
        group = resolve_group(tx, params)
        stored = [r for r in tx.rules(group["GroupId"]) if r.rule.direction is direction]
        rule_ids = params.get("SecurityGroupRuleIds")
        if rule_ids:
            by_id = {r.rule_id: r for r in stored}
            for rule_id in rule_ids:
                if rule_id not in by_id:
                    raise ec2.not_found(ec2.SECURITY_GROUP_RULE, rule_id)
            removed = [by_id[r] for r in dict.fromkeys(rule_ids)]
        else:
            rules = S.expand_permissions(direction, _permissions(tx, group, params))
            revocation = S.revoke([r.rule for r in stored], rules)
            gone = {r.key for r in revocation.removed}
            removed = [r for r in stored if r.rule.key in gone]
        dry_run(params)
        tx.remove_rules(r.rule_id for r in removed)
        tx.emit(ec2.SECURITY_GROUP_CHANGED, tx.group_view(group))
    return {"Return": True, "RevokedSecurityGroupRules": [_revoked_item(r) for r in removed]}


def authorize_ingress(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _authorize(S.Direction.INGRESS, store, ctx, params)


def authorize_egress(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _authorize(S.Direction.EGRESS, store, ctx, params)


def revoke_ingress(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _revoke(S.Direction.INGRESS, store, ctx, params)


def revoke_egress(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _revoke(S.Direction.EGRESS, store, ctx, params)


def _rule_not_found() -> Exception:
    return error("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")


def _update_descriptions(
    direction: S.Direction, store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    with write(store, ctx) as tx:
        group = resolve_group(tx, params)
        stored = [r for r in tx.rules(group["GroupId"]) if r.rule.direction is direction]
        changes: dict[str, S.Rule] = {}
        by_rule_id = {r.rule_id: r for r in stored}
        for entry in params.get("SecurityGroupRuleDescriptions") or []:
            rule_id = entry.get("SecurityGroupRuleId")
            if rule_id not in by_rule_id:
                raise ec2.not_found(ec2.SECURITY_GROUP_RULE, str(rule_id))
            changes[rule_id] = dataclasses.replace(
                by_rule_id[rule_id].rule, description=entry.get("Description") or None
            )
        permissions = params.get("IpPermissions")
        if permissions:
            by_key = {r.rule.key: r for r in stored}
            for wanted in S.expand_permissions(direction, permissions):
                found = by_key.get(wanted.key)
                if found is None:
                    raise _rule_not_found()
                changes[found.rule_id] = dataclasses.replace(found.rule, description=wanted.description)
        if not changes:
            raise missing_parameter("IpPermissions")
        dry_run(params)
        for rule_id, rule in changes.items():
            tx.replace_rule(by_rule_id[rule_id], rule)
        tx.emit(ec2.SECURITY_GROUP_CHANGED, tx.group_view(group))
    return {"Return": True}


def update_descriptions_ingress(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    return _update_descriptions(S.Direction.INGRESS, store, ctx, params)


def update_descriptions_egress(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    return _update_descriptions(S.Direction.EGRESS, store, ctx, params)


def _permission_of(request: Mapping[str, Any]) -> dict[str, Any]:
    """A ``SecurityGroupRuleRequest`` as the ``IpPermission`` it stands for."""
    if request.get("PrefixListId"):
        raise error("UnsupportedOperation", "Prefix list peers are not supported by lamina.")
    permission: dict[str, Any] = {"IpProtocol": request.get("IpProtocol") or "-1"}
    for key in ("FromPort", "ToPort"):
        if request.get(key) is not None:
            permission[key] = request[key]
    peer: dict[str, Any] = {}
    if request.get("Description") is not None:
        peer["Description"] = request["Description"]
    if request.get("CidrIpv4"):
        permission["IpRanges"] = [{"CidrIp": request["CidrIpv4"], **peer}]
    if request.get("CidrIpv6"):
        permission["Ipv6Ranges"] = [{"CidrIpv6": request["CidrIpv6"], **peer}]
    if request.get("ReferencedGroupId"):
        permission["UserIdGroupPairs"] = [{"GroupId": request["ReferencedGroupId"], **peer}]
    return permission


def modify_security_group_rules(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    """ModifySecurityGroupRules: each named rule of the group gets a new definition (its
    direction, id and tags stay)."""
    with write(store, ctx) as tx:
        group = tx.require(ec2.SECURITY_GROUP, params["GroupId"])
        stored = {r.rule_id: r for r in tx.rules(group["GroupId"])}
        changes: dict[str, S.Rule] = {}
        for entry in params["SecurityGroupRules"]:
            rule_id = entry["SecurityGroupRuleId"]
            current = stored.get(rule_id)
            if current is None:
                raise ec2.not_found(ec2.SECURITY_GROUP_RULE, rule_id)
            request = entry.get("SecurityGroupRule")
            if not request:
                raise missing_parameter("SecurityGroupRule")
            rules = S.expand_permissions(current.rule.direction, [_permission_of(request)])
            if len(rules) != 1:
                raise error(
                    "InvalidParameterValue",
                    "A security group rule must have exactly one of CidrIpv4, CidrIpv6 or ReferencedGroupId.",
                )
            changes[rule_id] = rules[0]
        _check_peers(tx, list(changes.values()))
        # The rules as they would be: no two the same, within the limits.
        kept = [r.rule for r in stored.values() if r.rule_id not in changes]
        S.authorize(kept, list(changes.values()))
        dry_run(params)
        for rule_id, rule in changes.items():
            tx.replace_rule(stored[rule_id], rule)
        tx.emit(ec2.SECURITY_GROUP_CHANGED, tx.group_view(group))
    return {"Return": True}


_RULE_FILTERS = {
    "group-id": field("GroupId"),
    "security-group-rule-id": field("SecurityGroupRuleId"),
    "is-egress": field("IsEgress"),
    "ip-protocol": field("IpProtocol"),
    "cidr-ipv4": field("CidrIpv4"),
    "cidr-ipv6": field("CidrIpv6"),
    "referenced-group-id": field("ReferencedGroupInfo", "GroupId"),
    "description": field("Description"),
}


def describe_security_group_rules(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    def run(tx: Ec2Tx) -> list[SecurityGroupRule]:
        everything = tx.rules()
        wanted = params.get("SecurityGroupRuleIds")
        if wanted:
            known = {r.rule_id: r for r in everything}
            for rule_id in wanted:
                if rule_id not in known:
                    raise ec2.not_found(ec2.SECURITY_GROUP_RULE, rule_id)
            everything = [known[r] for r in dict.fromkeys(wanted)]
        return [_rule_item(tx, r) for r in everything]

    rules = apply_filters(read(store, ctx, run), params.get("Filters"), _RULE_FILTERS)
    dry_run(params)
    page, token = paginate(rules, params)
    return with_token({"SecurityGroupRules": page}, token)


HANDLERS = {
    "CreateSecurityGroup": create_security_group,
    "DescribeSecurityGroups": describe_security_groups,
    "DeleteSecurityGroup": delete_security_group,
    "AuthorizeSecurityGroupIngress": authorize_ingress,
    "AuthorizeSecurityGroupEgress": authorize_egress,
    "RevokeSecurityGroupIngress": revoke_ingress,
    "RevokeSecurityGroupEgress": revoke_egress,
    "DescribeSecurityGroupRules": describe_security_group_rules,
    "UpdateSecurityGroupRuleDescriptionsIngress": update_descriptions_ingress,
    "UpdateSecurityGroupRuleDescriptionsEgress": update_descriptions_egress,
    "ModifySecurityGroupRules": modify_security_group_rules,
}
