"""Amazon EventBridge events: ``{"version", "id", "detail-type", "source", "time", "detail"}``.

``detail`` is the service's event (for ``AWS API Call via CloudTrail`` and ``AWS Console
Sign In via CloudTrail``, the CloudTrail record); ``time`` is a fallback only.
"""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import Envelope, Inner, Opening, Reader, is_object, register

__all__ = ["EventBridgeEvent"]


@register
class EventBridgeEvent(Envelope):
    name = "eventbridge"
    triggers = frozenset({"detail-type"})

    def matches(self, doc: Any) -> bool:
        return is_object(doc.get("detail"))

    def open(self, doc: Any, reader: Reader) -> Opening:
        return [Inner(doc["detail"], doc.get("time"))]
