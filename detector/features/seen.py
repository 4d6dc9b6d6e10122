"""First-seen sets: the values a key was seen with, and when, in little memory.

A store holds one set per actor and remembered field, and one per IP and
target (their actors): millions of them, most with one to three values. A
set is therefore a list of values plus one ``array("d")`` of their sightings
(last, and first if remembered) instead of dicts of floats: a small set
costs about a third. Up to :data:`_LINEAR_LOOKUP` values are found by a scan
of the list (a few string comparisons in C); beyond that a dict indexes them.
"""

from __future__ import annotations

from array import array
from sys import intern
from typing import Any, cast

__all__ = ["FirstSeenSet", "SetLimits"]

_LINEAR_LOOKUP = 8  # up to this many values a list scan beats a dict's memory and speed


class SetLimits:
    """How a :class:`FirstSeenSet` forgets: after ``forget_after`` unseen, or beyond ``cap`` values.

    ``remember_first``: also keep each value's first sighting (first-seen sets
    do; sets that only count distinct values do not need it).
    """

    __slots__ = ("cap", "forget_after", "remember_first", "stride")

    def __init__(self, forget_after: float, cap: int, *, remember_first: bool = True) -> None:
        self.forget_after = forget_after
        self.cap = cap
        self.remember_first = remember_first
        self.stride = 2 if remember_first else 1  # sightings per value in a set's times


class FirstSeenSet:
    """Values with their last (and first) sighting, at most about ``cap`` of them.

    ``observe(value, t)`` returns the value's previous last sighting, or
    ``None`` when the value is new: never seen, not seen for ``forget_after``
    (its first sighting then restarts at ``t``), or dropped from a full set.
    When new values make the set exceed ``cap`` (:attr:`full`), the owner
    calls :meth:`trim`: forgotten values go and, if that is not enough, the
    least recently seen ones down to three quarters of ``cap``. Trimming in
    batches keeps ``observe`` O(1) (the set is never reordered); ``trim``
    returns the dropped values' last sightings so a distinct count can take
    them back.

    >>> seen = FirstSeenSet(SetLimits(forget_after=86400.0, cap=8))
    >>> seen.observe("DE", 0.0) is None, seen.observe("DE", 60.0)
    (True, 0.0)
    >>> seen.observe("DE", 60.0 + 86400.0) is None
    True
    """

    __slots__ = ("_index", "_limits", "_times", "_values")

    def __init__(self, limits: SetLimits) -> None:
        self._limits = limits
        self._values: list[str] = []
        # Per value, in the order of _values: its last sighting, then its first if remembered.
        self._times = array("d")
        self._index: dict[str, int] | None = None  # value → position, for large sets only

    def _position(self, value: str) -> int:
        index = self._index
        if index is not None:
            return index.get(value, -1)
        values = self._values
        return values.index(value) if value in values else -1  # no exception: misses are common

    def observe(self, value: str, time: float) -> float | None:
        """Record ``value`` seen at ``time``; its previous last sighting, ``None`` if new."""
        index = self._index
        if index is None:
            values = self._values
            position = values.index(value) if value in values else -1
        else:
            position = index.get(value, -1)
        limits = self._limits
        if position < 0:
            # One copy of a value many keys share (a country, a user agent, an
            # actor seen on many IPs) instead of one per key: every event brings
            # its own copy of each string.
            self._append(intern(value), time, time)
            return None
        times = self._times
        at = position * limits.stride
        last = times[at]
        if time - last >= limits.forget_after:
            times[at] = time
            if limits.remember_first:
                times[at + 1] = time
            return None
        if time > last:
            times[at] = time
        elif limits.remember_first and time < times[at + 1]:
            times[at + 1] = time
        return last

    def _append(self, value: str, last: float, first: float) -> None:
        values, times = self._values, self._times
        if not values:
            # Most sets (an IP's actors) never hold a second value: sized exactly,
            # not with the room for more that append leaves.
            self._values = [value]
            self._times = array("d", (last, first) if self._limits.remember_first else (last,))
            return
        if self._index is not None:
            self._index[value] = len(values)
        elif len(values) >= _LINEAR_LOOKUP:
            self._index = {known: position for position, known in enumerate(values)}
            self._index[value] = len(values)
        values.append(value)
        times.append(last)
        if self._limits.remember_first:
            times.append(first)

    @property
    def full(self) -> bool:
        """More values than ``cap``: time to :meth:`trim`."""
        return len(self._values) > self._limits.cap

    def _lasts(self) -> array[float]:
        return self._times[:: self._limits.stride]

    def trim(self, now: float) -> list[float]:
        """Drop forgotten values, then the least recently seen down to 3/4 of ``cap``.

        Returns the last sightings of the dropped values.
        """
        limits = self._limits
        lasts = self._lasts()
        horizon = now - limits.forget_after
        kept = [position for position, last in enumerate(lasts) if last > horizon]
        keep = max(1, limits.cap * 3 // 4)
        if len(kept) > keep:
            recent = set(sorted(kept, key=lasts.__getitem__, reverse=True)[:keep])
            kept = [position for position in kept if position in recent]
        chosen = set(kept)
        dropped = [last for position, last in enumerate(lasts) if position not in chosen]
        values, times, stride = self._values, self._times, limits.stride
        self._values, self._times, self._index = [], array("d"), None
        for position in kept:
            at = position * stride
            self._append(values[position], times[at], times[at + stride - 1])
        return dropped

    def frozen(self) -> tuple[SetLimits | str | bytes, ...]:
        """The limits, the values, then their sightings as ``bytes``: a cold key's form.

        One tuple instead of this object, its list and array (about 50 bytes
        less per key); :meth:`thawed` reads it back.
        """
        return (self._limits, *self._values, self._times.tobytes())

    @classmethod
    def thawed(cls, frozen: tuple[SetLimits | str | bytes, ...]) -> FirstSeenSet:
        """The set :meth:`frozen` gave ``frozen`` for."""
        seen = cls(cast(SetLimits, frozen[0]))
        values = seen._values = cast("list[str]", list(frozen[1:-1]))
        seen._times.frombytes(cast(bytes, frozen[-1]))
        if len(values) > _LINEAR_LOOKUP:  # as _append left it: indexed from the 9th value on
            seen._index = {value: position for position, value in enumerate(values)}
        return seen

    @staticmethod
    def checked_frozen(
        limits: SetLimits, values: Any, sightings: bytes
    ) -> tuple[SetLimits | str | bytes, ...]:
        """The :meth:`frozen` form of a set of ``values`` and their ``sightings`` (that form's
        last part); ``ValueError`` unless they fit each other under ``limits``."""
        if not isinstance(values, (list, tuple)) or not all(type(value) is str for value in values):
            raise ValueError("a set's values are not a list of strings")
        if len(sightings) != len(values) * limits.stride * 8:
            raise ValueError("a set's values do not match their sightings")
        return (limits, *map(intern, values), sightings)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and self._position(value) >= 0

    def __len__(self) -> int:
        return len(self._values)

    def first_seen(self, value: str) -> float | None:
        """When ``value`` was first seen (since last forgotten); ``None`` if not remembered."""
        position = self._position(value)
        if position < 0 or not self._limits.remember_first:
            return None
        return self._times[position * 2 + 1]

    def last_seen(self, value: str) -> float | None:
        position = self._position(value)
        return None if position < 0 else self._times[position * self._limits.stride]

    def recent(self, limit: int | None = None) -> list[str]:
        """The values, most recently seen first (at most ``limit``)."""
        lasts = self._lasts()
        order = sorted(range(len(lasts)), key=lasts.__getitem__, reverse=True)[:limit]
        return [self._values[position] for position in order]

    def to_state(self) -> list[list[Any]]:
        """Plain JSON: ``[value, last]`` or ``[value, last, first]`` rows, in the set's order."""
        times = self._times
        if not self._limits.remember_first:
            return [[value, last] for value, last in zip(self._values, times, strict=True)]
        return [
            [value, times[2 * position], times[2 * position + 1]]
            for position, value in enumerate(self._values)
        ]

    @classmethod
    def from_state(cls, limits: SetLimits, state: list[list[Any]]) -> FirstSeenSet:
        seen = cls(limits)
        for value, last, *first in state:
            name = intern(str(value))
            position = seen._position(name)
            if position >= 0:  # a repeated row replaces the earlier one, in its place
                at, times = position * limits.stride, seen._times
                times[at] = float(last)
                if limits.remember_first:
                    times[at + 1] = float(first[0]) if first else float(last)
            else:
                seen._append(name, float(last), float(first[0]) if first else float(last))
        return seen
