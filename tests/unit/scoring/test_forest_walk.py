"""The compiled tree walk reaches the same leaves as the NumPy walk: scores equal bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

from detector.scoring import forest as forest_module
from detector.scoring import forest_walk
from detector.scoring.forest import Forest, forest_arrays


def _scores(
    forest: Forest, rows: np.ndarray, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> np.ndarray:
    walk = forest_walk.walk_kernel.compiled() if compiled else None
    monkeypatch.setattr(forest_module, "compiled_walk", lambda count: walk)
    return forest.scores(rows)


def test_compiled_and_numpy_walks_score_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    train = np.vstack([rng.normal(0, 1, (800, 5)), np.floor(rng.exponential(2.0, (200, 5)))])
    model = IsolationForest(n_estimators=40, max_features=0.6, random_state=2).fit(train)
    forest = Forest.from_arrays(forest_arrays(model))
    thresholds = forest.arrays["threshold"][forest.arrays["left"] != -1]
    rows = np.vstack(
        [
            rng.normal(0, 2, (1500, 5)),
            np.resize(thresholds, (40, 5)),  # values on a split: the comparison's edge
            np.full((3, 5), np.nan),
            np.zeros((2, 5)),
        ]
    )
    assert forest_walk.walk_kernel.compiled() is not None  # numba is installed with pyod
    compiled = _scores(forest, rows, True, monkeypatch)
    walked = _scores(forest, rows, False, monkeypatch)
    assert compiled.tobytes() == walked.tobytes()
    finite = ~np.isnan(rows).any(axis=1)
    expected = -model.score_samples(rows[finite])
    assert np.allclose(compiled[finite], expected, rtol=0, atol=1e-12)


def test_numba_starts_only_after_enough_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forest_walk.walk_kernel, "after_rows", 1000)
    monkeypatch.setattr(forest_walk.walk_kernel, "rows_seen", 0)
    monkeypatch.setattr(forest_walk.walk_kernel, "built", False)  # as in a new process
    assert forest_walk.compiled_walk(600) is None
    assert forest_walk.compiled_walk(600) is None  # 600 walked before: still short of 1000
    assert forest_walk.compiled_walk(10) is forest_walk.walk_kernel.compiled()


def test_float32_thresholds_split_float32_values_as_the_float64_ones() -> None:
    rng = np.random.default_rng(5)
    special = [0.0, -0.0, 1.1, 1e39, -1e39, np.inf, -np.inf, 2.0**-149 / 3]
    t64 = np.concatenate([rng.normal(0, 3, 400), np.log1p(rng.integers(0, 1000, 100)), special])
    thresholds = forest_walk.float32_below(t64)
    with np.errstate(over="ignore"):
        nearest = t64.astype(np.float32)
    values = np.concatenate(
        [
            nearest,
            np.nextafter(nearest, np.float32(np.inf)),
            np.nextafter(nearest, np.float32(-np.inf)),
            np.array([np.nan], dtype=np.float32),
        ]
    )[:, None]
    assert thresholds.dtype == np.float32
    assert np.array_equal(values <= t64[None, :], values <= thresholds[None, :])


def test_a_node_with_two_parents_is_left_to_the_numpy_walk() -> None:
    # Node 1 is the child of both 0 and 2: no scikit-learn tree, and no neighbours' numbering.
    children = np.array([1, 2, 1, 1, 1, 3, 3, 3], dtype=np.intp)
    packed = forest_walk.pack(
        np.zeros(1, dtype=np.intp), children, np.zeros(4, dtype=np.intp), np.zeros(4), np.ones(4)
    )
    assert packed is None
