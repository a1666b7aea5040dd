"""What the Amazon DNS server answers for lamina's own names (the DNS server's extra-records hook,
``net.manager``): in a VPC, each service's public name answers its public address, or the
addresses of the VPC's interface endpoint for that service when it has private DNS; interface
endpoints' own ``vpce-...`` names answer their addresses. Without a VPC (the default network,
shared by every region), every region's public names answer the public addresses. The mapping
itself is :func:`lamina.domain.endpoints.service_addresses`; this reads the endpoints and their
interfaces from the EC2 store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from ipaddress import IPv4Address

from lamina.domain import ec2
from lamina.domain import endpoints as P
from lamina.store.ec2 import Ec2Store

Records = Mapping[str, tuple[IPv4Address, ...]]


def records_for(store: Ec2Store, regions: Iterable[str]) -> Callable[[tuple[str, str, str] | None], Records]:
    """The hook: (account, region, VpcId) -> that VPC's names; None -> the default network's."""
    public: dict[str, tuple[IPv4Address, ...]] = {}
    for region in sorted(set(regions)):
        public.update(P.service_addresses(region))

    def records(key: tuple[str, str, str] | None) -> Records:
        if key is None:
            return public
        account, region, vpc_id = key
        endpoints = store.list_resources(account, region, ec2.VPC_ENDPOINT, vpc_id=vpc_id)
        if not endpoints:
            return P.service_addresses(region)
        interfaces = store.list_resources(account, region, ec2.NETWORK_INTERFACE, vpc_id=vpc_id)
        return P.service_addresses(region, P.interface_endpoints(endpoints, interfaces, region))

    return records


def policies_for(store: Ec2Store) -> Callable[[P.EndpointOrigin], list[str]]:
    """The policy documents of the endpoints a request came through (IAM's authorizer applies them)."""

    def policies(origin: P.EndpointOrigin) -> list[str]:
        found = store.list_resources(origin.account, origin.region, ec2.VPC_ENDPOINT, vpc_id=origin.vpc_id)
        by_id = {str(e.get("VpcEndpointId")): e for e in found}
        # An endpoint deleted since its listener was set up lets nothing through.
        return [str(by_id[i].get("PolicyDocument") or "") if i in by_id else "" for i in origin.endpoint_ids]

    return policies
