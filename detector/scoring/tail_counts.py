"""How many training values of its column lie at or below, and below, each value of a matrix.

ECOD (:class:`~detector.scoring.detectors.TailProbabilityDetector`) needs, per
value, the count of its column's training values at or below it and below it:
two binary searches per column and batch, about 60 NumPy calls for a 32-feature
batch. :class:`TailCounts` answers them for the whole matrix in one search
and a few gathers: ``values`` holds every distinct training value of any column,
sorted, and row ``r`` of ``table`` the count of each column's training values
at or below ``values[r - 1]`` (row 0: none). A value ``x`` with ``r`` distinct
values at or below it has as many training values of column ``j`` at or below
it as ``values[r - 1]`` has, since every training value is one of ``values``;
with ``r`` the distinct values below it, the same row counts the values below
``x``. The search finds the distinct values below ``x``; those at or below it
are one more where ``x`` is one of them (the value at that rank equals it).
NumPy's order (NaN last, ``-0.0 == 0.0``) is the search's order, so the
counts are exactly those of the per-column searches. ``surprise`` holds
ECOD's ``-ln((k + 1) / (n + 1))`` for every count ``k`` of the ``n`` training
rows, computed once by the same expression, so looking it up gives the very
numbers computing it per value would.

>>> counts = TailCounts.of(np.sort(np.array([[1.0, 5.0], [2.0, 5.0], [2.0, 7.0]]), axis=0))
>>> at_or_below, at_or_above = counts.counts(np.array([[2.0, 6.0]]))
>>> at_or_below.tolist(), at_or_above.tolist()
([[3, 2]], [[2, 1]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["TailCounts"]

Counts = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class TailCounts:
    """Counts of training values per column, by rank among all distinct training values."""

    values: npt.NDArray[np.float64]  # every distinct training value, sorted (NaN last)
    table: npt.NDArray[Any]  # (len(values) + 1, columns), the smallest unsigned type that fits
    surprise: npt.NDArray[np.float64]  # -ln((k + 1) / (n + 1)) for k = 0..n
    padded: npt.NDArray[np.float64]  # values, then a NaN (equal to nothing) at len(values)
    has_nan: bool  # whether values end with a NaN

    @classmethod
    def of(cls, columns: npt.NDArray[np.float64]) -> TailCounts:
        """The counts of ``columns`` (training rows, each column sorted)."""
        values = np.unique(columns)
        width, smallest = columns.shape[1], np.min_scalar_type(len(columns))
        table = np.zeros((len(values) + 1, width), dtype=smallest)
        for column in range(width):
            table[1:, column] = np.searchsorted(columns[:, column], values, side="right")
        count = len(columns)
        surprise = -np.log((np.arange(count + 1) + 1) / (count + 1))
        has_nan = bool(len(values)) and bool(np.isnan(values[-1]))
        return cls(values, table, surprise, np.append(values, np.nan), has_nan)

    def counts(self, matrix: npt.NDArray[np.float64]) -> tuple[Counts, Counts]:
        """Per value of ``matrix`` (one column per training column): its column's training
        values at or below it, and at or above it."""
        width = self.table.shape[1]
        # One search (a second, right-side one would cost as much again): the distinct values
        # below each value, and one more at or below it where it is among them. NaN equals
        # nothing, yet a NaN among ``values`` is where the search puts a NaN: found there.
        below_rank = np.searchsorted(self.values, matrix, side="left")
        found = self.padded[below_rank] == matrix
        if self.has_nan:
            found |= np.isnan(matrix)
        # Each value's (rank, column) cell as a position in the flat table: a gather by one
        # index array costs half of one by a rank array and a column array broadcast.
        below_at = below_rank * width + np.arange(width)
        flat = self.table.ravel()
        at_or_below = flat.take(below_at + width * found)
        below = flat.take(below_at)
        count = len(self.surprise) - 1
        return at_or_below.astype(np.int64), count - below.astype(np.int64)
