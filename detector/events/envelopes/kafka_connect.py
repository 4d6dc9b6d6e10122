"""Kafka Connect's JsonConverter with schemas enabled: ``{"schema": {...}, "payload": ...}``.

``payload`` is the record: an object (a struct schema) or JSON text (a string schema).
"""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import (
    Envelope,
    EnvelopeError,
    Inner,
    Opening,
    Reader,
    is_object,
    register,
)

__all__ = ["KafkaConnectJson"]


@register
class KafkaConnectJson(Envelope):
    name = "kafka_connect"
    triggers = frozenset({"payload"})

    def matches(self, doc: Any) -> bool:
        schema = doc.get("schema", False)
        return len(doc) == 2 and (schema is None or is_object(schema))

    def open(self, doc: Any, reader: Reader) -> Opening:
        payload = doc["payload"]
        if not (is_object(payload) or isinstance(payload, str)):
            raise EnvelopeError(f"payload is {type(payload).__name__}, not an object or JSON text")
        return [Inner(payload)]
