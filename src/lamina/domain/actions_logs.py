"""CloudWatch Logs' rows of the authorization table (pure).

Facts (Service Authorization Reference, "Actions, resources, and condition keys for Amazon CloudWatch
Logs"): each operation's action is ``logs:<Operation>``; the ``log-group`` resource type is
``arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}`` and ``log-stream``
``arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}``.
CreateLogStream, DeleteLogStream, DescribeLogStreams, GetLogEvents and FilterLogEvents act on the
group; PutLogEvents on the stream; DescribeLogGroups on ``*`` (it lists); the tagging operations on
the ARN they name. The console's log view is authorized as FilterLogEvents on the function's group.
"""

from __future__ import annotations

from collections.abc import Mapping

from lamina.domain.actions_spec import Call, Spec
from lamina.domain.arns import PARTITION


def group_name(call: Call) -> str:
    """The group a call names (see :func:`group_name_in`)."""
    return group_name_in(call.text("logGroupName"), call.text("logGroupIdentifier"))


def group_name_in(name: str | None, identifier: str | None) -> str:
    """The group ``logGroupName`` names, else the name in ``logGroupIdentifier`` (a name or an
    ARN, with or without its ``:*``)."""
    if name:
        return name
    ident = identifier or ""
    if ident.startswith("arn:") and ":log-group:" in ident:
        ident = ident.split(":log-group:", 1)[1]
        return ident[:-2] if ident.endswith(":*") else ident
    return ident


def group_arn(call: Call) -> str:
    """The ARN of the call's log group, in the caller's account and region."""
    return f"arn:{PARTITION}:logs:{call.region}:{call.account}:log-group:{group_name(call)}"


def log_group(call: Call) -> str:
    """The resource a group-level action is authorized on: AWS names it with an empty stream
    (its denials read "... on resource: arn:aws:logs:us-east-1:123456789012:log-group:NAME:log-stream:",
    for CreateLogGroup and FilterLogEvents alike), which is why AWS's policy examples grant
    ``log-group:NAME:*``."""
    return f"{group_arn(call)}:log-stream:"


def log_stream(call: Call) -> str:
    """The ARN of the ``logStreamName`` stream of the call's group (PutLogEvents)."""
    return f"{group_arn(call)}:log-stream:{call.text('logStreamName') or ''}"


def live_tail_groups(call: Call) -> tuple[str, ...]:
    """StartLiveTail's groups (``logGroupIdentifiers``: ARNs or names), each named as
    :func:`log_group` names a group; ``*`` when there are none (the request is then refused)."""
    prefix = f"arn:{PARTITION}:logs:{call.region}:{call.account}:log-group:"
    found = tuple(
        f"{ident[:-2] if ident.endswith(':*') else ident}:log-stream:"
        if ident.startswith("arn:")
        else f"{prefix}{ident}:log-stream:"
        for ident in call.texts("logGroupIdentifiers")
    )
    return found or ("*",)


def tagged(call: Call) -> str:
    """The ``resourceArn`` a tagging operation names, as given."""
    return call.text("resourceArn") or "*"


TABLE: Mapping[str, Spec] = {
    "CreateLogGroup": Spec("logs:CreateLogGroup", log_group),
    "DeleteLogGroup": Spec("logs:DeleteLogGroup", log_group),
    "DescribeLogGroups": Spec("logs:DescribeLogGroups"),
    "CreateLogStream": Spec("logs:CreateLogStream", log_group),
    "DeleteLogStream": Spec("logs:DeleteLogStream", log_group),
    "DescribeLogStreams": Spec("logs:DescribeLogStreams", log_group),
    "PutLogEvents": Spec("logs:PutLogEvents", log_stream),
    "GetLogEvents": Spec("logs:GetLogEvents", log_group),
    "FilterLogEvents": Spec("logs:FilterLogEvents", log_group),
    "PutRetentionPolicy": Spec("logs:PutRetentionPolicy", log_group),
    "DeleteRetentionPolicy": Spec("logs:DeleteRetentionPolicy", log_group),
    "TagResource": Spec("logs:TagResource", tagged),
    "UntagResource": Spec("logs:UntagResource", tagged),
    "ListTagsForResource": Spec("logs:ListTagsForResource", tagged),
    "TagLogGroup": Spec("logs:TagLogGroup", log_group),
    "UntagLogGroup": Spec("logs:UntagLogGroup", log_group),
    "ListTagsLogGroup": Spec("logs:ListTagsLogGroup", log_group),
    "StartLiveTail": Spec("logs:StartLiveTail", live_tail_groups),
}
