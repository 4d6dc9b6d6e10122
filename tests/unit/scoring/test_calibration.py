"""Thresholds from training scores, and the documented mapping of raw scores onto [0, 1]."""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from detector.detections import Severity
from detector.scoring.calibration import HIGH_SCORE, THRESHOLD_SCORE, Calibration
from detector.scoring.scorer import severity_for
from detector.scoring.training import TrainedModel
from tests.unit.scoring.conftest import RATE


def test_threshold_gives_about_the_target_rate_on_training_data(
    code_model: TrainedModel, code_frame: pd.DataFrame
) -> None:
    matrix = code_frame.loc[:, list(code_model.features)].to_numpy(dtype=np.float64)
    alerting = float(np.mean(code_model.scores(matrix) >= THRESHOLD_SCORE))
    assert RATE / 2 <= alerting <= RATE


def test_tied_scores_never_push_the_training_rate_over_target() -> None:
    scores = np.concatenate([np.zeros(900), np.full(95, 1.0), np.full(5, 2.0)])
    calibration = Calibration.fit(scores, target_alert_rate=0.05)
    alerting = float(np.mean(calibration.normalize(scores) >= THRESHOLD_SCORE))
    assert alerting == pytest.approx(0.005)


def test_normalized_scores_are_monotone_in_unit_interval_with_threshold_at_half() -> None:
    training = np.random.default_rng(2).gamma(2.0, 1.0, 5000)
    calibration = Calibration.fit(training, target_alert_rate=0.01)
    raw = np.linspace(-5.0, 100.0, 2001)
    normalized = calibration.normalize(raw)
    assert np.all(np.diff(normalized) >= 0)
    assert normalized.min() >= 0.0
    assert normalized.max() < 1.0
    at_threshold = calibration.normalize(np.array([calibration.threshold]))[0]
    assert at_threshold == THRESHOLD_SCORE
    just_below = calibration.normalize(np.array([np.nextafter(calibration.threshold, 0.0)]))[0]
    assert just_below < THRESHOLD_SCORE


def test_calibration_round_trips_through_plain_data() -> None:
    calibration = Calibration.fit(np.arange(300.0), target_alert_rate=0.02)
    again = Calibration.from_dict(calibration.to_dict())
    raw = np.linspace(0.0, 400.0, 50)
    np.testing.assert_array_equal(again.normalize(raw), calibration.normalize(raw))


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        (0.49, None),
        (THRESHOLD_SCORE, Severity.MEDIUM),
        (HIGH_SCORE, Severity.HIGH),
        (0.99, Severity.HIGH),
    ],
)
def test_severity_bands(score: float, severity: Severity | None) -> None:
    assert severity_for(score) is severity
