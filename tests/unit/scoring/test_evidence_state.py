"""The per-actor quantile estimates behind anomaly evidence survive a checkpoint exactly."""

from __future__ import annotations

import gc

import numpy as np
import orjson
import pytest

from detector.scoring import evidence, quantile_kernel
from detector.scoring.evidence import ActorQuantiles
from detector.streamed import Section


def test_a_restored_estimate_decides_like_one_never_stopped() -> None:
    rows = np.random.default_rng(7).poisson(3.0, size=(200, 5)).astype(np.float64)
    logged = np.log1p(rows)
    running, restored = ActorQuantiles(), ActorQuantiles()
    for row in logged[:100]:
        running.update("infra", "ops-admin", row)
    # Through JSON, as the daemon's checkpoint stores it.
    restored.restore(orjson.loads(orjson.dumps(running.snapshot())))
    for row in logged[100:]:
        running.update("infra", "ops-admin", row)
        restored.update("infra", "ops-admin", row)
    before, rows_before = running.current("infra", "ops-admin", 5)
    after, rows_after = restored.current("infra", "ops-admin", 5)
    assert before is not None and after is not None
    assert rows_before == rows_after == 200
    assert np.array_equal(before, after)


def _written(section: Section) -> list[list[object]]:
    """A streamed section's entries, written as a checkpoint writes them."""
    return [orjson.loads(line) for lines, _ in section.lines() for line in lines.splitlines()]


@pytest.mark.parametrize("compiled", [True, False])
def test_a_snapshot_written_later_has_the_estimates_it_was_taken_with(
    monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    # A checkpoint is written while later batches move the estimates in place, forget
    # actors (max_actors) and give their rows to new ones.
    kernel = quantile_kernel.update_kernel.compiled() if compiled else None
    monkeypatch.setattr(evidence, "compiled_update", lambda rows: kernel)
    rng = np.random.default_rng(3)
    quantiles = ActorQuantiles(max_actors=60)

    def batch(people: range) -> None:
        actors = [f"dev{n}" for n in rng.choice(people, 200)]
        logged = np.log1p(rng.poisson(3.0, size=(200, 4)).astype(np.float64))
        quantiles.update_rows("code", actors, logged)

    batch(range(50))
    expected = quantiles.snapshot()["tracks"]
    taken = quantiles.snapshot(streamed=True)["tracks"]
    for people in (range(50), range(30, 90), range(100, 130)):  # 130 actors met: 70 forgotten
        batch(people)
    assert len(expected) > 40 and _written(taken) == expected
    assert quantiles.snapshot()["tracks"] != expected


def test_a_written_or_dropped_snapshot_keeps_no_rows() -> None:
    quantiles = ActorQuantiles()
    quantiles.update("code", "dev", np.zeros(4))
    (rows,) = quantiles._rows.values()
    _written(quantiles.snapshot(streamed=True)["tracks"])
    dropped = quantiles.snapshot(streamed=True)
    assert len(rows._kept) == 1  # the one not written yet
    del dropped
    gc.collect()
    assert rows._kept == []


def test_a_restored_state_larger_than_the_bound_is_kept_whole() -> None:
    # A checkpoint of a daemon that tracked more actors than this one may: its rows grow.
    larger = ActorQuantiles(max_actors=100)
    for number in range(100):
        larger.update("code", f"dev{number}", np.full(3, float(number)))
    quantiles = ActorQuantiles(max_actors=10)
    quantiles.restore(orjson.loads(orjson.dumps(larger.snapshot())))
    assert len(quantiles) == 100
    estimate, rows = quantiles.current("code", "dev99", 3)
    assert estimate is not None and estimate.tolist() == [99.0] * 3 and rows == 1
    quantiles.update("code", "new", np.zeros(3))  # one in, the least recent one out
    assert len(quantiles) == 100 and quantiles.current("code", "dev0", 3) == (None, 0)
