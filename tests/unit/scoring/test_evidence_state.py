"""The per-actor quantile estimates behind anomaly evidence survive a checkpoint exactly."""

from __future__ import annotations

import numpy as np
import orjson

from detector.scoring.evidence import ActorQuantiles


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


def test_a_snapshot_keeps_the_estimates_it_was_taken_with() -> None:
    # A checkpoint is written after later batches have moved the estimates (in place).
    logged = np.log1p(np.random.default_rng(3).poisson(3.0, size=(40, 4)).astype(np.float64))
    quantiles = ActorQuantiles()
    for row in logged[:20]:
        quantiles.update("code", "dev", row)
    taken = quantiles.snapshot(streamed=True)
    expected, rows = quantiles.current("code", "dev", 4)
    quantiles.update_rows("code", ["dev"] * 20, logged[20:])
    assert quantiles.current("code", "dev", 4)[1] == 40
    assert expected is not None and rows == 20
    (lines, count), *_ = taken["tracks"].lines()  # written now, as a checkpoint writes it
    assert count == 1 and orjson.loads(lines) == ["code", "dev", 20, expected.tolist()]
