"""Synthetic training rows for a family, shaped like real ones: counts that move together.

Each row has a latent activity level; its event counts per window nest (5m ≤ 1h ≤ 24h),
category counts are a share of the events, distinct counts at most the events. Real
features are correlated like this, and an anomaly detector learns those relations.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

from detector.features.families import Family

__all__ = ["START", "ordinary_frame", "ordinary_row"]

START = datetime(2026, 1, 5, tzinfo=UTC)
_SHARE = {
    "code_access": 0.7,
    "privileged": 0.05,
    "secret_access": 0.02,
    "pipeline": 0.1,
    "config_change": 0.03,
    "failures": 0.1,
    "infrastructure_change": 0.2,
    "privilege_change": 0.02,
    "production": 0.3,
}
_Column = npt.NDArray[np.float64]


def _events(size: int, rng: np.random.Generator) -> dict[str, _Column]:
    activity = rng.gamma(2.0, 1.0, size)
    five = rng.poisson(activity)
    hour = five + rng.poisson(activity * 3)
    day = hour + rng.poisson(activity * 10)
    return {
        window: counts.astype(np.float64)
        for window, counts in (("5m", five), ("1h", hour), ("24h", day))
    }


def _column(name: str, events: dict[str, _Column], rng: np.random.Generator) -> _Column:
    size = len(events["1h"])
    if name.startswith(("event.", "actor.new.")):
        return (rng.random(size) < 0.05).astype(np.float64)
    if name == "actor.hour_of_week_rarity":
        return rng.gamma(2.0, 0.5, size)
    if name == "actor.active_hours_of_week":
        return rng.integers(20, 60, size).astype(np.float64)
    kind, _, rest = name.partition(".")
    channel, _, window = rest.rpartition(".")
    count = events[window].astype(np.int64)
    if channel in ("events_vs_baseline",):
        return rng.gamma(2.0, 0.4, size)
    if channel == "failure_ratio":
        return (rng.binomial(count, 0.1) / np.maximum(count, 1)).astype(np.float64)
    if channel == "events":
        return (count + (rng.poisson(1.0, size) if kind == "ip" else 0)).astype(np.float64)
    if channel.startswith("distinct_"):
        spread = 1 + rng.binomial(np.maximum(count - 1, 0), 0.2)
        return np.where(count > 0, spread, 0).astype(np.float64)
    return rng.binomial(count, _SHARE.get(channel, 0.1)).astype(np.float64)


def ordinary_frame(family: Family, rows: int = 2000, seed: int = 3) -> pd.DataFrame:
    """``rows`` ordinary rows of the family's features, with ``time`` and ``actor`` columns."""
    rng = np.random.default_rng(seed)
    events = _events(rows, rng)
    frame = pd.DataFrame({name: _column(name, events, rng) for name in family.features})
    frame["time"] = [START + timedelta(minutes=i) for i in range(rows)]
    frame["actor"] = [f"person{i % 25}" for i in range(rows)]
    return frame


def ordinary_row(family: Family, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """A typical row (each feature's median over ordinary rows), with ``overrides`` applied."""
    medians = ordinary_frame(family, rows=501, seed=0)[list(family.features)].median()
    row = {name: float(medians[name]) for name in family.features}
    row.update(overrides or {})
    return row
