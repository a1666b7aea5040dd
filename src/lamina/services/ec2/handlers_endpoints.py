"""VPC endpoints, the endpoint services lamina offers, and the AWS-managed prefix lists.

The services, names, addresses and prefix lists are :mod:`lamina.domain.endpoints`'. An endpoint
is stored as EC2 describes it (kind ``vpc-endpoint``, with its VPC). A gateway endpoint's routes
are not kept in its route tables' ``Routes``: DescribeRouteTables shows them from the endpoint
(:func:`gateway_routes`), and the data plane routes them from it too. An interface endpoint owns
one requester-managed interface per subnet (``vpc_endpoint``, ``VPC Endpoint Interface
vpce-...``), deleted with it. Endpoints become ``available`` at once.

Texts guessed where no recording was at hand (see the report): the messages of
``InvalidParameter`` for misplaced parameters and of ``InvalidPrefixListId.NotFound``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from lamina.domain import ec2
from lamina.domain import endpoints as P
from lamina.domain.dns import VpcDnsAttributes
from lamina.domain.ec2 import error, iso
from lamina.domain.ec2_models import Route as RouteItem
from lamina.services.base import RequestContext
from lamina.services.ec2.handlers_tags import (
    apply_filters,
    dry_run,
    field,
    paginate,
    read,
    required,
    spec_tags,
    with_token,
    write,
)
from lamina.store.ec2 import Ec2Store, Ec2Tx

_ENDPOINT_FILTERS = {
    "ip-address-type": field("IpAddressType"),
    "service-name": field("ServiceName"),
    "vpc-id": field("VpcId"),
    "vpc-endpoint-id": field("VpcEndpointId"),
    "vpc-endpoint-state": field("State"),
    "vpc-endpoint-type": field("VpcEndpointType"),
}


def _invalid(message: str) -> Exception:
    return error("InvalidParameter", message)


def _service_for(region: str, name: str, kind: P.EndpointType) -> P.Service:
    found = P.service_by_name(region, name)
    if found is None:
        raise error("InvalidServiceName", f"The Vpc Endpoint Service '{name}' does not exist")
    if kind not in found.types:
        available = ", ".join(t.value for t in found.types)
        raise _invalid(
            f"Endpoint type ({kind.value}) does not match available service types ([{available}])."
        )
    return found


def _policy(text: str | None, default: str) -> str:
    if text is None:
        return default
    try:
        doc = json.loads(text)
    except ValueError:
        raise error("InvalidPolicyDocument", "Policy document is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise error("InvalidPolicyDocument", "Policy document is not valid JSON.")
    return text


def _check_route_tables(
    tx: Ec2Tx, vpc_id: str, table_ids: Iterable[str], pl_id: str, endpoint_id: str | None = None
) -> list[str]:
    out = []
    taken = {
        t
        for e in tx.find(ec2.VPC_ENDPOINT, vpc_id=vpc_id)
        if e.get("VpcEndpointType") == "Gateway"
        and e["VpcEndpointId"] != endpoint_id
        and P.prefix_list_id(tx.region, _key_of(tx.region, e)) == pl_id
        for t in e.get("RouteTableIds") or ()
    }
    for table_id in dict.fromkeys(table_ids):
        table = tx.require(ec2.ROUTE_TABLE, table_id)
        if table["VpcId"] != vpc_id:
            raise _invalid(f"route table {table_id} does not belong to vpc {vpc_id}")
        if table_id in taken:
            raise error(
                "RouteAlreadyExists",
                f"route table {table_id} already has a route with destination-prefix-list-id {pl_id}",
            )
        out.append(table_id)
    return out


def _key_of(region: str, endpoint: Mapping[str, Any]) -> str:
    found = P.service_by_name(region, str(endpoint.get("ServiceName")))
    return found.key if found is not None else ""


def _check_groups(tx: Ec2Tx, vpc_id: str, group_ids: Iterable[str]) -> list[dict[str, str]]:
    groups = []
    for group_id in dict.fromkeys(group_ids):
        group = tx.require(ec2.SECURITY_GROUP, group_id)
        if group["VpcId"] != vpc_id:
            raise _invalid(f"The security group '{group_id}' does not belong to vpc '{vpc_id}'")
        groups.append({"GroupId": group_id, "GroupName": group["GroupName"]})
    return groups


def _check_subnets(
    tx: Ec2Tx, vpc_id: str, subnet_ids: Iterable[str], existing: Sequence[str] = ()
) -> list[str]:
    zones: dict[str, str] = {}
    for subnet_id in existing:
        subnet = tx.get(subnet_id, ec2.SUBNET)
        if subnet is not None:
            zones[subnet["AvailabilityZone"]] = subnet_id
    out = []
    for subnet_id in dict.fromkeys(subnet_ids):
        subnet = tx.require(ec2.SUBNET, subnet_id)
        if subnet["VpcId"] != vpc_id:
            raise _invalid(f"The subnet ID '{subnet_id}' does not belong to vpc '{vpc_id}'")
        zone = subnet["AvailabilityZone"]
        if zone in zones:
            raise error(
                "DuplicateSubnetsInSameZone",
                f"Found another VPC endpoint subnet in the availability zone of {subnet_id}. VPC endpoint "
                "subnets should be in different availability zones supported by the VPC endpoint service.",
            )
        zones[zone] = subnet_id
        out.append(subnet_id)
    return out


def _check_private_dns(tx: Ec2Tx, vpc_id: str, service_: P.Service, endpoint_id: str | None = None) -> None:
    attributes = VpcDnsAttributes.of(cast(Mapping[str, Any], tx.require(ec2.VPC, vpc_id)))
    if not (attributes.support and attributes.hostnames):  # as EC2 refuses it
        raise _invalid(
            "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes "
            f"set to true for {vpc_id}"
        )
    for other in tx.find(ec2.VPC_ENDPOINT, vpc_id=vpc_id):
        if (
            other["VpcEndpointId"] != endpoint_id
            and other.get("VpcEndpointType") == "Interface"
            and other.get("PrivateDnsEnabled")
            and other.get("ServiceName") == service_.service_name(tx.region)
        ):
            raise _invalid(
                "private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
                f"{service_.host(tx.region)} in the VPC {vpc_id}"
            )


def _interfaces(
    tx: Ec2Tx, endpoint_id: str, subnet_ids: Iterable[str], group_ids: Sequence[str]
) -> list[str]:
    out = []
    for subnet_id in subnet_ids:
        eni = tx.create_interface(
            subnet_id,
            group_ids,
            f"VPC Endpoint Interface {endpoint_id}",
            interface_type="vpc_endpoint",
            requester_managed=True,
        )
        out.append(eni["NetworkInterfaceId"])
    return out


def _dns(tx: Ec2Tx, endpoint: dict[str, Any], service_: P.Service) -> None:
    zones = [
        s["AvailabilityZone"] for sid in endpoint.get("SubnetIds") or () if (s := tx.get(sid, ec2.SUBNET))
    ]
    entries = [
        {"DnsName": n, "HostedZoneId": P.VPCE_HOSTED_ZONE}
        for n in P.dns_entries(endpoint["VpcEndpointId"], service_, tx.region, zones)
    ]
    if endpoint.get("PrivateDnsEnabled"):
        entries.append({"DnsName": service_.host(tx.region), "HostedZoneId": P.VPCE_HOSTED_ZONE})
        if service_.key == "s3":
            entries.append({"DnsName": f"*.{service_.host(tx.region)}", "HostedZoneId": P.VPCE_HOSTED_ZONE})
    endpoint["DnsEntries"] = entries


def create_vpc_endpoint(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    tags = spec_tags(params, ec2.VPC_ENDPOINT)
    vpc_id = required(params, "VpcId")
    name = required(params, "ServiceName")
    try:
        kind = P.EndpointType(params.get("VpcEndpointType") or "Gateway")
    except ValueError:
        raise _invalid(f"Endpoint type ({params.get('VpcEndpointType')}) is not supported.") from None
    with write(store, ctx) as tx:
        tx.require(ec2.VPC, vpc_id)
        service_ = _service_for(ctx.region, name, kind)
        endpoint_id = tx.new_id(ec2.VPC_ENDPOINT)
        endpoint: dict[str, Any] = {
            "VpcEndpointId": endpoint_id,
            "VpcEndpointType": kind.value,
            "VpcId": vpc_id,
            "ServiceName": name,
            "State": "available",
        }
        if kind is P.EndpointType.GATEWAY:
            if params.get("SubnetIds") or params.get("SecurityGroupIds"):
                raise _invalid("Subnets and security groups cannot be specified for a Gateway endpoint.")
            if params.get("PrivateDnsEnabled"):
                raise _invalid("PrivateDnsEnabled is not supported for a Gateway endpoint.")
            pl_id = P.prefix_list_id(ctx.region, service_.key)
            tables = _check_route_tables(tx, vpc_id, params.get("RouteTableIds") or (), pl_id)
            endpoint |= {
                "PolicyDocument": _policy(params.get("PolicyDocument"), P.DEFAULT_GATEWAY_POLICY),
                "RouteTableIds": tables,
                "SubnetIds": [],
                "Groups": [],
                "IpAddressType": "ipv4",
                "PrivateDnsEnabled": False,
                "RequesterManaged": False,
                "NetworkInterfaceIds": [],
                "DnsEntries": [],
            }
            dry_run(params)
        else:
            if params.get("RouteTableIds"):
                raise _invalid("Route tables cannot be specified for an Interface endpoint.")
            subnets = _check_subnets(tx, vpc_id, params.get("SubnetIds") or ())
            group_ids = params.get("SecurityGroupIds") or []
            if not group_ids:
                default = tx.default_group(vpc_id)
                group_ids = [default["GroupId"]] if default is not None else []
            groups = _check_groups(tx, vpc_id, group_ids)
            private_dns = params.get("PrivateDnsEnabled")
            private_dns = True if private_dns is None else bool(private_dns)
            if private_dns:
                _check_private_dns(tx, vpc_id, service_)
            dry_run(params)
            endpoint |= {
                "PolicyDocument": _policy(params.get("PolicyDocument"), P.DEFAULT_INTERFACE_POLICY),
                "RouteTableIds": [],
                "SubnetIds": subnets,
                "Groups": groups,
                "IpAddressType": "ipv4",
                "DnsOptions": {"DnsRecordIpType": "ipv4"},
                "PrivateDnsEnabled": private_dns,
                "RequesterManaged": False,
                "NetworkInterfaceIds": _interfaces(tx, endpoint_id, subnets, [g["GroupId"] for g in groups]),
            }
            _dns(tx, endpoint, service_)
        endpoint |= {"CreationTimestamp": iso(ctx.now_ms), "Tags": tags, "OwnerId": ctx.account_id}
        tx.put(ec2.VPC_ENDPOINT, endpoint_id, endpoint, vpc_id=vpc_id)
        tx.emit(ec2.VPC_CHANGED, endpoint)
    out: dict[str, Any] = {"VpcEndpoint": endpoint}
    if params.get("ClientToken"):
        out["ClientToken"] = params["ClientToken"]
    return out


def describe_vpc_endpoints(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    def run(tx: Ec2Tx) -> list[dict[str, Any]]:
        ids = params.get("VpcEndpointIds")
        if ids:
            found = [tx.require(ec2.VPC_ENDPOINT, i) for i in dict.fromkeys(ids)]
        else:
            found = tx.find(ec2.VPC_ENDPOINT)
        for endpoint in found:  # a route table deleted since takes its route with it
            tables = endpoint.get("RouteTableIds") or []
            if tables:
                endpoint["RouteTableIds"] = [t for t in tables if tx.get(t, ec2.ROUTE_TABLE) is not None]
        return found

    found = apply_filters(read(store, ctx, run), params.get("Filters"), _ENDPOINT_FILTERS)
    dry_run(params)
    page, token = paginate(found, params)
    return with_token({"VpcEndpoints": page}, token)


def modify_vpc_endpoint(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    endpoint_id = params["VpcEndpointId"]
    with write(store, ctx) as tx:
        endpoint = tx.require(ec2.VPC_ENDPOINT, endpoint_id)
        vpc_id = endpoint["VpcId"]
        gateway = endpoint["VpcEndpointType"] == "Gateway"
        service_ = P.service_by_name(ctx.region, endpoint["ServiceName"])
        assert service_ is not None
        if params.get("ResetPolicy"):
            endpoint["PolicyDocument"] = P.DEFAULT_GATEWAY_POLICY if gateway else P.DEFAULT_INTERFACE_POLICY
        elif params.get("PolicyDocument") is not None:
            endpoint["PolicyDocument"] = _policy(params["PolicyDocument"], "")
        add_tables, remove_tables = (
            params.get("AddRouteTableIds") or [],
            params.get("RemoveRouteTableIds") or [],
        )
        add_subnets, remove_subnets = params.get("AddSubnetIds") or [], params.get("RemoveSubnetIds") or []
        add_groups, remove_groups = (
            params.get("AddSecurityGroupIds") or [],
            params.get("RemoveSecurityGroupIds") or [],
        )
        if gateway and (add_subnets or remove_subnets or add_groups or remove_groups):
            raise _invalid("Subnets and security groups cannot be specified for a Gateway endpoint.")
        if not gateway and (add_tables or remove_tables):
            raise _invalid("Route tables cannot be specified for an Interface endpoint.")
        changed_tables: list[str] = []
        if gateway:
            pl_id = P.prefix_list_id(ctx.region, service_.key)
            tables = [t for t in endpoint["RouteTableIds"] if t not in remove_tables]
            for table_id in remove_tables:
                tx.require(ec2.ROUTE_TABLE, table_id)
            new = [t for t in add_tables if t not in tables]
            _check_route_tables(tx, vpc_id, new, pl_id, endpoint_id)
            changed_tables = [*new, *remove_tables]
            endpoint["RouteTableIds"] = tables + new
        else:
            if params.get("PrivateDnsEnabled") is not None:
                if params["PrivateDnsEnabled"]:
                    _check_private_dns(tx, vpc_id, service_, endpoint_id)
                endpoint["PrivateDnsEnabled"] = bool(params["PrivateDnsEnabled"])
            group_ids = [g["GroupId"] for g in endpoint["Groups"] if g["GroupId"] not in remove_groups]
            group_ids += [g for g in add_groups if g not in group_ids]
            groups = _check_groups(tx, vpc_id, group_ids)
            for subnet_id in remove_subnets:
                if subnet_id not in endpoint["SubnetIds"]:
                    raise _invalid(f"The subnet ID '{subnet_id}' is not part of the endpoint {endpoint_id}")
            kept = [s for s in endpoint["SubnetIds"] if s not in remove_subnets]
            new_subnets = _check_subnets(tx, vpc_id, [s for s in add_subnets if s not in kept], kept)
            dry_run(params)
            enis = []
            for eni_id in endpoint["NetworkInterfaceIds"]:
                eni = tx.get(eni_id, ec2.NETWORK_INTERFACE)
                if eni is None:
                    continue
                if eni["SubnetId"] in remove_subnets:
                    tx.delete_interface(eni_id)
                    continue
                if [g["GroupId"] for g in eni.get("Groups", [])] != group_ids:
                    eni["Groups"] = [{"GroupId": g["GroupId"], "GroupName": g["GroupName"]} for g in groups]
                    tx.update(eni_id, eni)
                    tx.set_interface_groups(eni_id, group_ids)
                    tx.emit(ec2.SECURITY_GROUP_CHANGED, eni)
                enis.append(eni_id)
            enis += _interfaces(tx, endpoint_id, new_subnets, group_ids)
            endpoint |= {"Groups": groups, "SubnetIds": kept + new_subnets, "NetworkInterfaceIds": enis}
            _dns(tx, endpoint, service_)
        dry_run(params)
        tx.put(ec2.VPC_ENDPOINT, endpoint_id, endpoint, vpc_id=vpc_id)
        tx.emit(ec2.VPC_CHANGED, endpoint)
        for table_id in changed_tables:
            table = tx.get(table_id, ec2.ROUTE_TABLE)
            if table is not None:
                tx.emit(ec2.ROUTE_CHANGED, table)
    return {"Return": True}


def delete_vpc_endpoints(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    unsuccessful = []
    with write(store, ctx) as tx:
        found = []
        for endpoint_id in dict.fromkeys(params["VpcEndpointIds"]):
            endpoint = tx.get(endpoint_id, ec2.VPC_ENDPOINT)
            if endpoint is None:
                unsuccessful.append(
                    {
                        "Error": {
                            "Code": "InvalidVpcEndpoint.NotFound",
                            "Message": f"The Vpc Endpoint Id '{endpoint_id}' does not exist",
                        },
                        "ResourceId": endpoint_id,
                    }
                )
            else:
                found.append(endpoint)
        dry_run(params)
        for endpoint in found:
            for eni_id in endpoint.get("NetworkInterfaceIds") or ():
                if tx.get(eni_id, ec2.NETWORK_INTERFACE) is not None:
                    tx.delete_interface(eni_id)
            tx.remove(endpoint["VpcEndpointId"])
            tx.emit(ec2.VPC_CHANGED, {**endpoint, "State": "deleted"})
    return {"Unsuccessful": unsuccessful}


# -- route tables ---------------------------------------------------------------------------------


def gateway_routes(tx: Ec2Tx, vpc_id: str | None = None) -> dict[str, list[RouteItem]]:
    """Route table id -> the routes gateway endpoints give it, as DescribeRouteTables shows them."""
    out: dict[str, list[RouteItem]] = {}
    for endpoint in tx.find(ec2.VPC_ENDPOINT, vpc_id=vpc_id):
        if endpoint.get("VpcEndpointType") != "Gateway":
            continue
        pl_id = P.prefix_list_id(tx.region, _key_of(tx.region, endpoint))
        for table_id in endpoint.get("RouteTableIds") or ():
            out.setdefault(table_id, []).append(
                RouteItem(
                    DestinationPrefixListId=pl_id,
                    GatewayId=endpoint["VpcEndpointId"],
                    Origin="CreateRoute",
                    State="active",
                )
            )
    return out


# -- endpoint services and prefix lists -----------------------------------------------------------


def _service_details(region: str, zones: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for s in sorted(P.SERVICES, key=lambda s: s.service_name(region)):
        for kind in s.types:
            detail: dict[str, Any] = {
                "ServiceName": s.service_name(region),
                "ServiceId": "vpce-svc-" + P.prefix_list_id(region, f"{s.key}/{kind.value}")[3:] + "0" * 9,
                "ServiceType": [{"ServiceType": kind.value}],
                "AvailabilityZones": list(zones),
                "Owner": "amazon",
                "BaseEndpointDnsNames": [f"{s.key}.{region}.vpce.amazonaws.com"],
                "VpcEndpointPolicySupported": True,
                "AcceptanceRequired": False,
                "ManagesVpcEndpoints": False,
                "Tags": [],
                "SupportedIpAddressTypes": ["ipv4"],
            }
            if kind is P.EndpointType.INTERFACE:
                detail["PrivateDnsName"] = s.host(region)
                detail["PrivateDnsNames"] = [{"PrivateDnsName": s.host(region)}]
                detail["PrivateDnsNameVerificationState"] = "verified"
            else:
                detail["BaseEndpointDnsNames"] = [f"{s.key}.{region}.amazonaws.com"]
            out.append(detail)
    return out


_SERVICE_FILTERS = {
    "service-name": field("ServiceName"),
    "service-type": field("ServiceType", "ServiceType"),
    "owner": field("Owner"),
    "supported-ip-address-types": field("SupportedIpAddressTypes"),
}


def describe_vpc_endpoint_services(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    zones = [f"{ctx.region}{z}" for z in "abc"]
    details = _service_details(ctx.region, zones)
    names = params.get("ServiceNames")
    if names:
        known = {d["ServiceName"] for d in details}
        for name in names:
            if name not in known:
                raise error("InvalidServiceName", f"The Vpc Endpoint Service '{name}' does not exist")
        details = [d for d in details if d["ServiceName"] in names]
    details = apply_filters(details, params.get("Filters"), _SERVICE_FILTERS)
    dry_run(params)
    page, token = paginate(details, params)
    return with_token(
        {"ServiceNames": sorted({d["ServiceName"] for d in page}), "ServiceDetails": page}, token
    )


def _prefix_lists(region: str) -> list[dict[str, Any]]:
    return [
        {
            "PrefixListId": P.prefix_list_id(region, s.key),
            "PrefixListName": s.service_name(region),
            "Cidrs": [str(c) for c in P.prefix_list_cidrs(s.key)],
        }
        for s in P.SERVICES
        if P.EndpointType.GATEWAY in s.types
    ]


def _pick(lists: list[dict[str, Any]], ids: Sequence[str] | None) -> list[dict[str, Any]]:
    if not ids:
        return lists
    by_id = {p["PrefixListId"]: p for p in lists}
    for pl_id in ids:
        if pl_id not in by_id:
            raise error("InvalidPrefixListId.NotFound", f"The prefix list ID '{pl_id}' does not exist")
    return [by_id[i] for i in dict.fromkeys(ids)]


def describe_prefix_lists(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    lists = _pick(_prefix_lists(ctx.region), params.get("PrefixListIds"))
    lists = apply_filters(
        lists,
        params.get("Filters"),
        {"prefix-list-id": field("PrefixListId"), "prefix-list-name": field("PrefixListName")},
    )
    dry_run(params)
    page, token = paginate(lists, params)
    return with_token({"PrefixLists": page}, token)


def _managed(region: str) -> list[dict[str, Any]]:
    return [
        {
            "PrefixListId": p["PrefixListId"],
            "AddressFamily": "IPv4",
            "State": "create-complete",
            "PrefixListArn": f"arn:aws:ec2:{region}:aws:prefix-list/{p['PrefixListId']}",
            "PrefixListName": p["PrefixListName"],
            "Tags": [],
            "OwnerId": "AWS",
        }
        for p in _prefix_lists(region)
    ]


def describe_managed_prefix_lists(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    lists = _pick(_managed(ctx.region), params.get("PrefixListIds"))
    lists = apply_filters(
        lists,
        params.get("Filters"),
        {
            "owner-id": field("OwnerId"),
            "prefix-list-id": field("PrefixListId"),
            "prefix-list-name": field("PrefixListName"),
        },
    )
    dry_run(params)
    page, token = paginate(lists, params)
    return with_token({"PrefixLists": page}, token)


def get_managed_prefix_list_entries(
    store: Ec2Store, ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    found = _pick(_prefix_lists(ctx.region), [params["PrefixListId"]])[0]
    dry_run(params)
    page, token = paginate([{"Cidr": c} for c in found["Cidrs"]], params)
    return with_token({"Entries": page}, token)


HANDLERS = {
    "CreateVpcEndpoint": create_vpc_endpoint,
    "DescribeVpcEndpoints": describe_vpc_endpoints,
    "ModifyVpcEndpoint": modify_vpc_endpoint,
    "DeleteVpcEndpoints": delete_vpc_endpoints,
    "DescribeVpcEndpointServices": describe_vpc_endpoint_services,
    "DescribePrefixLists": describe_prefix_lists,
    "DescribeManagedPrefixLists": describe_managed_prefix_lists,
    "GetManagedPrefixListEntries": get_managed_prefix_list_entries,
}
