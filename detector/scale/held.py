"""What a stage partition's reorder holds, kept in its task's changelog snapshot.

As Flink checkpoints the records in flight with its operators' state, a task's
snapshot carries what its partition's :class:`~detector.scale.reorder.Reorder`
holds, and the records it released that were not processed yet: each record
as it was read (the wire format, :mod:`detector.scale.wire`, which names its
producer and event time) with its offset, and each producer's mark and idle
state as a mark record. The snapshot's offset is then the one after the last
record read, not the oldest record held: the partition's next owner adds them
back to its reorder and reads on from there, instead of reading again what was
held and everything after it (records processed already, which count as late
when older than the duplicate window).

In a snapshot's JSON a record's bytes are a string of the code points 0-255
(latin-1, which maps each byte to one): internal records are mostly ASCII
JSON, so they stay text and compress as text (on seed 7's records, 189 bytes
per held record once compressed, against 366 with base64).

Snapshots written before this carry no :data:`KEY`: nothing is added back, and
their offset is the oldest record that was held, so those records are read again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from detector.scale.reorder import Reorder
from detector.scale.wire import Received, encode_mark, read
from detector.sources.record import Position, RawRecord

__all__ = ["KEY", "Held", "read_held", "snapshot_held"]

KEY = "held"
"""The key of a task snapshot under which what its reorder held is kept."""
_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Held:
    """What a snapshot's reorder held, decoded: records (with what they read as) and marks."""

    records: list[tuple[RawRecord, Received]] = field(default_factory=list)
    marks: list[Received] = field(default_factory=list)

    def refill(self, reorder: Reorder[RawRecord]) -> None:
        """Add it all back to ``reorder`` (the records first: a mark may say idle after them)."""
        for record, found in self.records:
            reorder.add(found.producer, record.position.offset, found.time, record)
        for mark in self.marks:
            reorder.add(mark.producer, 0, mark.time, None, idle=mark.idle)  # no offset: a mark


def snapshot_held(
    reorder: Reorder[RawRecord], unprocessed: Iterable[RawRecord], below: int
) -> dict[str, Any]:
    """The JSON-able form of what ``reorder`` holds and of the ``unprocessed`` records it
    released, those before offset ``below`` (the snapshot's: later ones are read again)."""
    records = [record for _, record in reorder.held()]
    records.extend(unprocessed)
    records.sort(key=lambda record: record.position.offset)
    marks = [encode_mark(name, at, idle=idle) for name, (at, idle) in reorder.marks().items()]
    return {
        "format": _FORMAT,
        "records": [
            [record.position.offset, _text(record.value)]
            for record in records
            if record.position.offset < below
        ],
        "marks": [_text(mark) for mark in marks],
    }


def read_held(saved: Mapping[str, Any] | None, partition: tuple[str, int]) -> Held:
    """What :func:`snapshot_held` kept for ``partition`` (nothing if None: an older snapshot).

    Raises ValueError (or another of :data:`detector.scale.wire.UNREADABLE`) if unreadable:
    the caller restores nothing of the snapshot.
    """
    if saved is None:
        return Held()
    if saved.get("format") != _FORMAT:
        raise ValueError(f"held records of unknown format {saved.get('format')!r}")
    topic, number = partition
    records = []
    for offset, text in saved["records"]:
        record = RawRecord(_bytes(text), Position(topic, int(offset), number))
        found = read(record.value, record.position)
        if found.item is None:
            raise ValueError(f"a mark among the held records at offset {offset}")
        records.append((record, found))
    marks = [read(_bytes(text), Position(topic, 0, number)) for text in saved["marks"]]
    if any(mark.item is not None for mark in marks):
        raise ValueError("an event or note among the held marks")
    return Held(records, marks)


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def _bytes(text: str) -> bytes:
    return text.encode("latin-1")
