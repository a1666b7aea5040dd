"""Lambda's wire quirks that botocore's model does not carry (data from real AWS recordings)."""

from __future__ import annotations

from lamina.domain.arns import LAYER_NAME_PATTERN, LAYER_VERSION_ARN_PATTERN
from lamina.domain.constraints import MemberOverride
from lamina.domain.function_tags import TAGGABLE_RESOURCE_PATTERN

# The runtime enum as Lambda's ListLayers/ListLayerVersions print it (order is AWS's own).
LIST_RUNTIME_ENUM_TEXT = (
    "[ruby3.5, ruby2.6, dotnetcore1.0, python3.7, nodejs8.10, nasa, ruby2.7, python2.7-greengrass, dotnetcore2.0, "
    "python3.8, java21, dotnet6, dotnetcore2.1, python3.9, java11, nodejs6.10, provided, dotnetcore3.1, dotnet8, "
    "java25, java17, nodejs, nodejs4.3, java8.al2, go1.x, dotnet10, nodejs20.x, go1.9, byol, nodejs10.x, "
    "provided.al2023, nodejs22.x, python3.10, java8, nodejs12.x, python3.11, nodejs24.x, nodejs8.x, python3.12, "
    "nodejs14.x, nodejs8.9, nodejs26.x, python3.13, python3.14, nodejs16.x, python3.15, provided.al2, "
    "nodejs4.3-edge, nodejs18.x, ruby3.2, python3.4, ruby3.3, ruby3.4, ruby2.5, python3.6, python2.7]"
)
LIST_RUNTIMES = frozenset(LIST_RUNTIME_ENUM_TEXT.strip("[]").split(", "))

# PublishLayerVersion lists only the supported runtimes, but accepts deprecated ones too.
PUBLISH_RUNTIME_ENUM_TEXT = (
    "[nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, nodejs22.x, java25, "
    "python3.10, python3.11, java21, ruby3.3, ruby3.4, ruby3.2, python3.8, python3.9, java17, nodejs16.x, "
    "dotnet10, dotnet8, java11, dotnet6, nodejs18.x, provided.al2, java8.al2]"
)

_LAYER_NAME = MemberOverride(pattern=LAYER_NAME_PATTERN)
_TAGGABLE = MemberOverride(pattern=TAGGABLE_RESOURCE_PATTERN)
_LIST_FILTERS = {
    "layerName": _LAYER_NAME,
    "compatibleRuntime": MemberOverride(enum=LIST_RUNTIMES, enum_text=LIST_RUNTIME_ENUM_TEXT),
}

# VpcConfig lists: AWS prints the element constraints without "Member must not be null" (recorded).
_VPC = {
    "vpcConfig.subnetIds": MemberOverride(
        element_constraints="[Member must have length less than or equal to 1024, Member must have length greater "
        "than or equal to 0, Member must satisfy regular expression pattern: subnet-[0-9a-z]*]"
    ),
    "vpcConfig.securityGroupIds": MemberOverride(
        element_constraints="[Member must have length less than or equal to 1024, Member must have length greater "
        "than or equal to 0, Member must satisfy regular expression pattern: sg-[0-9a-zA-Z]*]"
    ),
}

# Destination ARNs: AWS's server pattern also takes EU sovereign-cloud regions ("eusc-"; recorded).
DESTINATION_ARN_PATTERN = (
    r"$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:"
    r"((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
)
_DESTINATIONS = {
    "destinationConfig.onSuccess.destination": MemberOverride(pattern=DESTINATION_ARN_PATTERN),
    "destinationConfig.onFailure.destination": MemberOverride(pattern=DESTINATION_ARN_PATTERN),
}

OVERRIDES: dict[str, dict[str, MemberOverride]] = {
    "PublishLayerVersion": {
        "layerName": _LAYER_NAME,
        "compatibleRuntimes": MemberOverride(
            element_message=f"Member must satisfy enum value set: {PUBLISH_RUNTIME_ENUM_TEXT}"
        ),
    },
    "GetLayerVersionByArn": {"arn": MemberOverride(pattern=LAYER_VERSION_ARN_PATTERN)},
    "ListLayers": _LIST_FILTERS,
    "ListLayerVersions": _LIST_FILTERS,
    "GetLayerVersion": {"layerName": _LAYER_NAME},
    "DeleteLayerVersion": {"layerName": _LAYER_NAME},
    "AddLayerVersionPermission": {"layerName": _LAYER_NAME},
    "GetLayerVersionPolicy": {"layerName": _LAYER_NAME},
    "RemoveLayerVersionPermission": {"layerName": _LAYER_NAME},
    "CreateFunction": {"layers": MemberOverride(pattern=LAYER_VERSION_ARN_PATTERN), **_VPC},
    "UpdateFunctionConfiguration": {"layers": MemberOverride(pattern=LAYER_VERSION_ARN_PATTERN), **_VPC},
    # Tagging: AWS's ``Resource`` pattern as its messages print it (recorded, TestLambdaTags).
    "TagResource": {"resource": _TAGGABLE},
    "UntagResource": {"resource": _TAGGABLE},
    "ListTags": {"resource": _TAGGABLE},
    "PutFunctionEventInvokeConfig": _DESTINATIONS,
    "UpdateFunctionEventInvokeConfig": _DESTINATIONS,
    # AWS prints this enum in its own order (recorded).
    "PutFunctionRecursionConfig": {
        "recursiveLoop": MemberOverride(
            enum=frozenset({"Terminate", "Allow"}), enum_text="[Terminate, Allow]"
        )
    },
}

# Largest request bodies AWS accepts (413 RequestEntityTooLargeException above).
MAX_REQUEST_BYTES = {
    "PublishLayerVersion": 69_905_067,
    "CreateFunction": 70_167_211,
    "UpdateFunctionCode": 70_167_211,
    "Invoke": 6_291_456,
    "InvokeWithResponseStream": 6_291_456,
}
WIRE_NAMES = {"Invoke": "InvokeFunction"}

# Member order of AWS's own input shapes (validation messages list errors in it).
VALIDATION_ORDER = {
    "PublishLayerVersion": (
        "layerName",
        "description",
        "content",
        "compatibleRuntimes",
        "licenseInfo",
        "compatibleArchitectures",
    ),
}
