"""One partition of an internal topic, written by several producers, read back in event time.

A stage's task hands on what it processed in event time, but the partition a
record lands on downstream is written by every upstream task (the IP stage's
twelve partitions, on three replicas at three speeds): interleaved, one
actor's events may arrive out of order by more than the allowed lateness and
miss the rules. As Flink does with watermarks, each record names its
producer (``from``) and each producer's records are in event time; a producer
also sends *marks* (the event time it has passed) to every partition after a
batch. :class:`Reorder` keeps one queue per producer and releases the oldest
head only while no producer that might still send something older is silent:
a producer with an empty queue whose mark is older than that head. Such a
producer is waited for at most ``wait_s`` (wall clock), then not again until
it sends (it may be gone: revoked, crashed); that wait is counted. A producer
whose own input is caught up says so with an *idle* mark (Flink's idleness): it
is not waited for until it sends a record again.

What is held while a producer is waited for is bounded by ``max_held``: past
it, the oldest heads go although the wait goes on (counted in
:attr:`Reorder.forced`, each run of them an *episode*), as the vendor merge's
full buffer does. Kafka Streams would pause the partition instead, but here the
mark waited for travels in the same partition: pausing it would hold that back
too. A laggard producer's later records older than what went may be late, as
after a timeout; what it sends newer is still put in order.

Held records were not processed: :meth:`Reorder.lowest_offset` is the first
offset of the partition still held. What is held (:meth:`Reorder.held`) and each
producer's mark (:meth:`Reorder.marks`) go into the task's changelog snapshot
(:mod:`detector.scale.held`), and are added back on restore: a held record
then no longer holds back the commit of its partition.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

__all__ = ["NEVER", "Reorder"]

T = TypeVar("T")
NEVER = datetime.min.replace(tzinfo=UTC)
"""The mark of a producer not heard from yet: before everything."""


@dataclass(slots=True)
class _Producer(Generic[T]):
    queue: deque[tuple[datetime, int, T]] = field(default_factory=deque)
    mark: datetime | None = None
    given_up: bool = False
    idle: bool = False


class Reorder(Generic[T]):
    """Records of one partition, per producer, released oldest first (see the module)."""

    def __init__(
        self,
        *,
        wait_s: float,
        max_held: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_held is not None and max_held < 1:
            raise ValueError("max_held must be at least 1 record")
        self.wait_s = wait_s
        self.max_held = max_held
        self._clock = clock
        self._producers: dict[str, _Producer[T]] = {}
        self._held = 0
        self._offsets: list[int] = []  # a heap; released offsets are removed lazily
        self._released: set[int] = set()
        self._waiting_since: float | None = None
        self._forcing = False
        self.waits_timed_out = 0
        self.forced = 0
        """Records released past a producer still waited for, as ``max_held`` were held."""
        self.episodes = 0
        """Runs of such releases: each ends when nothing is waited for any more."""

    def __len__(self) -> int:
        return self._held

    def expect(self, producers: Iterable[str]) -> None:
        """Producers known to write here (every task of the stage before): until one is
        heard from, nothing is released past it (at most ``wait_s``)."""
        for producer in producers:
            self._producers.setdefault(producer, _Producer())

    def add(
        self, producer: str, offset: int, at: datetime, item: T | None, *, idle: bool = False
    ) -> None:
        """A record of ``producer`` at event time ``at``; ``item`` None: a mark only
        (``idle``: the producer has nothing to send)."""
        state = self._producers.get(producer)
        if state is None:  # not setdefault: that would build a state for every record
            state = self._producers[producer] = _Producer()
        if state.mark is None or at > state.mark:
            state.mark = at
        if item is None:
            state.idle, state.given_up = idle, False  # heard from again: waited for again
            return
        state.queue.append((at, offset, item))
        self._held += 1
        state.given_up = state.idle = False
        heapq.heappush(self._offsets, offset)

    def take(self, limit: int) -> list[T]:
        """Up to ``limit`` held records, oldest first, as far as every producer allows (or,
        past ``max_held`` held, whatever the producers waited for)."""
        out: list[T] = []
        heads = [(p.queue[0][0], name) for name, p in self._producers.items() if p.queue]
        heapq.heapify(heads)
        floor = self._floor()
        while heads and len(out) < limit:
            at, name = heads[0]
            if floor is not None and at > floor:
                if self._wait_over():
                    floor = self._floor()
                    continue
                if not self._over_bound():
                    break
            else:
                self._waiting_since = None
                self._forcing = False
            producer = self._producers[name]
            _, offset, item = producer.queue.popleft()
            self._held -= 1
            self._released.add(offset)
            out.append(item)
            if producer.queue:
                heapq.heapreplace(heads, (producer.queue[0][0], name))
            else:
                heapq.heappop(heads)
                floor = self._floor()
        return out

    def take_all(self) -> list[T]:
        """Every held record in the order it arrived, whatever the producers (for comparison)."""
        held = sorted(
            (offset, item) for p in self._producers.values() for _, offset, item in p.queue
        )
        for producer in self._producers.values():
            producer.queue.clear()
        self._held = 0
        self._released.update(offset for offset, _ in held)
        return [item for _, item in held]

    def held(self) -> list[tuple[int, T]]:
        """Every held record with its offset, in offset order (what a snapshot keeps)."""
        return sorted(
            ((offset, item) for p in self._producers.values() for _, offset, item in p.queue),
            key=lambda held: held[0],
        )

    def marks(self) -> dict[str, tuple[datetime, bool]]:
        """Each producer heard from → its mark and whether it is idle (what a snapshot keeps;
        given up is not: the next owner waits for it afresh)."""
        return {name: (p.mark, p.idle) for name, p in self._producers.items() if p.mark is not None}

    def lowest_offset(self) -> int | None:
        """The first offset still held (commit below it), None when nothing is held."""
        while self._offsets and self._offsets[0] in self._released:
            self._released.discard(heapq.heappop(self._offsets))
        return self._offsets[0] if self._offsets else None

    def watermark(self) -> datetime | None:
        """The event time this partition has passed: nothing older is released later (bar
        producers given up on). ``datetime.min`` while a producer was never heard from (or
        none is known); None when every producer is idle and nothing is held."""
        if not self._producers:
            return NEVER  # nobody known to write here yet: nothing can be said
        times = [
            p.queue[0][0] if p.queue else NEVER if p.mark is None else p.mark
            for p in self._producers.values()
            if p.queue or not (p.idle or p.given_up)
        ]
        return min(times) if times else None

    def wait_left(self) -> float | None:
        """Seconds until the current wait runs out; None when nothing waits."""
        if self._waiting_since is None:
            return None
        return max(0.0, self._waiting_since + self.wait_s - self._clock())

    def waited_for(self) -> list[str]:
        """The producers that hold the oldest head back now (silent at the floor)."""
        floor = self._floor()
        if not self._held:
            return []
        return sorted(
            name
            for name, p in self._producers.items()
            if not (p.queue or p.given_up or p.idle)
            and (NEVER if p.mark is None else p.mark) == floor
        )

    def _over_bound(self) -> bool:
        """Whether more than ``max_held`` are held: the oldest goes, counted, though the
        wait goes on."""
        if self.max_held is None or self._held <= self.max_held:
            return False
        self.forced += 1
        if not self._forcing:
            self._forcing = True
            self.episodes += 1
        return True

    def _floor(self) -> datetime | None:
        """The oldest mark of a producer that has nothing queued and is still waited for."""
        marks = [
            NEVER if p.mark is None else p.mark
            for p in self._producers.values()
            if not p.queue and not p.given_up and not p.idle
        ]
        return min(marks) if marks else None

    def _wait_over(self) -> bool:
        """Whether the silent producers were waited for long enough (then given up on)."""
        now = self._clock()
        if self._waiting_since is None:
            self._waiting_since = now
        if now - self._waiting_since < self.wait_s:
            return False
        floor = self._floor()
        for producer in self._producers.values():
            mark = NEVER if producer.mark is None else producer.mark
            silent = not (producer.queue or producer.given_up or producer.idle)
            if silent and mark == floor:
                producer.given_up = True
                self.waits_timed_out += 1
        self._waiting_since = now
        return True
