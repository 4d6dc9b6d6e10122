"""TailCounts counts exactly what one binary search per column counts, edge values included."""

from __future__ import annotations

import numpy as np

from detector.scoring.tail_counts import TailCounts


def test_counts_equal_per_column_searches() -> None:
    rng = np.random.default_rng(3)
    training = np.column_stack(
        [
            rng.integers(0, 4, 500).astype(np.float64),  # few distinct values, many ties
            rng.normal(0, 1, 500),
            np.r_[np.zeros(250), -np.zeros(250)],  # 0.0 and -0.0 tie
            np.r_[rng.normal(0, 1, 490), np.full(5, np.inf), np.full(5, np.nan)],
        ]
    )
    columns = np.sort(training, axis=0)
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, 3.0, 4.0, -1.0]
    values = np.vstack(
        [rng.normal(0, 2, (300, 4)), columns[::7], np.tile(np.array(specials)[:, None], (1, 4))]
    )
    at_or_below, at_or_above = TailCounts.of(columns).counts(values)
    for j in range(columns.shape[1]):
        below_or_at = np.searchsorted(columns[:, j], values[:, j], side="right")
        above_or_at = len(columns) - np.searchsorted(columns[:, j], values[:, j], side="left")
        assert np.array_equal(at_or_below[:, j], below_or_at)
        assert np.array_equal(at_or_above[:, j], above_or_at)


def test_surprise_is_the_expression_per_count() -> None:
    counts = TailCounts.of(np.sort(np.random.default_rng(1).normal(0, 1, (99, 2)), axis=0))
    k = np.arange(100)
    assert counts.surprise.tobytes() == (-np.log((k + 1) / (99 + 1))).tobytes()
