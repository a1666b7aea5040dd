"""Network ACLs on the way out, as root, against a real server whose uplink is a namespace standing
for the internet (the setup of ``test_net_uplink.py``, whose helpers this reuses): a private
subnet's traffic through a NAT gateway crosses the private subnet's outbound rules, then the NAT
gateway subnet's inbound rules, then (as the Elastic IP) its outbound rules; the replies the same
way back, statelessly.

The internet: namespace ``lmtest-<random>``, 198.51.100.7 answers port 7 with the source it saw.
The VPC: 10.79.0.0/16, public subnet 10.79.1.0/24 (the NAT gateway), private subnet 10.79.2.0/24
(a probe under ``lamina vpc run``, its default route to the NAT gateway).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from test_net_uplink import (
    INTERNET_HOST,
    POOL,
    PORT,
    PROBE,
    Internet,
    Net,
    build_vpc,
    open_internet,
    uplink_server,
    vpc_run,
)

pytestmark = pytest.mark.privileged

IN_FORCE_S = 2.0
PROBE_TIMEOUT_S = 0.25
EPHEMERAL = {"Protocol": "6", "PortRange": {"From": 1024, "To": 65535}}


@pytest.fixture(scope="module")
def internet() -> Iterator[Internet]:
    yield from open_internet()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, internet: Internet) -> Iterator[LaminaServer]:
    yield from uplink_server(tmp_path_factory, internet, "lamina-nacl-gw", "--public-ip-pool", str(POOL))


@pytest.fixture(scope="module")
def ec2(server: LaminaServer) -> Any:
    return client(server, "ec2")


@pytest.fixture(scope="module")
def net(ec2: Any) -> Net:
    net = build_vpc(ec2)
    ec2.create_route(RouteTableId=net.private_rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=net.nat)
    return net


def answer_becomes(probe: Any, wanted: str) -> str:
    deadline = time.monotonic() + IN_FORCE_S
    while True:
        answer = str(probe.probe(INTERNET_HOST, PORT, PROBE_TIMEOUT_S))
        if (answer == "dropped") == (wanted == "dropped") or time.monotonic() > deadline:
            return answer
        time.sleep(0.01)


def rule(number: int, egress: bool, action: str, cidr: str = "0.0.0.0/0", **kw: Any) -> dict[str, Any]:
    return {
        "RuleNumber": number,
        "Egress": egress,
        "RuleAction": action,
        "Protocol": "-1",
        "CidrBlock": cidr,
        **kw,
    }


def custom_acl(ec2: Any, net: Net, subnet: str, *rules: dict[str, Any]) -> tuple[str, str, str]:
    """A new ACL with ``rules``, associated with ``subnet``: (acl, new association, previous ACL)."""
    acl = ec2.create_network_acl(VpcId=net.vpc)["NetworkAcl"]["NetworkAclId"]
    for r in rules:
        ec2.create_network_acl_entry(NetworkAclId=acl, **r)
    current = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])[
        "NetworkAcls"
    ][0]
    association = next(a for a in current["Associations"] if a["SubnetId"] == subnet)[
        "NetworkAclAssociationId"
    ]
    new = ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl)["NewAssociationId"]
    return acl, new, current["NetworkAclId"]


def restore(ec2: Any, acl: str, association: str, previous: str) -> None:
    ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=previous)
    ec2.delete_network_acl(NetworkAclId=acl)


@pytest.mark.parametrize(
    ("where", "rules"),
    [
        pytest.param(
            "private",
            [
                rule(10, True, "deny", f"{INTERNET_HOST}/32"),
                rule(100, True, "allow"),
                rule(100, False, "allow"),
            ],
            id="private-outbound",
        ),
        pytest.param(
            "private",
            [rule(10, False, "deny", "198.51.100.0/24"), rule(100, True, "allow"), rule(100, False, "allow")],
            id="private-inbound-replies",
        ),
        pytest.param(
            "public",
            [rule(10, False, "deny", "10.79.2.0/24"), rule(100, True, "allow"), rule(100, False, "allow")],
            id="nat-subnet-inbound",
        ),
        pytest.param(
            "public",
            [
                rule(10, True, "deny", f"{INTERNET_HOST}/32"),
                rule(100, True, "allow"),
                rule(100, False, "allow"),
            ],
            id="nat-subnet-outbound",
        ),
    ],
)
def test_each_boundary_on_the_way_out_is_judged(
    server: LaminaServer, ec2: Any, net: Net, where: str, rules: list[dict[str, Any]]
) -> None:
    subnet = net.private if where == "private" else net.public
    with vpc_run(server, net.private, net.group, PROBE) as probe:
        assert answer_becomes(probe, f"saw {net.eip}") == f"saw {net.eip}"
        acl, association, previous = custom_acl(ec2, net, subnet, *rules)
        try:
            assert answer_becomes(probe, "dropped") == "dropped"
        finally:
            restore(ec2, acl, association, previous)
        assert answer_becomes(probe, f"saw {net.eip}") == f"saw {net.eip}"


def test_the_nat_subnet_must_let_the_replies_in_on_ephemeral_ports(
    server: LaminaServer, ec2: Any, net: Net
) -> None:
    with vpc_run(server, net.private, net.group, PROBE) as probe:
        # In: only what the VPC sends; the internet's replies to the NAT gateway's ports are not let in.
        acl, association, previous = custom_acl(
            ec2, net, net.public, rule(100, False, "allow", "10.79.0.0/16"), rule(100, True, "allow")
        )
        try:
            assert answer_becomes(probe, "dropped") == "dropped"
            ec2.create_network_acl_entry(NetworkAclId=acl, **rule(110, False, "allow", **EPHEMERAL))
            assert answer_becomes(probe, f"saw {net.eip}") == f"saw {net.eip}"
        finally:
            restore(ec2, acl, association, previous)
