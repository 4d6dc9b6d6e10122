"""Risk: one score per actor that adds up its rule and anomaly alerts.

Like Elastic's entity risk scoring and Splunk's risk-based alerting, each alert
about an actor (grouped by it) adds a weight to the actor's risk: its severity's
weight times its confidence (1 for a rule, the anomaly score for a model). The
weight halves every ``half_life`` of event time and is gone after ``horizon``. Per detector
only its strongest contribution counts — a rule re-firing every hour does not
make risk on its own — and across detectors the contributions add up.

When an actor's risk reaches ``threshold`` with at least ``min_detectors``
distinct detectors behind it, one **risk alert** opens an episode: severity
high, its own stable id (the actor and the event time the episode opened), the
contributing alerts' ids in ``related``, their events in ``evidence``, the union
of their ATT&CK tags and a summary naming them. Each further alert while the
episode lasts revises it (same id, higher revision). An episode ends once the
actor's risk has decayed below half the threshold: the next crossing is a new
episode with a new id.

Every alert leaving the pipeline carries the actor's current risk (``risk``).
Only event time is used, so a replay gives the same risk, the same risk alerts
and the same ids in any file order.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from detector.alerts.model import Alert
from detector.alerts.risk_signals import (
    RUNBOOK,
    Episode,
    Signal,
    episode_from_state,
    episode_to_state,
    explanation,
    signal_from_state,
    signal_to_state,
    summary,
)
from detector.alerts.suppression import Clock
from detector.detections import Detection, DetectorKind, Severity
from detector.features.durations import Duration

__all__ = ["RISK_DETECTOR", "RiskScorer", "RiskSettings", "SeverityWeights"]

RISK_DETECTOR = "risk"
"""The ``rule`` name of risk alerts (``kind`` is ``risk``)."""

_STATE_VERSION = 1
_EPISODE_ENDS_BELOW = 0.5
"""An open episode ends when risk decays below this share of the threshold."""


class SeverityWeights(BaseModel):
    """Risk an alert of each severity adds at full confidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    info: float = Field(default=5.0, ge=0)
    low: float = Field(default=15.0, ge=0)
    medium: float = Field(default=35.0, ge=0)
    high: float = Field(default=60.0, ge=0)
    critical: float = Field(default=90.0, ge=0)

    def of(self, severity: Severity) -> float:
        weight: float = getattr(self, severity.value)
        return weight


class RiskSettings(BaseModel):
    """Settings of :class:`RiskScorer` (the ``risk:`` section of a pipeline file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    """Score risk and raise risk alerts; off, alerts carry ``risk: null``."""
    half_life: Duration = timedelta(days=3)
    horizon: Duration = timedelta(days=7)
    """An alert stops counting this long after its event time."""
    threshold: float = Field(default=100.0, gt=0)
    min_detectors: int = Field(default=2, ge=1)
    """Distinct rules or models an actor's risk must come from to raise a risk alert."""
    severity: Severity = Severity.HIGH
    weights: SeverityWeights = SeverityWeights()
    max_actors: int = Field(default=100_000, gt=0)
    """Actors with risk held at once; beyond it those whose alerts expire soonest go first."""
    max_alerts_per_actor: int = Field(default=50, gt=0)


@dataclass(slots=True)
class _ActorRisk:
    signals: list[Signal] = field(default_factory=list)
    """In event-time order (ties by alert id), so sums do not depend on arrival order."""
    episode: Episode | None = None
    order: int = 0
    """Which expiry heap entry is current; older entries are skipped."""


class RiskScorer:
    """Adds risk per actor from the alerts that pass, and raises risk alerts.

    ``clock`` gives a risk alert's ``detected_at`` (the daemon's wall clock);
    by default its event time, as in every replay. ``max_evidence``: event ids
    kept per risk alert (``alerts.max_evidence``).
    """

    def __init__(
        self,
        settings: RiskSettings | None = None,
        *,
        clock: Clock | None = None,
        max_evidence: int = 50,
    ) -> None:
        self.settings = settings or RiskSettings()
        self._clock = clock or (lambda detection: detection.time)
        self._max_evidence = max_evidence
        self._actors: dict[str, _ActorRisk] = {}
        self._expiry: list[tuple[datetime, int, str]] = []
        self._orders = 0
        self._latest: datetime | None = None
        self.risk_alerts = 0
        """Episodes opened (first sends of risk alerts)."""

    def process(self, alerts: Iterable[Alert]) -> list[Alert]:
        """Each alert with its actor's current risk, followed by any risk alert it raised."""
        out: list[Alert] = []
        for alert in alerts:
            if not self.settings.enabled or alert.detection.kind is DetectorKind.RISK:
                out.append(alert)
            elif alert.revision == 0 and _about_actor(alert.detection):
                out.extend(self._contribute(alert, alert.detection.actor or ""))
            else:
                out.append(replace(alert, risk=self._current(alert)))
        return out

    def risk_of(self, actor: str, at: datetime) -> float:
        """The actor's risk at event time ``at`` (0 for an actor without live alerts)."""
        state = self._actors.get(actor)
        return _risk(state.signals, at, self.settings)[0] if state is not None else 0.0

    def elevated(self, share: float = 0.5) -> int:
        """Actors whose risk at the newest alert time seen is ``share`` of the threshold or more."""
        if self._latest is None:
            return 0
        bar = self.settings.threshold * share
        return sum(1 for actor in self._actors if self.risk_of(actor, self._latest) >= bar)

    @property
    def actors(self) -> int:
        return len(self._actors)

    def _current(self, alert: Alert) -> float | None:
        actor = alert.detection.actor
        if actor is None:
            return None
        return round(self.risk_of(actor, alert.last_time or alert.time), 2)

    def _contribute(self, alert: Alert, actor: str) -> list[Alert]:
        signal = _signal(alert, self.settings.weights)
        self._expire(signal.time)
        state = self._actors.setdefault(actor, _ActorRisk())
        now = max(signal.time, state.signals[-1].time) if state.signals else signal.time
        if state.episode is not None:
            before, _ = _risk(state.signals, now, self.settings)
            if before < self.settings.threshold * _EPISODE_ENDS_BELOW:
                state.episode = None  # decayed away: the next crossing is a new episode
        bisect.insort(state.signals, signal, key=lambda s: (s.time, s.alert_id))
        del state.signals[: -self.settings.max_alerts_per_actor]
        self._schedule(actor, state)
        risk, strongest = _risk(state.signals, now, self.settings)
        out = [replace(alert, risk=round(risk, 2))]
        crossed = risk >= self.settings.threshold and len(strongest) >= self.settings.min_detectors
        if state.episode is None and crossed:
            state.episode = Episode(_episode_id(actor, now), now, signal.source)
            self.risk_alerts += 1
        elif state.episode is not None and now - signal.time < self.settings.horizon:
            state.episode.revision += 1
        else:
            return out
        out.append(self._risk_alert(actor, state, risk, now))
        return out

    def _risk_alert(self, actor: str, state: _ActorRisk, risk: float, now: datetime) -> Alert:
        assert state.episode is not None
        settings = self.settings
        live = _live(state.signals, now, settings.horizon)
        _, strongest = _risk(state.signals, now, settings)
        ranked = sorted(strongest.items(), key=lambda item: (-item[1][0], item[0]))
        evidence = dict.fromkeys(event for signal in live for event in signal.evidence)
        detection = Detection(
            kind=DetectorKind.RISK,
            name=RISK_DETECTOR,
            title="Several detections on one actor",
            severity=settings.severity,
            time=state.episode.opened_at,
            key=(("actor", actor),),
            actor=actor,
            source=state.episode.source,
            summary=summary(actor, risk, settings, live, ranked),
            evidence=tuple(evidence)[-self._max_evidence :],
            suppress=settings.horizon,
            tags=tuple(sorted({tag for signal in live for tag in signal.tags})),
            runbook=RUNBOOK,
            features={"risk": round(risk, 2), "detectors": len(ranked), "alerts": len(live)},
            explanation=explanation(risk, settings, ranked),
        )
        return Alert(
            id=state.episode.id,
            detection=detection,
            detected_at=self._clock(detection),
            count=len(live),
            first_time=live[0].time,
            last_time=live[-1].time,
            evidence=detection.evidence,
            revision=state.episode.revision,
            related=tuple(signal.alert_id for signal in live),
            risk=round(risk, 2),
        )

    def _schedule(self, actor: str, state: _ActorRisk) -> None:
        self._orders += 1
        state.order = self._orders
        heapq.heappush(
            self._expiry, (state.signals[-1].time + self.settings.horizon, state.order, actor)
        )
        if len(self._actors) > self.settings.max_actors:
            self._pop_soonest()

    def _expire(self, now: datetime) -> None:
        """Forget actors whose newest alert left the horizon before event time ``now``."""
        self._latest = now if self._latest is None else max(self._latest, now)
        while self._expiry and self._expiry[0][0] <= self._latest:
            self._pop_soonest()

    def _pop_soonest(self) -> None:
        while self._expiry:
            _, order, actor = heapq.heappop(self._expiry)
            state = self._actors.get(actor)
            if state is not None and state.order == order:
                del self._actors[actor]
                return

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-ready state: every actor's live alerts and open episode."""
        return {
            "version": _STATE_VERSION,
            "latest": self._latest.isoformat() if self._latest is not None else None,
            "risk_alerts": self.risk_alerts,
            "actors": [
                {
                    "actor": actor,
                    "signals": [signal_to_state(signal) for signal in state.signals],
                    "episode": episode_to_state(state.episode),
                }
                for actor, state in self._actors.items()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load what :meth:`snapshot` returned, replacing the current state; ``{}``: none."""
        if state and state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported risk state version {state.get('version')!r}")
        self._actors.clear()
        self._expiry.clear()
        latest = state.get("latest")
        self._latest = datetime.fromisoformat(latest) if latest is not None else None
        self.risk_alerts = int(state.get("risk_alerts", 0))
        for row in state.get("actors", ()):
            signals = [signal_from_state(item) for item in row["signals"]]
            if not signals:
                continue
            episode = row.get("episode")
            restored = _ActorRisk(signals, episode_from_state(episode) if episode else None)
            self._actors[row["actor"]] = restored
            self._schedule(row["actor"], restored)


def _about_actor(found: Detection) -> bool:
    """Whether the alert is about its actor: the actor is part of its group key.

    An alert grouped by address (a password spray) names whoever sent the last
    event, often a victim; it carries that actor's risk but adds none to it.
    """
    return found.actor is not None and any(name == "actor" for name, _ in found.key)


def _signal(alert: Alert, weights: SeverityWeights) -> Signal:
    found = alert.detection
    confidence = 1.0
    if found.kind is DetectorKind.ANOMALY and found.score is not None:
        confidence = min(max(found.score, 0.0), 1.0)
    return Signal(
        alert_id=alert.id,
        detector=f"{found.kind.value}:{found.name}",
        title=found.title,
        severity=found.severity.value,
        confidence=confidence,
        weight=weights.of(found.severity) * confidence,
        time=found.time,
        source=found.source,
        tags=found.tags,
        evidence=alert.evidence or found.evidence,
    )


def _risk(
    signals: list[Signal], at: datetime, settings: RiskSettings
) -> tuple[float, dict[str, tuple[float, Signal]]]:
    """Risk at ``at`` and, per detector, its strongest decayed contribution."""
    strongest: dict[str, tuple[float, Signal]] = {}
    for signal in _live(signals, at, settings.horizon):
        value = signal.weight * 0.5 ** ((at - signal.time) / settings.half_life)
        best = strongest.get(signal.detector)
        if best is None or value > best[0]:
            strongest[signal.detector] = (value, signal)
    # Summed smallest first, in a fixed order: the same float whatever the arrival order.
    return sum(sorted(value for value, _ in strongest.values())), strongest


def _live(signals: list[Signal], at: datetime, horizon: timedelta) -> list[Signal]:
    """Signals at or before ``at`` and less than ``horizon`` older."""
    return [s for s in signals if s.time <= at and at - s.time < horizon]


def _episode_id(actor: str, opened_at: datetime) -> str:
    material = "\x1e".join((DetectorKind.RISK.value, RISK_DETECTOR, actor, opened_at.isoformat()))
    return hashlib.sha256(material.encode()).hexdigest()[:32]
