"""The actors' quantiles moved a batch at a time equal, bit for bit, the per-row updates."""

from __future__ import annotations

import numpy as np
import pytest

from detector.scoring import evidence, quantile_kernel
from detector.scoring.evidence import ActorQuantiles

FAMILY = "code"


def _rows(seed: int, count: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = np.floor(rng.exponential(3.0, (count, width)))
    counts[rng.random((count, width)) < 0.05] = np.nan  # a missing value must stay missing
    return np.log1p(counts)


def _actors(seed: int, count: int, people: int = 40) -> list[str]:
    # A few busy actors (a bot's burst) among many quiet ones, as in a real batch.
    rng = np.random.default_rng(seed)
    return [f"bot{n}" if n < 3 else f"person{n}" for n in rng.zipf(1.6, count) % people]


def _compiled(monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    kernel = quantile_kernel.update_kernel.compiled() if on else None
    monkeypatch.setattr(evidence, "compiled_update", lambda rows: kernel)


WIDER = [FAMILY, "person7", 1, [0.0] * 6]
"""Restored with another width: the kernel leaves this actor's first batch to the rows."""
EMPTY = [FAMILY, "person9", 0, [0.5] * 5]
"""Restored with no rows (a hand-edited state): its first row moves it a whole step."""


def _fed(
    batches: list[tuple[list[str], np.ndarray]], *, max_actors: int, tracks: list[list[object]]
) -> ActorQuantiles:
    quantiles = ActorQuantiles(0.95, max_actors=max_actors)
    quantiles.restore({**quantiles.snapshot(), "tracks": tracks})
    for actors, rows in batches:
        quantiles.update_rows(FAMILY, actors, rows)
    return quantiles


@pytest.mark.parametrize(
    ("max_actors", "tracks", "people"),
    [
        (200_000, [WIDER], 40),
        (200_000, [EMPTY], 40),
        (30, [WIDER, EMPTY], 40),
        # Ten times the actors, and past the bound: actors forgotten, their slots taken again.
        (200_000, [WIDER], 400),
        (150, [EMPTY], 400),
    ],
)
def test_batches_give_the_estimates_and_order_of_rows_one_by_one(
    monkeypatch: pytest.MonkeyPatch, max_actors: int, tracks: list[list[object]], people: int
) -> None:
    assert quantile_kernel.update_kernel.compiled() is not None  # numba is installed with pyod
    batches = [(_actors(seed, 300, people), _rows(seed, 300, 5)) for seed in range(6)]
    batches.append(([], np.zeros((0, 5))))
    _compiled(monkeypatch, False)
    one_by_one = _fed(batches, max_actors=max_actors, tracks=tracks)
    _compiled(monkeypatch, True)
    batched = _fed(batches, max_actors=max_actors, tracks=tracks)
    assert _tracks(batched) == _tracks(one_by_one)  # values, recency order, evictions


def _tracks(quantiles: ActorQuantiles) -> list[tuple[object, ...]]:
    # snapshot() compares NaN unequal to itself; compare the estimates' bytes instead.
    return [
        (family, actor, rows, np.array(estimate, np.float64).tobytes())
        for family, actor, rows, estimate in quantiles.snapshot()["tracks"]
    ]


def test_the_kernel_starts_only_after_enough_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quantile_kernel.update_kernel, "after_rows", 1000)
    monkeypatch.setattr(quantile_kernel.update_kernel, "rows_seen", 0)
    monkeypatch.setattr(quantile_kernel.update_kernel, "built", False)  # as in a new process
    assert quantile_kernel.compiled_update(600) is None
    assert quantile_kernel.compiled_update(600) is None  # 600 before: still short of 1000
    assert quantile_kernel.compiled_update(10) is quantile_kernel.update_kernel.compiled()
