"""Lambda functions: names, configuration shapes, limits and state transitions (pure).

Facts from AWS (recorded; see spec/functions.md):
- CreateFunction answers 201 with ``State: Pending`` (reason "The function is being created.",
  code ``Creating``); the function turns ``Active`` once its environment can be created.
- Updates answer with ``LastUpdateStatus: InProgress`` (reason and code as for create), then
  ``Successful``. Every change, including those state flips, rotates ``RevisionId``.
- ``Environment`` appears only when it was given (then even when empty).
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass

from lamina.domain.arns import PARTITION
from lamina.domain.models import FunctionConfiguration, LoggingConfig
from lamina.domain.runtimes import os_only_runtimes
from lamina.errors import InvalidParameterValueException, ResourceNotFoundException

LATEST = "$LATEST"
MAX_LAYERS = 5
MAX_ENV_BYTES = 4096
DEFAULT_TIMEOUT = 3
DEFAULT_MEMORY = 128
DEFAULT_EPHEMERAL = 512
MAX_ZIPPED = 52_428_800
MAX_UNZIPPED = 262_144_000

CREATING_REASON = "The function is being created."

RESERVED_ENV_KEYS = [
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
]

# The OS-only runtimes, oldest first, from the runtime table.
CUSTOM_RUNTIMES = tuple(r.identifier for r in reversed(os_only_runtimes()))


class State(enum.Enum):
    PENDING = "Pending"
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    FAILED = "Failed"


class UpdateStatus(enum.Enum):
    IN_PROGRESS = "InProgress"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"


def function_arn(region: str, account: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """Where a ``FunctionName`` parameter points: account, region, name, optional qualifier.

    Without a qualifier it names the function itself, which is how lamina keys what belongs to a
    function whatever its version (environments, sessions, idle time)."""

    account: str
    region: str
    name: str
    qualifier: str | None = None

    @property
    def arn(self) -> str:
        """The function's unqualified ARN (what AWS's messages name)."""
        return function_arn(self.region, self.account, self.name)

    @property
    def qualified_arn(self) -> str:
        """The ARN with the qualifier, when there is one."""
        return function_arn(self.region, self.account, self.name, self.qualifier)

    @property
    def function(self) -> FunctionRef:
        """The function itself: this reference without its qualifier."""
        if self.qualifier is None:
            return self
        return FunctionRef(self.account, self.region, self.name)


_NAME = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d):)?(?:(?P<account>\d{12}):)?"
    r"(?:function:)?(?P<name>[a-zA-Z0-9-_\.]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]+))?"
)


@dataclass(frozen=True, slots=True)
class FunctionNameParts:
    """What a ``FunctionName`` spells out itself (None: the part is left to the request's context)."""

    region: str | None
    account: str | None
    name: str
    qualifier: str | None


# Published versions count from 1; the store keeps $LATEST as 0. A version is named by its
# number as Lambda prints it: "01" or "0" name no version (else "0" would reach $LATEST past the
# checks that refuse $LATEST), and a number past the store's 64-bit integers names none either.
MAX_VERSION_DIGITS = 18


def version_number(text: str) -> int | None:
    """The published version ``text`` names (1, 2, ...): ASCII digits without a leading zero;
    None for anything else."""
    if not (0 < len(text) <= MAX_VERSION_DIGITS and text.isascii() and text.isdigit()) or text[0] == "0":
        return None
    return int(text)


def split_function_name(value: str) -> FunctionNameParts | None:
    """The parts of a name, ``name:qualifier``, partial ARN (``123456789012:function:f``,
    ``123456789012:f``, ``us-east-1:f``) or full ARN; None when ``value`` is none of them.

    The one reading of Lambda's FunctionName pattern: the authorization table and the handlers both
    use it, so the function IAM decides on is the function the handler acts on."""
    m = _NAME.fullmatch(value)
    if m is None:
        return None
    return FunctionNameParts(m.group("region"), m.group("account"), m.group("name"), m.group("qualifier"))


def parse_function_name(
    value: str, *, account: str, region: str, qualifier: str | None = None
) -> FunctionRef:
    """Resolve a name, partial ARN (``123456789012:function:f``) or full ARN, with optional qualifier.

    Raises AWS's errors for a region mismatch and for two different qualifiers.
    """
    parts = split_function_name(value)
    if parts is None:
        raise ResourceNotFoundException(f"Function not found: {function_arn(region, account, value)}")
    got_region = parts.region or region
    got_account = parts.account or account
    if got_region != region:
        raise ResourceNotFoundException(
            f"Functions from '{got_region}' are not reachable in this region ('{region}')"
        )
    q = parts.qualifier
    if q is not None and qualifier is not None and q != qualifier:
        raise InvalidParameterValueException(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return FunctionRef(got_account, got_region, parts.name, q or qualifier)


def check_environment(variables: dict[str, str]) -> None:
    """Reserved keys and the 4 KB limit, with AWS's messages."""
    reserved = [k for k in variables if k in RESERVED_ENV_KEYS]
    if reserved:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables you "
            "have provided contains reserved keys that are currently not supported for modification. Reserved "
            f"keys used in this request: {', '.join(reserved)}"
        )
    measured = json.dumps(variables, separators=(",", ":"), ensure_ascii=False)
    if len(measured.encode()) > MAX_ENV_BYTES:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables you "
            f"have provided exceeded the 4KB limit. String measured: {measured}"
        )


def logging_config(
    requested: LoggingConfig | None, current: LoggingConfig | None, name: str
) -> LoggingConfig:
    """A function's ``LoggingConfig`` after a create (``current`` None) or an update, as AWS keeps it
    (recorded, ``TestLoggingConfig``): ``LogGroup`` defaults to ``/aws/lambda/<name>``; with
    ``LogFormat`` JSON both log levels default to INFO; with Text there are none, and asking for one
    is refused. A partial update keeps what it does not name."""
    base: LoggingConfig = current or {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    asked: LoggingConfig = requested or {}
    log_format = asked.get("LogFormat", base.get("LogFormat", "Text"))
    app_level, system_level = asked.get("ApplicationLogLevel"), asked.get("SystemLogLevel")
    if log_format == "Text" and (app_level or system_level):
        raise InvalidParameterValueException(
            'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your request '
            'or change the LogFormat to "JSON" and try again.'
        )
    out: LoggingConfig = {}
    if log_format == "JSON":
        out["ApplicationLogLevel"] = app_level or base.get("ApplicationLogLevel", "INFO")
    out["LogFormat"] = log_format
    out["LogGroup"] = asked.get("LogGroup", base.get("LogGroup", f"/aws/lambda/{name}"))
    if log_format == "JSON":
        out["SystemLogLevel"] = system_level or base.get("SystemLogLevel", "INFO")
    return out


def runtime_version_arn(region: str, runtime: str) -> str:
    import hashlib

    digest = hashlib.sha256(f"lamina:{runtime}".encode()).hexdigest()
    return f"arn:{PARTITION}:lambda:{region}::runtime:{digest}"


def duplicate_layer_pair(layer_arns: list[str]) -> tuple[str, str] | None:
    """The first pair of ARNs naming versions of the same layer (AWS names the first pair only)."""
    seen: dict[str, str] = {}
    for arn in layer_arns:
        base = arn.rsplit(":", 1)[0]
        if base in seen:
            return seen[base], arn
        seen[base] = arn
    return None


def next_revision_state(config: FunctionConfiguration) -> FunctionConfiguration:
    """The configuration once preparation succeeded: Active, update Successful, reasons dropped."""
    out = config.copy()
    out["State"] = State.ACTIVE.value
    out["LastUpdateStatus"] = UpdateStatus.SUCCESSFUL.value
    out.pop("StateReason", None)
    out.pop("StateReasonCode", None)
    out.pop("LastUpdateStatusReason", None)
    out.pop("LastUpdateStatusReasonCode", None)
    return out


def failed_state(
    config: FunctionConfiguration, code: str, reason: str, *, creating: bool
) -> FunctionConfiguration:
    """The configuration once preparation failed: the function Failed (``creating``) or its update."""
    out = config.copy()
    if creating:
        out["State"] = State.FAILED.value
        out["StateReason"] = reason
        out["StateReasonCode"] = code
        out.pop("LastUpdateStatus", None)
    else:
        out["LastUpdateStatus"] = UpdateStatus.FAILED.value
        out["LastUpdateStatusReason"] = reason
        out["LastUpdateStatusReasonCode"] = code
    return out
