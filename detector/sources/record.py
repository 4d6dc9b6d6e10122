"""What every source yields: raw bytes and where they came from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

from detector.frozen import quick_builder, quick_init

__all__ = [
    "Position",
    "RawRecord",
    "new_position",
    "new_raw_record",
    "next_offsets",
    "stream_of",
]


@quick_init
@dataclass(frozen=True, slots=True)
class Position:
    """Where a record came from: a Kafka topic/partition/offset or a file/line.

    For files ``stream`` is the path, ``partition`` is ``None`` and ``offset``
    is the 1-based line number.
    """

    stream: str
    offset: int
    partition: int | None = None

    def __str__(self) -> str:
        if self.partition is None:
            return f"{self.stream}:{self.offset}"
        return f"{self.stream}[{self.partition}]@{self.offset}"


@quick_init
@dataclass(frozen=True, slots=True)
class RawRecord:
    """One undecoded record: a Kafka message value or a line of a file."""

    value: bytes
    position: Position
    key: bytes | None = None


new_position = quick_builder(Position)
"""``Position(stream, offset, partition)``, every field given: about 60 % of the class's own
call (:func:`~detector.frozen.quick_builder`), for the sources, which make one per record."""
new_raw_record = quick_builder(RawRecord)
"""``RawRecord(value, position, key)``, every field given, as :data:`new_position`."""


stream_of = attrgetter("stream")
"""A position's stream (topic or file), read in C: for a batch's tallies per topic."""


def next_offsets(positions: Iterable[Position]) -> dict[tuple[str, int], int]:
    """Per (stream, partition), the offset after the highest position given: what to commit."""
    found: dict[tuple[str, int], int] = {}
    get = found.get
    for position in positions:  # every record of a batch: no call to max() per record
        key = (position.stream, position.partition or 0)
        after = position.offset + 1
        if after > get(key, 0):
            found[key] = after
        elif key not in found:
            found[key] = 0
    return found
