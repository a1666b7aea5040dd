"""Amazon Resource Names for the resources lamina serves (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

PARTITION = "aws"

# AWS's server-side patterns (from the recorded ValidationException messages).
LAYER_VERSION_ARN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:"
    r"[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
# LayerName: a name or an unversioned layer ARN, the name part at most 140 characters.
LAYER_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:"
    r"[a-zA-Z0-9-_]{1,140}|[a-zA-Z0-9-_]{1,140})"
)

_LAYER_ARN = re.compile(
    r"arn:(?P<partition>[a-zA-Z0-9-]+):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):layer:"
    r"(?P<name>[a-zA-Z0-9-_]+)(?::(?P<version>[0-9]+))?"
)


@dataclass(frozen=True, slots=True)
class Arn:
    """An ARN read once into its six parts: ``arn:partition:service:region:account:resource``.

    The resource keeps its own separators (``role/path/name``, ``function:f:1``): they differ per
    service, so their readers are the properties below."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> Arn | None:
        """The parts of ``text``; None if it is not an ARN (fewer than six parts)."""
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            return None
        return cls(parts[1], parts[2], parts[3], parts[4], parts[5])

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"

    @property
    def role_name(self) -> str | None:
        """The name of an IAM role's ARN (the path, ``role/a/b/``, is not part of it), else None."""
        if self.service != "iam" or not self.resource.startswith("role/"):
            return None
        return self.resource.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class LayerRef:
    """A layer (``version`` None) or layer version, located by account and region."""

    region: str
    account: str
    name: str
    version: int | None = None

    @property
    def layer_arn(self) -> str:
        return layer_arn(self.region, self.account, self.name)

    @property
    def version_arn(self) -> str:
        if self.version is None:
            raise ValueError(f"{self!r} has no version")
        return layer_version_arn(self.region, self.account, self.name, self.version)


def layer_arn(region: str, account: str, name: str) -> str:
    return f"arn:{PARTITION}:lambda:{region}:{account}:layer:{name}"


def layer_version_arn(region: str, account: str, name: str, version: int) -> str:
    return f"{layer_arn(region, account, name)}:{version}"


def parse_layer_arn(arn: str) -> LayerRef | None:
    """Parse a layer ARN, with or without version; None if it is not one."""
    m = _LAYER_ARN.fullmatch(arn)
    if m is None:
        return None
    version = m.group("version")
    return LayerRef(m.group("region"), m.group("account"), m.group("name"), int(version) if version else None)


def resolve_layer_name(name_or_arn: str, *, region: str, account: str) -> LayerRef:
    """A ``LayerName`` parameter is a bare name (the caller's own) or a layer ARN (its owner's)."""
    if name_or_arn.startswith("arn:"):
        ref = parse_layer_arn(name_or_arn)
        if ref is None or ref.version is not None:
            raise ValueError(f"not an unversioned layer ARN: {name_or_arn!r}")
        return ref
    return LayerRef(region, account, name_or_arn)


def root_user_arn(account: str) -> str:
    return f"arn:{PARTITION}:iam::{account}:root"


def user_arn(account: str, path: str, name: str) -> str:
    """An IAM user's ARN: ``arn:aws:iam::ACCOUNT:user{path}{name}`` (the path starts and ends with /)."""
    return f"arn:aws:iam::{account}:user{path}{name}"
