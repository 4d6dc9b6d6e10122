"""The checks a freshly trained model passes before it replaces the one in use.

:func:`check_models` scores each new model on *recent* rows it was not
trained on (the learner trains on history up to ``end - check_period`` and
passes the last period here) and asks three questions per family:

1. **Finite**: every raw score, and every training-score percentile the
   calibration recorded, is a finite number (a NaN score alerts never or
   always, silently).
2. **Not collapsed**: the model tells rows apart. The training scores'
   spread (p99 - p50 of the calibration percentiles) must exceed
   ``min_spread``; and where the recent rows differ from each other, so must
   the standard deviation of their raw scores. Constant training data gives
   every row the same score: such a model cannot rank anything.
3. **Alert rate within bound** (see :func:`allowed_alerts`): the share of
   recent rows scoring at or above the threshold is what the calibration
   promised, give or take; a model that would page on far more than the
   target (data drifted since its training window, or a broken fit) is kept
   out.

The alert rate is judged before the spread: rows far off the training data
may all get the same top score, and "alerts on everything" is the truer
reason. A family with fewer than :data:`MIN_CHECK_ROWS` recent rows skips the
alert rate (too few rows say nothing) and passes on the other two checks. Odd data
never raises: missing or non-numeric columns and non-finite values fail the
family with a one-line reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs for pandas 3 in dev deps

from detector.scoring.calibration import THRESHOLD_SCORE
from detector.scoring.detectors import Matrix
from detector.scoring.training import ModelSet, TrainedModel

__all__ = [
    "MIN_CHECK_ROWS",
    "SMALL_SAMPLE_ALLOWANCE",
    "CheckOutcome",
    "FamilyCheck",
    "allowed_alerts",
    "check_models",
]

MIN_CHECK_ROWS = 10
"""Fewer recent rows than this and the alert rate is not checked (passes with a reason)."""
SMALL_SAMPLE_ALLOWANCE = 2
"""Alerts allowed on top of ``max_rate_factor x target x rows`` (see :func:`allowed_alerts`)."""


@dataclass(frozen=True, slots=True)
class FamilyCheck:
    """One family's outcome; ``reason`` is one line saying why it passed or failed.

    ``alert_rate``: share of recent rows at or above the threshold (None when
    not measured); ``spread``: the smallest score spread measured (None when
    the scores were not finite).
    """

    family: str
    passed: bool
    reason: str
    rows: int
    alert_rate: float | None
    spread: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "rows": self.rows,
            "alert_rate": self.alert_rate,
            "spread": self.spread,
        }


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """Every checked family's :class:`FamilyCheck`, by family name."""

    families: Mapping[str, FamilyCheck]

    @property
    def passed_families(self) -> tuple[str, ...]:
        return tuple(name for name, check in self.families.items() if check.passed)

    @property
    def failed_families(self) -> tuple[str, ...]:
        return tuple(name for name, check in self.families.items() if not check.passed)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (generation.json, checks.jsonl)."""
        return {
            "passed": list(self.passed_families),
            "failed": list(self.failed_families),
            "families": {name: check.to_dict() for name, check in self.families.items()},
        }

    def summary(self) -> str:
        """One line: how many passed, and each failure with its reason."""
        if not self.families:
            return "no models checked"
        failed = "; ".join(f"{name}: {self.families[name].reason}" for name in self.failed_families)
        counts = f"{len(self.passed_families)} of {len(self.families)} families passed"
        return f"{counts} (failed {failed})" if failed else counts


def allowed_alerts(rows: int, target_alert_rate: float, max_rate_factor: float) -> int:
    """The most alerts ``rows`` recent rows may raise: ``ceil(factor x target x rows) + 2``.

    A model as good on recent rows as on its training rows alerts on about
    ``target x rows`` of them, the count being roughly Poisson (binomial with
    a small rate). ``factor`` times that mean tolerates ordinary drift and
    only keeps out a model that would alert several times as often as it was
    calibrated to. The ``+ 2`` is for small samples, where the mean is far
    below one alert and one or two unlucky rows are no evidence: with target
    0.001 and 1,000 rows (mean 1) the bound is 7 alerts, and a model that
    really has the target rate exceeds it with probability about 1e-5
    (Poisson tail P(X >= 8 | 1)); with 100 rows the bound is 3 (P about 2e-4).
    """
    return math.ceil(max_rate_factor * target_alert_rate * rows) + SMALL_SAMPLE_ALLOWANCE


def check_models(
    models: ModelSet,
    recent: Mapping[str, pd.DataFrame],
    *,
    target_alert_rate: float,
    max_rate_factor: float = 5.0,
    min_spread: float = 1e-6,
) -> CheckOutcome:
    """Check every model of ``models`` on its family's ``recent`` rows (see the module docs).

    ``recent``: family → a frame with (at least) the family's feature columns;
    a family absent from it has no recent rows.
    """
    checks = {
        model.family: _check_family(
            model,
            recent.get(model.family),
            target_alert_rate=target_alert_rate,
            max_rate_factor=max_rate_factor,
            min_spread=min_spread,
        )
        for model in models
    }
    return CheckOutcome(checks)


def _check_family(
    model: TrainedModel,
    frame: pd.DataFrame | None,
    *,
    target_alert_rate: float,
    max_rate_factor: float,
    min_spread: float,
) -> FamilyCheck:
    matrix, problem = _recent_matrix(model, frame)
    rows = 0 if matrix is None else len(matrix)
    if problem is not None or matrix is None:
        return FamilyCheck(model.family, False, problem or "no recent rows", rows, None, None)
    training_spread = _training_spread(model)
    if training_spread is None:
        return FamilyCheck(model.family, False, "non-finite scores", rows, None, None)
    raw = model.raw_scores(matrix) if rows else np.zeros(0)
    if not np.all(np.isfinite(raw)):
        return FamilyCheck(model.family, False, "non-finite scores", rows, None, None)
    spread = training_spread
    if _rows_differ(matrix):
        spread = min(spread, float(np.std(raw)))
    # The alert rate first: rows far off the training data may all get the same top score,
    # and "alerts on everything" says more than "collapsed".
    rate, reason = None, f"only {rows} recent rows (alert rate not checked)"
    if rows >= MIN_CHECK_ROWS:
        alerts = int(np.count_nonzero(model.calibration.normalize(raw) >= THRESHOLD_SCORE))
        allowed = allowed_alerts(rows, target_alert_rate, max_rate_factor)
        rate = alerts / rows
        reason = f"alert rate {rate:.1%} on {rows:,} recent rows (bound {allowed / rows:.1%})"
        if alerts > allowed:
            return FamilyCheck(model.family, False, reason, rows, rate, spread)
    if spread <= min_spread:
        reason = f"collapsed score distribution (spread {spread:.3g}, at most {min_spread:g})"
        return FamilyCheck(model.family, False, reason, rows, rate, spread)
    return FamilyCheck(model.family, True, reason, rows, rate, spread)


def _recent_matrix(
    model: TrainedModel, frame: pd.DataFrame | None
) -> tuple[Matrix | None, str | None]:
    """The recent rows as a float matrix in the model's column order, or why they cannot be."""
    if frame is None:
        return np.zeros((0, len(model.features))), None
    missing = [name for name in model.features if name not in frame.columns]
    if missing:
        return None, f"recent rows lack features {missing}"
    try:
        matrix: Matrix = frame.loc[:, list(model.features)].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        return None, "recent rows hold non-numeric feature values"
    bad = int(np.count_nonzero(~np.isfinite(matrix).all(axis=1)))
    if bad:
        return matrix, f"non-finite feature values in {bad:,} of {len(matrix):,} recent rows"
    return matrix, None


def _training_spread(model: TrainedModel) -> float | None:
    """p99 - p50 of the training scores, or None if either is missing or not finite."""
    percentiles = model.calibration.percentiles
    high, middle = percentiles.get("p99"), percentiles.get("p50")
    if high is None or middle is None or not (math.isfinite(high) and math.isfinite(middle)):
        return None
    return float(high - middle)


def _rows_differ(matrix: Matrix) -> bool:
    """Whether at least two rows differ (identical rows rightly get identical scores)."""
    return len(matrix) >= 2 and bool(np.any(matrix != matrix[0]))
