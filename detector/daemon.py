"""``ciwatch run``: Kafka consumer group → pipeline → sinks, for months, losing nothing.

Per batch (polled and normalized, its partitions merged in event time by
:mod:`detector.intake`; at most ``max_records``): detect, hand the alerts to
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

import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from detector.alerts.model import Alert
from detector.checkpoint import Checkpoint, Offsets
from detector.checkpointing import PacedCheckpoints, State
from detector.config import PipelineConfig
from detector.delivery import Abandoned, Delivery, idle_paused
from detector.errors import CiwatchError, ConfigError
from detector.intake import Batch, Intake
from detector.jit import compile_all
from detector.learning import BackgroundLearning
from detector.logs import line_log
from detector.loop_cpu import LoopClock
from detector.metrics import Metrics, MetricsServer
from detector.pipeline import Pipeline
from detector.sinks.base import Sink
from detector.sources.factory import ConsumerSource, open_source
from detector.sources.record import next_offsets, stream_of

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
    ``log``: one line per notable thing (start, reloads, stop); by default to the
    ``ciwatch.daemon`` logger (:mod:`detector.logs`), a callable given gets the message.
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
        self._log = line_log("ciwatch.daemon", log)
        # Only the daemon compares event times with the wall clock: replays read old files.
        directory = self.settings.state_dir
        self.pipeline = Pipeline.from_config(
            config,
            wall_clock=lambda: datetime.now(UTC),
            learn_dir=directory,
            bundled_fallback=False,
        )
        learner = self.pipeline.learner
        self.learning = (
            BackgroundLearning(self.pipeline, learner, self.metrics, self._log)
            if learner is not None
            else None
        )
        self.checkpoint = Checkpoint(directory, log=self._log) if directory is not None else None
        self.checkpoints = (
            PacedCheckpoints(
                self.checkpoint,
                self.metrics,
                self._log,
                self.settings.snapshot_every.total_seconds(),
            )
            if self.checkpoint is not None
            else None
        )
        self.delivery = Delivery(
            self.sinks,
            self.metrics,
            self._log,
            stopping=lambda: self.signals.stop,
            idle=self._idle_paused,
        )
        self._offsets: Offsets = {}
        self.source: ConsumerSource | None = None
        self.intake: Intake | None = None
        self._merge_counted = (0, 0)  # (waits timed out, records forced) already in metrics
        self.server: MetricsServer | None = None
        self._clock: LoopClock | None = None  # the loop thread's, made when the loop starts

    def run(self) -> int:
        """Consume until a stop signal; 0 on a clean stop."""
        self.signals.install()
        start_at = self._restore()
        self._log(self._models_line())
        self._compile_kernels()
        self._publish_models()
        self.metrics.rules_loaded.set(len(self.pipeline.rules.rules))
        self.metrics.watch_regex_rules(self.pipeline.rules.regex_rules)
        self.metrics.watch_sinks(sink.name for sink in self.sinks)
        self.server = MetricsServer(
            self.metrics,
            host=self.settings.http_host,
            port=self.settings.http_port,
            ready=self.ready,
        ).start()
        self._log(f"metrics on http://{self.settings.http_host}:{self.server.port}/metrics")
        for sink in self.sinks:
            sink.keepalive = self.server.beat
        self.source = self._open_source(start_at)
        self.intake = self._intake(self.source)
        clean = False
        try:
            self._loop(self.source, self.intake, self.server)
            clean = True
        except Abandoned as abandoned:  # a stop while paused: exit, but commit and save nothing
            self._log(str(abandoned), level=logging.WARNING)
        finally:
            self._shutdown(clean)
        return 0

    def _open_source(self, start_at: Offsets | None) -> ConsumerSource:
        """The consumer of the group (scale-out subscribes to its internal topics too)."""
        return open_source(self.settings.kafka, start_at=start_at, on_revoked=self._revoked)

    def stop(self, reason: str) -> None:
        """Ask the loop to stop after the batch in hand (from another thread); logged as why."""
        self.signals.received.append(reason)
        self.signals.stop = True

    def _compile_kernels(self) -> None:
        """The numba kernels (feature counters, scoring) now rather than later or never
        (:mod:`.jit`): a daemon runs long enough for the seconds of start-up to pay."""
        started = time.monotonic()
        compiled = compile_all()
        self._log(f"{compiled} kernels compiled in {time.monotonic() - started:.1f}s")

    def _models_line(self) -> str:
        """One start-up line on where anomaly models come from."""
        learner = self.pipeline.learner
        if learner is not None:
            generation = learner.generation
            using = f"generation {generation.number}" if generation else "no generation yet"
            start = learner.alert_from
            alerts = f"anomaly alerts from {start.isoformat()}" if start else "nothing seen yet"
            return f"learning models in {self.settings.state_dir}: {using}; {alerts}"
        if self.pipeline.models_dir is not None:
            return f"anomaly models from {self.pipeline.models_dir}"
        if not self.config.models.enabled:
            return "anomaly models switched off (models.enabled): rules only"
        return "no anomaly models: rules only (set service.state_dir to learn, or models.dir)"

    def ready(self) -> bool:
        """Connected, partitions assigned, models loaded (unless switched off), not paused."""
        # A learning daemon is ready before its first generation: it is learning.
        models_ok = self.pipeline.scorer is not None or self.pipeline.models_dir is None
        assigned = self.source is not None and bool(self.source.assignment())
        return assigned and models_ok and self.delivery.paused is None

    def _idle_paused(self) -> None:
        """A moment of a pause (:mod:`detector.delivery`): poll reading nothing, stay alive."""
        idle_paused(self.source, self.settings.max_batch_wait.total_seconds())
        if self.server is not None:
            self.server.beat()
        self.metrics.ready.set(0)

    def _intake(self, source: ConsumerSource) -> Intake:
        """Polls ``source`` and merges its partitions in event time (:mod:`detector.intake`)."""
        settings = self.settings
        return Intake(
            source,
            self.pipeline.normalize,
            max_records=settings.max_records,
            max_wait_s=settings.max_batch_wait.total_seconds(),
            wait_s=settings.partition_wait.total_seconds(),
            capacity=settings.partition_buffer,
            per_partition=settings.buffered_per_partition,
            lap=self._lap,
        )

    def _lap(self, stage: str) -> None:
        """The loop thread's CPU since the last lap was ``stage``'s (:mod:`detector.loop_cpu`)."""
        if self._clock is not None:
            self._clock.lap(stage)

    def _revoked(self, partitions: list[tuple[str, int]]) -> None:
        if self.checkpoints is not None:  # its offsets hold partitions no longer this replica's
            self.checkpoints.abandon()
        # Held records were not committed: the partitions' next owner reads them.
        dropped = self.intake.drop(partitions) if self.intake is not None else 0
        if dropped:
            self._log(f"dropped {dropped} polled records of {len(partitions)} revoked partitions")

    def _count_merge(self, intake: Intake) -> None:
        merge, metrics = intake.merge, self.metrics
        metrics.merge_buffered.set(len(merge))
        metrics.merge_wait_timeouts.inc(merge.waits_timed_out - self._merge_counted[0])
        metrics.merge_forced.inc(merge.forced - self._merge_counted[1])
        self._merge_counted = (merge.waits_timed_out, merge.forced)

    def _loop(self, source: ConsumerSource, intake: Intake, server: MetricsServer) -> None:
        settings = self.settings
        next_snapshot = time.monotonic() + settings.snapshot_every.total_seconds()
        next_reload = time.monotonic() + settings.reload_every.total_seconds()
        next_lag = 0.0
        self._clock = self.metrics.loop_cpu.clock()  # on the thread that runs the loop
        while not self.signals.stop:
            started = time.monotonic()
            batch = intake.next_batch()
            server.beat()
            self._count_merge(intake)
            if not (batch.positions and self._process(source, batch)):
                self.retry_spooled()
            self._after_batch(source)
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
            if self.learning is not None:
                self.learning.step()
            if self.checkpoints is not None and self.checkpoints.pace(now - started):
                self._checkpoint_written()
            if now >= next_snapshot and not self._checkpoint_in_flight():
                self._checkpoint_due(source)
                next_snapshot = now + self._snapshot_interval()
            self._lap("other")

    def _after_batch(self, source: ConsumerSource) -> None:
        """After each poll, with or without a batch: nothing here (scale-out sends its marks)."""

    def _process(self, source: ConsumerSource, batch: Batch) -> bool:
        """Detect on, deliver and commit one normalized batch; whether it raised alerts."""
        started = time.perf_counter()
        stats = self.pipeline.stats
        late_before, duplicates_before = stats.late_events, stats.duplicates.copy()
        rules = self.pipeline.rules  # reloads happen between batches, never inside one
        regex_before = rules.regex_limits
        alerts = self.pipeline.detect(batch.events)  # normalized and ordered by the intake
        self._lap("detect")
        self.metrics.count_regex_limits(rules.regex_limits - regex_before)
        self._deliver(alerts)
        self._lap("deliver")
        # Each partition's records here come before any the intake still holds.
        committed = next_offsets(batch.positions)
        first_commits = committed.keys() - self._offsets.keys()
        self._offsets.update(committed)
        if first_commits:
            # Checkpointed before its first commit, a partition is always in the
            # checkpoint once committed: a restart never resumes it at a committed
            # offset whose records the restored state has not seen.
            self._save_checkpoint(source)
        if not source.commit_offsets(committed):
            self.metrics.commit_refusals.inc()
            message = "commit refused: the group is rebalancing; the records are read again"
            self._log(message, level=logging.WARNING)
        self._lap("commit")
        self.metrics.count_batch(
            map(stream_of, batch.positions),
            batch.events,
            batch.dead_letters,
            stats.late_events - late_before,
            duplicates=stats.duplicates - duplicates_before,
            skipped=batch.skipped,
        )
        self.metrics.models.count_held_back(self.pipeline.held_back())
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return bool(alerts)

    def retry_spooled(self) -> None:
        """Flush every sink when no batch did, so spooled alerts go out once the SIEM is back."""
        self.delivery.retry()

    def _deliver(self, alerts: list[Alert]) -> None:
        """Every sink delivers or spools ``alerts``; a full disk pauses until it can.

        See :class:`~detector.delivery.Delivery`: a failure other than the
        disk's is raised, so the batch is not committed.
        """
        self.delivery.deliver(alerts)

    def _restore(self) -> Offsets | None:
        """Restore the checkpoint; the offsets it reflects (None: no checkpoint).

        State of the wrong shape falls back to ``checkpoint.json.prev``
        (:meth:`~detector.checkpoint.Checkpoint.restore`); both failing is one line.
        """
        if self.checkpoint is None:
            return None

        def apply(state: dict[str, Any]) -> None:
            try:
                self.pipeline.restore(state)  # replaces every part: a second try starts clean
            except (CiwatchError, KeyError, TypeError, ValueError, AttributeError) as exc:
                # Valid JSON of the wrong shape inside: the previous checkpoint is tried,
                # then one line naming the file, not a traceback.
                if isinstance(exc, ConfigError):
                    what = exc.message  # its file is named once, by the fallback's line
                elif isinstance(exc, CiwatchError):
                    what = str(exc)
                else:
                    what = f"{type(exc).__name__}: {exc}"
                raise ConfigError(f"damaged checkpoint: {what}"[:300]) from None

        offsets = self.checkpoint.restore(apply)
        if offsets is None:
            self._log(f"no checkpoint in {self.checkpoint.path.parent}: starting afresh")
            return None
        self._offsets = dict(offsets)
        self._log(
            f"restored state at {len(offsets)} partition offsets from {self.checkpoint.loaded}"
        )
        return offsets

    def _save_checkpoint(self, source: ConsumerSource) -> None:
        """A checkpoint written whole, now: a partition's first commit, a clean stop."""
        if self.checkpoints is not None and self.checkpoints.save(self._checkpointed(source)):
            self._checkpoint_written()

    def _checkpoint_due(self, source: ConsumerSource) -> None:
        """Every ``snapshot_every``: a checkpoint taken now, written a part at a time after
        the next batches (:mod:`detector.checkpointing`)."""
        if self.checkpoints is not None:
            self.checkpoints.take(self._checkpointed(source))

    def _checkpoint_in_flight(self) -> bool:
        return self.checkpoints is not None and self.checkpoints.writing

    def _snapshot_interval(self) -> float:
        if self.checkpoints is None:
            return self.settings.snapshot_every.total_seconds()
        return self.checkpoints.interval()

    def _checkpointed(self, source: ConsumerSource) -> State:
        def state() -> tuple[Mapping[str, Any], Offsets]:
            # Only the partitions held now: one a rebalance moved to another replica
            # resumes at the group's committed offset if it comes back after a restart.
            # Holding none (not joined yet) changes nothing: nothing was processed since.
            held = {(tp.topic, tp.partition) for tp in source.assignment()}
            if held:
                self._offsets = {key: at for key, at in self._offsets.items() if key in held}
            if self.learning is not None:  # the history first: re-read records merge into it
                self.learning.flush()
            return self.pipeline.snapshot(streamed=True), self._offsets

        return state

    def _checkpoint_written(self) -> None:
        self.metrics.set_state(self.pipeline.features.key_counts)
        self.metrics.risk_elevated.set(self.pipeline.risk.elevated())
        rule_groups = {("rule_group", "cap"): self.pipeline.rules.evicted_groups()}
        self.metrics.count_evictions({**self.pipeline.features.evictions, **rule_groups})

    def _reload_rules(self, *, forced: bool) -> None:
        errors = self.pipeline.rule_reload_errors
        if self.pipeline.reload_rules(self.config, force=forced):
            self.metrics.rules_loaded.set(len(self.pipeline.rules.rules))
            self.metrics.watch_regex_rules(self.pipeline.rules.regex_rules)
            self._log(f"rules reloaded: {len(self.pipeline.rules.rules)} enabled")
        if self.pipeline.rule_reload_errors > errors:
            self._log(f"rules not reloaded: {self.pipeline.last_rule_error}", level=logging.WARNING)

    def _reload_models(self, *, forced: bool) -> None:
        if self.learning is not None:  # its gauges follow at the next step (publish)
            self.learning.follow_rollback()
        errors = self.pipeline.model_reload_errors
        if self.pipeline.reload_models(force=forced):
            self._publish_models()
            self._log("models reloaded")
        if self.pipeline.model_reload_errors > errors:
            self.metrics.model_reload_errors.inc(self.pipeline.model_reload_errors - errors)
            self._log(
                f"models not reloaded: {self.pipeline.last_model_error}", level=logging.WARNING
            )

    def _publish_models(self) -> None:
        scorer = self.pipeline.scorer
        self.metrics.set_models(scorer.describe() if scorer is not None else [])
        self.metrics.models.set_training_rows(scorer.training_rows() if scorer is not None else {})

    def _update_lag(self, source: ConsumerSource) -> None:
        for tp, behind in source.lag().items():
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(behind)

    def _shutdown(self, clean: bool) -> None:
        stopped_by = ", ".join(self.signals.received) or "error"
        if self.learning is not None:
            self.learning.abandon()
        if self.intake is not None and (held := self.intake.merge.clear()):
            self._log(f"{held} polled records not processed: read again after a restart")
        if clean and self.source is not None:
            # Not after an error: the state may hold a batch whose offsets were never
            # committed, and a restart from the last checkpoint is consistent.
            self._save_checkpoint(self.source)
        if self.checkpoints is not None:  # after an error, one in flight is left unfinished
            self.checkpoints.abandon()
        for sink in self.sinks:
            sink.close()
        if self.source is not None:
            self.source.close()
        if self.server is not None:
            self.server.stop()
        self._log(f"stopped ({stopped_by})")
