"""Logstash, Filebeat and Elastic Agent documents that carry the raw event as JSON text.

The raw event is in ``message`` (Logstash's plain codec, Filebeat) or in
``event.original`` (ECS mode, Elastic Agent's ``preserve_original_event``), nested or
as a flat dotted key; ``@timestamp`` is the shipper's time, a fallback only. A
document whose ``message`` is plain text (or any JSON that is not an object or
array) is not opened: it is an ECS event and reaches the ECS parser unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from detector.events.envelopes.base import Envelope, Inner, Opening, Reader, is_object, register

__all__ = ["LogstashMessage", "json_text"]

_JSON_START = re.compile(r"\s*[\[{]")


def json_text(value: Any) -> str | None:
    """``value`` if it is a string that starts like a JSON object or array, else None."""
    if type(value) is str and _JSON_START.match(value):
        return value
    return None


def decoded_container(text: str, reader: Reader) -> Any:
    """``text`` decoded if it is a JSON object or array within the limits, else None."""
    try:
        value = reader.decode(text)
    except ValueError:
        return None
    return value if is_object(value) or type(value) is list else None


def _raw_event(doc: Any) -> str | None:
    text = json_text(doc.get("message"))
    if text is not None:
        return text
    event = doc.get("event")
    original = event.get("original") if is_object(event) else doc.get("event.original")
    return json_text(original)


@register
class LogstashMessage(Envelope):
    name = "logstash"
    triggers = frozenset({"message", "event", "event.original"})
    priority = 70  # the more specific shippers that also use "message" or "event" go first

    def matches(self, doc: Any) -> bool:
        return _raw_event(doc) is not None

    def open(self, doc: Any, reader: Reader) -> Opening:
        text = _raw_event(doc)
        value = None if text is None else decoded_container(text, reader)
        if value is None:
            return None
        return [Inner(value, doc.get("@timestamp"))]
