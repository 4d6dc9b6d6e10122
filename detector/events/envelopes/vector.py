"""Vector's log events: ``{"message", "source_type", "timestamp", ...}`` (its default schema).

``message`` holds the raw line; when that is a JSON object or array it is the event,
and ``timestamp`` (when Vector received it) is a fallback time only.
"""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import Envelope, Inner, Opening, Reader, register
from detector.events.envelopes.logstash import decoded_container, json_text

__all__ = ["VectorLog"]


@register
class VectorLog(Envelope):
    name = "vector"
    triggers = frozenset({"source_type"})
    priority = 40

    def matches(self, doc: Any) -> bool:
        return json_text(doc.get("message")) is not None

    def open(self, doc: Any, reader: Reader) -> Opening:
        value = decoded_container(doc["message"], reader)
        if value is None:
            return None
        return [Inner(value, doc.get("timestamp"))]
