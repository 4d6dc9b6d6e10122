"""Hot window counters in numpy arrays, counted by compiled kernels.

A process that has compiled the counter kernels (:mod:`detector.jit`: a
daemon at start-up) keeps each hot :class:`~detector.features.windows.WindowCounter`
in a slot of an arena instead of its own small arrays: a ring of buckets per
window, found by position, changed by compiled steps, queued and run a batch
at a time (:mod:`detector.features.counter_kernels`). That is several times
cheaper than the plain form's Python, and gives the same numbers, so the two forms can
alternate: a counter goes cold (frozen bytes, :meth:`CounterArena.dump`) and
hot again in whichever form the process has.

A slot costs ``windows * buckets * (8 + 4 * channels)`` bytes (an actor with
17 channels: 13.7 KB over three windows; its counts in 4 bytes, in 8 once one
would not fit, :mod:`detector.features.count_width`), whatever the counter holds,
so an arena keeps at most its spec's ``arena_bytes`` of slots
(``features.arena_bytes``): the counter made hot the longest ago goes cold to
make room, as in the plain form (``hot_limit``), unless the stretch being
counted holds it (it waits its next turn).
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, NamedTuple, Protocol, cast

import numpy as np
import numpy.typing as npt

from detector.features.arena_numbers import (
    SPREAD_LIMIT,
    channel_matrix,
    narrowest,
    packed_exactly,
    packed_row,
    stored,
    widened,
)
from detector.features.buckets import NO_SMALL_BUCKET, lanes_per_bucket
from detector.features.count_width import CountWidth, largest
from detector.features.counter_kernels import (
    CARRY,
    COUNT,
    DISCARD,
    EMPTY,
    MOVE,
    OP_FIELDS,
    READ,
)
from detector.jit import Kernel

if TYPE_CHECKING:
    from detector.features.windows import WindowCounter, WindowSpec

__all__ = [
    "CountRow",
    "CounterArena",
    "Counts",
    "HotSlot",
    "Pending",
]

_FIRST_SLOTS = 16
_VECTOR_LIMIT = 1 << 12  # increments remembered as rows per arena (few kinds repeat)
_FIRST_ROWS = 64
_SHORT_LANES = {"B": 0xFF, "H": 0xFFFF}


class HotSlot(NamedTuple):
    """Where a hot counter of the compiled form lives: its arena and slot."""

    arena: CounterArena
    slot: int


CountRow = tuple[np.ndarray, int]
Counts = list[int] | CountRow
"""A counter's totals per window: packed ints, or row ``k`` of a batch's totals
``(steps, windows, channels)`` (the channels' counts; see :func:`packed_row`)."""


RowsColumn = tuple[np.ndarray, npt.NDArray[np.intp]]
"""Rows of one batch's totals: the matrix and the step of each."""


class Results(Protocol):
    """What gives the totals of steps queued or gathered, by ticket, once they have run."""

    def result(self, ticket: int) -> Counts: ...

    def rows_of(self, tickets: Sequence[int]) -> RowsColumn | None:
        """The totals of ``tickets`` as rows of one matrix; None if they are not."""
        ...


def rows_column(counts: Sequence[Counts]) -> RowsColumn | None:
    """``counts`` as rows of one matrix, if every one is a row of the same."""
    if not counts or {type(row) for row in counts} != {tuple}:
        return None
    rows = cast("Sequence[CountRow]", counts)
    if len({id(matrix) for matrix, _ in rows}) != 1:
        return None
    return rows[0][0], np.array([step for _, step in rows], np.intp)


Pending = tuple[Results, int]
"""Totals a queued step will give: what runs it and its ticket (:meth:`CounterArena.result`)."""


class CounterArena:
    """The hot counters of one kind of a store, one slot each, in at most the spec's
    ``arena_bytes``.

    Steps are queued and run together, in one compiled call per batch of events
    (:meth:`flush`): a step that gives totals hands out a ticket, which
    :meth:`result` turns into the totals after that step. Reading or moving a
    slot's arrays (a dump, a read now, a counter going cold) runs the queue first,
    so the order of steps is kept. The store drops the results of a batch once it
    has read them (:meth:`settle`).
    """

    def __init__(self, spec: WindowSpec, kernels: tuple[Kernel, Kernel, Kernel]) -> None:
        self.spec = spec
        self._nested = spec.nested
        self._step, self._load, self._dump = kernels
        self._widths = np.array(spec.widths, dtype=np.float64)
        self._windows = len(spec.widths)
        self._channels = 1
        self._width = CountWidth()
        self._largest_increment = self._largest_unit = 0
        """The largest count in the increments' and the units' tables so far."""
        self._ring = np.full((0, self._windows, spec.buckets), EMPTY, dtype=np.int64)
        self._counts = np.zeros((0, self._windows, spec.buckets, 1), dtype=self._width.dtype)
        self._totals = np.zeros((0, self._windows, 1), dtype=np.int64)
        self._newest = np.full((0, self._windows), EMPTY, dtype=np.int64)
        self._rows = np.zeros((0, self._windows, 1), dtype=np.int64)
        self._units = np.zeros((0, 1), dtype=np.int64)
        self._carry = np.zeros((self._windows, 1), dtype=np.int64)
        self._allocate(_FIRST_SLOTS)
        self._free: list[int] = []
        self._row_of: dict[tuple[int, ...], int] = {}
        self._unit_of: dict[int, int] = {0: 0}  # unit row 0: no unit
        self._used = 0
        self.hot: deque[WindowCounter] = deque()
        # Lists, made arrays once per flush: appending to a list costs a third of
        # converting each number into an array as it comes.
        self._ops: list[int] = []
        self._moved_from: list[float] = []
        self._buckets: list[int] = []
        self._queued_results = 0
        self._results: list[Counts] = []
        self._no_buckets = [EMPTY] * self._windows

    def _allocate(self, slots: int) -> None:
        """Arrays of ``slots`` slots and :attr:`_channels` channels, the old slots kept."""
        windows, span, channels = self._windows, self.spec.buckets, self._channels
        ring = np.full((slots, windows, span), EMPTY, dtype=np.int64)
        counts = np.zeros((slots, windows, span, channels), dtype=self._width.dtype)
        totals = np.zeros((slots, windows, channels), dtype=np.int64)
        newest = np.full((slots, windows), EMPTY, dtype=np.int64)
        old_slots, old_channels = self._ring.shape[0], self._counts.shape[3]
        ring[:old_slots] = self._ring
        counts[:old_slots, :, :, :old_channels] = self._counts
        totals[:old_slots, :, :old_channels] = self._totals
        newest[:old_slots] = self._newest
        self._ring, self._counts, self._totals, self._newest = ring, counts, totals, newest
        self._arrays = (ring, counts, totals, newest)
        self._rows = widened(self._rows, max(_FIRST_ROWS, len(self._rows)), channels)
        self._units = widened(self._units, max(_FIRST_ROWS, len(self._units)), channels)
        self._carry = widened(self._carry, windows, channels)
        buckets = windows * span
        self._dumped = (
            np.zeros(2 * windows + buckets, np.int64),
            np.zeros(2 * windows + buckets, np.int64),
            np.zeros(buckets * channels, np.int64),
        )
        """Where :meth:`dump` has a slot written: its ids, 4-byte ids and lanes."""

    @property
    def limit(self) -> int:
        """How many counters may be hot here at once."""
        slot_bytes = self._windows * self.spec.buckets * (8 + self._width.itemsize * self._channels)
        return max(1, min(self.spec.hot_limit, self.spec.arena_bytes // slot_bytes))

    def claim(self, counter: WindowCounter, ids: array[int], lanes: array[int]) -> HotSlot:
        """A slot for ``counter``, filled from its plain ids and lanes; the coldest counter
        goes cold first if the arena is full."""
        stride = lanes_per_bucket(ids, lanes, self._windows)
        if stride > self._channels:
            self._grow_channels(stride)
        while len(self.hot) >= self.limit:
            self.hot.popleft().cool()
        if self._free:
            slot = self._free.pop()
        else:
            if self._used == self._ring.shape[0]:
                self.flush()
                self._allocate(min(2 * self._used, max(self.limit, self._used + 1)))
            slot = self._used
            self._used += 1
        wide_ids = np.array(ids, dtype=np.int64)
        if ids.typecode == "i":
            wide_ids[: self._windows][wide_ids[: self._windows] == NO_SMALL_BUCKET] = EMPTY
        wide_lanes = np.array(lanes, dtype=np.int64)
        size = _SHORT_LANES.get(lanes.typecode)
        if not self._width.loads(largest(wide_lanes) if size is None else size):
            self._widen_counts()
        self._load(*self._arrays, slot, wide_ids, wide_lanes, stride)
        self.hot.append(counter)
        return HotSlot(self, slot)

    def _grow_channels(self, channels: int) -> None:
        self.flush()
        self._channels = channels
        self._allocate(self._ring.shape[0])

    def _make_room(self, steps: int, increment: int, unit: int) -> None:
        """Counts in a type that holds what ``steps`` steps may change them by, with
        increments and units of at most these counts: each step adds its increment, and a
        unit may leave one bucket, join another and be carried to the next step's (a unit
        carried from an earlier run was counted in its bound, and in an exact one here)."""
        added = steps * (increment + 3 * unit)
        if not self._width.holds(added, self._exact_bound):
            self._widen_counts()

    def _exact_bound(self) -> int:
        """The largest count's absolute value, and what ``carry`` holds to add to one."""
        return largest(self._counts[: self._used]) + largest(self._carry)

    def _widen_counts(self) -> None:
        """Counts in 8 bytes: the arrays made again with the slots they have (at most twice
        ``arena_bytes``), fewer made hot from now on (:attr:`limit`)."""
        self._width.widened()
        self._allocate(self._ring.shape[0])

    def release(self, slot: int) -> tuple[array[int], array[int]]:
        """Free ``slot``; its counter's plain ids and lanes (the counter goes cold)."""
        ids, lanes = self.dump(slot)
        self._free.append(slot)
        return ids, lanes

    def dump(self, slot: int) -> tuple[array[int], array[int]]:
        """The plain ids and lanes of ``slot`` (:class:`~detector.features.buckets.BucketRuns`'
        layout, each in its narrowest type), the slot unchanged."""
        self.flush()
        ids, small, lanes = self._dumped
        held, stride, fits, low, high = self._dump(
            self._ring, self._counts, self._newest, slot, ids, small, lanes
        )
        end = 2 * self._windows + held
        if fits:  # every id in 4 bytes, a window without buckets as its 4-byte mark
            plain_ids = array("i", small[:end].astype(np.int32).tobytes())
        else:
            plain_ids = array("q", ids[:end].tobytes())
        return plain_ids, narrowest(lanes[: held * stride], low, high)

    def count(
        self,
        slot: int,
        ids: Sequence[int],
        increments: Sequence[int],
        moved_from: float | None,
        unit: int,
    ) -> int:
        """Queue ``WindowCounter.count_later`` on ``slot`` at buckets ``ids``: its ticket."""
        row = self._row_of.get(tuple(increments))
        if row is None:
            row = self._row(tuple(increments))
        if moved_from is None or not unit:  # nothing moves (as the plain form's move of 0)
            return self._queue(COUNT, slot, row, 0, 0.0, ids)
        return self._queue(COUNT, slot, row, self._unit(unit), moved_from, ids)

    def read(self, slot: int, ids: Sequence[int] | None = None) -> int:
        """Queue a read of ``slot`` at the time of bucket ``ids`` (None: as it is): its ticket."""
        return self._queue(READ, slot, 0, 0, 0.0, self._no_buckets if ids is None else ids)

    def move(self, slot: int, previous: float, ids: Sequence[int], unit: int) -> int:
        """``WindowCounter.move`` on ``slot`` now: the mask of windows whose bucket changed."""
        self._queue(MOVE, slot, 0, self._unit(unit), previous, ids)
        return self.flush()

    def carry(self, slot: int, previous: float, ids: Sequence[int], unit: int) -> None:
        """Queue ``WindowCounter.move`` on ``slot``; ``unit`` joins the next count's increments
        in the windows whose bucket changed."""
        self._queue(CARRY, slot, 0, self._unit(unit), previous, ids)

    def discard(self, slot: int, time: float, unit: int) -> None:
        """Queue ``WindowCounter.discard`` on ``slot``."""
        self._queue(DISCARD, slot, 0, self._unit(unit), time, self._no_buckets)

    def _queue(
        self, op: int, slot: int, row: int, unit: int, moved_from: float, ids: Sequence[int]
    ) -> int:
        self._ops.extend((op, slot, row, unit))
        self._moved_from.append(moved_from)
        self._buckets.extend(ids)
        if op > READ:
            return -1
        self._queued_results += 1
        return len(self._results) + self._queued_results - 1

    def result(self, ticket: int) -> Counts:
        """The totals after the step of ``ticket``: a row of the batch's totals, or packed
        ints per window where a total did not fit a packed count's field."""
        if ticket >= len(self._results):
            self.flush()
        return self._results[ticket]

    def rows_of(self, tickets: Sequence[int]) -> RowsColumn | None:
        return rows_column([self.result(ticket) for ticket in tickets])

    def packed(self, ticket: int) -> list[int]:
        """The packed totals per window after the step of ``ticket``."""
        counts = self.result(ticket)
        return counts if isinstance(counts, list) else packed_row(counts[0][counts[1]])

    def settle(self) -> None:
        """Forget the results read (the tickets handed out so far are spent)."""
        if self._queued_results:
            self.flush()
        self._results = []

    def flush(self) -> int:
        """Run the queued steps; the mask of the last if it is a ``MOVE``."""
        if not self._ops:
            return 0
        ops = np.array(self._ops, dtype=np.int64).reshape(-1, OP_FIELDS)
        self._make_room(len(ops), self._largest_increment, self._largest_unit)
        results = np.empty((self._queued_results, self._windows, self._channels), np.int64)
        mask = self._step(
            ops,
            np.array(self._moved_from, dtype=np.float64),
            np.array(self._buckets, dtype=np.int64).reshape(len(ops), self._windows),
            self._arrays, self._widths, self._nested, self._rows, self._units, self._carry,
            results,
        )  # fmt: skip
        self._ops, self._moved_from, self._buckets = [], [], []
        self._queued_results = 0
        if len(results) and (results.min() < 0 or results.max() >= SPREAD_LIMIT):
            # A lane gone below 0 or past 40 bits: packed as the plain form packs it.
            self._results += [packed_exactly(totals) for totals in results]
        else:
            self._results += zip(repeat(results), range(len(results)))
        return int(mask)

    @property
    def channels(self) -> int:
        """Channels per bucket: steps built elsewhere (:meth:`run`) count in this many."""
        return self._channels

    def widen(self, channels: int) -> None:
        """At least ``channels`` channels per bucket from now on."""
        if channels > self._channels:
            self._grow_channels(channels)

    def run(
        self,
        ops: np.ndarray,
        moved_from: np.ndarray,
        buckets: np.ndarray,
        increments: np.ndarray,
        units: np.ndarray,
        results: int,
    ) -> np.ndarray | list[list[int]]:
        """Steps built elsewhere (:mod:`.actor_steps`), with their own increments and units
        tables (:attr:`channels` wide), after the queued ones: the totals of the ``results``
        steps that give them, in order (``(steps, windows, channels)``; packed per window
        where a total does not fit a packed count's field)."""
        self.flush()
        self._make_room(len(ops), largest(increments), largest(units))
        totals = np.empty((results, self._windows, self._channels), np.int64)
        self._step(
            ops, moved_from, buckets, self._arrays, self._widths, self._nested,
            increments, units, self._carry, totals,
        )  # fmt: skip
        if len(totals) and (totals.min() < 0 or totals.max() >= SPREAD_LIMIT):
            return [packed_exactly(row) for row in totals]
        return totals

    def _row(self, increments: tuple[int, ...]) -> int:
        """The row of ``increments`` (packed, one per window) in the increments' table."""
        vectors = channel_matrix(increments)
        if vectors.shape[1] > self._channels:
            self._grow_channels(vectors.shape[1])
        if len(self._row_of) >= _VECTOR_LIMIT:
            self.flush()  # the queued steps' rows are about to be reused
            self._row_of.clear()
        row = self._row_of[increments] = len(self._row_of)
        self._rows = stored(self._rows, row, vectors, self._channels)
        self._largest_increment = max(self._largest_increment, largest(vectors))
        return row

    def _unit(self, unit: int) -> int:
        """The row of the packed ``unit`` in the units' table."""
        row = self._unit_of.get(unit)
        if row is None:
            vector = channel_matrix((unit,))[0]
            if len(vector) > self._channels:
                self._grow_channels(len(vector))
            row = self._unit_of[unit] = len(self._unit_of)
            self._units = stored(self._units, row, vector, self._channels)
            self._largest_unit = max(self._largest_unit, largest(vector))
        return row
