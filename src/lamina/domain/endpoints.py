"""lamina's API as a VPC sees it (pure): its public addresses, its names, the VPC endpoint services
it offers and the AWS-managed S3 prefix list.

Facts this module encodes (VPC User Guide / PrivateLink Guide, "Gateway endpoints", "Interface
endpoints", "DNS for interface endpoints"):

- AWS's public endpoints (``lambda.<region>.amazonaws.com``, ``s3.<region>.amazonaws.com``, ...)
  are public addresses: a VPC reaches them only through an internet gateway (a NAT gateway for a
  private subnet). lamina serves its API at two public addresses of TEST-NET-2 (RFC 5737), which
  live in lamina's edge namespace (``net.uplink``), port 443: one for S3, one for every other
  service, so that an S3 gateway endpoint can route S3 alone.
- A *gateway endpoint* (S3 and DynamoDB only) adds a route to each chosen route table whose
  destination is the service's AWS-managed prefix list (``pl-...``, ``com.amazonaws.<region>.s3``)
  and whose target is the endpoint (``GatewayId: vpce-...``); its CIDRs are the service's public
  addresses. lamina's S3 prefix list holds S3's public address.
- An *interface endpoint* is a requester-managed network interface in each chosen subnet (one per
  availability zone), type ``vpc_endpoint``, in the endpoint's security groups. Its regional DNS
  name is ``vpce-<id>-<8 chars>.<service>.<region>.vpce.amazonaws.com``; with private DNS the
  service's own name resolves, inside that VPC only, to the endpoint's interface addresses.

Names and addresses: :func:`service_addresses` answers what a VPC's resolver should answer for
each of lamina's service names (the public address, or the interface endpoint's addresses).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Final

# lamina's public addresses (TEST-NET-2, RFC 5737: never routed on the internet). The vpcrun work
# keeps these reachable through the edge whatever ``--allow-egress-to`` says.
PUBLIC_API_ADDRESS: Final = IPv4Address("198.51.100.250")  # lambda, sts, iam, ec2, logs
PUBLIC_S3_ADDRESS: Final = IPv4Address("198.51.100.251")  # s3 (its own: gateway endpoints route it)
PUBLIC_ADDRESSES: Final = (PUBLIC_API_ADDRESS, PUBLIC_S3_ADDRESS)
API_PORT: Final = 443

# Gateway endpoints' default policy (full access), as EC2 returns it.
DEFAULT_GATEWAY_POLICY: Final = (
    '{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}'
)
DEFAULT_INTERFACE_POLICY: Final = (
    '{\n  "Statement": [\n    {\n      "Action": "*", \n      "Effect": "Allow", \n'
    '      "Principal": "*", \n      "Resource": "*"\n    }\n  ]\n}'
)
# The hosted zone EC2 names in interface endpoints' DNS entries (us-east-1's; a constant here).
VPCE_HOSTED_ZONE: Final = "Z7HUB22UULQXV"


class EndpointType(enum.Enum):
    GATEWAY = "Gateway"
    INTERFACE = "Interface"


@dataclass(frozen=True)
class Service:
    """One service lamina serves, as a VPC endpoint service and as a DNS name."""

    key: str  # the short name: s3, lambda, ...
    env_id: str  # what follows AWS_ENDPOINT_URL_ in SDKs' per-service variables
    types: tuple[EndpointType, ...]
    regional: bool = True  # IAM is global: iam.amazonaws.com, com.amazonaws.iam

    def service_name(self, region: str) -> str:
        """``com.amazonaws.<region>.<key>`` (IAM: ``com.amazonaws.iam``)."""
        return f"com.amazonaws.{region}.{self.key}" if self.regional else f"com.amazonaws.{self.key}"

    def host(self, region: str) -> str:
        """The service's public DNS name (``lambda.us-east-1.amazonaws.com``)."""
        return f"{self.key}.{region}.amazonaws.com" if self.regional else f"{self.key}.amazonaws.com"

    @property
    def public_address(self) -> IPv4Address:
        return PUBLIC_S3_ADDRESS if self.key == "s3" else PUBLIC_API_ADDRESS


_INTERFACE = (EndpointType.INTERFACE,)
SERVICES: Final[tuple[Service, ...]] = (
    Service("ec2", "EC2", _INTERFACE),
    Service("iam", "IAM", _INTERFACE, regional=False),
    Service("lambda", "LAMBDA", _INTERFACE),
    Service("logs", "CLOUDWATCH_LOGS", _INTERFACE),
    Service("s3", "S3", (EndpointType.GATEWAY, EndpointType.INTERFACE)),
    Service("sts", "STS", _INTERFACE),
)
_BY_KEY: Final = {s.key: s for s in SERVICES}


def service(key: str) -> Service:
    return _BY_KEY[key]


def service_by_name(region: str, name: str) -> Service | None:
    """The service an endpoint service name (``com.amazonaws.us-east-1.s3``) names, or None."""
    for s in SERVICES:
        if s.service_name(region) == name:
            return s
    return None


def prefix_list_id(region: str, key: str = "s3") -> str:
    """The AWS-managed prefix list of a gateway service in a region (stable: ``pl-`` + 8 hex)."""
    return "pl-" + hashlib.sha256(f"{region}/{key}".encode()).hexdigest()[:8]


def prefix_list_cidrs(key: str = "s3") -> tuple[IPv4Network, ...]:
    """The CIDRs of a gateway service's prefix list: its public address."""
    return (IPv4Network(service(key).public_address),)


def gateway_route_destinations(region: str) -> Mapping[str, tuple[IPv4Network, ...]]:
    """Prefix list id -> its CIDRs, for every gateway service (what the data plane routes)."""
    return {
        prefix_list_id(region, s.key): prefix_list_cidrs(s.key)
        for s in SERVICES
        if EndpointType.GATEWAY in s.types
    }


def dns_entries(
    endpoint_id: str, service_: Service, region: str, subnet_zones: Iterable[str] = ()
) -> list[str]:
    """An interface endpoint's DNS names: the regional one, then one per availability zone."""
    suffix = hashlib.sha256(endpoint_id.encode()).hexdigest()[:8]
    base = f"{service_.key}.{region}.vpce.amazonaws.com"
    names = [f"{endpoint_id}-{suffix}.{base}"]
    names += [f"{endpoint_id}-{suffix}-{zone}.{base}" for zone in sorted(set(subnet_zones))]
    return names


def endpoint_urls(region: str, *, by_name: bool) -> dict[str, str]:
    """What a function's environment names lamina by: ``AWS_ENDPOINT_URL`` and one
    ``AWS_ENDPOINT_URL_<SERVICE>`` per service, on port 443 over TLS.

    ``by_name``: the service's DNS name (when the environment has a resolver that answers it),
    else the public address itself (the certificate names both)."""
    out = {}
    for s in SERVICES:
        host = s.host(region) if by_name else str(s.public_address)
        out[f"AWS_ENDPOINT_URL_{s.env_id}"] = f"https://{host}"
    out["AWS_ENDPOINT_URL"] = out["AWS_ENDPOINT_URL_LAMBDA"]
    return out


def certificate_names(regions: Iterable[str]) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses lamina's server certificate covers."""
    names: list[str] = []
    for region in sorted(set(regions)):
        for s in SERVICES:
            names.append(s.host(region))
            names.append(f"*.{s.key}.{region}.vpce.amazonaws.com")
        names.append(f"*.s3.{region}.amazonaws.com")  # virtual-hosted buckets
    names += ["*.amazonaws.com", "*.us-east-1.amazonaws.com"]
    return sorted(set(names)), [str(a) for a in PUBLIC_ADDRESSES]


# -- requests through an endpoint ----------------------------------------------------------------


@dataclass(frozen=True)
class EndpointOrigin:
    """Where a request to the API came from when it came through VPC endpoints: their VPC and ids
    (``aws:SourceVpc``, ``aws:SourceVpce``; their policies apply)."""

    account: str
    region: str
    vpc_id: str
    endpoint_ids: tuple[str, ...]

    def condition_keys(self) -> dict[str, str]:
        keys = {"aws:SourceVpc": self.vpc_id}
        if len(self.endpoint_ids) == 1:
            keys["aws:SourceVpce"] = self.endpoint_ids[0]
        return keys


# -- what a VPC's resolver answers ----------------------------------------------------------------


@dataclass(frozen=True)
class InterfaceEndpointAddresses:
    """An available interface endpoint of a VPC: its service and its interfaces' addresses."""

    endpoint_id: str
    service_key: str
    private_dns: bool
    addresses: tuple[IPv4Address, ...]
    dns_names: tuple[str, ...] = ()


def interface_endpoints(
    endpoints: Iterable[Mapping[str, Any]], interfaces: Iterable[Mapping[str, Any]], region: str
) -> list[InterfaceEndpointAddresses]:
    """The available interface endpoints among EC2 ``VpcEndpoint`` dicts, with the addresses of
    their interfaces (``NetworkInterface`` dicts)."""
    by_eni = {i["NetworkInterfaceId"]: i for i in interfaces}
    out = []
    for e in sorted(endpoints, key=lambda e: str(e.get("VpcEndpointId"))):
        if e.get("VpcEndpointType") != EndpointType.INTERFACE.value or e.get("State") != "available":
            continue
        s = service_by_name(region, str(e.get("ServiceName")))
        if s is None:
            continue
        addresses = tuple(
            sorted(
                IPv4Address(by_eni[eni]["PrivateIpAddress"])
                for eni in e.get("NetworkInterfaceIds") or ()
                if eni in by_eni and by_eni[eni].get("PrivateIpAddress")
            )
        )
        names = tuple(d["DnsName"] for d in e.get("DnsEntries") or () if "DnsName" in d)
        out.append(
            InterfaceEndpointAddresses(
                e["VpcEndpointId"], s.key, bool(e.get("PrivateDnsEnabled")), addresses, names
            )
        )
    return out


def service_addresses(
    region: str, endpoints: Iterable[InterfaceEndpointAddresses] = ()
) -> dict[str, tuple[IPv4Address, ...]]:
    """DNS name -> its A records, as a VPC's resolver answers them: each service's public name
    answers its public address, or the addresses of the VPC's interface endpoint for that service
    when it has private DNS enabled; each interface endpoint's own names answer its addresses
    (with or without private DNS). Without a VPC (``endpoints`` empty): the public addresses.

    S3's private DNS covers ``s3.<region>.amazonaws.com`` and its virtual-hosted names
    (``*.s3.<region>.amazonaws.com``, given here as the wildcard key)."""
    out: dict[str, tuple[IPv4Address, ...]] = {}
    for s in SERVICES:
        out[s.host(region)] = (s.public_address,)
        if s.key == "s3":
            out[f"*.{s.host(region)}"] = (s.public_address,)
    for e in endpoints:
        if not e.addresses:
            continue
        for name in e.dns_names:
            out[name] = e.addresses
            out[f"*.{name}"] = e.addresses
        if e.private_dns:
            s = service(e.service_key)
            out[s.host(region)] = e.addresses
            if s.key == "s3":
                out[f"*.{s.host(region)}"] = e.addresses
    return out
