"""Why a model found an event unusual: the evidencing features, in plain words with units.

Only features that are evidence (:mod:`detector.scoring.evidence`: beyond both
the actor's own and the population's high quantile) are named. They are
ranked by **deviation**, how far the value lies above the population median
in units of the population's spread, on the model's ``log1p`` scale:
``(log1p(v) - log1p(median)) / max(log1p(p95) - log1p(median), log1p(1))``;
``contribution`` is a feature's share of the evidence's deviations. Each is
put in words with the actor's usual and the organisation's, e.g.
"ivan: 15 distinct repositories in 1 h (their usual at most 1; organisation's
95th percentile 3)".

"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from detector.events.model import Event
from detector.events.printable import printable
from detector.features.settings import EVENT_FIELDS
from detector.scoring.calibration import FeatureStats

__all__ = ["Evidence", "FeatureReason", "describe", "deviation", "evidence_reasons"]

_MIN_SPREAD = math.log1p(1.0)
_RARE_HOUR = math.log(20.0)  # fewer than about 1 in 20 of the actor's events at this hour
_NOUNS = {
    "events": "events",
    "failures": "failures",
    "privileged": "privileged actions",
    "distinct_ips": "distinct IPs",
    "distinct_countries": "distinct countries",
    "distinct_targets": "distinct targets",
    "distinct_repos": "distinct repositories",
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
    "novel": "events with something new to them",
}
_FLAGS = {
    "event.failure": "a failure",
    "event.privileged": "a privileged action",
    "event.mutating": "a change",
    "event.production": "on production",
}
_WINDOW_WORDS = {"5m": "5 min", "1h": "1 h", "24h": "24 h"}


@dataclass(frozen=True, slots=True)
class FeatureReason:
    """One evidencing feature (the JSON shape of ``explanation.top_features``).

    ``actor_baseline``: the actor's own high quantile of the feature before
    this event (``None`` while too few of its rows were seen);
    ``population_high``: the population's high quantile it exceeds.
    """

    feature: str
    value: float
    actor_baseline: float | None
    population_median: float
    population_p95: float
    deviation: float
    contribution: float
    population_high: float = 0.0
    population_quantile: float = 0.95

    def to_dict(self) -> dict[str, float | str | None]:
        return {
            "feature": self.feature,
            "value": self.value,
            "actor_baseline": self.actor_baseline,
            "population_median": self.population_median,
            "population_p95": self.population_p95,
            "population_high": self.population_high,
            "population_quantile": self.population_quantile,
            "deviation": round(self.deviation, 3),
            "contribution": round(self.contribution, 3),
        }


def deviation(value: float, stats: FeatureStats) -> float:
    """How far ``value`` lies above the population median, in population spreads (log scale)."""
    low = math.log1p(max(stats.median, 0.0))
    spread = max(math.log1p(max(stats.p95, 0.0)) - low, _MIN_SPREAD)
    return (math.log1p(max(value, 0.0)) - low) / spread


@dataclass(frozen=True, slots=True)
class Evidence:
    """One feature found beyond both quantiles, before ranking."""

    feature: str
    value: float
    actor_high: float | None
    population_high: float


def evidence_reasons(
    found: Sequence[Evidence],
    population: Mapping[str, FeatureStats],
    *,
    population_quantile: float,
    limit: int = 3,
) -> list[FeatureReason]:
    """The ``limit`` evidencing features with the largest deviation, as reasons."""
    deviations = {item.feature: deviation(item.value, population[item.feature]) for item in found}
    total = sum(max(d, 0.0) for d in deviations.values())
    ranked = sorted(found, key=lambda item: (-deviations[item.feature], item.feature))
    reasons = []
    for item in ranked[:limit]:
        stats, spread = population[item.feature], deviations[item.feature]
        reasons.append(
            FeatureReason(
                feature=item.feature,
                value=item.value,
                actor_baseline=item.actor_high,
                population_median=stats.median,
                population_p95=stats.p95,
                deviation=spread,
                contribution=max(spread, 0.0) / total if total else 0.0,
                population_high=item.population_high,
                population_quantile=population_quantile,
            )
        )
    return reasons


def describe(event: Event, reasons: Sequence[FeatureReason], new_values: Mapping[str, str]) -> str:
    """One sentence: the actor, then each evidencing feature with its numbers.

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
        # In the first-seen learning period the store reports no new values (rules would
        # alert on them); the event itself still says which value was new.
        seen = new_values.get(field) or _event_value(event, field)
        return f"first time with this {field}" + (f" ({printable(seen)})" if seen else "")
    if name in _FLAGS:
        return _FLAGS[name] if value else f"not {_FLAGS[name]}"
    kind, _, rest = name.partition(".")
    channel, _, window = rest.rpartition(".")
    span = _WINDOW_WORDS.get(window, window)
    if channel == "events_vs_baseline":
        return f"{value:.1f} times their usual activity over {span}{_usual(reason, ratio=True)}"
    if channel == "failure_ratio":
        return f"{value:.0%} of events failed in {span}{_usual(reason, percent=True)}"
    if name == "actor.active_hours_of_week":
        return f"active in {_number(value)} hours of the week{_usual(reason)}"
    noun = _NOUNS.get(channel, channel.replace("_", " "))
    whose = {"ip": " from this IP", "target": " on this target"}.get(kind, "")
    return f"{_number(value)} {noun}{whose} in {span}{_usual(reason)}"


def _usual(reason: FeatureReason, *, ratio: bool = False, percent: bool = False) -> str:
    """`` (their usual at most 1; organisation's 95th percentile 3)``."""

    def shown(number: float) -> str:
        if percent:
            return f"{number:.0%}"
        if ratio:
            return f"{number:.1f}"
        if float(reason.value).is_integer():
            # Counts are whole: an estimate of 2.6 means the actor's usual reaches 2, not 3.
            return _number(math.floor(number + 1e-6))
        return _number(round(number, 1))

    organisation = (
        f"organisation's {_ordinal(reason.population_quantile)} percentile "
        f"{shown(reason.population_high)}"
    )
    if reason.actor_baseline is None:
        return f" ({organisation})"
    return f" (their usual at most {shown(reason.actor_baseline)}; {organisation})"


def _ordinal(quantile: float) -> str:
    number = round(quantile * 100, 1)
    text = f"{number:g}"
    if float(number).is_integer() and 10 <= int(number) % 100 <= 20:
        return f"{text}th"
    suffix = {"1": "st", "2": "nd", "3": "rd"}.get(text[-1], "th")
    return f"{text}{suffix}"


def _number(value: float) -> str:
    """Whole numbers plainly; fractions with one decimal, or two below 1 (0.02 is not 0)."""
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 1 else f"{value:.1f}"


def _event_value(event: Event, field: str) -> str | None:
    """The event's value of a tracked field: an event field, else an attribute."""
    value = getattr(event, field, None) if field in EVENT_FIELDS else event.attributes.get(field)
    return value if isinstance(value, str) and value else None
