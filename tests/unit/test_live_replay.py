"""bench/live_replay.py: the daemon's counters read from a real exposition, and the comparison."""

from __future__ import annotations

from live_replay import LIVE_METRICS, compare, metric_values, named
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


def test_metric_values_sums_a_counter_over_its_labels() -> None:
    registry = CollectorRegistry()
    late = Counter("ciwatch_late_events", "late events", ["source"], registry=registry)
    late.labels(source="okta_system_log").inc(3)
    late.labels(source="k8s_audit").inc(4)
    Counter("ciwatch_merge_wait_timeouts", "waits", registry=registry).inc()
    consumed = Counter("ciwatch_records_consumed", "records", ["topic"], registry=registry)
    consumed.labels(topic="live-0").inc(1500)
    batches = Histogram("ciwatch_batch_duration_seconds", "batches", registry=registry)
    batches.observe(0.25)
    batches.observe(0.5)
    text = generate_latest(registry).decode()

    found = metric_values(text, LIVE_METRICS)

    assert found == {
        "ciwatch_late_events_total": 7.0,
        "ciwatch_merge_wait_timeouts_total": 1.0,
        "ciwatch_merge_forced_records_total": 0.0,  # absent from the exposition
        "ciwatch_records_consumed_total": 1500.0,
        "ciwatch_batch_duration_seconds_count": 2.0,
        "ciwatch_batch_duration_seconds_sum": 0.75,
    }


def test_compare_counts_and_names_what_each_side_lacks() -> None:
    live = {"a": "spray", "b": "spray", "x": "okta-anomaly"}
    replayed = {"a": "spray", "b": "spray", "c": "brute-force", "d": "auth-anomaly"}

    lines = compare(live, replayed, {"ciwatch_late_events_total": 12.0})

    assert lines == [
        "live vs replay of the same records: 3 alert ids live, 4 in replay;"
        " 2 missing live, 1 only live",
        "  daemon counters before it stopped: ciwatch_late_events_total 12",
        "  missing live: auth-anomaly, brute-force",
        "  only live: okta-anomaly",
    ]


def test_compare_gives_the_live_batches_average_size_and_time() -> None:
    counters = {
        "ciwatch_records_consumed_total": 1500.0,
        "ciwatch_batch_duration_seconds_count": 2.0,
        "ciwatch_batch_duration_seconds_sum": 0.75,
    }

    lines = compare({}, {}, counters)

    assert lines[1] == (
        "  daemon counters before it stopped: ciwatch_records_consumed_total 1,500,"
        " ciwatch_batch_duration_seconds_count 2, ciwatch_batch_duration_seconds_sum 0.75"
    )
    assert lines[2] == "  live batches: 750 records and 375.0 ms on average"


def test_named_reads_a_rule_or_a_model_from_the_webhook_body() -> None:
    alerts = [{"id": "1", "rule": "spray", "model": None}, {"id": "2", "rule": None, "model": "m"}]

    assert named(alerts) == {"1": "spray", "2": "m"}
