"""Network ACLs: the default ACL of every VPC, custom ACLs, their entries and subnet associations.

The rules (entries, their checks and errors, evaluation) are :mod:`lamina.domain.nacls`. A new VPC
gets its default ACL (:func:`create_default_acl`, called by CreateVpc's path) and a new subnet an
association with it (:func:`associate_default_acl`); ReplaceNetworkAclAssociation moves a subnet
to another ACL of its VPC under a new association id. The default ACL cannot be deleted, nor an
ACL a subnet is associated with; DeleteVpc refuses while custom ACLs exist and removes the default
one (:func:`delete_vpc_acls`). Every change reaches the data plane as ``network-acl-changed``.
"""

from __future__ import annotations

import os
from typing import Any

from lamina.domain import ec2
from lamina.domain import nacls as N
from lamina.domain.ec2 import error, public
from lamina.domain.ec2_models import Ec2Tag, NetworkAcl, Subnet, Vpc
from lamina.services.base import RequestContext
from lamina.services.ec2.handlers_tags import (
    apply_filters,
    dry_run,
    field,
    listing,
    paginate,
    read,
    spec_tags,
    with_token,
    write,
)
from lamina.store.ec2 import Ec2Store, Ec2Tx

# VPC quotas, "Network ACLs per VPC" (the default ACL counts).
ACLS_PER_VPC = 200


def _association_id() -> str:
    return f"aclassoc-{os.urandom(9).hex()[:17]}"


def _dependency(acl_id: str) -> Exception:
    return error("DependencyViolation", f"The networkAcl '{acl_id}' has dependencies and cannot be deleted.")


def _changed(tx: Ec2Tx, acl: NetworkAcl) -> None:
    tx.update(acl["NetworkAclId"], acl)
    tx.emit(ec2.NETWORK_ACL_CHANGED, acl)


def _new_acl(tx: Ec2Tx, vpc_id: str, *, default: bool, tags: list[Ec2Tag]) -> NetworkAcl:
    acl_id = tx.new_id(ec2.NETWORK_ACL)
    acl: NetworkAcl = {
        "Associations": [],
        "Entries": N.initial_entries(default=default),
        "IsDefault": default,
        "NetworkAclId": acl_id,
        "Tags": tags,
        "VpcId": vpc_id,
        "OwnerId": tx.account,
    }
    tx.put(ec2.NETWORK_ACL, acl_id, acl, vpc_id=vpc_id)
    tx.emit(ec2.NETWORK_ACL_CHANGED, acl)
    return acl


# -- the hooks of VPCs and subnets -----------------------------------------------------------------


def create_default_acl(tx: Ec2Tx, vpc: Vpc) -> NetworkAcl:
    """A new VPC's default network ACL: all traffic allowed in and out (rule 100)."""
    return _new_acl(tx, vpc["VpcId"], default=True, tags=[])


def default_acl(tx: Ec2Tx, vpc_id: str) -> NetworkAcl | None:
    return next((a for a in tx.find(ec2.NETWORK_ACL, vpc_id=vpc_id) if a.get("IsDefault")), None)


def associate_default_acl(tx: Ec2Tx, subnet: Subnet) -> None:
    """A new subnet is associated with its VPC's default network ACL."""
    acl = default_acl(tx, subnet["VpcId"])
    if acl is None:
        return
    acl["Associations"].append(
        {
            "NetworkAclAssociationId": _association_id(),
            "NetworkAclId": acl["NetworkAclId"],
            "SubnetId": subnet["SubnetId"],
        }
    )
    _changed(tx, acl)


def acl_of_subnet(tx: Ec2Tx, subnet: Subnet) -> NetworkAcl | None:
    """The network ACL a subnet is associated with."""
    for acl in tx.find(ec2.NETWORK_ACL, vpc_id=subnet["VpcId"]):
        if any(a.get("SubnetId") == subnet["SubnetId"] for a in acl.get("Associations", [])):
            return acl
    return None


def forget_subnet(tx: Ec2Tx, subnet: Subnet) -> None:
    """A deleted subnet's association goes with it."""
    acl = acl_of_subnet(tx, subnet)
    if acl is not None:
        acl["Associations"] = [a for a in acl["Associations"] if a.get("SubnetId") != subnet["SubnetId"]]
        _changed(tx, acl)


def check_vpc_deletable(tx: Ec2Tx, vpc_id: str) -> None:
    """DeleteVpc refuses while the VPC has network ACLs besides its default one."""
    if any(not a.get("IsDefault") for a in tx.find(ec2.NETWORK_ACL, vpc_id=vpc_id)):
        raise error("DependencyViolation", f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")


def delete_vpc_acls(tx: Ec2Tx, vpc_id: str) -> None:
    """A deleted VPC's default network ACL goes with it (after :func:`check_vpc_deletable`)."""
    for acl in tx.find(ec2.NETWORK_ACL, vpc_id=vpc_id):
        tx.remove(acl["NetworkAclId"])
        tx.emit(ec2.NETWORK_ACL_CHANGED, {**public(acl), "Entries": [], "Associations": [], "Deleted": True})


# -- operations -------------------------------------------------------------------------------------


def create_network_acl(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    tags = spec_tags(params, ec2.NETWORK_ACL)
    with write(store, ctx) as tx:
        vpc = tx.require(ec2.VPC, params["VpcId"])
        if len(tx.find(ec2.NETWORK_ACL, vpc_id=vpc["VpcId"])) >= ACLS_PER_VPC:
            raise error("NetworkAclLimitExceeded", "The maximum number of network ACLs has been reached.")
        dry_run(params)
        acl = _new_acl(tx, vpc["VpcId"], default=False, tags=tags)
    out: dict[str, Any] = {"NetworkAcl": acl}
    if params.get("ClientToken"):
        out["ClientToken"] = params["ClientToken"]
    return out


def delete_network_acl(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    acl_id = params["NetworkAclId"]
    with write(store, ctx) as tx:
        acl = tx.require(ec2.NETWORK_ACL, acl_id)
        if acl.get("IsDefault"):
            raise error("InvalidParameterValue", f"cannot delete default network ACL {acl_id}")
        if acl.get("Associations"):
            raise _dependency(acl_id)
        dry_run(params)
        tx.remove(acl_id)
        tx.emit(ec2.NETWORK_ACL_CHANGED, {**public(acl), "Entries": [], "Deleted": True})
    return {}


def create_network_acl_entry(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    entry = N.entry_from_params(params)
    with write(store, ctx) as tx:
        acl = tx.require(ec2.NETWORK_ACL, params["NetworkAclId"])
        entries = N.add_entry(acl.get("Entries", []), entry, store.nacl_entry_limit)
        dry_run(params)
        acl["Entries"] = entries
        _changed(tx, acl)
    return {}


def replace_network_acl_entry(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    entry = N.entry_from_params(params)
    with write(store, ctx) as tx:
        acl = tx.require(ec2.NETWORK_ACL, params["NetworkAclId"])
        entries = N.replace_entry(acl.get("Entries", []), entry)
        dry_run(params)
        acl["Entries"] = entries
        _changed(tx, acl)
    return {}


def delete_network_acl_entry(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    number, egress = int(params["RuleNumber"]), bool(params["Egress"])
    N.check_rule_number(number)
    with write(store, ctx) as tx:
        acl = tx.require(ec2.NETWORK_ACL, params["NetworkAclId"])
        entries = N.delete_entry(acl.get("Entries", []), number, egress)
        dry_run(params)
        acl["Entries"] = entries
        _changed(tx, acl)
    return {}


def replace_network_acl_association(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    association_id = params["AssociationId"]
    with write(store, ctx) as tx:
        target = tx.require(ec2.NETWORK_ACL, params["NetworkAclId"])
        found = None
        for acl in tx.find(ec2.NETWORK_ACL):
            for association in acl.get("Associations", []):
                if association.get("NetworkAclAssociationId") == association_id:
                    found = (acl, association)
        if found is None:
            raise N.association_not_found(association_id)
        source, association = found
        subnet_id = str(association.get("SubnetId"))
        if source["VpcId"] != target["VpcId"]:
            raise error(
                "InvalidParameterValue",
                f"Network acl {target['NetworkAclId']} and subnet {subnet_id} belong to different networks",
            )
        dry_run(params)
        new_id = _association_id()
        source["Associations"] = [
            a for a in source["Associations"] if a.get("NetworkAclAssociationId") != association_id
        ]
        if source["NetworkAclId"] == target["NetworkAclId"]:
            target = source
        else:
            _changed(tx, source)
        target["Associations"].append(
            {"NetworkAclAssociationId": new_id, "NetworkAclId": target["NetworkAclId"], "SubnetId": subnet_id}
        )
        _changed(tx, target)
    return {"NewAssociationId": new_id}


def _entry_protocols(acl: Any) -> list[object]:
    """``entry.protocol`` matches a number or, for 6/17/1, its name."""
    out: list[object] = []
    for entry in acl.get("Entries", []):
        protocol = str(entry.get("Protocol"))
        out.append(protocol)
        if protocol in N.PROTOCOL_NAMES:
            out.append(N.PROTOCOL_NAMES[protocol])
        if protocol == N.ALL:
            out.append("all")
    return out


_ACL_FILTERS = {
    "association.association-id": field("Associations", "NetworkAclAssociationId"),
    "association.network-acl-id": field("Associations", "NetworkAclId"),
    "association.subnet-id": field("Associations", "SubnetId"),
    "default": field("IsDefault"),
    "entry.cidr": field("Entries", "CidrBlock"),
    "entry.egress": field("Entries", "Egress"),
    "entry.icmp.code": field("Entries", "IcmpTypeCode", "Code"),
    "entry.icmp.type": field("Entries", "IcmpTypeCode", "Type"),
    "entry.ipv6-cidr": field("Entries", "Ipv6CidrBlock"),
    "entry.port-range.from": field("Entries", "PortRange", "From"),
    "entry.port-range.to": field("Entries", "PortRange", "To"),
    "entry.protocol": _entry_protocols,
    "entry.rule-action": field("Entries", "RuleAction"),
    "entry.rule-number": field("Entries", "RuleNumber"),
    "network-acl-id": field("NetworkAclId"),
    "owner-id": field("OwnerId"),
    "vpc-id": field("VpcId"),
}
_ACL_COLUMNS = {"network-acl-id": "id", "vpc-id": "vpc_id"}


def describe_network_acls(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    def run(tx: Ec2Tx) -> tuple[list[NetworkAcl], list[Any]]:
        return listing(tx, ec2.NETWORK_ACL, params.get("NetworkAclIds"), params.get("Filters"), _ACL_COLUMNS)

    found, filters = read(store, ctx, run)
    acls = apply_filters(found, filters, _ACL_FILTERS)
    dry_run(params)
    page, token = paginate(acls, params)
    return with_token({"NetworkAcls": page}, token)


HANDLERS = {
    "CreateNetworkAcl": create_network_acl,
    "DeleteNetworkAcl": delete_network_acl,
    "CreateNetworkAclEntry": create_network_acl_entry,
    "ReplaceNetworkAclEntry": replace_network_acl_entry,
    "DeleteNetworkAclEntry": delete_network_acl_entry,
    "ReplaceNetworkAclAssociation": replace_network_acl_association,
    "DescribeNetworkAcls": describe_network_acls,
}
