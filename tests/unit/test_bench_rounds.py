"""bench/daemon.py: the throughput rounds' summary takes the median of each pair's ratio."""

from __future__ import annotations

from daemon import Run, rounds_summary


def test_the_summary_is_the_median_of_each_pairs_ratio_not_a_ratio_of_medians() -> None:
    # Ratios 0.20, 0.40 and 0.25: their median is 0.25, where the median daemon over the
    # median floor would be 16,000 / 60,000 = 0.27.
    pairs = [
        (Run(100_000.0, 10.0), Run(20_000.0, 50.0)),
        (Run(40_000.0, 16.0), Run(16_000.0, 80.0)),
        (Run(60_000.0, 12.0), Run(15_000.0, 60.0)),
    ]

    assert rounds_summary(pairs) == (
        "throughput over 3 rounds: 0.25 (0.20 to 0.40) of the floor;"
        " daemon 16,000 (15,000 to 20,000) records/s at 60.0 (50.0 to 80.0) µs of CPU per"
        " record; floor 60,000 (40,000 to 100,000) records/s at 12.0 (10.0 to 16.0) µs"
    )
