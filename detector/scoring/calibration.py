"""From a detector's raw scores to an alert threshold and a score in [0, 1].

Raw scores have no common scale (an isolation forest's path lengths, ECOD's
tail probabilities, ...). Training keeps a few numbers about the training
scores and maps every raw score onto one documented scale:

- the **threshold** is the lowest training score that at most
  ``target_alert_rate`` of the training rows reach (the ``1 - rate`` quantile,
  moved up past ties): on data like the training data, about that share of
  events alert;
- a raw score at the threshold maps to :data:`THRESHOLD_SCORE` (0.5);
- below it, the score is ``0.5 * (share of training scores below it) / (1 - rate)``;
- above it, ``0.5 + 0.5 * (1 - exp(-(raw - threshold) / spread))``, ``spread``
  being how far the threshold lies above the training median: a raw score one
  spread past the threshold maps to about 0.82, and the scale never saturates.

Severity bands: ``score ≥ 0.5`` is medium, ``score ≥`` :data:`HIGH_SCORE`
(0.75, about 0.7 spreads past the threshold) is high.

>>> calibration = Calibration.fit(np.arange(1000.0), target_alert_rate=0.01)
>>> float(calibration.normalize(np.array([calibration.threshold]))[0])
0.5
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from detector.errors import ConfigError

__all__ = ["HIGH_SCORE", "THRESHOLD_SCORE", "Calibration", "FeatureStats"]

THRESHOLD_SCORE = 0.5
"""The normalized score of a raw score exactly at the threshold: alerts start here."""
HIGH_SCORE = 0.75
"""Normalized scores at or above this are high severity."""
PERCENTILES = (50.0, 90.0, 99.0, 99.9, 100.0)
"""Training-score percentiles recorded for the model card."""

_KNOTS = 101
_MIN_SPREAD = 1e-9

Scores = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Calibration:
    """The threshold and the raw → [0, 1] mapping learnt from training scores.

    ``quantiles``: raw scores at ``_KNOTS`` evenly spaced probabilities from 0
    to ``1 - target_alert_rate`` (the last is the threshold); ``spread``: the
    threshold minus the training median (the scale of the tail mapping);
    ``percentiles``: training-score percentiles for the model card.
    """

    target_alert_rate: float
    threshold: float
    spread: float
    quantiles: tuple[float, ...]
    percentiles: Mapping[str, float]
    # The interpolation's knots and their shares as arrays, made once: every batch needs them.
    _knots: Scores = field(init=False, repr=False, compare=False)
    _shares: Scores = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        knots = np.asarray(self.quantiles, dtype=np.float64)
        object.__setattr__(self, "_knots", knots)
        object.__setattr__(self, "_shares", np.linspace(0.0, 1.0, len(knots)))

    @classmethod
    def fit(cls, scores: Scores, *, target_alert_rate: float) -> Calibration:
        """Calibrate on the raw scores of the training rows."""
        if not 0.0 < target_alert_rate < 1.0:
            message = f"must be above 0 and below 1, got {target_alert_rate}"
            raise ConfigError(message, where="target_alert_rate")
        top = 1.0 - target_alert_rate
        quantiles = np.quantile(scores, np.linspace(0.0, top, _KNOTS))
        threshold = _threshold(np.sort(scores), target_alert_rate)
        median = float(np.quantile(scores, 0.5))
        return cls(
            target_alert_rate=target_alert_rate,
            threshold=threshold,
            spread=max(threshold - median, _MIN_SPREAD),
            quantiles=tuple(float(value) for value in quantiles),
            percentiles={
                f"p{percentile:g}": float(np.percentile(scores, percentile))
                for percentile in PERCENTILES
            },
        )

    def normalize(self, raw: Scores) -> Scores:
        """Raw scores → [0, 1]; the threshold maps to 0.5 (see the module docs)."""
        raw = np.asarray(raw, dtype=np.float64)
        below_share = np.interp(raw, self._knots, self._shares)
        below = THRESHOLD_SCORE * below_share
        excess = np.maximum(raw - self.threshold, 0.0) / self.spread
        above = THRESHOLD_SCORE + (1.0 - THRESHOLD_SCORE) * -np.expm1(-excess)
        result: Scores = np.where(raw >= self.threshold, above, np.minimum(below, 0.4999999))
        return result

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data for the envelope."""
        return {
            "method": "ecdf below the threshold, exponential tail above",
            "threshold_score": THRESHOLD_SCORE,
            "high_score": HIGH_SCORE,
            "target_alert_rate": self.target_alert_rate,
            "threshold": self.threshold,
            "spread": self.spread,
            "quantiles": list(self.quantiles),
            "percentiles": dict(self.percentiles),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict` (the envelope validated the types)."""
        return cls(
            target_alert_rate=float(data["target_alert_rate"]),
            threshold=float(data["threshold"]),
            spread=float(data["spread"]),
            quantiles=tuple(float(value) for value in data["quantiles"]),
            percentiles={str(k): float(v) for k, v in data["percentiles"].items()},
        )


def _threshold(ordered: Scores, rate: float) -> float:
    """The lowest training score that at most ``rate`` of the training scores reach.

    Feature vectors repeat (many events look alike), so scores tie; a plain
    quantile could land inside a tie and alert on far more than ``rate``.
    """
    allowed = int(np.floor(rate * len(ordered)))
    if allowed == 0:
        return float(np.nextafter(ordered[-1], np.inf))
    candidate = ordered[len(ordered) - allowed]
    higher = ordered[ordered > candidate]
    reaching = len(ordered) - np.searchsorted(ordered, candidate, side="left")
    if reaching <= allowed:
        return float(candidate)
    return float(higher[0]) if len(higher) else float(np.nextafter(ordered[-1], np.inf))


@dataclass(frozen=True, slots=True)
class FeatureStats:
    """How a feature is distributed over the training rows (for explanations)."""

    median: float
    p95: float

    def quantile(self, q: float) -> float:
        """The population's ``q`` quantile, for ``q`` from 0.5 to 0.95.

        Models record the median and the 95th percentile only; in between, the
        quantile is interpolated on the ``log1p`` scale the models use.
        """
        if not 0.5 <= q <= 0.95:
            raise ValueError(f"population quantile must be from 0.5 to 0.95, got {q}")
        low, high = np.log1p(max(self.median, 0.0)), np.log1p(max(self.p95, 0.0))
        return float(np.expm1(low + (high - low) * (q - 0.5) / 0.45))

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "p95": self.p95}
