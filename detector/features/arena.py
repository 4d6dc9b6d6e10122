"""Hot window counters in numpy arrays, counted by compiled kernels.

A process that has compiled the counter kernels (:mod:`detector.jit`: a
daemon at start-up) keeps each hot :class:`~detector.features.windows.WindowCounter`
in a slot of an arena instead of its own small arrays: a ring of buckets per
window, found by position, changed by one compiled call per step
(:mod:`detector.features.counter_kernels`). That is several times cheaper than
the plain form's Python, and gives the same numbers, so the two forms can
alternate: a counter goes cold (frozen bytes, :meth:`CounterArena.dump`) and
hot again in whichever form the process has.

A slot costs ``windows * buckets * (channels + 1) * 8`` bytes (an actor with
17 channels: 25.9 KB over three windows), whatever the counter holds, so an
arena keeps at most :data:`ARENA_BYTES` of slots: the counter counted the
longest ago goes cold to make room, as in the plain form (``hot_limit``).
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from detector.features.buckets import NO_SMALL_BUCKET, lanes_per_bucket
from detector.features.counter_kernels import COUNT, DISCARD, EMPTY, MOVE, READ
from detector.features.lanes import LANE_BITS, split
from detector.jit import Kernel

if TYPE_CHECKING:
    from detector.features.windows import WindowCounter, WindowSpec

__all__ = ["ARENA_BYTES", "CounterArena", "HotSlot"]

ARENA_BYTES = 32 << 20
"""At most this many bytes of slots per arena (one per kind of counter and store): a
daemon's two fit the chart's memory limit beside its keys (tests/unit/test_sizing.py)."""
_FIRST_SLOTS = 16
_SMALL_ID = 1 << 31
_LANE_TYPES = (("B", np.uint8, 1 << 8), ("H", np.uint16, 1 << 16), ("I", np.uint32, 1 << 32))
_VECTOR_LIMIT = 1 << 12  # increments remembered as matrices per arena (few kinds repeat)
_NO_ROWS = np.zeros((0, 1), dtype=np.int64)
_NO_BUCKETS = np.zeros(0, dtype=np.int64)  # the step works out the buckets of its time
_NO_UNIT = np.zeros(0, dtype=np.int64)


class HotSlot(NamedTuple):
    """Where a hot counter of the compiled form lives: its arena and slot."""

    arena: CounterArena
    slot: int


def _vectors(increments: tuple[int, ...]) -> np.ndarray:
    """Packed increments (one per window) as a matrix of channel counts."""
    pairs = [split(increment) for increment in increments]
    channels = 1 + max(channel for pair in pairs for channel, _ in pair)
    matrix = np.zeros((len(increments), channels), dtype=np.int64)
    for row, pair in enumerate(pairs):
        for channel, count in pair:
            matrix[row, channel] = count
    return matrix


class CounterArena:
    """The hot counters of one kind of a store, one slot each, at most :data:`ARENA_BYTES`."""

    def __init__(self, spec: WindowSpec, kernels: tuple[Kernel, Kernel, Kernel]) -> None:
        self.spec = spec
        self._nested = spec.nested
        self._step, self._load, self._dump = kernels
        self._widths = np.array(spec.widths, dtype=np.float64)
        self._windows = len(spec.widths)
        self._channels = 1
        self._ring = np.full((0, self._windows, spec.buckets), EMPTY, dtype=np.int64)
        self._counts = np.zeros((0, self._windows, spec.buckets, 1), dtype=np.int64)
        self._totals = np.zeros((0, self._windows, 1), dtype=np.int64)
        self._newest = np.full((0, self._windows), EMPTY, dtype=np.int64)
        self._allocate(_FIRST_SLOTS)
        self._free: list[int] = []
        self._known: dict[tuple[int, ...], np.ndarray] = {}
        self._used = 0
        self.hot: deque[WindowCounter] = deque()

    def _allocate(self, slots: int) -> None:
        """Arrays of ``slots`` slots and :attr:`_channels` channels, the old slots kept."""
        windows, span, channels = self._windows, self.spec.buckets, self._channels
        ring = np.full((slots, windows, span), EMPTY, dtype=np.int64)
        counts = np.zeros((slots, windows, span, channels), dtype=np.int64)
        totals = np.zeros((slots, windows, channels), dtype=np.int64)
        newest = np.full((slots, windows), EMPTY, dtype=np.int64)
        old_slots, old_channels = self._ring.shape[0], self._counts.shape[3]
        ring[:old_slots] = self._ring
        counts[:old_slots, :, :, :old_channels] = self._counts
        totals[:old_slots, :, :old_channels] = self._totals
        newest[:old_slots] = self._newest
        self._ring, self._counts, self._totals, self._newest = ring, counts, totals, newest
        self._arrays = (ring, counts, totals, newest)
        self._spread = np.zeros(windows * channels * LANE_BITS // 8, dtype=np.uint8)
        width = channels * LANE_BITS // 8  # one window's packed count in the spread bytes
        self._cuts = [slice(start, start + width) for start in range(0, windows * width, width)]

    @property
    def limit(self) -> int:
        """How many counters may be hot here at once."""
        slot_bytes = self._windows * self.spec.buckets * (self._channels + 1) * 8
        return max(1, min(self.spec.hot_limit, ARENA_BYTES // slot_bytes))

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
                self._allocate(min(2 * self._used, max(self.limit, self._used + 1)))
            slot = self._used
            self._used += 1
        wide_ids = np.array(ids, dtype=np.int64)
        if ids.typecode == "i":
            wide_ids[: self._windows][wide_ids[: self._windows] == NO_SMALL_BUCKET] = EMPTY
        self._load(*self._arrays, slot, wide_ids, np.array(lanes, dtype=np.int64), stride)
        self.hot.append(counter)
        return HotSlot(self, slot)

    def _grow_channels(self, channels: int) -> None:
        self._channels = channels
        self._allocate(self._ring.shape[0])

    def release(self, slot: int) -> tuple[array[int], array[int]]:
        """Free ``slot``; its counter's plain ids and lanes (the counter goes cold)."""
        ids, lanes = self.dump(slot)
        self._free.append(slot)
        return ids, lanes

    def dump(self, slot: int) -> tuple[array[int], array[int]]:
        """The plain ids and lanes of ``slot`` (:class:`~detector.features.buckets.BucketRuns`'
        layout, each in its narrowest type), the slot unchanged."""
        windows, span, channels = self._windows, self.spec.buckets, self._channels
        ids = np.zeros(2 * windows + windows * span, dtype=np.int64)
        lanes = np.zeros(windows * span * channels, dtype=np.int64)
        held = self._dump(self._ring, self._counts, self._newest, slot, ids, lanes)
        rows = lanes[: held * channels].reshape(held, channels)
        used = np.flatnonzero(rows.any(axis=0))
        stride = int(used[-1]) + 1 if len(used) else 0
        return _narrow_ids(ids[: 2 * windows + held], windows), _narrow_lanes(rows[:, :stride])

    def _matrix(self, increments: tuple[int, ...]) -> np.ndarray:
        """``increments`` as channel counts (:func:`_vectors`), remembered; the arena's
        channels grown first if they have more."""
        matrix = self._known.get(increments)
        if matrix is None:
            matrix = _vectors(increments)
            if matrix.shape[1] > self._channels:
                self._grow_channels(matrix.shape[1])
            if len(self._known) >= _VECTOR_LIMIT:
                self._known.clear()
            self._known[increments] = matrix
        return matrix

    def count(
        self, slot: int, time: float, increments: list[int], moved_from: float | None, unit: int
    ) -> list[int]:
        """``WindowCounter.count`` on ``slot``: the packed totals per window."""
        vectors = self._matrix(tuple(increments))
        if moved_from is None or not unit:  # nothing moves (as the plain form's move of 0)
            moved_from, moving = 0.0, _NO_UNIT
        else:
            moving = self._matrix((unit,))[0]
        fits = self._call(COUNT, slot, _NO_BUCKETS, time, moved_from, vectors, moving)
        return self._packed(slot, fits)

    def add(self, slot: int, ids: Sequence[int], increments: Sequence[int]) -> list[int]:
        """``WindowCounter.add`` on ``slot``: the packed totals per window."""
        vectors = self._matrix(tuple(increments))
        fits = self._call(COUNT, slot, np.array(ids, dtype=np.int64), 0.0, 0.0, vectors, _NO_UNIT)
        return self._packed(slot, fits)

    def read(self, slot: int, ids: Sequence[int]) -> list[int]:
        """``WindowCounter.counts`` on ``slot`` at the time of bucket ``ids``."""
        fits = self._call(READ, slot, np.array(ids, dtype=np.int64), 0.0, 0.0, _NO_ROWS, _NO_UNIT)
        return self._packed(slot, fits)

    def move(self, slot: int, previous: float, ids: Sequence[int], unit: int) -> int:
        """``WindowCounter.move`` on ``slot``: the mask of windows whose bucket changed."""
        buckets = np.array(ids, dtype=np.int64)
        return self._call(MOVE, slot, buckets, 0.0, previous, _NO_ROWS, self._matrix((unit,))[0])

    def discard(self, slot: int, time: float, unit: int) -> None:
        """``WindowCounter.discard`` on ``slot``."""
        self._call(DISCARD, slot, _NO_BUCKETS, 0.0, time, _NO_ROWS, self._matrix((unit,))[0])

    def _call(
        self,
        op: int,
        slot: int,
        buckets: np.ndarray,
        time: float,
        moved_from: float,
        vectors: np.ndarray,
        unit: np.ndarray,
    ) -> int:
        """One compiled :func:`~detector.features.counter_kernels.counter_step` on ``slot``."""
        return int(
            self._step(
                op, self._arrays, slot, buckets, time, moved_from, self._widths, self._nested,
                vectors, unit, self._spread,
            )
        )  # fmt: skip

    def totals(self, slot: int) -> list[int]:
        """The packed totals per window of ``slot`` as they are."""
        return self._packed(slot, 0)

    def _packed(self, slot: int, spread: int) -> list[int]:
        if spread:
            raw = self._spread.tobytes()
            return [int.from_bytes(raw[cut], "little") for cut in self._cuts]
        return [
            sum(int(count) << (channel * LANE_BITS) for channel, count in enumerate(window))
            for window in self._totals[slot]
        ]


def _narrow_ids(ids: np.ndarray, windows: int) -> array[int]:
    """Ids as 4-byte ints when every one fits (no bucket yet: the 4-byte mark), else 8."""
    newest = ids[:windows]
    real = np.concatenate((newest[newest != EMPTY], ids[2 * windows :]))
    if not len(real) or (real.min() > NO_SMALL_BUCKET and real.max() < _SMALL_ID):
        small = ids.copy()
        small[:windows][newest == EMPTY] = NO_SMALL_BUCKET
        return array("i", small.astype(np.int32).tobytes())
    return array("q", ids.tobytes())


def _narrow_lanes(lanes: np.ndarray) -> array[int]:
    """Lanes in the narrowest type holding them (signed 8 bytes once one is below 0)."""
    flat = lanes.ravel()
    if len(flat) and flat.min() >= 0:
        top = flat.max()
        for typecode, dtype, bound in _LANE_TYPES:
            if top < bound:
                return array(typecode, flat.astype(dtype).tobytes())
    return array("q", flat.tobytes()) if len(flat) else array("B")
