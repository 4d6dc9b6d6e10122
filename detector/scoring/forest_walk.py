"""The leaf each row reaches in each tree of a :class:`~detector.scoring.forest.Forest`, compiled.

NumPy walks every (row, tree) pair one level per step, as deep as the deepest
leaf, with a gather per array per level: about 15 µs per scored event with the
bundled models (200 trees, 10 levels). Compiled with numba, the walk reads each
node from one 16-byte record (:class:`Packed`: the split feature and both
children as int32 beside a float32 threshold) instead of three int64/float64
arrays: four models' trees then fit the caches about twice as well. The float32
threshold is the float64 one rounded *down*, so for a float32 row value ``x``
(rows are compared as float32) ``x <= t32`` exactly when ``x <= t64``. Both walks
give the same leaves, so the scores summed from them stay bit for bit the same;
without numba the NumPy walk runs.

Starting numba costs a process about a second, so :func:`compiled_walk` hands the
kernel out only once the process has walked
:data:`~detector.scoring.jit.COMPILE_AFTER_ROWS` rows the NumPy way, and compiles
it on the main thread only (:class:`~detector.scoring.jit.LazyKernel` says why):
a daemon or a long replay switches early, a short run never starts numba.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from detector.scoring.jit import Kernel, LazyKernel

__all__ = ["Packed", "compiled_walk", "pack", "walk_kernel"]


class Packed(NamedTuple):
    """A forest's nodes as the compiled walk reads them (see the module docs)."""

    roots: npt.NDArray[np.int32]
    nodes: npt.NDArray[np.int32]  # (nodes, 3): split feature, left child, right child
    thresholds: npt.NDArray[np.float32]  # each float64 threshold rounded down to float32


def pack(
    roots: npt.NDArray[np.intp],
    children: npt.NDArray[np.intp],
    feature: npt.NDArray[np.intp],
    threshold: npt.NDArray[np.float64],
) -> Packed:
    """The compiled walk's copy of a forest's node arrays (``children``: flat pairs)."""
    nodes = np.empty((len(feature), 3), dtype=np.int32)
    nodes[:, 0] = feature
    nodes[:, 1:] = children.reshape(-1, 2)
    with np.errstate(over="ignore"):  # beyond float32's range is ±inf, then stepped down
        thresholds = threshold.astype(np.float32)
    above = thresholds.astype(np.float64) > threshold  # rounded up: one float32 step down
    thresholds[above] = np.nextafter(thresholds[above], np.float32(-np.inf))
    return Packed(roots.astype(np.int32), nodes, thresholds)


def compiled_walk(rows: int) -> Kernel | None:
    """The kernel to walk ``rows`` more rows with, once the process has walked enough
    (``None`` before that, or without numba: walk them with NumPy); it is
    ``walk(rows, roots, nodes, thresholds, depth, out)``."""
    return walk_kernel.kernel(rows)


def _walk(
    rows: npt.NDArray[np.float32],
    roots: npt.NDArray[np.int32],
    nodes: npt.NDArray[np.int32],
    thresholds: npt.NDArray[np.float32],
    depth: int,
    out: npt.NDArray[Any],
) -> None:
    """``out[r, t]``: the leaf row ``r`` reaches in tree ``t``.

    ``depth`` steps down every tree (a leaf is its own child, twice): the walks of
    one tree are independent, so the CPU overlaps the rows' loads instead of
    waiting on one chain of them, and nothing branches on the data.
    """
    count, width = rows.shape
    flat = rows.ravel()
    at = np.empty(count, dtype=np.int32)
    for tree in range(roots.shape[0]):  # one tree's nodes stay in cache for every row
        at[:] = roots[tree]
        for _ in range(depth):
            for row in range(count):
                node = at[row]
                # Right where the value is above the threshold (or NaN), as in scikit-learn.
                right = not flat[row * width + nodes[node, 0]] <= thresholds[node]
                at[row] = nodes[node, 1 + right]
        out[:, tree] = at


_ONE_LEAF = pack(
    np.zeros(1, dtype=np.intp), np.zeros(2, dtype=np.intp), np.zeros(1, dtype=np.intp), np.zeros(1)
)

walk_kernel = LazyKernel(
    _walk,
    sample_args=(
        np.zeros((1, 1), dtype=np.float32),
        *_ONE_LEAF,
        1,
        np.zeros((1, 1), dtype=np.intp),
    ),
)
"""The compiled :func:`_walk`, counting the rows this process walked."""
