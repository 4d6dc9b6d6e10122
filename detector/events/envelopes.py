"""Wrappers that carry vendor events inside another object, unwrapped before parsing.

Recognised, in this order, up to two levels deep:

* ``{"Records": [...]}`` - a CloudTrail log file as S3 delivers it;
* ``{"records": [...]}`` - Azure Monitor diagnostic export / Event Hub batches;
* ``{"integration": "github", "github": {...}}`` - Wazuh's integration wrapper;
* ``{"event": {...}, "source": "...", "case": "..."}`` - the published-sample
  fixture format (``expected_alert`` optional), so sample corpora replay as is.

Anything else is the event itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["unwrap"]

_FIXTURE_KEYS = frozenset({"event", "source", "case", "expected_alert"})
_MAX_LEVELS = 2


def unwrap(doc: Mapping[str, Any], levels: int = _MAX_LEVELS) -> list[Any]:
    """The events inside ``doc``: ``[doc]`` itself when it is not an envelope.

    Items may be non-objects (a malformed batch); the caller dead-letters those.
    """
    inner = _open(doc)
    if inner is None or levels == 0:
        return [doc]
    out: list[Any] = []
    for item in inner:
        out.extend(unwrap(item, levels - 1) if isinstance(item, Mapping) else [item])
    return out


def _open(doc: Mapping[str, Any]) -> list[Any] | None:
    if len(doc) == 1:
        for key in ("Records", "records"):
            batch = doc.get(key)
            if isinstance(batch, list):
                return batch
    integration = doc.get("integration")
    if len(doc) == 2 and isinstance(integration, str):
        wrapped = doc.get(integration)
        if isinstance(wrapped, Mapping):
            return [wrapped]
    fixture = "event" in doc and "case" in doc and doc.keys() <= _FIXTURE_KEYS
    if fixture and isinstance(doc.get("source"), str):
        return [doc["event"]]
    return None
