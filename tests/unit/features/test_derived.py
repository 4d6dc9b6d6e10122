"""Derived features: an actor's ratios per window, one at a time and a batch's at once."""

from __future__ import annotations

import random

import numpy as np

from detector.features.derived import actor_ratio_rows, actor_ratios
from detector.features.windows import lane

HOURS = (5 / 60, 1.0, 24.0)


def test_a_batch_of_ratios_is_each_actors_ratios_bit_for_bit() -> None:
    rng = random.Random(5)
    totals = np.array(
        [
            [[rng.choice([0, 1, 7, 40_000]), rng.choice([0, 1, 3]), 9] for _ in HOURS]
            for _ in range(200)
        ],
        dtype=np.int64,
    )
    past = [rng.choice([0, 1, 57, 10**6]) for _ in totals]
    history = [rng.choice([0.0, 1.5, 3600.0, 7_777_777.7]) for _ in totals]
    rows = actor_ratio_rows(totals, HOURS, past, history)
    assert rows.dtype == np.float64
    for row, counts, events, seconds in zip(
        rows.tolist(), totals.tolist(), past, history, strict=True
    ):
        packed = [window[0] * lane(0) + window[1] * lane(1) for window in counts]
        assert row == actor_ratios(packed, HOURS, events, seconds)


def test_totals_of_one_channel_have_no_failures() -> None:
    (row,) = actor_ratio_rows(
        np.array([[[4], [4], [0]]], dtype=np.int64), HOURS, [0], [0.0]
    ).tolist()
    assert row == actor_ratios([4 * lane(0), 4 * lane(0), 0], HOURS, 0, 0.0)
