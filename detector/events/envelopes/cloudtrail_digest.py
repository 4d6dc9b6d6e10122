"""CloudTrail digest files (integrity validation): known non-events, skipped and counted."""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import Envelope, Opening, Reader, register
from detector.events.model import SkipReason

__all__ = ["CloudTrailDigest"]


@register
class CloudTrailDigest(Envelope):
    name = "cloudtrail_digest"
    triggers = frozenset({"digestStartTime"})

    def matches(self, doc: Any) -> bool:
        return "digestEndTime" in doc and "logFiles" in doc

    def open(self, doc: Any, reader: Reader) -> Opening:
        return SkipReason.CLOUDTRAIL_DIGEST
