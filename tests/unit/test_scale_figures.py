"""A scaled replica's metrics: its tasks' figures summed, its reorders' holds and bound."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest
from pydantic import ValidationError

from detector.assembly import build_rules
from detector.config import PipelineConfig
from detector.events.model import Event
from detector.logs import line_log
from detector.metrics import Metrics
from detector.normalizing import build_normalizer
from detector.scale.changelog import Changelog
from detector.scale.figures import ReorderFigures, TaskFigures
from detector.scale.inbox import Inbox
from detector.scale.stage import ScaledDaemon
from detector.scale.tasks import Task, TaskFactory
from detector.scale.topology import ScaleSettings
from tests.clock import Clock
from tests.unit.test_scale_inbox import ACTOR, TOPOLOGY, Fed, StagePartition, event

CONFIG = PipelineConfig.model_validate({"models": {"enabled": False}})
RULES = build_rules(CONFIG)
FACTORY = TaskFactory(CONFIG, TOPOLOGY, RULES, build_normalizer(CONFIG), None)
Partition = tuple[str, int]


def by(actor: str, minute: int) -> Event:
    return replace(event(minute), actor=actor, id=f"{actor}-{minute}")


def tasks_with(*actors: list[str]) -> dict[Partition, Task]:
    """An actor-stage task per list, each having seen those actors."""
    tasks = {}
    for partition, names in enumerate(actors):
        task = FACTORY.task("actor", partition)
        task.process([by(name, 1) for name in names], {})
        tasks[ACTOR, partition] = task
    return tasks


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_keys_per_kind_are_the_sum_over_the_replicas_tasks() -> None:
    metrics = Metrics()
    tasks = tasks_with(["alice", "bob"], ["carol"])
    ip_task = FACTORY.task("ip", 0)
    ip_task.process([by("dave", 1)], {})
    tasks[TOPOLOGY.topic("ip"), 0] = ip_task
    TaskFigures(metrics).set_state(tasks)
    assert value(metrics, "ciwatch_state_keys", kind="actor") == 3
    assert value(metrics, "ciwatch_state_keys", kind="ip") == 1  # the IP stage's only
    assert value(metrics, "ciwatch_state_keys", kind="target") == 0
    assert value(metrics, "ciwatch_risk_actors_elevated") == 0
    del tasks[ACTOR, 0]  # revoked: its keys are another replica's now
    TaskFigures(metrics).set_state(tasks)
    assert value(metrics, "ciwatch_state_keys", kind="actor") == 1
    TaskFigures(metrics).set_state({})  # every partition gone: no stale figure stays
    assert value(metrics, "ciwatch_state_keys", kind="actor") == 0
    assert value(metrics, "ciwatch_state_keys", kind="ip") == 0


def test_held_back_and_evictions_count_each_tasks_increase_once() -> None:
    metrics = Metrics()
    figures = TaskFigures(metrics)
    tasks = tasks_with(["alice"], ["bob"])
    first, second = tasks[ACTOR, 0].pipeline, tasks[ACTOR, 1].pipeline
    for key, task in tasks.items():
        figures.start(key, task)
    first.suppressor.linked_anomalies["auth-anomaly"] += 2
    second.suppressor.linked_anomalies["auth-anomaly"] += 1
    figures.count(tasks)
    figures.count(tasks)  # nothing new: nothing added
    held = {"model": "auth", "reason": "linked"}
    assert value(metrics, "ciwatch_anomalies_held_back_total", **held) == 3
    first.features.evictions["actor", "idle"] += 4
    figures.set_state(tasks)
    evicted = {"kind": "actor", "reason": "idle"}
    assert value(metrics, "ciwatch_state_evictions_total", **evicted) == 4
    # Partition 1 moves here from a replica that counted its 5 already: only what follows.
    moved = FACTORY.task("actor", 1)
    moved.pipeline.suppressor.linked_anomalies["auth-anomaly"] = 5
    figures.stop((ACTOR, 1))
    figures.start((ACTOR, 1), moved)
    tasks[ACTOR, 1] = moved
    figures.count(tasks)
    assert value(metrics, "ciwatch_anomalies_held_back_total", **held) == 3
    moved.pipeline.suppressor.linked_anomalies["auth-anomaly"] += 1
    figures.count({(ACTOR, 1): moved})
    assert value(metrics, "ciwatch_anomalies_held_back_total", **held) == 4


def test_the_reorders_bound_is_counted_as_forced_records_and_logged_once_an_episode() -> None:
    metrics, lines = Metrics(), list[str]()
    figures = ReorderFigures(metrics, line_log("test", lines.append), max_held=2)
    source = Fed()
    box = Inbox(source, TOPOLOGY, sources={"vendor": 2}, wait_s=60, max_held=2, clock=Clock())
    actor = StagePartition(ACTOR)
    source.feed(actor.mark("ip/1", 9), actor.mark("ip/2", 0))
    source.feed(*(actor.event("ip/0", minute) for minute in range(1, 5)))
    assert len(box.poll()) == 2
    figures.count(box)
    assert value(metrics, "ciwatch_merge_forced_records_total") == 2
    assert value(metrics, "ciwatch_merge_buffered_records") == 2
    assert value(metrics, "ciwatch_merge_wait_timeouts_total") == 0
    assert len(lines) == 1
    assert f"{ACTOR}[0]" in lines[0] and "ip/2" in lines[0] and "max_held_records (2)" in lines[0]
    source.feed(actor.event("ip/0", 5))
    assert len(box.poll()) == 1
    figures.count(box)
    assert value(metrics, "ciwatch_merge_forced_records_total") == 3
    assert len(lines) == 1  # the same episode


def test_max_held_records_defaults_to_ten_thousand_and_must_be_positive() -> None:
    assert ScaleSettings().max_held_records == 10_000
    with pytest.raises(ValidationError, match="max_held_records"):
        ScaleSettings(max_held_records=0)
    settings = PipelineConfig.model_validate({"service": {"scale": {"max_held_records": 500}}})
    assert settings.service.scale.max_held_records == 500


class Kept:
    """A changelog in memory: what each partition's task last saved."""

    def __init__(self) -> None:
        self.saved: dict[int, tuple[dict[str, Any], int]] = {}

    def save(self, partition: int, state: dict[str, Any], offset: int) -> None:
        self.saved[partition] = (state, offset)

    def restore(self, partition: int) -> tuple[dict[str, Any], int] | None:
        return self.saved.get(partition)


def test_a_scaled_replica_exports_its_owned_tasks_and_not_a_moved_ones_past() -> None:
    config = PipelineConfig.model_validate(
        {"service": {"scale": {"enabled": True, "partitions": 3}}, "models": {"enabled": False}}
    )
    replicas = [ScaledDaemon(config, []) for _ in range(2)]
    kept = Kept()
    for daemon in replicas:
        daemon.owned.changelogs = {stage: cast(Changelog, kept) for stage in daemon.topology.stages}
    first, second = replicas
    key = (first.topology.topic("actor"), 0)
    first._assigned([key])
    task = first.tasks[key]
    task.process([by("alice", 1), by("bob", 2)], {})
    task.pipeline.suppressor.linked_anomalies["auth-anomaly"] += 2
    first.figures.count({key: task})
    task.offset = 7
    first._revoked([key])  # saved for its next owner
    second._assigned([key])
    second.figures.set_state(second.tasks)
    assert value(second.metrics, "ciwatch_state_keys", kind="actor") == 2
    held = {"model": "auth", "reason": "linked"}
    assert value(first.metrics, "ciwatch_anomalies_held_back_total", **held) == 2
    moved = second.tasks[key].pipeline.suppressor.linked_anomalies
    moved["auth-anomaly"] += 1  # whether the 2 came with the state or not, 1 is new here
    second.figures.count(second.tasks)
    assert value(second.metrics, "ciwatch_anomalies_held_back_total", **held) == 1
