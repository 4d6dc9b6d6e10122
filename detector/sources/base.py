"""The source seam: anything that yields raw records in batches and takes commits."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Self

from detector.sources.record import Position, RawRecord

__all__ = ["Source"]


class Source(ABC):
    """Yields :class:`RawRecord` batches; positions are committed back when processed.

    A bounded source (files) reports :attr:`finished` once drained; an unbounded
    one (Kafka) never does. ``commit`` receives the positions of records whose
    results are safely delivered: a source must resume after the highest
    committed position of each stream/partition.
    """

    @abstractmethod
    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        """Up to ``max_records`` records; an empty list when none arrived in time."""

    @property
    def finished(self) -> bool:
        return False

    def commit(self, positions: Iterable[Position]) -> None:  # noqa: B027 - optional hook
        """Mark records as processed; sources without durable positions ignore it."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

    def batches(self, max_records: int = 500, timeout_s: float = 1.0) -> Iterator[list[RawRecord]]:
        """Non-empty batches until the source is finished (forever for Kafka)."""
        while not self.finished:
            batch = self.poll(max_records, timeout_s)
            if batch:
                yield batch

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
