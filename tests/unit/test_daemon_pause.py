"""A full disk pauses the daemon instead of crashing it, and space coming back resumes it.

The sink is the real webhook sink against a real HTTP receiver that is down (503), with
its spool on a full device (the segment is a symlink to ``/dev/full``: the kernel's own
``ENOSPC``). The source is a stub with the calls pausing uses; the real consumer is in
tests/integration/test_daemon_disk.py. Checkpoints that fail, or take long to write, are
here too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition

import detector.checkpointing as checkpointing
from detector.checkpoint import CheckpointWrite
from detector.config import load_config
from detector.daemon import Daemon
from detector.delivery import Abandoned
from detector.metrics import Metrics
from detector.sinks.base import Sink
from detector.sources.record import Position, RawRecord
from tests.full_disk import free
from tests.receiver import running_receiver
from tests.unit.sinks.test_webhook_disk import fill_disk
from tests.unit.sinks.test_webhook_format import make_alert
from tests.unit.sinks.test_webhook_sink import make_sink, sample, wait_for

PARTITIONS = {("audit", 0), ("audit", 1)}


class PausedSource:
    """Records what the daemon asks while paused; a poll waits a moment and reads nothing."""

    def __init__(self) -> None:
        self.paused: set[tuple[str, int]] = set()
        self.polls = 0
        self.unread_records: list[RawRecord] = []
        self.surprise: list[RawRecord] = []  # records a rebalance hands over inside a poll

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(topic, partition) for topic, partition in PARTITIONS}

    def assigned(self) -> set[tuple[str, int]]:
        return set(PARTITIONS)

    def pause_only(self, partitions: Collection[tuple[str, int]]) -> None:
        self.paused = set(partitions)

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        self.polls += 1
        threading.Event().wait(min(timeout_s, 0.05))  # a real poll waits its timeout (1 s)
        records, self.surprise = self.surprise, []
        return records

    def unread(self, records: Sequence[RawRecord]) -> None:
        self.unread_records.extend(records)


def make_daemon(tmp_path: Path, sinks: list[Sink], lines: list[str], metrics: Metrics) -> Daemon:
    config_path = tmp_path / "ciwatch.yaml"
    config_path.write_text("models: {enabled: false}\n")
    return Daemon(load_config(config_path), sinks, metrics=metrics, log=lines.append)


def in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_a_full_disk_pauses_consumption_and_resumes_when_space_returns(tmp_path: Path) -> None:
    segment = fill_disk(tmp_path / "spool")
    lines: list[str] = []
    with running_receiver() as receiver:
        receiver.answers = [(503, {})] * 3
        metrics = Metrics()
        sink = make_sink(receiver, tmp_path, metrics, batch_size=1)
        daemon = make_daemon(tmp_path, [sink], lines, metrics)
        source = PausedSource()
        source.surprise = [RawRecord(b"{}", Position("audit", 7, 2))]
        daemon.source = source  # type: ignore[assignment]
        assert daemon.ready()
        alerts = [make_alert(f"user{i}") for i in range(3)]
        delivering, errors = in_thread(lambda: daemon._deliver(alerts))
        wait_for(lambda: source.polls >= 5, "polls while paused", lambda: None)
        assert delivering.is_alive()  # _process has not reached its commit
        assert sample(metrics, "ciwatch_paused", reason="disk") == 1
        assert not daemon.ready() and sample(metrics, "ciwatch_ready") == 0
        assert source.paused == PARTITIONS  # polled, but reading nothing
        assert source.unread_records == [RawRecord(b"{}", Position("audit", 7, 2))]
        assert sample(metrics, "ciwatch_spool_write_errors_total", sink="webhook") >= 2
        assert [line for line in lines if "paused" in line] == [lines[0]]  # once, not per retry
        assert "No space left on device" in lines[0]

        free(segment)
        delivering.join(timeout=20)
        assert not delivering.is_alive() and errors == []
        wait_for(lambda: sink.depth == 0, "the spool to drain", daemon.retry_spooled)
        assert receiver.first_sends() == {alert.id for alert in alerts}
    assert sample(metrics, "ciwatch_paused", reason="disk") == 0
    assert daemon.ready()
    assert sum("resumed" in line for line in lines) == 1
    assert sum("paused" in line for line in lines) == 1


def test_a_stop_while_paused_commits_nothing(tmp_path: Path) -> None:
    fill_disk(tmp_path / "spool")
    lines: list[str] = []
    with running_receiver() as receiver:
        receiver.answers = [(503, {})] * 100
        metrics = Metrics()
        sink = make_sink(receiver, tmp_path, metrics)
        daemon = make_daemon(tmp_path, [sink], lines, metrics)
        source = PausedSource()
        daemon.source = source  # type: ignore[assignment]
        delivering, errors = in_thread(lambda: daemon._deliver([make_alert("alice")]))
        wait_for(lambda: source.polls >= 2, "polls while paused", lambda: None)
        daemon.stop("SIGTERM")
        delivering.join(timeout=20)
        sink.close()  # cannot spool either: says so, does not raise
    [abandoned] = errors
    assert isinstance(abandoned, Abandoned)  # _process never reaches its commit
    assert "not committed" in str(abandoned)


def test_checkpoint_failures_are_counted_and_logged_once(tmp_path: Path) -> None:
    config_path = tmp_path / "ciwatch.yaml"
    state = tmp_path / "state"
    config_path.write_text(f"models: {{enabled: false}}\nservice: {{state_dir: {state}}}\n")
    lines: list[str] = []
    daemon = Daemon(load_config(config_path), [], log=lines.append)
    source = PausedSource()
    # The checkpoint's temporary file lands on a full device.
    temporary = state / f".checkpoint.json.{os.getpid()}.tmp"
    temporary.symlink_to("/dev/full")
    for _ in range(3):
        daemon._save_checkpoint(source)  # type: ignore[arg-type]
        if not temporary.is_symlink():  # the failed write's temporary file was removed
            temporary.symlink_to("/dev/full")
    temporary.unlink()
    daemon._save_checkpoint(source)  # type: ignore[arg-type]
    snapshots = daemon.metrics.registry.get_sample_value
    assert snapshots("ciwatch_state_snapshots_total", {"status": "error"}) == 3
    assert snapshots("ciwatch_state_snapshots_total", {"status": "ok"}) == 1
    assert sum("checkpoint failed" in line for line in lines) == 1
    assert sum("checkpoint written again" in line for line in lines) == 1
    assert daemon.checkpoint is not None and daemon.checkpoint.load() is not None


class SteppedClock:
    """``time`` for a module: monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


def test_a_slow_checkpoint_spaces_the_next_ones_out_and_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = tmp_path / "ciwatch.yaml"
    state = tmp_path / "state"
    config_path.write_text(
        f"models: {{enabled: false}}\nservice: {{state_dir: {state}, snapshot_every: 30s}}\n"
    )
    lines: list[str] = []
    daemon = Daemon(load_config(config_path), [], log=lines.append)
    clock = SteppedClock()
    monkeypatch.setattr(checkpointing, "time", clock)
    assert daemon.checkpoint is not None
    begin = daemon.checkpoint.begin

    def slow_begin(*args: Any) -> CheckpointWrite:
        clock.now += 5.5  # taking and writing a checkpoint of a cap in the millions
        return begin(*args)

    daemon._save_checkpoint(PausedSource())  # type: ignore[arg-type]
    assert daemon._snapshot_interval() == 30.0  # a quick write: every snapshot_every
    monkeypatch.setattr(daemon.checkpoint, "begin", slow_begin)
    for _ in range(2):
        daemon._save_checkpoint(PausedSource())  # type: ignore[arg-type]
        assert daemon._snapshot_interval() == pytest.approx(5.5 * 9)  # a tenth of the time
    [spaced] = [line for line in lines if "spaced" in line]
    assert "took 5.5 s" in spaced and "50 s apart" in spaced and "snapshot_every" in spaced
    assert daemon.checkpoint.load() is not None
