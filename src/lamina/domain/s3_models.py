"""S3's wire shapes lamina answers with, as TypedDicts keyed like AWS (checked against botocore's
``s3`` model by tests/unit/test_models.py). Timestamps are already rendered for the wire
(``2026-01-02T03:04:05.678Z``)."""

from __future__ import annotations

from typing import TypedDict


class Owner(TypedDict, total=False):
    DisplayName: str
    ID: str


class S3Bucket(TypedDict, total=False):
    """A ListBuckets entry (botocore's ``Bucket``)."""

    Name: str
    CreationDate: str
    BucketRegion: str
    BucketArn: str


class RestoreStatus(TypedDict, total=False):
    IsRestoreInProgress: bool
    RestoreExpiryDate: str


class S3Object(TypedDict, total=False):
    """A ListObjects/ListObjectsV2 entry (botocore's ``Object``)."""

    Key: str
    LastModified: str
    ETag: str
    ChecksumAlgorithm: list[str]
    ChecksumType: str
    Size: int
    StorageClass: str
    Owner: Owner
    RestoreStatus: RestoreStatus


class CommonPrefix(TypedDict, total=False):
    Prefix: str


class Tag(TypedDict, total=False):
    Key: str
    Value: str


class DeletedObject(TypedDict, total=False):
    Key: str
    VersionId: str
    DeleteMarker: bool
    DeleteMarkerVersionId: str


class DeleteError(TypedDict, total=False):
    """A DeleteObjects ``Errors`` entry (botocore's ``Error``)."""

    Key: str
    VersionId: str
    Code: str
    Message: str


class CopyObjectResult(TypedDict, total=False):
    ETag: str
    LastModified: str
    ChecksumType: str
    ChecksumCRC32: str
    ChecksumCRC32C: str
    ChecksumCRC64NVME: str
    ChecksumSHA1: str
    ChecksumSHA256: str
    ChecksumSHA512: str
    ChecksumMD5: str
    ChecksumXXHASH64: str
    ChecksumXXHASH3: str
    ChecksumXXHASH128: str


SHAPES: dict[type, tuple[str, str]] = {
    Owner: ("s3", "Owner"),
    S3Bucket: ("s3", "Bucket"),
    RestoreStatus: ("s3", "RestoreStatus"),
    S3Object: ("s3", "Object"),
    CommonPrefix: ("s3", "CommonPrefix"),
    Tag: ("s3", "Tag"),
    DeletedObject: ("s3", "DeletedObject"),
    DeleteError: ("s3", "Error"),
    CopyObjectResult: ("s3", "CopyObjectResult"),
}
