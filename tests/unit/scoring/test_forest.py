"""The forest's node arrays score like scikit-learn's own forest, and bad arrays are refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

from detector.scoring.detectors import IsolationForestDetector
from detector.scoring.forest import FOREST_ARRAYS, Forest, ForestError, forest_arrays


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.vstack([rng.normal(0, 1, (500, 6)), rng.normal(6, 1, (5, 6))])


@pytest.fixture(scope="module")
def arrays(rows: np.ndarray) -> dict[str, npt.NDArray[Any]]:
    model = IsolationForest(n_estimators=20, random_state=1).fit(rows)
    return forest_arrays(model)


@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_forest_scores_equal_scikit_learns(rows: np.ndarray, max_features: float) -> None:
    model = IsolationForest(n_estimators=50, max_features=max_features, random_state=1)
    model.fit(rows)
    forest = Forest.from_arrays(forest_arrays(model))
    assert np.allclose(forest.scores(rows), -model.score_samples(rows), rtol=0, atol=1e-12)


def test_long_matrices_score_in_chunks_like_short_ones(arrays: dict[str, Any]) -> None:
    forest = Forest.from_arrays(arrays)
    many = np.random.default_rng(4).normal(0, 2, (2500, 6))
    one_by_one = np.concatenate([forest.scores(row[None, :]) for row in many[:300]])
    assert np.array_equal(forest.scores(many)[:300], one_by_one)
    assert forest.scores(many[:0]).shape == (0,)


def test_the_detector_scores_from_the_arrays_it_exports(rows: np.ndarray) -> None:
    detector = IsolationForestDetector(n_estimators=30).fit(rows)
    assert set(detector.to_arrays()) == set(FOREST_ARRAYS)
    rebuilt = IsolationForestDetector(n_estimators=30).load_arrays(detector.to_arrays())
    assert np.array_equal(rebuilt.decision_function(rows), detector.decision_function(rows))


def _broken(arrays: dict[str, Any], name: str, change: Any) -> dict[str, Any]:
    edited = {key: value.copy() for key, value in arrays.items()}
    edited[name] = change(edited[name])
    return edited


def _cycle(left: np.ndarray) -> np.ndarray:
    internal = np.flatnonzero(left != -1)
    left[internal[1]] = 0  # a child pointing back at its tree's root
    return left


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("left", _cycle, "not after its parent"),
        ("right", lambda right: right + 10_000_000, "outside its tree"),
        ("feature", lambda feature: np.where(feature >= 0, 99, feature), "feature outside"),
        ("offsets", lambda offsets: offsets[:-1], "offsets"),
        ("threshold", lambda threshold: threshold[:-1], "different lengths"),
        ("left", lambda left: left.astype(np.float64), "not an integer array"),
        ("path_length", lambda lengths: lengths * np.nan, "not finite"),
    ],
)
def test_arrays_that_are_not_trees_are_refused(
    arrays: dict[str, Any], name: str, change: Any, message: str
) -> None:
    with pytest.raises(ForestError, match=message):
        Forest.from_arrays(_broken(arrays, name, change))


def test_missing_arrays_and_wrong_widths_are_refused(arrays: dict[str, Any]) -> None:
    with pytest.raises(ForestError, match="missing arrays"):
        Forest.from_arrays({key: value for key, value in arrays.items() if key != "left"})
    with pytest.raises(ForestError, match="6 features"):
        Forest.from_arrays(arrays).scores(np.zeros((2, 5)))
