"""The scale-out topology run in one process over in-memory partitions.

The same tasks, records and routing as on Kafka (:mod:`detector.scale.stage`),
with lists for topics: each stage's partitions are processed after the stage
before it has handed everything on, as when the stages catch up a backlog.
It shows, without a broker, that the keyed stages give the alerts one
pipeline gives (tests/unit/test_scale_local.py, bench/scaling.py).
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterable, Iterator
from itertools import islice

from detector.alerts.model import Alert
from detector.assembly import build_rules, models_directory
from detector.config import PipelineConfig
from detector.events.model import Event
from detector.pipeline import build_normalizer
from detector.scale.tasks import TaskFactory
from detector.scale.topology import ScaleSettings, Topology
from detector.scale.wire import Note, Outgoing, decode, encode_event
from detector.scoring import load_models
from detector.sources.record import Position

__all__ = ["partition_of", "run_in_memory"]


def partition_of(key: str, partitions: int) -> int:
    """A stable partition for ``key`` (Kafka's own partitioner does this on the broker path)."""
    return zlib.crc32(key.encode()) % partitions


def run_in_memory(
    config: PipelineConfig, events: Iterable[Event], *, partitions: int, batch: int = 500
) -> tuple[list[Alert], dict[str, int]]:
    """Alerts of ``events`` (in event-time order) through the stages; records per stage."""
    rules = build_rules(config)
    models_dir = models_directory(config)
    models = load_models(models_dir) if models_dir is not None else None
    topology = Topology.plan(
        ScaleSettings(enabled=True, partitions=partitions), rules, models=models is not None
    )
    factory = TaskFactory(config, topology, rules, build_normalizer(config), models)
    first = topology.stages[0]
    topics: dict[str, list[list[bytes]]] = {
        stage: [[] for _ in range(partitions)] for stage in topology.stages
    }
    for event in events:
        value = encode_event(event, {})
        _send(topics, topology, Outgoing(first, Topology.key(first, event), value, event.time))
    alerts: list[Alert] = []
    records = {}
    for stage in topology.stages:
        records[stage] = sum(len(values) for values in topics[stage])
        tasks = [factory.task(stage, partition) for partition in range(partitions)]
        for chunk in _chunks(_merged(stage, topics[stage]), batch):
            outgoing = []
            for partition, items in _by_partition(chunk).items():
                found, handed_on = tasks[partition].process(*items)
                alerts.extend(found)
                outgoing.extend(handed_on)
            # Produced in event time, as the stage on Kafka does: the next stage's
            # partitions then hold each key's events in order.
            for record in sorted(outgoing, key=lambda record: record.time):
                _send(topics, topology, record)
        for task in tasks:
            alerts.extend(task.pipeline.finish())
    return alerts, records


_Item = tuple[int, Event | Note, dict[str, list[int]]]


def _merged(stage: str, partitions: list[list[bytes]]) -> Iterator[_Item]:
    """Every partition's records, decoded, merged oldest first (as a caught-up consumer does)."""

    def read(partition: int, values: list[bytes]) -> Iterator[_Item]:
        for offset, value in enumerate(values):
            item = decode(value, Position(stage, offset, partition))
            if isinstance(item, Note):
                yield partition, item, {}
            else:
                yield partition, item[0], item[1]

    streams = [read(partition, values) for partition, values in enumerate(partitions)]
    return heapq.merge(*streams, key=lambda found: found[1].time)


def _by_partition(
    chunk: list[_Item],
) -> dict[int, tuple[list[Event | Note], dict[str, dict[str, list[int]]]]]:
    found: dict[int, tuple[list[Event | Note], dict[str, dict[str, list[int]]]]] = {}
    for partition, item, carried in chunk:
        items, counts = found.setdefault(partition, ([], {}))
        items.append(item)
        if isinstance(item, Event):
            counts[item.id] = carried
    return found


def _send(topics: dict[str, list[list[bytes]]], topology: Topology, record: Outgoing) -> None:
    stage = topology.stage_of(record.topic) or record.topic
    partitions = topics[stage]
    partitions[partition_of(record.key, len(partitions))].append(record.value)


def _chunks(values: Iterable[_Item], size: int) -> Iterator[list[_Item]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk
