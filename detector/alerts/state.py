"""Detections as plain JSON-ready data, for snapshots of open alerts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from detector.detections import Detection, DetectorKind, Severity

__all__ = ["detection_from_state", "detection_to_state"]


def detection_to_state(detection: Detection) -> dict[str, Any]:
    return {
        "kind": detection.kind.value,
        "name": detection.name,
        "title": detection.title,
        "severity": detection.severity.value,
        "time": detection.time.isoformat(),
        "key": [list(pair) for pair in detection.key],
        "actor": detection.actor,
        "source": detection.source,
        "summary": detection.summary,
        "evidence": list(detection.evidence),
        "suppress_s": detection.suppress.total_seconds(),
        "tags": list(detection.tags),
        "score": detection.score,
        "runbook": detection.runbook,
        "features": dict(detection.features),
        "explanation": dict(detection.explanation),
    }


def detection_from_state(state: dict[str, Any]) -> Detection:
    return Detection(
        kind=DetectorKind(state["kind"]),
        name=state["name"],
        title=state["title"],
        severity=Severity(state["severity"]),
        time=datetime.fromisoformat(state["time"]),
        key=tuple((str(name), str(value)) for name, value in state["key"]),
        actor=state["actor"],
        source=state["source"],
        summary=state["summary"],
        evidence=tuple(state["evidence"]),
        suppress=timedelta(seconds=state["suppress_s"]),
        tags=tuple(state["tags"]),
        score=state["score"],
        runbook=state["runbook"],
        features=state["features"],
        explanation=state["explanation"],
    )
