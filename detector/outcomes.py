"""What the pipeline hands back: one batch's outcome, and the running totals of a run.

:class:`BatchOutcome` is what :meth:`detector.pipeline.Pipeline.process` (or
``normalize``) made of one batch of records; :class:`RunStats` adds batches up
for the replay summary and the daemon's metrics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from detector.alerts.model import Alert
from detector.events.model import DeadLetter, Event, Skipped

__all__ = ["BatchOutcome", "RunStats"]


@dataclass(slots=True)
class BatchOutcome:
    """What one batch of records produced."""

    events: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(slots=True)
class RunStats:
    """Running totals, for the replay summary and the daemon's metrics."""

    records: int = 0
    events: int = 0
    late_events: int = 0
    duplicates: Counter[str] = field(default_factory=Counter)
    """Per source, events seen before (redelivered): counted, not detected on again."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Per reason, records known not to be events (CloudTrail digests, heartbeats)."""
    dead_letters: Counter[str] = field(default_factory=Counter)
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(rule or model, severity) → distinct alerts (first sends only)."""
    folded: int = 0

    def count(self, outcome: BatchOutcome, records: int) -> None:
        self.records += records
        self.events += len(outcome.events)
        self.dead_letters.update(d.reason.value for d in outcome.dead_letters)
        self.skipped.update(s.reason.value for s in outcome.skipped)
        self.add_alerts(outcome.alerts)

    def add_alerts(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            if alert.revision == 0:
                self.alerts[(alert.detection.name, alert.severity.value)] += 1
