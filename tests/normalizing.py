"""One JSON document through the bundled normalizer, the way the parser tests feed it.

Each document is serialised as a source would deliver it, in one record at
``Position("test", 1)``; the tests expect exactly one result back (an event or a
dead letter), so an envelope holding several events fails loudly here.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from detector.events.model import DeadLetter, Event, Skipped
from detector.events.normalizer import Normalizer
from detector.events.taxonomy import Taxonomy
from detector.sources.record import Position, RawRecord
from tests.samples import sample

__all__ = [
    "VENDORS",
    "as_dead_letter",
    "as_event",
    "bundled_normalizer",
    "normalize_one",
    "other_vendors",
    "sample_event",
]

# The vendors with published samples in tests/data/samples (ECS has none).
VENDORS = (
    "azure_activity",
    "azure_entra_id",
    "cloudtrail",
    "gcp_audit",
    "github_audit",
    "gitlab_audit",
    "k8s_audit",
    "m365_audit",
    "okta_system_log",
)


def other_vendors(source: str) -> tuple[str, ...]:
    """Every vendor in ``VENDORS`` but ``source``, in the same order."""
    return tuple(vendor for vendor in VENDORS if vendor != source)


@cache
def bundled_normalizer() -> Normalizer:
    """A normalizer with every registered parser and the bundled taxonomy, built once."""
    return Normalizer(Taxonomy.bundled())


def normalize_one(doc: Any) -> Event | DeadLetter | Skipped:
    """The single event or dead letter the bundled normalizer makes of ``doc``."""
    record = RawRecord(value=json.dumps(doc).encode(), position=Position("test", 1))
    results = bundled_normalizer().normalize(record)
    assert len(results) == 1
    return results[0]


def as_event(doc: Any, source: str | None = None) -> Event:
    """``doc`` normalized, which must be an event (from ``source``, when given)."""
    result = normalize_one(doc)
    assert isinstance(result, Event), result
    if source is not None:
        assert result.source == source
    return result


def as_dead_letter(doc: Any) -> DeadLetter:
    """``doc`` normalized, which must be a dead letter."""
    result = normalize_one(doc)
    assert isinstance(result, DeadLetter), result
    return result


def sample_event(source: str, case: str) -> Event:
    """The event of ``source``'s first sample whose case contains ``case``."""
    return as_event(sample(source, case), source)
