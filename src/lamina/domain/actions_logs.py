"""CloudWatch Logs' rows of the authorization table (pure).

Facts (Service Authorization Reference, "Actions, resources, and condition keys for Amazon CloudWatch
Logs"): GetLogEvents and FilterLogEvents act on the ``log-group`` resource type,
``arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}``. lamina serves no Logs API
yet; the console's log view is authorized as FilterLogEvents on the function's log group.
"""

from __future__ import annotations

from collections.abc import Mapping

from lamina.domain.actions_spec import Call, Spec
from lamina.domain.arns import PARTITION


def log_group(call: Call) -> str:
    """The ARN of the ``logGroupName`` parameter's log group, in the caller's account and region."""
    return f"arn:{PARTITION}:logs:{call.region}:{call.account}:log-group:{call.text('logGroupName') or ''}"


TABLE: Mapping[str, Spec] = {
    "FilterLogEvents": Spec("logs:FilterLogEvents", log_group),
    "GetLogEvents": Spec("logs:GetLogEvents", log_group),
}
