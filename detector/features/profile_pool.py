"""The hour-of-week profiles of the actors hot in an arena, counted a stretch at a time.

The compiled form of :meth:`HourOfWeekProfile.read_then_add
<detector.features.profile.HourOfWeekProfile.read_then_add>`, which ran once per
event in Python. An actor hot in its arena keeps its profile here, in the row of
its slot's number (as its values are in the
:class:`~detector.features.value_pool.ValuePool`): its 168 counts, the order in
which its hours were first counted, its total, its active hours and the typecode
its dense counts had. One compiled call reads and counts a stretch's events in
order, to the same numbers; an actor going cold takes back the very profile
counting it the plain way would have left (:meth:`HourOfWeekProfile.of_form`):
its sparse pairs in their order, or its dense counts in their typecode.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from detector.features.profile import (
    DENSE_TYPECODES,
    HALVE_AT,
    HOURS_PER_WEEK,
    SPARSE_COUNT,
    SPARSE_HOURS,
    HourOfWeekProfile,
)
from detector.jit import LazyKernel

__all__ = ["ProfilePool"]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

_TOTAL, _ACTIVE, _NEXT, _WIDTH = range(4)
"""Columns of a slot's head: its total, its active hours, the order number its next new
hour gets, and its dense counts' typecode (an index of :data:`_TYPECODES`, 0: sparse)."""
_TYPECODES = (None, *(code for code, _ in DENSE_TYPECODES))
_BYTES, _SHORTS = (bound for _, bound in DENSE_TYPECODES[:2])
"""The counts a dense profile's "B" and "H" arrays hold up to (not including)."""
_FIRST_SLOTS = 16


def count_hours(
    counts: Ints, order: Ints, heads: Ints, slots: Ints, hours: Ints, read: Floats, past: Ints
) -> None:
    """Each event's share, rarity and active hours (``read``) and its actor's events before
    it (``past``), as :meth:`HourOfWeekProfile.read_then_add` gives them, its hour counted."""
    for event in range(len(slots)):
        slot, hour = slots[event], hours[event]
        count, total = counts[slot, hour], heads[slot, _TOTAL]
        read[event, 0] = count / total if total else 0.0
        read[event, 1] = math.log((total + HOURS_PER_WEEK) / (count + 1))
        read[event, 2] = heads[slot, _ACTIVE]
        past[event] = total
        if count >= HALVE_AT:  # as HourOfWeekProfile._halve: old habits fade
            # The array holding this count kept its typecode, halved.
            fitting = 1 if count < _BYTES else 2 if count < _SHORTS else 3
            heads[slot, _WIDTH] = max(heads[slot, _WIDTH], fitting)
            row = counts[slot]
            row //= 2
            heads[slot, _TOTAL] = row.sum()
            heads[slot, _ACTIVE] = np.count_nonzero(row)
            count = row[hour]
        elif count == 0:
            heads[slot, _ACTIVE] += 1
            order[slot, hour] = heads[slot, _NEXT]
            heads[slot, _NEXT] += 1
        counts[slot, hour] = count + 1
        heads[slot, _TOTAL] += 1


_COUNT = LazyKernel(
    count_hours,
    sample_args=(
        np.zeros((1, HOURS_PER_WEEK), np.int64),
        np.zeros((1, HOURS_PER_WEEK), np.int64),
        np.zeros((1, 4), np.int64),
        np.zeros(1, np.int64),
        np.zeros(1, np.int64),
        np.zeros((1, 3)),
        np.zeros(1, np.int64),
    ),
)


def sparse_pairs(counts: Ints, order: Ints, slot: int, pairs: npt.NDArray[np.uint8]) -> int:
    """Row ``slot``'s (hour, count) pairs, its hours in the order they were first counted,
    written to ``pairs``: a sparse profile's packed form; how many hours, or -1 where a
    sparse profile would not hold them (more hours, or a count past a byte)."""
    hours = np.empty(SPARSE_HOURS, np.int64)
    taken = 0
    for hour in range(HOURS_PER_WEEK):
        count = counts[slot, hour]
        if count:
            if count > SPARSE_COUNT or taken == SPARSE_HOURS:
                return -1
            hours[taken] = hour
            taken += 1
    for index in range(1, taken):  # by first count: each hour's order number is its own
        hour, key = hours[index], order[slot, hours[index]]
        before = index - 1
        while before >= 0 and order[slot, hours[before]] > key:
            hours[before + 1] = hours[before]
            before -= 1
        hours[before + 1] = hour
    for index in range(taken):
        pairs[2 * index] = hours[index]
        pairs[2 * index + 1] = counts[slot, hours[index]]
    return taken


def load_pairs(
    counts: Ints, order: Ints, heads: Ints, slot: int, pairs: npt.NDArray[np.uint8]
) -> None:
    """Row ``slot`` as a sparse profile's packed (hour, count) ``pairs`` make it."""
    counts[slot, :] = 0
    total = 0
    active = len(pairs) // 2
    for index in range(active):
        hour, count = int(pairs[2 * index]), int(pairs[2 * index + 1])  # not summed in a byte
        counts[slot, hour] = count
        order[slot, hour] = index
        total += count
    heads[slot, _TOTAL], heads[slot, _ACTIVE] = total, active
    heads[slot, _NEXT], heads[slot, _WIDTH] = active, 0


_SAMPLE_ROWS = (np.zeros((1, HOURS_PER_WEEK), np.int64), np.zeros((1, HOURS_PER_WEEK), np.int64))
_PAIRS = LazyKernel(sparse_pairs, sample_args=(*_SAMPLE_ROWS, 0, np.zeros(2, np.uint8)))
_LOAD_PAIRS = LazyKernel(
    load_pairs,
    sample_args=(*_SAMPLE_ROWS, np.zeros((1, 4), np.int64), 0, np.array([3, 1], np.uint8)),
)


class ProfilePool:
    """The profiles of the actors hot in an arena, a row per slot (see the module)."""

    def __init__(self) -> None:
        self._counts = np.zeros((_FIRST_SLOTS, HOURS_PER_WEEK), np.int64)
        self._order = np.zeros((_FIRST_SLOTS, HOURS_PER_WEEK), np.int64)
        self._heads = np.zeros((_FIRST_SLOTS, 4), np.int64)
        self._pairs = np.zeros(2 * SPARSE_HOURS, np.uint8)
        """Where :meth:`packed` has a sparse profile's pairs written."""

    def load(self, slot: int, profile: HourOfWeekProfile) -> None:
        """Keep ``profile`` in row ``slot`` (the actor's slot in its arena)."""
        if slot >= len(self._heads):
            self._grow(slot + 1)
        hours, counts, typecode = profile.form()
        self._counts[slot] = 0
        self._counts[slot, hours] = counts
        self._order[slot, hours] = range(len(hours))
        self._heads[slot] = (sum(counts), len(hours), len(hours), _TYPECODES.index(typecode))

    def load_packed(self, slot: int, pairs: bytes) -> None:
        """:meth:`load` of the profile :meth:`HourOfWeekProfile.packed` gave ``pairs`` for,
        in one call, without the profile made."""
        if slot >= len(self._heads):
            self._grow(slot + 1)
        pairs_read = np.frombuffer(pairs, np.uint8)
        _LOAD_PAIRS.runnable()(self._counts, self._order, self._heads, slot, pairs_read)

    def packed(self, slot: int) -> bytes | HourOfWeekProfile:
        """``profile(slot).packed()``: a sparse profile's pairs made in one call (its owner
        goes cold)."""
        if self._heads[slot, _WIDTH] == 0:
            taken = _PAIRS.runnable()(self._counts, self._order, slot, self._pairs)
            if taken >= 0:
                return self._pairs[: 2 * taken].tobytes()
        return self.profile(slot).packed()

    def profile(self, slot: int) -> HourOfWeekProfile:
        """The profile in row ``slot``, as counting it the plain way would have left it
        (the actor's own when it goes cold; a copy to read while it is hot)."""
        row = self._counts[slot]
        hours = np.flatnonzero(row)
        hours = hours[np.argsort(self._order[slot, hours], kind="stable")]
        typecode = _TYPECODES[int(self._heads[slot, _WIDTH])]
        return HourOfWeekProfile.of_form(hours.tolist(), row[hours].tolist(), typecode)

    def read_then_add(self, slots: Ints, hours: Ints) -> tuple[Floats, Ints]:
        """Each event's share, rarity and active hours (a row each) and its actor's events
        before it, in order; every event's hour counted (``slots[i]``'s profile)."""
        read = np.empty((len(slots), 3))
        past = np.empty(len(slots), np.int64)
        kernel = _COUNT.runnable()
        kernel(self._counts, self._order, self._heads, slots, hours, read, past)
        return read, past

    def _grow(self, slots: int) -> None:
        size = max(slots, 2 * len(self._heads))
        for name in ("_counts", "_order", "_heads"):
            old = getattr(self, name)
            new = np.zeros((size, old.shape[1]), np.int64)
            new[: len(old)] = old
            setattr(self, name, new)
