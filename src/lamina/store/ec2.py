"""EC2 (the VPC subset) in the metadata database, partitioned by (account, region).

Resources are stored as the AWS-shaped dicts EC2 describes (keys starting with ``_`` are
lamina's own bookkeeping and never leave the server), with the columns needed to find them:
``kind`` (the EC2 resource type, as in ``TagSpecification.ResourceType``), ``vpc_id`` and
``subnet_id``. What must stay consistent under concurrency has its own table and key:

- ``ec2_private_ips``: one row per private address in use in a subnet, primary key
  (subnet, address), so two interfaces can never hold the same address; the lowest free one is
  chosen inside the write transaction (``BEGIN IMMEDIATE``), so allocation is atomic.
- ``ec2_public_ips``: Elastic IPs of every account come from one public pool (one machine, one
  uplink), keyed by the address.
- ``ec2_sg_rules``: one row per security group rule, indexed by the group it belongs to and the
  group it references (DeleteSecurityGroup's "referenced by another group" check).
- ``ec2_interface_groups``: which groups each network interface is in (a group used as a rule
  peer means "every interface in that group"; a group in use cannot be deleted).

Everything a request changes happens in one :meth:`Ec2Store.transaction`; listeners (the data
plane, the Lambda side) are told after the commit. The Lambda side's Hyperplane interfaces use
:meth:`Ec2Store.create_interface` / :meth:`Ec2Store.delete_interface`, which apply the same
checks and raise the same errors as CreateNetworkInterface / DeleteNetworkInterface.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any, Final, TypeVar

from lamina.domain import ipam
from lamina.domain import routes as R
from lamina.domain import secgroups as S
from lamina.errors import AwsError
from lamina.store.metadata import Metadata

log = logging.getLogger("lamina.ec2")
T = TypeVar("T")

# Resource kinds: EC2's ResourceType names (TagSpecifications use them).
VPC: Final = "vpc"
SUBNET: Final = "subnet"
SECURITY_GROUP: Final = "security-group"
INTERNET_GATEWAY: Final = "internet-gateway"
ELASTIC_IP: Final = "elastic-ip"
NAT_GATEWAY: Final = "natgateway"
ROUTE_TABLE: Final = "route-table"
NETWORK_INTERFACE: Final = "network-interface"
SECURITY_GROUP_RULE: Final = "security-group-rule"

PREFIXES: Final = {
    VPC: "vpc",
    SUBNET: "subnet",
    SECURITY_GROUP: "sg",
    INTERNET_GATEWAY: "igw",
    ELASTIC_IP: "eipalloc",
    NAT_GATEWAY: "nat",
    ROUTE_TABLE: "rtb",
    NETWORK_INTERFACE: "eni",
    SECURITY_GROUP_RULE: "sgr",
}
_KIND_OF_PREFIX: Final = {prefix: kind for kind, prefix in PREFIXES.items()}
# Bodies are json.dumps text (no surrounding whitespace): raw_decode reads them without the
# checks json.loads adds, a sixth of the cost of decoding an interface.
_decode: Final = json.JSONDecoder().raw_decode
# The columns :meth:`Ec2Tx.describe` can match values of.
_DESCRIBE_COLUMNS: Final = frozenset({"id", "vpc_id", "subnet_id"})

# EC2's NotFound errors, as real EC2 words them.
_NOT_FOUND: Final = {
    VPC: ("InvalidVpcID.NotFound", "The vpc ID '{}' does not exist"),
    SUBNET: ("InvalidSubnetID.NotFound", "The subnet ID '{}' does not exist"),
    SECURITY_GROUP: ("InvalidGroup.NotFound", "The security group '{}' does not exist"),
    INTERNET_GATEWAY: ("InvalidInternetGatewayID.NotFound", "The internetGateway ID '{}' does not exist"),
    ELASTIC_IP: ("InvalidAllocationID.NotFound", "The allocation ID '{}' does not exist"),
    NAT_GATEWAY: ("NatGatewayNotFound", "NAT gateway {} was not found"),
    ROUTE_TABLE: ("InvalidRouteTableID.NotFound", "The routeTable ID '{}' does not exist"),
    NETWORK_INTERFACE: ("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '{}' does not exist"),
    SECURITY_GROUP_RULE: (
        "InvalidSecurityGroupRuleId.NotFound",
        "The security group rule ID '{}' does not exist",
    ),
}

DEFAULT_PUBLIC_POOL: Final = IPv4Network("203.0.113.0/24")  # TEST-NET-3 (RFC 5737)
# EC2 keeps deleted (and failed) NAT gateways visible for about an hour.
NAT_GATEWAY_RETENTION_MS: Final = 3600_000

# Events listeners receive after a commit.
INTERFACE_CREATED: Final = "interface-created"
INTERFACE_DELETED: Final = "interface-deleted"
SECURITY_GROUP_CHANGED: Final = "security-group-changed"
ROUTE_CHANGED: Final = "route-changed"
VPC_CHANGED: Final = "vpc-changed"  # VPCs, subnets, internet and NAT gateways come and go

Listener = Callable[[str, dict[str, Any]], None]
# (account, region, event, obj): for listeners that need to know whose state changed (the data plane).
PartitionListener = Callable[[str, str, str, dict[str, Any]], None]


def error(code: str, message: str) -> AwsError:
    """An EC2 client error (400)."""
    return AwsError(message, code=code, status=400, sender_fault=True)


def not_found(kind: str, resource_id: str) -> AwsError:
    """EC2's NotFound error for a resource id of ``kind``."""
    code, message = _NOT_FOUND[kind]
    return error(code, message.format(resource_id))


def kind_of(resource_id: str) -> str | None:
    """The kind of resource an id names, from its prefix (``vpc-...`` -> ``vpc``)."""
    prefix, dash, _ = resource_id.rpartition("-")
    return _KIND_OF_PREFIX.get(prefix) if dash else None


def public(body: dict[str, Any]) -> dict[str, Any]:
    """A stored resource without lamina's bookkeeping keys."""
    return {k: v for k, v in body.items() if not k.startswith("_")}


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


# -- security group rules as JSON ---------------------------------------------------------------


def rule_to_json(rule: S.Rule) -> dict[str, Any]:
    return {
        "direction": rule.direction.value,
        "protocol": rule.protocol,
        "from": rule.from_port,
        "to": rule.to_port,
        "cidr_v4": None if rule.cidr_v4 is None else str(rule.cidr_v4),
        "cidr_v6": None if rule.cidr_v6 is None else str(rule.cidr_v6),
        "group_id": rule.group_id,
        "group_owner": rule.group_owner,
        "description": rule.description,
    }


def rule_from_json(data: dict[str, Any]) -> S.Rule:
    v4 = data.get("cidr_v4")
    v6 = data.get("cidr_v6")
    return S.Rule(
        S.Direction(data["direction"]),
        data["protocol"],
        int(data["from"]),
        int(data["to"]),
        cidr_v4=IPv4Network(v4) if v4 else None,
        cidr_v6=IPv6Network(v6) if v6 else None,
        group_id=data.get("group_id"),
        group_owner=data.get("group_owner"),
        description=data.get("description"),
    )


@dataclass(frozen=True)
class StoredRule:
    """A security group rule with its id and tags."""

    rule_id: str
    group_id: str
    rule: S.Rule
    tags: list[dict[str, str]] = field(default_factory=list)


# -- routes as JSON (the AWS Route items) ---------------------------------------------------------


def route_from_item(item: dict[str, Any]) -> R.Route:
    """A DescribeRouteTables ``Route`` back into the domain's Route."""
    if item.get("NatGatewayId"):
        kind, target = R.TargetKind.NAT_GATEWAY, item["NatGatewayId"]
    elif item.get("NetworkInterfaceId"):
        kind, target = R.TargetKind.NETWORK_INTERFACE, item["NetworkInterfaceId"]
    elif item.get("GatewayId") == R.LOCAL:
        kind, target = R.TargetKind.LOCAL, R.LOCAL
    else:
        kind, target = R.TargetKind.INTERNET_GATEWAY, item["GatewayId"]
    return R.Route(
        IPv4Network(item["DestinationCidrBlock"]),
        kind,
        target,
        R.RouteState(item.get("State", "active")),
        R.RouteOrigin(item.get("Origin", "CreateRoute")),
    )


def routes_of(table: dict[str, Any]) -> tuple[R.Route, ...]:
    return tuple(route_from_item(item) for item in table.get("Routes", []))


def set_routes(table: dict[str, Any], routes: Iterable[R.Route]) -> None:
    table["Routes"] = [dict(R.to_route_item(r)) for r in routes]


def vpc_cidrs(vpc: dict[str, Any]) -> list[IPv4Network]:
    return [IPv4Network(a["CidrBlock"]) for a in vpc.get("CidrBlockAssociationSet", [])] or [
        IPv4Network(vpc["CidrBlock"])
    ]


@functools.lru_cache(maxsize=4096)
def _network(cidr: str) -> IPv4Network:
    """A subnet's block, parsed once (networks are immutable; parsing costs microseconds)."""
    return IPv4Network(cidr)


def private_dns_name(address: IPv4Address, region: str) -> str:
    """EC2's private DNS name for an address (us-east-1 uses ``ec2.internal``)."""
    host = "ip-" + str(address).replace(".", "-")
    return f"{host}.ec2.internal" if region == "us-east-1" else f"{host}.{region}.compute.internal"


# -- one transaction's view of one (account, region) --------------------------------------------


class Ec2Tx:
    """Reads and writes of one (account, region), inside one transaction (or one read)."""

    def __init__(
        self,
        store: Ec2Store,
        conn: sqlite3.Connection,
        account: str,
        region: str,
        now_ms: int,
        events: list[tuple[str, dict[str, Any]]] | None,
    ) -> None:
        self.store = store
        self.c = conn
        self.account = account
        self.region = region
        self.now_ms = now_ms
        self._events = events
        self._key = (account, region)

    # -- generic resources ----------------------------------------------------------------

    @staticmethod
    def new_id(kind: str) -> str:
        return ipam.new_id(PREFIXES[kind], os.urandom(9))

    def get(self, resource_id: str, kind: str | None = None) -> dict[str, Any] | None:
        row = self.c.execute(
            "SELECT kind, body FROM ec2_resources WHERE account=? AND region=? AND id=?",
            (*self._key, resource_id),
        ).fetchone()
        if row is None or (kind is not None and row[0] != kind):
            return None
        body: dict[str, Any] = json.loads(row[1])
        return body

    def require(self, kind: str, resource_id: str) -> dict[str, Any]:
        """The resource, or EC2's NotFound error for it."""
        body = self.get(resource_id, kind)
        if body is None:
            raise not_found(kind, resource_id)
        return body

    def find(
        self, kind: str, *, vpc_id: str | None = None, subnet_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Resources of ``kind`` (in one VPC or subnet when given), oldest first."""
        sql = "SELECT body FROM ec2_resources WHERE account=? AND region=? AND kind=?"
        args: list[Any] = [*self._key, kind]
        if vpc_id is not None:
            sql += " AND vpc_id=?"
            args.append(vpc_id)
        if subnet_id is not None:
            sql += " AND subnet_id=?"
            args.append(subnet_id)
        return [json.loads(r[0]) for r in self.c.execute(sql + " ORDER BY rowid", args).fetchall()]

    def describe(
        self, kind: str, where: Mapping[str, Collection[str]] | None = None
    ) -> dict[str, dict[str, Any]]:
        """What a Describe* call starts from: resources of ``kind`` by id, oldest first, as EC2 shows
        them (without lamina's bookkeeping keys), each a new dict the caller may change.

        ``where`` narrows them in SQL: ``{"id" | "vpc_id" | "subnet_id": allowed values}``.
        """
        where = where or {}
        # Named ids are looked up by the primary key: ``+kind`` keeps SQLite from preferring the
        # kind index, a scan of every resource of the kind.
        sql = "SELECT id, body FROM ec2_resources WHERE account=? AND region=? AND "
        sql += "+kind=?" if "id" in where else "kind=?"
        args: list[Any] = [*self._key, kind]
        for column, values in where.items():
            if column not in _DESCRIBE_COLUMNS:
                raise ValueError(f"not a column describe can match: {column!r}")
            if not values:
                return {}
            # One parameter whatever the number of values (no SQLITE_MAX_VARIABLE_NUMBER to mind).
            sql += f" AND {column} IN (SELECT value FROM json_each(?))"
            args.append(json.dumps(list(values)))
        out: dict[str, dict[str, Any]] = {}
        for resource_id, text in self.c.execute(sql + " ORDER BY rowid", args).fetchall():
            body: dict[str, Any] = _decode(text)[0]
            # No '"_' in the text, no bookkeeping key: the copy ``public`` makes is spared.
            out[resource_id] = public(body) if '"_' in text else body
        return out

    def put(
        self,
        kind: str,
        resource_id: str,
        body: dict[str, Any],
        *,
        vpc_id: str | None = None,
        subnet_id: str | None = None,
    ) -> None:
        """Insert or replace a resource (a replaced one keeps its place in listing order)."""
        self.c.execute(
            "INSERT INTO ec2_resources (account, region, id, kind, vpc_id, subnet_id, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, id) DO UPDATE SET"
            " kind=excluded.kind, vpc_id=excluded.vpc_id, subnet_id=excluded.subnet_id, body=excluded.body",
            (*self._key, resource_id, kind, vpc_id, subnet_id, json.dumps(body)),
        )

    def update(self, resource_id: str, body: dict[str, Any]) -> None:
        """Replace a resource's body, keeping its kind, VPC and subnet."""
        self.c.execute(
            "UPDATE ec2_resources SET body=? WHERE account=? AND region=? AND id=?",
            (json.dumps(body), *self._key, resource_id),
        )

    def remove(self, resource_id: str) -> None:
        self.c.execute(
            "DELETE FROM ec2_resources WHERE account=? AND region=? AND id=?", (*self._key, resource_id)
        )

    def emit(self, event: str, obj: dict[str, Any]) -> None:
        """Tell the listeners once the transaction has committed."""
        if self._events is None:
            raise RuntimeError("events can only be emitted from a write transaction")
        self._events.append((event, obj))

    # -- private addresses --------------------------------------------------------------------

    def used_addresses(self, subnet_id: str) -> set[IPv4Address]:
        rows = self.c.execute(
            "SELECT ip FROM ec2_private_ips WHERE account=? AND region=? AND subnet_id=?",
            (*self._key, subnet_id),
        ).fetchall()
        return {IPv4Address(r[0]) for r in rows}

    def address_count(self, subnet_id: str) -> int:
        row = self.c.execute(
            "SELECT COUNT(*) FROM ec2_private_ips WHERE account=? AND region=? AND subnet_id=?",
            (*self._key, subnet_id),
        ).fetchone()
        return int(row[0])

    def claim_address(
        self, subnet: dict[str, Any], owner_id: str, requested: IPv4Address | None = None
    ) -> IPv4Address:
        """Allocate a private address of ``subnet`` to ``owner_id`` (atomic: we hold the write lock)."""
        subnet_id = subnet["SubnetId"]
        address = ipam.allocate(
            IPv4Network(subnet["CidrBlock"]), self.used_addresses(subnet_id), requested, subnet_id=subnet_id
        )
        self.c.execute(
            "INSERT INTO ec2_private_ips (account, region, subnet_id, ip, owner_id) VALUES (?, ?, ?, ?, ?)",
            (*self._key, subnet_id, str(address), owner_id),
        )
        return address

    def release_addresses(self, owner_id: str) -> None:
        self.c.execute(
            "DELETE FROM ec2_private_ips WHERE account=? AND region=? AND owner_id=?", (*self._key, owner_id)
        )

    # -- public (Elastic IP) addresses ----------------------------------------------------------

    def claim_public_address(self, allocation_id: str, requested: str | None = None) -> str:
        pool = self.store.public_pool
        taken = {r[0] for r in self.c.execute("SELECT ip FROM ec2_public_ips").fetchall()}
        if requested is not None:
            try:
                wanted = IPv4Address(requested)
            except ValueError:
                raise error("InvalidParameterValue", f"Invalid value '{requested}' for address") from None
            if (
                wanted not in pool
                or str(wanted) in taken
                or wanted in (pool.network_address, pool.broadcast_address)
            ):
                raise error("InvalidAddress.NotFound", f"Address '{requested}' not found.")
            choice: str | None = str(wanted)
        else:
            choice = next((str(a) for a in pool.hosts() if str(a) not in taken), None)
        if choice is None:
            raise error("AddressLimitExceeded", "The maximum number of addresses has been reached.")
        self.c.execute(
            "INSERT INTO ec2_public_ips (ip, account, region, allocation_id) VALUES (?, ?, ?, ?)",
            (choice, *self._key, allocation_id),
        )
        return choice

    def release_public_address(self, address: str) -> None:
        self.c.execute("DELETE FROM ec2_public_ips WHERE ip=?", (address,))

    # -- security group rules -------------------------------------------------------------------

    def rules(self, group_id: str | None = None) -> list[StoredRule]:
        """Rules of one group (or of every group), in the order they were added."""
        sql = "SELECT rule_id, group_id, body FROM ec2_sg_rules WHERE account=? AND region=?"
        args: list[Any] = [*self._key]
        if group_id is not None:
            sql += " AND group_id=?"
            args.append(group_id)
        out = []
        for rule_id, gid, body in self.c.execute(sql + " ORDER BY rowid", args).fetchall():
            data = json.loads(body)
            out.append(StoredRule(rule_id, gid, rule_from_json(data), data.get("tags", [])))
        return out

    def add_rules(self, group_id: str, rules: Sequence[S.Rule]) -> list[StoredRule]:
        added = []
        for rule in rules:
            rule_id = self.new_id(SECURITY_GROUP_RULE)
            self.c.execute(
                "INSERT INTO ec2_sg_rules (account, region, rule_id, group_id, ref_group_id, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (*self._key, rule_id, group_id, rule.group_id, json.dumps(rule_to_json(rule))),
            )
            added.append(StoredRule(rule_id, group_id, rule))
        return added

    def remove_rules(self, rule_ids: Iterable[str]) -> None:
        self.c.executemany(
            "DELETE FROM ec2_sg_rules WHERE account=? AND region=? AND rule_id=?",
            [(*self._key, r) for r in rule_ids],
        )

    def set_rule_tags(self, rule: StoredRule, tags: list[dict[str, str]]) -> None:
        body = {**rule_to_json(rule.rule), "tags": tags}
        self.c.execute(
            "UPDATE ec2_sg_rules SET body=? WHERE account=? AND region=? AND rule_id=?",
            (json.dumps(body), *self._key, rule.rule_id),
        )

    def referencing_groups(self, group_id: str) -> list[str]:
        """Other groups with a rule naming ``group_id`` as its peer."""
        rows = self.c.execute(
            "SELECT DISTINCT group_id FROM ec2_sg_rules WHERE account=? AND region=? AND ref_group_id=?"
            " AND group_id<>?",
            (*self._key, group_id, group_id),
        ).fetchall()
        return [r[0] for r in rows]

    # -- interface membership -----------------------------------------------------------------

    def interfaces_in_group(self, group_id: str) -> list[str]:
        rows = self.c.execute(
            "SELECT eni_id FROM ec2_interface_groups WHERE account=? AND region=? AND group_id=? ORDER BY rowid",
            (*self._key, group_id),
        ).fetchall()
        return [r[0] for r in rows]

    def set_interface_groups(self, eni_id: str, group_ids: Iterable[str]) -> None:
        self.c.execute(
            "DELETE FROM ec2_interface_groups WHERE account=? AND region=? AND eni_id=?", (*self._key, eni_id)
        )
        self.c.executemany(
            "INSERT OR IGNORE INTO ec2_interface_groups (account, region, eni_id, group_id) VALUES (?, ?, ?, ?)",
            [(*self._key, eni_id, g) for g in group_ids],
        )

    # -- views shared by the API and the Lambda side ---------------------------------------------

    def subnet_view(self, subnet: dict[str, Any]) -> dict[str, Any]:
        """A subnet as DescribeSubnets shows it: ``AvailableIpAddressCount`` from the allocator."""
        out = public(subnet)
        out["AvailableIpAddressCount"] = ipam.available_count(
            _network(subnet["CidrBlock"]), self.address_count(subnet["SubnetId"])
        )
        return out

    def subnet_views(self, subnets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`subnet_view` of each of ``subnets`` (changed in place: they must be the caller's
        own copies, as :meth:`describe` returns them), with one query for all their addresses."""
        if not subnets:
            return []
        ids = json.dumps([s["SubnetId"] for s in subnets])
        counts = dict(
            self.c.execute(
                "SELECT subnet_id, COUNT(*) FROM ec2_private_ips WHERE account=? AND region=?"
                " AND subnet_id IN (SELECT value FROM json_each(?)) GROUP BY subnet_id",
                (*self._key, ids),
            ).fetchall()
        )
        for subnet in subnets:
            subnet["AvailableIpAddressCount"] = ipam.available_count(
                _network(subnet["CidrBlock"]), int(counts.get(subnet["SubnetId"], 0))
            )
        return list(subnets)

    def group_view(self, group: dict[str, Any]) -> dict[str, Any]:
        """A security group as DescribeSecurityGroups shows it, its rules grouped into permissions."""
        rules = [r.rule for r in self.rules(group["GroupId"])]
        out = public(group)
        out["IpPermissions"] = S.to_ip_permissions(rules, S.Direction.INGRESS, owner_id=self.account)
        out["IpPermissionsEgress"] = S.to_ip_permissions(rules, S.Direction.EGRESS, owner_id=self.account)
        return out

    def default_group(self, vpc_id: str) -> dict[str, Any] | None:
        for group in self.find(SECURITY_GROUP, vpc_id=vpc_id):
            if group["GroupName"] == "default":
                return group
        return None

    def attached_gateway(self, vpc_id: str) -> dict[str, Any] | None:
        found = self.find(INTERNET_GATEWAY, vpc_id=vpc_id)
        return found[0] if found else None

    # -- network interfaces ---------------------------------------------------------------------

    def create_interface(
        self,
        subnet_id: str,
        group_ids: Sequence[str],
        description: str,
        *,
        interface_type: str = "interface",
        requester_managed: bool = False,
        private_ip: str | None = None,
        tags: list[dict[str, str]] | None = None,
        validated: Callable[[], None] | None = None,
        groupless: bool = False,
    ) -> dict[str, Any]:
        """Create a network interface in ``subnet_id`` with one private address of it.

        No groups means the VPC's ``default`` group (``groupless``: none at all, as a NAT
        gateway's interface has). ``validated`` runs after every check and
        before any effect (a DryRun ends there). Interfaces of other services (``lambda``,
        ``nat_gateway``) are ``in-use`` and requester-managed, as EC2 shows them.
        """
        subnet = self.require(SUBNET, subnet_id)
        vpc_id = subnet["VpcId"]
        groups = []
        for group_id in dict.fromkeys(group_ids):
            group = self.require(SECURITY_GROUP, group_id)
            if group["VpcId"] != vpc_id:
                raise error(
                    "InvalidParameter",
                    f"Security group {group_id} and subnet {subnet_id} belong to different networks.",
                )
            groups.append(group)
        if not groups and not groupless:
            default = self.default_group(vpc_id)
            groups = [default] if default is not None else []
        S.check_groups_per_interface([g["GroupId"] for g in groups])
        requested = None
        if private_ip is not None:
            try:
                requested = IPv4Address(private_ip)
            except ValueError:
                raise error(
                    "InvalidParameterValue",
                    f"Value ({private_ip}) for parameter privateIpAddress is invalid. Invalid format.",
                ) from None
        eni_id = self.new_id(NETWORK_INTERFACE)
        address = self.claim_address(subnet, eni_id, requested)
        if validated is not None:
            validated()  # raises for a DryRun: the transaction rolls back, nothing was taken
        dns = private_dns_name(address, self.region)
        in_use = requester_managed or interface_type not in (
            "interface",
            "efa",
            "efa-only",
            "branch",
            "trunk",
        )
        eni: dict[str, Any] = {
            "AvailabilityZone": subnet["AvailabilityZone"],
            "AvailabilityZoneId": subnet.get("AvailabilityZoneId"),
            "Description": description,
            "Groups": [{"GroupId": g["GroupId"], "GroupName": g["GroupName"]} for g in groups],
            "InterfaceType": interface_type,
            "Ipv6Addresses": [],
            "MacAddress": "02:" + ":".join(f"{b:02x}" for b in os.urandom(5)),
            "NetworkInterfaceId": eni_id,
            "OwnerId": self.account,
            "PrivateDnsName": dns,
            "PrivateIpAddress": str(address),
            "PrivateIpAddresses": [
                {"Primary": True, "PrivateIpAddress": str(address), "PrivateDnsName": dns}
            ],
            "RequesterManaged": requester_managed,
            "SourceDestCheck": True,
            "Status": "in-use" if in_use else "available",
            "SubnetId": subnet_id,
            "TagSet": list(tags or []),
            "VpcId": vpc_id,
        }
        if in_use:
            eni["Attachment"] = {
                "AttachmentId": "ela-attach-" + os.urandom(9).hex()[:17],
                "AttachTime": iso(self.now_ms),
                "DeleteOnTermination": False,
                "DeviceIndex": 1,
                "InstanceOwnerId": "amazon-aws",
                "Status": "attached",
            }
        self.put(NETWORK_INTERFACE, eni_id, eni, vpc_id=vpc_id, subnet_id=subnet_id)
        self.set_interface_groups(eni_id, [g["GroupId"] for g in groups])
        self.emit(INTERFACE_CREATED, eni)
        return eni

    def delete_interface(self, eni_id: str) -> dict[str, Any]:
        """Delete an interface: its address goes back to the subnet, routes to it turn blackhole."""
        eni = self.require(NETWORK_INTERFACE, eni_id)
        self.release_addresses(eni_id)
        self.set_interface_groups(eni_id, ())
        self.remove(eni_id)
        self.blackhole_routes(eni["VpcId"], eni_id)
        self.emit(INTERFACE_DELETED, eni)
        return eni

    def blackhole_routes(self, vpc_id: str, target_id: str) -> None:
        """Routes to a deleted NAT gateway or interface stay, as ``blackhole``."""
        for table in self.find(ROUTE_TABLE, vpc_id=vpc_id):
            before = routes_of(table)
            after = R.blackhole(before, target_id)
            if after != before:
                set_routes(table, after)
                self.update(table["RouteTableId"], table)
                self.emit(ROUTE_CHANGED, table)

    # -- NAT gateway lifecycle --------------------------------------------------------------------

    def advance_nat_gateways(self) -> None:
        """Move NAT gateways along: ``pending`` -> ``available`` (or ``failed`` with EC2's reason),
        ``deleting`` -> ``deleted``, once their delay has passed; forget long-deleted ones."""
        for nat in self.find(NAT_GATEWAY):
            state = nat["State"]
            due = int(nat.get("_due_ms", 0)) <= self.now_ms
            nat_id = nat["NatGatewayId"]
            if state == "pending" and due:
                failure = nat.pop("_failure", None)
                public_nat = nat.get("ConnectivityType", "public") == "public"
                if failure is None and public_nat and self.attached_gateway(nat["VpcId"]) is None:
                    failure = [
                        "Gateway.NotAttached",
                        f"Network {nat['VpcId']} has no Internet gateway attached",
                    ]
                if failure is None:
                    nat["State"] = "available"
                    for address in nat.get("NatGatewayAddresses", []):
                        address["Status"] = "succeeded"
                else:
                    nat["State"] = "failed"
                    nat["FailureCode"], nat["FailureMessage"] = failure
                    nat["DeleteTime"] = iso(self.now_ms)
                    nat["_gone_ms"] = self.now_ms
                    self.release_nat_resources(nat)
                    self.blackhole_routes(nat["VpcId"], nat_id)
                    for address in nat.get("NatGatewayAddresses", []):
                        address["Status"] = "failed"
                        address["FailureMessage"] = failure[1]
                self.update(nat_id, nat)
                self.emit(VPC_CHANGED, public(nat))
            elif state == "deleting" and due:
                nat["State"] = "deleted"
                nat["_gone_ms"] = self.now_ms
                self.update(nat_id, nat)
                self.emit(VPC_CHANGED, public(nat))
            elif (
                state in ("deleted", "failed")
                and self.now_ms - int(nat.get("_gone_ms", 0)) > NAT_GATEWAY_RETENTION_MS
            ):
                self.remove(nat_id)

    def release_nat_resources(self, nat: dict[str, Any]) -> None:
        """A deleted or failed NAT gateway gives back its interface and its Elastic IP's association."""
        for address in nat.get("NatGatewayAddresses", []):
            allocation_id = address.get("AllocationId")
            eip = self.get(allocation_id, ELASTIC_IP) if allocation_id else None
            if eip is not None and eip.get("_nat") == nat["NatGatewayId"]:
                for key in (
                    "AssociationId",
                    "NetworkInterfaceId",
                    "NetworkInterfaceOwnerId",
                    "PrivateIpAddress",
                    "_nat",
                ):
                    eip.pop(key, None)
                self.update(allocation_id, eip)
            eni_id = address.get("NetworkInterfaceId")
            if eni_id and self.get(eni_id, NETWORK_INTERFACE) is not None:
                self.delete_interface(eni_id)


# -- the store ------------------------------------------------------------------------------------


class Ec2Store:
    """EC2 state. ``listeners`` are called after each commit with (event, AWS-shaped object)."""

    def __init__(
        self,
        metadata: Metadata,
        *,
        public_pool: IPv4Network = DEFAULT_PUBLIC_POOL,
        nat_delay_ms: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.md = metadata
        self.public_pool = public_pool
        # How long a NAT gateway stays ``pending`` (and ``deleting``): 0 = until the next describe.
        self.nat_delay_ms = nat_delay_ms
        self.clock = clock
        self.listeners: list[Listener] = []
        self.partition_listeners: list[PartitionListener] = []

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @contextmanager
    def transaction(self, account: str, region: str, now_ms: int | None = None) -> Iterator[Ec2Tx]:
        """One write transaction on (account, region); listeners hear of it after the commit."""
        events: list[tuple[str, dict[str, Any]]] = []
        with self.md.write() as conn:
            yield Ec2Tx(self, conn, account, region, now_ms or self._now_ms(), events)
        self._notify(account, region, events)

    def read(self, account: str, region: str, fn: Callable[[Ec2Tx], T], now_ms: int | None = None) -> T:
        """Run ``fn`` on a consistent snapshot of (account, region)."""

        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN")
            try:
                return fn(Ec2Tx(self, conn, account, region, now_ms or self._now_ms(), None))
            finally:
                conn.execute("COMMIT")

        return self.md.read(run)

    def _notify(self, account: str, region: str, events: list[tuple[str, dict[str, Any]]]) -> None:
        for event, obj in events:
            for listener in list(self.listeners):
                try:
                    listener(event, obj)
                except Exception:  # a listener's failure must not fail the request that committed
                    log.exception("EC2 listener %r failed on %s", listener, event)
            for partition_listener in list(self.partition_listeners):
                try:
                    partition_listener(account, region, event, obj)
                except Exception:
                    log.exception("EC2 listener %r failed on %s", partition_listener, event)

    # -- the Python API for the Lambda side ---------------------------------------------------------

    def create_interface(
        self,
        account: str,
        region: str,
        subnet_id: str,
        group_ids: Sequence[str],
        description: str,
        interface_type: str = "lambda",
        requester_managed: bool = True,
    ) -> dict[str, Any]:
        """Create a (Hyperplane) network interface; EC2's errors as CreateNetworkInterface raises
        them (``InvalidSubnetID.NotFound``, ``InvalidGroup.NotFound``,
        ``InsufficientFreeAddressesInSubnet``, ...)."""
        with self.transaction(account, region) as tx:
            return tx.create_interface(
                subnet_id,
                group_ids,
                description,
                interface_type=interface_type,
                requester_managed=requester_managed,
            )

    def delete_interface(self, account: str, region: str, eni_id: str) -> None:
        """Delete an interface (``InvalidNetworkInterfaceID.NotFound`` if there is none)."""
        with self.transaction(account, region) as tx:
            tx.delete_interface(eni_id)

    def get_interface(self, account: str, region: str, eni_id: str) -> dict[str, Any]:
        return self.read(account, region, lambda tx: public(tx.require(NETWORK_INTERFACE, eni_id)))

    def get_subnet(self, account: str, region: str, subnet_id: str) -> dict[str, Any]:
        """A subnet as DescribeSubnets shows it, or ``InvalidSubnetID.NotFound``."""
        return self.read(account, region, lambda tx: tx.subnet_view(tx.require(SUBNET, subnet_id)))

    def get_security_group(self, account: str, region: str, group_id: str) -> dict[str, Any]:
        """A security group as DescribeSecurityGroups shows it, or ``InvalidGroup.NotFound``."""
        return self.read(account, region, lambda tx: tx.group_view(tx.require(SECURITY_GROUP, group_id)))

    def list_resources(
        self, account: str, region: str, kind: str, *, vpc_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every resource of ``kind`` (EC2 shapes, unfiltered): for the data plane's rebuilds."""

        def run(tx: Ec2Tx) -> list[dict[str, Any]]:
            found = tx.find(kind, vpc_id=vpc_id)
            if kind == SUBNET:
                return [tx.subnet_view(s) for s in found]
            if kind == SECURITY_GROUP:
                return [tx.group_view(g) for g in found]
            return [public(b) for b in found]

        return self.read(account, region, run)

    def vpc_locations(self) -> list[tuple[str, str, str]]:
        """(account, region, VpcId) of every VPC of every account and region, oldest first: what
        the data plane rebuilds at startup."""
        rows = self.md.read(
            lambda c: c.execute(
                "SELECT account, region, id FROM ec2_resources WHERE kind=? ORDER BY rowid", (VPC,)
            ).fetchall()
        )
        return [(str(a), str(r), str(i)) for a, r, i in rows]

    def group_members(self, account: str, region: str, group_id: str) -> list[IPv4Address]:
        """Private addresses of every interface in a group (what a group peer in a rule means)."""

        def run(tx: Ec2Tx) -> list[IPv4Address]:
            out = []
            for eni_id in tx.interfaces_in_group(group_id):
                eni = tx.get(eni_id, NETWORK_INTERFACE)
                if eni is not None:
                    out.append(IPv4Address(eni["PrivateIpAddress"]))
            return out

        return self.read(account, region, run)
