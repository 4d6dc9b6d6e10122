"""The marks a replica sends after each poll: how far each of its producers has got.

A producer is a vendor partition's reader (``events[3]``) or a task of a stage
before the actor's (``ip/3``); its mark tells every partition it writes to that
it will send nothing older (:mod:`detector.scale.reorder`, as Flink's
watermarks):

- a vendor partition's reader has passed the newest event time it processed
  from that partition (in event time: the intake merges them); caught up and
  without a record for ``idle_after_s``, it is *idle*: not waited for (caught up
  alone is not enough: a partition streamed into is caught up between records),
  counted from the first poll after it was assigned: a replica waiting in a
  rebalance reads nothing, and its consumer's view of what is caught up is stale.
  Not the replica's newest time over all its partitions: a partition taken over
  from a replica that died is read again from that replica's commit, well
  behind the others;
- a task has passed its own input's watermark (the lowest of its producers'
  marks and of the records it holds); idle when all of them are.

A mark goes when it changes, and every mark again every ``every_s``: a
partition's new owner, or a restarted reader, hears every producer at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from detector.events.model import Event
from detector.scale.reorder import NEVER
from detector.scale.tasks import Task
from detector.scale.topology import Topology
from detector.scale.wire import Outgoing, broadcast_mark, source_producer

__all__ = ["Marker"]

Partition = tuple[str, int]
"""(topic, partition)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The time of an idle mark from a producer that never passed anything."""


class Marker:
    """Decides the marks to send after a poll (see the module)."""

    def __init__(
        self,
        topology: Topology,
        *,
        idle_after_s: float,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topology = topology
        self.idle_after_s = idle_after_s
        self.every_s = every_s
        self._clock = clock
        self._passed: dict[Partition, datetime] = {}
        """The newest event time processed, per owned vendor partition."""
        self._owned: set[Partition] = set()
        self._quiet_since: dict[Partition, float] = {}
        """Per owned vendor partition, when it was last seen with a record or behind."""
        self._sent: dict[str, tuple[datetime, bool]] = {}
        self._resend_at = 0.0

    def passed(self, partition: Partition, at: datetime) -> None:
        """Events of vendor ``partition`` up to ``at`` were processed (once per batch)."""
        before = self._passed.get(partition)
        if before is None or at > before:
            self._passed[partition] = at
        self._quiet_since[partition] = self._clock()

    def processed(self, events: Iterable[Event]) -> None:
        """A batch's vendor events were processed: each partition's newest passed, once."""
        newest: dict[Partition, datetime] = {}
        for event in events:
            if event.position is not None:
                key = (event.position.stream, event.position.partition or 0)
                newest[key] = max(newest.get(key, event.time), event.time)
        for key, at in newest.items():
            self.passed(key, at)

    def marks(
        self,
        caught_up: Mapping[Partition, bool],
        tasks: Mapping[Partition, Task],
        watermark: Callable[[Partition], datetime | None],
    ) -> list[Outgoing]:
        """The marks due: ``caught_up``: each owned vendor partition, whether it is."""
        now = self._clock()
        resend = now >= self._resend_at
        if resend:
            self._resend_at = now + self.every_s
        out: list[Outgoing] = []
        first = self.topology.topic(self.topology.stages[0])
        for key, done in caught_up.items():
            if key not in self._owned:
                continue  # revoked, or assigned by a rebalance still under way
            if not done:
                self._quiet_since[key] = now
            idle = done and now - self._quiet_since.setdefault(key, now) >= self.idle_after_s
            passed = self._passed.get(key)
            if idle or passed is not None:
                at = passed or _EPOCH
                name = source_producer(key)
                if self._due(name, at, idle, resend):
                    partitions = self.topology.partitions
                    out.extend(broadcast_mark(name, at, [first], partitions, idle=idle))
        for key, task in tasks.items():
            passed = watermark(key)
            if passed == NEVER or self.topology.after(task.stage) is None:
                continue  # a producer of its own not heard from yet; or the last stage
            at = passed or task.passed or _EPOCH
            if self._due(task.name, at, passed is None, resend):
                out.extend(task.marks(at, idle=passed is None))
        return out

    def own(self, partitions: list[Partition]) -> None:
        """Vendor partitions assigned to this replica: marked from the next poll on."""
        self._owned.update(partitions)
        for key in partitions:
            self._quiet_since.pop(key, None)

    def forget(self, partitions: list[Partition]) -> None:
        """Revoked vendor partitions: no longer this replica's to mark."""
        self._owned.difference_update(partitions)
        for key in partitions:
            self._quiet_since.pop(key, None)
            self._passed.pop(key, None)

    def _due(self, producer: str, at: datetime, idle: bool, resend: bool) -> bool:
        if not resend and self._sent.get(producer) == (at, idle):
            return False
        self._sent[producer] = (at, idle)
        return True
