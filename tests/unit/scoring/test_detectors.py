"""The detector registry and pyod's contract: fit, then higher scores for the anomalous."""

from __future__ import annotations

import numpy as np
import pytest

from detector.errors import ConfigError
from detector.scoring.detectors import (
    DETECTORS,
    EnsembleDetector,
    IsolationForestDetector,
    Matrix,
    NotFittedError,
    PyodDetector,
    TailProbabilityDetector,
    make_detector,
)

SPECS = ["iforest", "ecod", "pyod:IForest", "pyod:ECOD", "pyod:HBOS", "pyod:COPOD", "ensemble"]
ENSEMBLE = {"name": "ensemble", "members": ["iforest", "pyod:HBOS"]}


def _spec(name: str) -> object:
    return ENSEMBLE if name == "ensemble" else name


@pytest.fixture(scope="module")
def inliers() -> Matrix:
    return np.random.default_rng(5).normal(0.0, 1.0, size=(400, 4))


def test_registry_builds_each_kind_by_name() -> None:
    assert "iforest" in DETECTORS
    assert isinstance(make_detector("iforest"), IsolationForestDetector)
    assert isinstance(make_detector("pyod:HBOS"), PyodDetector)
    assert isinstance(make_detector(ENSEMBLE), EnsembleDetector)


def test_spec_round_trips_through_make_detector() -> None:
    for spec in (
        "iforest",
        "ecod",
        "ensemble",
        "pyod:ECOD",
        {"name": "pyod:ECOD", "params": {"fit_rows": 100}},
        ENSEMBLE,
        {"name": "iforest", "params": {"max_samples": 64}},
    ):
        built = make_detector(spec, seed=4)
        assert make_detector(built.spec, seed=4).spec == built.spec


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ("lof", "detector"),
        ("pyod:NoSuchModel", "detector pyod:NoSuchModel"),
        ("pyod:os.path", "detector pyod:os.path"),
        ({"name": "iforest", "colour": "red"}, "detector"),
        ({"name": "iforest", "members": ["iforest"]}, "detector iforest"),
        ({"name": "ensemble", "members": []}, "detector.members"),
    ],
)
def test_bad_specs_raise_config_error_naming_where(spec: object, where: str) -> None:
    with pytest.raises(ConfigError) as raised:
        make_detector(spec)  # type: ignore[arg-type]
    assert raised.value.where == where
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("name", SPECS)
def test_scoring_before_fit_raises_not_fitted(name: str, inliers: Matrix) -> None:
    with pytest.raises(NotFittedError):
        make_detector(_spec(name)).decision_function(inliers)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", SPECS)
def test_obvious_outlier_scores_higher_than_every_inlier(name: str, inliers: Matrix) -> None:
    detector = make_detector(_spec(name), seed=0).fit(inliers)  # type: ignore[arg-type]
    outlier = np.full((1, inliers.shape[1]), 8.0)
    scores = detector.decision_function(np.vstack([inliers, outlier]))
    assert scores.shape == (len(inliers) + 1,)
    assert scores[-1] > scores[:-1].max()


@pytest.mark.parametrize("name", ["iforest", "pyod:IForest", "ensemble"])
def test_same_seed_same_scores(name: str, inliers: Matrix) -> None:
    first = make_detector(_spec(name), seed=9).fit(inliers).decision_function(inliers)  # type: ignore[arg-type]
    second = make_detector(_spec(name), seed=9).fit(inliers).decision_function(inliers)  # type: ignore[arg-type]
    np.testing.assert_array_equal(first, second)


def test_ensemble_without_members_is_the_forest_and_tail_probabilities() -> None:
    assert make_detector("ensemble").spec["members"] == [
        make_detector("iforest").spec,
        make_detector("ecod").spec,
    ]


def test_tail_probabilities_do_not_depend_on_the_rows_scored_together(inliers: Matrix) -> None:
    detector = make_detector("ecod").fit(inliers)
    batch = np.vstack([inliers[:50], np.full((20, 4), 6.0)])
    together = detector.decision_function(batch)
    one_by_one = np.concatenate([detector.decision_function(row[None, :]) for row in batch])
    assert np.allclose(together, one_by_one)


def test_a_value_never_seen_on_a_constant_feature_scores_its_full_tail(inliers: Matrix) -> None:
    # A tree cannot split on a feature that never varied; the tail probability sees it.
    training = np.column_stack([inliers, np.zeros(len(inliers))])
    detector = TailProbabilityDetector().fit(training)
    ordinary = np.append(inliers[0], 0.0)
    unseen = np.append(inliers[0], 1.0)
    [before, after] = detector.decision_function(np.vstack([ordinary, unseen]))
    assert after - before == pytest.approx(np.log(len(training) + 1))


def test_fit_rows_bounds_what_a_detector_keeps(inliers: Matrix) -> None:
    detector = TailProbabilityDetector(fit_rows=100, seed=3).fit(inliers)
    again = TailProbabilityDetector(fit_rows=100, seed=3).fit(inliers)
    assert np.array_equal(detector.decision_function(inliers), again.decision_function(inliers))
    # Beyond every kept row on all four features: ln(kept + 1) each, whatever the history.
    [far] = detector.decision_function(np.full((1, 4), 100.0))
    assert far == pytest.approx(4 * np.log(101))
