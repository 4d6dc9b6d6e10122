"""``WindowCounter.add`` with a moving value: the same as ``move`` then ``add``, exactly."""

from __future__ import annotations

import random

import pytest

from detector.features.windows import WindowCounter, WindowSpec, lane

SPECS = [
    [300.0, 3600.0, 86_400.0],  # nested bucket widths (5 s, 1 min, 24 min)
    [300.0, 420.0, 3600.0],  # not nested: 7 s does not divide into 5 s
    [60.0],
]
UNITS = [lane(1), lane(1) + lane(2), 3 * lane(5), lane(16)]  # one channel, several, beyond


@pytest.mark.parametrize("seconds", SPECS)
@pytest.mark.parametrize("seed", range(4))
def test_add_with_a_move_equals_move_then_add(seconds: list[float], seed: int) -> None:
    rng = random.Random(seed)
    fused, stepwise = WindowCounter(WindowSpec(seconds)), WindowCounter(WindowSpec(seconds))
    spec = fused._spec
    time = 1_700_000_000.0
    sightings: list[float] = []
    for _ in range(1500):
        time += rng.choice([0.5, 3.0, 40.0, 700.0, 9000.0])
        at = time - rng.choice([0.0, 0.0, 0.0, 2.0, 30.0, 400.0, 100_000.0])  # some out of order
        ids = spec.bucket_ids(at)
        increments = [rng.choice([lane(0), lane(0) + lane(3), 0])] * len(ids)
        if sightings and rng.random() < 0.6:
            previous, unit = rng.choice(sightings), rng.choice(UNITS)
            moved = list(increments)
            stepwise.move(previous, ids, unit, moved)
            expected = list(stepwise.add(ids, moved))
            assert fused.add(ids, increments, previous, unit) == expected
        else:
            assert fused.add(ids, increments) == stepwise.add(ids, list(increments))
        # Bucket for bucket, lane for lane (a random move may take a lane below 0).
        assert fused._ids == stepwise._ids and fused._stride == stepwise._stride
        assert fused._lanes.typecode == stepwise._lanes.typecode
        assert fused._lanes == stepwise._lanes
        sightings.append(at)
