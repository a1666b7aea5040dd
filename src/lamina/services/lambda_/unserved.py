"""Lambda operations that need something lamina does not serve, and what that is.

Answered with one clear error naming what is missing (``501 NotImplemented``), never a generic "not
implemented yet": these need services or infrastructure beyond Lambda itself.
"""

from __future__ import annotations

from collections.abc import Mapping

_EVENT_SOURCES = (
    "event sources (Amazon SQS, Kinesis, DynamoDB Streams, Amazon MQ, Amazon MSK or Apache Kafka, "
    "DocumentDB), which lamina does not serve"
)
_DURABLE = "Lambda durable functions (durable executions and their checkpoints), which lamina does not run"
_CAPACITY = "Lambda Managed Instances (capacity providers of EC2 instances), which lamina does not run"

NEEDS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "CreateEventSourceMapping",
            "GetEventSourceMapping",
            "UpdateEventSourceMapping",
            "DeleteEventSourceMapping",
            "ListEventSourceMappings",
        ),
        _EVENT_SOURCES,
    ),
    **dict.fromkeys(
        (
            "CheckpointDurableExecution",
            "DeleteDurableExecution",
            "GetDurableExecution",
            "GetDurableExecutionHistory",
            "GetDurableExecutionState",
            "ListDurableExecutionsByFunction",
            "PauseDurableExecution",
            "ResumeDurableExecution",
            "SendDurableExecutionCallbackFailure",
            "SendDurableExecutionCallbackHeartbeat",
            "SendDurableExecutionCallbackSuccess",
            "StopDurableExecution",
        ),
        _DURABLE,
    ),
    **dict.fromkeys(
        (
            "CreateCapacityProvider",
            "DeleteCapacityProvider",
            "GetCapacityProvider",
            "ListCapacityProviders",
            "ListFunctionVersionsByCapacityProvider",
            "UpdateCapacityProvider",
        ),
        _CAPACITY,
    ),
}
