"""Each row's path length in each tree of a :class:`~detector.scoring.forest.Forest`, compiled.

NumPy walks every (row, tree) pair one level per step, as deep as the deepest
leaf, with a gather per array per level: about 15 µs per scored event with the
bundled models (200 trees, 10 levels). Compiled with numba, the walk reads each
node from one 8-byte record and a float32 threshold (:class:`Packed`) instead of
three int64/float64 arrays: four models' trees then fit the caches far better.
:func:`pack` numbers each tree's nodes again, level by level, so that a node's two
children are neighbours: the child is ``first + (x is not <= threshold)``, one
load less per step. A leaf's "first child" is the node before it and its
threshold NaN, so every row steps right onto the leaf itself: the walk goes
``depth`` steps without testing for leaves. Node numbers and row offsets are
unsigned: numba indexes with them as they are, where it tests every signed
index for a negative one (counted from the end) first, which made the walk
about 1.6 times slower. The float32 threshold is the float64 one rounded
*down* (:func:`float32_below`), so for a float32 row value ``x`` (rows are
compared as float32) ``x <= t32`` exactly when ``x <= t64``. Both walks
reach the same leaves and read the same path lengths, summed by NumPy alike, so
the scores stay bit for bit the same; without numba the NumPy walk runs.

Starting numba costs a process about a second, so :func:`compiled_walk` hands the
kernel out only once the process has walked
:data:`~detector.jit.COMPILE_AFTER_ROWS` rows the NumPy way, and compiles
it on the main thread only (:class:`~detector.jit.LazyKernel` says why):
a daemon or a long replay switches early, a short run never starts numba.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from detector.jit import Kernel, LazyKernel

__all__ = ["Packed", "compiled_walk", "float32_below", "pack", "walk_kernel"]


class Packed(NamedTuple):
    """A forest's nodes as the compiled walk reads them (see the module docs)."""

    roots: npt.NDArray[np.uint32]
    nodes: npt.NDArray[np.uint32]  # (nodes, 2): split feature, first child (the right one next)
    thresholds: npt.NDArray[np.float32]  # float32_below of the threshold; NaN at leaves
    lengths: npt.NDArray[np.floating[Any]]  # the path length of a row ending at each node


def float32_below(threshold: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Each threshold as the largest float32 at or below it (beyond float32's range: ±inf,
    then stepped down): a float32 ``x`` is ``<=`` it exactly when ``x <=`` the float64 one."""
    with np.errstate(over="ignore"):
        thresholds = threshold.astype(np.float32)
    above = thresholds.astype(np.float64) > threshold  # rounded up: one float32 step down
    thresholds[above] = np.nextafter(thresholds[above], np.float32(-np.inf))
    return thresholds


def pack(
    roots: npt.NDArray[np.intp],
    children: npt.NDArray[np.intp],
    feature: npt.NDArray[np.intp],
    threshold: npt.NDArray[np.float64],
    path_length: npt.NDArray[np.floating[Any]],
) -> Packed | None:
    """The compiled walk's copy of a forest's node arrays (``children``: flat (left, right)
    pairs, a leaf its own child twice), nodes numbered again (see the module docs);
    ``None`` when a node is the child of two (no scikit-learn tree: the NumPy walk)."""
    pairs = children.reshape(-1, 2)
    leaf = pairs[:, 0] == np.arange(len(pairs))
    if len(np.unique(pairs[~leaf])) != 2 * np.count_nonzero(~leaf):
        return None
    number = _numbering(roots, pairs, leaf)
    nodes = np.empty((len(pairs), 2), dtype=np.uint32)
    nodes[number, 0] = feature
    # A leaf's first child is the node before it, its threshold NaN: it steps onto itself
    # (a leaf numbered 0, a first tree of one leaf, has 2**32 - 1: the step wraps to 0).
    nodes[number, 1] = np.where(leaf, number - 1, number[pairs[:, 0]]).astype(np.uint32)
    thresholds = np.empty(len(pairs), dtype=np.float32)
    thresholds[number] = np.where(leaf, np.float32(np.nan), float32_below(threshold))
    lengths = np.empty_like(path_length)
    lengths[number] = path_length
    return Packed(number[roots].astype(np.uint32), nodes, thresholds, lengths)


def _numbering(
    roots: npt.NDArray[np.intp], pairs: npt.NDArray[np.intp], leaf: npt.NDArray[np.bool_]
) -> npt.NDArray[np.intp]:
    """Each node's new number: tree after tree, level after level, siblings side by side
    (nodes no root reaches come last: no walk steps onto them)."""
    number = np.full(len(pairs), -1, dtype=np.intp)
    given = 0
    for root in roots.tolist():
        level = np.array([root], dtype=np.intp)
        number[root] = given
        given += 1
        while len(level):
            level = pairs[level[~leaf[level]]].ravel()
            number[level] = np.arange(given, given + len(level))
            given += len(level)
    unreached = number < 0
    number[unreached] = np.arange(given, len(pairs))
    return number


def compiled_walk(rows: int) -> Kernel | None:
    """The kernel to walk ``rows`` more rows with, once the process has walked enough
    (``None`` before that, or without numba: walk them with NumPy); it is
    ``walk(rows, roots, nodes, thresholds, lengths, depth, out)``."""
    return walk_kernel.kernel(rows)


def _walk(
    rows: npt.NDArray[np.float32],
    roots: npt.NDArray[np.uint32],
    nodes: npt.NDArray[np.uint32],
    thresholds: npt.NDArray[np.float32],
    lengths: npt.NDArray[Any],
    depth: int,
    out: npt.NDArray[Any],
) -> None:
    """``out[r, t]``: the path length of the leaf row ``r`` reaches in tree ``t``
    (``lengths`` of it: read here, while the tree is in cache, not gathered afterwards).

    ``depth`` steps down every tree (a leaf steps onto itself): the walks of
    one tree are independent, so the CPU overlaps the rows' loads instead of
    waiting on one chain of them, and nothing branches on the data.
    """
    count, width = rows.shape
    flat = rows.ravel()
    at = np.empty(count, dtype=np.uint32)  # unsigned, as the offsets: see the module docs
    starts = np.arange(count, dtype=np.uint64) * np.uint64(width)
    for tree in range(roots.shape[0]):  # one tree's nodes stay in cache for every row
        at[:] = roots[tree]
        for _ in range(depth):
            for row in range(count):
                node = at[row]
                # Right where the value is above the threshold (or NaN), as in scikit-learn.
                right = not flat[starts[row] + nodes[node, 0]] <= thresholds[node]
                at[row] = nodes[node, 1] + right
        for row in range(count):
            out[row, tree] = lengths[at[row]]


_ONE_LEAF = pack(
    np.zeros(1, dtype=np.intp),
    np.zeros(2, dtype=np.intp),
    np.zeros(1, dtype=np.intp),
    np.zeros(1),
    np.zeros(1),
)
assert _ONE_LEAF is not None  # one leaf: nobody's child twice

walk_kernel = LazyKernel(
    _walk,
    sample_args=(np.zeros((1, 1), dtype=np.float32), *_ONE_LEAF, 1, np.zeros((1, 1))),
)
"""The compiled :func:`_walk`, counting the rows this process walked."""
