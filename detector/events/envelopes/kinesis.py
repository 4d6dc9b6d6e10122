"""Kinesis Data Streams records as a Lambda function receives them.

``{"Records": [{"kinesis": {"data", "partitionKey", "sequenceNumber",
"approximateArrivalTimestamp", ...}, "eventSource": "aws:kinesis", "eventName":
"aws:kinesis:record", "eventID", "awsRegion", ...}]}``. The outer ``Records`` list is
opened like a CloudTrail file; each item is recognised here by its ``kinesis`` object,
before the CloudTrail parser could take ``eventName`` + ``eventSource`` for its own.
``data`` is base64, and gzip inside when a CloudWatch Logs subscription feeds the stream;
``approximateArrivalTimestamp`` is epoch seconds.
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

__all__ = ["KinesisRecord"]


@register
class KinesisRecord(Envelope):
    name = "kinesis"
    triggers = frozenset({"kinesis"})

    def matches(self, doc: Any) -> bool:
        return is_object(doc["kinesis"]) and "data" in doc["kinesis"]

    def open(self, doc: Any, reader: Reader) -> Opening:
        record = doc["kinesis"]
        payload = base64_payload(record["data"], reader, "kinesis.data")
        return [Inner(payload, record.get("approximateArrivalTimestamp"))]
