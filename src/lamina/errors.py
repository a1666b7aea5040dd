"""The one root of lamina's exceptions, and the AWS-facing error type.

Every error a client may see is an :class:`AwsError`: it carries the AWS error
code, the HTTP status and the message, and knows which body style the service
uses for it. Foreign exceptions (OSError, sqlite3, ...) are translated into
these at one boundary per layer with ``raise ... from exc``.
"""

from __future__ import annotations

import enum


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
    ) -> None:
        super().__init__(message)
        self.message = message
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


def _client(code: str, status: int, style: BodyStyle) -> type[AwsError]:
    return type(code, (AwsError,), {"code": code, "status": status, "style": style, "sender_fault": True})


# Generic AWS errors (all services).
ValidationException = _client("ValidationException", 400, BodyStyle.LOWER)
UnrecognizedClientException = _client("UnrecognizedClientException", 403, BodyStyle.LOWER)
InvalidSignatureException = _client("InvalidSignatureException", 403, BodyStyle.LOWER)
IncompleteSignatureException = _client("IncompleteSignatureException", 403, BodyStyle.LOWER)
MissingAuthenticationTokenException = _client("MissingAuthenticationTokenException", 403, BodyStyle.LOWER)
AccessDeniedException = _client("AccessDeniedException", 403, BodyStyle.UPPER)
UnknownOperationException = _client("UnknownOperationException", 404, BodyStyle.LOWER)
SerializationException = _client("SerializationException", 400, BodyStyle.LOWER)

# Lambda's own errors, body styles as recorded against real AWS.
InvalidParameterValueException = _client("InvalidParameterValueException", 400, BodyStyle.USER_LOWER)
ResourceNotFoundException = _client("ResourceNotFoundException", 404, BodyStyle.USER_UPPER)
ResourceConflictException = _client("ResourceConflictException", 409, BodyStyle.USER_LOWER)
PreconditionFailedException = _client("PreconditionFailedException", 412, BodyStyle.USER_LOWER)
RequestEntityTooLargeException = _client("RequestEntityTooLargeException", 413, BodyStyle.LOWER)
TooManyRequestsException = _client("TooManyRequestsException", 429, BodyStyle.USER_LOWER)
InvalidRequestContentException = _client("InvalidRequestContentException", 400, BodyStyle.USER_LOWER)


class ServiceException(AwsError):
    """An unexpected failure inside lamina (500); the message never leaks internals."""

    code = "ServiceException"
    status = 500
    style = BodyStyle.USER_LOWER
