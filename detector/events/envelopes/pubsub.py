"""Google Cloud Pub/Sub messages carrying Cloud Logging ``LogEntry`` JSON (log sinks).

A push subscription POSTs ``{"message": {"data", "attributes", "messageId",
"publishTime"}, "subscription"}``; a pull returns ``{"receivedMessages": [{"ackId",
"message": {...}}]}``. ``data`` is the base64 of the LogEntry; ``publishTime`` is a
fallback time only (a LogEntry has its own ``timestamp``).
"""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import (
    Envelope,
    EnvelopeError,
    Inner,
    Opening,
    Reader,
    b64decode,
    is_object,
    items_of,
    register,
)

__all__ = ["PubSubMessage", "PubSubPull"]


@register
class PubSubMessage(Envelope):
    name = "pubsub"
    triggers = frozenset({"subscription", "ackId"})
    priority = 40

    def matches(self, doc: Any) -> bool:
        message = doc.get("message")
        return is_object(message) and ("data" in message or "messageId" in message)

    def open(self, doc: Any, reader: Reader) -> Opening:
        message = doc["message"]
        if "data" not in message:
            raise EnvelopeError("message has no data (an attributes-only message)")
        return [Inner(b64decode(message["data"], "message.data"), message.get("publishTime"))]


@register
class PubSubPull(Envelope):
    name = "pubsub_pull"
    triggers = frozenset({"receivedMessages"})

    def matches(self, doc: Any) -> bool:
        return type(doc["receivedMessages"]) is list

    def open(self, doc: Any, reader: Reader) -> Opening:
        return items_of(doc["receivedMessages"], "receivedMessages")
