"""A live run's alerts held against ``replay``'s over the same records (bench/daemon.py).

A daemon that keeps up raises the alerts ``replay`` raises over the records
it read, in event-time order; the latency runs check it and say where they
differ. The bench keeps the world's event times and plays 22 days in a few
seconds of wall clock, so a record read a few hundred milliseconds after newer
records of another partition is hours behind in event time: past the allowed
lateness, it is only described (``ciwatch_late_events_total``), never counted,
and alerts that needed it are missing. A deployment's records carry their
own times, and the same delay makes them a few hundred milliseconds late
(the allowed lateness is minutes). On one partition records are read in the
order they were produced, which is event-time order, and none is late.
``--wall-lateness S`` gives the live daemons an allowed lateness of ``S``
seconds of wall clock, in the bench's event time (``WorldIndex.lateness``):
the tolerance a deployment's minutes give its sub-second delays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from detector.config import load_config
from detector.pipeline import Pipeline
from detector.sources.record import Position, RawRecord

__all__ = ["compare", "metric_values", "named", "read_counters", "replay_alerts"]

LIVE_METRICS = (
    "ciwatch_late_events_total",
    "ciwatch_merge_wait_timeouts_total",
    "ciwatch_merge_forced_records_total",
    "ciwatch_records_consumed_total",
    "ciwatch_batch_duration_seconds_count",
    "ciwatch_batch_duration_seconds_sum",
)
"""The daemon's counters read before a live run stops: late events, the merge giving up, and
the records and batches (their count and seconds: how large the live batches were)."""


def replay_alerts(values: Sequence[bytes], config: Path, batch: int = 2000) -> dict[str, str]:
    """Id → rule or model name of the alerts one process raises over ``values`` in their
    order, on the daemon's ``config`` (the bundled models)."""
    pipeline = Pipeline.from_config(load_config(config))
    found: dict[str, str] = {}
    for start in range(0, len(values), batch):
        chunk = values[start : start + batch]
        records = [RawRecord(value, Position("live", start + n)) for n, value in enumerate(chunk)]
        found.update((alert.id, alert.detection.name) for alert in pipeline.process(records).alerts)
    found.update((alert.id, alert.detection.name) for alert in pipeline.finish())
    return found


def named(alerts: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """Id → rule or model name of alerts as a webhook receives them."""
    return {str(alert["id"]): str(alert["rule"] or alert["model"]) for alert in alerts}


def metric_values(text: str, names: Sequence[str]) -> dict[str, float]:
    """The sums over labels of the counters ``names`` in a Prometheus text exposition."""
    found = dict.fromkeys(names, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in found:
                found[sample.name] += sample.value
    return found


def compare(
    live: Mapping[str, str], replayed: Mapping[str, str], counters: Mapping[str, float]
) -> list[str]:
    """Lines saying how the live alerts (id → name) differ from ``replay``'s, with the names
    of those that differ, the counters, and the live batches' average size and time."""
    shown = ", ".join(
        f"{name} {value:,.0f}" if value.is_integer() else f"{name} {value:,.2f}"
        for name, value in counters.items()
    )
    missing = sorted(replayed[key] for key in replayed.keys() - live.keys())
    extra = sorted(live[key] for key in live.keys() - replayed.keys())
    lines = [
        f"live vs replay of the same records: {len(live):,} alert ids live, {len(replayed):,}"
        f" in replay; {len(missing):,} missing live, {len(extra):,} only live",
        f"  daemon counters before it stopped: {shown or 'not read'}",
    ]
    batches = counters.get("ciwatch_batch_duration_seconds_count")
    if batches:
        records = counters.get("ciwatch_records_consumed_total", 0.0) / batches
        seconds = counters.get("ciwatch_batch_duration_seconds_sum", 0.0) / batches
        lines.append(
            f"  live batches: {records:,.0f} records and {seconds * 1e3:.1f} ms on average"
        )
    if missing:
        lines.append(f"  missing live: {', '.join(missing)}")
    if extra:
        lines.append(f"  only live: {', '.join(extra)}")
    return lines


def read_counters(get: Callable[[str], object]) -> dict[str, float]:
    """:data:`LIVE_METRICS` from a daemon's ``/metrics`` through ``get`` (empty if unread)."""
    response = get("/metrics")
    text = getattr(response, "text", None)
    return metric_values(text, LIVE_METRICS) if isinstance(text, str) else {}
