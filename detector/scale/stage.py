"""``ciwatch run`` as keyed stages on Kafka (``service.scale.enabled``), as Kafka Streams runs.

One consumer of the group reads the vendor topics and every stage's internal
topic (:class:`~detector.scale.topology.Topology`). A source record is
normalized and handed to the first stage, keyed by its key; a stage record is
decoded and detected on by the :class:`~detector.scale.tasks.Task` of its
partition, which hands what it observed to the next stage:

- the intake merges the owned vendor partitions in event time
  (:mod:`detector.intake`); each owned stage partition is read back in event
  time through its producers' marks (:mod:`detector.scale.inbox`), which every
  replica sends after each poll for the vendor partitions and tasks it owns
  (:mod:`detector.scale.marking`);
- per batch: every task runs on its partition's items; the records for the next
  stage are produced sorted by event time (``acks=all``) and flushed; the alerts
  are delivered; a task never saved is saved to its changelog; then the offsets
  are committed (a stage partition's up to its lowest record not processed
  yet, or its newest snapshot's offset if higher). A crash anywhere reads the
  batch again (at least once: alert ids are stable and a task leaves out events
  it has seen, so a re-produced record changes nothing downstream);
- a stage partition's state moves with it: on revocation, every
  ``snapshot_every`` and at a clean stop the owned tasks are saved
  (:mod:`detector.scale.changelog`) with what their partitions' reorders hold
  (:mod:`detector.scale.held`) and the offset after the last record read; on
  assignment its task is restored from the changelog partition of the same
  number, the held records go back to the reorder, and the partition is read
  from that offset (:mod:`detector.scale.owned`).

Models are per process and shared by every actor task: fixed ones (``models.dir``
or the bundled ones), or learnt as the unscaled daemon learns them (``models.dir``
null): one learner per process samples the rows of all its actor tasks, and each
generation it trains scores them all from the next batch on (:mod:`.learning`).
Several replicas, scaled up or down or killed while they run, so give
``replay``'s alerts as one does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from detector.assembly import build_rules
from detector.checkpoint import Offsets
from detector.config import PipelineConfig
from detector.daemon import Daemon
from detector.errors import CiwatchError, SourceError
from detector.events.model import Event
from detector.intake import Batch, Intake
from detector.metrics import Metrics
from detector.outcomes import BatchOutcome
from detector.scale.changelog import Changelog, ensure_topics, partition_counts
from detector.scale.figures import ReorderFigures, TaskFigures
from detector.scale.inbox import Inbox
from detector.scale.learning import restore_learner, save_learner
from detector.scale.marking import Marker
from detector.scale.owned import OwnedTasks
from detector.scale.producing import StageProducer, open_stage_producer
from detector.scale.tasks import Task, TaskFactory
from detector.scale.topology import Topology
from detector.scale.wire import Note, Outgoing, encode_first, not_internal
from detector.sinks.base import Sink
from detector.sources.factory import ConsumerSource, require_client
from detector.sources.kafka import KafkaSource
from detector.sources.record import Position, RawRecord, next_offsets, stream_of

__all__ = ["ScaledDaemon"]

Partition = tuple[str, int]
"""(topic, partition)."""
_Decoded = Note | tuple[Event, dict[str, list[int]]]
_Items = tuple[list[Event | Note], dict[str, dict[str, list[int]]]]


class ScaledDaemon(Daemon):
    """One replica of the scaled-out stages; everything else as :class:`Daemon` (see the module)."""

    def __init__(
        self,
        config: PipelineConfig,
        sinks: Sequence[Sink],
        *,
        metrics: Metrics | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(config, sinks, metrics=metrics, log=log)
        rules = build_rules(config)
        models = self.pipeline.models  # fixed, or the learner's (none yet: an empty set)
        self.topology = Topology.plan(config.service.scale, rules, models=models is not None)
        self.factory = TaskFactory(
            config,
            self.topology,
            rules,
            self.pipeline.normalizer,
            models,
            learner=self.pipeline.learner,
        )
        self.figures = TaskFigures(self.metrics)
        self.owned = OwnedTasks(self.factory, self.figures, self._log)
        self._decoded: dict[Position, _Decoded] = {}
        """Stage records the inbox released and decoded, until their batch is processed."""
        self._producer: StageProducer | None = None
        self._reorder_figures = ReorderFigures(
            self.metrics, self._log, max_held=config.service.scale.max_held_records
        )
        self._sources: dict[str, int] = {}
        """Vendor topic → partitions: the first stage's producers."""
        self.marker = Marker(
            self.topology, idle_after_s=self.settings.partition_wait.total_seconds()
        )
        self._checkpoint_failing = False

    @property
    def tasks(self) -> dict[Partition, Task]:
        """The owned stage partitions' tasks."""
        return self.owned.tasks

    @property
    def _inbox(self) -> Inbox | None:
        return self.owned.inbox

    # -- start and stop ---------------------------------------------------------------

    def _restore(self) -> Offsets | None:
        """Create the internal topics and connect to them; state comes with each partition."""
        connection = self.settings.kafka.connection_config()
        topology = self.topology
        ensure_topics(connection, topology.topics, compacted=topology.changelogs)
        self._sources = partition_counts(connection, self.settings.kafka.topics)
        self.owned.changelogs = {
            stage: Changelog(connection, topology.changelog(stage), log=self._log)
            for stage in topology.stages
        }
        self._producer = open_stage_producer(self.settings.kafka)  # kafka.client's
        learner, directory = self.pipeline.learner, self.settings.state_dir
        if learner is not None and directory is not None:
            restore_learner(learner, directory, self._log)
        stages = " → ".join(topology.stages)
        self._log(
            f"scale-out: stages {stages} over {topology.partitions} partitions"
            f" of {topology.prefix}.by-*"
        )
        return None

    def _open_source(self, start_at: Offsets | None) -> ConsumerSource:
        kafka = self.settings.kafka
        internal = [self.topology.topic(stage) for stage in self.topology.stages]
        settings = kafka.model_copy(update={"topics": [*kafka.topics, *internal]})
        require_client(settings)
        if settings.client == "confluent":
            from detector.sources.kafka_confluent import ConfluentSource

            return ConfluentSource(settings, on_revoked=self._revoked, on_assigned=self._assigned)
        return KafkaSource(settings, on_revoked=self._revoked, on_assigned=self._assigned)

    def _intake(self, source: ConsumerSource) -> Intake:
        settings = self.settings
        wait_s, held = settings.scale.producer_wait.total_seconds(), settings.scale.max_held_records
        inbox = Inbox(source, self.topology, sources=self._sources, wait_s=wait_s, max_held=held)
        self.owned.inbox = inbox
        return Intake(
            inbox,
            self._normalize,
            max_records=settings.max_records,
            max_wait_s=settings.max_batch_wait.total_seconds(),
            wait_s=settings.partition_wait.total_seconds(),
            capacity=settings.partition_buffer,
            per_partition=settings.buffered_per_partition,
            lap=self._lap,
        )

    def _models_line(self) -> str:
        return f"{super()._models_line()} (shared by every actor-stage task)"

    def _reload_rules(self, *, forced: bool) -> None:
        if forced:  # a changed rule may move to another stage: the topology is planned anew
            self._log("rules are reloaded by a restart in scale-out", level=logging.WARNING)

    def _share_models(self) -> None:
        """The actor tasks score with the process's models: reloaded, newly learnt, rolled back."""
        models = self.pipeline.models
        if models is not None and models is not self.factory.models:
            self.factory.use_models(models, list(self.tasks.values()))

    def _shutdown(self, clean: bool) -> None:
        super()._shutdown(clean)  # saves the owned tasks on a clean stop
        if self._producer is not None:
            self._producer.close()
        self.owned.close()

    # -- partitions come and go -------------------------------------------------------

    def _assigned(self, partitions: list[Partition]) -> dict[Partition, int]:
        """Restore the tasks of newly assigned stage partitions; where each resumes."""
        stage_of = self.topology.stage_of
        self.marker.own([key for key in partitions if stage_of(key[0]) is None])
        staged = [(key, stage) for key in partitions if (stage := stage_of(key[0])) is not None]
        return self.owned.assign(staged)

    def _revoked(self, partitions: list[Partition]) -> None:
        """Save the revoked tasks for their next owner, forget them and their held records."""
        self.owned.revoke(partitions)
        super()._revoked(partitions)
        if self._inbox is not None:
            self._inbox.forget(partitions)
        self.marker.forget(partitions)
        gone = set(partitions)
        for position in [p for p in self._decoded if (p.stream, p.partition or 0) in gone]:
            del self._decoded[position]

    # -- one batch --------------------------------------------------------------------

    def _normalize(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Source records through the pipeline's normalizer; stage records as the inbox
        decoded them (no event time for the merge: the inbox ordered them)."""
        stage_of = self.topology.stage_of
        polled = [record for record in records if stage_of(record.position.stream) is None]
        outcome = self.pipeline.normalize(polled) if polled else BatchOutcome()
        received = self._inbox.received if self._inbox is not None else {}
        for record in records:
            if stage_of(record.position.stream) is None:
                continue
            found = received.pop(record.position, None)
            if found is None or found.item is None:
                outcome.dead_letters.append(not_internal(record))
            elif isinstance(found.item, Note):
                self._decoded[record.position] = found.item
            else:
                self._decoded[record.position] = (found.item, found.carried)
        return outcome

    def _process(self, source: ConsumerSource, batch: Batch) -> bool:
        """Detect on, hand on, deliver and commit one batch; whether it raised alerts."""
        if self.owned.failure is not None:
            raise self.owned.failure
        started = time.perf_counter()
        self._share_models()  # between two batches, never inside one
        source_events, items = self._split(batch)
        first = self.topology.stages[0]
        topic = self.topology.topic(first)
        outgoing = [
            Outgoing(topic, Topology.key(first, event), encode_first(event), event.time)
            for event in source_events
        ]
        late_before, duplicates_before = self.owned.late_and_duplicates()
        alerts = []
        for key, (found, carried) in items.items():
            raised, handed_on = self.tasks[key].process(found, carried)
            alerts.extend(raised)
            outgoing.extend(handed_on)
        self.figures.count({key: self.tasks[key] for key in items})
        self._lap("detect")
        self._produce(outgoing)
        self._lap("produce")
        self._deliver(alerts)
        self._lap("deliver")
        self.marker.processed(source_events)
        stage_of = self.topology.stage_of
        if self._inbox is not None:
            self._inbox.processed(batch.positions)
        vendor = (p for p in batch.positions if stage_of(p.stream) is None)
        self._commit(source, next_offsets(vendor))
        self._lap("commit")
        late, duplicates = self.owned.late_and_duplicates()
        self.metrics.count_batch(
            map(stream_of, batch.positions),
            source_events,
            batch.dead_letters,
            late - late_before,
            duplicates={k: n - duplicates_before.get(k, 0) for k, n in duplicates.items()},
            skipped=batch.skipped,
        )
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return bool(alerts)

    def _split(self, batch: Batch) -> tuple[list[Event], dict[Partition, _Items]]:
        """The batch's source events, and each stage partition's decoded items."""
        stage_of = self.topology.stage_of
        source_events = [e for e in batch.events if stage_of(_stream(e)) is None]
        items: dict[Partition, _Items] = {}
        for position in batch.positions:
            item = self._decoded.pop(position, None)
            if item is None:
                continue  # a source record or a dead letter
            key = (position.stream, position.partition or 0)
            if key not in self.tasks:
                raise SourceError("no task for this partition", where=str(position))
            found, carried = items.setdefault(key, ([], {}))
            if isinstance(item, Note):
                found.append(item)
            else:
                found.append(item[0])
                carried[item[0].id] = item[1]
        return source_events, items

    def _produce(self, outgoing: list[Outgoing]) -> None:
        if self._producer is not None:
            self._producer.send(outgoing)

    def _after_batch(self, source: ConsumerSource) -> None:
        """Send the marks due; commit stage partitions that only read marks."""
        if self._inbox is None or self.intake is None:
            return
        merge, stage_of = self.intake.merge, self.topology.stage_of
        unfinished = source.unfinished()
        caught_up = {
            key: key not in unfinished and not merge.held(key)
            for key in source.assigned()
            if stage_of(key[0]) is None
        }
        self._produce(self.marker.marks(caught_up, self.tasks, self._inbox.watermark))
        self._lap("produce")
        self._commit(source, {})
        self._lap("commit")

    def _count_merge(self, intake: Intake) -> None:
        super()._count_merge(intake)
        if self._inbox is not None:  # the stage partitions' reorders hold and wait too
            self._reorder_figures.count(self._inbox)

    def _commit(self, source: ConsumerSource, vendor: dict[Partition, int]) -> None:
        """Commit vendor partitions after the batch's records and stage partitions up to
        their first record not processed; each task saved before its first commit."""
        committed = {**vendor, **(self._inbox.commit_points() if self._inbox is not None else {})}
        for key in committed:
            task = self.tasks.get(key)
            if task is not None and not task.saved:
                # A committed partition always has a snapshot: its next owner never
                # resumes at a committed offset whose records its state has not seen.
                self.owned.save(key, task)
        if not source.commit_offsets(committed):
            self.metrics.commit_refusals.inc()
            message = "commit refused: the group is rebalancing; the records are read again"
            self._log(message, level=logging.WARNING)

    # -- state ------------------------------------------------------------------------

    def _checkpoint_due(self, source: ConsumerSource) -> None:
        self._save_checkpoint(source)  # each task's own, smaller: saved whole

    def _save_checkpoint(self, source: ConsumerSource) -> None:
        """Save every owned task that moved on since its last snapshot, and the learner."""
        try:
            self.owned.save_changed()
            learner, directory = self.pipeline.learner, self.settings.state_dir
            if self.learning is not None and learner is not None and directory is not None:
                save_learner(self.learning, learner, directory)
        except (CiwatchError, OSError) as exc:  # the broker, the disk: the previous saves stay
            self.metrics.snapshots.labels("error").inc()
            if not self._checkpoint_failing:
                self._log(f"state save failed: {exc}; retrying quietly", level=logging.ERROR)
            self._checkpoint_failing = True
            return
        if self._checkpoint_failing:
            self._log("changelog saved again")
        self._checkpoint_failing = False
        self.metrics.snapshots.labels("ok").inc()
        self.figures.set_state(self.tasks)


def _stream(event: Event) -> str:
    return event.position.stream if event.position is not None else ""
