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

__all__ = ["compare", "metric_values", "read_counters", "replay_alert_ids"]

LATE_METRICS = (
    "ciwatch_late_events_total",
    "ciwatch_merge_wait_timeouts_total",
    "ciwatch_merge_forced_records_total",
)
"""The daemon's counters read before a live run stops: late events, the merge giving up."""


def replay_alert_ids(values: Sequence[bytes], config: Path, batch: int = 2000) -> set[str]:
    """The ids of the alerts one process raises over ``values`` in their order, on the
    daemon's ``config`` (the bundled models)."""
    pipeline = Pipeline.from_config(load_config(config))
    ids: set[str] = set()
    for start in range(0, len(values), batch):
        chunk = values[start : start + batch]
        records = [RawRecord(value, Position("live", start + n)) for n, value in enumerate(chunk)]
        ids.update(alert.id for alert in pipeline.process(records).alerts)
    ids.update(alert.id for alert in pipeline.finish())
    return ids


def metric_values(text: str, names: Sequence[str]) -> dict[str, float]:
    """The sums over labels of the counters ``names`` in a Prometheus text exposition."""
    found = dict.fromkeys(names, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in found:
                found[sample.name] += sample.value
    return found


def compare(live: set[str], replayed: set[str], counters: Mapping[str, float]) -> list[str]:
    """Lines saying how the live alert ids differ from ``replay``'s, with the late counters."""
    late = ", ".join(f"{name} {value:,.0f}" for name, value in counters.items())
    return [
        f"live vs replay of the same records: {len(live):,} alert ids live, {len(replayed):,}"
        f" in replay; {len(replayed - live):,} missing live, {len(live - replayed):,} only live",
        f"  daemon counters before it stopped: {late or 'not read'}",
    ]


def read_counters(get: Callable[[str], object]) -> dict[str, float]:
    """:data:`LATE_METRICS` from a daemon's ``/metrics`` through ``get`` (empty if unread)."""
    response = get("/metrics")
    text = getattr(response, "text", None)
    return metric_values(text, LATE_METRICS) if isinstance(text, str) else {}
