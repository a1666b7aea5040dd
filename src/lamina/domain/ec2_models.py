"""EC2 resources lamina stores and answers with, as TypedDicts in AWS's casing (pure).

Each wire class mirrors one botocore ``ec2`` shape member for member, in the model's order, as
:mod:`lamina.domain.models` does for Lambda and IAM (tests/unit/test_models_ec2.py checks them);
``total=False``, timestamps are the strings already rendered for the wire. ``Tag`` is ``Ec2Tag``
here (IAM's ``Tag`` is :class:`lamina.domain.models.Tag`).

The store keeps some resources with lamina's own bookkeeping keys (starting with ``_``, never
sent): those have a ``Stored*`` class extending the wire one with them;
:func:`lamina.domain.ec2.public` turns a stored body back into its wire type.
"""

from __future__ import annotations

from typing import TypedDict

# -- wire shapes (botocore ec2), each after the shapes it nests --------------------------------


class VpcCidrBlockState(TypedDict, total=False):
    State: str
    StatusMessage: str


class VpcIpv6CidrBlockAssociation(TypedDict, total=False):
    AssociationId: str
    Ipv6CidrBlock: str
    Ipv6CidrBlockState: VpcCidrBlockState
    NetworkBorderGroup: str
    Ipv6Pool: str
    Ipv6AddressAttribute: str
    IpSource: str


class VpcCidrBlockAssociation(TypedDict, total=False):
    AssociationId: str
    CidrBlock: str
    CidrBlockState: VpcCidrBlockState


class VpcEncryptionControlExclusion(TypedDict, total=False):
    State: str
    StateMessage: str


class VpcEncryptionControlExclusions(TypedDict, total=False):
    InternetGateway: VpcEncryptionControlExclusion
    EgressOnlyInternetGateway: VpcEncryptionControlExclusion
    NatGateway: VpcEncryptionControlExclusion
    VirtualPrivateGateway: VpcEncryptionControlExclusion
    VpcPeering: VpcEncryptionControlExclusion
    Lambda: VpcEncryptionControlExclusion
    VpcLattice: VpcEncryptionControlExclusion
    ElasticFileSystem: VpcEncryptionControlExclusion
    GlobalAccelerator: VpcEncryptionControlExclusion
    ApiGatewayV2: VpcEncryptionControlExclusion


class Ec2Tag(TypedDict, total=False):
    Key: str
    Value: str


class VpcEncryptionControl(TypedDict, total=False):
    VpcId: str
    VpcEncryptionControlId: str
    Mode: str
    State: str
    StateMessage: str
    ResourceExclusions: VpcEncryptionControlExclusions
    Tags: list[Ec2Tag]


class BlockPublicAccessStates(TypedDict, total=False):
    InternetGatewayBlockMode: str


class NetworkFirewallAssociation(TypedDict, total=False):
    FirewallArn: str
    FirewallOnboardingStatus: str
    FirewallMode: str


class Vpc(TypedDict, total=False):
    OwnerId: str
    InstanceTenancy: str
    Ipv6CidrBlockAssociationSet: list[VpcIpv6CidrBlockAssociation]
    CidrBlockAssociationSet: list[VpcCidrBlockAssociation]
    IsDefault: bool
    EncryptionControl: VpcEncryptionControl
    Tags: list[Ec2Tag]
    BlockPublicAccessStates: BlockPublicAccessStates
    NetworkFirewallAssociations: list[NetworkFirewallAssociation]
    VpcId: str
    State: str
    CidrBlock: str
    DhcpOptionsId: str


class SubnetCidrBlockState(TypedDict, total=False):
    State: str
    StatusMessage: str


class SubnetIpv6CidrBlockAssociation(TypedDict, total=False):
    AssociationId: str
    Ipv6CidrBlock: str
    Ipv6CidrBlockState: SubnetCidrBlockState
    Ipv6AddressAttribute: str
    IpSource: str


class PrivateDnsNameOptionsOnLaunch(TypedDict, total=False):
    HostnameType: str
    EnableResourceNameDnsARecord: bool
    EnableResourceNameDnsAAAARecord: bool


class Subnet(TypedDict, total=False):
    AvailabilityZoneId: str
    EnableLniAtDeviceIndex: int
    MapCustomerOwnedIpOnLaunch: bool
    CustomerOwnedIpv4Pool: str
    OwnerId: str
    AssignIpv6AddressOnCreation: bool
    Ipv6CidrBlockAssociationSet: list[SubnetIpv6CidrBlockAssociation]
    Tags: list[Ec2Tag]
    SubnetArn: str
    OutpostArn: str
    EnableDns64: bool
    Ipv6Native: bool
    PrivateDnsNameOptionsOnLaunch: PrivateDnsNameOptionsOnLaunch
    BlockPublicAccessStates: BlockPublicAccessStates
    Type: str
    NetworkFirewallConnectivityType: str
    SubnetId: str
    State: str
    VpcId: str
    CidrBlock: str
    AvailableIpAddressCount: int
    AvailabilityZone: str
    DefaultForAz: bool
    MapPublicIpOnLaunch: bool


class UserIdGroupPair(TypedDict, total=False):
    Description: str
    UserId: str
    GroupName: str
    GroupId: str
    VpcId: str
    VpcPeeringConnectionId: str
    PeeringStatus: str


class IpRange(TypedDict, total=False):
    Description: str
    CidrIp: str


class Ipv6Range(TypedDict, total=False):
    Description: str
    CidrIpv6: str


class PrefixListId(TypedDict, total=False):
    Description: str
    PrefixListId: str


class IpPermission(TypedDict, total=False):
    IpProtocol: str
    FromPort: int
    ToPort: int
    UserIdGroupPairs: list[UserIdGroupPair]
    IpRanges: list[IpRange]
    Ipv6Ranges: list[Ipv6Range]
    PrefixListIds: list[PrefixListId]


class SecurityGroup(TypedDict, total=False):
    GroupId: str
    IpPermissionsEgress: list[IpPermission]
    Tags: list[Ec2Tag]
    VpcId: str
    SecurityGroupArn: str
    OwnerId: str
    GroupName: str
    Description: str
    IpPermissions: list[IpPermission]


class RevokedSecurityGroupRule(TypedDict, total=False):
    SecurityGroupRuleId: str
    GroupId: str
    IsEgress: bool
    IpProtocol: str
    FromPort: int
    ToPort: int
    CidrIpv4: str
    CidrIpv6: str
    PrefixListId: str
    ReferencedGroupId: str
    Description: str


class ReferencedSecurityGroup(TypedDict, total=False):
    GroupId: str
    PeeringStatus: str
    UserId: str
    VpcId: str
    VpcPeeringConnectionId: str


class SecurityGroupRule(TypedDict, total=False):
    SecurityGroupRuleId: str
    GroupId: str
    GroupOwnerId: str
    IsEgress: bool
    IpProtocol: str
    FromPort: int
    ToPort: int
    CidrIpv4: str
    CidrIpv6: str
    PrefixListId: str
    ReferencedGroupInfo: ReferencedSecurityGroup
    Description: str
    Tags: list[Ec2Tag]
    SecurityGroupRuleArn: str


class NetworkInterfaceAssociation(TypedDict, total=False):
    AllocationId: str
    AssociationId: str
    IpOwnerId: str
    PublicDnsName: str
    PublicIp: str
    CustomerOwnedIp: str
    CarrierIp: str


class AttachmentEnaSrdUdpSpecification(TypedDict, total=False):
    EnaSrdUdpEnabled: bool


class AttachmentEnaSrdSpecification(TypedDict, total=False):
    EnaSrdEnabled: bool
    EnaSrdUdpSpecification: AttachmentEnaSrdUdpSpecification


class NetworkInterfaceAttachment(TypedDict, total=False):
    AttachTime: str
    AttachmentId: str
    DeleteOnTermination: bool
    DeviceIndex: int
    NetworkCardIndex: int
    InstanceId: str
    InstanceOwnerId: str
    Status: str
    EnaSrdSpecification: AttachmentEnaSrdSpecification
    EnaQueueCount: int


class ConnectionTrackingConfiguration(TypedDict, total=False):
    TcpEstablishedTimeout: int
    UdpStreamTimeout: int
    UdpTimeout: int


class GroupIdentifier(TypedDict, total=False):
    GroupId: str
    GroupName: str


class NetworkInterfaceIpv6Address(TypedDict, total=False):
    Ipv6Address: str
    PublicIpv6DnsName: str
    IsPrimaryIpv6: bool


class PublicIpDnsNameOptions(TypedDict, total=False):
    DnsHostnameType: str
    PublicIpv4DnsName: str
    PublicIpv6DnsName: str
    PublicDualStackDnsName: str


class NetworkInterfacePrivateIpAddress(TypedDict, total=False):
    Association: NetworkInterfaceAssociation
    Primary: bool
    PrivateDnsName: str
    PrivateIpAddress: str


class Ipv4PrefixSpecification(TypedDict, total=False):
    Ipv4Prefix: str


class Ipv6PrefixSpecification(TypedDict, total=False):
    Ipv6Prefix: str


class OperatorResponse(TypedDict, total=False):
    Managed: bool
    Principal: str
    HiddenByDefault: bool


class NetworkInterface(TypedDict, total=False):
    Association: NetworkInterfaceAssociation
    Attachment: NetworkInterfaceAttachment
    AvailabilityZone: str
    ConnectionTrackingConfiguration: ConnectionTrackingConfiguration
    Description: str
    Groups: list[GroupIdentifier]
    InterfaceType: str
    Ipv6Addresses: list[NetworkInterfaceIpv6Address]
    MacAddress: str
    NetworkInterfaceId: str
    OutpostArn: str
    OwnerId: str
    PrivateDnsName: str
    PublicDnsName: str
    PublicIpDnsNameOptions: PublicIpDnsNameOptions
    PrivateIpAddress: str
    PrivateIpAddresses: list[NetworkInterfacePrivateIpAddress]
    Ipv4Prefixes: list[Ipv4PrefixSpecification]
    Ipv6Prefixes: list[Ipv6PrefixSpecification]
    RequesterId: str
    RequesterManaged: bool
    SourceDestCheck: bool
    Status: str
    SubnetId: str
    TagSet: list[Ec2Tag]
    VpcId: str
    DenyAllIgwTraffic: bool
    Ipv6Native: bool
    Ipv6Address: str
    Operator: OperatorResponse
    AssociatedSubnets: list[str]
    AvailabilityZoneId: str


class InternetGatewayAttachment(TypedDict, total=False):
    State: str
    VpcId: str


class InternetGateway(TypedDict, total=False):
    Attachments: list[InternetGatewayAttachment]
    InternetGatewayId: str
    OwnerId: str
    Tags: list[Ec2Tag]


class NatGatewayAddress(TypedDict, total=False):
    AllocationId: str
    NetworkInterfaceId: str
    PrivateIp: str
    PublicIp: str
    AssociationId: str
    IsPrimary: bool
    FailureMessage: str
    Status: str
    AvailabilityZone: str
    AvailabilityZoneId: str


class ProvisionedBandwidth(TypedDict, total=False):
    ProvisionTime: str
    Provisioned: str
    RequestTime: str
    Requested: str
    Status: str


class NatGatewayAttachedAppliance(TypedDict, total=False):
    Type: str
    ApplianceArn: str
    VpcEndpointId: str
    AttachmentState: str
    ModificationState: str
    FailureCode: str
    FailureMessage: str


class NatGateway(TypedDict, total=False):
    CreateTime: str
    DeleteTime: str
    FailureCode: str
    FailureMessage: str
    NatGatewayAddresses: list[NatGatewayAddress]
    NatGatewayId: str
    ProvisionedBandwidth: ProvisionedBandwidth
    State: str
    SubnetId: str
    VpcId: str
    Tags: list[Ec2Tag]
    ConnectivityType: str
    AvailabilityMode: str
    AutoScalingIps: str
    AutoProvisionZones: str
    AttachedAppliances: list[NatGatewayAttachedAppliance]
    RouteTableId: str


class Address(TypedDict, total=False):
    AllocationId: str
    AssociationId: str
    Domain: str
    NetworkInterfaceId: str
    NetworkInterfaceOwnerId: str
    PrivateIpAddress: str
    Tags: list[Ec2Tag]
    PublicIpv4Pool: str
    NetworkBorderGroup: str
    CustomerOwnedIp: str
    CustomerOwnedIpv4Pool: str
    CarrierIp: str
    SubnetId: str
    ServiceManaged: str
    InstanceId: str
    PublicIp: str


class RouteTableAssociationState(TypedDict, total=False):
    State: str
    StatusMessage: str


class RouteTableAssociation(TypedDict, total=False):
    Main: bool
    RouteTableAssociationId: str
    RouteTableId: str
    SubnetId: str
    GatewayId: str
    PublicIpv4Pool: str
    AssociationState: RouteTableAssociationState


class PropagatingVgw(TypedDict, total=False):
    GatewayId: str


class IgwFirewall(TypedDict, total=False):
    FirewallArn: str
    Status: str


class Route(TypedDict, total=False):
    DestinationCidrBlock: str
    DestinationIpv6CidrBlock: str
    DestinationPrefixListId: str
    EgressOnlyInternetGatewayId: str
    GatewayId: str
    InstanceId: str
    InstanceOwnerId: str
    NatGatewayId: str
    TransitGatewayId: str
    LocalGatewayId: str
    CarrierGatewayId: str
    NetworkInterfaceId: str
    Origin: str
    State: str
    VpcPeeringConnectionId: str
    CoreNetworkArn: str
    OdbNetworkArn: str
    IpAddress: str
    IgwFirewall: IgwFirewall


class RouteTable(TypedDict, total=False):
    Associations: list[RouteTableAssociation]
    PropagatingVgws: list[PropagatingVgw]
    RouteTableId: str
    Routes: list[Route]
    Tags: list[Ec2Tag]
    VpcId: str
    OwnerId: str


class IcmpTypeCode(TypedDict, total=False):
    Code: int
    Type: int


class PortRange(TypedDict, total=False):
    From: int
    To: int


class NetworkAclEntry(TypedDict, total=False):
    CidrBlock: str
    Egress: bool
    IcmpTypeCode: IcmpTypeCode
    Ipv6CidrBlock: str
    PortRange: PortRange
    Protocol: str
    RuleAction: str
    RuleNumber: int


class NetworkAclAssociation(TypedDict, total=False):
    NetworkAclAssociationId: str
    NetworkAclId: str
    SubnetId: str


class NetworkAcl(TypedDict, total=False):
    Associations: list[NetworkAclAssociation]
    Entries: list[NetworkAclEntry]
    IsDefault: bool
    NetworkAclId: str
    Tags: list[Ec2Tag]
    VpcId: str
    OwnerId: str


class AttributeValue(TypedDict, total=False):
    Value: str


class DhcpConfiguration(TypedDict, total=False):
    Key: str
    Values: list[AttributeValue]


class DhcpOptions(TypedDict, total=False):
    OwnerId: str
    Tags: list[Ec2Tag]
    DhcpOptionsId: str
    DhcpConfigurations: list[DhcpConfiguration]


# -- what the store keeps: the wire shapes plus lamina's bookkeeping keys ------------------------


class StoredNatGateway(NatGateway, total=False):
    """A NAT gateway as stored: when its pending (or deleting) state ends, why it will fail, when
    it was deleted (or failed), in epoch milliseconds."""

    _due_ms: int
    _failure: list[str]  # [FailureCode, FailureMessage], decided at creation
    _gone_ms: int


class StoredAddress(Address, total=False):
    """An Elastic IP as stored: the NAT gateway it is associated with, if any."""

    _nat: str


class StoredDhcpOptions(DhcpOptions, total=False):
    """A DHCP option set as stored: whether it is the one EC2 made for the region (new VPCs get it)."""

    _default: bool


# A stored resource body of any kind (what ``Ec2Tx.update`` writes back).
StoredResource = (
    Vpc
    | Subnet
    | SecurityGroup
    | InternetGateway
    | StoredAddress
    | StoredNatGateway
    | RouteTable
    | NetworkInterface
    | NetworkAcl
    | StoredDhcpOptions
)

# Which botocore shape each wire class mirrors: (service, shape name).
SHAPES: dict[type, tuple[str, str]] = {
    VpcCidrBlockState: ("ec2", "VpcCidrBlockState"),
    VpcIpv6CidrBlockAssociation: ("ec2", "VpcIpv6CidrBlockAssociation"),
    VpcCidrBlockAssociation: ("ec2", "VpcCidrBlockAssociation"),
    VpcEncryptionControlExclusion: ("ec2", "VpcEncryptionControlExclusion"),
    VpcEncryptionControlExclusions: ("ec2", "VpcEncryptionControlExclusions"),
    Ec2Tag: ("ec2", "Tag"),
    VpcEncryptionControl: ("ec2", "VpcEncryptionControl"),
    BlockPublicAccessStates: ("ec2", "BlockPublicAccessStates"),
    NetworkFirewallAssociation: ("ec2", "NetworkFirewallAssociation"),
    Vpc: ("ec2", "Vpc"),
    SubnetCidrBlockState: ("ec2", "SubnetCidrBlockState"),
    SubnetIpv6CidrBlockAssociation: ("ec2", "SubnetIpv6CidrBlockAssociation"),
    PrivateDnsNameOptionsOnLaunch: ("ec2", "PrivateDnsNameOptionsOnLaunch"),
    Subnet: ("ec2", "Subnet"),
    UserIdGroupPair: ("ec2", "UserIdGroupPair"),
    IpRange: ("ec2", "IpRange"),
    Ipv6Range: ("ec2", "Ipv6Range"),
    PrefixListId: ("ec2", "PrefixListId"),
    IpPermission: ("ec2", "IpPermission"),
    SecurityGroup: ("ec2", "SecurityGroup"),
    RevokedSecurityGroupRule: ("ec2", "RevokedSecurityGroupRule"),
    ReferencedSecurityGroup: ("ec2", "ReferencedSecurityGroup"),
    SecurityGroupRule: ("ec2", "SecurityGroupRule"),
    NetworkInterfaceAssociation: ("ec2", "NetworkInterfaceAssociation"),
    AttachmentEnaSrdUdpSpecification: ("ec2", "AttachmentEnaSrdUdpSpecification"),
    AttachmentEnaSrdSpecification: ("ec2", "AttachmentEnaSrdSpecification"),
    NetworkInterfaceAttachment: ("ec2", "NetworkInterfaceAttachment"),
    ConnectionTrackingConfiguration: ("ec2", "ConnectionTrackingConfiguration"),
    GroupIdentifier: ("ec2", "GroupIdentifier"),
    NetworkInterfaceIpv6Address: ("ec2", "NetworkInterfaceIpv6Address"),
    PublicIpDnsNameOptions: ("ec2", "PublicIpDnsNameOptions"),
    NetworkInterfacePrivateIpAddress: ("ec2", "NetworkInterfacePrivateIpAddress"),
    Ipv4PrefixSpecification: ("ec2", "Ipv4PrefixSpecification"),
    Ipv6PrefixSpecification: ("ec2", "Ipv6PrefixSpecification"),
    OperatorResponse: ("ec2", "OperatorResponse"),
    NetworkInterface: ("ec2", "NetworkInterface"),
    InternetGatewayAttachment: ("ec2", "InternetGatewayAttachment"),
    InternetGateway: ("ec2", "InternetGateway"),
    NatGatewayAddress: ("ec2", "NatGatewayAddress"),
    ProvisionedBandwidth: ("ec2", "ProvisionedBandwidth"),
    NatGatewayAttachedAppliance: ("ec2", "NatGatewayAttachedAppliance"),
    NatGateway: ("ec2", "NatGateway"),
    Address: ("ec2", "Address"),
    RouteTableAssociationState: ("ec2", "RouteTableAssociationState"),
    RouteTableAssociation: ("ec2", "RouteTableAssociation"),
    PropagatingVgw: ("ec2", "PropagatingVgw"),
    IgwFirewall: ("ec2", "IgwFirewall"),
    Route: ("ec2", "Route"),
    RouteTable: ("ec2", "RouteTable"),
    IcmpTypeCode: ("ec2", "IcmpTypeCode"),
    PortRange: ("ec2", "PortRange"),
    NetworkAclEntry: ("ec2", "NetworkAclEntry"),
    NetworkAclAssociation: ("ec2", "NetworkAclAssociation"),
    NetworkAcl: ("ec2", "NetworkAcl"),
    AttributeValue: ("ec2", "AttributeValue"),
    DhcpConfiguration: ("ec2", "DhcpConfiguration"),
    DhcpOptions: ("ec2", "DhcpOptions"),
}

# The stored classes, each with the wire class it extends.
STORED: dict[type, type] = {
    StoredNatGateway: NatGateway,
    StoredAddress: Address,
    StoredDhcpOptions: DhcpOptions,
}
