"""The pieces of a risk alert: signals, episodes, their wording and their saved state.

:mod:`detector.alerts.risk` keeps the score; this module holds what it adds up
(one :class:`Signal` per alert), the open :class:`Episode` per actor, how a risk
alert names its contributors, and the plain JSON-ready state of both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from detector.detections import DetectorKind
from detector.features.durations import format_duration

if TYPE_CHECKING:
    from detector.alerts.risk import RiskSettings

__all__ = [
    "RUNBOOK",
    "Episode",
    "Signal",
    "episode_from_state",
    "episode_to_state",
    "explanation",
    "signal_from_state",
    "signal_to_state",
    "summary",
]

_NAMED_IN_SUMMARY = 4
"""Detectors a risk alert's summary names; the rest are counted."""

RUNBOOK = (
    "Several detectors fired on this actor within days; each alone looked weak. Read the "
    "related alerts together, strongest first. Ask the person (or the owner of the service "
    "identity) whether each action was theirs. If any was not, treat the account as "
    "compromised: revoke its sessions and tokens, rotate its credentials, and follow the "
    "runbooks of the related alerts."
)


@dataclass(frozen=True, slots=True)
class Signal:
    """One alert's contribution to its actor's risk."""

    alert_id: str
    detector: str
    """``<kind>:<rule or model>``: what "distinct detectors" counts."""
    title: str
    severity: str
    confidence: float
    weight: float
    time: datetime
    source: str
    tags: tuple[str, ...]
    evidence: tuple[str, ...]


@dataclass(slots=True)
class Episode:
    """One actor's open risk episode: the risk alert it sends and revises."""

    id: str
    opened_at: datetime
    source: str
    revision: int = 0


def summary(
    actor: str,
    risk: float,
    settings: RiskSettings,
    live: list[Signal],
    ranked: list[tuple[str, tuple[float, Signal]]],
) -> str:
    named = [_describe(signal) for _, (_, signal) in ranked[:_NAMED_IN_SUMMARY]]
    if len(ranked) > _NAMED_IN_SUMMARY:
        named.append(f"{len(ranked) - _NAMED_IN_SUMMARY} more")
    return (
        f"{actor} reached risk {risk:.0f} (threshold {settings.threshold:.0f}) from "
        f"{len(live)} alerts by {len(ranked)} detectors within "
        f"{_days(settings.horizon)}: {'; '.join(named)}"
    )


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} days" if days >= 1 else format_duration(span)


def _describe(signal: Signal) -> str:
    kind, _, name = signal.detector.partition(":")
    confidence = f", score {signal.confidence:.2f}" if kind == DetectorKind.ANOMALY.value else ""
    return f"{signal.title} ({name}, {signal.severity}{confidence})"


def explanation(
    risk: float, settings: RiskSettings, ranked: list[tuple[str, tuple[float, Signal]]]
) -> dict[str, Any]:
    return {
        "risk": round(risk, 2),
        "threshold": settings.threshold,
        "min_detectors": settings.min_detectors,
        "half_life": format_duration(settings.half_life),
        "horizon": format_duration(settings.horizon),
        "detectors": {
            detector: {
                "alert": signal.alert_id,
                "title": signal.title,
                "severity": signal.severity,
                "confidence": round(signal.confidence, 4),
                "weight": round(signal.weight, 2),
                "contribution": round(value, 2),
                "time": signal.time.isoformat(),
            }
            for detector, (value, signal) in ranked
        },
    }


def signal_to_state(signal: Signal) -> dict[str, Any]:
    data = asdict(signal)
    data["time"] = signal.time.isoformat()
    data["tags"], data["evidence"] = list(signal.tags), list(signal.evidence)
    return data


def signal_from_state(data: dict[str, Any]) -> Signal:
    values = {**data, "time": datetime.fromisoformat(data["time"])}
    values["tags"], values["evidence"] = tuple(data["tags"]), tuple(data["evidence"])
    return Signal(**values)


def episode_to_state(episode: Episode | None) -> dict[str, Any] | None:
    if episode is None:
        return None
    return {**asdict(episode), "opened_at": episode.opened_at.isoformat()}


def episode_from_state(data: dict[str, Any]) -> Episode:
    return Episode(
        data["id"], datetime.fromisoformat(data["opened_at"]), data["source"], data["revision"]
    )
