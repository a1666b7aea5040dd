"""The ``ec2`` protocol (``2016-11-15``): the query protocol's EC2 variant.

Differences from :mod:`lamina.api.protocols.query` (botocore's ``EC2Serializer`` and
``EC2QueryParser`` are the reference):

- input keys: a member's ``queryName``, else its ``locationName`` capitalised, else its
  name (``dryRun`` -> ``DryRun``, ``GroupDescription``); every list is ``Name.N``
  (``Filter.1.Name``, ``Filter.1.Value.2``, ``TagSpecification.1.Tag.1.Key``), never
  ``.member.N``, and an empty list is simply absent;
- a missing required member is ``MissingParameter`` (``The request must contain the
  parameter GroupDescription``, as EC2 answers), not a Coral validation message;
  a value of the wrong type is ``InvalidParameterValue``;
- responses carry ``<requestId>`` first and no result wrapper; list entries are ``<item>``;
  timestamps have milliseconds; an operation without an output shape answers
  ``<return>true</return>``, as EC2 does;
- errors are ``<Response><Errors><Error>...</Error></Errors><RequestID>...</RequestID></Response>``.

DryRun: EC2 answers a request with ``DryRun=true`` with ``DryRunOperation`` (412) when it
would have succeeded. That decision belongs to the operation, so handlers end their checks
with::

    authorize(...)                # UnauthorizedOperation (403) comes first, dry run or not
    validate_the_request(...)     # and so do parameter errors (InvalidVpcID.NotFound, ...)
    if is_dry_run(params):
        raise dry_run_error()     # before any effect
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from lamina.api.http import Response
from lamina.api.protocols import xmlout
from lamina.api.protocols.base import OperationMatch
from lamina.api.protocols.query import FormNode, QueryProtocol, numbered_children
from lamina.errors import AwsError, missing_parameter

_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8"?>\n'


class Ec2Protocol(QueryProtocol):
    """ec2: EC2's protocol."""

    dialect = xmlout.EC2
    content_type = "text/xml;charset=UTF-8"

    DIALECT: Mapping[str, tuple[str, int | None, str | None]] = {
        "ValidationException": ("InvalidParameterValue", None, None),
        "UnrecognizedClientException": (
            "AuthFailure",
            401,
            "AWS was not able to validate the provided access credentials",
        ),
        "InvalidSignatureException": ("SignatureDoesNotMatch", None, None),
        "IncompleteSignatureException": ("IncompleteSignature", None, None),
        "MissingAuthenticationTokenException": ("MissingAuthenticationToken", None, None),
        "AccessDeniedException": ("UnauthorizedOperation", None, None),
        "ServiceException": ("InternalError", None, None),
        # EC2's throttle (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html), 503.
        "TooManyRequestsException": ("RequestLimitExceeded", 503, "Request limit exceeded."),
    }

    # -- routing -----------------------------------------------------------

    def unknown_action(self, action: str, version: str | None) -> AwsError:
        if action not in self._operations:
            return AwsError(
                f"The action {action} is not valid for this web service.",
                code="InvalidAction",
                status=400,
                sender_fault=True,
            )
        if version is None:
            return missing_parameter("Version")
        return AwsError(
            f"The requested version ({version}) is not valid.",
            code="NoSuchVersion",
            status=400,
            sender_fault=True,
        )

    # -- parsing -----------------------------------------------------------

    def wire_name(self, member: Any, name: str) -> str:
        return self.key_name(member, name)

    def key_name(self, shape: Any, default: str) -> str:
        serialization = shape.serialization
        if "queryName" in serialization:
            return str(serialization["queryName"])
        location = serialization.get("name")
        if location:
            return str(location[0].upper() + location[1:])
        return default

    def member_where(self, where: str, name: str, wire: str) -> str:
        # EC2 names parameters as sent: ``Filter.1.Name``.
        return f"{where}.{wire}" if where else wire

    def item_where(self, where: str, index: int) -> str:
        return f"{where}.{index}"

    def list_entries(self, shape: Any, node: FormNode) -> list[tuple[int, FormNode]] | None:
        entries = numbered_children(node)
        return entries if entries else None

    def bad_value(self, text: str, where: str, expected: str) -> AwsError:
        return AwsError(
            f"Value ( {text} ) for parameter {where} is invalid. Expected {expected}.",
            code="InvalidParameterValue",
            status=400,
            sender_fault=True,
        )

    def check_required(self, shape: Any, parsed: dict[str, Any], where: str) -> None:
        for name in shape.required_members:
            if parsed.get(name) is None:
                wire = self.wire_name(shape.members[name], name)
                raise missing_parameter(self.member_where(where, name, wire))

    # -- serialising -------------------------------------------------------

    def serialize(self, match: OperationMatch, output: dict[str, Any], request_id: str) -> Response:
        operation = match.operation
        name = operation.name
        out = [
            f'{_DECLARATION}<{name}Response xmlns="{self.namespace}">'
            f"<requestId>{xmlout.escape(request_id)}</requestId>"
        ]
        shape = operation.output_shape
        if shape is None:
            out.append("<return>true</return>")
        else:
            xmlout.render_members(shape, output or {}, self.dialect, out)
        out.append(f"</{name}Response>")
        return self._xml(int(operation.http.get("responseCode", 200)), out, request_id)

    def serialize_error(self, error: AwsError, request_id: str) -> Response:
        code, status, message = self.dialect_error(error)
        out = [
            f"{_DECLARATION}<Response><Errors><Error><Code>{xmlout.escape(code)}</Code>"
            f"<Message>{xmlout.escape(message)}</Message></Error></Errors>"
            f"<RequestID>{xmlout.escape(request_id)}</RequestID></Response>"
        ]
        return self._xml(status, out, request_id)
