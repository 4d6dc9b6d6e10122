"""The published-sample line format ``{"source", "case", "expected_alert", "event"}``.

Sample corpora (``tests/data/samples``) replay as they are: the ``event`` is the record.
"""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import Envelope, Inner, Opening, Reader, register

__all__ = ["SampleFixture"]

_KEYS = frozenset({"event", "source", "case", "expected_alert"})


@register
class SampleFixture(Envelope):
    name = "sample_fixture"
    triggers = frozenset({"case"})
    priority = 10  # sample corpora are replayed and benchmarked line by line

    def matches(self, doc: Any) -> bool:
        return "event" in doc and doc.keys() <= _KEYS and type(doc.get("source")) is str

    def open(self, doc: Any, reader: Reader) -> Opening:
        return [Inner(doc["event"])]
