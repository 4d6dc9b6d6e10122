"""The daemon's intake: poll Kafka, normalize, merge the partitions in event time.

Each :meth:`Intake.next_batch` polls once, normalizes what came (so that every
record has the event time it will be detected at: its earliest event's, or
none for a dead letter or a skipped non-event) and adds it to a
:class:`~detector.merge.PartitionMerge`, then takes what the merge releases.
Partitions that hold a fair share of the buffer are paused, so that the
others can be fetched and the buffer stays within ``service.partition_buffer``.

A released :class:`Batch` is a prefix of each partition's polled records:
committing the offsets after its records never skips a record still held.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter, is_
from typing import Protocol, cast

from detector.events.model import DeadLetter, Event, Skipped
from detector.events.ordering import in_event_time_order
from detector.merge import PartitionMerge
from detector.outcomes import BatchOutcome
from detector.sources.record import Position, RawRecord

__all__ = ["Batch", "Intake", "PartitionedSource"]

Partition = tuple[str, int]
"""(topic, partition)."""
_POSITION = attrgetter("position")
_STREAM_AND_PARTITION = attrgetter("record.position.stream", "record.position.partition")
_RECORD_PARTITION = attrgetter("position.stream", "position.partition")
_TIME = attrgetter("time")


class PartitionedSource(Protocol):
    """What the intake needs of :class:`~detector.sources.kafka.KafkaSource`."""

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]: ...

    def unfinished(self) -> set[Partition]: ...

    def assigned(self) -> set[Partition]: ...

    def pause_only(self, partitions: Collection[Partition]) -> None: ...


class _Normalized:
    """One polled record and what normalizing it gave, for a poll whose records did not all
    give one event each (then the merge holds the events themselves: :data:`_Item`).

    A plain slotted class with no list for what most records lack (dead
    letters, skips: None until one comes): a dataclass with three list
    factories cost as much as the merge itself.
    """

    __slots__ = ("dead_letters", "events", "record", "skipped")

    def __init__(self, record: RawRecord, events: list[Event] | None = None) -> None:
        self.record = record
        self.events: list[Event] = [] if events is None else events
        self.dead_letters: list[DeadLetter] | None = None
        self.skipped: list[Skipped] | None = None

    @property
    def time(self) -> datetime | None:
        events = self.events
        if len(events) == 1:
            return events[0].time
        return min((event.time for event in events), default=None)


@dataclass(slots=True)
class Batch:
    """Records the merge released, normalized; ``events`` in event-time order."""

    positions: list[Position] = field(default_factory=list)
    """The released records' positions: a prefix of each partition's polled records."""
    events: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    """Per reason, records known not to be events."""


class Intake:
    """Polls ``source`` and hands out batches merged in event time (see the module).

    ``normalize``: the pipeline's (it counts what it normalizes).
    ``max_wait_s``: longest one poll blocks; ``wait_s``: longest the merge waits
    for a partition (``service.partition_wait``); ``capacity``: most records held, raised
    to ``per_partition`` for each assigned partition when that is more
    (``service.buffered_per_partition``).
    ``lap``: told when the poll, the normalizing and the merge are done
    (:class:`~detector.loop_cpu.LoopClock`).
    """

    def __init__(
        self,
        source: PartitionedSource,
        normalize: Callable[[Sequence[RawRecord]], BatchOutcome],
        *,
        max_records: int,
        max_wait_s: float,
        wait_s: float,
        capacity: int,
        per_partition: int = 0,
        clock: Callable[[], float] | None = None,
        lap: Callable[[str], None] = lambda stage: None,
    ) -> None:
        self.source = source
        self._normalize = normalize
        self._lap = lap
        self.max_records = max_records
        self.max_wait_s = max_wait_s
        extra = {"clock": clock} if clock is not None else {}
        self.merge = PartitionMerge[Partition, _Item](wait_s=wait_s, capacity=capacity, **extra)
        self._capacity, self._per_partition = capacity, per_partition
        self._timeout_s = max_wait_s

    def next_batch(self) -> Batch:
        """Poll once, then what the merge releases (often nothing while it waits)."""
        assigned = self.source.assigned()
        # A fetch brings one partition's records in runs of thousands: a share below two
        # runs paused a partition after nearly every poll, and a paused partition's fetched
        # records are dropped and fetched again (docs/performance-history.md, 33rd session).
        self.merge.capacity = max(self._capacity, self._per_partition * len(assigned))
        share = self.merge.capacity // max(1, len(assigned))
        # Each poll may bring one partition this many records: pausing a partition
        # before it can pass its share keeps the buffer under its capacity.
        size = max(1, min(self.max_records, share // 2, self.merge.capacity - len(self.merge)))
        held = {p: self.merge.held(p) for p in assigned}
        self.source.pause_only([p for p, n in held.items() if n and n + size > share])
        records = []
        if len(self.merge) < self.merge.capacity:
            records = self.source.poll(size, self._timeout_s)
        self._lap("poll")
        self._add(records)
        pending = self.source.unfinished()
        released = self.merge.take(self.max_records, pending=pending)
        self._timeout_s = self._next_timeout(pending)
        batch = _batch(released)
        self._lap("merge")
        return batch

    def drop(self, partitions: Collection[Partition]) -> int:
        """Forget the records held for ``partitions`` (revoked); how many."""
        return self.merge.drop(partitions)

    def _add(self, records: list[RawRecord]) -> None:
        if not records:
            return
        outcome = self._normalize(records)
        self._lap("normalize")
        by_partition = _one_event_each(records, outcome)
        if by_partition is None:
            by_partition = _units_by_partition(_Units(records).filled(outcome))
        for (stream, partition), held in by_partition.items():
            self.merge.add((stream, partition or 0), held)

    def _next_timeout(self, pending: Collection[Partition]) -> float:
        """Block the next poll only while nothing can be released now."""
        if not len(self.merge):
            return self.max_wait_s
        left = self.merge.wait_left(pending)
        return 0.0 if left is None else min(left, self.max_wait_s)


class _Units:
    """The polled records' units, found by an item's position (see :meth:`of`)."""

    __slots__ = ("_by_id", "_by_value", "all")

    def __init__(self, records: list[RawRecord]) -> None:
        self.all = [_Normalized(record) for record in records]
        # Normalized items carry their record's own Position object: found by its
        # identity (a C-level hash), not by the frozen dataclass's Python __hash__.
        self._by_id = {id(unit.record.position): unit for unit in self.all}
        self._by_value: dict[Position, _Normalized] | None = None

    def filled(self, outcome: BatchOutcome) -> list[_Normalized]:
        """The units, each with the events, dead letters and skips of its record."""
        for event in outcome.events:
            self.of(event.position).events.append(event)
        for letter in outcome.dead_letters:
            unit = self.of(letter.position)
            if unit.dead_letters is None:
                unit.dead_letters = []
            unit.dead_letters.append(letter)
        for skipped in outcome.skipped:
            unit = self.of(skipped.position)
            if unit.skipped is None:
                unit.skipped = []
            unit.skipped.append(skipped)
        return self.all

    def of(self, position: Position | None) -> _Normalized:
        """The unit of the record at ``position``; one without stays with the poll's last."""
        if position is None:
            return self.all[-1]
        found = self._by_id.get(id(position))
        if found is not None:
            return found
        if self._by_value is None:  # an equal Position built anew: found by value
            self._by_value = {unit.record.position: unit for unit in self.all}
        return self._by_value.get(position, self.all[-1])


_Item = Event | _Normalized
"""What the merge holds per polled record: its event, when every record of its poll gave
one event and nothing else (most polls: the event's position is the record's); else its
unit."""
_Held = dict[tuple[str, int | None], list[tuple[_Item, datetime | None]]]
"""Per (stream, partition), its polled records' items in order, each with its time."""


def _by_partition(
    keys: Iterable[tuple[str, int | None]],
    items: Iterable[_Item],
    times: Iterable[datetime | None],
) -> _Held:
    """Each item with its time, under its (stream, partition) key, in order."""
    held: _Held = {}
    for key, item, moment in zip(keys, items, times, strict=True):
        found = held.get(key)
        if found is None:
            found = held[key] = []
        found.append((item, moment))
    return held


def _units_by_partition(units: list[_Normalized]) -> _Held:
    return _by_partition(map(_STREAM_AND_PARTITION, units), units, map(_TIME, units))


def _one_event_each(records: list[RawRecord], outcome: BatchOutcome) -> _Held | None:
    """:func:`_by_partition` of the events of a poll whose every record gave one event (most
    polls: no record to find per event, no unit to make, the event's time at hand); None
    otherwise."""
    events = outcome.events
    if len(events) != len(records) or outcome.dead_letters or outcome.skipped:
        return None
    # Normalized events carry their record's own Position object: compared by identity, in C.
    if not all(map(is_, map(_POSITION, events), map(_POSITION, records))):
        return None
    return _by_partition(map(_RECORD_PARTITION, records), events, map(_TIME, events))


def _batch(released: list[_Item]) -> Batch:
    if _Normalized not in map(type, released):  # every record gave one event (most batches)
        events = cast("list[Event]", released)
        return Batch(list(map(_POSITION, events)), in_event_time_order(events))
    batch = Batch()
    for item in released:
        if isinstance(item, Event):  # its record's position (_one_event_each)
            batch.positions.append(cast(Position, item.position))
            batch.events.append(item)
            continue
        batch.positions.append(item.record.position)
        batch.events.extend(item.events)
        if item.dead_letters is not None:
            batch.dead_letters.extend(item.dead_letters)
        if item.skipped is not None:
            batch.skipped.update(skipped.reason.value for skipped in item.skipped)
    # Records are released oldest first; the events inside one record may not be.
    batch.events = in_event_time_order(batch.events)
    return batch
