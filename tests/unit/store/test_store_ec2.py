"""The EC2 repository on a real SQLite file: transactions and their listeners, addresses,
rules, interfaces, and the NAT gateway lifecycle's effects."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from lamina.domain import ec2 as E
from lamina.domain import routes as R
from lamina.domain import secgroups as S
from lamina.errors import AwsError
from lamina.store import Database, Ec2Store, Ec2Tx

ACCOUNT, REGION = "000000000000", "us-east-1"


def network(tx: Ec2Tx, cidr: str = "10.0.0.0/28") -> tuple[str, str, str]:
    """A VPC with one subnet and its default group: (vpc, subnet, group) ids."""
    vpc_id = tx.new_id(E.VPC)
    tx.put(E.VPC, vpc_id, {"VpcId": vpc_id, "CidrBlock": "10.0.0.0/16"}, vpc_id=vpc_id)
    subnet_id = tx.new_id(E.SUBNET)
    subnet = {"SubnetId": subnet_id, "VpcId": vpc_id, "CidrBlock": cidr, "AvailabilityZone": "us-east-1a"}
    tx.put(E.SUBNET, subnet_id, subnet, vpc_id=vpc_id, subnet_id=subnet_id)
    group_id = tx.new_id(E.SECURITY_GROUP)
    group = {"GroupId": group_id, "GroupName": "default", "VpcId": vpc_id, "Description": "d"}
    tx.put(E.SECURITY_GROUP, group_id, group, vpc_id=vpc_id)
    return vpc_id, subnet_id, group_id


@pytest.fixture
def ec2(db: Database) -> Ec2Store:
    return Ec2Store(db, public_pool=IPv4Network("203.0.113.0/30"), clock=lambda: 7.0)


def test_listeners_hear_of_a_commit_and_not_of_a_rollback(ec2: Ec2Store) -> None:
    heard: list[tuple[str, str, str]] = []
    ec2.partition_listeners.append(lambda account, region, event, obj: heard.append((account, region, event)))
    with ec2.transaction(ACCOUNT, REGION) as tx:
        _, subnet_id, _ = network(tx)
        tx.emit(E.VPC_CHANGED, {})
        assert heard == []  # not before the commit
    assert heard == [(ACCOUNT, REGION, E.VPC_CHANGED)]
    with pytest.raises(AwsError), ec2.transaction(ACCOUNT, REGION) as tx:
        tx.create_interface(subnet_id, [], "x")
        raise E.error("DryRunOperation", "dry run")
    assert heard == [(ACCOUNT, REGION, E.VPC_CHANGED)]
    assert ec2.get_subnet(ACCOUNT, REGION, subnet_id)["AvailableIpAddressCount"] == 11  # nothing taken
    with pytest.raises(RuntimeError, match="write transaction"):
        ec2.read(ACCOUNT, REGION, lambda tx: tx.emit(E.VPC_CHANGED, {}))


def test_a_listener_that_fails_does_not_fail_the_commit(
    ec2: Ec2Store, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: str, obj: dict[str, Any]) -> None:
        raise OSError("down")

    ec2.listeners.append(broken)
    with ec2.transaction(ACCOUNT, REGION) as tx:
        vpc_id, _, _ = network(tx)
        tx.emit(E.VPC_CHANGED, {"VpcId": vpc_id})
    assert ec2.vpc_locations() == [(ACCOUNT, REGION, vpc_id)]
    assert "EC2 listener" in caplog.text


def test_resources_find_describe_and_partitions(ec2: Ec2Store) -> None:
    with ec2.transaction(ACCOUNT, REGION) as tx:
        vpc_id, subnet_id, group_id = network(tx)
        other_vpc, _, _ = network(tx)
        tx.update(vpc_id, {"VpcId": vpc_id, "CidrBlock": "10.0.0.0/16", "_secret": 1})

    def look(tx: Ec2Tx) -> Any:
        return (
            tx.get(vpc_id, E.SUBNET),
            [v["VpcId"] for v in tx.find(E.VPC)],
            list(tx.describe(E.VPC)),
            tx.describe(E.VPC, {"id": [vpc_id]}),
            list(tx.describe(E.SUBNET, {"vpc_id": [vpc_id]})),
            tx.describe(E.SUBNET, {"vpc_id": []}),
        )

    wrong_kind, found, described, named, in_vpc, none = ec2.read(ACCOUNT, REGION, look)
    assert wrong_kind is None
    assert found == described == [vpc_id, other_vpc]  # oldest first, an update keeps the place
    assert named == {vpc_id: {"VpcId": vpc_id, "CidrBlock": "10.0.0.0/16"}}  # bookkeeping hidden
    assert (in_vpc, none) == ([subnet_id], {})
    with pytest.raises(ValueError, match="not a column"):
        ec2.read(ACCOUNT, REGION, lambda tx: tx.describe(E.VPC, {"body": ["x"]}))
    with pytest.raises(AwsError, match="does not exist"):
        ec2.read(ACCOUNT, "eu-west-1", lambda tx: tx.require(E.VPC, vpc_id))
    with ec2.transaction(ACCOUNT, REGION) as tx:
        tx.remove(other_vpc)
    assert ec2.vpc_locations() == [(ACCOUNT, REGION, vpc_id)]
    # The data plane's view: subnets and groups as their Describe* calls show them.
    subnets = ec2.list_resources(ACCOUNT, REGION, E.SUBNET, vpc_id=vpc_id)
    assert [(x["SubnetId"], x["AvailableIpAddressCount"]) for x in subnets] == [(subnet_id, 11)]
    groups = ec2.list_resources(ACCOUNT, REGION, E.SECURITY_GROUP, vpc_id=vpc_id)
    assert [(g["GroupId"], g["IpPermissions"]) for g in groups] == [(group_id, [])]


def test_private_addresses_are_allocated_once_until_the_subnet_is_full(ec2: Ec2Store) -> None:
    with ec2.transaction(ACCOUNT, REGION) as tx:
        _, subnet_id, group_id = network(tx)
    created = [ec2.create_interface(ACCOUNT, REGION, subnet_id, [group_id], "x") for _ in range(11)]
    addresses = [e["PrivateIpAddress"] for e in created]
    assert addresses == [f"10.0.0.{n}" for n in range(4, 15)]  # AWS reserves the first four and the last
    with pytest.raises(AwsError) as caught:
        ec2.create_interface(ACCOUNT, REGION, subnet_id, [group_id], "x")
    assert caught.value.code == "InsufficientFreeAddressesInSubnet"
    ec2.delete_interface(ACCOUNT, REGION, created[3]["NetworkInterfaceId"])
    again = ec2.create_interface(ACCOUNT, REGION, subnet_id, [group_id], "x")
    assert again["PrivateIpAddress"] == "10.0.0.7"
    assert ec2.get_interface(ACCOUNT, REGION, again["NetworkInterfaceId"]) == again
    assert ec2.group_members(ACCOUNT, REGION, group_id)[-1] == IPv4Address("10.0.0.7")


def test_an_interface_without_groups_gets_the_default_one(ec2: Ec2Store) -> None:
    with ec2.transaction(ACCOUNT, REGION) as tx:
        _, subnet_id, group_id = network(tx)
        eni = tx.create_interface(subnet_id, [], "mine", private_ip="10.0.0.9")
        bare = tx.create_interface(subnet_id, [], "nat", interface_type="nat_gateway", groupless=True)
    assert (eni["Groups"][0]["GroupId"], eni["Status"], eni["PrivateIpAddress"]) == (
        group_id,
        "available",
        "10.0.0.9",
    )
    assert (bare["Groups"], bare["Status"]) == ([], "in-use")
    assert ec2.read(ACCOUNT, REGION, lambda tx: tx.interfaces_in_group(group_id)) == [
        eni["NetworkInterfaceId"]
    ]


def test_elastic_ips_come_from_one_pool_for_every_account(ec2: Ec2Store) -> None:
    with ec2.transaction(ACCOUNT, REGION) as tx:
        first = tx.claim_public_address("eipalloc-1")
    with ec2.transaction("111111111111", "eu-west-1") as tx:
        second = tx.claim_public_address("eipalloc-2")
    assert (first, second) == ("203.0.113.1", "203.0.113.2")
    with pytest.raises(AwsError) as caught, ec2.transaction(ACCOUNT, REGION) as tx:
        tx.claim_public_address("eipalloc-3")
    assert caught.value.code == "AddressLimitExceeded"
    with ec2.transaction("111111111111", "eu-west-1") as tx:
        tx.release_public_address(second)
    with ec2.transaction(ACCOUNT, REGION) as tx:
        assert tx.claim_public_address("eipalloc-3", "203.0.113.2") == "203.0.113.2"


def test_security_group_rules(ec2: Ec2Store) -> None:
    with ec2.transaction(ACCOUNT, REGION) as tx:
        _, _, group_id = network(tx)
        other = tx.new_id(E.SECURITY_GROUP)
        https = S.Rule(S.Direction.INGRESS, "tcp", 443, 443, cidr_v4=IPv4Network("0.0.0.0/0"))
        peers = S.Rule(S.Direction.INGRESS, "-1", -1, -1, group_id=group_id, group_owner=ACCOUNT)
        added = tx.add_rules(group_id, [https])
        tx.add_rules(other, [peers])
        tx.set_rule_tags(added[0], [{"Key": "k", "Value": "v"}])
    rules = ec2.read(ACCOUNT, REGION, lambda tx: tx.rules(group_id))
    assert [(r.rule, r.tags) for r in rules] == [(https, [{"Key": "k", "Value": "v"}])]
    assert ec2.read(ACCOUNT, REGION, lambda tx: tx.referencing_groups(group_id)) == [other]
    view = ec2.get_security_group(ACCOUNT, REGION, group_id)
    assert view["IpPermissions"][0]["FromPort"] == 443
    with ec2.transaction(ACCOUNT, REGION) as tx:
        tx.remove_rules([added[0].rule_id])
    assert [(r.group_id, r.rule) for r in ec2.read(ACCOUNT, REGION, lambda tx: tx.rules())] == [
        (other, peers)
    ]


def test_a_failed_nat_gateway_gives_back_what_it_held(db: Database) -> None:
    ec2 = Ec2Store(db, clock=lambda: 100.0)
    heard: list[str] = []
    ec2.listeners.append(lambda event, obj: heard.append(event))
    with ec2.transaction(ACCOUNT, REGION, now_ms=1000) as tx:
        vpc_id, subnet_id, _ = network(tx)
        eni = tx.create_interface(subnet_id, [], "nat", interface_type="nat_gateway", groupless=True)
        nat_id = tx.new_id(E.NAT_GATEWAY)
        eip = {"AllocationId": "eipalloc-1", "_nat": nat_id, "AssociationId": "a"}
        tx.put(E.ELASTIC_IP, "eipalloc-1", eip)
        address = {"AllocationId": "eipalloc-1", "NetworkInterfaceId": eni["NetworkInterfaceId"]}
        nat = {"NatGatewayId": nat_id, "VpcId": vpc_id, "State": "pending", "NatGatewayAddresses": [address]}
        tx.put(E.NAT_GATEWAY, nat_id, nat, vpc_id=vpc_id, subnet_id=subnet_id)
        table_id = tx.new_id(E.ROUTE_TABLE)
        table: dict[str, Any] = {"RouteTableId": table_id, "VpcId": vpc_id}
        E.set_routes(table, [R.Route(IPv4Network("0.0.0.0/0"), R.TargetKind.NAT_GATEWAY, nat_id)])
        tx.put(E.ROUTE_TABLE, table_id, table, vpc_id=vpc_id)
    heard.clear()
    with ec2.transaction(ACCOUNT, REGION, now_ms=2000) as tx:
        tx.advance_nat_gateways()  # no internet gateway: it fails
    assert heard == [E.INTERFACE_DELETED, E.ROUTE_CHANGED, E.VPC_CHANGED]

    def after(tx: Ec2Tx) -> Any:
        return tx.get(nat_id), tx.get(eni["NetworkInterfaceId"]), tx.get("eipalloc-1"), tx.get(table_id)

    nat_now, eni_now, eip_now, table_now = ec2.read(ACCOUNT, REGION, after)
    assert (nat_now["State"], eni_now, eip_now) == ("failed", None, {"AllocationId": "eipalloc-1"})
    assert table_now["Routes"][0]["State"] == "blackhole"
    with ec2.transaction(ACCOUNT, REGION, now_ms=2000 + E.NAT_GATEWAY_RETENTION_MS + 1) as tx:
        tx.advance_nat_gateways()
    assert ec2.read(ACCOUNT, REGION, lambda tx: tx.get(nat_id)) is None


# -- first use of a partition (the default VPC) ------------------------------------------------------


def test_first_use_runs_once_per_partition_ever_and_survives_a_failed_request(db: Database) -> None:
    calls: list[tuple[str, str]] = []

    def first_use(tx: Ec2Tx) -> None:
        calls.append((tx.account, tx.region))
        vpc_id = tx.new_id(E.VPC)
        tx.put(E.VPC, vpc_id, {"VpcId": vpc_id, "IsDefault": True}, vpc_id=vpc_id)
        tx.emit(E.VPC_CHANGED, {"VpcId": vpc_id})

    store = Ec2Store(db)
    store.first_use = first_use
    heard: list[tuple[str, str, str]] = []
    store.partition_listeners.append(
        lambda account, region, event, obj: heard.append((account, region, event))
    )
    # The request fails: what the first use made stays (its own transaction), and was heard.
    with pytest.raises(AwsError), store.transaction(ACCOUNT, REGION) as tx:
        tx.require(E.VPC, "vpc-0123456789abcdef0")
    assert calls == [(ACCOUNT, REGION)] and heard == [(ACCOUNT, REGION, E.VPC_CHANGED)]
    assert len(store.read(ACCOUNT, REGION, lambda tx: tx.find(E.VPC))) == 1
    store.read(ACCOUNT, "eu-west-1", lambda tx: None)  # a read is a use too
    assert calls == [(ACCOUNT, REGION), (ACCOUNT, "eu-west-1")]

    # Deleted, it is not made again: not by this store, nor by a new one (a restart).
    with store.transaction(ACCOUNT, REGION) as tx:
        for vpc in tx.find(E.VPC):
            tx.remove(vpc["VpcId"])
    restarted = Ec2Store(db)
    restarted.first_use = first_use
    assert restarted.read(ACCOUNT, REGION, lambda tx: tx.find(E.VPC)) == []
    assert calls == [(ACCOUNT, REGION), (ACCOUNT, "eu-west-1")]


def test_without_first_use_nothing_is_made(ec2: Ec2Store) -> None:
    assert ec2.read(ACCOUNT, REGION, lambda tx: tx.find(E.VPC)) == []
