"""CloudWatch Logs subscription data, decoded or as a Lambda receives it.

A subscription delivers ``{"messageType", "owner", "logGroup", "logStream",
"subscriptionFilters", "logEvents": [{"id", "timestamp", "message"}]}``, gzipped and
base64-encoded; a Lambda destination receives it as ``{"awslogs": {"data": ...}}``.
Each ``message`` is one raw event (for CloudTrail, the record as JSON text); the
event's ``timestamp`` (epoch ms, when it was ingested) is a fallback only. A
``CONTROL_MESSAGE`` is the service checking that the destination is reachable.
"""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import (
    Envelope,
    Inner,
    Opening,
    Reader,
    base64_payload,
    is_object,
    register,
)
from detector.events.model import SkipReason

__all__ = ["CloudWatchLambda", "CloudWatchSubscription"]


@register
class CloudWatchSubscription(Envelope):
    name = "cloudwatch_logs"
    triggers = frozenset({"logEvents"})

    def matches(self, doc: Any) -> bool:
        return type(doc["logEvents"]) is list

    def open(self, doc: Any, reader: Reader) -> Opening:
        if doc.get("messageType") == "CONTROL_MESSAGE":
            return SkipReason.HEARTBEAT
        return [
            Inner(entry["message"], entry.get("timestamp"))
            if is_object(entry) and "message" in entry
            else Inner(entry)  # not a log event: dead-lettered for what it is
            for entry in doc["logEvents"]
        ]


@register
class CloudWatchLambda(Envelope):
    name = "cloudwatch_lambda"
    triggers = frozenset({"awslogs"})

    def matches(self, doc: Any) -> bool:
        return is_object(doc["awslogs"]) and "data" in doc["awslogs"]

    def open(self, doc: Any, reader: Reader) -> Opening:
        return [Inner(base64_payload(doc["awslogs"]["data"], reader, "awslogs.data"))]
