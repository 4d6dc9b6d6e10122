"""A stage's own records count as not read yet until polled, so the merge waits for them.

The intake's event-time merge waits for a partition only while it may hold
records not polled yet (KIP-695): the consumer knows that from the high
watermark of its last fetch. A replica that has just produced a batch's
records to a stage partition it owns knows better: until it polled up to
them, that partition is behind. Without this, the merge would release later
records of the stage's other partitions first and hand the next stage its
events hours out of order while a backlog is caught up (they would count as
late and miss the rules ``replay`` fires).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from detector.intake import PartitionedSource
from detector.sources.record import RawRecord

__all__ = ["OwnWrites"]

Partition = tuple[str, int]
"""(topic, partition)."""


class OwnWrites:
    """``source`` as the intake sees it, with partitions written to and not polled up to pending.

    >>> writes = OwnWrites(source)  # doctest: +SKIP
    >>> writes.wrote({("ciwatch.by-actor", 3): 1_205})  # doctest: +SKIP
    """

    def __init__(self, source: PartitionedSource) -> None:
        self.source = source
        self._written: dict[Partition, int] = {}
        """The offset after the last record this replica wrote, per partition."""
        self._polled: dict[Partition, int] = {}
        """The offset after the last record polled, per partition."""

    def wrote(self, ends: Mapping[Partition, int]) -> None:
        """Records were written up to these next offsets (acknowledged by the broker)."""
        for key, end in ends.items():
            self._written[key] = max(self._written.get(key, 0), end)

    def forget(self, partitions: Collection[Partition]) -> None:
        """Revoked partitions: their next owner polls them."""
        for key in partitions:
            self._written.pop(key, None)
            self._polled.pop(key, None)

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        records = self.source.poll(max_records, timeout_s)
        for record in records:
            key = (record.position.stream, record.position.partition or 0)
            self._polled[key] = max(self._polled.get(key, 0), record.position.offset + 1)
        return records

    def unfinished(self) -> set[Partition]:
        found = self.source.unfinished()
        assigned = self.source.assigned()
        for key, end in list(self._written.items()):
            if self._polled.get(key, 0) >= end:
                del self._written[key]  # caught up: the watermark knows the rest
            elif key in assigned:
                found.add(key)
        return found

    def assigned(self) -> set[Partition]:
        return self.source.assigned()

    def pause_only(self, partitions: Collection[Partition]) -> None:
        self.source.pause_only(partitions)
