"""CloudWatch Logs' wire shapes lamina answers with, as TypedDicts keyed like AWS (checked against
botocore's ``logs`` model by tests/unit/test_models.py). Times are epoch milliseconds."""

from __future__ import annotations

from typing import TypedDict


class LogGroup(TypedDict, total=False):
    """A DescribeLogGroups entry."""

    logGroupName: str
    creationTime: int
    retentionInDays: int
    metricFilterCount: int
    arn: str
    storedBytes: int
    kmsKeyId: str
    dataProtectionStatus: str
    inheritedProperties: list[str]
    logGroupClass: str
    logGroupArn: str
    deletionProtectionEnabled: bool
    bearerTokenAuthenticationEnabled: bool
    retentionPolicyName: str


class LogStream(TypedDict, total=False):
    """A DescribeLogStreams entry."""

    logStreamName: str
    creationTime: int
    firstEventTimestamp: int
    lastEventTimestamp: int
    lastIngestionTime: int
    uploadSequenceToken: str
    arn: str
    storedBytes: int


class OutputLogEvent(TypedDict, total=False):
    """A GetLogEvents event."""

    timestamp: int
    message: str
    ingestionTime: int


class FilteredLogEvent(TypedDict, total=False):
    """A FilterLogEvents event."""

    logStreamName: str
    timestamp: int
    message: str
    ingestionTime: int
    eventId: str


class RejectedLogEventsInfo(TypedDict, total=False):
    """PutLogEvents' account of the events it did not store (indexes into the batch)."""

    tooNewLogEventStartIndex: int
    tooOldLogEventEndIndex: int
    expiredLogEventEndIndex: int


SHAPES: dict[type, tuple[str, str]] = {
    LogGroup: ("logs", "LogGroup"),
    LogStream: ("logs", "LogStream"),
    OutputLogEvent: ("logs", "OutputLogEvent"),
    FilteredLogEvent: ("logs", "FilteredLogEvent"),
    RejectedLogEventsInfo: ("logs", "RejectedLogEventsInfo"),
}
