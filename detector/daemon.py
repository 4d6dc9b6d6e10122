"""``ciwatch run``: Kafka consumer group → pipeline → sinks, for months, losing nothing.

Per batch (``poll(max_records)``): normalize and detect, hand the alerts to
every sink and flush them (each delivers or durably spools), and only then
commit the batch's offsets — at-least-once. A batch without alerts (or an
empty poll) flushes the sinks anyway, so a spool drains when the SIEM is back
whether or not new alerts come. Every ``snapshot_every`` the
pipeline state is checkpointed with the offsets it reflects
(:mod:`detector.checkpoint`); on start it is restored and partitions are read
again from there.

Signals: SIGTERM and SIGINT finish the batch in hand, flush, commit,
checkpoint and exit 0 (well inside Kubernetes' 30 s grace period: a batch
takes well under a second); SIGHUP reloads the rule packs and the models at
once (they are also reloaded when their files change, checked every
``reload_every``). Other settings need a restart.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType

from detector.alerts.model import Alert
from detector.checkpoint import Checkpoint, Offsets
from detector.config import PipelineConfig
from detector.errors import ConfigError
from detector.metrics import Metrics, MetricsServer
from detector.pipeline import Pipeline, deliver
from detector.sinks.base import Sink
from detector.sources.kafka import KafkaSource
from detector.sources.record import RawRecord, next_offsets

__all__ = ["Daemon", "Signals"]

_LAG_EVERY = 5.0  # seconds between consumer-lag reads (a request to the broker each)


@dataclass
class Signals:
    """What the signal handlers asked for; the loop acts on it between batches."""

    stop: bool = False
    reload: bool = False
    received: list[str] = field(default_factory=list)

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, self._reload)

    def _stop(self, number: int, frame: FrameType | None) -> None:
        self.stop = True
        self.received.append(signal.Signals(number).name)

    def _reload(self, number: int, frame: FrameType | None) -> None:
        self.reload = True
        self.received.append(signal.Signals(number).name)


class Daemon:
    """One consumer of the group: builds everything from the config and runs the loop.

    ``sinks``: where alerts go (the CLI builds them from ``service``);
    ``log``: one line per notable thing (start, reloads, stop), to stderr by default.
    """

    def __init__(
        self,
        config: PipelineConfig,
        sinks: Sequence[Sink],
        *,
        metrics: Metrics | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.settings = config.service
        self.sinks = list(sinks)
        self.metrics = metrics or Metrics()
        self.signals = Signals()
        self._log = log or (lambda line: print(f"ciwatch: {line}", file=sys.stderr, flush=True))
        # Only the daemon compares event times with the wall clock: replays read old files.
        self.pipeline = Pipeline.from_config(config, wall_clock=lambda: datetime.now(UTC))
        directory = self.settings.state_dir
        self.checkpoint = Checkpoint(directory) if directory is not None else None
        self._offsets: Offsets = {}
        self.source: KafkaSource | None = None
        self.server: MetricsServer | None = None

    def run(self) -> int:
        """Consume until a stop signal; 0 on a clean stop."""
        self.signals.install()
        start_at = self._restore()
        self._publish_models()
        self.metrics.rules_loaded.set(len(self.pipeline.rules.rules))
        self.server = MetricsServer(
            self.metrics,
            host=self.settings.http_host,
            port=self.settings.http_port,
            ready=self.ready,
        ).start()
        self._log(f"metrics on http://{self.settings.http_host}:{self.server.port}/metrics")
        for sink in self.sinks:
            sink.keepalive = self.server.beat
        self.source = KafkaSource(self.settings.kafka, start_at=start_at)
        clean = False
        try:
            self._loop(self.source, self.server)
            clean = True
        finally:
            self._shutdown(clean)
        return 0

    def stop(self, reason: str) -> None:
        """Ask the loop to stop after the batch in hand (from another thread); logged as why."""
        self.signals.received.append(reason)
        self.signals.stop = True

    def ready(self) -> bool:
        """Connected, partitions assigned, and models loaded (unless switched off)."""
        models_ok = self.pipeline.scorer is not None or not self.config.models.enabled
        return self.source is not None and bool(self.source.assignment()) and models_ok

    def _loop(self, source: KafkaSource, server: MetricsServer) -> None:
        settings = self.settings
        next_snapshot = time.monotonic() + settings.snapshot_every.total_seconds()
        next_reload = time.monotonic() + settings.reload_every.total_seconds()
        next_lag = 0.0
        while not self.signals.stop:
            records = source.poll(settings.max_records, settings.max_batch_wait.total_seconds())
            server.beat()
            if not (records and self._process(source, records)):
                self.retry_spooled()
            now = time.monotonic()
            self.metrics.ready.set(1 if self.ready() else 0)
            if now >= next_lag:
                self._update_lag(source)
                next_lag = now + _LAG_EVERY
            if self.signals.reload or now >= next_reload:
                forced, self.signals.reload = self.signals.reload, False
                self._reload_rules(forced=forced)
                self._reload_models(forced=forced)
                next_reload = now + settings.reload_every.total_seconds()
            if now >= next_snapshot:
                self._save_checkpoint(source)
                next_snapshot = now + settings.snapshot_every.total_seconds()

    def _process(self, source: KafkaSource, records: list[RawRecord]) -> bool:
        """Process, deliver and commit one batch; whether it raised alerts."""
        started = time.perf_counter()
        stats = self.pipeline.stats
        late_before, duplicates_before = stats.late_events, stats.duplicates.copy()
        skipped_before = stats.skipped.copy()
        outcome = self.pipeline.process(records)
        self._deliver(outcome.alerts)
        committed = next_offsets(record.position for record in records)
        first_commits = committed.keys() - self._offsets.keys()
        self._offsets.update(committed)
        if first_commits:
            # Checkpointed before its first commit, a partition is always in the
            # checkpoint once committed: a restart never resumes it at a committed
            # offset whose records the restored state has not seen.
            self._save_checkpoint(source)
        source.commit_offsets(committed)
        self.metrics.count_batch(
            (record.position.stream for record in records),
            outcome.events,
            outcome.dead_letters,
            stats.late_events - late_before,
            duplicates=stats.duplicates - duplicates_before,
            skipped=stats.skipped - skipped_before,
        )
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return bool(outcome.alerts)

    def retry_spooled(self) -> None:
        """Flush every sink when no batch did, so spooled alerts go out once the SIEM is back."""
        for sink in self.sinks:
            try:
                sink.flush()
            except Exception as exc:  # nothing to commit hangs on it: log, retry next time
                self._log(f"sink {sink.name} failed: {type(exc).__name__}: {exc}")

    def _deliver(self, alerts: list[Alert]) -> None:
        """Deliver to every sink (:func:`~detector.pipeline.deliver`), counting failures."""

        def failed(sink: Sink, exc: Exception) -> None:
            self.metrics.deliveries.labels(sink.name, "failed").inc(len(alerts))
            self._log(f"sink {sink.name} failed: {type(exc).__name__}: {exc}")

        deliver(self.sinks, alerts, on_failure=failed)
        if alerts:
            self.metrics.count_alerts(alerts)

    def _restore(self) -> Offsets | None:
        """Restore the checkpoint; the offsets it reflects (None: no checkpoint)."""
        if self.checkpoint is None:
            return None
        saved = self.checkpoint.load()
        if saved is None:
            self._log(f"no checkpoint in {self.checkpoint.path.parent}: starting afresh")
            return None
        state, offsets = saved
        try:
            self.pipeline.restore(state)
        except (ConfigError, KeyError, TypeError, ValueError, AttributeError) as exc:
            # Valid JSON of the wrong shape inside: one line naming the file, not a traceback.
            what = exc if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
            detail = f"damaged checkpoint: {what}"[:300]
            raise ConfigError(detail, where=str(self.checkpoint.path)) from None
        self._offsets = dict(offsets)
        self._log(f"restored state at {len(offsets)} partition offsets from {self.checkpoint.path}")
        return offsets

    def _save_checkpoint(self, source: KafkaSource) -> None:
        if self.checkpoint is None:
            return
        # Only the partitions held now: one a rebalance moved to another replica
        # resumes at the group's committed offset if it comes back after a restart.
        # Holding none (not joined yet) changes nothing: nothing was processed since.
        held = {(tp.topic, tp.partition) for tp in source.assignment()}
        if held:
            self._offsets = {key: at for key, at in self._offsets.items() if key in held}
        try:
            self.checkpoint.save(self.pipeline.snapshot(), self._offsets)
        except OSError as exc:
            self.metrics.snapshots.labels("error").inc()
            self._log(f"checkpoint failed: {exc}")
            return
        self.metrics.snapshots.labels("ok").inc()
        self.metrics.set_state(self.pipeline.features.key_counts)

    def _reload_rules(self, *, forced: bool) -> None:
        errors = self.pipeline.rule_reload_errors
        if self.pipeline.reload_rules(self.config, force=forced):
            self.metrics.rules_loaded.set(len(self.pipeline.rules.rules))
            self._log(f"rules reloaded: {len(self.pipeline.rules.rules)} enabled")
        if self.pipeline.rule_reload_errors > errors:
            self._log(f"rules not reloaded: {self.pipeline.last_rule_error}")

    def _reload_models(self, *, forced: bool) -> None:
        errors = self.pipeline.model_reload_errors
        if self.pipeline.reload_models(force=forced):
            self._publish_models()
            self._log("models reloaded")
        if self.pipeline.model_reload_errors > errors:
            self.metrics.model_reload_errors.inc(self.pipeline.model_reload_errors - errors)
            self._log(f"models not reloaded: {self.pipeline.last_model_error}")

    def _publish_models(self) -> None:
        scorer = self.pipeline.scorer
        self.metrics.set_models(scorer.describe() if scorer is not None else [])

    def _update_lag(self, source: KafkaSource) -> None:
        for tp, behind in source.lag().items():
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(behind)

    def _shutdown(self, clean: bool) -> None:
        stopped_by = ", ".join(self.signals.received) or "error"
        if clean and self.source is not None:
            # Not after an error: the state may hold a batch whose offsets were never
            # committed, and a restart from the last checkpoint is consistent.
            self._save_checkpoint(self.source)
        for sink in self.sinks:
            sink.close()
        if self.source is not None:
            self.source.close()
        if self.server is not None:
            self.server.stop()
        self._log(f"stopped ({stopped_by})")
