"""bench/daemon.py: the throughput rounds' summary takes the median of each pair's ratio,
and a run's readings give its rates over the whole run and up to the steady share."""

from __future__ import annotations

import pytest
from daemon import STEADY_SHARE, Readings, Run, rounds_summary


def test_the_summary_is_the_median_of_each_pairs_ratio_not_a_ratio_of_medians() -> None:
    # Steady ratios 0.20, 0.40 and 0.25: their median is 0.25, where the median daemon over
    # the median floor would be 16,000 / 60,000 = 0.27. Whole runs: 0.30, 0.50 and 0.30.
    pairs = [
        (Run(50_000.0, 10.0, 100_000.0), Run(15_000.0, 50.0, 20_000.0)),
        (Run(30_000.0, 16.0, 40_000.0), Run(15_000.0, 80.0, 16_000.0)),
        (Run(40_000.0, 12.0, 60_000.0), Run(12_000.0, 60.0, 15_000.0)),
    ]

    assert rounds_summary(pairs) == (
        "throughput over 3 rounds: 0.25 (0.20 to 0.40) of the floor to 80% of the records,"
        " 0.30 (0.30 to 0.50) over the whole runs;"
        " daemon 16,000 (15,000 to 20,000) records/s to 80% (15,000 (12,000 to 15,000) whole)"
        " at 60.0 (50.0 to 80.0) µs of CPU per record;"
        " floor 60,000 (40,000 to 100,000) records/s to 80% (40,000 (30,000 to 50,000) whole)"
        " at 12.0 (10.0 to 16.0) µs"
    )


def test_the_steady_rate_stops_at_the_first_reading_past_the_steady_share() -> None:
    # 1,000 records: 100 read at 0 s, 800 at 1 s (the steady share), the rest by 10 s.
    readings = Readings(1_000)
    for records, now, cpu in [
        (100, 0.0, 0.0),
        (500, 0.5, 0.2),
        (800, 1.0, 0.4),
        (1_000, 10.0, 0.5),
    ]:
        readings.note(records, now, cpu)

    run = readings.run()

    assert STEADY_SHARE == 0.8
    assert run.steady == pytest.approx(700.0)
    assert run.rate == pytest.approx(90.0)
    assert run.cpu_us == pytest.approx(0.5 / 900 * 1e6)
