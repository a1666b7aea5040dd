"""DNS in a VPC: DHCP option sets (Create/Describe/Delete/AssociateDhcpOptions) and the VPC's
attributes (Describe/ModifyVpcAttribute: ``enableDnsSupport``, ``enableDnsHostnames``,
``enableNetworkAddressUsageMetrics``).

EC2 makes one DHCP option set per region (``domain-name`` the region's default domain,
``domain-name-servers`` AmazonProvidedDNS) and associates new VPCs with it
(``Ec2Tx.default_dhcp_options``); ``default`` as a VPC's option set means none. What the options
and attributes change for functions is in :mod:`lamina.domain.dns`; the data plane hears of every
change (``VPC_CHANGED``) and applies it to the VPC's DNS server and to new environments'
resolv.conf.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import IPv4Address
from typing import Any, cast

from lamina.domain import dns as N
from lamina.domain import ec2
from lamina.domain.ec2 import error, public
from lamina.domain.ec2_models import DhcpConfiguration, DhcpOptions, StoredDhcpOptions, Vpc
from lamina.services.base import RequestContext
from lamina.services.ec2.handlers_tags import (
    apply_filters,
    dry_run,
    field,
    listing,
    paginate,
    read,
    required,
    spec_tags,
    with_token,
    write,
)
from lamina.store.ec2 import Ec2Store, Ec2Tx

_NETBIOS_NODE_TYPES = ("1", "2", "4", "8")
_ADDRESS_KEYS = ("domain-name-servers", "ntp-servers", "netbios-name-servers")
# A domain name of domain-name's space-separated list: what goes into a host's resolv.conf
# ``search`` line, so never a line break or any other character a name cannot hold.
_DOMAIN = re.compile(
    r"(?=.{1,253}\.?$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?"
)


def _invalid(value: str, parameter: str, why: str) -> Exception:
    return error("InvalidParameterValue", f"Value ({value}) for parameter {parameter} is invalid. {why}")


def _domains(value: str) -> list[str]:
    """The names of a ``domain-name`` value (separated by single spaces; none: invalid)."""
    names = value.split(" ")
    return names if value and all(names) else [""]


def _configurations(params: Mapping[str, Any]) -> list[DhcpConfiguration]:
    """The option set's ``DhcpConfigurations`` from CreateDhcpOptions' ``NewDhcpConfiguration``s,
    checked as EC2 checks them."""
    given = params.get("DhcpConfigurations") or []
    if not given:
        raise error("MissingParameter", "The request must contain the parameter dhcpConfiguration")
    out: dict[str, list[str]] = {}
    for conf in given:
        key = str(conf.get("Key") or "")
        values = [str(v) for v in conf.get("Values") or []]
        if key not in N.DHCP_KEYS:
            raise _invalid(key, "name", "Unknown DHCP option")
        if not values:
            raise _invalid(key, "value", "No values specified")
        if key in out:
            raise _invalid(key, "name", "Duplicate DHCP option")
        if key in _ADDRESS_KEYS:
            if len(values) > N.MAX_SERVERS:
                raise _invalid(",".join(values), key, f"A maximum of {N.MAX_SERVERS} values is allowed")
            for value in values:
                if key == "domain-name-servers" and value == N.AMAZON_PROVIDED_DNS:
                    continue
                try:
                    IPv4Address(value)
                except ValueError:
                    raise _invalid(value, key, "Invalid IP address") from None
        elif key == "netbios-node-type":
            if len(values) != 1 or values[0] not in _NETBIOS_NODE_TYPES:
                raise _invalid(",".join(values), key, "Valid values are 1, 2, 4, and 8")
        elif key == "domain-name" and len(values) != 1:
            raise _invalid(",".join(values), key, "Only one value is allowed")
        elif key == "domain-name" and not all(_DOMAIN.fullmatch(n) for n in _domains(values[0])):
            raise _invalid(values[0], key, "Invalid domain name")
        elif key == "ipv6-address-preferred-lease-time" and not (
            len(values) == 1 and values[0].isdigit() and 140 <= int(values[0]) <= 2147483647
        ):
            raise _invalid(",".join(values), key, "Valid values are 140 to 2147483647 seconds")
        out[key] = values
    return [{"Key": k, "Values": [{"Value": v} for v in vs]} for k, vs in out.items()]


def create_dhcp_options(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    configurations = _configurations(params)
    tags = spec_tags(params, ec2.DHCP_OPTIONS)
    dry_run(params)
    with write(store, ctx) as tx:
        options_id = tx.new_id(ec2.DHCP_OPTIONS)
        body: StoredDhcpOptions = {
            "OwnerId": ctx.account_id,
            "Tags": tags,
            "DhcpOptionsId": options_id,
            "DhcpConfigurations": configurations,
        }
        tx.put(ec2.DHCP_OPTIONS, options_id, body)
    return {"DhcpOptions": public(body)}


def _value_of(options: Mapping[str, Any]) -> list[str]:
    return [
        str(v.get("Value")) for c in options.get("DhcpConfigurations") or () for v in c.get("Values") or ()
    ]


_FILTERS = {
    "dhcp-options-id": field("DhcpOptionsId"),
    "key": field("DhcpConfigurations", "Key"),
    "value": lambda options: _value_of(options),
    "owner-id": field("OwnerId"),
}
_COLUMNS = {"dhcp-options-id": "id"}


def describe_dhcp_options(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if not read(store, ctx, lambda tx: any(o.get("_default") for o in tx.find(ec2.DHCP_OPTIONS))):
        with write(store, ctx) as tx:  # the region's own set exists from the start in EC2
            tx.default_dhcp_options()

    def run(tx: Ec2Tx) -> tuple[list[DhcpOptions], list[Mapping[str, Any]]]:
        return listing(tx, ec2.DHCP_OPTIONS, params.get("DhcpOptionsIds"), params.get("Filters"), _COLUMNS)

    found, filters = read(store, ctx, run)
    found = apply_filters(found, filters, _FILTERS)
    dry_run(params)
    page, token = paginate(found, params)
    return with_token({"DhcpOptions": page}, token)


def delete_dhcp_options(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    options_id = params["DhcpOptionsId"]
    with write(store, ctx) as tx:
        tx.require(ec2.DHCP_OPTIONS, options_id)
        if any(v.get("DhcpOptionsId") == options_id for v in tx.find(ec2.VPC)):
            raise error(
                "DependencyViolation",
                f"The dhcpOptions '{options_id}' has dependencies and cannot be deleted.",
            )
        dry_run(params)
        tx.remove(options_id)
    return {}


def associate_dhcp_options(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    options_id = params["DhcpOptionsId"]
    vpc_id = required(params, "VpcId")
    with write(store, ctx) as tx:
        if options_id != N.NO_DHCP_OPTIONS:
            tx.require(ec2.DHCP_OPTIONS, options_id)
        vpc = tx.require(ec2.VPC, vpc_id)
        dry_run(params)
        stored: dict[str, Any] = dict(vpc)
        stored["DhcpOptionsId"] = options_id
        stored.pop(N.NO_OPTIONS_KEY, None)
        if options_id == N.NO_DHCP_OPTIONS:
            stored[N.NO_OPTIONS_KEY] = True  # bookkeeping: "default" asked for, not a VPC from before
        tx.update(vpc_id, cast(Vpc, stored))
        tx.emit(ec2.VPC_CHANGED, public(stored))
    return {}


# -- VPC attributes -------------------------------------------------------------------------------

# EC2's attribute names, the output members and the fields of :class:`VpcDnsAttributes`.
_ATTRIBUTES = {
    "enableDnsSupport": ("EnableDnsSupport", "support"),
    "enableDnsHostnames": ("EnableDnsHostnames", "hostnames"),
    "enableNetworkAddressUsageMetrics": ("EnableNetworkAddressUsageMetrics", "address_usage_metrics"),
}


def describe_vpc_attribute(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = required(params, "Attribute")
    if name not in _ATTRIBUTES:
        raise _invalid(name, "attribute", "Unknown attribute")
    vpc_id = required(params, "VpcId")
    vpc = read(store, ctx, lambda tx: tx.require(ec2.VPC, vpc_id))
    dry_run(params)
    member, attr = _ATTRIBUTES[name]
    value = getattr(N.VpcDnsAttributes.of(vpc), attr)
    return {"VpcId": vpc_id, member: {"Value": value}}


def modify_vpc_attribute(store: Ec2Store, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    vpc_id = required(params, "VpcId")
    given = {
        name: params[member] for name, (member, _) in _ATTRIBUTES.items() if params.get(member) is not None
    }
    if len(given) > 1:
        raise error(
            "InvalidParameterCombination",
            f"Fields for multiple attribute types specified: {', '.join(sorted(given))}",
        )
    if not given:
        raise error(
            "MissingParameter",
            "The request must contain exactly one of the parameters enableDnsSupport, enableDnsHostnames "
            "or enableNetworkAddressUsageMetrics",
        )
    ((name, value),) = given.items()
    if not isinstance(value, Mapping) or value.get("Value") is None:
        raise error("MissingParameter", f"The request must contain the parameter {name}.value")
    with write(store, ctx) as tx:
        vpc = tx.require(ec2.VPC, vpc_id)
        current = N.VpcDnsAttributes.of(vpc)
        attributes = N.VpcDnsAttributes(**{**current.stored(), _ATTRIBUTES[name][1]: bool(value["Value"])})
        if attributes != current:
            stored: dict[str, Any] = dict(vpc)
            stored[N.ATTRIBUTES_KEY] = attributes.stored()  # bookkeeping: DescribeVpcs never shows it
            tx.update(vpc_id, cast(Vpc, stored))
            tx.emit(ec2.VPC_CHANGED, public(vpc))
    return {}


HANDLERS = {
    "CreateDhcpOptions": create_dhcp_options,
    "DescribeDhcpOptions": describe_dhcp_options,
    "DeleteDhcpOptions": delete_dhcp_options,
    "AssociateDhcpOptions": associate_dhcp_options,
    "DescribeVpcAttribute": describe_vpc_attribute,
    "ModifyVpcAttribute": modify_vpc_attribute,
}
