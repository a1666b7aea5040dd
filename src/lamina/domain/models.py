"""AWS-shaped records lamina stores and answers with, as TypedDicts in AWS's casing (pure).

Each TypedDict mirrors one botocore shape member for member, in the model's order (the wire
serializer renders in that order; tests/unit/test_models.py checks every class against botocore
so that a model update that adds or renames a member is noticed). They are ``total=False``
because AWS's output shapes have no required members and lamina fills them in stages; the
types say what lamina stores: timestamps are the strings already rendered for the wire.

Where a class name would shadow a builtin, the botocore shape name differs; ``SHAPES`` maps
every class to the ``(service, shape)`` it mirrors.
"""

from __future__ import annotations

from typing import TypedDict

# -- Lambda: FunctionConfiguration and what it nests ------------------------------------------


class VpcConfigResponse(TypedDict, total=False):
    SubnetIds: list[str]
    SecurityGroupIds: list[str]
    VpcId: str
    Ipv6AllowedForDualStack: bool


class DeadLetterConfig(TypedDict, total=False):
    TargetArn: str


class EnvironmentVariablesError(TypedDict, total=False):
    ErrorCode: str
    Message: str


class EnvironmentResponse(TypedDict, total=False):
    Variables: dict[str, str]
    Error: EnvironmentVariablesError


class TracingConfigResponse(TypedDict, total=False):
    Mode: str


class Layer(TypedDict, total=False):
    Arn: str
    CodeSize: int
    SigningProfileVersionArn: str
    SigningJobArn: str


class S3FilesConfig(TypedDict, total=False):
    DirectS3Read: str


class FileSystemConfig(TypedDict, total=False):
    Arn: str
    LocalMountPath: str
    S3FilesConfig: S3FilesConfig


class ImageConfig(TypedDict, total=False):
    EntryPoint: list[str]
    Command: list[str]
    WorkingDirectory: str


class ImageConfigError(TypedDict, total=False):
    ErrorCode: str
    Message: str


class ImageConfigResponse(TypedDict, total=False):
    ImageConfig: ImageConfig
    Error: ImageConfigError


class EphemeralStorage(TypedDict, total=False):
    Size: int


class SnapStartResponse(TypedDict, total=False):
    ApplyOn: str
    OptimizationStatus: str


class RuntimeVersionError(TypedDict, total=False):
    ErrorCode: str
    Message: str


class RuntimeVersionConfig(TypedDict, total=False):
    RuntimeVersionArn: str
    Error: RuntimeVersionError


class LoggingConfig(TypedDict, total=False):
    LogFormat: str
    ApplicationLogLevel: str
    SystemLogLevel: str
    LogGroup: str


class TenancyConfig(TypedDict, total=False):
    TenantIsolationMode: str


class LambdaManagedInstancesCapacityProviderConfig(TypedDict, total=False):
    CapacityProviderArn: str
    PerExecutionEnvironmentMaxConcurrency: int
    ExecutionEnvironmentMemoryGiBPerVCpu: float


class CapacityProviderConfig(TypedDict, total=False):
    LambdaManagedInstancesCapacityProviderConfig: LambdaManagedInstancesCapacityProviderConfig


class DurableConfig(TypedDict, total=False):
    KMSKeyArn: str
    RetentionPeriodInDays: int
    ExecutionTimeout: int


class FunctionRuntimeConfig(TypedDict, total=False):
    RuntimeArn: str
    RuntimeAlias: str


class AcceleratorConfig(TypedDict, total=False):
    AcceleratorMemorySize: int


class FunctionConfiguration(TypedDict, total=False):
    FunctionName: str
    FunctionArn: str
    Runtime: str
    Role: str
    Handler: str
    CodeSize: int
    Description: str
    Timeout: int
    MemorySize: int
    LastModified: str
    CodeSha256: str
    Version: str
    VpcConfig: VpcConfigResponse
    DeadLetterConfig: DeadLetterConfig
    Environment: EnvironmentResponse
    KMSKeyArn: str
    TracingConfig: TracingConfigResponse
    MasterArn: str
    RevisionId: str
    Layers: list[Layer]
    State: str
    StateReason: str
    StateReasonCode: str
    LastUpdateStatus: str
    LastUpdateStatusReason: str
    LastUpdateStatusReasonCode: str
    FileSystemConfigs: list[FileSystemConfig]
    SigningProfileVersionArn: str
    SigningJobArn: str
    PackageType: str
    ImageConfigResponse: ImageConfigResponse
    Architectures: list[str]
    EphemeralStorage: EphemeralStorage
    SnapStart: SnapStartResponse
    RuntimeVersionConfig: RuntimeVersionConfig
    LoggingConfig: LoggingConfig
    TenancyConfig: TenancyConfig
    CapacityProviderConfig: CapacityProviderConfig
    ConfigSha256: str
    DurableConfig: DurableConfig
    RuntimeConfig: FunctionRuntimeConfig
    AcceleratorConfig: AcceleratorConfig


# -- Lambda: the other outputs, and inputs lamina reads as a whole ------------------------------


class LayerVersionsListItem(TypedDict, total=False):
    LayerVersionArn: str
    Version: int
    Description: str
    CreatedDate: str
    CompatibleArchitectures: list[str]
    CompatibleRuntimes: list[str]
    LicenseInfo: str


class LayersListItem(TypedDict, total=False):
    LayerName: str
    LayerArn: str
    LatestMatchingVersion: LayerVersionsListItem


class ResolvedS3Object(TypedDict, total=False):
    S3Bucket: str
    S3Key: str
    S3ObjectVersion: str


class LayerVersionContentOutput(TypedDict, total=False):
    Location: str
    CodeSha256: str
    CodeSize: int
    SigningProfileVersionArn: str
    SigningJobArn: str
    ResolvedS3Object: ResolvedS3Object


class GetLayerVersionResponse(TypedDict, total=False):
    Content: LayerVersionContentOutput
    LayerArn: str
    LayerVersionArn: str
    Description: str
    CreatedDate: str
    Version: int
    CompatibleArchitectures: list[str]
    CompatibleRuntimes: list[str]
    LicenseInfo: str


class FunctionCodeLocationError(TypedDict, total=False):
    ErrorCode: str
    Message: str


class FunctionCodeLocation(TypedDict, total=False):
    RepositoryType: str
    Location: str
    ImageUri: str
    ResolvedImageUri: str
    ResolvedS3Object: ResolvedS3Object
    SourceKMSKeyArn: str
    Error: FunctionCodeLocationError


class TagsError(TypedDict, total=False):
    ErrorCode: str
    Message: str


class Concurrency(TypedDict, total=False):
    ReservedConcurrentExecutions: int


class PutProvisionedConcurrencyConfigResponse(TypedDict, total=False):
    RequestedProvisionedConcurrentExecutions: int
    AllocatedProvisionedConcurrentExecutions: int
    AvailableProvisionedConcurrentExecutions: int
    Status: str
    StatusReason: str
    LastModified: str


class GetProvisionedConcurrencyConfigResponse(TypedDict, total=False):
    RequestedProvisionedConcurrentExecutions: int
    AvailableProvisionedConcurrentExecutions: int
    AllocatedProvisionedConcurrentExecutions: int
    Status: str
    StatusReason: str
    LastModified: str


class ProvisionedConcurrencyConfigListItem(TypedDict, total=False):
    FunctionArn: str
    RequestedProvisionedConcurrentExecutions: int
    AvailableProvisionedConcurrentExecutions: int
    AllocatedProvisionedConcurrentExecutions: int
    Status: str
    StatusReason: str
    LastModified: str


class ListProvisionedConcurrencyConfigsResponse(TypedDict, total=False):
    ProvisionedConcurrencyConfigs: list[ProvisionedConcurrencyConfigListItem]
    NextMarker: str


class GetFunctionResponse(TypedDict, total=False):
    Configuration: FunctionConfiguration
    Code: FunctionCodeLocation
    Tags: dict[str, str]
    TagsError: TagsError
    Concurrency: Concurrency


class VpcConfig(TypedDict, total=False):
    SubnetIds: list[str]
    SecurityGroupIds: list[str]
    Ipv6AllowedForDualStack: bool


class ListFunctionsResponse(TypedDict, total=False):
    NextMarker: str
    Functions: list[FunctionConfiguration]


class ListVersionsByFunctionResponse(TypedDict, total=False):
    NextMarker: str
    Versions: list[FunctionConfiguration]


class AccountLimit(TypedDict, total=False):
    TotalCodeSize: int
    CodeSizeUnzipped: int
    CodeSizeZipped: int
    ConcurrentExecutions: int
    UnreservedConcurrentExecutions: int


class AccountUsage(TypedDict, total=False):
    TotalCodeSize: int
    FunctionCount: int


class GetAccountSettingsResponse(TypedDict, total=False):
    AccountLimit: AccountLimit
    AccountUsage: AccountUsage


class InvocationResponse(TypedDict, total=False):
    StatusCode: int
    FunctionError: str
    LogResult: str
    Payload: bytes
    ExecutedVersion: str
    DurableExecutionArn: str


class ListLayerVersionsResponse(TypedDict, total=False):
    NextMarker: str
    LayerVersions: list[LayerVersionsListItem]


class ListLayersResponse(TypedDict, total=False):
    NextMarker: str
    Layers: list[LayersListItem]


class AddLayerVersionPermissionResponse(TypedDict, total=False):
    Statement: str
    RevisionId: str


class GetLayerVersionPolicyResponse(TypedDict, total=False):
    Policy: str
    RevisionId: str


class AddPermissionResponse(TypedDict, total=False):
    Statement: str


class GetPolicyResponse(TypedDict, total=False):
    Policy: str
    RevisionId: str


class PutResourcePolicyResponse(TypedDict, total=False):
    Policy: str
    RevisionId: str


class GetResourcePolicyResponse(TypedDict, total=False):
    Policy: str
    RevisionId: str


# -- Lambda function URLs ----------------------------------------------------------------------


class Cors(TypedDict, total=False):
    AllowCredentials: bool
    AllowHeaders: list[str]
    AllowMethods: list[str]
    AllowOrigins: list[str]
    ExposeHeaders: list[str]
    MaxAge: int


class FunctionUrlConfig(TypedDict, total=False):
    FunctionUrl: str
    FunctionArn: str
    CreationTime: str
    LastModifiedTime: str
    Cors: Cors
    AuthType: str
    InvokeMode: str


class CreateFunctionUrlConfigResponse(TypedDict, total=False):
    FunctionUrl: str
    FunctionArn: str
    AuthType: str
    Cors: Cors
    CreationTime: str
    InvokeMode: str


class GetFunctionUrlConfigResponse(TypedDict, total=False):
    FunctionUrl: str
    FunctionArn: str
    AuthType: str
    Cors: Cors
    CreationTime: str
    LastModifiedTime: str
    InvokeMode: str


class UpdateFunctionUrlConfigResponse(TypedDict, total=False):
    FunctionUrl: str
    FunctionArn: str
    AuthType: str
    Cors: Cors
    CreationTime: str
    LastModifiedTime: str
    InvokeMode: str


class ListFunctionUrlConfigsResponse(TypedDict, total=False):
    FunctionUrlConfigs: list[FunctionUrlConfig]
    NextMarker: str


class ListTagsResponse(TypedDict, total=False):
    Tags: dict[str, str]


class AliasRoutingConfiguration(TypedDict, total=False):
    AdditionalVersionWeights: dict[str, float]


class AliasConfiguration(TypedDict, total=False):
    AliasArn: str
    Name: str
    FunctionVersion: str
    Description: str
    RoutingConfig: AliasRoutingConfiguration
    RevisionId: str


class ListAliasesResponse(TypedDict, total=False):
    NextMarker: str
    Aliases: list[AliasConfiguration]


# -- IAM -------------------------------------------------------------------------------------


class AttachedPermissionsBoundary(TypedDict, total=False):
    PermissionsBoundaryType: str
    PermissionsBoundaryArn: str


class Tag(TypedDict, total=False):
    Key: str
    Value: str


class RoleLastUsed(TypedDict, total=False):
    LastUsedDate: str
    Region: str


class SourceRoleTemplate(TypedDict, total=False):
    TemplateArn: str
    TemplateMinorVersion: int


class Role(TypedDict, total=False):
    Path: str
    RoleName: str
    RoleId: str
    Arn: str
    CreateDate: str
    AssumeRolePolicyDocument: str
    Description: str
    MaxSessionDuration: int
    MaxSigninSessionDuration: int
    PermissionsBoundary: AttachedPermissionsBoundary
    Tags: list[Tag]
    RoleLastUsed: RoleLastUsed
    SourceRoleTemplate: SourceRoleTemplate


class Policy(TypedDict, total=False):
    PolicyName: str
    PolicyId: str
    Arn: str
    Path: str
    DefaultVersionId: str
    AttachmentCount: int
    PermissionsBoundaryUsageCount: int
    IsAttachable: bool
    Description: str
    CreateDate: str
    UpdateDate: str
    Tags: list[Tag]


class User(TypedDict, total=False):
    Path: str
    UserName: str
    UserId: str
    Arn: str
    CreateDate: str
    PasswordLastUsed: str
    PermissionsBoundary: AttachedPermissionsBoundary
    Tags: list[Tag]


class Group(TypedDict, total=False):
    Path: str
    GroupName: str
    GroupId: str
    Arn: str
    CreateDate: str


class AccessKeyMetadata(TypedDict, total=False):
    UserName: str
    AccessKeyId: str
    Status: str
    CreateDate: str


# -- asynchronous invocation configuration ------------------------------------------------------------


class OnSuccess(TypedDict, total=False):
    Destination: str


class OnFailure(TypedDict, total=False):
    Destination: str


class DestinationConfig(TypedDict, total=False):
    OnSuccess: OnSuccess
    OnFailure: OnFailure


class FunctionEventInvokeConfig(TypedDict, total=False):
    # Lambda's ``Date`` shape: epoch seconds on the wire (not the string ``Timestamp`` of functions).
    LastModified: float
    FunctionArn: str
    MaximumRetryAttempts: int
    MaximumEventAgeInSeconds: int
    DestinationConfig: DestinationConfig


class ListFunctionEventInvokeConfigsResponse(TypedDict, total=False):
    FunctionEventInvokeConfigs: list[FunctionEventInvokeConfig]
    NextMarker: str


# -- code signing -------------------------------------------------------------------------------------


class AllowedPublishers(TypedDict, total=False):
    SigningProfileVersionArns: list[str]


class CodeSigningPolicies(TypedDict, total=False):
    UntrustedArtifactOnDeployment: str


class CodeSigningConfig(TypedDict, total=False):
    CodeSigningConfigId: str
    CodeSigningConfigArn: str
    Description: str
    AllowedPublishers: AllowedPublishers
    CodeSigningPolicies: CodeSigningPolicies
    LastModified: str


# Which botocore shape each class mirrors: (service, shape name).
SHAPES: dict[type, tuple[str, str]] = {
    PutProvisionedConcurrencyConfigResponse: ("lambda", "PutProvisionedConcurrencyConfigResponse"),
    GetProvisionedConcurrencyConfigResponse: ("lambda", "GetProvisionedConcurrencyConfigResponse"),
    ProvisionedConcurrencyConfigListItem: ("lambda", "ProvisionedConcurrencyConfigListItem"),
    ListProvisionedConcurrencyConfigsResponse: ("lambda", "ListProvisionedConcurrencyConfigsResponse"),
    VpcConfigResponse: ("lambda", "VpcConfigResponse"),
    DeadLetterConfig: ("lambda", "DeadLetterConfig"),
    EnvironmentVariablesError: ("lambda", "EnvironmentError"),
    EnvironmentResponse: ("lambda", "EnvironmentResponse"),
    TracingConfigResponse: ("lambda", "TracingConfigResponse"),
    Layer: ("lambda", "Layer"),
    S3FilesConfig: ("lambda", "S3FilesConfig"),
    FileSystemConfig: ("lambda", "FileSystemConfig"),
    ImageConfig: ("lambda", "ImageConfig"),
    ImageConfigError: ("lambda", "ImageConfigError"),
    ImageConfigResponse: ("lambda", "ImageConfigResponse"),
    EphemeralStorage: ("lambda", "EphemeralStorage"),
    SnapStartResponse: ("lambda", "SnapStartResponse"),
    RuntimeVersionError: ("lambda", "RuntimeVersionError"),
    RuntimeVersionConfig: ("lambda", "RuntimeVersionConfig"),
    LoggingConfig: ("lambda", "LoggingConfig"),
    TenancyConfig: ("lambda", "TenancyConfig"),
    LambdaManagedInstancesCapacityProviderConfig: ("lambda", "LambdaManagedInstancesCapacityProviderConfig"),
    CapacityProviderConfig: ("lambda", "CapacityProviderConfig"),
    DurableConfig: ("lambda", "DurableConfig"),
    FunctionRuntimeConfig: ("lambda", "FunctionRuntimeConfig"),
    AcceleratorConfig: ("lambda", "AcceleratorConfig"),
    OnSuccess: ("lambda", "OnSuccess"),
    OnFailure: ("lambda", "OnFailure"),
    DestinationConfig: ("lambda", "DestinationConfig"),
    FunctionEventInvokeConfig: ("lambda", "FunctionEventInvokeConfig"),
    ListFunctionEventInvokeConfigsResponse: ("lambda", "ListFunctionEventInvokeConfigsResponse"),
    AllowedPublishers: ("lambda", "AllowedPublishers"),
    CodeSigningPolicies: ("lambda", "CodeSigningPolicies"),
    CodeSigningConfig: ("lambda", "CodeSigningConfig"),
    FunctionConfiguration: ("lambda", "FunctionConfiguration"),
    LayerVersionsListItem: ("lambda", "LayerVersionsListItem"),
    LayersListItem: ("lambda", "LayersListItem"),
    ResolvedS3Object: ("lambda", "ResolvedS3Object"),
    LayerVersionContentOutput: ("lambda", "LayerVersionContentOutput"),
    GetLayerVersionResponse: ("lambda", "GetLayerVersionResponse"),
    FunctionCodeLocationError: ("lambda", "FunctionCodeLocationError"),
    FunctionCodeLocation: ("lambda", "FunctionCodeLocation"),
    TagsError: ("lambda", "TagsError"),
    Concurrency: ("lambda", "Concurrency"),
    GetFunctionResponse: ("lambda", "GetFunctionResponse"),
    VpcConfig: ("lambda", "VpcConfig"),
    ListFunctionsResponse: ("lambda", "ListFunctionsResponse"),
    ListVersionsByFunctionResponse: ("lambda", "ListVersionsByFunctionResponse"),
    AccountLimit: ("lambda", "AccountLimit"),
    AccountUsage: ("lambda", "AccountUsage"),
    GetAccountSettingsResponse: ("lambda", "GetAccountSettingsResponse"),
    InvocationResponse: ("lambda", "InvocationResponse"),
    ListLayerVersionsResponse: ("lambda", "ListLayerVersionsResponse"),
    ListLayersResponse: ("lambda", "ListLayersResponse"),
    AddLayerVersionPermissionResponse: ("lambda", "AddLayerVersionPermissionResponse"),
    GetLayerVersionPolicyResponse: ("lambda", "GetLayerVersionPolicyResponse"),
    AddPermissionResponse: ("lambda", "AddPermissionResponse"),
    GetPolicyResponse: ("lambda", "GetPolicyResponse"),
    PutResourcePolicyResponse: ("lambda", "PutResourcePolicyResponse"),
    GetResourcePolicyResponse: ("lambda", "GetResourcePolicyResponse"),
    Cors: ("lambda", "Cors"),
    FunctionUrlConfig: ("lambda", "FunctionUrlConfig"),
    CreateFunctionUrlConfigResponse: ("lambda", "CreateFunctionUrlConfigResponse"),
    GetFunctionUrlConfigResponse: ("lambda", "GetFunctionUrlConfigResponse"),
    UpdateFunctionUrlConfigResponse: ("lambda", "UpdateFunctionUrlConfigResponse"),
    ListFunctionUrlConfigsResponse: ("lambda", "ListFunctionUrlConfigsResponse"),
    ListTagsResponse: ("lambda", "ListTagsResponse"),
    AliasRoutingConfiguration: ("lambda", "AliasRoutingConfiguration"),
    AliasConfiguration: ("lambda", "AliasConfiguration"),
    ListAliasesResponse: ("lambda", "ListAliasesResponse"),
    AttachedPermissionsBoundary: ("iam", "AttachedPermissionsBoundary"),
    Tag: ("iam", "Tag"),
    RoleLastUsed: ("iam", "RoleLastUsed"),
    SourceRoleTemplate: ("iam", "SourceRoleTemplate"),
    Role: ("iam", "Role"),
    Policy: ("iam", "Policy"),
    User: ("iam", "User"),
    Group: ("iam", "Group"),
    AccessKeyMetadata: ("iam", "AccessKeyMetadata"),
}
