"""The tasks a replica owns, and their state in the changelogs as partitions come and go.

A stage partition's state moves with it (:mod:`detector.scale.stage`): on
assignment its task is restored from the changelog partition of the same number
(a fresh task if there is none, or none readable), what its reorder held goes
back in the inbox (:mod:`detector.scale.held`), and the partition is read on
from the snapshot's offset; on revocation, every ``snapshot_every`` and at a
clean stop the task is saved with what its reorder holds and the offset after
the last record read.
"""

from __future__ import annotations

import logging
from typing import Any

from detector.errors import CiwatchError, SourceError, UnreachableError
from detector.logs import LineLog
from detector.scale.changelog import Changelog
from detector.scale.figures import TaskFigures
from detector.scale.held import KEY as HELD
from detector.scale.held import read_held
from detector.scale.inbox import Inbox
from detector.scale.tasks import Task, TaskFactory

__all__ = ["OwnedTasks"]

Partition = tuple[str, int]
"""(topic, partition)."""


class OwnedTasks:
    """The owned stage partitions' tasks, restored and saved (see the module).

    ``changelogs`` (stage → its changelog) and ``inbox`` are set once the
    replica is connected and consuming.
    """

    def __init__(self, factory: TaskFactory, figures: TaskFigures, log: LineLog) -> None:
        self.factory = factory
        self.figures = figures
        self._log = log
        self.tasks: dict[Partition, Task] = {}
        self.saved: dict[Partition, int] = {}
        """The offset of each owned task's newest changelog snapshot."""
        self.changelogs: dict[str, Changelog] = {}
        self.inbox: Inbox | None = None
        self.failure: CiwatchError | None = None
        """A changelog that could not be read on assignment: raised by the next batch."""

    def assign(self, partitions: list[tuple[Partition, str]]) -> dict[Partition, int]:
        """Restore the tasks of newly assigned (partition, stage) pairs; where each resumes."""
        seeks: dict[Partition, int] = {}
        for key, stage in partitions:
            if key in self.tasks:
                continue
            if self.inbox is not None:
                self.inbox.open(key)
            try:
                task = self._restored(key, stage)
            except CiwatchError as exc:
                self.failure = exc  # the consumer callback must not raise: the loop does
                continue
            self.tasks[key] = task
            self.figures.start(key, task)
            if task.offset is not None:
                seeks[key] = self.saved[key] = task.offset
        return seeks

    def _restored(self, key: Partition, stage: str) -> Task:
        """The partition's task from its changelog, what its reorder held put back in the
        inbox; a fresh task if none (or none readable)."""
        partition = key[1]
        task = self.factory.task(stage, partition)
        changelog = self.changelogs[stage]
        try:
            found = changelog.restore(partition)
            if found is not None:
                state, offset = found
                held = read_held(state.pop(HELD, None), key)  # none in older snapshots
                task.restore(state, offset)
                if self.inbox is not None:
                    self.inbox.restore(key, held, offset)
        except UnreachableError:
            raise
        except (SourceError, KeyError, TypeError, ValueError, AttributeError) as exc:
            message = f"changelog {changelog.topic}[{partition}] not restored ({exc}): afresh"
            self._log(message[:300], level=logging.ERROR)
            task = self.factory.task(stage, partition)
        return task

    def revoke(self, partitions: list[Partition]) -> None:
        """Save the revoked tasks for their next owner and forget them."""
        for key in partitions:
            task = self.tasks.pop(key, None)
            if task is not None:
                try:
                    self.save(key, task)
                except CiwatchError as exc:
                    # The next owner restores the older snapshot and reads on from its offset.
                    self._log(f"revoked task not saved: {exc}", level=logging.WARNING)
            self.saved.pop(key, None)
            self.figures.stop(key)

    def save_changed(self) -> None:
        """Save every owned task that moved on since its last snapshot."""
        for key, task in list(self.tasks.items()):
            point = self.inbox.point(key) if self.inbox is not None else None
            if point is not None and (task.changed or self.saved.get(key) != point):
                self.save(key, task)

    def save(self, key: Partition, task: Task) -> None:
        """Save the task with what its partition's reorder holds; durable when this returns,
        so the partition's commit may then pass the held records."""
        found: tuple[int, dict[str, Any] | None] | None = None
        if self.inbox is not None:
            found = self.inbox.checkpoint(key)
        elif task.offset is not None:  # not consuming (yet): nothing is held
            found = task.offset, None
        if found is None:
            return  # nothing read yet: nothing to keep
        offset, held = found
        state = task.snapshot()
        if held is not None:
            state[HELD] = held
        self.changelogs[task.stage].save(task.partition, state, offset)
        task.offset, task.saved, task.changed = offset, True, False
        self.saved[key] = offset
        if self.inbox is not None:
            self.inbox.saved(key, offset)

    def late_and_duplicates(self) -> tuple[int, dict[str, int]]:
        """Late events and duplicates per source, summed over the owned tasks since the start."""
        late, duplicates = 0, dict[str, int]()
        for task in self.tasks.values():
            stats = task.pipeline.stats
            late += stats.late_events
            for source, count in stats.duplicates.items():
                duplicates[source] = duplicates.get(source, 0) + count
        return late, duplicates

    def close(self) -> None:
        for changelog in self.changelogs.values():
            changelog.close()
