"""An isolation forest as plain arrays, and its scores computed from them.

A fitted scikit-learn ``IsolationForest`` is turned into one set of node
arrays for all its trees (:func:`forest_arrays`): children, the feature each
node splits on (as a column of the full matrix), its threshold and, per
node, the path length a row ending there gets (its depth plus the expected
depth of the samples left in it, minus one: scikit-learn's
``_decision_path_lengths + _average_path_length_per_tree - 1``). A model
file stores these arrays and nothing else, so loading one never runs code.

:class:`Forest` walks every tree at once, one level per step, for the whole
batch — one vectorised step per level instead of one task per tree, which is
what makes scikit-learn's own ``score_samples`` slow on the daemon's small
batches. Long runs walk the trees compiled instead (:mod:`.forest_walk`), to the same
leaves. Rows are compared as float32, as scikit-learn's trees compare them.
The scores equal ``-IsolationForest.score_samples`` to rounding (summation order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from detector.errors import CiwatchError
from detector.scoring.forest_walk import Packed, compiled_walk, pack

__all__ = ["FOREST_ARRAYS", "Forest", "ForestError", "forest_arrays"]

Scores = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

FOREST_ARRAYS = (
    "offsets",
    "left",
    "right",
    "feature",
    "threshold",
    "path_length",
    "denominator",
    "n_features",
)
"""The array names :meth:`Forest.to_arrays` writes and :meth:`Forest.from_arrays` reads."""


class ForestError(CiwatchError, ValueError):
    """Forest arrays that do not describe trees (out-of-range children, cycles, NaN)."""


def forest_arrays(model: Any) -> dict[str, npt.NDArray[Any]]:
    """The node arrays of a fitted ``IsolationForest`` (scikit-learn 1.3+), tree after tree.

    Children are indices within their own tree (``-1`` for a leaf); ``offsets``
    is where each tree starts. ``denominator`` is the number of trees times the
    average path length of ``max_samples`` samples.
    """
    from sklearn.ensemble._iforest import _average_path_length  # type: ignore[import-untyped]

    parts: dict[str, list[npt.NDArray[Any]]] = {name: [] for name in FOREST_ARRAYS[1:6]}
    offsets = [0]
    trees = zip(
        model.estimators_,
        model.estimators_features_,
        model._decision_path_lengths,
        model._average_path_length_per_tree,
        strict=True,
    )
    for estimator, used, lengths, averages in trees:
        tree = estimator.tree_
        leaf = tree.children_left == -1
        parts["left"].append(tree.children_left.astype(np.int64))
        parts["right"].append(tree.children_right.astype(np.int64))
        # Features as columns of the full matrix: a tree may see only a subset of them.
        parts["feature"].append(np.where(leaf, -1, np.asarray(used)[np.maximum(tree.feature, 0)]))
        parts["threshold"].append(np.where(leaf, 0.0, tree.threshold).astype(np.float64))
        parts["path_length"].append((lengths + averages - 1.0).astype(np.float64))
        offsets.append(offsets[-1] + tree.node_count)
    denominator = len(model.estimators_) * float(_average_path_length([model._max_samples])[0])
    arrays: dict[str, npt.NDArray[Any]] = {
        name: np.concatenate(values) for name, values in parts.items()
    }
    arrays["offsets"] = np.asarray(offsets, dtype=np.int64)
    arrays["denominator"] = np.asarray(denominator, dtype=np.float64)
    arrays["n_features"] = np.asarray(model.n_features_in_, dtype=np.int64)
    return arrays


_CHUNK = 1024
"""Rows walked at once: bounds the (rows by trees) index arrays a long matrix would need."""


@dataclass(frozen=True, slots=True, eq=False)
class Forest:
    """Every tree of a forest in flat arrays; :meth:`scores` is ``-score_samples``."""

    arrays: dict[str, npt.NDArray[Any]]
    roots: npt.NDArray[np.intp]
    children: npt.NDArray[np.intp]  # flat (left, right) pairs; a leaf points at itself twice
    feature: npt.NDArray[np.intp]  # 0 at leaves, where it is never used to choose
    depth: int
    packed: Packed | None  # the same nodes, as the compiled walk reads them

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> Forest:
        """Check ``arrays`` (see :data:`FOREST_ARRAYS`) describe trees; raises
        :class:`ForestError` naming what is wrong."""
        missing = sorted(set(FOREST_ARRAYS) - set(arrays))
        if missing:
            raise ForestError(f"missing arrays {missing}")
        offsets, left, right, feature = (_ints(arrays, name) for name in FOREST_ARRAYS[:4])
        if arrays["n_features"].shape != ():
            raise ForestError("n_features is not one number")
        n_features = int(_ints(arrays, "n_features"))
        threshold, path_length = _floats(arrays, "threshold"), _floats(arrays, "path_length")
        denominator = _floats(arrays, "denominator")
        nodes = len(left)
        if (
            offsets.ndim != 1
            or len(offsets) < 2
            or offsets[0] != 0
            or offsets[-1] != nodes
            or np.any(np.diff(offsets) < 1)
        ):
            raise ForestError("offsets do not split the nodes into trees")
        if nodes >= 2**31:  # the compiled walk numbers nodes in 32 bits
            raise ForestError(f"{nodes} nodes, more than a forest may have")
        if {len(right), len(feature), len(threshold), len(path_length)} != {nodes}:
            raise ForestError("node arrays of different lengths")
        if denominator.shape != () or not np.all(np.isfinite(path_length)):
            raise ForestError("denominator or path lengths not finite numbers")
        tree_start = np.repeat(offsets[:-1], np.diff(offsets))
        tree_end = np.repeat(offsets[1:], np.diff(offsets))
        index = np.arange(nodes)
        leaf = left == -1
        internal = ~leaf
        flat_left, flat_right = left + tree_start, right + tree_start
        # Children after their parent and inside its tree: every walk ends at a leaf.
        for child in (flat_left, flat_right):
            if np.any(internal & ((child <= index) | (child >= tree_end))):
                raise ForestError("a child outside its tree or not after its parent")
        if np.any(leaf != (right == -1)) or np.any(
            internal & ((feature < 0) | (feature >= n_features))
        ):
            raise ForestError(f"leaves disagree, or a feature outside 0..{n_features - 1}")
        children = np.column_stack(
            [np.where(leaf, index, flat_left), np.where(leaf, index, flat_right)]
        ).astype(np.intp)
        kept = {name: arrays[name] for name in FOREST_ARRAYS}
        roots = offsets[:-1].astype(np.intp)
        depth = _depth(children, roots)
        flat_children = children.ravel()
        split_on = np.maximum(feature, 0).astype(np.intp)
        packed = pack(roots, flat_children, split_on, threshold, kept["path_length"])
        return cls(kept, roots, flat_children, split_on, depth, packed)

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The arrays it was built from (see :data:`FOREST_ARRAYS`)."""
        return dict(self.arrays)

    def scores(self, matrix: npt.NDArray[np.float64]) -> Scores:
        """``-score_samples`` of ``matrix``'s rows: higher = more anomalous."""
        rows = np.ascontiguousarray(matrix, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != int(self.arrays["n_features"]):
            width = int(self.arrays["n_features"])
            raise ForestError(f"rows of shape {rows.shape}, the forest has {width} features")
        depths = np.concatenate(
            [self._depths(rows[start : start + _CHUNK]) for start in range(0, len(rows), _CHUNK)]
            or [np.zeros(0)]
        )
        denominator = float(self.arrays["denominator"])
        if denominator == 0:
            return np.ones(len(rows), dtype=np.float64)
        scores: Scores = np.power(2.0, -depths / denominator)
        return scores

    def _depths(self, rows: npt.NDArray[np.float32]) -> Scores:
        """Each row's path length summed over the trees."""
        lengths: Scores = self._lengths(rows).sum(axis=1)
        return lengths

    def _lengths(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.floating[Any]]:
        """The path length of the leaf each row reaches in each tree: compiled walks, else
        all trees one level per step (the same comparisons, so the same leaves and lengths;
        see :mod:`.forest_walk`)."""
        threshold, path_length = self.arrays["threshold"], self.arrays["path_length"]
        walk = compiled_walk(len(rows)) if self.packed is not None else None
        if walk is not None and self.packed is not None:
            lengths = np.empty((len(rows), len(self.roots)), dtype=path_length.dtype)
            walk(rows, *self.packed, self.depth, lengths)
            return lengths
        flat_rows = rows.astype(np.float64).ravel()  # exact: compared with float64 thresholds
        starts = (np.arange(len(rows), dtype=np.intp) * rows.shape[1])[:, None]
        node = np.broadcast_to(self.roots, (len(rows), len(self.roots))).copy()
        for _ in range(self.depth):
            # Right where the value is above the threshold (or NaN), as in scikit-learn.
            right = ~(flat_rows[starts + self.feature[node]] <= threshold[node])
            node = self.children[node * 2 + right]
        found: npt.NDArray[np.floating[Any]] = path_length[node]
        return found


def _depth(children: npt.NDArray[np.intp], roots: npt.NDArray[np.intp]) -> int:
    """How many steps from the roots until every walk rests on a leaf (the deepest leaf's depth)."""
    level, steps = roots, 0
    while True:
        internal = level[children[level, 0] != level]
        if len(internal) == 0:
            return steps
        level, steps = np.unique(children[internal].ravel()), steps + 1


def _ints(arrays: dict[str, npt.NDArray[Any]], name: str) -> Ints:
    value = arrays[name]
    if value.dtype.kind not in "iu":
        raise ForestError(f"{name} is not an integer array")
    return value.astype(np.int64)


def _floats(arrays: dict[str, npt.NDArray[Any]], name: str) -> npt.NDArray[np.float64]:
    value = arrays[name]
    if value.dtype.kind != "f":
        raise ForestError(f"{name} is not a float array")
    return value.astype(np.float64)
