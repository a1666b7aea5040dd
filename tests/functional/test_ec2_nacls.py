"""Network ACLs through boto3 and the AWS CLI against the real server: the default ACL of every VPC,
subnet associations, entries (order, duplicates, limits, protocols, ports, ICMP), associations,
deletion rules, DescribeNetworkAcls filters, DryRun, EC2's errors, IAM and other accounts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client, run_aws

ALL_OUT = {
    "CidrBlock": "0.0.0.0/0",
    "Egress": True,
    "Protocol": "-1",
    "RuleAction": "allow",
    "RuleNumber": 100,
}
DENY_OUT = {
    "CidrBlock": "0.0.0.0/0",
    "Egress": True,
    "Protocol": "-1",
    "RuleAction": "deny",
    "RuleNumber": 32767,
}
ALL_IN = {**ALL_OUT, "Egress": False}
DENY_IN = {**DENY_OUT, "Egress": False}


@pytest.fixture(scope="module")
def ec2(server: LaminaServer) -> Any:
    return client(server, "ec2")


@pytest.fixture
def vpc(ec2: Any) -> dict[str, Any]:
    vpc: dict[str, Any] = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]
    return vpc


def fails(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def acls_of(ec2: Any, vpc_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
        "NetworkAcls"
    ]
    return found


def default_acl(ec2: Any, vpc_id: str) -> dict[str, Any]:
    found = ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default", "Values": ["true"]}]
    )["NetworkAcls"]
    assert len(found) == 1
    acl: dict[str, Any] = found[0]
    return acl


def entry(number: int, *, egress: bool, action: str = "allow", **kwargs: Any) -> dict[str, Any]:
    return {
        "RuleNumber": number,
        "Egress": egress,
        "RuleAction": action,
        "Protocol": "-1",
        "CidrBlock": "0.0.0.0/0",
    } | kwargs


def test_every_vpc_has_a_default_acl_and_subnets_are_associated(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    [acl] = acls_of(ec2, vpc_id)
    assert acl["IsDefault"] is True
    assert acl["NetworkAclId"].startswith("acl-") and len(acl["NetworkAclId"]) == 21
    assert acl["OwnerId"] == "000000000000"
    assert acl["VpcId"] == vpc_id
    assert acl["Associations"] == [] and acl["Tags"] == []
    assert acl["Entries"] == [ALL_OUT, DENY_OUT, ALL_IN, DENY_IN]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]
    [association] = default_acl(ec2, vpc_id)["Associations"]
    assert association["SubnetId"] == subnet["SubnetId"]
    assert association["NetworkAclId"] == acl["NetworkAclId"]
    assert association["NetworkAclAssociationId"].startswith("aclassoc-")
    # A deleted subnet's association goes with it; the VPC's default ACL goes with the VPC.
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    assert default_acl(ec2, vpc_id)["Associations"] == []
    ec2.delete_vpc(VpcId=vpc_id)
    code, _ = fails(ec2.describe_network_acls, NetworkAclIds=[acl["NetworkAclId"]])
    assert code == "InvalidNetworkAclID.NotFound"


def test_custom_acl_lifecycle(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    created = ec2.create_network_acl(
        VpcId=vpc_id,
        TagSpecifications=[{"ResourceType": "network-acl", "Tags": [{"Key": "Name", "Value": "db"}]}],
    )["NetworkAcl"]
    acl_id = created["NetworkAclId"]
    assert created["IsDefault"] is False
    assert created["Entries"] == [DENY_OUT, DENY_IN]  # a new ACL allows nothing
    assert created["Tags"] == [{"Key": "Name", "Value": "db"}]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.2.0/24")["Subnet"]
    association = default_acl(ec2, vpc_id)["Associations"][0]["NetworkAclAssociationId"]
    new = ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl_id)[
        "NewAssociationId"
    ]
    assert new.startswith("aclassoc-") and new != association
    assert default_acl(ec2, vpc_id)["Associations"] == []
    [moved] = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]["Associations"]
    assert moved == {"NetworkAclAssociationId": new, "NetworkAclId": acl_id, "SubnetId": subnet["SubnetId"]}
    # The old association id is gone.
    code, message = fails(ec2.replace_network_acl_association, AssociationId=association, NetworkAclId=acl_id)
    assert (code, message) == (
        "InvalidAssociationID.NotFound",
        f"The association ID '{association}' does not exist",
    )
    # An associated ACL cannot be deleted, nor can a VPC with a custom ACL.
    code, message = fails(ec2.delete_network_acl, NetworkAclId=acl_id)
    assert (code, message) == (
        "DependencyViolation",
        f"The networkAcl '{acl_id}' has dependencies and cannot be deleted.",
    )
    ec2.replace_network_acl_association(
        AssociationId=new, NetworkAclId=default_acl(ec2, vpc_id)["NetworkAclId"]
    )
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    assert fails(ec2.delete_vpc, VpcId=vpc_id)[0] == "DependencyViolation"
    ec2.delete_network_acl(NetworkAclId=acl_id)
    assert fails(ec2.delete_network_acl, NetworkAclId=acl_id)[0] == "InvalidNetworkAclID.NotFound"
    # The default ACL cannot be deleted.
    default_id = default_acl(ec2, vpc_id)["NetworkAclId"]
    code, message = fails(ec2.delete_network_acl, NetworkAclId=default_id)
    assert (code, message) == ("InvalidParameterValue", f"cannot delete default network ACL {default_id}")
    ec2.delete_vpc(VpcId=vpc_id)


def test_entries_are_kept_in_order_and_checked(ec2: Any, vpc: dict[str, Any]) -> None:
    acl_id = ec2.create_network_acl(VpcId=vpc["VpcId"])["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(
        NetworkAclId=acl_id, **entry(200, egress=False, Protocol="tcp", PortRange={"From": 80, "To": 80})
    )
    ec2.create_network_acl_entry(
        NetworkAclId=acl_id,
        **entry(
            100,
            egress=False,
            action="deny",
            Protocol="icmp",
            IcmpTypeCode={"Type": 8, "Code": -1},
            CidrBlock="10.9.0.7/16",
        ),
    )
    ec2.create_network_acl_entry(
        NetworkAclId=acl_id, **entry(50, egress=True, Protocol="17", PortRange={"From": 53, "To": 53})
    )
    entries = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]["Entries"]
    assert entries == [
        {
            "CidrBlock": "0.0.0.0/0",
            "Egress": True,
            "PortRange": {"From": 53, "To": 53},
            "Protocol": "17",
            "RuleAction": "allow",
            "RuleNumber": 50,
        },
        DENY_OUT,
        {
            "CidrBlock": "10.9.0.0/16",
            "Egress": False,
            "IcmpTypeCode": {"Code": -1, "Type": 8},
            "Protocol": "1",
            "RuleAction": "deny",
            "RuleNumber": 100,
        },
        {
            "CidrBlock": "0.0.0.0/0",
            "Egress": False,
            "PortRange": {"From": 80, "To": 80},
            "Protocol": "6",
            "RuleAction": "allow",
            "RuleNumber": 200,
        },
        DENY_IN,
    ]
    # Same number, other direction: fine; same number and direction: taken.
    ec2.create_network_acl_entry(NetworkAclId=acl_id, **entry(200, egress=True))
    code, message = fails(ec2.create_network_acl_entry, NetworkAclId=acl_id, **entry(200, egress=False))
    assert (code, message) == (
        "NetworkAclEntryAlreadyExists",
        "The network acl entry identified by 200 already exists.",
    )
    # Replace and delete need the entry.
    ec2.replace_network_acl_entry(NetworkAclId=acl_id, **entry(200, egress=False, action="deny"))
    got = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]["Entries"]
    assert {
        "CidrBlock": "0.0.0.0/0",
        "Egress": False,
        "Protocol": "-1",
        "RuleAction": "deny",
        "RuleNumber": 200,
    } in got
    code, message = fails(ec2.replace_network_acl_entry, NetworkAclId=acl_id, **entry(300, egress=False))
    assert (code, message) == ("InvalidNetworkAclEntry.NotFound", "no ingress entry with number 300")
    code, message = fails(ec2.delete_network_acl_entry, NetworkAclId=acl_id, RuleNumber=300, Egress=True)
    assert (code, message) == ("InvalidNetworkAclEntry.NotFound", "no egress entry with number 300")
    ec2.delete_network_acl_entry(NetworkAclId=acl_id, RuleNumber=200, Egress=True)
    # The * rule can be neither set nor deleted.
    for number in (0, 32767, 40000):
        code, message = fails(ec2.create_network_acl_entry, NetworkAclId=acl_id, **entry(number, egress=True))
        assert code == "InvalidParameterValue", message
        assert (
            message
            == f"Value ({number}) for parameter ruleNumber is invalid. Rulenumber must be in range 1..32766"
        )
    code, _ = fails(ec2.delete_network_acl_entry, NetworkAclId=acl_id, RuleNumber=32767, Egress=True)
    assert code == "InvalidParameterValue"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        pytest.param({"Protocol": "tcp"}, "MissingParameter", id="tcp-without-ports"),
        pytest.param({"Protocol": "icmp"}, "MissingParameter", id="icmp-without-type"),
        pytest.param({"Protocol": "bogus"}, "InvalidParameterValue", id="bad-protocol"),
        pytest.param({"Protocol": "300"}, "InvalidParameterValue", id="protocol-out-of-range"),
        pytest.param(
            {"Protocol": "6", "PortRange": {"From": 90, "To": 80}},
            "InvalidParameterValue",
            id="ports-reversed",
        ),
        pytest.param(
            {"Protocol": "6", "PortRange": {"From": 1, "To": 70000}},
            "InvalidParameterValue",
            id="port-too-big",
        ),
        pytest.param({"CidrBlock": "10.0.0.300/8"}, "InvalidParameterValue", id="bad-cidr"),
        pytest.param({"CidrBlock": None}, "MissingParameter", id="no-cidr"),
    ],
)
def test_bad_entries_change_nothing(ec2: Any, vpc: dict[str, Any], kwargs: dict[str, Any], code: str) -> None:
    acl = ec2.create_network_acl(VpcId=vpc["VpcId"])["NetworkAcl"]
    params = {k: v for k, v in (entry(10, egress=False) | kwargs).items() if v is not None}
    assert fails(ec2.create_network_acl_entry, NetworkAclId=acl["NetworkAclId"], **params)[0] == code
    assert (
        ec2.describe_network_acls(NetworkAclIds=[acl["NetworkAclId"]])["NetworkAcls"][0]["Entries"]
        == acl["Entries"]
    )


def test_twenty_rules_per_direction(ec2: Any, vpc: dict[str, Any]) -> None:
    acl_id = ec2.create_network_acl(VpcId=vpc["VpcId"])["NetworkAcl"]["NetworkAclId"]
    for number in range(1, 21):
        ec2.create_network_acl_entry(NetworkAclId=acl_id, **entry(number, egress=True))
    code, _ = fails(ec2.create_network_acl_entry, NetworkAclId=acl_id, **entry(21, egress=True))
    assert code == "NetworkAclEntryLimitExceeded"
    ec2.create_network_acl_entry(NetworkAclId=acl_id, **entry(21, egress=False))  # per direction


def test_association_across_vpcs_is_refused(ec2: Any, vpc: dict[str, Any]) -> None:
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]
    foreign = ec2.create_network_acl(VpcId=other["VpcId"])["NetworkAcl"]["NetworkAclId"]
    ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.3.0/24")
    association = default_acl(ec2, vpc["VpcId"])["Associations"][0]["NetworkAclAssociationId"]
    code, _ = fails(ec2.replace_network_acl_association, AssociationId=association, NetworkAclId=foreign)
    assert code == "InvalidParameterValue"
    code, message = fails(
        ec2.replace_network_acl_association, AssociationId=association, NetworkAclId="acl-0123456789abcdef0"
    )
    assert (code, message) == (
        "InvalidNetworkAclID.NotFound",
        "The networkAcl ID 'acl-0123456789abcdef0' does not exist",
    )


def test_dry_run_checks_then_changes_nothing(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    acl_id = ec2.create_network_acl(VpcId=vpc_id)["NetworkAcl"]["NetworkAclId"]
    ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.4.0/24")
    association = default_acl(ec2, vpc_id)["Associations"][0]["NetworkAclAssociationId"]
    before = acls_of(ec2, vpc_id)
    calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (ec2.create_network_acl, {"VpcId": vpc_id}),
        (ec2.create_network_acl_entry, {"NetworkAclId": acl_id, **entry(5, egress=True)}),
        (
            ec2.replace_network_acl_entry,
            {
                "NetworkAclId": default_acl(ec2, vpc_id)["NetworkAclId"],
                **entry(100, egress=True, action="deny"),
            },
        ),
        (
            ec2.delete_network_acl_entry,
            {"NetworkAclId": default_acl(ec2, vpc_id)["NetworkAclId"], "RuleNumber": 100, "Egress": False},
        ),
        (ec2.replace_network_acl_association, {"AssociationId": association, "NetworkAclId": acl_id}),
        (ec2.delete_network_acl, {"NetworkAclId": acl_id}),
        (ec2.describe_network_acls, {}),
    ]
    for call, kwargs in calls:
        code, message = fails(call, DryRun=True, **kwargs)
        assert (code, message) == (
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        ), call
    assert acls_of(ec2, vpc_id) == before
    # A DryRun of a call that would fail fails as the call would.
    assert fails(ec2.delete_network_acl_entry, DryRun=True, NetworkAclId=acl_id, RuleNumber=7, Egress=True)[
        0
    ] == ("InvalidNetworkAclEntry.NotFound")


def test_filters(ec2: Any, vpc: dict[str, Any]) -> None:
    vpc_id = vpc["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.5.0/24")["Subnet"]
    custom = ec2.create_network_acl(
        VpcId=vpc_id,
        TagSpecifications=[{"ResourceType": "network-acl", "Tags": [{"Key": "tier", "Value": "db"}]}],
    )["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(
        NetworkAclId=custom,
        **entry(
            110, egress=False, Protocol="tcp", PortRange={"From": 5432, "To": 5432}, CidrBlock="10.0.5.0/24"
        ),
    )
    ec2.create_network_acl_entry(
        NetworkAclId=custom,
        **entry(120, egress=True, action="deny", Protocol="icmp", IcmpTypeCode={"Type": 0, "Code": 0}),
    )
    default = default_acl(ec2, vpc_id)
    association = default["Associations"][0]

    def ids(*filters: tuple[str, list[str]]) -> set[str]:
        found = ec2.describe_network_acls(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, *({"Name": n, "Values": v} for n, v in filters)]
        )["NetworkAcls"]
        return {a["NetworkAclId"] for a in found}

    both = {custom, default["NetworkAclId"]}
    assert ids() == both
    assert ids(("default", ["false"])) == {custom}
    assert ids(("network-acl-id", [custom])) == {custom}
    assert ids(("association.subnet-id", [subnet["SubnetId"]])) == {default["NetworkAclId"]}
    assert ids(("association.association-id", [association["NetworkAclAssociationId"]])) == {
        default["NetworkAclId"]
    }
    assert ids(("association.network-acl-id", [default["NetworkAclId"]])) == {default["NetworkAclId"]}
    assert ids(("entry.cidr", ["10.0.5.0/24"])) == {custom}
    assert ids(("entry.port-range.from", ["5432"])) == {custom}
    assert ids(("entry.port-range.to", ["5432"])) == {custom}
    assert ids(("entry.protocol", ["tcp"])) == {custom}
    assert ids(("entry.protocol", ["6"])) == {custom}
    assert ids(("entry.protocol", ["-1"])) == both
    assert ids(("entry.rule-action", ["deny"])) == both
    assert ids(("entry.rule-number", ["100"])) == {default["NetworkAclId"]}
    assert ids(("entry.egress", ["true"]), ("entry.rule-number", ["120"])) == {custom}
    assert ids(("entry.icmp.type", ["0"])) == {custom}
    assert ids(("entry.icmp.code", ["0"])) == {custom}
    assert ids(("owner-id", ["000000000000"])) == both
    assert ids(("tag:tier", ["db"])) == {custom}
    assert ids(("tag-key", ["tier"])) == {custom}
    assert ids(("entry.ipv6-cidr", ["::/0"])) == set()
    code, message = fails(ec2.describe_network_acls, Filters=[{"Name": "entry.bogus", "Values": ["x"]}])
    assert (code, message) == ("InvalidParameterValue", "The filter 'entry.bogus' is invalid")
    ec2.create_tags(Resources=[default["NetworkAclId"]], Tags=[{"Key": "tier", "Value": "web"}])
    assert ids(("tag:tier", ["web"])) == {default["NetworkAclId"]}
    page = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}], MaxResults=5)
    assert len(page["NetworkAcls"]) == 2


def test_another_account_can_neither_see_nor_change_an_acl(
    server: LaminaServer, ec2: Any, vpc: dict[str, Any]
) -> None:
    acl_id = default_acl(ec2, vpc["VpcId"])["NetworkAclId"]
    alice = client(server, "ec2", key="AKIDALICE111", secret="alice-secret")
    assert acl_id not in {a["NetworkAclId"] for a in alice.describe_network_acls()["NetworkAcls"]}
    not_found = ("InvalidNetworkAclID.NotFound", f"The networkAcl ID '{acl_id}' does not exist")
    assert fails(alice.describe_network_acls, NetworkAclIds=[acl_id]) == not_found
    assert (
        fails(alice.create_network_acl_entry, NetworkAclId=acl_id, **entry(1, egress=True, action="deny"))
        == not_found
    )
    assert (
        fails(alice.replace_network_acl_entry, NetworkAclId=acl_id, **entry(100, egress=True, action="deny"))
        == not_found
    )
    assert (
        fails(alice.delete_network_acl_entry, NetworkAclId=acl_id, RuleNumber=100, Egress=True) == not_found
    )
    assert fails(alice.delete_network_acl, NetworkAclId=acl_id) == not_found
    assert fails(alice.create_network_acl, VpcId=vpc["VpcId"])[0] == "InvalidVpcID.NotFound"
    # Alice's own ACL, and an association of this account's, are not swappable either.
    alice_vpc = alice.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    alice_acl = alice.create_network_acl(VpcId=alice_vpc)["NetworkAcl"]["NetworkAclId"]
    ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.6.0/24")
    association = default_acl(ec2, vpc["VpcId"])["Associations"][0]["NetworkAclAssociationId"]
    assert fails(alice.replace_network_acl_association, AssociationId=association, NetworkAclId=alice_acl)[
        0
    ] == ("InvalidAssociationID.NotFound")
    assert default_acl(ec2, vpc["VpcId"])["Entries"] == [ALL_OUT, DENY_OUT, ALL_IN, DENY_IN]


def test_iam_decides(server: LaminaServer, vpc: dict[str, Any], ec2: Any) -> None:
    iam = client(server, "iam")
    iam.create_user(UserName="nacl-reader")
    iam.put_user_policy(
        UserName="nacl-reader",
        PolicyName="read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeNetworkAcls", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="nacl-reader")["AccessKey"]
    reader = client(server, "ec2", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    acl_id = default_acl(ec2, vpc["VpcId"])["NetworkAclId"]
    assert reader.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]["NetworkAclId"] == acl_id
    code, message = fails(
        reader.create_network_acl_entry, NetworkAclId=acl_id, **entry(1, egress=True, action="deny")
    )
    assert code == "UnauthorizedOperation"
    assert "ec2:CreateNetworkAclEntry" in message and f"network-acl/{acl_id}" in message


def test_aws_cli(server: LaminaServer, ec2: Any, vpc: dict[str, Any]) -> None:
    acl_id = run_aws(
        server,
        "ec2",
        "create-network-acl",
        "--vpc-id",
        vpc["VpcId"],
        "--query",
        "NetworkAcl.NetworkAclId",
        "--output",
        "text",
    ).stdout.strip()
    assert acl_id.startswith("acl-")
    made = run_aws(
        server,
        "ec2",
        "create-network-acl-entry",
        "--network-acl-id",
        acl_id,
        "--ingress",
        "--rule-number",
        "100",
        "--protocol",
        "tcp",
        "--port-range",
        "From=22,To=22",
        "--cidr-block",
        "172.16.0.0/24",
        "--rule-action",
        "deny",
    )
    assert made.returncode == 0, made.stderr
    shown = run_aws(server, "ec2", "describe-network-acls", "--network-acl-ids", acl_id, "--output", "json")
    entries = json.loads(shown.stdout)["NetworkAcls"][0]["Entries"]
    assert {
        "CidrBlock": "172.16.0.0/24",
        "Egress": False,
        "PortRange": {"From": 22, "To": 22},
        "Protocol": "6",
        "RuleAction": "deny",
        "RuleNumber": 100,
    } in entries
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.7.0/24")["Subnet"]["SubnetId"]
    association = default_acl(ec2, vpc["VpcId"])["Associations"][0]["NetworkAclAssociationId"]
    replaced = run_aws(
        server,
        "ec2",
        "replace-network-acl-association",
        "--association-id",
        association,
        "--network-acl-id",
        acl_id,
        "--output",
        "json",
    )
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(replaced.stdout)["NewAssociationId"].startswith("aclassoc-")
    duplicate = run_aws(
        server,
        "ec2",
        "create-network-acl-entry",
        "--network-acl-id",
        acl_id,
        "--ingress",
        "--rule-number",
        "100",
        "--protocol",
        "-1",
        "--cidr-block",
        "0.0.0.0/0",
        "--rule-action",
        "allow",
    )
    assert duplicate.returncode != 0
    assert "NetworkAclEntryAlreadyExists" in duplicate.stderr
    listed = run_aws(
        server,
        "ec2",
        "describe-network-acls",
        "--filters",
        f"Name=association.subnet-id,Values={subnet}",
        "--query",
        "NetworkAcls[].NetworkAclId",
        "--output",
        "text",
    )
    assert listed.stdout.strip() == acl_id


def test_aws_cli_replaces_and_deletes(server: LaminaServer, ec2: Any, vpc: dict[str, Any]) -> None:
    acl_id = ec2.create_network_acl(VpcId=vpc["VpcId"])["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl_id, **entry(100, egress=True))

    def aws(*args: str) -> str:
        done = run_aws(server, "ec2", *args, "--output", "json")
        assert done.returncode == 0, done.stderr
        return done.stdout

    aws(
        "replace-network-acl-entry", "--network-acl-id", acl_id, "--egress", "--rule-number", "100",
        "--protocol", "icmp", "--icmp-type-code", "Type=8,Code=-1", "--cidr-block", "10.0.0.0/8",
        "--rule-action", "deny",
    )  # fmt: skip
    entries = json.loads(aws("describe-network-acls", "--network-acl-ids", acl_id))["NetworkAcls"][0][
        "Entries"
    ]
    assert entries[0] == {
        "CidrBlock": "10.0.0.0/8",
        "Egress": True,
        "IcmpTypeCode": {"Code": -1, "Type": 8},
        "Protocol": "1",
        "RuleAction": "deny",
        "RuleNumber": 100,
    }
    aws("delete-network-acl-entry", "--network-acl-id", acl_id, "--egress", "--rule-number", "100")
    assert ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]["Entries"] == [
        DENY_OUT,
        DENY_IN,
    ]
    aws("delete-network-acl", "--network-acl-id", acl_id)
    gone = run_aws(server, "ec2", "delete-network-acl", "--network-acl-id", acl_id)
    assert gone.returncode != 0 and "InvalidNetworkAclID.NotFound" in gone.stderr


def test_two_hundred_acls_per_vpc(ec2: Any, vpc: dict[str, Any]) -> None:
    made = [ec2.create_network_acl(VpcId=vpc["VpcId"])["NetworkAcl"]["NetworkAclId"] for _ in range(199)]
    assert len(acls_of(ec2, vpc["VpcId"])) == 200  # the default one counts
    assert fails(ec2.create_network_acl, VpcId=vpc["VpcId"])[0] == "NetworkAclLimitExceeded"
    ec2.delete_network_acl(NetworkAclId=made[0])
    ec2.create_network_acl(VpcId=vpc["VpcId"])
