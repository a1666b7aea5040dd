"""IAM's and STS's rows of the authorization table (pure).

Facts from the Service Authorization Reference, "Actions, resources, and condition keys for AWS
Identity and Access Management (IAM)" and "... for AWS Security Token Service": resource types
``user`` (``arn:aws:iam::A:user/PATH/NAME``), ``role``, ``group`` and ``policy`` with the same shape
(the path is part of the ARN, "/" by default); ``ListUsers``, ``ListRoles``, ``ListGroups``,
``ListPolicies`` and ``SimulateCustomPolicy`` take no resource; ``SimulatePrincipalPolicy`` acts on the
policy source (a user, group or role). Condition keys: ``iam:PolicyARN`` on Attach*/Detach*Policy,
``iam:PermissionsBoundary`` on Put*PermissionsBoundary and on CreateUser/CreateRole with a boundary,
``aws:RequestTag/*`` and ``aws:TagKeys`` where tags are set (Create*, Tag*) and ``aws:TagKeys`` where
they are removed (Untag*). The IAM API Reference says an access-key or GetUser call without
``UserName`` acts on "the user name implicitly based on the AWS access key ID signing the request":
that is the ``caller_user`` (the account's root when the caller is no IAM user).

STS: ``AssumeRole`` is ``sts:AssumeRole`` on the role, with ``aws:RequestTag/*``, ``aws:TagKeys``,
``sts:TransitiveTagKeys``, ``sts:RoleSessionName``, ``sts:ExternalId`` and ``sts:SourceIdentity``;
passing session tags also needs ``sts:TagSession`` on the role (IAM User Guide, "Passing session tags
in AWS STS"). ``GetCallerIdentity``, ``GetSessionToken`` and ``DecodeAuthorizationMessage`` take no
resource, and ``GetCallerIdentity`` is never denied ("No permissions are required to perform this
operation", STS API Reference).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lamina.domain.actions_spec import (
    Call,
    Check,
    Context,
    ContextValue,
    Resource,
    Spec,
    copy_text,
    given,
    iam_root,
    multi,
    request_tags,
    tag_keys_in,
    tag_on_create,
    tag_pairs,
    tags_in,
)
from lamina.domain.arns import PARTITION, Arn


def entity_arn(account: str, kind: str, path: str, name: str) -> str:
    """``arn:aws:iam::ACCOUNT:KIND/PATH/NAME`` (``path`` begins and ends with "/")."""
    return f"arn:{PARTITION}:iam::{account}:{kind}{path}{name}"


def entity(kind: str, key: str, *, caller: bool = False) -> Callable[[Call], str]:
    """The existing ``kind`` named by ``key``, its path and name as stored ("/" and the name as given
    when there is none).

    ``caller``: without ``key`` the request acts on the calling user (root when it is none)."""

    def read(call: Call) -> str:
        name = call.text(key)
        if name is None and caller:
            if call.caller_user is None:
                return iam_root(call.account)
            name = call.caller_user
        name = name or ""
        # The entity's own path and name: ``RoleName=admin`` acts on role ``Admin`` (IAM names are
        # unique whatever their case), and a policy naming role/Admin must decide it.
        found = call.lookups.iam_entity(call.account, kind, name) if name else None
        if found is None:
            return entity_arn(call.account, kind, "/", name)
        return entity_arn(call.account, kind, found.path, found.name)

    return read


def new_entity(kind: str, key: str) -> Resource:
    """The ``kind`` a Create* call makes: its name and ``Path`` (default "/") from the request."""
    return lambda call: entity_arn(call.account, kind, call.text("Path") or "/", call.text(key) or "")


def unnamed(kind: str) -> Callable[[Call], str]:
    """``arn:aws:iam::ACCOUNT:KIND/``: an ARN parameter that is missing names nothing in the account."""
    return lambda call: entity_arn(call.account, kind, "/", "")


POLICY_ARN = given("PolicyArn", unnamed("policy"))


def assumed_role(call: Call) -> str:
    """The role ``RoleArn`` names, by its own ARN: AssumeRole finds a role by the name at the end
    of the ARN, in any case, so ``role/any/path/ADMIN`` is role ``Admin`` at its own path and IAM
    must decide on that role. The ARN as given when it names no existing role."""
    text = call.text("RoleArn")
    arn = Arn.parse(text) if text else None
    name = arn.role_name if arn is not None else None
    found = call.lookups.iam_entity(arn.account, "role", name) if arn is not None and name else None
    if arn is None or found is None:
        return text or unnamed("role")(call)
    return entity_arn(arn.account, "role", found.path, found.name)


ROLE_ARN = assumed_role
USER = entity("user", "UserName")
CALLER = entity("user", "UserName", caller=True)
ROLE = entity("role", "RoleName")
GROUP = entity("group", "GroupName")
POLICY_KEY = copy_text("PolicyArn", "iam:PolicyARN")
BOUNDARY_KEY = copy_text("PermissionsBoundary", "iam:PermissionsBoundary")


def has_boundary(kind: str, key: str) -> Context:
    """``iam:PermissionsBoundary``: the boundary the user or role named by ``key`` has now, on the
    operations that change its policies or remove its boundary (Service Authorization Reference;
    IAM User Guide, "Permissions boundaries": delegating administration within a boundary)."""

    def read(call: Call) -> Mapping[str, ContextValue]:
        name = call.text(key)
        found = call.lookups.iam_entity(call.account, kind, name) if name else None
        return {"iam:PermissionsBoundary": found.boundary} if found and found.boundary else {}

    return read


USER_BOUNDARY = has_boundary("user", "UserName")
ROLE_BOUNDARY = has_boundary("role", "RoleName")
TAGS = tags_in("Tags")
UNTAG = tag_keys_in("TagKeys")


def renamed_user(call: Call) -> str | tuple[str, ...]:
    """UpdateUser acts on the user and, when it renames or moves it, on the user it becomes: "the
    requester must have appropriate permissions on both the source object and the target object"
    (IAM API Reference, UpdateUser)."""
    source = USER(call)
    new_name, new_path = call.text("NewUserName"), call.text("NewPath")
    if not new_name and not new_path:
        return source
    _, _, rest = source.partition(":user")
    path, _, name = rest.rpartition("/")
    target = entity_arn(call.account, "user", new_path or f"{path}/", new_name or name)
    return source if target == source else (source, target)


IAM_TABLE: Mapping[str, Spec] = {
    # Roles
    "CreateRole": Spec(
        "iam:CreateRole",
        new_entity("role", "RoleName"),
        context=(BOUNDARY_KEY, TAGS),
        also=(tag_on_create("iam:TagRole", new_entity("role", "RoleName")),),
    ),
    "GetRole": Spec("iam:GetRole", ROLE),
    "ListRoles": Spec("iam:ListRoles"),
    "DeleteRole": Spec("iam:DeleteRole", ROLE),
    "UpdateAssumeRolePolicy": Spec("iam:UpdateAssumeRolePolicy", ROLE),
    "PutRolePolicy": Spec("iam:PutRolePolicy", ROLE, context=(ROLE_BOUNDARY,)),
    "GetRolePolicy": Spec("iam:GetRolePolicy", ROLE),
    "DeleteRolePolicy": Spec("iam:DeleteRolePolicy", ROLE, context=(ROLE_BOUNDARY,)),
    "ListRolePolicies": Spec("iam:ListRolePolicies", ROLE),
    "AttachRolePolicy": Spec("iam:AttachRolePolicy", ROLE, context=(POLICY_KEY, ROLE_BOUNDARY)),
    "DetachRolePolicy": Spec("iam:DetachRolePolicy", ROLE, context=(POLICY_KEY, ROLE_BOUNDARY)),
    "ListAttachedRolePolicies": Spec("iam:ListAttachedRolePolicies", ROLE),
    "TagRole": Spec("iam:TagRole", ROLE, context=(TAGS,)),
    "UntagRole": Spec("iam:UntagRole", ROLE, context=(UNTAG,)),
    "ListRoleTags": Spec("iam:ListRoleTags", ROLE),
    "PutRolePermissionsBoundary": Spec("iam:PutRolePermissionsBoundary", ROLE, context=(BOUNDARY_KEY,)),
    "DeleteRolePermissionsBoundary": Spec(
        "iam:DeleteRolePermissionsBoundary", ROLE, context=(ROLE_BOUNDARY,)
    ),
    # Managed policies
    "CreatePolicy": Spec("iam:CreatePolicy", new_entity("policy", "PolicyName"), context=(TAGS,)),
    "GetPolicy": Spec("iam:GetPolicy", POLICY_ARN),
    "GetPolicyVersion": Spec("iam:GetPolicyVersion", POLICY_ARN),
    "DeletePolicy": Spec("iam:DeletePolicy", POLICY_ARN),
    "ListPolicies": Spec("iam:ListPolicies"),
    "ListPolicyVersions": Spec("iam:ListPolicyVersions", POLICY_ARN),
    # Users and their access keys
    "CreateUser": Spec(
        "iam:CreateUser",
        new_entity("user", "UserName"),
        context=(BOUNDARY_KEY, TAGS),
        also=(tag_on_create("iam:TagUser", new_entity("user", "UserName")),),
    ),
    "GetUser": Spec("iam:GetUser", CALLER),
    "ListUsers": Spec("iam:ListUsers"),
    "UpdateUser": Spec("iam:UpdateUser", renamed_user),
    "DeleteUser": Spec("iam:DeleteUser", USER),
    "CreateAccessKey": Spec("iam:CreateAccessKey", CALLER),
    "ListAccessKeys": Spec("iam:ListAccessKeys", CALLER),
    "UpdateAccessKey": Spec("iam:UpdateAccessKey", CALLER),
    "DeleteAccessKey": Spec("iam:DeleteAccessKey", CALLER),
    "PutUserPolicy": Spec("iam:PutUserPolicy", USER, context=(USER_BOUNDARY,)),
    "GetUserPolicy": Spec("iam:GetUserPolicy", USER),
    "DeleteUserPolicy": Spec("iam:DeleteUserPolicy", USER, context=(USER_BOUNDARY,)),
    "ListUserPolicies": Spec("iam:ListUserPolicies", USER),
    "AttachUserPolicy": Spec("iam:AttachUserPolicy", USER, context=(POLICY_KEY, USER_BOUNDARY)),
    "DetachUserPolicy": Spec("iam:DetachUserPolicy", USER, context=(POLICY_KEY, USER_BOUNDARY)),
    "ListAttachedUserPolicies": Spec("iam:ListAttachedUserPolicies", USER),
    "TagUser": Spec("iam:TagUser", USER, context=(TAGS,)),
    "UntagUser": Spec("iam:UntagUser", USER, context=(UNTAG,)),
    "ListUserTags": Spec("iam:ListUserTags", USER),
    "PutUserPermissionsBoundary": Spec("iam:PutUserPermissionsBoundary", USER, context=(BOUNDARY_KEY,)),
    "DeleteUserPermissionsBoundary": Spec(
        "iam:DeleteUserPermissionsBoundary", USER, context=(USER_BOUNDARY,)
    ),
    "ListGroupsForUser": Spec("iam:ListGroupsForUser", USER),
    # Groups (membership changes act on the group)
    "CreateGroup": Spec("iam:CreateGroup", new_entity("group", "GroupName")),
    "GetGroup": Spec("iam:GetGroup", GROUP),
    "ListGroups": Spec("iam:ListGroups"),
    "DeleteGroup": Spec("iam:DeleteGroup", GROUP),
    "AddUserToGroup": Spec("iam:AddUserToGroup", GROUP),
    "RemoveUserFromGroup": Spec("iam:RemoveUserFromGroup", GROUP),
    "PutGroupPolicy": Spec("iam:PutGroupPolicy", GROUP),
    "GetGroupPolicy": Spec("iam:GetGroupPolicy", GROUP),
    "DeleteGroupPolicy": Spec("iam:DeleteGroupPolicy", GROUP),
    "ListGroupPolicies": Spec("iam:ListGroupPolicies", GROUP),
    "AttachGroupPolicy": Spec("iam:AttachGroupPolicy", GROUP, context=(POLICY_KEY,)),
    "DetachGroupPolicy": Spec("iam:DetachGroupPolicy", GROUP, context=(POLICY_KEY,)),
    "ListAttachedGroupPolicies": Spec("iam:ListAttachedGroupPolicies", GROUP),
    # Simulation
    "SimulatePrincipalPolicy": Spec("iam:SimulatePrincipalPolicy", given("PolicySourceArn", unnamed("user"))),
    "SimulateCustomPolicy": Spec("iam:SimulateCustomPolicy"),
}


def session_tags(call: Call) -> Mapping[str, ContextValue]:
    """The tags an AssumeRole call puts on the session, and which of them are transitive."""
    return request_tags(tag_pairs(call.params.get("Tags"))) | multi(
        "sts:TransitiveTagKeys", call.texts("TransitiveTagKeys")
    )


def tag_session(call: Call) -> tuple[Check, ...]:
    """``sts:TagSession`` on the role when the call passes session tags."""
    if not (call.params.get("Tags") or call.params.get("TransitiveTagKeys")):
        return ()
    return (Check("sts:TagSession", ROLE_ARN(call), session_tags(call)),)


STS_TABLE: Mapping[str, Spec] = {
    "GetCallerIdentity": Spec("sts:GetCallerIdentity"),
    "AssumeRole": Spec(
        "sts:AssumeRole",
        ROLE_ARN,
        context=(
            session_tags,
            copy_text("RoleSessionName", "sts:RoleSessionName"),
            copy_text("ExternalId", "sts:ExternalId"),
            copy_text("SourceIdentity", "sts:SourceIdentity"),
        ),
        also=(tag_session,),
    ),
    "DecodeAuthorizationMessage": Spec("sts:DecodeAuthorizationMessage"),
    "GetSessionToken": Spec("sts:GetSessionToken"),
}
