"""The contract between detectors (rules, models) and the alert layer.

A :class:`Detection` is one firing of one detector for one group key at one
event time, already explained: a one-sentence summary with the numbers, the
evidence event ids, the feature values and what they were compared with. The
alert layer gives it a stable id, folds repeats within the suppression period
and hands alerts to the sinks; it never needs to know which detector fired.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

__all__ = ["Detection", "DetectorKind", "Severity"]


class DetectorKind(StrEnum):
    RULE = "rule"
    ANOMALY = "anomaly"
    RISK = "risk"
    """Several rule and anomaly alerts on one actor (:mod:`detector.alerts.risk`)."""


class Severity(StrEnum):
    """Alert severity, ordered: ``Severity.HIGH.rank > Severity.LOW.rank``."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {severity: rank for rank, severity in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class Detection:
    """One detector firing, explained.

    ``name`` is the rule id or model name; ``key`` the group-by fields and
    their values (``(("actor", "alice"),)``) that identify *whose* situation
    this is; ``time`` the event time of the event that made it fire;
    ``evidence`` the ids of the events that count, the triggering one last;
    ``explanation`` maps each feature or condition that mattered to its value
    and what it was compared with (threshold, the actor's baseline, ...).
    """

    kind: DetectorKind
    name: str
    title: str
    severity: Severity
    time: datetime
    key: tuple[tuple[str, str], ...]
    actor: str | None
    source: str
    summary: str
    evidence: tuple[str, ...]
    suppress: timedelta
    tags: tuple[str, ...] = ()
    score: float | None = None
    runbook: str | None = None
    features: Mapping[str, float] = field(default_factory=dict)
    explanation: Mapping[str, Any] = field(default_factory=dict)
