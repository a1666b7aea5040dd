"""Internet gateways, Elastic IP addresses and NAT gateways.

An internet gateway is attached to at most one VPC and a VPC has at most one. Elastic IPs come
from the platform's public pool (``203.0.113.0/24``, TEST-NET-3, unless configured otherwise).
A NAT gateway takes one private address of its subnet (through a requester-managed interface of
type ``nat_gateway``, as EC2 shows it) and its Elastic IP; it is ``pending`` until the next look
after its delay, then ``available``, or ``failed`` with EC2's reason (the ``FailureCode`` /
``FailureMessage`` texts documented for the NatGateway shape, e.g. ``Gateway.NotAttached``
"Network vpc-x has no Internet gateway attached"). Deleting it turns routes to it ``blackhole``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import Any

from lamina.domain import ec2
from lamina.domain import routes as R
from lamina.domain.ec2 import error, iso, public, public_address, public_nat, routes_of, set_routes
from lamina.domain.ec2_models import (
    Address,
    InternetGateway,
    NatGatewayAddress,
    NetworkInterface,
    StoredAddress,
    StoredNatGateway,
)
from lamina.errors import AwsError
from lamina.services.base import RequestContext
from lamina.services.ec2.handlers_interfaces import refuse_requester_managed
from lamina.services.ec2.handlers_tags import (
    apply_filters,
    by_ids,
    dry_run,
    field,
    paginate,
    read,
    required,
    spec_tags,
    with_token,
    write,
)
from lamina.services.ec2.handlers_vpcs import dependency
from lamina.store.ec2 import Ec2Store, Ec2Tx


def _suffix() -> str:
    return os.urandom(9).hex()[:17]


# -- internet gateways ------------------------------------------------------------------------------


def create_internet_gateway(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    tags = spec_tags(params, ec2.INTERNET_GATEWAY)
    dry_run(params)
    with write(store, ctx) as tx:
        igw_id = tx.new_id(ec2.INTERNET_GATEWAY)
        igw: InternetGateway = {
            "Attachments": [],
            "InternetGatewayId": igw_id,
            "OwnerId": ctx.account_id,
            "Tags": tags,
        }
        tx.put(ec2.INTERNET_GATEWAY, igw_id, igw)
    return {"InternetGateway": igw}


def _attached_to(igw: InternetGateway) -> str | None:
    attachments = igw.get("Attachments") or []
    return str(attachments[0]["VpcId"]) if attachments else None


def _set_gateway_routes(tx: Ec2Tx, vpc_id: str, igw_id: str, state: R.RouteState) -> None:
    """Routes to an internet gateway follow it: ``blackhole`` while detached, active once back."""
    for table in tx.find(ec2.ROUTE_TABLE, vpc_id=vpc_id):
        before = routes_of(table)
        after = tuple(
            dataclasses.replace(r, state=state)
            if r.kind is R.TargetKind.INTERNET_GATEWAY and r.target_id == igw_id
            else r
            for r in before
        )
        if after != before:
            set_routes(table, after)
            tx.update(table["RouteTableId"], table)
            tx.emit(ec2.ROUTE_CHANGED, table)


def attach_internet_gateway(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    igw_id, vpc_id = params["InternetGatewayId"], params["VpcId"]
    with write(store, ctx) as tx:
        igw = tx.require(ec2.INTERNET_GATEWAY, igw_id)
        tx.require(ec2.VPC, vpc_id)
        current = _attached_to(igw)
        if current is not None:
            raise error(
                "Resource.AlreadyAssociated", f"resource {igw_id} is already attached to network {current}"
            )
        if tx.attached_gateway(vpc_id) is not None:
            raise error("InvalidParameterValue", f"Network {vpc_id} already has an internet gateway attached")
        dry_run(params)
        igw["Attachments"] = [{"State": "available", "VpcId": vpc_id}]
        tx.put(ec2.INTERNET_GATEWAY, igw_id, igw, vpc_id=vpc_id)
        _set_gateway_routes(tx, vpc_id, igw_id, R.RouteState.ACTIVE)
        tx.emit(ec2.VPC_CHANGED, igw)
    return {}


def detach_internet_gateway(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    igw_id, vpc_id = params["InternetGatewayId"], params["VpcId"]
    with write(store, ctx) as tx:
        igw = tx.require(ec2.INTERNET_GATEWAY, igw_id)
        tx.require(ec2.VPC, vpc_id)
        if _attached_to(igw) != vpc_id:
            raise error("Gateway.NotAttached", f"resource {igw_id} is not attached to network {vpc_id}")
        tx.advance_nat_gateways()
        mapped = [
            n
            for n in tx.find(ec2.NAT_GATEWAY, vpc_id=vpc_id)
            if n["State"] in ("pending", "available") and n.get("ConnectivityType", "public") == "public"
        ]
        if mapped:
            raise error(
                "DependencyViolation",
                f"Network {vpc_id} has some mapped public address(es). "
                "Please unmap those public address(es) before detaching the gateway.",
            )
        dry_run(params)
        igw["Attachments"] = []
        tx.put(ec2.INTERNET_GATEWAY, igw_id, igw)
        _set_gateway_routes(tx, vpc_id, igw_id, R.RouteState.BLACKHOLE)
        tx.emit(ec2.VPC_CHANGED, igw)
    return {}


def delete_internet_gateway(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    igw_id = params["InternetGatewayId"]
    with write(store, ctx) as tx:
        igw = tx.require(ec2.INTERNET_GATEWAY, igw_id)
        if _attached_to(igw) is not None:
            raise dependency("internetGateway", igw_id)
        dry_run(params)
        tx.remove(igw_id)
    return {}


_IGW_FILTERS = {
    "internet-gateway-id": field("InternetGatewayId"),
    "attachment.vpc-id": field("Attachments", "VpcId"),
    "attachment.state": field("Attachments", "State"),
    "owner-id": field("OwnerId"),
}


def describe_internet_gateways(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    def run(tx: Ec2Tx) -> list[InternetGateway]:
        found = by_ids(tx, ec2.INTERNET_GATEWAY, params.get("InternetGatewayIds"))
        return [ec2.wire_copy(g) for g in (found if found is not None else tx.find(ec2.INTERNET_GATEWAY))]

    gateways = apply_filters(read(store, ctx, run), params.get("Filters"), _IGW_FILTERS)
    dry_run(params)
    page, token = paginate(gateways, params)
    return with_token({"InternetGateways": page}, token)


# -- Elastic IP addresses ---------------------------------------------------------------------------


def allocate_address(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    tags = spec_tags(params, ec2.ELASTIC_IP)
    with write(store, ctx) as tx:
        if len(tx.find(ec2.ELASTIC_IP)) >= ec2.MAX_ELASTIC_IPS:
            raise error("AddressLimitExceeded", "The maximum number of addresses has been reached.")
        allocation_id = tx.new_id(ec2.ELASTIC_IP)
        address = tx.claim_public_address(allocation_id, params.get("Address"))
        dry_run(params)
        eip: StoredAddress = {
            "AllocationId": allocation_id,
            "Domain": "vpc",
            "PublicIp": address,
            "PublicIpv4Pool": "amazon",
            "NetworkBorderGroup": ctx.region,
            "Tags": tags,
        }
        tx.put(ec2.ELASTIC_IP, allocation_id, eip)
    return {
        "AllocationId": eip["AllocationId"],
        "Domain": eip["Domain"],
        "PublicIp": eip["PublicIp"],
        "PublicIpv4Pool": eip["PublicIpv4Pool"],
        "NetworkBorderGroup": eip["NetworkBorderGroup"],
    }


def _address_not_found(public_ip: str) -> AwsError:
    return error("InvalidAddress.NotFound", f"Address '{public_ip}' not found.")


def _by_public_ip(tx: Ec2Tx, public_ip: str) -> StoredAddress:
    for eip in tx.find(ec2.ELASTIC_IP):
        if eip["PublicIp"] == public_ip:
            return eip
    raise _address_not_found(public_ip)


def release_address(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    with write(store, ctx) as tx:
        if params.get("AllocationId"):
            eip = tx.require(ec2.ELASTIC_IP, params["AllocationId"])
        elif params.get("PublicIp"):
            eip = _by_public_ip(tx, params["PublicIp"])
        else:
            raise error("MissingParameter", "Either public IP or allocation id must be specified")
        if eip.get("AssociationId"):
            raise error("InvalidIPAddress.InUse", f"Address {eip['PublicIp']} is in use.")
        dry_run(params)
        tx.release_public_address(eip["PublicIp"])
        tx.remove(eip["AllocationId"])
    return {}


_ADDRESS_FILTERS = {
    "allocation-id": field("AllocationId"),
    "association-id": field("AssociationId"),
    "domain": field("Domain"),
    "network-interface-id": field("NetworkInterfaceId"),
    "network-interface-owner-id": field("NetworkInterfaceOwnerId"),
    "private-ip-address": field("PrivateIpAddress"),
    "public-ip": field("PublicIp"),
    "public-ipv4-pool": field("PublicIpv4Pool"),
    "network-border-group": field("NetworkBorderGroup"),
    "instance-id": field("InstanceId"),
}


def describe_addresses(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    def run(tx: Ec2Tx) -> list[Address]:
        found = by_ids(tx, ec2.ELASTIC_IP, params.get("AllocationIds"))
        eips = found if found is not None else tx.find(ec2.ELASTIC_IP)
        wanted = params.get("PublicIps")
        if wanted:
            for public_ip in wanted:
                _by_public_ip(tx, public_ip)  # InvalidAddress.NotFound for an address not allocated here
            eips = [e for e in eips if e["PublicIp"] in wanted]
        return [public_address(e) for e in eips]

    addresses = apply_filters(read(store, ctx, run), params.get("Filters"), _ADDRESS_FILTERS)
    dry_run(params)
    return {"Addresses": addresses}


def _eip_of(tx: Ec2Tx, params: dict[str, Any]) -> StoredAddress:
    if params.get("AllocationId"):
        return tx.require(ec2.ELASTIC_IP, params["AllocationId"])
    if params.get("PublicIp"):
        return _by_public_ip(tx, params["PublicIp"])
    raise error("MissingParameter", "Either public IP or allocation id must be specified")


def _eip_interface(tx: Ec2Tx, eip: StoredAddress) -> NetworkInterface | None:
    eni_id = eip.get("NetworkInterfaceId")
    return tx.get(eni_id, ec2.NETWORK_INTERFACE) if eni_id else None


def associate_address(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """AssociateAddress with a network interface (its primary private address): the data plane
    routes the Elastic IP to the interface and translates between the two, as an internet
    gateway does for an instance's public address."""
    if params.get("InstanceId"):
        raise error(
            "UnsupportedOperation", "lamina has no instances: associate the address with a network interface."
        )
    eni_id = params.get("NetworkInterfaceId")
    if not eni_id:
        raise error("MissingParameter", "The request must contain the parameter networkInterfaceId")
    with write(store, ctx) as tx:
        eip = _eip_of(tx, params)
        eni = tx.require(ec2.NETWORK_INTERFACE, eni_id)
        refuse_requester_managed(eni)
        private_ip = params.get("PrivateIpAddress")
        if private_ip is not None and private_ip != eni["PrivateIpAddress"]:
            raise error(
                "InvalidParameterValue",
                f"The private IP address {private_ip} is not associated with network interface {eni_id}",
            )
        if tx.attached_gateway(eni["VpcId"]) is None:
            raise error(
                "Gateway.NotAttached", f"Network {eni['VpcId']} is not attached to any internet gateway"
            )
        previous = _eip_interface(tx, eip)
        if eip.get("AssociationId"):
            same = eip.get("NetworkInterfaceId") == eni_id
            if eip.get("_nat") or not (same or params.get("AllowReassociation")):
                raise error(
                    "Resource.AlreadyAssociated",
                    f"resource {eip['AllocationId']} is already associated with associate-id {eip['AssociationId']}",
                )
        # The interface's current Elastic IP, if another, lets go of it.
        current = (eni.get("Association") or {}).get("AllocationId")
        replaced = tx.get(current, ec2.ELASTIC_IP) if current and current != eip["AllocationId"] else None
        dry_run(params)
        if previous is not None and previous["NetworkInterfaceId"] != eni_id:
            ec2.dissociate(eip, previous)
            tx.update(previous["NetworkInterfaceId"], previous)
            tx.emit(ec2.INTERFACE_CHANGED, previous)
        if replaced is not None:
            ec2.dissociate(replaced, eni)
            tx.update(replaced["AllocationId"], replaced)
        association_id = f"eipassoc-{_suffix()}"
        ec2.associate_with_interface(eip, eni, association_id, account=ctx.account_id, region=ctx.region)
        tx.update(eip["AllocationId"], eip)
        tx.update(eni_id, eni)
        tx.emit(ec2.INTERFACE_CHANGED, eni)
    return {"AssociationId": association_id}


def disassociate_address(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    with write(store, ctx) as tx:
        association_id = params.get("AssociationId")
        if association_id:
            eip = next((e for e in tx.find(ec2.ELASTIC_IP) if e.get("AssociationId") == association_id), None)
            if eip is None:
                raise error(
                    "InvalidAssociationID.NotFound", f"The association ID '{association_id}' does not exist"
                )
        elif params.get("PublicIp"):
            eip = _by_public_ip(tx, params["PublicIp"])
            if not eip.get("AssociationId"):
                dry_run(params)
                return {}
        else:
            raise error("MissingParameter", "Either public IP or association id must be specified")
        if eip.get("_nat"):
            raise error("AuthFailure", "You do not have permission to access the specified resource.")
        eni = _eip_interface(tx, eip)
        dry_run(params)
        ec2.dissociate(eip, eni)
        tx.update(eip["AllocationId"], eip)
        if eni is not None:
            tx.update(eni["NetworkInterfaceId"], eni)
            tx.emit(ec2.INTERFACE_CHANGED, eni)
    return {}


# -- NAT gateways ---------------------------------------------------------------------------------------


def _nat_out(nat: StoredNatGateway) -> dict[str, Any]:
    """A NAT gateway as EC2 answers it: its times as datetimes (the serializer renders them)."""
    out = public(nat)
    for key in ("CreateTime", "DeleteTime"):
        if isinstance(out.get(key), str):
            out[key] = dt.datetime.fromisoformat(out[key])
    return out


def create_nat_gateway(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    subnet_id = required(params, "SubnetId")
    connectivity = params.get("ConnectivityType") or "public"
    allocation_id = params.get("AllocationId")
    if connectivity == "public" and not allocation_id:
        raise error("MissingParameter", "The request must contain the parameter AllocationId")
    tags = spec_tags(params, ec2.NAT_GATEWAY)
    with write(store, ctx) as tx:
        subnet = tx.require(ec2.SUBNET, subnet_id)
        eip = (
            tx.require(ec2.ELASTIC_IP, allocation_id) if connectivity == "public" and allocation_id else None
        )
        dry_run(params)
        nat_id = tx.new_id(ec2.NAT_GATEWAY)
        failure: list[str] | None = None
        address: NatGatewayAddress = {"IsPrimary": True, "Status": "associating"}
        if eip is not None:
            address["AllocationId"] = eip["AllocationId"]
            address["PublicIp"] = eip["PublicIp"]
            if eip.get("AssociationId"):
                failure = [
                    "Resource.AlreadyAssociated",
                    f"Elastic IP address {eip['AllocationId']} is already associated",
                ]
        if failure is None:
            try:
                eni = tx.create_interface(
                    subnet_id,
                    (),
                    f"Interface for NAT Gateway {nat_id}",
                    interface_type="nat_gateway",
                    requester_managed=True,
                    private_ip=params.get("PrivateIpAddress"),
                    groupless=True,
                )
            except AwsError as exc:
                if exc.code != "InsufficientFreeAddressesInSubnet":
                    raise
                failure = [
                    "InsufficientFreeAddressesInSubnet",
                    "Subnet has insufficient free addresses to create this NAT gateway",
                ]
            else:
                address["NetworkInterfaceId"] = eni["NetworkInterfaceId"]
                address["PrivateIp"] = eni["PrivateIpAddress"]
                if eip is not None:
                    association_id = f"eipassoc-{_suffix()}"
                    address["AssociationId"] = association_id
                    eip["AssociationId"] = association_id
                    eip["NetworkInterfaceId"] = eni["NetworkInterfaceId"]
                    eip["NetworkInterfaceOwnerId"] = ctx.account_id
                    eip["PrivateIpAddress"] = eni["PrivateIpAddress"]
                    eip["_nat"] = nat_id
                    tx.update(eip["AllocationId"], eip)
        nat: StoredNatGateway = {
            "CreateTime": iso(tx.now_ms),
            "NatGatewayAddresses": [address],
            "NatGatewayId": nat_id,
            "State": "pending",
            "SubnetId": subnet_id,
            "VpcId": subnet["VpcId"],
            "Tags": tags,
            "ConnectivityType": connectivity,
            "_due_ms": tx.now_ms + store.nat_delay_ms,
        }
        if failure is not None:
            nat["_failure"] = failure
        tx.put(ec2.NAT_GATEWAY, nat_id, nat, vpc_id=subnet["VpcId"], subnet_id=subnet_id)
        tx.emit(ec2.VPC_CHANGED, public_nat(nat))
    out: dict[str, Any] = {"NatGateway": _nat_out(nat)}
    if params.get("ClientToken"):
        out["ClientToken"] = params["ClientToken"]
    return out


_NAT_FILTERS = {
    "nat-gateway-id": field("NatGatewayId"),
    "state": field("State"),
    "subnet-id": field("SubnetId"),
    "vpc-id": field("VpcId"),
}


def describe_nat_gateways(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    with write(store, ctx) as tx:
        tx.advance_nat_gateways()
        found = by_ids(tx, ec2.NAT_GATEWAY, params.get("NatGatewayIds"))
        nats = [_nat_out(n) for n in (found if found is not None else tx.find(ec2.NAT_GATEWAY))]
    nats = apply_filters(nats, params.get("Filter"), _NAT_FILTERS)
    dry_run(params)
    page, token = paginate(nats, params)
    return with_token({"NatGateways": page}, token)


def delete_nat_gateway(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    nat_id = params["NatGatewayId"]
    with write(store, ctx) as tx:
        tx.advance_nat_gateways()
        nat = tx.require(ec2.NAT_GATEWAY, nat_id)
        dry_run(params)
        if nat["State"] not in ("deleting", "deleted"):
            nat["State"] = "deleting"
            nat["DeleteTime"] = iso(tx.now_ms)
            nat["_due_ms"] = tx.now_ms + store.nat_delay_ms
            nat.pop("_failure", None)
            tx.release_nat_resources(nat)
            tx.update(nat_id, nat)
            tx.blackhole_routes(nat["VpcId"], nat_id)
            tx.emit(ec2.VPC_CHANGED, public_nat(nat))
    return {"NatGatewayId": nat_id}


HANDLERS = {
    "CreateInternetGateway": create_internet_gateway,
    "AttachInternetGateway": attach_internet_gateway,
    "DetachInternetGateway": detach_internet_gateway,
    "DeleteInternetGateway": delete_internet_gateway,
    "DescribeInternetGateways": describe_internet_gateways,
    "AllocateAddress": allocate_address,
    "ReleaseAddress": release_address,
    "DescribeAddresses": describe_addresses,
    "AssociateAddress": associate_address,
    "DisassociateAddress": disassociate_address,
    "CreateNatGateway": create_nat_gateway,
    "DescribeNatGateways": describe_nat_gateways,
    "DeleteNatGateway": delete_nat_gateway,
}
