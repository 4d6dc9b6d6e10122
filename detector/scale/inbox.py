"""The stage partitions a replica owns, each read back in event time through its producers' marks.

A stage partition is written by every task of the stages before it (and the
first stage's by every vendor partition's reader), on whichever replicas own
them, each at its own pace. :class:`Inbox` is the consumer as the intake sees
it: vendor records pass untouched (the intake merges those partitions in event
time), and each stage partition's records go through a
:class:`~detector.scale.reorder.Reorder` that releases them oldest first as far
as every producer's marks allow. A released record carries no event time for
the intake's merge: tasks are independent, so only each partition's own order
matters, and the merge hands it on at once.

Producers are named after what they read, not after the replica: a vendor
partition ``events[3]``, a task ``ip/3``. When a replica dies, the next owner of
its partitions produces under the same names, from the offsets it resumes at,
and the reorders wait for it (``service.scale.producer_wait``) instead of
passing it by.

While a producer is waited for, each reorder holds at most
``service.scale.max_held_records``: past that its oldest records go on
(:attr:`Inbox.forced`), and :meth:`Inbox.bound_reached` names the partitions
where that began and whom they wait for, to be logged once per episode.

A partition's records may so be processed out of offset order. Its task's
changelog snapshot keeps what the reorder holds and what it released that was
not processed yet (:meth:`Inbox.checkpoint`, :mod:`detector.scale.held`), with
the offset after the last record read; a snapshot restored puts them back
(:meth:`Inbox.restore`) and the partition is read on from that offset.
Its commit point (:meth:`Inbox.commit_points`) is its lowest offset held or
released and not processed yet, but never below its newest snapshot's offset:
what is held below that is in the snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from detector.intake import PartitionedSource
from detector.scale.held import Held, snapshot_held
from detector.scale.reorder import Reorder
from detector.scale.topology import Topology
from detector.scale.wire import UNREADABLE, Received, read, source_producer
from detector.sources.record import Position, RawRecord

__all__ = ["Inbox"]

Partition = tuple[str, int]
"""(topic, partition)."""


class Inbox:
    """``source`` as the intake sees it, stage partitions reordered (see the module).

    ``sources``: vendor topic → partitions, the producers the first stage waits for.
    """

    def __init__(
        self,
        source: PartitionedSource,
        topology: Topology,
        *,
        sources: Mapping[str, int],
        wait_s: float,
        max_held: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.topology = topology
        self.wait_s = wait_s
        self.max_held = max_held
        self._clock = clock
        self._producers = _producers(topology, sources)
        self._reorders: dict[Partition, Reorder[RawRecord]] = {}
        self._polled: dict[Partition, int] = {}
        """The offset after the last record polled, per stage partition."""
        self._committed: dict[Partition, int] = {}
        self._saved: dict[Partition, int] = {}
        """The offset of each stage partition's newest durable snapshot (:meth:`saved`)."""
        self._restored_at: dict[Partition, int] = {}
        """Where a restored partition is read on from: what is before is in its snapshot."""
        self._waits_before = self._forced_before = 0  # of the reorders of revoked partitions
        self._episodes_seen: dict[Partition, int] = {}
        self._unprocessed: dict[Partition, dict[int, tuple[datetime | None, RawRecord]]] = {}
        """Records released and not yet :meth:`processed`, per stage partition: offset →
        event time (None: unreadable, dead-lettered) and record."""
        self.received: dict[Position, Received] = {}
        """Stage records decoded here, until the daemon takes them."""

    def __len__(self) -> int:
        return sum(len(reorder) for reorder in self._reorders.values())

    @property
    def waits_timed_out(self) -> int:
        """Silent producers given up on, since the start."""
        return self._waits_before + sum(r.waits_timed_out for r in self._reorders.values())

    @property
    def forced(self) -> int:
        """Records released past a producer still waited for (``max_held``), since the start."""
        return self._forced_before + sum(r.forced for r in self._reorders.values())

    def bound_reached(self) -> dict[Partition, list[str]]:
        """Partitions whose reorder began releasing past ``max_held`` since last asked →
        the producers it was waiting for then."""
        found = {}
        for key, reorder in self._reorders.items():
            if reorder.episodes != self._episodes_seen.get(key, 0):
                self._episodes_seen[key] = reorder.episodes
                found[key] = reorder.waited_for()
        return found

    def open(self, partition: Partition) -> None:
        """An assigned stage partition: its producers are waited for from now on."""
        self._reorder(partition)

    def forget(self, partitions: Collection[Partition]) -> None:
        """Revoked partitions: what they hold goes (not committed: their next owner reads it)."""
        for key in partitions:
            reorder = self._reorders.pop(key, None)
            if reorder is not None:
                self._waits_before += reorder.waits_timed_out
                self._forced_before += reorder.forced
            self._episodes_seen.pop(key, None)
            self._polled.pop(key, None)
            self._committed.pop(key, None)
            self._unprocessed.pop(key, None)
            self._saved.pop(key, None)
            self._restored_at.pop(key, None)
        gone = set(partitions)
        for position in [p for p in self.received if (p.stream, p.partition or 0) in gone]:
            del self.received[position]

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        """Vendor records as polled, then at most ``max_records`` released stage records."""
        out: list[RawRecord] = []
        for record in self.source.poll(max_records, timeout_s):
            position = record.position
            key = (position.stream, position.partition or 0)
            if self.topology.stage_of(key[0]) is None:
                out.append(record)
                continue
            if position.offset < self._restored_at.get(key, 0):
                continue  # read again below its snapshot (a seek not applied): in it already
            self._polled[key] = max(self._polled.get(key, 0), position.offset + 1)
            try:
                found = read(record.value, position)
            except UNREADABLE:
                out.append(record)  # dead-lettered by the daemon's normalizer
                self._unprocessed.setdefault(key, {})[position.offset] = (None, record)
                continue
            reorder = self._reorder(key)
            if found.item is None:
                reorder.add(found.producer, position.offset, found.time, None, idle=found.idle)
                continue
            self.received[position] = found
            reorder.add(found.producer, position.offset, found.time, record)
        budget = max_records
        for key, reorder in self._reorders.items():
            released = reorder.take(budget) if budget > 0 else []
            budget -= len(released)
            unprocessed = self._unprocessed.setdefault(key, {})
            for record in released:
                unprocessed[record.position.offset] = (self.received[record.position].time, record)
            out.extend(released)
        return out

    def processed(self, positions: Collection[Position]) -> None:
        """The records at these positions (of a batch) were processed: commit points may pass
        them."""
        for position in positions:
            key = (position.stream, position.partition or 0)
            self._unprocessed.get(key, {}).pop(position.offset, None)

    def watermark(self, partition: Partition) -> datetime | None:
        """What an owned stage partition has passed (:meth:`Reorder.watermark`), counting
        the records released and not processed yet (the intake may still hold some)."""
        found = self._reorder(partition).watermark()
        unprocessed = self._unprocessed.get(partition, {}).values()
        waiting = [at for at, _ in unprocessed if at is not None]
        return min([*waiting, *([] if found is None else [found])], default=None)

    def commit_points(self) -> dict[Partition, int]:
        """Stage partitions whose commit point moved since last asked: the lowest offset
        not processed yet, or the offset after the last polled record; not below the
        newest snapshot's offset (what is held below it is in that snapshot)."""
        moved = {}
        for key, polled in self._polled.items():
            held = self._reorders[key].lowest_offset() if key in self._reorders else None
            point = min(
                [polled, *self._unprocessed.get(key, ()), *([] if held is None else [held])]
            )
            point = max(point, self._saved.get(key, point))
            if self._committed.get(key) != point:
                moved[key] = self._committed[key] = point
        return moved

    def point(self, partition: Partition) -> int | None:
        """The offset a snapshot of ``partition`` taken now stands at; None if nothing was read.

        The offset after the last record read, or the first undecodable record
        released and not dead-lettered yet: every record before it was processed,
        is held, or was released and not processed yet (:meth:`checkpoint` keeps both).
        """
        polled = self._polled.get(partition)
        if polled is None:
            return None
        unprocessed = self._unprocessed.get(partition, {}).items()
        return min([polled, *(offset for offset, (at, _) in unprocessed if at is None)])

    def checkpoint(self, partition: Partition) -> tuple[int, dict[str, Any]] | None:
        """:meth:`point`, and what a snapshot at it keeps of the reorder: the records held,
        and those released and not processed yet (:func:`~detector.scale.held.snapshot_held`)."""
        point = self.point(partition)
        if point is None:
            return None
        unprocessed = self._unprocessed.get(partition, {}).values()
        pending = [record for at, record in unprocessed if at is not None]
        return point, snapshot_held(self._reorder(partition), pending, point)

    def saved(self, partition: Partition, offset: int) -> None:
        """A snapshot of ``partition`` at ``offset`` (:meth:`checkpoint`'s) is durable."""
        self._saved[partition] = offset

    def restore(self, partition: Partition, held: Held, offset: int) -> None:
        """``partition``'s snapshot at ``offset`` was restored: what its reorder held goes
        back in, and records before ``offset`` read again are passed over."""
        reorder = self._reorder(partition)
        held.refill(reorder)
        for record, found in held.records:
            self.received[record.position] = found
        self._polled[partition] = self._saved[partition] = offset
        self._restored_at[partition] = offset

    def unfinished(self) -> set[Partition]:
        """Vendor partitions not caught up: the merge waits for those only."""
        return {p for p in self.source.unfinished() if self.topology.stage_of(p[0]) is None}

    def assigned(self) -> set[Partition]:
        return self.source.assigned()

    def pause_only(self, partitions: Collection[Partition]) -> None:
        self.source.pause_only(partitions)

    def _reorder(self, partition: Partition) -> Reorder[RawRecord]:
        found = self._reorders.get(partition)
        if found is None:
            found = self._reorders[partition] = Reorder(
                wait_s=self.wait_s, max_held=self.max_held, clock=self._clock
            )
            stage = self.topology.stage_of(partition[0])
            found.expect(self._producers.get(stage or "", []))
        return found


def _producers(topology: Topology, sources: Mapping[str, int]) -> dict[str, list[str]]:
    """Stage → the producers writing to its topic: vendor readers, then earlier tasks.

    A task sends its events to the next stage and its notes and marks to the actor's.
    """
    stages = topology.stages
    found = {stages[0]: [source_producer((t, p)) for t, n in sources.items() for p in range(n)]}
    for stage in stages[1:]:
        upstream = [
            s for s in stages[: stages.index(stage)] if stage in (topology.after(s), "actor")
        ]
        found[stage] = [f"{s}/{p}" for s in upstream for p in range(topology.partitions)]
    return found
