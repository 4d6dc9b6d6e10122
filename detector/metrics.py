"""Every Prometheus metric ciwatch exports, and the HTTP endpoint serving them.

One module, one ``ciwatch_`` prefix, bounded labels only: source (log type),
dead-letter reason, rule or model id, kind, severity, sink, status, topic and
partition. Never an actor, IP, repository or alert id: those are unbounded and
belong in the alerts. docs/metrics.md lists the metrics; the Grafana dashboards
and alert rules read these names.

:class:`Metrics` owns its registry (tests build several); :class:`MetricsServer`
serves ``/metrics``, ``/healthz`` (the loop is alive) and ``/readyz``
(connected, partitions assigned, models loaded) on one port.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from operator import attrgetter
from typing import Protocol
from urllib.parse import parse_qs

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from detector.alerts.model import Alert
from detector.events.model import DeadLetter, Event, SkipReason
from detector.loop_cpu import LoopCpu
from detector.model_metrics import ModelMetrics
from detector.rules.regexes import LimitReason
from detector.worker_metrics import WorkerMetrics

__all__ = ["Exposition", "Metrics", "MetricsServer"]

_SOURCE = attrgetter("source")

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0)


class Metrics:
    """The daemon's metrics in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # No ``*_created`` sample beside each counter and histogram: Prometheus' text
        # format turns each into a series of its own (about half of the exposition,
        # ~300 series with the bundled rules), which nothing here reads; rendering
        # them cost the daemon's loop several % of its CPU under a 50 ms scrape
        # (bench/daemon.py). A process-wide switch of prometheus_client.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # process_* (memory, CPU, open files, start time) for the operators' dashboard.
        ProcessCollector(registry=r)
        self.records = Counter(
            "ciwatch_records_consumed", "Records read from the source", ["topic"], registry=r
        )
        self.events = Counter(
            "ciwatch_events_normalized", "Records that became events", ["source"], registry=r
        )
        self.dead_letters = Counter(
            "ciwatch_dead_letters", "Records that did not become events", ["reason"], registry=r
        )
        self.late_events = Counter(
            "ciwatch_late_events", "Events older than the allowed lateness", registry=r
        )
        self.duplicates = Counter(
            "ciwatch_duplicate_events",
            "Events seen before (redelivered): counted, not detected on again",
            ["source"],
            registry=r,
        )
        self.skipped = Counter(
            "ciwatch_skipped_records",
            "Records known not to be events (CloudTrail digests, heartbeats)",
            ["reason"],
            registry=r,
        )
        for reason in SkipReason:  # a fixed set: exported at 0 from the start
            self.skipped.labels(reason.value)
        self.alerts = Counter(
            "ciwatch_alerts",
            "Alerts raised (first sends; repeats fold into them)",
            ["kind", "rule", "severity"],
            registry=r,
        )
        self.alert_updates = Counter(
            "ciwatch_alert_updates", "Alerts re-sent with a final count", ["kind"], registry=r
        )
        self.risk_alerts = Counter(
            "ciwatch_risk_alerts",
            "Risk alerts raised: actors whose alerts from several detectors crossed the risk "
            "threshold (one per actor and episode; revisions not counted)",
            registry=r,
        )
        self.risk_elevated = Gauge(
            "ciwatch_risk_actors_elevated",
            "Actors whose risk is at least half the risk threshold (at the newest alert time)",
            registry=r,
        )
        self.anomaly_score = Histogram(
            "ciwatch_anomaly_score",
            "Scores of anomaly alerts, in [0, 1]",
            ["model"],
            buckets=_SCORE_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "ciwatch_sink_deliveries",
            "Alerts handed to each sink, by outcome",
            ["sink", "status"],
            registry=r,
        )
        self.spool_depth = Gauge(
            "ciwatch_spool_depth", "Requests waiting in a sink's disk spool", ["sink"], registry=r
        )
        self.spool_bytes = Gauge(
            "ciwatch_spool_bytes", "Bytes waiting in a sink's disk spool", ["sink"], registry=r
        )
        self.spool_capacity = Gauge(
            "ciwatch_spool_capacity_bytes",
            "Most bytes a sink's disk spool holds before it pauses the consumer",
            ["sink"],
            registry=r,
        )
        self.delivered_via = Counter(
            "ciwatch_sink_delivered_via",
            "Alerts a sink delivered, by path: direct (never on disk) or from its spool",
            ["sink", "path"],
            registry=r,
        )
        self.spool_write_errors = Counter(
            "ciwatch_spool_write_errors",
            "Writes to a sink's disk files (spool, dead letters, alerts file) that failed (a full "
            "disk, an I/O error)",
            ["sink"],
            registry=r,
        )
        self.paused = Gauge(
            "ciwatch_paused",
            "1 while the consumer reads nothing new, by reason (disk: a sink cannot write)",
            ["reason"],
            registry=r,
        )
        self.paused.labels("disk")  # 0 from the start: alert rules see the series
        self.lag = Gauge(
            "ciwatch_consumer_lag",
            "Records behind the end of each assigned partition",
            ["topic", "partition"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "ciwatch_batch_duration_seconds",
            "Wall time to process, deliver and commit one batch",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.event_to_alert = Histogram(
            "ciwatch_event_to_alert_seconds",
            "From the newest evidence event's time to the alert's delivery",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "ciwatch_model_info",
            "1 per loaded model, labelled with its family and detector",
            ["model", "detector"],
            registry=r,
        )
        self.model_trained = Gauge(
            "ciwatch_model_trained_timestamp_seconds",
            "When each loaded model's training history ends (Unix time)",
            ["model"],
            registry=r,
        )
        self.model_reload_errors = Counter(
            "ciwatch_model_reload_errors", "Model directories that failed to load", registry=r
        )
        self.models = ModelMetrics(r)
        self.loop_cpu = LoopCpu(r)
        self.workers = WorkerMetrics(r)  # one process, one worker; ciwatch run --workers: theirs
        self.rules_loaded = Gauge("ciwatch_rules_loaded", "Rules evaluated", registry=r)
        self.commit_refusals = Counter(
            "ciwatch_commit_refusals",
            "Offset commits the group refused while rebalancing (the records are read again)",
            registry=r,
        )
        self.regex_limits = Counter(
            "ciwatch_rule_regex_limits",
            "Rule regex matches that hit a bound: too_long (prefix searched), "
            "fallback (backtracking engine), timeout (counted as no match)",
            ["rule", "reason"],
            registry=r,
        )
        self.keys_tracked = Gauge(
            "ciwatch_state_keys", "Keys held in the feature state", ["kind"], registry=r
        )
        self.evictions = Counter(
            "ciwatch_state_evictions",
            "State keys dropped: idle for evict_idle_after, or a full table (cap: max_keys,"
            " max_groups_per_rule; raise the cap and the memory limit if this grows)",
            ["kind", "reason"],
            registry=r,
        )
        self._evictions_seen: dict[tuple[str, str], int] = {}
        self.snapshots = Counter(
            "ciwatch_state_snapshots", "State snapshots written", ["status"], registry=r
        )
        self.ready = Gauge("ciwatch_ready", "1 when ready to process events", registry=r)
        self.merge_buffered = Gauge(
            "ciwatch_merge_buffered_records",
            "Records polled and held to merge the partitions in event-time order",
            registry=r,
        )
        self.merge_wait_timeouts = Counter(
            "ciwatch_merge_wait_timeouts",
            "Waits for an empty partition that ran out (service.partition_wait)",
            registry=r,
        )
        self.merge_forced = Counter(
            "ciwatch_merge_forced_records",
            "Records released while a partition was waited for, as the merge buffer was full",
            registry=r,
        )

    def count_batch(
        self,
        topics: Iterable[str],
        events: Iterable[Event],
        dead_letters: Iterable[DeadLetter],
        late_events: int,
        *,
        duplicates: Mapping[str, int] | None = None,
        skipped: Mapping[str, int] | None = None,
    ) -> None:
        """Count a processed batch: records per topic, events per source, dead letters,
        late events, duplicates per source and skipped non-events per reason."""
        # Tallied first: one increment per label, not one per record.
        for topic, count in Tally(topics).items():
            self.records.labels(topic).inc(count)
        for source, count in Tally(map(_SOURCE, events)).items():
            self.events.labels(source).inc(count)
            self.duplicates.labels(source)  # 0 until the first: a log type's series exists
        for reason, count in Tally(letter.reason.value for letter in dead_letters).items():
            self.dead_letters.labels(reason).inc(count)
        if late_events:
            self.late_events.inc(late_events)
        for source, count in (duplicates or {}).items():
            self.duplicates.labels(source).inc(count)
        for reason, count in (skipped or {}).items():
            self.skipped.labels(reason).inc(count)

    def count_alerts(self, alerts: Iterable[Alert], *, now: datetime | None = None) -> None:
        """Count alerts after delivery: by rule, the score histogram, event-to-alert latency."""
        moment = now or datetime.now(UTC)
        for alert in alerts:
            found = alert.detection
            if alert.revision:
                self.alert_updates.labels(found.kind.value).inc()
                continue
            self.alerts.labels(found.kind.value, found.name, found.severity.value).inc()
            if found.kind.value == "risk":
                self.risk_alerts.inc()
            if found.score is not None and found.kind.value == "anomaly":
                self.anomaly_score.labels(found.name).observe(found.score)
            newest = alert.last_time or found.time
            self.event_to_alert.observe(max(0.0, (moment - newest).total_seconds()))

    def set_models(self, models: Iterable[tuple[str, str, datetime | None]]) -> None:
        """Replace the model gauges: (family, detector, end of training) per loaded model."""
        self.model_info.clear()
        self.model_trained.clear()
        for family, detector, trained in models:
            self.model_info.labels(family, detector).set(1)
            if trained is not None:
                self.model_trained.labels(family).set(trained.timestamp())

    def watch_regex_rules(self, rules: Iterable[str]) -> None:
        """Export each rule's regex-limit series from 0, so a rate over them has data."""
        for rule in rules:
            for reason in LimitReason:
                self.regex_limits.labels(rule, reason.value)

    def watch_sinks(self, sinks: Iterable[str]) -> None:
        """Export each sink's failure series from 0."""
        for sink in sinks:
            self.spool_write_errors.labels(sink)

    def count_regex_limits(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Add (rule id, reason) → regex matches that hit a bound (RuleEngine.regex_limits)."""
        for (rule, reason), count in counts.items():
            self.regex_limits.labels(rule, reason).inc(count)

    def set_state(self, keys: Mapping[str, int]) -> None:
        for kind, count in keys.items():
            self.keys_tracked.labels(kind).set(count)

    def count_evictions(self, totals: Mapping[tuple[str, str], int]) -> None:
        """Advance ``ciwatch_state_evictions`` to running totals per (kind, reason).

        A total smaller than the last one seen started again (a restored
        feature store, reloaded rules): all of it is new.
        """
        for (kind, reason), total in totals.items():
            seen = self._evictions_seen.get((kind, reason), 0)
            self.evictions.labels(kind, reason).inc(total - seen if total >= seen else total)
            self._evictions_seen[kind, reason] = total

    def exposition(self, names: Collection[str] = ()) -> bytes:
        """The registry in Prometheus' text format; only the series ``names`` if any are given."""
        return generate_latest(self.registry.restricted_registry(names) if names else self.registry)


class Exposition(Protocol):
    """What ``/metrics`` serves: :class:`Metrics`, or a pod's workers (:mod:`detector.workers`)."""

    def exposition(self, names: Collection[str] = ()) -> bytes: ...


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on one port, in a daemon thread.

    ``ready``: a callable saying whether the service is ready. ``/healthz``
    fails when :meth:`beat` has not been called for ``stale_after`` seconds
    (a stuck loop), so Kubernetes restarts the pod.
    """

    def __init__(
        self,
        metrics: Exposition,
        *,
        host: str,
        port: int,
        ready: Callable[[], bool],
        stale_after: float = 120.0,
    ) -> None:
        self._metrics = metrics
        self._ready = ready
        self._stale_after = stale_after
        self._last_beat = time.monotonic()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ciwatch-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful when 0 asked for a free one)."""
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def beat(self) -> None:
        """The loop is alive."""
        self._last_beat = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self._last_beat < self._stale_after

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path == "/metrics":
                    # Prometheus' ``name[]`` parameter, as prometheus_client serves it: a
                    # frequent reader of one counter does not pay for the whole exposition.
                    names = parse_qs(query).get("name[]", [])
                    self._reply(200, server._metrics.exposition(names), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok = server.alive()
                    self._reply(200 if ok else 503, b"ok\n" if ok else b"stalled\n")
                elif path == "/readyz":
                    ok = server._ready()
                    self._reply(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
                else:
                    self._reply(404, b"not found\n")

            def _reply(self, status: int, body: bytes, kind: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes every few seconds would flood the log

        return Handler
