"""``aws cloudtrail lookup-events`` output: ``{"Events": [{"EventId", "EventTime", ...,
"CloudTrailEvent": "<the record as JSON text>"}]}``.

Each entry is opened on its own (a bad one costs only itself); ``EventTime`` is a
fallback only, the record's own ``eventTime`` wins.
"""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import (
    Envelope,
    EnvelopeError,
    Inner,
    Opening,
    Reader,
    items_of,
    register,
)

__all__ = ["LookupEvent", "LookupEvents"]


@register
class LookupEvents(Envelope):
    name = "cloudtrail_lookup"
    triggers = frozenset({"Events"})

    def matches(self, doc: Any) -> bool:
        return type(doc["Events"]) is list

    def open(self, doc: Any, reader: Reader) -> Opening:
        return items_of(doc["Events"], "Events")


@register
class LookupEvent(Envelope):
    name = "cloudtrail_lookup_event"
    triggers = frozenset({"CloudTrailEvent"})

    def matches(self, doc: Any) -> bool:
        return True

    def open(self, doc: Any, reader: Reader) -> Opening:
        text = doc["CloudTrailEvent"]
        if not isinstance(text, str):
            raise EnvelopeError(f"CloudTrailEvent is {type(text).__name__}, not JSON text")
        return [Inner(text, doc.get("EventTime"))]
