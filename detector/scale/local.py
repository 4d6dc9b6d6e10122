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
  Its tasks can be moved mid-stream (:class:`Moves`), as to a replica that
  takes a partition over: through a snapshot as the changelog keeps it.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

import orjson

from detector.alerts.model import Alert
from detector.assembly import build_rules, models_directory
from detector.config import PipelineConfig
from detector.events.model import Event
from detector.normalizing import build_normalizer
from detector.scale.held import read_held, snapshot_held
from detector.scale.reorder import Reorder
from detector.scale.tasks import Task, TaskFactory
from detector.scale.topology import ScaleSettings, Topology
from detector.scale.wire import Note, Outgoing, broadcast_mark, encode_event, read
from detector.scoring import load_models
from detector.sources.record import Position, RawRecord

__all__ = ["Moves", "partition_of", "run_concurrently", "run_in_memory"]

_Item = tuple[Event | Note, dict[str, list[int]]]
Speed = Callable[[str, int], int]
"""(stage or ``source``, partition) → records it reads per round."""
_Key = tuple[str, int]


@dataclass
class Moves:
    """Every task moved to a fresh one at the start of each of ``rounds``: its state and
    (``keep_held``) what its reorder holds go through JSON, as in a changelog snapshot,
    and its partition is read on from the snapshot's offset. Without ``keep_held``, as
    before held records were kept: the snapshot's offset is the oldest record held, read
    again from there. ``held``: records the reorders held at each move (filled in)."""

    rounds: Collection[int]
    keep_held: bool = True
    held: list[int] = field(default_factory=list)


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
        self.late_of_moved = 0
        """Late events counted by tasks before they moved (their figures stay behind)."""

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
    moves: Moves | None = None,
) -> tuple[list[Alert], int]:
    """The stages side by side, each partition at its own ``speed`` (records per round).

    The vendor topic has ``partitions`` partitions (event ``i`` on ``i %
    partitions``), each in event time. Reorder waits last ``wait_rounds``
    rounds and holds at most ``max_held`` records per partition; ``reorder``
    off reads records as they arrive; ``moves``: tasks moved mid-stream.
    Returns the alerts and the late events the tasks counted.
    """
    stages = _Stages(config, partitions)
    sources = [list(events[at::partitions]) for at in range(partitions)]
    clock = [0.0]

    def fresh(key: _Key) -> Reorder[RawRecord]:
        found = Reorder[RawRecord](wait_s=wait_rounds, max_held=max_held, clock=lambda: clock[0])
        before = stages.topology.stages.index(key[0])
        upstream = stages.topology.stages[before - 1] if before else "source"
        found.expect(f"{upstream}/{partition}" for partition in range(partitions))
        return found

    keys = [
        (stage, partition) for stage in stages.topology.stages for partition in range(partitions)
    ]
    reorders = {key: fresh(key) for key in keys}
    read_at = dict.fromkeys(reorders, 0)
    alerts: list[Alert] = []
    while True:
        clock[0] += 1
        if moves is not None and int(clock[0]) in moves.rounds:
            moves.held.append(sum(len(held) for held in reorders.values()))
            for key in keys:
                reorders[key] = _move(stages, key, reorders[key], fresh(key), read_at, moves)
        moved = _feed(stages, sources, clock[0], speed)
        for stage, partition in reorders:
            values = stages.topics[stage][partition]
            start = read_at[stage, partition]
            new = values[start : start + speed(stage, partition)]
            read_at[stage, partition] = start + len(new)
            held = reorders[stage, partition]
            for offset, value in enumerate(new, start):
                record = RawRecord(value, Position(stage, offset, partition))
                found = read(value, record.position)
                held.add(found.producer, offset, found.time, None if found.item is None else record)
            released = held.take(1 << 30) if reorder else held.take_all()
            if released:
                items = [_decoded(record) for record in released]
                raised, outgoing = stages.process(stage, partition, items)
                alerts.extend(raised)
                stages.send(outgoing)
            moved = moved or bool(new or released)
        if not moved and not any(len(held) for held in reorders.values()):
            break
    for task in stages.tasks.values():
        alerts.extend(task.pipeline.finish())
    late = sum(task.pipeline.stats.late_events for task in stages.tasks.values())
    return alerts, late + stages.late_of_moved


def _decoded(record: RawRecord) -> _Item:
    found = read(record.value, record.position)
    assert found.item is not None  # marks are never held
    return found.item, found.carried


def _move(
    stages: _Stages,
    key: _Key,
    reorder: Reorder[RawRecord],
    to: Reorder[RawRecord],
    read_at: dict[_Key, int],
    moves: Moves,
) -> Reorder[RawRecord]:
    """``key``'s task and reorder moved to a fresh task and ``to`` (see :class:`Moves`)."""
    task = stages.tasks.pop(key, None)
    if task is not None:
        stages.late_of_moved += task.pipeline.stats.late_events
    point = read_at[key]
    held = None
    if moves.keep_held:
        held = snapshot_held(reorder, (), point)
    elif (oldest := reorder.lowest_offset()) is not None:
        point = oldest
    if task is not None:
        state = orjson.loads(orjson.dumps(task.snapshot()))
        stages.task(*key).restore(state, point)
    saved = None if held is None else orjson.loads(orjson.dumps(held))
    read_held(saved, key).refill(to)
    read_at[key] = point
    return to


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
