"""``lamina layer publish``: PublishLayerVersion, unless the newest version already holds these bytes.

Lambda names a layer version's content by ``CodeSha256`` (base64 SHA-256 of the zip). The newest
version's is read with ListLayerVersions (newest first) and GetLayerVersion; when it equals the zip's,
nothing is published and that version is returned, so re-running a deploy with an unchanged
(deterministic) build does not pile up identical versions.

A zip over 50 MB cannot travel in the request ("Use Amazon S3 for larger files", Lambda's
AccountLimit.CodeSizeZipped): it is uploaded to S3 (multipart, by boto3's transfer manager) under a
key named by its SHA-256, then published with ``Content.S3Bucket/S3Key``, as SAM and the AWS CLI
users do. The bucket is ``--s3-bucket``, or one made for the account and region
(``lamina-layers-<account>-<region>``, in the function's region as Lambda requires). The object
stays (a re-publish of the same bytes skips the upload; on lamina it costs no second copy).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.domain import functions as F
from lamina.errors import LaminaError

# Largest zip sent in the request itself (PublishLayerVersion's ZipFile).
DIRECT_LIMIT = F.MAX_ZIPPED
# Where uploaded layer zips go in the bucket.
KEY_PREFIX = "lamina-layers/"


class PublishError(LaminaError):
    """Publishing cannot go on, for a reason said in words (not an AWS error)."""


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


def file_sha256(path: Path) -> bytes:
    """The SHA-256 of a file, read in pieces (a layer zip may be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def default_bucket(account: str, region: str) -> str:
    """The bucket ``lamina layer publish`` makes when none is given: one per account and region
    (bucket names are global, so the account is in it)."""
    return f"lamina-layers-{account}-{region}"


@dataclass(frozen=True)
class S3Upload:
    """How a large zip reaches S3: the client, the bucket (None: the default one, made if missing),
    the account's id (for the default name) and where progress lines go."""

    s3: Any
    bucket: str | None
    account: Callable[[], str]
    say: Callable[[str], None]


def _ensure_default_bucket(s3: Any, name: str, region: str) -> None:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=name)
        return
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("403", "AccessDenied"):
            raise PublishError(
                f"the bucket {name} exists but is not yours (bucket names are global): "
                "name one of your buckets in this region with --s3-bucket"
            ) from None
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    args: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":  # us-east-1 takes no LocationConstraint (CreateBucket)
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**args)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


def upload(upload: S3Upload, zip_path: Path, digest: bytes, region: str) -> tuple[str, str]:
    """Put the zip in S3 (unless an object of this content is there already); (bucket, key)."""
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import ClientError

    bucket = upload.bucket
    if bucket is None:
        bucket = default_bucket(upload.account(), region)
        _ensure_default_bucket(upload.s3, bucket, region)
    key = f"{KEY_PREFIX}{digest.hex()}.zip"
    size = zip_path.stat().st_size
    try:
        head = upload.s3.head_object(Bucket=bucket, Key=key)
        if int(head.get("ContentLength", -1)) == size:
            upload.say(f"s3://{bucket}/{key} already holds this zip: not uploaded again")
            return bucket, key
    except ClientError as exc:
        # HeadObject answers without a body: a 403 is told in full by the upload's own refusal.
        if exc.response.get("Error", {}).get("Code") not in ("403", "404", "NoSuchKey", "NotFound"):
            raise
    upload.say(f"uploading {size / 1_048_576:.1f} MB to s3://{bucket}/{key}")
    # Multipart above 64 MB in 16 MB parts, 4 at a time: few requests, memory of a few parts.
    config = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=16 << 20, max_concurrency=4)
    upload.s3.upload_file(str(zip_path), bucket, key, Config=config)
    return bucket, key


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
    s3: S3Upload | None = None,
    region: str = "us-east-1",
) -> Published:
    """Publish ``zip_path`` as a new version of ``layer_name`` (see the module's docstring). ``s3``:
    how to upload a zip over 50 MB (or any zip, when it names a bucket); None sends it in the request."""
    raw = file_sha256(zip_path)
    digest = base64.b64encode(raw).decode()
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
    content: dict[str, Any]
    if s3 is not None and (s3.bucket is not None or zip_path.stat().st_size > DIRECT_LIMIT):
        bucket, key = upload(s3, zip_path, raw, region)
        content = {"S3Bucket": bucket, "S3Key": key}
    else:
        content = {"ZipFile": zip_path.read_bytes()}
    args: dict[str, Any] = {"LayerName": layer_name, "Content": content}
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
