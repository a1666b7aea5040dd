"""The one root of lamina's exceptions, and the AWS-facing error type.

Every error a client may see is an :class:`AwsError`: it carries the AWS error
code, the HTTP status and the message, and knows which body style the service
uses for it. Foreign exceptions (OSError, sqlite3, ...) are translated into
these at one boundary per layer with ``raise ... from exc``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final


class LaminaError(Exception):
    """Root of every exception lamina raises on purpose."""


class BodyStyle(enum.Enum):
    """How a rest-json error body spells its message.

    Real Lambda is not uniform (see the recordings): ResourceNotFoundException
    uses ``{"Type": "User", "Message": ...}``, InvalidParameterValueException and
    friends ``{"Type": "User", "message": ...}``, ValidationException only
    ``{"message": ...}``.
    """

    USER_LOWER = "user-lower"  # {"Type": "User", "message": ...}
    USER_UPPER = "user-upper"  # {"Type": "User", "Message": ...}
    LOWER = "lower"  # {"message": ...}
    UPPER = "upper"  # {"Message": ...}


class AwsError(LaminaError):
    """An error answered to the client in the AWS wire format."""

    code: str = "ServiceException"
    status: int = 500
    sender_fault: bool = False
    style: BodyStyle = BodyStyle.USER_LOWER

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        style: BodyStyle | None = None,
        sender_fault: bool | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # Extra members of a JSON error body (e.g. TooManyRequestsException's "Reason").
        self.fields = dict(fields or {})
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if style is not None:
            self.style = style
        if sender_fault is not None:
            self.sender_fault = sender_fault

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.status}, {self.message!r})"


# Messages AWS answers in more than one place (kept whole: they are compared byte for byte).
INVALID_TOKEN_MESSAGE: Final = "The security token included in the request is invalid."
EXPIRED_TOKEN_MESSAGE: Final = "The security token included in the request is expired"


# Generic AWS errors (all services).
class ValidationException(AwsError):
    code = "ValidationException"
    status = 400
    style = BodyStyle.LOWER
    sender_fault = True


class UnrecognizedClientException(AwsError):
    code = "UnrecognizedClientException"
    status = 403
    style = BodyStyle.LOWER
    sender_fault = True


class InvalidSignatureException(AwsError):
    code = "InvalidSignatureException"
    status = 403
    style = BodyStyle.LOWER
    sender_fault = True


class IncompleteSignatureException(AwsError):
    code = "IncompleteSignatureException"
    status = 403
    style = BodyStyle.LOWER
    sender_fault = True


class MissingAuthenticationTokenException(AwsError):
    code = "MissingAuthenticationTokenException"
    status = 403
    style = BodyStyle.LOWER
    sender_fault = True


# IAM refuses to pass a role of another account to a service, whatever the policies say.
CROSS_ACCOUNT_PASS_ROLE = "Cross-account pass role is not allowed."


class AccessDeniedException(AwsError):
    code = "AccessDeniedException"
    status = 403
    style = BodyStyle.UPPER
    sender_fault = True


class UnknownOperationException(AwsError):
    code = "UnknownOperationException"
    status = 404
    style = BodyStyle.LOWER
    sender_fault = True


class SerializationException(AwsError):
    code = "SerializationException"
    status = 400
    style = BodyStyle.LOWER
    sender_fault = True


# Lambda's own errors, body styles as recorded against real AWS.
class InvalidParameterValueException(AwsError):
    code = "InvalidParameterValueException"
    status = 400
    style = BodyStyle.USER_LOWER
    sender_fault = True


class ResourceNotFoundException(AwsError):
    code = "ResourceNotFoundException"
    status = 404
    style = BodyStyle.USER_UPPER
    sender_fault = True


class ResourceConflictException(AwsError):
    code = "ResourceConflictException"
    status = 409
    style = BodyStyle.USER_LOWER
    sender_fault = True


class PreconditionFailedException(AwsError):
    code = "PreconditionFailedException"
    status = 412
    style = BodyStyle.USER_LOWER
    sender_fault = True


class RequestEntityTooLargeException(AwsError):
    code = "RequestEntityTooLargeException"
    status = 413
    style = BodyStyle.LOWER
    sender_fault = True


class TooManyRequestsException(AwsError):
    code = "TooManyRequestsException"
    status = 429
    style = BodyStyle.USER_LOWER
    sender_fault = True


class InvalidRequestContentException(AwsError):
    code = "InvalidRequestContentException"
    status = 400
    style = BodyStyle.USER_LOWER
    sender_fault = True


#: Lambda's answer to a caller over its API request rate ("Rate exceeded", reason
#: CallerRateLimitExceeded in botocore's ThrottleReason); query services rename it (IAM/STS
#: ``Throttling`` 400 "Rate exceeded", EC2 ``RequestLimitExceeded`` 503), see their DIALECTs.
RATE_EXCEEDED_MESSAGE: Final = "Rate exceeded"


def rate_exceeded() -> TooManyRequestsException:
    """A principal's request rate is over its limit (the API's throttling error)."""
    return TooManyRequestsException(RATE_EXCEEDED_MESSAGE, fields={"Reason": "CallerRateLimitExceeded"})


def request_too_large(limit: int, operation: str | None = None) -> RequestEntityTooLargeException:
    """AWS's 413: ``Request must be smaller than N bytes[ for the X operation]``."""
    suffix = f" for the {operation} operation" if operation else ""
    return RequestEntityTooLargeException(f"Request must be smaller than {limit} bytes{suffix}")


def unknown_service(name: str) -> AwsError:
    """A signing name (or console service) lamina does not serve."""
    return AwsError(
        f"Service '{name}' is not served by lamina.", code="UnknownService", status=400, sender_fault=True
    )


def not_implemented(operation: str, needs: str | None = None) -> AwsError:
    """An operation of a served service that lamina has no handler for (501): not yet, or never
    without what ``needs`` names."""
    message = (
        f"The {operation} operation needs {needs}."
        if needs
        else f"The {operation} operation is not implemented by lamina yet."
    )
    return AwsError(message, code="NotImplemented", status=501)


def unknown_operation(service: str, operation: str) -> AwsError:
    """An operation the service's model does not have (the console names operations itself)."""
    return AwsError(
        f"{service} has no operation '{operation}'.", code="UnknownOperation", status=400, sender_fault=True
    )


class ServiceException(AwsError):
    """An unexpected failure inside lamina (500); the message never leaks internals."""

    code = "ServiceException"
    status = 500
    style = BodyStyle.USER_LOWER


# EC2's errors (query protocol: <Code>/<Message> only).
DRY_RUN_MESSAGE: Final = "Request would have succeeded, but DryRun flag is set."


def dry_run_error() -> AwsError:
    """EC2's answer to a ``DryRun`` request that would have succeeded (412 DryRunOperation).

    Raise it from a handler after the authorization and parameter checks, before any effect.
    """
    return AwsError(DRY_RUN_MESSAGE, code="DryRunOperation", status=412, sender_fault=True)


def is_dry_run(params: Mapping[str, Any]) -> bool:
    """True when the parsed input asks for a dry run."""
    return params.get("DryRun") is True


def missing_parameter(name: str) -> AwsError:
    """EC2's error for an absent required parameter, named as on the wire."""
    return AwsError(
        f"The request must contain the parameter {name}",
        code="MissingParameter",
        status=400,
        sender_fault=True,
    )
