"""Network interfaces: CreateNetworkInterface, DescribeNetworkInterfaces, DeleteNetworkInterface,
ModifyNetworkInterfaceAttribute and DescribeNetworkInterfaceAttribute.

An interface holds one private address of its subnet, taken by the store's allocator in the
same transaction that records it (``InsufficientFreeAddressesInSubnet`` when the subnet is full:
a /28 has 11). Interfaces other services own (Lambda's Hyperplane interfaces, NAT gateways')
are ``in-use`` and requester-managed: their owner deletes and changes them, a user cannot
(``AuthFailure``, as EC2 answers for a requester-managed interface).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from lamina.domain import ec2
from lamina.domain import secgroups as S
from lamina.domain.clock import iso_millis
from lamina.domain.ec2 import error
from lamina.domain.ec2_models import GroupIdentifier, NetworkInterface
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

_UNSUPPORTED = (
    "SecondaryPrivateIpAddressCount",
    "Ipv6Addresses",
    "Ipv6AddressCount",
    "Ipv4Prefixes",
    "Ipv4PrefixCount",
    "Ipv6Prefixes",
    "Ipv6PrefixCount",
)


def interface_out(eni: NetworkInterface, *, owned: bool = False) -> NetworkInterface:
    """An interface as EC2 answers it, ``AttachTime`` as EC2 writes it (the serializer passes
    the text through). ``owned``: ``eni`` is the caller's own copy without bookkeeping keys (as
    :meth:`Ec2Tx.describe` returns them), changed in place rather than copied."""
    out = eni if owned else ec2.wire_copy(eni)
    attachment = out.get("Attachment")
    if attachment and isinstance(attachment.get("AttachTime"), str):
        shown = ec2_time(attachment["AttachTime"])
        if owned:
            attachment["AttachTime"] = shown
        else:
            out["Attachment"] = {**attachment, "AttachTime": shown}
    return out


def ec2_time(stored: str) -> str:
    """A stored time (:func:`lamina.domain.ec2.iso`: ``datetime.isoformat()`` in UTC) as EC2 writes
    it, ``2026-01-02T03:04:05.678Z``: the text the serializer would make of the datetime."""
    # isoformat's two forms for a UTC time after the year 999 (with and without microseconds)
    # are rewritten as they are; anything else is parsed and formatted.
    if stored.endswith("+00:00") and stored[0] != "0":
        if len(stored) == 32 and stored[19] == ".":
            return stored[:23] + "Z"
        if len(stored) == 25:
            return stored[:19] + ".000Z"
    return iso_millis(dt.datetime.fromisoformat(stored))


def _primary_address(params: dict[str, Any]) -> str | None:
    listed = params.get("PrivateIpAddresses") or []
    if len(listed) > 1 or any(not entry.get("Primary", True) for entry in listed):
        raise error("UnsupportedOperation", "Secondary private addresses are not supported by lamina.")
    address = params.get("PrivateIpAddress")
    if listed:
        given = listed[0].get("PrivateIpAddress")
        if address is not None and given is not None and given != address:
            raise error(
                "InvalidParameterCombination",
                "Primary private IP address specified twice with different values",
            )
        address = address or given
    return address


def create_network_interface(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    for name in _UNSUPPORTED:
        if params.get(name):
            raise error("UnsupportedOperation", f"{name} is not supported by lamina.")
    private_ip = _primary_address(params)
    tags = spec_tags(params, ec2.NETWORK_INTERFACE)
    with write(store, ctx) as tx:
        eni = tx.create_interface(
            params["SubnetId"],
            params.get("Groups") or (),
            params.get("Description") or "",
            interface_type=params.get("InterfaceType") or "interface",
            requester_managed=False,
            private_ip=private_ip,
            tags=tags,
            validated=lambda: dry_run(params),
        )
    out: dict[str, Any] = {"NetworkInterface": interface_out(eni)}
    if params.get("ClientToken"):
        out["ClientToken"] = params["ClientToken"]
    return out


_ENI_FILTERS = {
    "network-interface-id": field("NetworkInterfaceId"),
    "subnet-id": field("SubnetId"),
    "vpc-id": field("VpcId"),
    "availability-zone": field("AvailabilityZone"),
    "description": field("Description"),
    "group-id": field("Groups", "GroupId"),
    "group-name": field("Groups", "GroupName"),
    "interface-type": field("InterfaceType"),
    "private-ip-address": field("PrivateIpAddress"),
    "addresses.private-ip-address": field("PrivateIpAddresses", "PrivateIpAddress"),
    "addresses.primary": field("PrivateIpAddresses", "Primary"),
    "private-dns-name": field("PrivateDnsName"),
    "mac-address": field("MacAddress"),
    "status": field("Status"),
    "requester-managed": field("RequesterManaged"),
    "requester-id": field("RequesterId"),
    "owner-id": field("OwnerId"),
    "source-dest-check": field("SourceDestCheck"),
    "association.allocation-id": field("Association", "AllocationId"),
    "association.association-id": field("Association", "AssociationId"),
    "association.ip-owner-id": field("Association", "IpOwnerId"),
    "association.public-ip": field("Association", "PublicIp"),
    "association.public-dns-name": field("Association", "PublicDnsName"),
    "attachment.attachment-id": field("Attachment", "AttachmentId"),
    "attachment.status": field("Attachment", "Status"),
    "attachment.instance-owner-id": field("Attachment", "InstanceOwnerId"),
    "attachment.device-index": field("Attachment", "DeviceIndex"),
    "attachment.delete-on-termination": field("Attachment", "DeleteOnTermination"),
}


# Filters the store applies in SQL (the resource's columns).
_ENI_COLUMNS = {"network-interface-id": "id", "subnet-id": "subnet_id", "vpc-id": "vpc_id"}


def describe_network_interfaces(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    ids = params.get("NetworkInterfaceIds")

    def run(tx: Ec2Tx) -> tuple[list[NetworkInterface], list[Mapping[str, Any]]]:
        return listing(tx, ec2.NETWORK_INTERFACE, ids, params.get("Filters"), _ENI_COLUMNS)

    found, filters = read(store, ctx, run)
    interfaces = apply_filters(
        [interface_out(e, owned=True) for e in found], filters, _ENI_FILTERS, tags_key="TagSet"
    )
    dry_run(params)
    page, token = paginate(interfaces, params)
    return with_token({"NetworkInterfaces": page}, token)


def delete_network_interface(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    eni_id = params["NetworkInterfaceId"]
    with write(store, ctx) as tx:
        eni = tx.require(ec2.NETWORK_INTERFACE, eni_id)
        if eni.get("RequesterManaged") or eni.get("Status") == "in-use":
            raise error("InvalidNetworkInterface.InUse", f"Interface: [{eni_id}] in use.")
        dry_run(params)
        tx.delete_interface(eni_id)
    return {}


def refuse_requester_managed(eni: NetworkInterface) -> None:
    """Interfaces another service manages (Lambda's, a NAT gateway's) are not the user's to change."""
    if eni.get("RequesterManaged"):
        raise error("AuthFailure", "You do not have permission to access the specified resource.")


_UNSUPPORTED_MODIFY = (
    "Attachment",
    "AssociatePublicIpAddress",
    "EnaSrdSpecification",
    "EnablePrimaryIpv6",
    "ConnectionTrackingSpecification",
    "AssociatedSubnetIds",
)


def modify_network_interface_attribute(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    """ModifyNetworkInterfaceAttribute: ``Description``, ``SourceDestCheck`` or ``Groups``, one
    at a time; new groups are in force in the data plane at once."""
    for name in _UNSUPPORTED_MODIFY:
        if params.get(name) is not None:
            raise error("UnsupportedOperation", f"{name} is not supported by lamina.")
    given = [n for n in ("Description", "SourceDestCheck", "Groups") if params.get(n) is not None]
    if not given:
        raise error("MissingParameter", "The request must contain exactly one attribute to modify.")
    if len(given) > 1:
        raise error("InvalidParameterCombination", "Only one attribute can be modified at a time.")
    eni_id = params["NetworkInterfaceId"]
    with write(store, ctx) as tx:
        eni = tx.require(ec2.NETWORK_INTERFACE, eni_id)
        refuse_requester_managed(eni)
        name = given[0]
        if name == "Groups":
            subnet = tx.require(ec2.SUBNET, eni["SubnetId"])
            groups = []
            for group_id in dict.fromkeys(params["Groups"]):
                group = tx.require(ec2.SECURITY_GROUP, group_id)
                ec2.check_interface_group(subnet, group)
                groups.append(group)
            if not groups:
                raise error("MissingParameter", "The request must contain the parameter groupId")
            S.check_groups_per_interface([g["GroupId"] for g in groups])
            dry_run(params)
            eni["Groups"] = [GroupIdentifier(GroupId=g["GroupId"], GroupName=g["GroupName"]) for g in groups]
            tx.set_interface_groups(eni_id, [g["GroupId"] for g in groups])
        else:
            value = params[name].get("Value")
            if value is None:
                raise error("MissingParameter", f"The request must contain the parameter {name}.Value")
            dry_run(params)
            if name == "Description":
                eni["Description"] = str(value)
            else:
                eni["SourceDestCheck"] = bool(value)
        tx.update(eni_id, eni)
        tx.emit(ec2.INTERFACE_CHANGED, eni)
    return {}


_ATTRIBUTES = ("description", "groupSet", "sourceDestCheck", "attachment", "associatePublicIpAddress")


def describe_network_interface_attribute(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    attribute = params.get("Attribute")
    if not attribute:
        raise error("MissingParameter", "The request must contain the parameter attribute")
    if attribute not in _ATTRIBUTES:
        raise error("InvalidParameterValue", f"Value ({attribute}) for parameter attribute is invalid.")
    eni_id = params["NetworkInterfaceId"]
    eni = interface_out(read(store, ctx, lambda tx: tx.require(ec2.NETWORK_INTERFACE, eni_id)))
    dry_run(params)
    out: dict[str, Any] = {"NetworkInterfaceId": eni_id}
    if attribute == "description":
        out["Description"] = {"Value": eni.get("Description", "")}
    elif attribute == "groupSet":
        out["Groups"] = eni.get("Groups", [])
    elif attribute == "sourceDestCheck":
        out["SourceDestCheck"] = {"Value": eni.get("SourceDestCheck", True)}
    elif attribute == "attachment":
        if eni.get("Attachment"):
            out["Attachment"] = eni["Attachment"]
    else:
        out["AssociatePublicIpAddress"] = False
    return out


HANDLERS = {
    "ModifyNetworkInterfaceAttribute": modify_network_interface_attribute,
    "DescribeNetworkInterfaceAttribute": describe_network_interface_attribute,
    "CreateNetworkInterface": create_network_interface,
    "DescribeNetworkInterfaces": describe_network_interfaces,
    "DeleteNetworkInterface": delete_network_interface,
}
