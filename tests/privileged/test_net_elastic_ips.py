"""Elastic IPs on ``lamina vpc run`` interfaces and route changes, against a real server as root
whose uplink is a namespace standing for the internet (as in ``test_net_uplink``): an Elastic IP
associated with an interface in a public subnet makes it reachable from the internet at that
address, within its security groups, and what it sends leaves as that address; changing its
groups or disassociating the address is in force at once; ReplaceRoute moving a subnet's default
route between the internet gateway, a NAT gateway and a deleted NAT gateway (a blackhole) changes
real traffic.

The VPC: 10.81.0.0/16 with an internet gateway; public subnet 10.81.1.0/24 (0.0.0.0/0 -> igw),
private subnet 10.81.2.0/24 (its own table), a NAT gateway in the public subnet.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from lamina_server import LaminaServer, client
from test_net_uplink import (
    INTERNET_HOST,
    POOL,
    PORT,
    Internet,
    nat_gateway,
    no_way_out,
    open_internet,
    uplink_server,
    vpc_run,
)

pytestmark = pytest.mark.privileged

HOST_PORT = 8
PROBE_TIMEOUT_S = 0.5  # nothing here is slow: a connection still pending after this was dropped

# In the VPC: answers each connection on HOST_PORT with the peer's address (silently), and reads
# "host port timeout" lines, answering "saw <what the server said>", "dropped" or "error N".
HOST = r"""
import os, socket, sys, threading
def serve(s):
    while True:
        c, (peer, _) = s.accept()
        with c:
            c.sendall(peer.encode() + b"\n")
threading.Thread(target=serve, args=(socket.create_server(("0.0.0.0", PORT)),), daemon=True).start()
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    host, port, timeout = line.split()
    s = socket.socket()
    s.settimeout(float(timeout))
    try:
        s.connect((host, int(port)))
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(64)
            if not chunk:
                break
            data += chunk
        print("saw", data.decode().strip() or "nothing", flush=True)
    except TimeoutError:
        print("dropped", flush=True)
    except OSError as exc:
        print("error", exc.errno, flush=True)
    finally:
        s.close()
""".replace("PORT", str(HOST_PORT))

# From the internet: connect (from the internet host's address) and say what the VPC host saw.
CALL_IN = r"""
import socket, sys
s = socket.socket()
s.settimeout(float(sys.argv[3]))
s.bind((sys.argv[4], 0))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("saw", s.recv(64).decode().strip() or "nothing")
except TimeoutError:
    print("dropped")
except OSError as exc:
    print("error", exc.errno)
"""


@dataclass
class Net:
    vpc: str
    public: str
    private: str
    open: str
    closed: str
    igw: str
    private_rtb: str
    nat: str
    nat_eip: str


@pytest.fixture(scope="module")
def internet() -> Iterator[Internet]:
    yield from open_internet()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, internet: Internet) -> Iterator[LaminaServer]:
    yield from uplink_server(tmp_path_factory, internet, "lamina-eip", "--public-ip-pool", str(POOL))


@pytest.fixture(scope="module")
def ec2(server: LaminaServer) -> Any:
    return client(server, "ec2")


@pytest.fixture(scope="module")
def net(ec2: Any) -> Net:
    vpc = ec2.create_vpc(CidrBlock="10.81.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.81.1.0/24")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.81.2.0/24")["Subnet"]["SubnetId"]
    open_group = ec2.create_security_group(VpcId=vpc, GroupName="open", Description="open")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=open_group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": HOST_PORT,
                "ToPort": HOST_PORT,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    closed = ec2.create_security_group(VpcId=vpc, GroupName="closed", Description="closed")["GroupId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public_rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=public_rtb, SubnetId=public)
    private_rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=private_rtb, SubnetId=private)
    nat, nat_eip = nat_gateway(ec2, public)
    return Net(vpc, public, private, open_group, closed, igw, private_rtb, nat, nat_eip)


def call_in(internet: Internet, address: str) -> str:
    """Connect from the internet host to ``address``:HOST_PORT; what the VPC host saw, or why not."""
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            internet.name,
            sys.executable,
            "-c",
            CALL_IN,
            address,
            str(HOST_PORT),
            str(PROBE_TIMEOUT_S),
            INTERNET_HOST,
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return out.stdout.strip()


def until(check: Any, wanted: Any, timeout: float = 5.0) -> Any:
    """Poll ``check()`` until ``wanted(value)`` (bounded; the last value either way)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if wanted(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def test_an_elastic_ip_makes_an_interface_reachable_and_its_replies_leave_with_it(
    server: LaminaServer, ec2: Any, net: Net, internet: Internet
) -> None:
    allocation = ec2.allocate_address(Domain="vpc")
    eip = allocation["PublicIp"]
    with vpc_run(server, net.public, net.open, HOST) as host:
        internet.seen()
        # No public address yet: nothing comes in, nothing goes out.
        assert no_way_out(call_in(internet, eip))
        assert host.probe(INTERNET_HOST, PORT, PROBE_TIMEOUT_S) == "dropped"

        association = ec2.associate_address(
            AllocationId=allocation["AllocationId"], NetworkInterfaceId=host.interface()
        )["AssociationId"]
        # In: the host sees the internet host's own address (an internet gateway translates only
        # the destination), and its reply comes back from the Elastic IP.
        assert (
            until(lambda: call_in(internet, eip), lambda a: a == f"saw {INTERNET_HOST}")
            == f"saw {INTERNET_HOST}"
        )
        # Out: the internet sees the Elastic IP.
        assert host.probe(INTERNET_HOST, PORT, PROBE_TIMEOUT_S) == f"saw {eip}"
        assert internet.seen()[-1] == eip

        # Its security groups decide what comes in: a group that allows nothing in...
        ec2.modify_network_interface_attribute(NetworkInterfaceId=host.interface(), Groups=[net.closed])
        assert until(lambda: call_in(internet, eip), lambda a: a == "dropped") == "dropped"
        assert host.probe(INTERNET_HOST, PORT, PROBE_TIMEOUT_S) == f"saw {eip}"  # all out, still
        ec2.modify_network_interface_attribute(NetworkInterfaceId=host.interface(), Groups=[net.open])
        assert until(lambda: call_in(internet, eip), lambda a: a.startswith("saw")) == f"saw {INTERNET_HOST}"

        ec2.disassociate_address(AssociationId=association)
        assert no_way_out(until(lambda: call_in(internet, eip), no_way_out))
        assert until(lambda: host.probe(INTERNET_HOST, PORT, PROBE_TIMEOUT_S), no_way_out) == "dropped"
        assert not any(eip in r for r in internet.routes())
    ec2.release_address(AllocationId=allocation["AllocationId"])


def test_an_elastic_ip_in_a_private_subnet_lets_nothing_through(
    server: LaminaServer, ec2: Any, net: Net, internet: Internet
) -> None:
    """The address is routed to the VPC, but the subnet's table has no route to the internet
    gateway: replies have no way back, as in EC2."""
    allocation = ec2.allocate_address(Domain="vpc")
    with vpc_run(server, net.private, net.open, HOST) as host:
        ec2.associate_address(AllocationId=allocation["AllocationId"], NetworkInterfaceId=host.interface())
        until(internet.routes, lambda rs: any(allocation["PublicIp"] in r for r in rs))
        assert call_in(internet, allocation["PublicIp"]) == "dropped"
        assert no_way_out(host.probe(INTERNET_HOST, PORT, PROBE_TIMEOUT_S))
    ec2.release_address(AllocationId=allocation["AllocationId"])


def test_replace_route_moves_real_traffic(
    server: LaminaServer, ec2: Any, net: Net, internet: Internet
) -> None:
    rtb = net.private_rtb
    with vpc_run(server, net.private, net.open, HOST) as host:
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=net.igw)
        try:
            # To the internet gateway without a public address: nothing gets out.
            time.sleep(0.2)
            assert host.probe(INTERNET_HOST, PORT, PROBE_TIMEOUT_S) == "dropped"
            ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=net.nat)
            assert (
                until(lambda: host.probe(INTERNET_HOST, PORT, 0.1), lambda a: a == f"saw {net.nat_eip}")
                == f"saw {net.nat_eip}"
            )
            # Back to the internet gateway: dropped again.
            ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=net.igw)
            assert until(lambda: host.probe(INTERNET_HOST, PORT, 0.1), lambda a: a == "dropped") == "dropped"
            # To a NAT gateway that is then deleted: a blackhole.
            other, other_eip = nat_gateway(ec2, net.public)
            ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=other)
            assert (
                until(lambda: host.probe(INTERNET_HOST, PORT, 0.1), lambda a: a == f"saw {other_eip}")
                == f"saw {other_eip}"
            )
            ec2.delete_nat_gateway(NatGatewayId=other)
            assert no_way_out(until(lambda: host.probe(INTERNET_HOST, PORT, 0.1), no_way_out))
            routes = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
            assert [
                (r.get("NatGatewayId"), r["State"])
                for r in routes
                if r["DestinationCidrBlock"] == "0.0.0.0/0"
            ] == [(other, "blackhole")]
            # ReplaceRoute mends a blackhole.
            ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=net.nat)
            assert (
                until(lambda: host.probe(INTERNET_HOST, PORT, 0.1), lambda a: a == f"saw {net.nat_eip}")
                == f"saw {net.nat_eip}"
            )
        finally:
            ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0")
