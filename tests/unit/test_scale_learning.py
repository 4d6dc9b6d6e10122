"""Scale-out learns its models as one process does: one learner fed by every actor task."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from detector.assembly import build_learner, models_directory
from detector.config import PipelineConfig
from detector.events.model import Event
from detector.events.ordering import in_event_time_order
from detector.generator import generate
from detector.scale.learning import LEARNER_FILE, restore_learner, save_learner
from detector.scale.stage import ScaledDaemon
from detector.scale.tasks import Task
from detector.scoring import load_models
from detector.sources.record import Position, RawRecord


def scaled(state: Path | None, **models: object) -> PipelineConfig:
    service: dict[str, object] = {"scale": {"enabled": True, "partitions": 3}}
    if state is not None:
        service["state_dir"] = str(state)
    return PipelineConfig.model_validate({"service": service, "models": models})


@pytest.fixture(scope="module")
def events() -> list[Event]:
    """Four days of a generated organisation (twenty people), normalized, in event time."""
    world = generate(seed=7, days=4, people=20).records
    records = [
        RawRecord(orjson.dumps(record.doc), Position("world", 0, number))
        for number, record in enumerate(world)
    ]
    daemon = ScaledDaemon(scaled(None, enabled=False), [])
    return in_event_time_order(daemon.pipeline.normalize(records).events)


def actor_tasks(daemon: ScaledDaemon, count: int = 2) -> list[Task]:
    tasks = [daemon.factory.task("actor", partition) for partition in range(count)]
    daemon.tasks.update({("stage", task.partition): task for task in tasks})
    return tasks


def feed(tasks: list[Task], events: list[Event]) -> None:
    """Each actor's events to one task, as the actor stage's partitions split them."""
    for task in tasks:
        mine = [e for e in events if hash(e.actor) % len(tasks) == task.partition]
        for start in range(0, len(mine), 500):
            task.process(mine[start : start + 500], {})


def test_a_replica_without_a_models_dir_learns_with_the_topology_of_models(
    tmp_path: Path,
) -> None:
    learning = ScaledDaemon(scaled(tmp_path / "state"), [])
    fixed = ScaledDaemon(scaled(tmp_path / "fixed", dir="bundled"), [])
    assert learning.learning is not None and learning.pipeline.learner is not None
    assert learning.factory.learner is learning.pipeline.learner
    # The stages the models' features need are planned before the first generation.
    assert learning.topology == fixed.topology
    assert "learning models in" in learning._models_line()
    # No state directory: nowhere to learn, rules only (as the unscaled daemon).
    assert ScaledDaemon(scaled(None), []).pipeline.learner is None


def test_actor_tasks_feed_one_learner_that_their_snapshots_leave_out(
    tmp_path: Path, events: list[Event]
) -> None:
    daemon = ScaledDaemon(scaled(tmp_path / "state"), [])
    learner = daemon.pipeline.learner
    assert learner is not None
    tasks = actor_tasks(daemon)
    assert all(task.pipeline.learner is learner for task in tasks)
    feed(tasks, events)
    rows = sum(learner.history.rows().values())
    assert rows > 0, "the actor tasks' rows did not reach the process's history"
    assert learner.first_seen == min(event.time for event in events)
    assert learner.latest == max(event.time for event in events)
    # A task's state moves with its partition; the learner stays with the process.
    snapshot = tasks[0].snapshot()
    assert snapshot["learner"] == {}
    learner.first_seen = datetime(2020, 1, 1, tzinfo=UTC)
    tasks[0].restore(snapshot, offset=10)
    assert learner.first_seen == datetime(2020, 1, 1, tzinfo=UTC)
    assert sum(learner.history.rows().values()) == rows


def test_a_new_generation_scores_in_every_actor_task_from_the_next_batch(
    tmp_path: Path,
) -> None:
    daemon = ScaledDaemon(scaled(tmp_path / "state"), [])
    tasks = actor_tasks(daemon)
    ip_task = daemon.factory.task("ip", 0)
    assert all(task.pipeline.models is daemon.factory.models for task in tasks)
    assert not daemon.factory.models  # no generation yet: nothing scores
    bundled = models_directory(scaled(None, dir="bundled"))
    assert bundled is not None
    generation = load_models(bundled)
    daemon.pipeline.use_models(generation)  # what installing a finished training does
    daemon._share_models()
    assert all(task.pipeline.models is generation for task in tasks)
    assert daemon.factory.task("actor", 2).pipeline.models is generation  # and new tasks
    assert ip_task.pipeline.scorer is None  # only the actor stage scores


def test_the_learner_state_is_saved_beside_its_history_and_restored(
    tmp_path: Path, events: list[Event]
) -> None:
    state = tmp_path / "state"
    daemon = ScaledDaemon(scaled(state), [])
    learner, learning = daemon.pipeline.learner, daemon.learning
    assert learner is not None and learning is not None
    feed(actor_tasks(daemon), events)
    moment = events[len(events) // 2].time
    learner.exclude([("alert-1", events[0].actor, moment, moment)])
    save_learner(learning, learner, state)
    again = ScaledDaemon(scaled(state), []).pipeline.learner
    assert again is not None
    assert restore_learner(again, state, lambda *a, **k: None)
    assert again.snapshot() == learner.snapshot()
    assert again.history.rows() == learner.history.rows()


def test_an_unreadable_learner_file_is_logged_and_learning_goes_on(tmp_path: Path) -> None:
    learner = build_learner(PipelineConfig(), tmp_path)
    lines: list[str] = []

    def log(line: str, /, *, level: int = logging.INFO, **context: object) -> None:
        lines.append(line)

    assert not restore_learner(learner, tmp_path, log)
    assert lines == []  # no file: a first start
    (tmp_path / LEARNER_FILE).write_bytes(b"{not json")
    assert not restore_learner(learner, tmp_path, log)
    assert len(lines) == 1 and "learning goes on from the history" in lines[0]
