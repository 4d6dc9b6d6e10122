"""The Alert contract (docs/architecture.md; JSON Schema in docs/alert-schema.json).

An alert is a :class:`~detector.detections.Detection` with a stable id and the
bookkeeping of suppression: how many firings it folds (``count``), the event
time of the first and the last, and a ``revision`` that grows each time the
same alert is sent again with a higher count. Receivers deduplicate on ``id``
and keep the highest ``revision``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from detector.detections import Detection, DetectorKind, Severity
from detector.events.model import isoformat

__all__ = ["Alert", "alert_id"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def alert_id(detection: Detection) -> str:
    """Stable id: detector kind, rule or model, group key and suppression window.

    The window is the detection's event time floored to the suppression
    period, so replaying the same events gives the same ids, and one
    suppression period never holds two alerts with the same id.
    """
    period = max(detection.suppress, timedelta(seconds=1))
    window = (detection.time - _EPOCH) // period
    key = "\x1f".join(f"{name}={value}" for name, value in detection.key)
    material = "\x1e".join((detection.kind.value, detection.name, key, str(window)))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as sinks send it."""

    id: str
    detection: Detection
    detected_at: datetime
    count: int = 1
    first_time: datetime | None = None
    last_time: datetime | None = None
    evidence: tuple[str, ...] = ()
    revision: int = 0
    related: tuple[str, ...] = ()
    """Ids of open alerts of the other detector kind (rule vs model) about the same actor;
    for a risk alert, the alerts that make up its risk."""
    risk: float | None = None
    """The actor's risk when the alert was sent (:mod:`detector.alerts.risk`); None without
    an actor or with risk scoring switched off."""

    @property
    def severity(self) -> Severity:
        return self.detection.severity

    @property
    def time(self) -> datetime:
        return self.detection.time

    def to_dict(self) -> dict[str, Any]:
        """The alert as JSON-ready data, in the shape docs/alert-schema.json describes."""
        found = self.detection
        is_model = found.kind is DetectorKind.ANOMALY
        return {
            "id": self.id,
            "revision": self.revision,
            "time": isoformat(found.time),
            "detected_at": isoformat(self.detected_at),
            "kind": found.kind.value,
            "rule": None if is_model else found.name,
            "model": found.name if is_model else None,
            "title": found.title,
            "severity": found.severity.value,
            "actor": found.actor,
            "source": found.source,
            "key": dict(found.key),
            "score": found.score,
            "summary": found.summary,
            "count": self.count,
            "first_time": isoformat(self.first_time or found.time),
            "last_time": isoformat(self.last_time or found.time),
            "features": dict(found.features),
            "explanation": dict(found.explanation),
            "evidence": list(self.evidence or found.evidence),
            "tags": list(found.tags),
            "runbook": found.runbook,
            "related": list(self.related),
            "risk": self.risk,
        }
