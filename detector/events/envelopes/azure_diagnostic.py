"""Azure Monitor diagnostic settings (storage blobs, Event Hubs): ``{"records": [...]}``."""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import Envelope, Opening, Reader, items_of, register

__all__ = ["AzureDiagnosticRecords"]


@register
class AzureDiagnosticRecords(Envelope):
    name = "azure_diagnostic"
    triggers = frozenset({"records"})
    priority = 60  # after Firehose, whose batches also say "records"

    def matches(self, doc: Any) -> bool:
        return len(doc) == 1 and type(doc["records"]) is list

    def open(self, doc: Any, reader: Reader) -> Opening:
        return items_of(doc["records"], "records")
