"""CloudTrail log files as S3 delivers them: ``{"Records": [...]}``."""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import Envelope, Opening, Reader, items_of, register

__all__ = ["CloudTrailFile"]


@register
class CloudTrailFile(Envelope):
    name = "cloudtrail_s3"
    triggers = frozenset({"Records"})

    def matches(self, doc: Any) -> bool:
        # An SQS/SNS/Kinesis Lambda batch also says "Records", but with more keys per item;
        # a CloudTrail file holds that one key only.
        return len(doc) == 1 and type(doc["Records"]) is list

    def open(self, doc: Any, reader: Reader) -> Opening:
        return items_of(doc["Records"], "Records")
