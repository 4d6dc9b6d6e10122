"""Isolation-forest scores in one loop over the trees, without per-tree task dispatch.

scikit-learn's ``IsolationForest.score_samples`` hands every tree to joblib as a
task of its own; for the batches the daemon scores (hundreds to a few
thousand rows) that dispatch, about 80 µs a tree, costs more than the trees
(16 ms a call for 200 trees against 3-4 ms of tree walking). Here the same
computation — each tree's leaf for every row (the fitted ``tree_.apply``,
without the estimator's per-call input checks), the leaf's depth plus the
expected depth of its remaining samples, averaged and normalised — runs in a
plain loop. It reads fitted attributes that scikit-learn keeps for exactly
this (``_decision_path_lengths``, ``_average_path_length_per_tree``, since
1.3); :func:`forest_scores` returns ``None`` when a forest lacks them, and
the detector checks once that both ways agree before relying on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["forest_scores"]

Scores = npt.NDArray[np.float64]


def forest_scores(model: Any, matrix: npt.NDArray[np.float64]) -> Scores | None:
    """``-model.score_samples(matrix)`` (higher = more anomalous), or None if not computable."""
    try:
        from sklearn.ensemble._iforest import _average_path_length  # type: ignore[import-untyped]

        trees = model.estimators_
        columns = model.estimators_features_
        lengths = model._decision_path_lengths
        averages = model._average_path_length_per_tree
        max_samples = model._max_samples
        subsample = model._max_features != matrix.shape[1]
    except (ImportError, AttributeError):
        return None
    rows = np.ascontiguousarray(matrix, dtype=np.float32)  # the trees' own dtype
    depths = np.zeros(len(rows), dtype=np.float64)
    for tree, used, length, average in zip(trees, columns, lengths, averages, strict=True):
        subset = np.ascontiguousarray(rows[:, used]) if subsample else rows
        leaves = tree.tree_.apply(subset)
        depths += length[leaves] + average[leaves] - 1.0
    denominator = len(trees) * float(_average_path_length([max_samples])[0])
    if denominator == 0:
        return np.ones(len(rows), dtype=np.float64)
    scores: Scores = np.power(2.0, -depths / denominator)
    return scores
