"""The scale-out topology run in one process over in-memory partitions.

The same tasks, records and routing as on Kafka, with lists for topics. Two
ways to run them, both compared with one pipeline in
tests/unit/test_scale_local.py and bench/scaling.py:

- :func:`run_in_memory`: a stage reads all its partitions merged in event time
  after the stage before it has handed everything on, as one replica per
  stage catching up a backlog does;
- :func:`run_concurrently`: every stage and the vendor topic's partitions run
  side by side, each partition at its own speed, as replicas at different
  speeds do; each task reads through a :class:`~detector.scale.reorder.Reorder`.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice

from detector.alerts.model import Alert
from detector.assembly import build_rules, models_directory
from detector.config import PipelineConfig
from detector.events.model import Event
from detector.normalizing import build_normalizer
from detector.scale.reorder import Reorder
from detector.scale.tasks import Task, TaskFactory
from detector.scale.topology import ScaleSettings, Topology
from detector.scale.wire import Note, Outgoing, broadcast_mark, encode_event, read
from detector.scoring import load_models
from detector.sources.record import Position

__all__ = ["partition_of", "run_concurrently", "run_in_memory"]

_Item = tuple[Event | Note, dict[str, list[int]]]
Speed = Callable[[str, int], int]
"""(stage or ``source``, partition) → records it reads per round."""


def partition_of(key: str, partitions: int) -> int:
    """A stable partition for ``key`` (Kafka's own partitioner does this on the broker path)."""
    return zlib.crc32(key.encode()) % partitions


class _Stages:
    """The topics, as lists, and the tasks, made when first needed."""

    def __init__(self, config: PipelineConfig, partitions: int) -> None:
        rules = build_rules(config)
        models_dir = models_directory(config)
        models = load_models(models_dir) if models_dir is not None else None
        settings = ScaleSettings(enabled=True, partitions=partitions)
        self.topology = Topology.plan(settings, rules, models=models is not None)
        self.factory = TaskFactory(config, self.topology, rules, build_normalizer(config), models)
        self.topics: dict[str, list[list[bytes]]] = {
            stage: [[] for _ in range(partitions)] for stage in self.topology.stages
        }
        self.tasks: dict[tuple[str, int], Task] = {}
        self.partitions = partitions

    def task(self, stage: str, partition: int) -> Task:
        found = self.tasks.get((stage, partition))
        if found is None:
            found = self.tasks[stage, partition] = self.factory.task(stage, partition)
        return found

    def send(self, records: Iterable[Outgoing]) -> None:
        """Produce in event time, as a stage on Kafka does."""
        for record in sorted(records, key=lambda record: record.time):
            partitions = self.topics[self.topology.stage_of(record.topic) or record.topic]
            at = record.partition
            at = partition_of(record.key, self.partitions) if at is None else at
            partitions[at].append(record.value)

    def process(
        self, stage: str, partition: int, items: list[_Item]
    ) -> tuple[list[Alert], list[Outgoing]]:
        """The task's alerts, and what it hands on (its marks included)."""
        task = self.task(stage, partition)
        carried = {item.id: counts for item, counts in items if isinstance(item, Event)}
        alerts, outgoing = task.process([item for item, _ in items], carried)
        return alerts, [*outgoing, *task.marks()]

    def first(self, event: Event, producer: str) -> Outgoing:
        stage = self.topology.stages[0]
        value = encode_event(event, {}, producer=producer)
        return Outgoing(self.topology.topic(stage), Topology.key(stage, event), value, event.time)


def run_in_memory(
    config: PipelineConfig, events: Iterable[Event], *, partitions: int, batch: int = 500
) -> tuple[list[Alert], dict[str, int]]:
    """Alerts of ``events`` (in event-time order) through the stages; records per stage."""
    stages = _Stages(config, partitions)
    stages.send(stages.first(event, "source") for event in events)
    alerts: list[Alert] = []
    records = {}
    for stage in stages.topology.stages:
        records[stage] = sum(len(values) for values in stages.topics[stage])
        for chunk in _chunks(_merged(stage, stages.topics[stage]), batch):
            by_partition: dict[int, list[_Item]] = {}
            for partition, item in chunk:
                by_partition.setdefault(partition, []).append(item)
            outgoing: list[Outgoing] = []
            for partition, items in by_partition.items():
                found, handed_on = stages.process(stage, partition, items)
                alerts.extend(found)
                outgoing.extend(handed_on)
            stages.send(outgoing)  # the chunk's, together: one replica's batch
    for task in stages.tasks.values():
        alerts.extend(task.pipeline.finish())
    return alerts, records


def run_concurrently(
    config: PipelineConfig,
    events: Sequence[Event],
    *,
    partitions: int,
    speed: Speed,
    wait_rounds: int = 3,
    reorder: bool = True,
    max_held: int | None = None,
) -> tuple[list[Alert], int]:
    """The stages side by side, each partition at its own ``speed`` (records per round).

    The vendor topic has ``partitions`` partitions (event ``i`` on ``i %
    partitions``), each in event time. Reorder waits last ``wait_rounds``
    rounds and holds at most ``max_held`` records per partition; ``reorder``
    off reads records as they arrive. Returns the alerts and the late events
    the tasks counted.
    """
    stages = _Stages(config, partitions)
    sources = [list(events[at::partitions]) for at in range(partitions)]
    clock = [0.0]
    reorders = {
        (stage, partition): Reorder[_Item](
            wait_s=wait_rounds, max_held=max_held, clock=lambda: clock[0]
        )
        for stage in stages.topology.stages
        for partition in range(partitions)
    }
    for (stage, _), held in reorders.items():
        before = stages.topology.stages.index(stage)
        upstream = stages.topology.stages[before - 1] if before else "source"
        held.expect(f"{upstream}/{partition}" for partition in range(partitions))
    read_at = dict.fromkeys(reorders, 0)
    alerts: list[Alert] = []
    while True:
        clock[0] += 1
        moved = _feed(stages, sources, clock[0], speed)
        for stage, partition in reorders:
            values = stages.topics[stage][partition]
            start = read_at[stage, partition]
            new = values[start : start + speed(stage, partition)]
            read_at[stage, partition] = start + len(new)
            held = reorders[stage, partition]
            for offset, value in enumerate(new, start):
                found = read(value, Position(stage, offset, partition))
                item = None if found.item is None else (found.item, found.carried)
                held.add(found.producer, offset, found.time, item)
            items = held.take(1 << 30) if reorder else held.take_all()
            if items:
                raised, outgoing = stages.process(stage, partition, items)
                alerts.extend(raised)
                stages.send(outgoing)
            moved = moved or bool(new or items)
        if not moved and not any(len(held) for held in reorders.values()):
            break
    for task in stages.tasks.values():
        alerts.extend(task.pipeline.finish())
    return alerts, sum(task.pipeline.stats.late_events for task in stages.tasks.values())


def _feed(stages: _Stages, sources: list[list[Event]], round_: float, speed: Speed) -> bool:
    """One round of the vendor topic's partitions: normalized events to the first stage."""
    moved = False
    for partition, events in enumerate(sources):
        n = speed("source", partition)
        start = int(round_ - 1) * n
        batch = events[start : start + n]
        if not batch:
            continue
        moved = True
        producer = f"source/{partition}"
        first = [stages.topology.topic(stages.topology.stages[0])]
        marks = broadcast_mark(producer, batch[-1].time, first, stages.partitions)
        stages.send([*(stages.first(event, producer) for event in batch), *marks])
    return moved


def _merged(stage: str, partitions: list[list[bytes]]) -> Iterator[tuple[int, _Item]]:
    """Every partition's records, decoded, merged oldest first (as a caught-up consumer does)."""

    def records(partition: int, values: list[bytes]) -> Iterator[tuple[int, _Item]]:
        for offset, value in enumerate(values):
            found = read(value, Position(stage, offset, partition))
            if found.item is not None:
                yield partition, (found.item, found.carried)

    streams = [records(partition, values) for partition, values in enumerate(partitions)]
    return heapq.merge(*streams, key=lambda found: found[1][0].time)


def _chunks(values: Iterable[tuple[int, _Item]], size: int) -> Iterator[list[tuple[int, _Item]]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk
