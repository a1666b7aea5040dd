"""Lambda's rows of the authorization table (pure).

Facts from the Service Authorization Reference, "Actions, resources, and condition keys for AWS
Lambda": resource types ``function`` (``arn:aws:lambda:R:A:function:NAME``, plus ``:QUALIFIER`` for a
version or alias), ``layer`` (``...:layer:NAME``) and ``layerVersion`` (``...:layer:NAME:VERSION``);
the ``Invoke`` API is the ``lambda:InvokeFunction`` action and ``GetLayerVersionByArn`` is
``lambda:GetLayerVersion``; ``ListFunctions``, ``ListLayers``, ``ListLayerVersions`` and
``GetAccountSettings`` take no resource; the alias operations act on the alias
(``...:function:NAME:ALIAS``), ``ListAliases`` on the function. ``CreateFunction`` and ``UpdateFunctionConfiguration`` also
need ``iam:PassRole`` on the execution role (``iam:PassedToService`` = ``lambda.amazonaws.com``, the
reference's "API operations" table) and carry ``lambda:Layer``, ``lambda:VpcIds``,
``lambda:SubnetIds`` and ``lambda:SecurityGroupIds``; ``AddPermission`` carries ``lambda:Principal``.
The Lambda Developer Guide ("Using IAM condition keys for VPC settings") denies functions outside a VPC
with ``"Null": {"lambda:VpcIds": "true"}``, so those keys exist only when the request sets a VPC.
"""

from __future__ import annotations

from collections.abc import Mapping

from lamina.domain.actions_spec import (
    Call,
    Check,
    ContextValue,
    Extra,
    Spec,
    copy_text,
    multi,
    strings,
    tag_keys_in,
    tag_on_create,
    tags_in,
)
from lamina.domain.arns import PARTITION, layer_version_arn, parse_layer_arn
from lamina.domain.functions import split_function_name

LAMBDA_SERVICE = "lambda.amazonaws.com"


def function_location(call: Call) -> tuple[str, str, str, str | None]:
    """Region, account, name and qualifier of ``FunctionName``: a name, ``name:qualifier``, a partial
    ARN (``123456789012:function:name``, ``123456789012:name``, ``us-east-1:name``) or a full ARN,
    each optionally qualified, read by the handlers' own grammar
    (:func:`~lamina.domain.functions.split_function_name`). An ARN's account and region win over the
    caller's (a cross-account call acts on the owner's function); the ``Qualifier`` parameter applies
    when the name carries none. A value that is no function name is kept whole as the name (the
    handler answers it as not found)."""
    text = call.text("FunctionName") or ""
    parts = split_function_name(text)
    if parts is None:
        return call.region, call.account, text, call.text("Qualifier") or None
    return (
        parts.region or call.region,
        parts.account or call.account,
        parts.name,
        parts.qualifier or call.text("Qualifier") or None,
    )


def function(call: Call) -> str:
    """The function's ARN, qualified when the request names a version or alias."""
    region, account, name, qualifier = function_location(call)
    arn = f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def unqualified_function(call: Call) -> str:
    """The function's ARN without a qualifier (operations on the function itself)."""
    region, account, name, _ = function_location(call)
    return f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}"


def alias(call: Call) -> str:
    """``...:function:NAME:ALIAS`` from ``FunctionName`` and the alias ``Name`` (the alias
    operations act on the alias itself, a qualified function ARN)."""
    region, account, name, _ = function_location(call)
    return f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}:{call.text('Name') or ''}"


def code_signing_config(call: Call) -> str:
    """The ``CodeSigningConfigArn`` a request names (``arn:aws:lambda:R:A:code-signing-config:ID``)."""
    return call.text("CodeSigningConfigArn") or "*"


def layer(call: Call) -> str:
    """``arn:aws:lambda:R:A:layer:NAME`` from ``LayerName``, a name or a layer ARN (its owner's)."""
    text = call.text("LayerName") or ""
    region, account, name = call.region, call.account, text
    parts = text.split(":")
    if text.startswith("arn:") and len(parts) >= 7 and parts[5] == "layer":
        region, account, name = parts[3], parts[4], parts[6]
    return f"arn:{PARTITION}:lambda:{region}:{account}:layer:{name}"


def layer_version(call: Call) -> str:
    """``...:layer:NAME:VERSION`` from ``LayerName`` and ``VersionNumber``."""
    number = call.params.get("VersionNumber")
    if isinstance(number, bool) or not isinstance(number, int | str):
        number = ""
    return f"{layer(call)}:{number}"


def layer_version_by_arn(call: Call) -> str:
    """The layer version ``Arn`` names, its version number read as the handler reads it
    (``...:layer:x:01`` is version 1); the ARN as given when it is none."""
    text = call.text("Arn")
    ref = parse_layer_arn(text) if text else None
    if ref is None or ref.version is None:
        return text or layer_version(call)
    return layer_version_arn(ref.region, ref.account, ref.name, ref.version)


def function_settings(call: Call) -> Mapping[str, ContextValue]:
    """``lambda:Layer`` from ``Layers`` (each layer version's ARN as the handler reads it: ``:01`` is
    version 1); the VPC keys only when ``VpcConfig`` is given, the VPC ids read from the subnets (a
    subnet that does not exist adds no VPC)."""
    context = multi("lambda:Layer", (layer_version_text(text) for text in call.texts("Layers")))
    vpc = call.params.get("VpcConfig")
    if isinstance(vpc, Mapping):
        region, account, _, _ = function_location(call)
        subnets = strings(vpc.get("SubnetIds"))
        vpc_ids = (call.lookups.subnet_vpc(account, region, subnet) for subnet in subnets)
        context |= multi("lambda:VpcIds", (vpc_id for vpc_id in vpc_ids if vpc_id))
        context |= multi("lambda:SubnetIds", subnets)
        context |= multi("lambda:SecurityGroupIds", strings(vpc.get("SecurityGroupIds")))
    return context


def pass_role(call: Call) -> tuple[Check, ...]:
    """``iam:PassRole`` on the execution role, when the request names one."""
    role = call.text("Role")
    if role is None:
        return ()
    resource = role or f"arn:{PARTITION}:iam::{call.account}:role/"
    return (Check("iam:PassRole", resource, {"iam:PassedToService": LAMBDA_SERVICE}),)


def layer_version_text(text: str) -> str:
    """A layer version ARN with its number as a number; anything else as given."""
    ref = parse_layer_arn(text)
    if ref is None or ref.version is None:
        return text
    return layer_version_arn(ref.region, ref.account, ref.name, ref.version)


def layer_reads(call: Call) -> tuple[Check, ...]:
    """``lambda:GetLayerVersion`` on each layer version ``Layers`` adds to the function ("To add
    layers to your function, you need lambda:GetLayerVersion permission on the layer version",
    Lambda Developer Guide, layer permissions): another account's layer by its layer version
    policy, a layer of one's own account by one's identity policies. A member that is no layer
    version ARN adds no check (the handler answers it)."""
    found = (layer_version_text(text) for text in call.texts("Layers"))
    versions = (arn for arn in found if (ref := parse_layer_arn(arn)) is not None and ref.version is not None)
    return tuple(Check("lambda:GetLayerVersion", arn) for arn in dict.fromkeys(versions))


def url_auth_type(call: Call) -> Mapping[str, ContextValue]:
    """``lambda:FunctionUrlAuthType``: the AuthType the request sets or the URL has."""
    value = call.text("AuthType")
    return {"lambda:FunctionUrlAuthType": value} if value is not None else {}


def invoke_with_url(call: Call) -> tuple[Check, ...]:
    """``lambda:InvokeFunction`` on the function, with ``lambda:InvokedViaFunctionUrl`` true."""
    return (Check("lambda:InvokeFunction", function(call), {"lambda:InvokedViaFunctionUrl": "true"}),)


def policy_resource(call: Call) -> str:
    """The ``ResourceArn`` of PutResourcePolicy, GetResourcePolicy and DeleteResourcePolicy, as given
    (a function, version or alias ARN); without one (the validator then refuses the request), the
    caller's function ARN with no name."""
    return call.text("ResourceArn") or unqualified_function(call)


def on_policy_resource(*actions: str) -> Extra:
    """The further actions a whole-document policy operation needs on the same resource."""

    def checks(call: Call) -> tuple[Check, ...]:
        return tuple(Check(action, policy_resource(call)) for action in actions)

    return checks


def tagged_resource(call: Call) -> str:
    """The ARN ``Resource`` names, as given (TagResource, UntagResource, ListTags); without one (the
    validator then refuses the request), the caller's function ARN with no name."""
    return call.text("Resource") or unqualified_function(call)


TABLE: Mapping[str, Spec] = {
    # Functions
    "CreateFunction": Spec(
        "lambda:CreateFunction",
        unqualified_function,
        context=(function_settings, tags_in("Tags")),
        also=(pass_role, layer_reads, tag_on_create("lambda:TagResource", unqualified_function)),
    ),
    "GetFunction": Spec("lambda:GetFunction", function),
    "GetFunctionConfiguration": Spec("lambda:GetFunctionConfiguration", function),
    "ListFunctions": Spec("lambda:ListFunctions"),
    "ListVersionsByFunction": Spec("lambda:ListVersionsByFunction", unqualified_function),
    # These three change the function itself whatever qualifier its name carries (the handlers
    # ignore it): they are authorized on the function, as they act on it.
    "UpdateFunctionConfiguration": Spec(
        "lambda:UpdateFunctionConfiguration",
        unqualified_function,
        context=(function_settings,),
        also=(pass_role, layer_reads),
    ),
    "UpdateFunctionCode": Spec("lambda:UpdateFunctionCode", unqualified_function),
    "PublishVersion": Spec("lambda:PublishVersion", unqualified_function),
    "DeleteFunction": Spec("lambda:DeleteFunction", function),
    "GetAccountSettings": Spec("lambda:GetAccountSettings"),
    "Invoke": Spec("lambda:InvokeFunction", function),
    # AWS: "This operation requires permission for the lambda:InvokeFunction action."
    "InvokeWithResponseStream": Spec("lambda:InvokeFunction", function),
    # Function policies
    "AddPermission": Spec(
        "lambda:AddPermission", function, context=(copy_text("Principal", "lambda:Principal"),)
    ),
    "RemovePermission": Spec("lambda:RemovePermission", function),
    "GetPolicy": Spec("lambda:GetPolicy", function),
    # The whole document ("Working with resource-based policies in Lambda", Required permissions):
    # PutResourcePolicy also needs lambda:AddPermission and lambda:RemovePermission,
    # GetResourcePolicy lambda:GetPolicy, DeleteResourcePolicy lambda:RemovePermission, each on the
    # resource the ResourceArn names.
    "PutResourcePolicy": Spec(
        "lambda:PutResourcePolicy",
        policy_resource,
        also=(on_policy_resource("lambda:AddPermission", "lambda:RemovePermission"),),
    ),
    "GetResourcePolicy": Spec(
        "lambda:GetResourcePolicy", policy_resource, also=(on_policy_resource("lambda:GetPolicy"),)
    ),
    "DeleteResourcePolicy": Spec(
        "lambda:DeleteResourcePolicy", policy_resource, also=(on_policy_resource("lambda:RemovePermission"),)
    ),
    # Function URLs: the configuration operations carry the URL's AuthType
    # (lambda:FunctionUrlAuthType); InvokeFunctionUrl is what the URL endpoint authorizes an
    # AWS_IAM request as, and since October 2025 it needs lambda:InvokeFunction too ("Control
    # access to Lambda function URLs").
    "CreateFunctionUrlConfig": Spec("lambda:CreateFunctionUrlConfig", function, context=(url_auth_type,)),
    "GetFunctionUrlConfig": Spec("lambda:GetFunctionUrlConfig", function),
    "UpdateFunctionUrlConfig": Spec("lambda:UpdateFunctionUrlConfig", function, context=(url_auth_type,)),
    "DeleteFunctionUrlConfig": Spec("lambda:DeleteFunctionUrlConfig", function),
    "ListFunctionUrlConfigs": Spec("lambda:ListFunctionUrlConfigs", unqualified_function),
    "InvokeFunctionUrl": Spec(
        "lambda:InvokeFunctionUrl", function, context=(url_auth_type,), also=(invoke_with_url,)
    ),
    # Tags ("Actions, resources, and condition keys for AWS Lambda": TagResource takes
    # aws:RequestTag/* and aws:TagKeys, UntagResource aws:TagKeys; every action on a function takes
    # aws:ResourceTag/*, which the authorizer reads from the function).
    "TagResource": Spec("lambda:TagResource", tagged_resource, context=(tags_in("Tags"),)),
    "UntagResource": Spec("lambda:UntagResource", tagged_resource, context=(tag_keys_in("TagKeys"),)),
    "ListTags": Spec("lambda:ListTags", tagged_resource),
    # Aliases: each acts on the alias's ARN; ListAliases reads the function's.
    "CreateAlias": Spec("lambda:CreateAlias", alias),
    "GetAlias": Spec("lambda:GetAlias", alias),
    "UpdateAlias": Spec("lambda:UpdateAlias", alias),
    "DeleteAlias": Spec("lambda:DeleteAlias", alias),
    "ListAliases": Spec("lambda:ListAliases", unqualified_function),
    # Asynchronous invocation configuration: on the function or the version or alias it names;
    # the list is of the function's configurations.
    "PutFunctionEventInvokeConfig": Spec("lambda:PutFunctionEventInvokeConfig", function),
    "UpdateFunctionEventInvokeConfig": Spec("lambda:UpdateFunctionEventInvokeConfig", function),
    "GetFunctionEventInvokeConfig": Spec("lambda:GetFunctionEventInvokeConfig", function),
    "DeleteFunctionEventInvokeConfig": Spec("lambda:DeleteFunctionEventInvokeConfig", function),
    "ListFunctionEventInvokeConfigs": Spec("lambda:ListFunctionEventInvokeConfigs", unqualified_function),
    # Stored function settings (recursion: the function itself; runtime management: a version).
    "PutFunctionRecursionConfig": Spec("lambda:PutFunctionRecursionConfig", unqualified_function),
    "GetFunctionRecursionConfig": Spec("lambda:GetFunctionRecursionConfig", unqualified_function),
    "PutRuntimeManagementConfig": Spec("lambda:PutRuntimeManagementConfig", function),
    "GetRuntimeManagementConfig": Spec("lambda:GetRuntimeManagementConfig", function),
    "InvokeAsync": Spec("lambda:InvokeAsync", function),
    # Code signing configurations (resource type code-signing-config; Create and List take none).
    "CreateCodeSigningConfig": Spec("lambda:CreateCodeSigningConfig"),
    "ListCodeSigningConfigs": Spec("lambda:ListCodeSigningConfigs"),
    "GetCodeSigningConfig": Spec("lambda:GetCodeSigningConfig", code_signing_config),
    "UpdateCodeSigningConfig": Spec("lambda:UpdateCodeSigningConfig", code_signing_config),
    "DeleteCodeSigningConfig": Spec("lambda:DeleteCodeSigningConfig", code_signing_config),
    "ListFunctionsByCodeSigningConfig": Spec("lambda:ListFunctionsByCodeSigningConfig", code_signing_config),
    "PutFunctionCodeSigningConfig": Spec(
        "lambda:PutFunctionCodeSigningConfig",
        unqualified_function,
        context=(copy_text("CodeSigningConfigArn", "lambda:CodeSigningConfigArn"),),
    ),
    "GetFunctionCodeSigningConfig": Spec("lambda:GetFunctionCodeSigningConfig", unqualified_function),
    "DeleteFunctionCodeSigningConfig": Spec("lambda:DeleteFunctionCodeSigningConfig", unqualified_function),
    # Reserved concurrency (the handlers refuse a qualified name)
    "PutFunctionConcurrency": Spec("lambda:PutFunctionConcurrency", function),
    "GetFunctionConcurrency": Spec("lambda:GetFunctionConcurrency", function),
    "DeleteFunctionConcurrency": Spec("lambda:DeleteFunctionConcurrency", function),
    # Provisioned concurrency: on the version or alias it names; the list is the function's.
    "PutProvisionedConcurrencyConfig": Spec("lambda:PutProvisionedConcurrencyConfig", function),
    "GetProvisionedConcurrencyConfig": Spec("lambda:GetProvisionedConcurrencyConfig", function),
    "DeleteProvisionedConcurrencyConfig": Spec("lambda:DeleteProvisionedConcurrencyConfig", function),
    "ListProvisionedConcurrencyConfigs": Spec(
        "lambda:ListProvisionedConcurrencyConfigs", unqualified_function
    ),
    # Layers
    "PublishLayerVersion": Spec("lambda:PublishLayerVersion", layer),
    "GetLayerVersion": Spec("lambda:GetLayerVersion", layer_version),
    "GetLayerVersionByArn": Spec("lambda:GetLayerVersion", layer_version_by_arn),
    "ListLayers": Spec("lambda:ListLayers"),
    "ListLayerVersions": Spec("lambda:ListLayerVersions"),
    "DeleteLayerVersion": Spec("lambda:DeleteLayerVersion", layer_version),
    "AddLayerVersionPermission": Spec("lambda:AddLayerVersionPermission", layer_version),
    "GetLayerVersionPolicy": Spec("lambda:GetLayerVersionPolicy", layer_version),
    "RemoveLayerVersionPermission": Spec("lambda:RemoveLayerVersionPermission", layer_version),
}
