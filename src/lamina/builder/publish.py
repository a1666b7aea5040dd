"""``lamina layer publish``: PublishLayerVersion, unless the newest version already holds these bytes.

Lambda names a layer version's content by ``CodeSha256`` (base64 SHA-256 of the zip). The newest
version's is read with ListLayerVersions (newest first) and GetLayerVersion; when it equals the zip's,
nothing is published and that version is returned, so re-running a deploy with an unchanged
(deterministic) build does not pile up identical versions.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Published:
    arn: str
    version: int
    unchanged: bool
    code_sha256: str
    note: str | None = None

    def json(self) -> dict[str, Any]:
        return {"LayerVersionArn": self.arn, "Version": self.version, "unchanged": self.unchanged}


def code_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def publish(
    lam: Any,
    zip_path: Path,
    layer_name: str,
    *,
    description: str | None = None,
    runtimes: list[str] | None = None,
    architectures: list[str] | None = None,
    license_info: str | None = None,
    force: bool = False,
) -> Published:
    data = zip_path.read_bytes()
    digest = code_sha256(data)
    if not force:
        newest = lam.list_layer_versions(LayerName=layer_name, MaxItems=1).get("LayerVersions") or []
        if newest:
            version = int(newest[0]["Version"])
            current = lam.get_layer_version(LayerName=layer_name, VersionNumber=version)
            if current.get("Content", {}).get("CodeSha256") == digest:
                differs = [
                    label
                    for label, wanted, have in (
                        ("description", description, current.get("Description", "")),
                        ("compatible runtimes", runtimes, current.get("CompatibleRuntimes", [])),
                        (
                            "compatible architectures",
                            architectures,
                            current.get("CompatibleArchitectures", []),
                        ),
                        ("license", license_info, current.get("LicenseInfo", "")),
                    )
                    if wanted is not None and wanted != have
                ]
                note = (
                    f"its {', '.join(differs)} differ from what was given; --force publishes a new version"
                    if differs
                    else None
                )
                return Published(current["LayerVersionArn"], version, True, digest, note)
    args: dict[str, Any] = {"LayerName": layer_name, "Content": {"ZipFile": data}}
    if description is not None:
        args["Description"] = description
    if runtimes:
        args["CompatibleRuntimes"] = runtimes
    if architectures:
        args["CompatibleArchitectures"] = architectures
    if license_info is not None:
        args["LicenseInfo"] = license_info
    out = lam.publish_layer_version(**args)
    return Published(out["LayerVersionArn"], int(out["Version"]), False, out["Content"]["CodeSha256"])
