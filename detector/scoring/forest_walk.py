"""The leaf each row reaches in each tree of a :class:`~detector.scoring.forest.Forest`, compiled.

NumPy walks every (row, tree) pair one level per step, as deep as the deepest
leaf, with a gather per array per level: about 15 µs per scored event with the
bundled models (200 trees, 10 levels). Compiled with numba, each walk stops at
its own leaf. Both give the same leaves (the same comparisons), so the scores
summed from them stay bit for bit the same; without numba the NumPy walk runs.

Starting numba costs a process about a second (its import, then loading the
kernel numba cached beside this module, ``cache=True``; compiling it once after
an install). That pays only on long runs, so :func:`compiled_walk` hands the
kernel out once the process has walked :data:`COMPILE_AFTER_ROWS` rows the
NumPy way: a daemon or a long replay switches early, a short run never starts numba.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["COMPILE_AFTER_ROWS", "compiled_walk"]

Walk = Callable[..., None]

COMPILE_AFTER_ROWS = 100_000
"""Rows walked with NumPy (about 15 µs each over four models) before numba pays its start."""

_walked = [0]  # rows walked in this process so far


def compiled_walk(rows: int) -> Walk | None:
    """The kernel to walk ``rows`` more rows with, once the process has walked enough
    (``None`` before that, or without numba: walk them with NumPy)."""
    if _walked[0] < COMPILE_AFTER_ROWS:
        _walked[0] += rows
        return None
    return _kernel()


@cache
def _kernel() -> Walk | None:
    """``walk(rows, roots, children, feature, threshold, depth, out)``; ``None`` without numba."""
    try:
        import numba
    except ImportError:  # numba comes with pyod; a stripped install still scores, slower
        return None
    try:
        kernel: Walk = numba.njit(cache=True, nogil=True)(_walk)
    except RuntimeError:  # no writable place for numba's cache (a read-only image): compile
        kernel = numba.njit(nogil=True)(_walk)
    try:  # compile (or load) now, on a one-node tree, so that a failure is here and not later
        leaf = np.zeros(1, dtype=np.intp)
        kernel(
            np.zeros((1, 1)),
            leaf,
            np.zeros(2, dtype=np.intp),
            leaf,
            np.zeros(1),
            1,
            np.zeros((1, 1), dtype=np.intp),
        )
    except Exception:  # any numba failure: the NumPy walk gives the same leaves
        return None
    return kernel


def _walk(
    rows: npt.NDArray[np.float64],
    roots: npt.NDArray[np.intp],
    children: npt.NDArray[np.intp],
    feature: npt.NDArray[np.intp],
    threshold: npt.NDArray[np.float64],
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
    nodes = np.empty(count, dtype=np.intp)
    for tree in range(roots.shape[0]):  # one tree's nodes stay in cache for every row
        nodes[:] = roots[tree]
        for _ in range(depth):
            for row in range(count):
                node = nodes[row]
                # Right where the value is above the threshold (or NaN), as in scikit-learn.
                right = not flat[row * width + feature[node]] <= threshold[node]
                nodes[row] = children[2 * node + right]
        out[:, tree] = nodes
