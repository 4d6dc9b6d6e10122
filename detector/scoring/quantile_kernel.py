"""The actors' streaming quantiles moved over a batch of rows in one compiled call.

:meth:`~detector.scoring.evidence.ActorQuantiles.update` costs a few NumPy calls
per row (about 3 µs, more than one per scored event). The same arithmetic, row
by row in the same order, compiled with numba, costs well under a microsecond;
each value goes through the same IEEE operations (no fast-math), so the
estimates stay bit for bit those of the per-row updates.

As :mod:`.forest_walk` does, the kernel is handed out only once the process has
updated :data:`COMPILE_AFTER_ROWS` rows the plain way: a short run never starts numba.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from functools import cache

import numpy as np
import numpy.typing as npt

__all__ = ["COMPILE_AFTER_ROWS", "compiled_update", "update_rows"]

Update = Callable[..., None]

COMPILE_AFTER_ROWS = 100_000
"""Rows updated the per-row way before numba pays its start (about a second)."""

_updated = [0]  # rows updated in this process so far


def compiled_update(rows: int) -> Update | None:
    """The kernel to update ``rows`` more rows with, once the process has updated enough
    (``None`` before that, or without numba: update them one by one)."""
    if _updated[0] < COMPILE_AFTER_ROWS:
        _updated[0] += rows
        return None
    if (
        not _kernel.cache_info().currsize
        and threading.current_thread() is not threading.main_thread()
    ):
        # Compiled on the main thread only: a training thread left to die at a stop while
        # inside LLVM aborts the whole process ("terminate called").
        return None
    return _kernel()


@cache
def _kernel() -> Update | None:
    """``update_rows(estimates, counts, slots, rows, quantile, min_step)``; ``None`` without
    numba or when it fails to compile."""
    try:
        import numba
    except ImportError:  # numba comes with pyod; a stripped install still scores, slower
        return None
    try:
        kernel: Update = numba.njit(cache=True, nogil=True)(update_rows)
    except RuntimeError:  # no writable place for numba's cache (a read-only image): compile
        kernel = numba.njit(nogil=True)(update_rows)
    try:  # compile (or load) now, so that a failure is here and not later
        kernel(
            np.zeros((1, 1)),
            np.zeros(1, dtype=np.int64),
            np.zeros(2, dtype=np.int64),
            np.ones((2, 1)),
            0.95,
            0.05,
        )
    except Exception:  # any numba failure: the per-row updates give the same estimates
        return None
    return kernel


def update_rows(
    estimates: npt.NDArray[np.float64],
    counts: npt.NDArray[np.int64],
    slots: npt.NDArray[np.int64],
    rows: npt.NDArray[np.float64],
    quantile: float,
    min_step: float,
) -> None:
    """Row ``i`` moves ``estimates[slots[i]]`` (made of ``counts[slots[i]]`` rows), in order.

    A slot with no rows yet starts at its first row. Otherwise, per feature, as
    :meth:`ActorQuantiles.update`: ``m += step * (q - [x <= m])``, then ``m = max(m, 0)``
    (NaN kept, as ``np.maximum`` keeps it), ``step = max(min_step, 1 / sqrt(rows + 1))``.
    """
    width = rows.shape[1]
    for index in range(slots.shape[0]):
        slot = slots[index]
        if counts[slot] == 0:
            estimates[slot, :] = rows[index, :]
            counts[slot] = 1
            continue
        step = 1.0 / math.sqrt(counts[slot] + 1)
        if not step > min_step:
            step = min_step
        for column in range(width):
            value = estimates[slot, column]
            below = 1.0 if rows[index, column] <= value else 0.0
            value = value + step * (quantile - below)
            if value < 0.0:
                value = 0.0
            estimates[slot, column] = value
        counts[slot] += 1
