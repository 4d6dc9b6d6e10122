"""The one-loop isolation-forest scores equal scikit-learn's, and the detector checks it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

from detector.scoring.detectors import IsolationForestDetector
from detector.scoring.forest import forest_scores


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.vstack([rng.normal(0, 1, (500, 6)), rng.normal(6, 1, (5, 6))])


@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_forest_scores_equal_scikit_learns(rows: np.ndarray, max_features: float) -> None:
    model = IsolationForest(n_estimators=50, max_features=max_features, random_state=1)
    model.fit(rows)
    fast = forest_scores(model, rows)
    assert fast is not None
    assert np.allclose(fast, -model.score_samples(rows))


def test_a_forest_without_the_fitted_attributes_is_left_to_scikit_learn() -> None:
    assert forest_scores(object(), np.zeros((2, 3))) is None


def test_the_detector_uses_the_loop_once_it_agrees_and_does_not_pickle_that(
    rows: np.ndarray,
) -> None:
    detector = IsolationForestDetector(n_estimators=50).fit(rows)
    scores = detector.decision_function(rows)
    assert detector._fast is True
    assert np.allclose(scores, -detector._estimator().score_samples(rows))
    restored = pickle.loads(pickle.dumps(detector))
    assert not hasattr(restored, "_fast")
    assert np.allclose(restored.decision_function(rows), scores)
