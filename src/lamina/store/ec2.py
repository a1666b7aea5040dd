"""EC2 (the VPC subset) in the metadata database, partitioned by (account, region): the EC2
repository. The rules (ids, errors, views, interface shapes, the NAT gateway state machine) are
in :mod:`lamina.domain.ec2`; this module reads and writes, and applies them in its transactions.

Resources are stored as the AWS-shaped dicts EC2 describes (keys starting with ``_`` are
lamina's own bookkeeping and never leave the server), typed by their kind
(:class:`lamina.domain.ec2.Kind`: ``tx.require(VPC, ...)`` is a
:class:`~lamina.domain.ec2_models.Vpc`), with the columns needed to find them:
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
- ``ec2_partitions``: the (account, region) partitions set up by :attr:`Ec2Store.first_use` (the
  EC2 service's default VPC), claimed in the same transaction, so it happens once ever.

Everything a request changes happens in one :meth:`Ec2Store.transaction`; listeners (the data
plane, the Lambda side) are told after the commit. The Lambda side's Hyperplane interfaces use
:meth:`Ec2Store.create_interface` / :meth:`Ec2Store.delete_interface`, which apply the same
checks and raise the same errors as CreateNetworkInterface / DeleteNetworkInterface.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Final, TypeVar, cast, overload

from lamina.domain import dns as D
from lamina.domain import ec2 as E
from lamina.domain import ipam, nacls
from lamina.domain import routes as R
from lamina.domain import secgroups as S
from lamina.domain.ec2 import (
    DEFAULT_PUBLIC_POOL,
    DHCP_OPTIONS,
    ELASTIC_IP,
    INTERFACE_CREATED,
    INTERFACE_DELETED,
    INTERNET_GATEWAY,
    NAT_GATEWAY,
    NETWORK_INTERFACE,
    ROUTE_CHANGED,
    ROUTE_TABLE,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    SUBNET,
    VPC,
    VPC_CHANGED,
    Kind,
    StoredRule,
    public,
)
from lamina.domain.ec2_models import (
    Ec2Tag,
    InternetGateway,
    NetworkInterface,
    SecurityGroup,
    StoredDhcpOptions,
    StoredNatGateway,
    StoredResource,
    Subnet,
)
from lamina.store.db import Connection, Database

log = logging.getLogger("lamina.ec2")
T = TypeVar("T")
# A kind's stored body, and the body EC2 describes (see :class:`lamina.domain.ec2.Kind`).
Stored = TypeVar("Stored")
Wire = TypeVar("Wire")

# Bodies are json.dumps text (no surrounding whitespace): raw_decode reads them without the
# checks json.loads adds, a sixth of the cost of decoding an interface.
_decode: Final = json.JSONDecoder().raw_decode
# The columns :meth:`Ec2Tx.describe` can match values of.
_DESCRIBE_COLUMNS: Final = frozenset({"id", "vpc_id", "subnet_id"})


def _public_body(text: str) -> Any:
    """A stored body from its JSON text, as EC2 describes it (JSON is untyped: the kind the caller
    asked for says what it is)."""
    body = _decode(text)[0]
    # No '"_' in the text, no bookkeeping key: the copy ``public`` makes is spared.
    return public(body) if '"_' in text else body


Listener = Callable[[str, dict[str, Any]], None]
# (account, region, event, obj): for listeners that need to know whose state changed (the data plane).
PartitionListener = Callable[[str, str, str, dict[str, Any]], None]


# -- one transaction's view of one (account, region) --------------------------------------------


class Ec2Tx:
    """Reads and writes of one (account, region), inside one transaction (or one read)."""

    def __init__(
        self,
        store: Ec2Store,
        conn: Connection,
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
    def new_id(kind: Kind[Any, Any]) -> str:
        """A new random id of ``kind``."""
        return E.new_id(kind, os.urandom(9))

    @overload
    def get(self, resource_id: str, kind: Kind[Stored, Any]) -> Stored | None: ...

    @overload
    def get(self, resource_id: str, kind: None = None) -> StoredResource | None: ...

    def get(self, resource_id: str, kind: Kind[Any, Any] | None = None) -> Any:
        """The resource with that id (of ``kind`` when given), or None."""
        row = self.c.execute(
            "SELECT kind, body FROM ec2_resources WHERE account=? AND region=? AND id=?",
            (*self._key, resource_id),
        ).fetchone()
        if row is None or (kind is not None and row[0] != kind):
            return None
        return json.loads(row[1])

    def require(self, kind: Kind[Stored, Any], resource_id: str) -> Stored:
        """The resource, or EC2's NotFound error for it."""
        body = self.get(resource_id, kind)
        if body is None:
            raise E.not_found(kind, resource_id)
        return body

    def find(
        self, kind: Kind[Stored, Any], *, vpc_id: str | None = None, subnet_id: str | None = None
    ) -> list[Stored]:
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
        self, kind: Kind[Any, Wire], where: Mapping[str, Collection[str]] | None = None
    ) -> dict[str, Wire]:
        """What a Describe* call starts from: resources of ``kind`` by id, oldest first, as EC2 shows
        them (without lamina's bookkeeping keys), each a new dict the caller may change.

        ``where`` narrows them in SQL: ``{"id" | "vpc_id" | "subnet_id": allowed values}``.
        """
        where = where or {}
        # Named ids are looked up by the primary key: ``+kind`` keeps SQLite from preferring the
        # kind index, a scan of every resource of the kind.
        sql = "SELECT id, body FROM ec2_resources WHERE account=? AND region=? AND "
        sql += f"{self.store.db.sql.unindexed('kind')}=?" if "id" in where else "kind=?"
        args: list[Any] = [*self._key, kind]
        for column, values in where.items():
            if column not in _DESCRIBE_COLUMNS:
                raise ValueError(f"not a column describe can match: {column!r}")
            if not values:
                return {}
            # One parameter whatever the number of values (no SQLITE_MAX_VARIABLE_NUMBER to mind).
            sql += f" AND {column} IN {self.store.db.sql.in_json_array()}"
            args.append(json.dumps(list(values)))
        out: dict[str, Wire] = {}
        for resource_id, text in self.c.execute(sql + " ORDER BY rowid", args).fetchall():
            out[resource_id] = _public_body(text)
        return out

    def all_resources(self) -> list[tuple[str, str, StoredResource]]:
        """(id, kind, body) of every resource of the partition, oldest first (DescribeTags)."""
        rows = self.c.execute(
            "SELECT id, kind, body FROM ec2_resources WHERE account=? AND region=? ORDER BY rowid", self._key
        ).fetchall()
        return [(str(i), str(k), json.loads(b)) for i, k, b in rows]

    def put(
        self,
        kind: Kind[Stored, Any],
        resource_id: str,
        body: Stored,
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

    def update(self, resource_id: str, body: StoredResource) -> None:
        """Replace a resource's body, keeping its kind, VPC and subnet."""
        self.c.execute(
            "UPDATE ec2_resources SET body=? WHERE account=? AND region=? AND id=?",
            (json.dumps(body), *self._key, resource_id),
        )

    def remove(self, resource_id: str) -> None:
        self.c.execute(
            "DELETE FROM ec2_resources WHERE account=? AND region=? AND id=?", (*self._key, resource_id)
        )

    def emit(self, event: str, obj: Mapping[str, Any]) -> None:
        """Tell the listeners once the transaction has committed (``obj``: a resource as EC2
        shows it, or a plain dict keyed like one)."""
        if self._events is None:
            raise RuntimeError("events can only be emitted from a write transaction")
        # Listeners (the data plane) read plain dicts keyed like AWS; a TypedDict is one at run
        # time, so this only tells the type checker (the object itself is passed, no copy).
        self._events.append((event, cast(dict[str, Any], obj)))

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
        self, subnet: Subnet, owner_id: str, requested: IPv4Address | None = None
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
        """Allocate an Elastic IP address (``requested``, or the lowest free one) of the public pool,
        shared by every account."""
        taken = {r[0] for r in self.c.execute("SELECT ip FROM ec2_public_ips").fetchall()}
        choice = E.choose_public_address(self.store.public_pool, taken, requested)
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
            data: E.RuleBody = json.loads(body)
            out.append(StoredRule(rule_id, gid, E.rule_from_json(data), data.get("tags", [])))
        return out

    def add_rules(self, group_id: str, rules: Sequence[S.Rule]) -> list[StoredRule]:
        added = []
        for rule in rules:
            rule_id = self.new_id(SECURITY_GROUP_RULE)
            self.c.execute(
                "INSERT INTO ec2_sg_rules (account, region, rule_id, group_id, ref_group_id, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (*self._key, rule_id, group_id, rule.group_id, json.dumps(E.rule_to_json(rule))),
            )
            added.append(StoredRule(rule_id, group_id, rule))
        return added

    def remove_rules(self, rule_ids: Iterable[str]) -> None:
        self.c.executemany(
            "DELETE FROM ec2_sg_rules WHERE account=? AND region=? AND rule_id=?",
            [(*self._key, r) for r in rule_ids],
        )

    def replace_rule(self, stored: StoredRule, rule: S.Rule) -> StoredRule:
        """A rule changed in place (ModifySecurityGroupRules, a new description): same id, same tags."""
        body: E.RuleBody = {**E.rule_to_json(rule), "tags": list(stored.tags)}
        self.c.execute(
            "UPDATE ec2_sg_rules SET body=?, ref_group_id=? WHERE account=? AND region=? AND rule_id=?",
            (json.dumps(body), rule.group_id, *self._key, stored.rule_id),
        )
        return StoredRule(stored.rule_id, stored.group_id, rule, stored.tags)

    def set_rule_tags(self, rule: StoredRule, tags: list[Ec2Tag]) -> None:
        body: E.RuleBody = {**E.rule_to_json(rule.rule), "tags": tags}
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
            "INSERT INTO ec2_interface_groups (account, region, eni_id, group_id) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(*self._key, eni_id, g) for g in group_ids],
        )

    # -- views shared by the API and the Lambda side ---------------------------------------------

    def subnet_view(self, subnet: Subnet) -> Subnet:
        """A subnet as DescribeSubnets shows it: ``AvailableIpAddressCount`` from the allocator."""
        return E.subnet_view(subnet, self.address_count(subnet["SubnetId"]))

    def subnet_views(self, subnets: Sequence[Subnet]) -> list[Subnet]:
        """:meth:`subnet_view` of each of ``subnets`` (changed in place: they must be the caller's
        own copies, as :meth:`describe` returns them), with one query for all their addresses."""
        if not subnets:
            return []
        ids = json.dumps([s["SubnetId"] for s in subnets])
        counts = dict(
            self.c.execute(
                "SELECT subnet_id, COUNT(*) FROM ec2_private_ips WHERE account=? AND region=?"
                f" AND subnet_id IN {self.store.db.sql.in_json_array()} GROUP BY subnet_id",
                (*self._key, ids),
            ).fetchall()
        )
        for subnet in subnets:
            subnet["AvailableIpAddressCount"] = E.available_addresses(
                subnet, int(counts.get(subnet["SubnetId"], 0))
            )
        return list(subnets)

    def group_view(self, group: SecurityGroup) -> SecurityGroup:
        """A security group as DescribeSecurityGroups shows it, its rules grouped into permissions."""
        return E.group_view(group, [r.rule for r in self.rules(group["GroupId"])], self.account)

    def default_group(self, vpc_id: str) -> SecurityGroup | None:
        """A VPC's ``default`` security group."""
        return E.default_group(self.find(SECURITY_GROUP, vpc_id=vpc_id))

    def default_dhcp_options(self) -> str:
        """The id of the DHCP option set EC2 makes for the region (``domain-name`` the region's
        default domain, ``domain-name-servers`` AmazonProvidedDNS), made at first use; new VPCs are
        associated with it."""
        for options in self.find(DHCP_OPTIONS):
            if options.get("_default"):
                return options["DhcpOptionsId"]
        options_id = self.new_id(DHCP_OPTIONS)
        body: StoredDhcpOptions = {
            "OwnerId": self.account,
            "Tags": [],
            "DhcpOptionsId": options_id,
            "DhcpConfigurations": D.default_dhcp_configurations(self.region),
            "_default": True,
        }
        self.put(DHCP_OPTIONS, options_id, body)
        return options_id

    def attached_gateway(self, vpc_id: str) -> InternetGateway | None:
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
        tags: list[Ec2Tag] | None = None,
        validated: Callable[[], None] | None = None,
        groupless: bool = False,
    ) -> NetworkInterface:
        """Create a network interface in ``subnet_id`` with one private address of it.

        No groups means the VPC's ``default`` group (``groupless``: none at all, as a NAT
        gateway's interface has). ``validated`` runs after every check and
        before any effect (a DryRun ends there). Interfaces of other services (``lambda``,
        ``nat_gateway``) are ``in-use`` and requester-managed, as EC2 shows them.
        """
        subnet = self.require(SUBNET, subnet_id)
        groups = []
        for group_id in dict.fromkeys(group_ids):
            group = self.require(SECURITY_GROUP, group_id)
            E.check_interface_group(subnet, group)
            groups.append(group)
        if not groups and not groupless:
            default = self.default_group(subnet["VpcId"])
            groups = [default] if default is not None else []
        S.check_groups_per_interface([g["GroupId"] for g in groups])
        requested = E.requested_private_ip(private_ip)
        eni_id = self.new_id(NETWORK_INTERFACE)
        address = self.claim_address(subnet, eni_id, requested)
        if validated is not None:
            validated()  # raises for a DryRun: the transaction rolls back, nothing was taken
        spec = E.InterfaceSpec(description, interface_type, requester_managed, tuple(tags or ()))
        eni = E.new_interface(
            eni_id,
            subnet,
            groups,
            address,
            spec,
            account=self.account,
            region=self.region,
            now_ms=self.now_ms,
            random=os.urandom(14),
        )
        self.put(NETWORK_INTERFACE, eni_id, eni, vpc_id=subnet["VpcId"], subnet_id=subnet_id)
        self.set_interface_groups(eni_id, [g["GroupId"] for g in groups])
        self.emit(INTERFACE_CREATED, eni)
        return eni

    def delete_interface(self, eni_id: str) -> NetworkInterface:
        """Delete an interface: its address goes back to the subnet, routes to it turn blackhole."""
        eni = self.require(NETWORK_INTERFACE, eni_id)
        for eip in self.find(ELASTIC_IP):
            # Its Elastic IP is disassociated with it, as EC2 does (a NAT gateway's is let go above).
            if eip.get("NetworkInterfaceId") == eni_id and not eip.get("_nat"):
                E.dissociate(eip, None)
                self.update(eip["AllocationId"], eip)
        self.release_addresses(eni_id)
        self.set_interface_groups(eni_id, ())
        self.remove(eni_id)
        self.blackhole_routes(eni["VpcId"], eni_id)
        self.emit(INTERFACE_DELETED, eni)
        return eni

    def blackhole_routes(self, vpc_id: str, target_id: str) -> None:
        """Routes to a deleted NAT gateway or interface stay, as ``blackhole``."""
        for table in self.find(ROUTE_TABLE, vpc_id=vpc_id):
            before = E.routes_of(table)
            after = R.blackhole(before, target_id)
            if after != before:
                E.set_routes(table, after)
                self.update(table["RouteTableId"], table)
                self.emit(ROUTE_CHANGED, table)

    # -- NAT gateway lifecycle --------------------------------------------------------------------

    def advance_nat_gateways(self) -> None:
        """Move NAT gateways along their states (:func:`lamina.domain.ec2.advance_nat_gateway`);
        a failed one gives back its interface and Elastic IP, and routes to it turn blackhole."""
        for nat in self.find(NAT_GATEWAY):
            nat_id = nat["NatGatewayId"]
            step = E.advance_nat_gateway(
                nat, self.now_ms, lambda vpc_id: self.attached_gateway(vpc_id) is not None
            )
            if step is E.NatStep.EXPIRED:
                self.remove(nat_id)
                continue
            if step is E.NatStep.UNCHANGED:
                continue
            if step is E.NatStep.FAILED:
                self.release_nat_resources(nat)
                self.blackhole_routes(nat["VpcId"], nat_id)
            self.update(nat_id, nat)
            self.emit(VPC_CHANGED, E.public_nat(nat))

    def release_nat_resources(self, nat: StoredNatGateway) -> None:
        """A deleted or failed NAT gateway gives back its interface and its Elastic IP's association."""
        for address in nat.get("NatGatewayAddresses", []):
            allocation_id = address.get("AllocationId")
            eip = self.get(allocation_id, ELASTIC_IP) if allocation_id else None
            if allocation_id and eip is not None and E.release_from_nat(eip, nat["NatGatewayId"]):
                self.update(allocation_id, eip)
            eni_id = address.get("NetworkInterfaceId")
            if eni_id and self.get(eni_id, NETWORK_INTERFACE) is not None:
                self.delete_interface(eni_id)


# -- the store ------------------------------------------------------------------------------------


class Ec2Store:
    """EC2 state. ``listeners`` are called after each commit with (event, AWS-shaped object)."""

    def __init__(
        self,
        db: Database,
        *,
        public_pool: IPv4Network = DEFAULT_PUBLIC_POOL,
        nat_delay_ms: int = 0,
        clock: Callable[[], float] = time.time,
        nacl_entry_limit: int = nacls.DEFAULT_ENTRY_LIMIT,
    ) -> None:
        self.db = db
        self.public_pool = public_pool
        # Rules per direction a network ACL may hold (AWS's quota "Rules per network ACL").
        self.nacl_entry_limit = nacl_entry_limit
        # How long a NAT gateway stays ``pending`` (and ``deleting``): 0 = until the next describe.
        self.nat_delay_ms = nat_delay_ms
        self.clock = clock
        self.listeners: list[Listener] = []
        self.partition_listeners: list[PartitionListener] = []
        # What an (account, region) gets the first time it is used (the EC2 service sets it: the
        # default VPC), in a transaction of its own, once ever (``ec2_partitions``).
        self.first_use: Callable[[Ec2Tx], object] | None = None
        self._prepared: set[tuple[str, str]] = set()

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @contextmanager
    def transaction(self, account: str, region: str, now_ms: int | None = None) -> Iterator[Ec2Tx]:
        """One write transaction on (account, region); listeners hear of it after the commit."""
        self.prepare(account, region, now_ms)
        events: list[tuple[str, dict[str, Any]]] = []
        with self.db.write() as conn:
            yield Ec2Tx(self, conn, account, region, now_ms or self._now_ms(), events)
        self._notify(account, region, events)

    def read(self, account: str, region: str, fn: Callable[[Ec2Tx], T], now_ms: int | None = None) -> T:
        """Run ``fn`` on a consistent snapshot of (account, region)."""
        self.prepare(account, region, now_ms)
        return self.db.snapshot(
            lambda conn: fn(Ec2Tx(self, conn, account, region, now_ms or self._now_ms(), None))
        )

    def prepare(self, account: str, region: str, now_ms: int | None = None) -> None:
        """Set (account, region) up with :attr:`first_use` if it never was: once per partition
        ever, whatever the concurrency (the ``ec2_partitions`` row is claimed in the same write
        transaction), and in a transaction of its own, so a request that fails does not undo it."""
        key = (account, region)
        if self.first_use is None or key in self._prepared:
            return
        first_use = self.first_use
        events: list[tuple[str, dict[str, Any]]] = []
        when = now_ms or self._now_ms()
        with self.db.write() as conn:
            claimed = conn.execute(
                "INSERT INTO ec2_partitions (account, region, created_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (account, region, when),
            ).rowcount
            if claimed:
                first_use(Ec2Tx(self, conn, account, region, when, events))
        self._prepared.add(key)
        self._notify(account, region, events)

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
    ) -> NetworkInterface:
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

    def get_interface(self, account: str, region: str, eni_id: str) -> NetworkInterface:
        """A network interface as EC2 describes it, or ``InvalidNetworkInterfaceID.NotFound``."""
        return self.read(account, region, lambda tx: E.wire_copy(tx.require(NETWORK_INTERFACE, eni_id)))

    def get_subnet(self, account: str, region: str, subnet_id: str) -> Subnet:
        """A subnet as DescribeSubnets shows it, or ``InvalidSubnetID.NotFound``."""
        return self.read(account, region, lambda tx: tx.subnet_view(tx.require(SUBNET, subnet_id)))

    def get_security_group(self, account: str, region: str, group_id: str) -> SecurityGroup:
        """A security group as DescribeSecurityGroups shows it, or ``InvalidGroup.NotFound``."""
        return self.read(account, region, lambda tx: tx.group_view(tx.require(SECURITY_GROUP, group_id)))

    def list_resources(
        self, account: str, region: str, kind: str, *, vpc_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every resource of ``kind`` (EC2 shapes, unfiltered, as plain dicts): for the data
        plane's rebuilds."""

        def run(tx: Ec2Tx) -> list[dict[str, Any]]:
            if kind == SUBNET:
                return [public(tx.subnet_view(s)) for s in tx.find(SUBNET, vpc_id=vpc_id)]
            if kind == SECURITY_GROUP:
                return [public(tx.group_view(g)) for g in tx.find(SECURITY_GROUP, vpc_id=vpc_id)]
            resource_kind = E.KINDS.get(kind)
            if resource_kind is None:
                return []
            return [public(b) for b in tx.find(resource_kind, vpc_id=vpc_id)]

        return self.read(account, region, run)

    def vpc_dns(
        self, account: str, region: str, vpc_id: str
    ) -> tuple[D.VpcDnsAttributes, D.DhcpSettings] | None:
        """A VPC's DNS attributes and what its DHCP option set hands out (None: no such VPC)."""

        def run(tx: Ec2Tx) -> tuple[D.VpcDnsAttributes, D.DhcpSettings] | None:
            vpc = tx.get(vpc_id, VPC)
            if vpc is None:
                return None
            options_id = vpc.get("DhcpOptionsId", D.NO_DHCP_OPTIONS)
            if options_id == D.NO_DHCP_OPTIONS:
                none = bool(cast(Mapping[str, Any], vpc).get(D.NO_OPTIONS_KEY))
                dhcp = D.DhcpSettings.of(None) if none else D.DhcpSettings.region_default(region)
            else:
                dhcp = D.DhcpSettings.of(tx.get(options_id, DHCP_OPTIONS))
            return D.VpcDnsAttributes.of(vpc), dhcp

        return self.read(account, region, run)

    def vpc_locations(self) -> list[tuple[str, str, str]]:
        """(account, region, VpcId) of every VPC of every account and region, oldest first: what
        the data plane rebuilds at startup."""
        rows = self.db.read(
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
