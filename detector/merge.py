"""The partitions one consumer owns, merged in event-time order, in bounded memory.

A consumer catching up on a backlog gets long runs of one partition per poll
(kafka-python drains one partition's fetch at a time). Detected in that order,
one partition's events move the watermark hours ahead and the other
partitions' events all count as late. :class:`PartitionMerge` holds what was
polled, per partition, and gives it back oldest first, as Kafka Streams does:

- the next record is always the head of the partition whose head is oldest;
- while a partition that may still hold older records (``pending``: not known
  to be caught up, KIP-695) has nothing buffered, nothing timed is released:
  the merge waits for it, at most ``wait_s`` per wait (0: never waits); a wait
  that runs out is counted in :attr:`PartitionMerge.waits_timed_out` and that
  partition is not waited for again until it delivers;
- a record without an event time (a dead letter, a skipped non-event) at the
  head of its partition passes at once;
- at most ``capacity`` records are held (the caller polls no more than there
  is room for): at the cap the oldest batch goes out even while a partition is
  waited for (its records counted in :attr:`PartitionMerge.forced`).

Records leave each partition in the order they were added, so what has left a
partition is always a prefix of it: committing the offset after the last
record that left (and was processed) never skips a held record.

It sits beside :mod:`detector.daemon`, not in ``sources/``: its order comes
from normalized events (the events layer, below the sources), and it knows
neither Kafka nor events — partitions and times are plain values.

>>> from datetime import datetime, UTC
>>> merge = PartitionMerge[str, str](wait_s=0, capacity=10)
>>> merge.add("p0", [("a", datetime(2026, 1, 1, 0, 5, tzinfo=UTC))])
>>> merge.add("p1", [("b", datetime(2026, 1, 1, 0, 1, tzinfo=UTC)), ("c", None)])
>>> merge.take(10, pending=())
['b', 'c', 'a']
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

__all__ = ["PartitionMerge"]

P = TypeVar("P", bound=Hashable)
T = TypeVar("T")

_UNTIMED = datetime(1, 1, 2, tzinfo=UTC)
"""The order key of a record without an event time: before any time, so it passes at once.
The others' keys are their times themselves, aware datetimes, which compare in C (a day
after the first one: compared with a time in another zone, its offset cannot overflow)."""


@dataclass(slots=True)
class _Buffer(Generic[T]):
    records: deque[tuple[datetime, T]] = field(default_factory=deque)
    waiting_since: float | None = None
    """When the merge began to hold records back for this (empty) partition."""
    given_up: bool = False
    """Its wait ran out: not waited for again until it delivers records."""


class PartitionMerge(Generic[P, T]):
    """Per-partition buffers of polled records, released oldest first (see the module).

    ``clock``: monotonic seconds (tests pass their own).
    """

    def __init__(
        self, *, wait_s: float, capacity: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1 record")
        self.wait_s = max(0.0, wait_s)
        self.capacity = capacity
        self._clock = clock
        self._buffers: dict[P, _Buffer[T]] = {}
        self._size = 0
        self.waits_timed_out = 0
        """Waits for an empty partition that ran out (its older records, if any, may be late)."""
        self.forced = 0
        """Records released while a partition was waited for, because the buffer was full."""

    def __len__(self) -> int:
        return self._size

    def held(self, partition: P) -> int:
        """Records buffered for ``partition``."""
        buffer = self._buffers.get(partition)
        return len(buffer.records) if buffer is not None else 0

    def add(self, partition: P, records: Iterable[tuple[T, datetime | None]]) -> None:
        """Append ``partition``'s next records (in offset order) with their event times."""
        buffer = self._buffers.setdefault(partition, _Buffer())
        before = len(buffer.records)
        buffer.records.extend(
            (_UNTIMED if moment is None else moment, record) for record, moment in records
        )
        self._size += len(buffer.records) - before
        if buffer.records:
            buffer.waiting_since, buffer.given_up = None, False

    def drop(self, partitions: Iterable[P]) -> int:
        """Forget ``partitions`` (revoked) and their records; how many records were dropped."""
        dropped = 0
        for partition in partitions:
            buffer = self._buffers.pop(partition, None)
            if buffer is not None:
                dropped += len(buffer.records)
        self._size -= dropped
        return dropped

    def clear(self) -> int:
        """Forget every buffered record (shutdown); how many there were."""
        return self.drop(list(self._buffers))

    def take(self, limit: int, *, pending: Collection[P]) -> list[T]:
        """Up to ``limit`` records, oldest first, as far as the order is known.

        ``pending``: the partitions that may hold records not added yet (assigned
        and not caught up). Stops early when one of them has nothing buffered
        and its wait has not run out, unless the buffer was full: then the
        oldest ``limit`` records go, whatever is waited for.
        """
        now = self._clock()
        waiting = self._waiting(pending, now)
        heads = [
            (buffer.records[0][0], order, partition)
            for order, (partition, buffer) in enumerate(self._buffers.items())
            if buffer.records
        ]
        heapq.heapify(heads)
        # A full buffer gives a whole batch, not one record per call: the next
        # poll then has room for more than a record.
        full = self._size >= self.capacity
        out: list[T] = []
        buffers, replace = self._buffers, heapq.heapreplace
        while heads and len(out) < limit:
            key, order, partition = heads[0]
            if key is not _UNTIMED and waiting:
                if not full:
                    break
                self.forced += 1
            buffer = buffers[partition]
            records = buffer.records
            out.append(records.popleft()[1])
            if records:
                replace(heads, (records[0][0], order, partition))
                continue
            heapq.heappop(heads)
            if partition in pending and self.wait_s > 0:
                buffer.waiting_since, buffer.given_up = now, False
                waiting = True
        self._size -= len(out)
        return out

    def wait_left(self, pending: Collection[P]) -> float | None:
        """Seconds until the current wait runs out; None when nothing is held back."""
        if not self._size or self.wait_s <= 0:
            return None
        now = self._clock()
        lefts = [
            buffer.waiting_since + self.wait_s - now
            for partition in pending
            if (buffer := self._buffers.get(partition)) is not None
            and not buffer.records
            and not buffer.given_up
            and buffer.waiting_since is not None
        ]
        return max(0.0, min(lefts)) if lefts else None

    def _waiting(self, pending: Collection[P], now: float) -> bool:
        """Whether an empty pending partition is still waited for; starts and ends waits."""
        if self.wait_s <= 0 or not self._size:
            return False
        for partition, buffer in self._buffers.items():
            if partition not in pending:  # caught up: a later wait starts afresh
                buffer.waiting_since, buffer.given_up = None, False
        waiting = False
        for partition in pending:
            buffer = self._buffers.setdefault(partition, _Buffer())
            if buffer.records or buffer.given_up:
                continue
            if buffer.waiting_since is None:
                buffer.waiting_since = now
            if now - buffer.waiting_since >= self.wait_s:
                buffer.given_up = True
                self.waits_timed_out += 1
            else:
                waiting = True
        return waiting
