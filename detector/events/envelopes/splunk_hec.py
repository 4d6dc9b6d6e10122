"""Splunk HTTP Event Collector events: ``{"time", "event", "host", "source", "sourcetype", ...}``.

``event`` is the vendor event, as an object or as JSON text; ``time`` (epoch seconds)
is when the sender says it happened, a fallback only.
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

__all__ = ["SplunkHec"]

_KEYS = frozenset({"time", "event", "host", "source", "sourcetype", "index", "fields"})


@register
class SplunkHec(Envelope):
    name = "splunk_hec"
    triggers = frozenset({"event"})
    priority = 40

    def matches(self, doc: Any) -> bool:
        # Only HEC's own keys: an ECS document also has "event", among many others.
        return bool(doc.keys() <= _KEYS)

    def open(self, doc: Any, reader: Reader) -> Opening:
        event = doc["event"]
        if not (is_object(event) or isinstance(event, str)):
            raise EnvelopeError(f"event is {type(event).__name__}, not an object or JSON text")
        return [Inner(event, doc.get("time"))]
