"""The actors' quantile estimates of one width, a row each, in one matrix.

:class:`~detector.scoring.evidence.ActorQuantiles` kept each actor's estimate
as an array of its own, replaced whole by every batch: after the compiled
update, a copy and a tuple per actor and batch, about 2.6 µs each (0.7 µs per
scored event in the 22-day world). Kept as rows of a matrix, an actor holds its
slot while it is tracked, and the compiled update moves the rows in place. The
matrix is made for as many actors as are tracked at most: its rows take memory
once they are first written.

A checkpoint is written after it is taken, while later batches move the rows:
a snapshot keeps a log (:meth:`TrackRows.keep`) into which each row goes as it
was before its first change, so that the checkpoint costs memory for the rows
that change while it is written, as the arrays replaced whole did, not a copy
of the matrix.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

__all__ = ["Kept", "TrackRows"]

Kept = dict[int, tuple[npt.NDArray[np.float64], int]]
"""Slot → its estimate and rows when a snapshot was taken, for the slots changed since."""


class TrackRows:
    """Estimates of ``width`` features (a row a slot) and how many rows made each, room for
    ``capacity`` of them (more doubles it: a restored state larger than the bound)."""

    __slots__ = ("_free", "_kept", "_used", "counts", "estimates", "width")

    def __init__(self, width: int, capacity: int) -> None:
        self.width = width
        # Made at full size at once: zeros not written yet take no memory (the kernel
        # maps them as it needs them), where growing the matrix left its old copies as
        # holes in the heap (17 MiB more at 100,000 actors, bench/memory.py).
        self.estimates: npt.NDArray[np.float64] = np.zeros((max(capacity, 1), width))
        self.counts: npt.NDArray[np.int64] = np.zeros(max(capacity, 1), dtype=np.int64)
        self._used = 0
        """Slots ever taken: those from here on have never been used."""
        self._free: list[int] = []
        self._kept: list[Kept] = []

    def take(self) -> int:
        """A free slot, with no rows: one released, else the next never used (the matrix
        doubles in the rare case none is left)."""
        if self._free:
            return self._free.pop()
        capacity = len(self.counts)
        if self._used == capacity:
            estimates = np.zeros((2 * capacity, self.width))
            estimates[:capacity] = self.estimates
            counts = np.zeros(2 * capacity, dtype=np.int64)
            counts[:capacity] = self.counts
            self.estimates, self.counts = estimates, counts
        self._used += 1
        return self._used - 1

    def release(self, slot: int) -> None:
        """``slot``'s actor is forgotten: its row is free again."""
        self.changing((slot,))
        self.counts[slot] = 0
        self._free.append(slot)

    def set(self, slot: int, estimate: npt.NDArray[np.float64], rows: int) -> None:
        self.changing((slot,))
        self.estimates[slot] = estimate
        self.counts[slot] = rows

    def row(self, slot: int, kept: Kept | None = None) -> tuple[npt.NDArray[np.float64], int]:
        """``slot``'s estimate (a copy) and rows; as ``kept`` has them, if it has them."""
        found = None if kept is None else kept.get(slot)
        if found is not None:
            return found
        return self.estimates[slot].copy(), int(self.counts[slot])

    # -- snapshots --------------------------------------------------------------------

    def keep(self) -> Kept:
        """A log, for a snapshot taken now, of each row as it is before it first changes."""
        kept: Kept = {}
        self._kept.append(kept)
        return kept

    def forget(self, kept: Kept) -> None:
        """The snapshot of ``kept`` is written, or gone: its rows need not be kept."""
        self._kept = [log for log in self._kept if log is not kept]

    def changing(self, slots: Iterable[int]) -> None:
        """``slots`` are about to change: each goes to the logs of the pending snapshots,
        as it is, unless it is there already."""
        for kept in self._kept:
            for slot in slots:
                if slot not in kept:
                    kept[slot] = (self.estimates[slot].copy(), int(self.counts[slot]))
