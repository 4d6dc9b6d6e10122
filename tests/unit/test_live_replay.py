"""bench/live_replay.py: the daemon's counters read from a real exposition, and the comparison."""

from __future__ import annotations

from live_replay import LATE_METRICS, compare, metric_values
from prometheus_client import CollectorRegistry, Counter, generate_latest


def test_metric_values_sums_a_counter_over_its_labels() -> None:
    registry = CollectorRegistry()
    late = Counter("ciwatch_late_events", "late events", ["source"], registry=registry)
    late.labels(source="okta_system_log").inc(3)
    late.labels(source="k8s_audit").inc(4)
    Counter("ciwatch_merge_wait_timeouts", "waits", registry=registry).inc()
    text = generate_latest(registry).decode()

    found = metric_values(text, LATE_METRICS)

    assert found == {
        "ciwatch_late_events_total": 7.0,
        "ciwatch_merge_wait_timeouts_total": 1.0,
        "ciwatch_merge_forced_records_total": 0.0,  # absent from the exposition
    }


def test_compare_counts_what_each_side_lacks() -> None:
    lines = compare({"a", "b", "x"}, {"a", "b", "c", "d"}, {"ciwatch_late_events_total": 12.0})

    assert lines[0] == (
        "live vs replay of the same records: 3 alert ids live, 4 in replay;"
        " 2 missing live, 1 only live"
    )
    assert lines[1] == "  daemon counters before it stopped: ciwatch_late_events_total 12"
