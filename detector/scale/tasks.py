"""One task per partition of a stage's topic: that partition's whole detection state.

As in Kafka Streams, a partition's keys are owned by whichever replica owns the
partition, so a task is a :class:`~detector.pipeline.Pipeline` of its own (the
stage's rules, a feature store counting only the stage's key kind, its own
suppression, dedup and risk), snapshotted whole to the stage's changelog
(:mod:`detector.scale.changelog`) and restored by the next owner.

A task of a stage before the actor's hands on each event it observed with the
window counts of its key kind added, and each actor its rule alerts named
(the accounts a spray tried) as a *note* for that actor's task, so that the
actor stage links those accounts' failure anomalies to the spray alert as one
process does (:meth:`~detector.alerts.suppression.Suppressor.note_target`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from detector.alerts.model import Alert
from detector.config import PipelineConfig
from detector.events.model import Event
from detector.events.normalizer import Normalizer
from detector.features.store import FeatureStore
from detector.pipeline import Pipeline
from detector.rules.model import Rule
from detector.rules.reads import kinds_read
from detector.scale.topology import Topology
from detector.scale.wire import Note, Outgoing, broadcast_mark, encode_event, encode_note
from detector.scoring import ModelSet
from detector.scoring.learner import Learner

__all__ = ["Task", "TaskFactory"]


@dataclass(slots=True)
class Task:
    """The state of one partition of one stage; ``offset``: the next input offset its newest
    snapshot reflects (what its partition's reorder held then is in the snapshot too)."""

    stage: str
    partition: int
    pipeline: Pipeline
    topology: Topology
    offset: int | None = None
    saved: bool = False
    """Whether the changelog holds this task (it must before its partition's first commit)."""
    passed: datetime | None = None
    """The newest event time this task processed (what its marks say)."""
    changed: bool = False
    """Whether it processed anything since its newest snapshot."""
    _notes: list[Note] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pipeline.suppressor.on_target = self._named

    @property
    def name(self) -> str:
        """This task as a producer to the next stage (``ip/3``)."""
        return f"{self.stage}/{self.partition}"

    def marks(self, at: datetime | None = None, *, idle: bool = False) -> list[Outgoing]:
        """A mark to every partition this task hands records to: it has passed ``at``
        (by default :attr:`passed`; ``idle``: it has nothing to hand on)."""
        after = self.topology.after(self.stage)
        at = self.passed if at is None else at
        if after is None or at is None:
            return []
        topics = dict.fromkeys((self.topology.topic(after), self.topology.topic("actor")))
        return broadcast_mark(self.name, at, topics, self.topology.partitions, idle=idle)

    def process(
        self,
        items: Sequence[Event | Note],
        carried: Mapping[str, Mapping[str, Sequence[int]]],
    ) -> tuple[list[Alert], list[Outgoing]]:
        """Detect on events and apply notes in event time; alerts and what goes on.

        A note goes before events of its time: one process handles the rule alert
        that named the actor before the anomalies of that moment.
        """
        alerts: list[Alert] = []
        outgoing: list[Outgoing] = []
        run: list[Event] = []
        self.changed = True
        for item in sorted(items, key=_when):
            if isinstance(item, Event):
                run.append(item)
                continue
            self._detect(run, carried, alerts, outgoing)
            run = []
            self.pipeline.suppressor.note_target(item.actor, item.rule, item.alert_id, item.until)
        self._detect(run, carried, alerts, outgoing)
        return alerts, outgoing

    def _detect(
        self,
        events: list[Event],
        carried: Mapping[str, Mapping[str, Sequence[int]]],
        alerts: list[Alert],
        outgoing: list[Outgoing],
    ) -> None:
        if not events:
            return
        pipeline = self.pipeline
        newest = max(event.time for event in events)
        if self.passed is None or newest > self.passed:
            self.passed = newest
        observations, detections = pipeline.observe(events, carried)
        alerts.extend(pipeline.raise_alerts(observations, detections))
        after = self.topology.after(self.stage)
        if after is None:
            return
        topic = self.topology.topic(after)
        counted = pipeline.features.carried_counts(observations, self.stage)
        for observation, packed in zip(observations, counted, strict=True):
            event = observation.event
            counts = {**carried.get(event.id, {}), self.stage: packed}
            value = encode_event(event, counts, producer=self.name)
            outgoing.append(Outgoing(topic, Topology.key(after, event), value, event.time))
        outgoing.extend(
            Outgoing(
                self.topology.topic("actor"),
                note.actor,
                encode_note(note, producer=self.name),
                note.time,
            )
            for note in self._notes
        )
        self._notes.clear()

    def _named(self, actor: str, rule: str, alert_id: str, time: datetime, until: datetime) -> None:
        if self.stage != "actor":
            self._notes.append(Note(actor, rule, alert_id, time, until))

    def snapshot(self) -> dict[str, Any]:
        return self.pipeline.snapshot()

    def restore(self, state: dict[str, Any], offset: int) -> None:
        self.pipeline.restore(state)
        self.offset = offset
        self.saved = True
        self.changed = False


class TaskFactory:
    """Builds the tasks of each stage from one config: the rules split by stage, shared models."""

    def __init__(
        self,
        config: PipelineConfig,
        topology: Topology,
        rules: Sequence[Rule],
        normalizer: Normalizer,
        models: ModelSet | None,
        *,
        learner: Learner | None = None,
    ) -> None:
        self.config = config
        self.topology = topology
        self.rules = {stage: Topology.rules_of(stage, rules) for stage in topology.stages}
        self.normalizer = normalizer
        self.models = models
        self.learner = learner
        """The process's learner, fed by every actor task (None: fixed models)."""
        # Models are shared (read-only); each task loads none of its own.
        self._without_models = config.model_copy(
            update={"models": config.models.model_copy(update={"enabled": False})}
        )

    def task(self, stage: str, partition: int) -> Task:
        pipeline = Pipeline.from_config(
            self._without_models, rules=self.rules[stage], normalizer=self.normalizer
        )
        kinds: tuple[str, ...] = (stage,)
        carried = self.topology.carried if stage == "actor" else ()
        if stage == "actor":
            # Kinds read without a stage of their own are counted here, as one process does.
            read = kinds_read(self.rules[stage], models=self.config.models.enabled)
            kinds = tuple(kind for kind in read if kind not in carried)
            if self.learner is not None:
                # One learner per process, as the unscaled daemon's: its history samples
                # the rows of every actor task here, its generations score them all.
                pipeline.learner, pipeline.learner_shared = self.learner, True
                pipeline.use_models(self.models if self.models is not None else ModelSet({}))
            elif self.models is not None:
                pipeline.use_models(self.models)
        pipeline.features = FeatureStore(self.config.features, kinds=kinds, carried=carried)
        return Task(stage, partition, pipeline, self.topology)

    def use_models(self, models: ModelSet, tasks: Sequence[Task]) -> None:
        self.models = models
        for task in tasks:
            if task.stage == "actor":
                task.pipeline.use_models(models)


def _when(item: Event | Note) -> tuple[datetime, int]:
    return (item.time, 1) if isinstance(item, Event) else (item.time, 0)
