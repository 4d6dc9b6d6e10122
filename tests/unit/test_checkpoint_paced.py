"""Periodic checkpoints taken between batches and written a part at a time after later ones
(:mod:`detector.checkpointing`): the file holds the moment it was taken, and one in flight
gives way to a revocation or to a checkpoint written whole."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import TopicPartition

import detector.checkpoint as checkpoint_module
from detector.config import PipelineConfig, load_config
from detector.daemon import Daemon
from detector.events.model import Event
from detector.pipeline import Pipeline
from tests.integration.running import wait_for
from tests.unit.features.helpers import spelled_out

HELD = ("audit", 0)


class Source:
    """What the daemon asks a source when it checkpoints: the partitions it holds."""

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(*HELD)}


class TickingClock:
    """``time`` for the checkpoint module: each reading is ``tick`` seconds after the last."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 1_000.0, tick

    def monotonic(self) -> float:
        self.now += self.tick
        return self.now


def configured(tmp_path: Path) -> PipelineConfig:
    path = tmp_path / "ciwatch.yaml"
    path.write_text(f"service: {{state_dir: {tmp_path / 'state'}}}\n")
    return load_config(path)


def fed(pipeline: Pipeline, world_events: list[Event]) -> None:
    for start in range(0, len(world_events), 500):
        pipeline.detect(world_events[start : start + 500])


def plain(state: Any) -> Any:
    """A pipeline state as JSON gives it back, its features spelled out."""
    data = orjson.loads(orjson.dumps(state))
    data["features"] = spelled_out(data["features"])
    return data


def temporaries(daemon: Daemon) -> list[Path]:
    assert daemon.checkpoint is not None
    return list(daemon.checkpoint.path.parent.glob(".checkpoint.json.*"))


def test_a_checkpoint_holds_the_moment_it_was_taken_though_written_after_later_batches(
    tmp_path: Path, world_events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module, "time", TickingClock(0.004))  # a part per pace
    daemon = Daemon(configured(tmp_path), [])
    assert daemon.checkpoints is not None and daemon.checkpoint is not None
    half = len(world_events) // 2
    fed(daemon.pipeline, world_events[:half])
    taken = plain(daemon.pipeline.snapshot())
    daemon._offsets = {HELD: 100, ("audit", 1): 7}  # partition 1 was revoked since
    daemon._checkpoint_due(Source())  # type: ignore[arg-type]
    daemon._offsets[HELD] = 200
    fed(daemon.pipeline, world_events[half:])
    assert plain(daemon.pipeline.snapshot())["features"] != taken["features"]
    paces = 0
    while daemon.checkpoints.writing:
        if not daemon.checkpoints.committing:
            assert not daemon.checkpoint.path.exists()  # in place only once whole
            paces += 1
        daemon.checkpoints.pace(0.0)
    assert paces > 2 and not temporaries(daemon)
    saved = daemon.checkpoint.load()
    assert saved is not None and saved[1] == {HELD: 100}
    restored = Daemon(configured(tmp_path), []).pipeline  # learning, as the daemon's
    restored.restore(saved[0])
    assert plain(restored.snapshot()) == taken


def test_the_parts_written_after_a_batch_take_a_ninth_of_its_time(
    tmp_path: Path, world_events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = Daemon(configured(tmp_path), [])
    fed(daemon.pipeline, world_events[:2000])
    assert daemon.checkpoint is not None and daemon.checkpoints is not None
    budgets: list[float | None] = []
    begin = daemon.checkpoint.begin

    def recorded(*args: Any) -> checkpoint_module.CheckpointWrite:
        write = begin(*args)
        advance = write.advance

        def recorded_advance(seconds: float | None) -> int | None:
            budgets.append(seconds)
            return advance(seconds) if seconds is None else None

        monkeypatch.setattr(write, "advance", recorded_advance)
        return write

    monkeypatch.setattr(daemon.checkpoint, "begin", recorded)
    daemon._checkpoint_due(Source())  # type: ignore[arg-type]
    daemon.checkpoints.pace(0.9)
    daemon.checkpoints.pace(0.0)  # an idle loop: a few ms at least
    daemon.checkpoints.pace(0.45)
    assert budgets == pytest.approx([0.1, 0.005, 0.05])
    assert daemon.checkpoints.writing
    daemon._save_checkpoint(Source())  # type: ignore[arg-type]
    assert budgets[-1] is None and not daemon.checkpoints.writing


def daemon_fed(
    tmp_path: Path, world_events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> Daemon:
    """A daemon with some state, whose checkpoints write a part per pace."""
    monkeypatch.setattr(checkpoint_module, "time", TickingClock(0.004))
    daemon = Daemon(configured(tmp_path), [])
    fed(daemon.pipeline, world_events[:1000])
    daemon._offsets = {HELD: 100}
    return daemon


def test_a_revocation_drops_the_checkpoint_in_flight(
    tmp_path: Path, world_events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_fed(tmp_path, world_events, monkeypatch)
    assert daemon.checkpoint is not None and daemon.checkpoints is not None
    daemon._save_checkpoint(Source())  # type: ignore[arg-type]
    before = daemon.checkpoint.path.read_bytes()
    daemon._offsets = {HELD: 200}
    daemon._checkpoint_due(Source())  # type: ignore[arg-type]
    daemon.checkpoints.pace(0.0)
    assert temporaries(daemon)  # a part written
    daemon._revoked([HELD])
    assert not daemon.checkpoints.writing and not temporaries(daemon)
    assert daemon.checkpoint.path.read_bytes() == before


def test_a_checkpoint_written_whole_replaces_the_one_in_flight(
    tmp_path: Path, world_events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_fed(tmp_path, world_events, monkeypatch)
    assert daemon.checkpoint is not None and daemon.checkpoints is not None
    daemon._checkpoint_due(Source())  # type: ignore[arg-type]
    daemon.checkpoints.pace(0.0)
    fed(daemon.pipeline, world_events[1000:2000])
    daemon._offsets = {HELD: 200}
    daemon._save_checkpoint(Source())  # type: ignore[arg-type]  # a first commit, a clean stop
    assert not daemon.checkpoints.writing and not temporaries(daemon)
    saved = daemon.checkpoint.load()
    assert saved is not None and saved[1] == {HELD: 200}
    restored = Daemon(configured(tmp_path), []).pipeline  # learning, as the daemon's
    restored.restore(saved[0])
    assert plain(restored.snapshot()) == plain(daemon.pipeline.snapshot())


def test_the_loop_goes_on_while_a_written_checkpoint_is_fsynced(
    tmp_path: Path, world_events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fsync waits for the disk on a thread of its own, not in a pace."""
    daemon = daemon_fed(tmp_path, world_events, monkeypatch)
    checkpoints = daemon.checkpoints
    assert daemon.checkpoint is not None and checkpoints is not None
    disk = threading.Event()
    fsync = os.fsync

    def slow_fsync(descriptor: int) -> None:
        assert disk.wait(timeout=30), "the disk was never let go"
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    daemon._checkpoint_due(Source())  # type: ignore[arg-type]
    while not checkpoints.committing:
        checkpoints.pace(0.0)
    for _ in range(3):  # each returns at once: the loop is not held by the disk
        assert not checkpoints.pace(0.0)
    assert not daemon.checkpoint.path.exists()
    disk.set()
    wait_for(lambda: checkpoints.pace(0.0), "the checkpoint in place")
    saved = daemon.checkpoint.load()
    assert saved is not None and saved[1] == {HELD: 100} and not temporaries(daemon)


def test_a_revocation_while_the_last_part_is_put_in_place_finishes_it(
    tmp_path: Path, world_events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_fed(tmp_path, world_events, monkeypatch)
    assert daemon.checkpoint is not None and daemon.checkpoints is not None
    daemon._checkpoint_due(Source())  # type: ignore[arg-type]
    while not daemon.checkpoints.committing:
        daemon.checkpoints.pace(0.0)
    daemon._revoked([HELD])  # as if it had been written just before the revocation
    assert not daemon.checkpoints.writing and not temporaries(daemon)
    saved = daemon.checkpoint.load()
    assert saved is not None and saved[1] == {HELD: 100}
