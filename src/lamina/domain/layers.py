"""Layer versions and their resource policies: values and decisions (pure).

Facts from AWS (recorded, see spec/layers.md):
- versions are numbered from 1 per (account, region, name) and never reused;
- a version's metadata is immutable; only its resource policy changes, and every
  change rotates the policy's RevisionId;
- ``Description`` is always present, ``LicenseInfo`` / compatibility lists only when given.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TypedDict

from lamina.domain.arns import layer_arn, layer_version_arn, root_user_arn
from lamina.domain.clock import aws_timestamp
from lamina.domain.models import GetLayerVersionResponse, LayerVersionsListItem

# Quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
MAX_UNZIPPED = 262_144_000
MAX_POLICY_BYTES = 20_480
GET_LAYER_VERSION = "lambda:GetLayerVersion"


class PolicyStatement(TypedDict, total=False):
    """One statement of a layer version's resource policy, as stored and as AWS prints it."""

    Sid: str
    Effect: str
    Principal: str | dict[str, str]  # "*" or {"AWS": account root ARN, ARN or "*"}
    Action: str
    Resource: str
    Condition: dict[str, dict[str, str]]


@dataclass(frozen=True)
class LayerVersion:
    account: str
    region: str
    name: str
    version: int
    description: str
    created_ms: int
    compatible_runtimes: tuple[str, ...] | None
    compatible_architectures: tuple[str, ...] | None
    license_info: str | None
    sha256_hex: str
    code_size: int
    unzipped_size: int
    policy: tuple[PolicyStatement, ...] = ()
    revision_id: str | None = None

    @property
    def layer_arn(self) -> str:
        return layer_arn(self.region, self.account, self.name)

    @property
    def arn(self) -> str:
        return layer_version_arn(self.region, self.account, self.name, self.version)

    @property
    def code_sha256(self) -> str:
        """Base64 of the SHA-256, as Lambda's ``CodeSha256``."""
        return base64.b64encode(bytes.fromhex(self.sha256_hex)).decode()


def list_item(v: LayerVersion) -> LayerVersionsListItem:
    """A ``LayerVersionsListItem``."""
    item: LayerVersionsListItem = {
        "LayerVersionArn": v.arn,
        "Version": v.version,
        "Description": v.description,
        "CreatedDate": aws_timestamp(v.created_ms),
    }
    if v.compatible_architectures is not None:
        item["CompatibleArchitectures"] = list(v.compatible_architectures)
    if v.compatible_runtimes is not None:
        item["CompatibleRuntimes"] = list(v.compatible_runtimes)
    if v.license_info is not None:
        item["LicenseInfo"] = v.license_info
    return item


def full_shape(v: LayerVersion, location: str) -> GetLayerVersionResponse:
    """The PublishLayerVersion / GetLayerVersion output (the list item's members, then these)."""
    return {
        **list_item(v),
        "Content": {"Location": location, "CodeSha256": v.code_sha256, "CodeSize": v.code_size},
        "LayerArn": v.layer_arn,
    }


def matches(v: LayerVersion, runtime: str | None, architecture: str | None) -> bool:
    """Whether a version passes ListLayers / ListLayerVersions filters."""
    if runtime is not None and runtime not in (v.compatible_runtimes or ()):
        return False
    return architecture is None or architecture in (v.compatible_architectures or ())


# -- resource policy ---------------------------------------------------------------


def make_statement(
    sid: str, principal: str, resource_arn: str, organization_id: str | None = None
) -> PolicyStatement:
    """One policy statement in AWS's key order (Sid, Effect, Principal, Action, Resource)."""
    rendered: str | dict[str, str]
    if principal == "*":
        rendered = "*"
    elif principal.isdigit():
        rendered = {"AWS": root_user_arn(principal)}
    else:
        rendered = {"AWS": principal}
    statement: PolicyStatement = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": rendered,
        "Action": GET_LAYER_VERSION,
        "Resource": resource_arn,
    }
    if organization_id is not None:
        statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
    return statement


def policy_document(statements: tuple[PolicyStatement, ...]) -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Id": "default", "Statement": list(statements)}, separators=(",", ":")
    )


def grants(statements: tuple[PolicyStatement, ...], account: str) -> bool:
    """Whether the policy lets ``account`` call GetLayerVersion.

    lamina has no AWS Organizations, so a statement conditioned on an
    organisation id grants nobody (safe default).
    """
    for s in statements:
        if s.get("Effect") != "Allow" or "Condition" in s:
            continue
        p = s.get("Principal")
        if p == "*" or (isinstance(p, dict) and p.get("AWS") in ("*", root_user_arn(account))):
            return True
    return False


# -- pagination markers ----------------------------------------------------------------


def encode_marker(kind: str, value: str | int) -> str:
    """Opaque, stable marker: the key of the last item returned."""
    raw = json.dumps([kind, value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_marker(marker: str, kind: str) -> str | int | None:
    """The key encoded in ``marker``, or None if it is not a marker of ``kind``."""
    try:
        raw = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4))
        got_kind, value = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        return None
    if got_kind != kind or not isinstance(value, str | int) or isinstance(value, bool):
        return None
    return value
