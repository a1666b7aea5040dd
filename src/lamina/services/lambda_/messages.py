"""Lambda's messages that more than one operation answers, each written once (kept whole: clients
and the recordings compare them byte for byte)."""

from __future__ import annotations

from typing import Final

from lamina.errors import (
    AwsError,
    BodyStyle,
    InvalidParameterValueException,
    InvalidRequestContentException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)

TOO_MANY_LAYERS: Final = "Cannot reference more than 5 layers."
ZIP_ONLY: Final = "lamina runs Zip functions only: container images are not supported."
ROLE_CANNOT_BE_ASSUMED: Final = "The role defined for the function cannot be assumed by Lambda."
LAYER_VERSION_BELOW_ONE: Final = "Layer Version Cannot be less than 1"
RESOURCE_NOT_FOUND: Final = "The resource you requested does not exist."
NO_POLICY: Final = "No policy is associated with the given resource."
RUNTIME_PINNED: Final = (
    "Cannot change runtime identifier when runtime management configuration is set to 'Manual'. "
    "Change the runtime management configuration to 'Auto' or 'FunctionUpdate', then retry."
)


def code_signing_config_not_found(arn: str) -> AwsError:
    """A function is given a code signing configuration that does not exist (recorded)."""
    return AwsError(
        f"The code signing configuration cannot be found. Check that the provided configuration is not deleted: {arn}.",
        code="CodeSigningConfigNotFoundException",
        status=404,
        style=BodyStyle.USER_UPPER,
        sender_fault=True,
    )


def invalid_marker(marker: object) -> InvalidParameterValueException:
    return InvalidParameterValueException(f"Invalid pagination marker: {marker}")


def layer_version_missing(arn: str) -> str:
    return f"Layer version {arn} does not exist."


def function_not_found(arn: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Function not found: {arn}")


def policy_revision_mismatch() -> PreconditionFailedException:
    """A RevisionId that is not the policy's (AddPermission / RemovePermission on an alias)."""
    return PreconditionFailedException(
        "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the "
        "latest Revision Id"
    )


def function_exists(name: str) -> ResourceConflictException:
    return ResourceConflictException(f"Function already exist: {name}")


def update_in_progress(arn: str) -> ResourceConflictException:
    return ResourceConflictException(
        f"The operation cannot be performed at this time. An update is in progress for resource: {arn}"
    )


def too_big_with_layers(limit: int, size: int) -> InvalidParameterValueException:
    return InvalidParameterValueException(
        f"Function code combined with layers exceeds the maximum allowed size of {limit} bytes. "
        f"The actual size is {size} bytes."
    )


def function_revision_mismatch() -> PreconditionFailedException:
    return PreconditionFailedException(
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
    )


def payload_not_json(exc: Exception) -> InvalidRequestContentException:
    return InvalidRequestContentException(
        f"Could not parse request body into json: Could not parse payload into json: {exc}"
    )


def statement_exists(sid: str) -> ResourceConflictException:
    return ResourceConflictException(
        f"The statement id ({sid}) provided already exists. "
        "Please provide a new statement id, or remove the existing statement."
    )


def statement_missing(sid: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Statement {sid} is not found in resource policy.")


def policy_too_long(size: int, limit: int) -> AwsError:
    return AwsError(
        f"The final policy size ({size}) is bigger than the limit ({limit}).",
        code="PolicyLengthExceededException",
        status=400,
        sender_fault=True,
    )
