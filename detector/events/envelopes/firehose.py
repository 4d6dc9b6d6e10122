"""Amazon Data Firehose batches: a transformation Lambda's input and HTTP endpoint requests.

A Lambda receives ``{"invocationId", "deliveryStreamArn", "region", "records":
[{"recordId", "approximateArrivalTimestamp", "data"}]}``; an HTTP endpoint receives
``{"requestId", "timestamp", "records": [{"data"}]}``. ``data`` is base64, and gzip
inside when CloudWatch Logs is the source. Each record is opened on its own, so a
bad one costs only itself. Azure's ``{"records": [...]}`` has none of these keys.
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
    items_of,
    register,
)

__all__ = ["FirehoseBatch", "FirehoseRecord"]

_BATCH_KEYS = ("invocationId", "requestId", "deliveryStreamArn")
_RECORD_KEYS = frozenset(
    {"recordId", "approximateArrivalTimestamp", "data", "kinesisRecordMetadata", "metadata"}
)


@register
class FirehoseBatch(Envelope):
    name = "firehose"
    triggers = frozenset({"records"})
    priority = 40

    def matches(self, doc: Any) -> bool:
        records = doc["records"]
        if type(records) is not list:
            return False
        if any(key in doc for key in _BATCH_KEYS):
            return True
        return bool(records) and is_object(records[0]) and "recordId" in records[0]

    def open(self, doc: Any, reader: Reader) -> Opening:
        arrived = doc.get("timestamp")  # the HTTP endpoint request's, in epoch ms
        return items_of(doc["records"], "records", arrived)


@register
class FirehoseRecord(Envelope):
    name = "firehose_record"
    triggers = frozenset({"data"})

    def matches(self, doc: Any) -> bool:
        return type(doc["data"]) is str and doc.keys() <= _RECORD_KEYS

    def open(self, doc: Any, reader: Reader) -> Opening:
        payload = base64_payload(doc["data"], reader, "data")
        return [Inner(payload, doc.get("approximateArrivalTimestamp"))]
