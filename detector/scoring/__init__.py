"""Anomaly models: detectors, training and calibration, model files, scoring (docs/models.md).

The API the pipeline and ``ciwatch train`` use:

- :func:`train_models` (frame or matrix per family → :class:`ModelSet`),
- :func:`save_models` / :func:`load_models` (a verified model directory),
- :class:`AnomalyScorer` (observations → explained anomaly Detections),
- :func:`make_detector` and :data:`DETECTORS` (detectors by name).
"""

from __future__ import annotations

from detector.scoring.calibration import HIGH_SCORE, THRESHOLD_SCORE, Calibration, FeatureStats
from detector.scoring.detectors import DETECTORS, Detector, NotFittedError, make_detector
from detector.scoring.envelope import (
    ModelError,
    current_schema_hashes,
    load_models,
    save_models,
)
from detector.scoring.scorer import AnomalyScorer
from detector.scoring.training import ModelSet, TrainedModel, train_family, train_models

__all__ = [
    "DETECTORS",
    "HIGH_SCORE",
    "THRESHOLD_SCORE",
    "AnomalyScorer",
    "Calibration",
    "Detector",
    "FeatureStats",
    "ModelError",
    "ModelSet",
    "NotFittedError",
    "TrainedModel",
    "current_schema_hashes",
    "load_models",
    "make_detector",
    "save_models",
    "train_family",
    "train_models",
]
