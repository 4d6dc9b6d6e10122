"""Training: one detector per model family, calibrated on the organisation's own history.

:func:`train_models` takes the feature frame of a training period
(:func:`detector.features.batch.build_frame`) or a matrix per family, and
per family:

1. keeps the rows the family scores, minus late rows and rows of actors with
   less than :data:`MIN_HISTORY_DAYS` of history (the scorer skips those too,
   so the model learns what it will see);
2. transforms every feature with ``log1p`` (all features are non-negative
   counts, ratios, flags or ``-ln`` shares; the log tames the long tails of
   counts so one busy bot does not define the scale);
3. fits the detector and calibrates a threshold and a [0, 1] score on the
   training scores (:mod:`detector.scoring.calibration`);
4. keeps each feature's population median and 95th percentile, which
   explanations compare a suspicious value with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs for pandas 3 in dev deps

from detector.errors import ConfigError
from detector.features.batch import family_column
from detector.features.families import FAMILIES, Family, schema_hash
from detector.scoring.calibration import Calibration, FeatureStats
from detector.scoring.detectors import (
    DEFAULT_DETECTOR,
    Detector,
    DetectorSpec,
    Matrix,
    make_detector,
)

__all__ = [
    "MIN_TRAINING_ROWS",
    "ModelSet",
    "TrainedModel",
    "TrainingWindow",
    "train_family",
    "train_models",
    "transform",
]

MIN_TRAINING_ROWS = 50
MIN_HISTORY_DAYS = 1.0
"""An actor's first day says little about its habits (every hour is rare), so neither
training nor scoring uses it. Deliberately shorter than the new-value learning period:
a population model needs a day of context, not a week."""
_AGE = "actor.age_days"
"""Fewer rows than this for a family and it is not trained (too little to calibrate on)."""


@dataclass(frozen=True, slots=True)
class TrainingWindow:
    """The event times the training rows span, and how many rows and actors they hold."""

    first: datetime | None
    last: datetime | None
    rows: int
    actors: int


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """A fitted detector for one family, with everything needed to score and explain.

    ``features``: the family's feature names, the matrix column order;
    ``schema_hash``: :func:`~detector.features.families.schema_hash` of them.
    """

    family: str
    features: tuple[str, ...]
    schema_hash: str
    detector: Detector
    calibration: Calibration
    population: Mapping[str, FeatureStats]
    window: TrainingWindow

    def raw_scores(self, matrix: Matrix) -> Matrix:
        """Raw detector scores (higher = more anomalous) of untransformed feature rows."""
        return self.raw_scores_of_inputs(transform(matrix))

    def raw_scores_of_inputs(self, inputs: Matrix) -> Matrix:
        """:meth:`raw_scores` of rows already :func:`transform`-ed (a caller needing them too)."""
        return self.detector.decision_function(inputs)

    def scores(self, matrix: Matrix) -> Matrix:
        """Normalized scores in [0, 1] of untransformed feature rows; 0.5 is the threshold."""
        return self.calibration.normalize(self.raw_scores(matrix))


@dataclass(frozen=True, slots=True)
class ModelSet:
    """The trained models by family name; ``skipped``: family → why it was not trained."""

    models: Mapping[str, TrainedModel]
    skipped: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[TrainedModel]:
        return iter(self.models.values())

    def __len__(self) -> int:
        return len(self.models)


def transform(matrix: Matrix) -> Matrix:
    """The model input: ``log1p`` of each (non-negative) feature value."""
    result: Matrix = np.log1p(np.clip(np.asarray(matrix, dtype=np.float64), 0.0, None))
    return result


def train_family(
    family: Family | str,
    rows: pd.DataFrame,
    *,
    detector: DetectorSpec = DEFAULT_DETECTOR,
    target_alert_rate: float = 0.001,
    seed: int = 0,
    window: TrainingWindow | None = None,
) -> TrainedModel:
    """Fit and calibrate one family's model on ``rows`` (its feature columns; others ignored).

    ``window`` describes where the rows came from (the envelope and model card
    record it); without it only the row count is known.
    """
    family = _family(family)
    missing = family.missing(rows.columns)
    if missing:
        raise ConfigError(f"training data lacks features {list(missing)}", where=family.name)
    if len(rows) < MIN_TRAINING_ROWS:
        raise ConfigError(
            f"{len(rows)} training rows, at least {MIN_TRAINING_ROWS} needed", where=family.name
        )
    matrix = rows.loc[:, list(family.features)].to_numpy(dtype=np.float64)
    fitted = make_detector(detector, seed=seed).fit(transform(matrix))
    calibration = Calibration.fit(
        fitted.decision_function(transform(matrix)), target_alert_rate=target_alert_rate
    )
    median = np.median(matrix, axis=0)
    p95 = np.percentile(matrix, 95.0, axis=0)
    return TrainedModel(
        family=family.name,
        features=family.features,
        schema_hash=schema_hash(family.features),
        detector=fitted,
        calibration=calibration,
        population={
            name: FeatureStats(float(median[i]), float(p95[i]))
            for i, name in enumerate(family.features)
        },
        window=window or TrainingWindow(None, None, len(rows), 0),
    )


def train_models(
    data: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    families: Mapping[str, Family] = FAMILIES,
    detector: DetectorSpec | Mapping[str, DetectorSpec] = DEFAULT_DETECTOR,
    target_alert_rate: float = 0.001,
    seed: int = 0,
) -> ModelSet:
    """Train every family that has enough rows; the others are listed in ``skipped``.

    ``data``: a :func:`~detector.features.batch.build_frame` frame (rows are
    picked per family, late and learning rows left out), or family name → a
    frame of that family's rows (used as given; ``time``/``actor`` columns,
    if present, fill in the training window). ``detector``: one spec for all,
    or family name → spec.
    """
    models: dict[str, TrainedModel] = {}
    skipped: dict[str, str] = {}
    for name, family in families.items():
        rows = _rows_for(data, family)
        if rows is None:
            skipped[name] = "no training data given"
            continue
        if len(rows) < MIN_TRAINING_ROWS:
            skipped[name] = f"{len(rows)} rows, at least {MIN_TRAINING_ROWS} needed"
            continue
        models[name] = train_family(
            family,
            rows,
            detector=_spec_for(detector, name),
            target_alert_rate=target_alert_rate,
            seed=seed,
            window=_window(rows),
        )
    return ModelSet(models, skipped)


def _spec_for(detector: DetectorSpec | Mapping[str, DetectorSpec], family: str) -> DetectorSpec:
    """One spec for every family (a name, or a mapping with ``name``), or the family's own."""
    if isinstance(detector, str) or "name" in detector:
        return detector
    per_family: Mapping[str, DetectorSpec] = detector
    return per_family.get(family, DEFAULT_DETECTOR)


def _rows_for(data: pd.DataFrame | Mapping[str, pd.DataFrame], family: Family) -> Any:
    if not isinstance(data, pd.DataFrame):
        return data.get(family.name)
    column = family_column(family)
    if column not in data.columns:
        return None
    selected = data[column].astype(bool)
    if "late" in data.columns:
        selected &= ~data["late"].astype(bool)
    if _AGE in data.columns:
        selected &= data[_AGE] >= MIN_HISTORY_DAYS
    return data.loc[selected]


def _window(rows: pd.DataFrame) -> TrainingWindow:
    first = last = None
    if "time" in rows.columns and len(rows):
        times = pd.to_datetime(rows["time"], utc=True)
        first, last = times.min().to_pydatetime(), times.max().to_pydatetime()
    actors = int(rows["actor"].nunique()) if "actor" in rows.columns else 0
    return TrainingWindow(first, last, len(rows), actors)


def _family(family: Family | str) -> Family:
    if isinstance(family, Family):
        return family
    found = FAMILIES.get(family)
    if found is None:
        raise ConfigError(f"unknown model family (known: {', '.join(FAMILIES)})", where=family)
    return found
