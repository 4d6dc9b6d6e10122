"""Many owners' remembered values in one pool, observed a batch's columns at a time.

The compiled form of :class:`~detector.features.remembered.RememberedValues`
(one per actor): the values of every hot owner in numpy arrays
(:mod:`.pool_kernels`), interned to ids, observed by one numba call per batch
instead of a Python call per field and event. Each field behaves exactly as
an actor's remembered values do with that field's
:class:`~detector.features.seen.SetLimits`: same answers, same trims, values
in the same order, so an owner goes cold (:meth:`ValuePool.frozen`, the form
:meth:`RememberedValues.frozen` gives) and hot again (:meth:`ValuePool.load`)
in either form.

A value id whose last entry went is freed and handed to the next new value,
so the ids stay as many as the values remembered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from sys import intern
from typing import cast

import numpy as np
import numpy.typing as npt

from detector.features.pool_kernels import (
    EMPTY,
    KNOWN,
    TRACKED,
    UNIT,
    load_kernel,
    observe_kernel,
    read_kernel,
    rehash_kernel,
    release_kernel,
)
from detector.features.seen import SetLimits

__all__ = ["Answers", "PoolField", "ValuePool"]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

_FIRST_ENTRIES = 1 << 6  # grown as needed: a store that never compiles keeps these
_FIRST_SLOTS = 1 << 4
_USED, _FREE, _FILLED, _DROPS, _KNOWN_LISTS = range(5)


@dataclass(frozen=True, slots=True)
class PoolField:
    """A remembered field: how it forgets, whether its values are counted distinct
    (``unit``) and whether its new values are reported (``tracked``)."""

    limits: SetLimits
    unit: bool
    tracked: bool


@dataclass(frozen=True, slots=True)
class Answers:
    """What :meth:`ValuePool.observe` found, per event ``i`` of the batch, as the kernel
    wrote it.

    ``new[i]``: mask of the fields whose value was new. ``groups``: the counted values
    seen again, as (sighting they move from, field mask) columns and their count per
    event, in the order the store moves them. ``dropped``: (event, field, value id) and
    the last sighting of each value a trim dropped after its event. ``known[i]``: field
    → its values most recently seen first (at most :data:`~.pool_kernels.KNOWN`), for
    each new tracked field of an event not learning.
    """

    new: list[int]
    groups: tuple[Floats, Ints, Ints]
    dropped: tuple[Ints, Floats]
    known: dict[int, dict[int, list[str]]]

    def moves(self, event: int) -> list[tuple[float, int]]:
        """Event ``event``'s groups as (from, field mask) pairs."""
        froms, masks, counts = self.groups
        count = int(counts[event])
        return list(zip(froms[event, :count].tolist(), masks[event, :count].tolist(), strict=True))

    def drops(self) -> dict[int, list[tuple[int, float]]]:
        """Event → (field, last sighting) of each value dropped after it."""
        found: dict[int, list[tuple[int, float]]] = {}
        rows, lasts = self.dropped
        for (event, field_number, _), last in zip(rows.tolist(), lasts.tolist(), strict=True):
            found.setdefault(event, []).append((field_number, last))
        return found


class ValuePool:
    """The remembered values of owners numbered by slot (see the module)."""

    def __init__(self, fields: Sequence[PoolField], *, empty_is_value: bool = False) -> None:
        """``empty_is_value``: the empty string is a value (an IP's actor may be named so),
        not the absence of one (its id, once given, is kept: :meth:`_free_unused` frees
        only ids of non-empty values)."""
        self.fields = tuple(fields)
        count = len(self.fields)
        self._forget = np.array([f.limits.forget_after for f in self.fields], np.float64)
        self._rules = np.array(
            [
                [
                    f.limits.cap,
                    max(1, f.limits.cap * 3 // 4),
                    (UNIT * f.unit) | (TRACKED * f.tracked),
                ]
                for f in self.fields
            ],
            np.int64,
        ).reshape(count, 3)
        self._keys = np.full(2 * _FIRST_ENTRIES, EMPTY, np.int64)
        self._at = np.zeros(2 * _FIRST_ENTRIES, np.int64)
        self._ints = np.zeros((_FIRST_ENTRIES, 4), np.int64)
        self._times = np.zeros((_FIRST_ENTRIES, 2), np.float64)
        self._free = np.zeros(_FIRST_ENTRIES, np.int64)
        self._heads = np.full(_FIRST_SLOTS, -1, np.int64)
        self._tails = np.full(_FIRST_SLOTS, -1, np.int64)
        self._counts = np.zeros((_FIRST_SLOTS, count), np.int64)
        self._state = np.zeros(5, np.int64)
        self._refs = np.zeros(_FIRST_ENTRIES, np.int64)
        self._release_buffers = (np.zeros((64, 2), np.int64), np.zeros((64, 2)))
        """Where :meth:`release` has a slot's entries and sightings read (they grow)."""
        self._none = (None,) if empty_is_value else _NONE
        self._ids = _Interned(self, self._none)
        self._values: list[str] = [""]  # id 0: no value
        self._unused_ids: list[int] = []

    # -- values and ids ----------------------------------------------------------------

    @property
    def interned(self) -> int:
        """How many values have an id (those some owner holds, and a batch's new ones)."""
        return len(self._ids) - len(self._none)

    def ids(self, values: Iterable[str | None]) -> Ints:
        """The ids of ``values`` (0 for none, or empty unless it is a value), new ones
        interned."""
        return np.fromiter(map(self._ids.__getitem__, values), np.int64)

    def add_value(self, value: str) -> int:
        """A new value's id."""
        # One copy of a value many owners share, as RememberedValues keeps it.
        value = intern(value)
        unused = self._unused_ids
        number = unused.pop() if unused else len(self._values)
        if number == len(self._values):
            self._values.append(value)
        else:
            self._values[number] = value
        self._ids[value] = number
        return number

    def _free_unused(self, ids: Ints) -> None:
        """Forget the ids among ``ids`` that no entry holds any more (found by numpy: a
        batch's values are thousands, the ones to forget few)."""
        for number in set(ids[self._refs[ids] == 0].tolist()):
            if self._values[number]:
                del self._ids[self._values[number]]
                self._values[number] = ""
                self._unused_ids.append(number)

    # -- observing -----------------------------------------------------------------------

    def observe(
        self, slots: Ints, moments: Floats, values: Ints, learning: npt.NDArray[np.bool_]
    ) -> Answers:
        """Observe a batch: event ``i`` of owner ``slots[i]`` (< 0: none) at ``moments[i]``
        with value id ``values[f, i]`` of field ``f`` (:meth:`ids`; 0: none)."""
        events = len(slots)
        fields = len(self.fields)
        self._reserve(events * fields, int(slots.max(initial=-1)) + 1)
        new = np.zeros(events, np.int64)
        groups = (
            np.zeros((events, fields)),
            np.zeros((events, fields), np.int64),
            np.zeros(events, np.int64),
        )
        held = int(self._state[_USED] - self._state[_FREE]) + events * fields
        drops = (np.zeros((held, 3), np.int64), np.zeros(held))
        known = (
            np.zeros((events * fields, 3), np.int64),
            np.zeros((events * fields, KNOWN), np.int64),
        )
        self._state[_DROPS] = self._state[_KNOWN_LISTS] = 0
        observe_kernel.runnable()(
            slots, moments, values, learning, self._forget, self._rules, *self._arrays(),
            new, groups, drops, known,
        )  # fmt: skip
        answers = self._answers(new, groups, drops, known)
        # Ids of values trimmed away, or seen only in events observed for no owner.
        self._free_unused(values[values > 0])
        self._free_unused(drops[0][: int(self._state[_DROPS]), 2])
        return answers

    def _answers(
        self,
        new: Ints,
        groups: tuple[Floats, Ints, Ints],
        drops: tuple[Ints, Floats],
        known: tuple[Ints, Ints],
    ) -> Answers:
        values = self._values
        found: dict[int, dict[int, list[str]]] = {}
        lists, ids = known
        for row in range(int(self._state[_KNOWN_LISTS])):
            event, number, taken = lists[row].tolist()
            found.setdefault(event, {})[number] = [values[n] for n in ids[row, :taken].tolist()]
        rows = int(self._state[_DROPS])
        return Answers(new.tolist(), groups, (drops[0][:rows], drops[1][:rows]), found)

    # -- an owner's values as RememberedValues keeps them ------------------------------

    def load(self, slot: int, frozen: tuple[str | bytes, ...]) -> None:
        """Give ``slot`` the values of :meth:`RememberedValues.frozen` (``slot`` empty)."""
        count = len(frozen) - 1
        packed = cast(bytes, frozen[count])
        sightings = np.frombuffer(packed, np.float64, count=2 * count, offset=count)
        entries = np.empty((count, 2), np.int64)
        entries[:, 0] = np.frombuffer(packed, np.uint8, count=count)
        entries[:, 1] = self.ids(cast("tuple[str, ...]", frozen[:count]))
        self._reserve(count, slot + 1)
        load_kernel.runnable()(
            slot, len(self.fields), entries, sightings.reshape(count, 2).copy(), *self._arrays()
        )

    def frozen(self, slot: int) -> tuple[str | bytes, ...]:
        """``slot``'s values in :meth:`RememberedValues.frozen`'s form."""
        return self._frozen(*self._read(slot))

    def release(self, slot: int) -> tuple[str | bytes, ...]:
        """:meth:`frozen`, and ``slot``'s values dropped (its owner goes cold)."""
        entries, sightings = self._released(slot)
        frozen = self._frozen(entries, sightings)
        self._free_unused(entries[:, 1])
        return frozen

    def _released(self, slot: int) -> tuple[Ints, Floats]:
        """:meth:`_read`, then ``slot``'s values removed, in one kernel call: the entries in
        a buffer of the pool's (read them before the next release)."""
        if slot >= len(self._heads):
            return self._read(slot)
        kernel = release_kernel.runnable()
        while True:
            entries, sightings = self._release_buffers
            taken = int(kernel(slot, len(self.fields), *self._arrays(), entries, sightings))
            if taken >= 0:
                return entries[:taken], sightings[:taken]
            rows = max(-taken, 2 * len(entries))
            self._release_buffers = (np.zeros((rows, 2), np.int64), np.zeros((rows, 2)))

    # -- an owner's values as a FirstSeenSet keeps them (an IP's or target's actors) -------

    def load_set(self, slot: int, values: Sequence[str], lasts: bytes) -> None:
        """Give ``slot`` the values of a set with their last sightings, in field 0 (the form
        :meth:`FirstSeenSet.frozen` ends with, without first sightings; ``slot`` empty)."""
        count = len(values)
        entries = np.zeros((count, 2), np.int64)
        entries[:, 1] = self.ids(values)
        sightings = np.repeat(np.frombuffer(lasts, np.float64, count=count)[:, None], 2, axis=1)
        self._reserve(count, slot + 1)
        load_kernel.runnable()(slot, len(self.fields), entries, sightings, *self._arrays())

    def release_set(self, slot: int) -> tuple[list[str], bytes]:
        """``slot``'s values and their last sightings as :meth:`load_set` takes them, and
        the values dropped (its owner goes cold)."""
        entries, sightings = self._released(slot)
        found = self._set(entries, sightings)
        self._free_unused(entries[:, 1])
        return found

    def set_of(self, slot: int) -> tuple[list[str], bytes]:
        """``slot``'s values and their last sightings as :meth:`load_set` takes them."""
        return self._set(*self._read(slot))

    def _set(self, entries: Ints, sightings: Floats) -> tuple[list[str], bytes]:
        lasts = np.ascontiguousarray(sightings[:, 0]).tobytes()
        return [self._values[n] for n in entries[:, 1].tolist()], lasts

    def _frozen(self, entries: Ints, sightings: Floats) -> tuple[str | bytes, ...]:
        values = [self._values[n] for n in entries[:, 1].tolist()]
        return (*values, entries[:, 0].astype(np.uint8).tobytes() + sightings.tobytes())

    def count(self, slot: int, field: int) -> int:
        """How many values of ``field`` ``slot`` holds."""
        return int(self._counts[slot, field]) if slot < len(self._counts) else 0

    def recent(self, slot: int, field: int, limit: int | None = None) -> list[str]:
        """The values of ``field``, most recently seen first (at most ``limit``)."""
        entries, sightings = self._read(slot)
        chosen = np.flatnonzero(entries[:, 0] == field)
        order = chosen[np.argsort(-sightings[chosen, 0], kind="stable")]
        return [self._values[n] for n in entries[order[:limit], 1].tolist()]

    def _read(self, slot: int) -> tuple[Ints, Floats]:
        if slot >= len(self._heads):
            return np.zeros((0, 2), np.int64), np.zeros((0, 2))
        size = int(self._counts[slot].sum())
        entries, sightings = np.zeros((size, 2), np.int64), np.zeros((size, 2))
        arrays = self._arrays()
        read_kernel.runnable()(slot, arrays[1], arrays[2], arrays[3], entries, sightings)
        return entries, sightings

    # -- room ----------------------------------------------------------------------------

    def _arrays(
        self,
    ) -> tuple[tuple[Ints, Ints], Ints, Floats, tuple[Ints, Ints, Ints], Ints, Ints, Ints]:
        owners = (self._heads, self._tails, self._counts)
        table = (self._keys, self._at)
        return table, self._ints, self._times, owners, self._free, self._state, self._refs

    def _reserve(self, entries: int, slots: int) -> None:
        """Room for ``entries`` more entries and ``slots`` slots, the table at most half full."""
        live = int(self._state[_USED] - self._state[_FREE])
        needed = int(self._state[_USED]) + entries
        if needed > len(self._ints):
            size = max(needed, 2 * len(self._ints))
            self._ints = _grown(self._ints, size, 0)
            self._times = _grown(self._times, size, 0.0)
            self._free = _grown(self._free, size, 0)
        if len(self._values) + entries > len(self._refs):
            self._refs = _grown(
                self._refs, max(len(self._values) + entries, 2 * len(self._refs)), 0
            )
        if slots > len(self._heads):
            size = max(slots, 2 * len(self._heads))
            self._heads = _grown(self._heads, size, -1)
            self._tails = _grown(self._tails, size, -1)
            self._counts = _grown(self._counts, size, 0)
        if 2 * (int(self._state[_FILLED]) + entries) > len(self._keys):
            self._rehash(2 * (live + entries))

    def _rehash(self, keys: int) -> None:
        """A table of at least ``keys`` positions (a power of two) holding the live keys."""
        size = 1 << max(1, keys - 1).bit_length()
        new = (np.full(size, EMPTY, np.int64), np.zeros(size, np.int64))
        moved = rehash_kernel.runnable()((self._keys, self._at), new)
        self._keys, self._at = new
        self._state[_FILLED] = moved


_NONE = (None, "")
"""What stands for no value (id 0)."""


class _Interned(dict[str | None, int]):
    """Value → id, a new value given one by its pool (looked up in C, ``map`` over a column)."""

    def __init__(self, pool: ValuePool, none: tuple[str | None, ...]) -> None:
        super().__init__(dict.fromkeys(none, 0))
        self.pool = pool

    def __missing__(self, value: str | None) -> int:
        return self.pool.add_value(cast(str, value))


def _grown(values: np.ndarray, size: int, fill: float) -> np.ndarray:
    """``values`` with ``size`` rows, the new ones ``fill``."""
    grown = np.full((size, *values.shape[1:]), fill, dtype=values.dtype)
    grown[: len(values)] = values
    return grown
