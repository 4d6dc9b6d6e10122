"""Why a model found an event unusual: the features furthest above the usual, in words.

The detectors are not additive, so the explanation is model-agnostic: each
feature's **deviation** is how far its value lies above the population median
in units of the population's spread, on the model's ``log1p`` scale:
``(log1p(v) - log1p(median)) / max(log1p(p95) - log1p(median), log1p(1))``
(a spread of at least "one more than usual", so sparse features with median
and p95 both 0 still compare). ``contribution`` is a feature's share of the
positive deviations. The top features are then put into a sentence with the
actor's own baseline where one is known:
"ivan: 45 distinct repos in 1h vs usual 3; active at 01:00 UTC, rare for them".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from detector.events.model import Event
from detector.events.printable import printable
from detector.scoring.calibration import FeatureStats

__all__ = ["FeatureReason", "actor_expectation", "describe", "top_features"]

_MIN_SPREAD = math.log1p(1.0)
_RARE_HOUR = math.log(20.0)  # fewer than about 1 in 20 of the actor's events at this hour
_NOUNS = {
    "events": "events",
    "failures": "failures",
    "privileged": "privileged actions",
    "distinct_ips": "distinct IPs",
    "distinct_countries": "distinct countries",
    "distinct_targets": "distinct targets",
    "distinct_repos": "distinct repos",
    "distinct_namespaces": "distinct namespaces",
    "distinct_user_agents": "distinct user agents",
    "distinct_actors": "distinct actors",
    "code_access": "clones/downloads",
    "secret_access": "secret reads",
    "pipeline": "pipeline/runner actions",
    "infrastructure_change": "infrastructure changes",
    "privilege_change": "permission changes",
    "config_change": "settings changes",
    "production": "actions on production",
}
_FLAGS = {
    "event.failure": "a failure",
    "event.privileged": "a privileged action",
    "event.mutating": "a change",
    "event.production": "on production",
}
_WINDOW_HOURS = {"5m": 5 / 60, "1h": 1.0, "24h": 24.0}


@dataclass(frozen=True, slots=True)
class FeatureReason:
    """One feature's part in an explanation (the JSON shape of ``explanation.top_features``)."""

    feature: str
    value: float
    actor_baseline: float | None
    population_median: float
    population_p95: float
    deviation: float
    contribution: float

    def to_dict(self) -> dict[str, float | str | None]:
        return {
            "feature": self.feature,
            "value": self.value,
            "actor_baseline": self.actor_baseline,
            "population_median": self.population_median,
            "population_p95": self.population_p95,
            "deviation": round(self.deviation, 3),
            "contribution": round(self.contribution, 3),
        }


def deviation(value: float, stats: FeatureStats) -> float:
    """How far ``value`` lies above the population median, in population spreads (log scale)."""
    low = math.log1p(max(stats.median, 0.0))
    spread = max(math.log1p(max(stats.p95, 0.0)) - low, _MIN_SPREAD)
    return (math.log1p(max(value, 0.0)) - low) / spread


def actor_expectation(feature: str, baseline: Mapping[str, float]) -> float | None:
    """The actor's usual value of ``feature`` from its baseline, where one can be derived.

    ``baseline`` may carry the feature itself; otherwise ``actor.events.<w>``
    is the actor's ``events_per_hour`` times the window's hours, and
    ``actor.events_vs_baseline.<w>`` is about 1 by construction.
    """
    if feature in baseline:
        return float(baseline[feature])
    kind, _, rest = feature.partition(".")
    channel, _, window = rest.rpartition(".")
    hours = _WINDOW_HOURS.get(window)
    if kind != "actor" or hours is None:
        return None
    if channel == "events" and "events_per_hour" in baseline:
        return round(float(baseline["events_per_hour"]) * hours, 1)
    if channel == "events_vs_baseline" and baseline:
        return 1.0
    return None


def top_features(
    values: Mapping[str, float],
    population: Mapping[str, FeatureStats],
    baseline: Mapping[str, float],
    *,
    limit: int = 3,
) -> list[FeatureReason]:
    """The ``limit`` features with the largest positive deviation (largest absolute if none)."""
    deviations = {name: deviation(values[name], stats) for name, stats in population.items()}
    positive = sum(max(d, 0.0) for d in deviations.values())
    ranked = sorted(deviations, key=lambda name: (-deviations[name], name))
    if not ranked or deviations[ranked[0]] <= 0.0:
        ranked = sorted(deviations, key=lambda name: (-abs(deviations[name]), name))
    reasons = []
    for name in ranked[:limit]:
        stats = population[name]
        reasons.append(
            FeatureReason(
                feature=name,
                value=float(values[name]),
                actor_baseline=actor_expectation(name, baseline),
                population_median=stats.median,
                population_p95=stats.p95,
                deviation=deviations[name],
                contribution=max(deviations[name], 0.0) / positive if positive else 0.0,
            )
        )
    return reasons


def describe(event: Event, reasons: Sequence[FeatureReason], new_values: Mapping[str, str]) -> str:
    """One sentence: the actor, then each top feature with its numbers.

    Values from input (the actor, a first-seen value) have their control
    characters escaped (:func:`~detector.events.printable.printable`).
    """
    parts = [_phrase(reason, event, new_values) for reason in reasons]
    return f"{printable(event.actor)}: {'; '.join(parts)}"


def _phrase(reason: FeatureReason, event: Event, new_values: Mapping[str, str]) -> str:
    name, value = reason.feature, reason.value
    if name == "actor.hour_of_week_rarity":
        rare = "rare for them" if value >= _RARE_HOUR else "unusual for them"
        return f"active at {event.time:%H:00} UTC on a {event.time:%A}, {rare}"
    if name.startswith("actor.new."):
        field = name.removeprefix("actor.new.")
        seen = new_values.get(field)
        return f"first time with this {field}" + (f" ({printable(seen)})" if seen else "")
    if name in _FLAGS:
        return _FLAGS[name] if value else f"not {_FLAGS[name]}"
    if name == "actor.active_hours_of_week":
        return f"active in {_number(value)} hours of the week vs typically {_usual(reason)}"
    kind, _, rest = name.partition(".")
    channel, _, window = rest.rpartition(".")
    if channel == "events_vs_baseline":
        return f"{value:.1f} times their usual activity over {window}"
    if channel == "failure_ratio":
        typical = reason.population_median
        return f"{value:.0%} of events failed in {window} vs typically {typical:.0%}"
    noun = _NOUNS.get(channel, channel.replace("_", " "))
    whose = {"ip": " from this IP", "target": " on this target"}.get(kind, "")
    return f"{_number(value)} {noun}{whose} in {window} vs {_usual(reason)}"


def _usual(reason: FeatureReason) -> str:
    if reason.actor_baseline is not None:
        return f"usual {_number(reason.actor_baseline)} for them"
    return f"{_number(reason.population_median)} typical (p95 {_number(reason.population_p95)})"


def _number(value: float) -> str:
    """Whole numbers plainly; fractions with one decimal, or two below 1 (0.02 is not 0)."""
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 1 else f"{value:.1f}"
