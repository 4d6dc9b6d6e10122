"""An actor's remembered values of every field, as one compact first-seen table.

An actor remembers the values of several fields (ip, country, user agent,
repo, namespace, target), most of them one to three each. One
:class:`~detector.features.seen.FirstSeenSet` per field costs an object, a
list and an array each; one table per actor holds all of them in three flat
sequences — the values, the field number of each, and two sightings (last,
first) per value — at about a quarter of the memory. Each field behaves
exactly as its own FirstSeenSet would with that field's
:class:`~detector.features.seen.SetLimits`: same answers, same trimming,
values in the same order.
"""

from __future__ import annotations

from array import array
from sys import intern
from typing import Any, cast

from detector.features.seen import SetLimits

__all__ = ["RememberedValues"]

_LINEAR_LOOKUP = 16  # up to this many values a list scan beats a dict's memory and speed
MAX_FIELDS = 256
"""Field numbers are below this (one byte each)."""
_FIELD_BYTES = [bytes((field,)) for field in range(MAX_FIELDS)]
_FROZEN_BYTES = 1 + 2 * 8  # per value in frozen(): its field number, two float sightings


class RememberedValues:
    """Values per field number, with their last and first sighting.

    ``observe(field, value, t, limits)`` returns the value's previous last
    sighting in that field, or ``None`` when it is new there (never seen, not
    seen for ``limits.forget_after``, or trimmed). When :meth:`full`, the
    owner calls :meth:`trim` for that field (see ``FirstSeenSet.trim``).
    A cold actor keeps them :meth:`frozen` instead: one tuple.
    """

    __slots__ = ("_fields", "_index", "_times", "_values")

    def __init__(self) -> None:
        self._values: list[str] = []
        # The field number of each value, a byte each: new values are rare next to
        # lookups, and bytes cost a third of an array of as many numbers.
        self._fields = b""
        self._times = array("d")  # per value: its last sighting, its first
        # For large tables only: value → its first position (in whichever field).
        self._index: dict[str, int] | None = None

    def _position(self, field: int, value: str) -> int:
        index = self._index
        if index is not None:
            position = index.get(value, -1)
        elif value in self._values:
            position = self._values.index(value)
        else:
            return -1
        if position >= 0 and self._fields[position] != field:
            return self._later(field, value, position)
        return position

    def _later(self, field: int, value: str, position: int) -> int:
        """Rare: ``value`` first appears in another field (a target named like a repo)."""
        fields, values = self._fields, self._values
        for later in range(position + 1, len(values)):
            if fields[later] == field and values[later] == value:
                return later
        return -1

    def observe(self, field: int, value: str, time: float, limits: SetLimits) -> float | None:
        """Record ``value`` of ``field`` seen at ``time``; its previous last sighting, or None."""
        index = self._index  # _position inline: this runs for every field of every event
        if index is not None:
            position = index.get(value, -1)
        else:
            # One scan: most values are seen again (a miss's exception costs three scans).
            try:
                position = self._values.index(value)
            except ValueError:
                position = -1
        if position >= 0 and self._fields[position] != field:
            position = self._later(field, value, position)
        if position < 0:
            # One copy of a value many actors share (a country, a user agent)
            # instead of the copy each event brings.
            self._append(field, intern(value), time, time)
            return None
        times = self._times
        at = 2 * position
        last = times[at]
        if time - last >= limits.forget_after:
            times[at] = times[at + 1] = time
            return None
        if time > last:
            times[at] = time
        elif time < times[at + 1]:
            times[at + 1] = time
        return last

    def _append(self, field: int, value: str, last: float, first: float) -> None:
        values, times = self._values, self._times
        if self._index is not None:
            self._index.setdefault(value, len(values))
        elif len(values) >= _LINEAR_LOOKUP:
            self._index = {}
            for position, known in enumerate(values):
                self._index.setdefault(known, position)
            self._index.setdefault(value, len(values))
        values.append(value)
        self._fields += _FIELD_BYTES[field]
        times.append(last)
        times.append(first)

    def frozen(self) -> tuple[str | bytes, ...]:
        """The values, then one ``bytes`` of their field numbers and sightings: a cold actor's form.

        One tuple instead of this object, its list, array and bytes (about 100
        bytes less per actor); :meth:`thawed` reads it back.
        """
        return (*self._values, self._fields + self._times.tobytes())

    @classmethod
    def thawed(cls, frozen: tuple[str | bytes, ...]) -> RememberedValues:
        """The values :meth:`frozen` gave ``frozen`` for."""
        remembered = cls()
        count = len(frozen) - 1
        packed = cast(bytes, frozen[count])
        values = remembered._values = cast("list[str]", list(frozen[:count]))
        remembered._fields = packed[:count]
        remembered._times.frombytes(memoryview(packed)[count:])
        if count > _LINEAR_LOOKUP:  # as _append left it: indexed from the 17th value on
            remembered._index = {}
            for position, known in enumerate(values):
                remembered._index.setdefault(known, position)
        return remembered

    @staticmethod
    def checked_frozen(values: Any, sightings: bytes, fields: int) -> tuple[str | bytes, ...]:
        """The :meth:`frozen` form of ``values`` with ``sightings`` (that form's last part: their
        field numbers and sightings); ``ValueError`` unless they fit each other and ``fields``
        field numbers."""
        if not isinstance(values, (list, tuple)) or not all(type(value) is str for value in values):
            raise ValueError("remembered values are not a list of strings")
        count = len(values)
        if len(sightings) != count * _FROZEN_BYTES or (count and max(sightings[:count]) >= fields):
            raise ValueError("remembered values do not match their fields and sightings")
        return (*map(intern, values), sightings)

    def _pairs(self) -> zip[tuple[int, str]]:
        return zip(self._fields, self._values, strict=True)

    def count(self, field: int) -> int:
        """How many values of ``field`` are remembered."""
        return self._fields.count(field)

    def full(self, field: int, limits: SetLimits) -> bool:
        """More values of ``field`` than ``limits.cap``: time to :meth:`trim` it."""
        return self._fields.count(field) > limits.cap

    def _positions(self, field: int) -> list[int]:
        return [position for position, known in enumerate(self._fields) if known == field]

    def trim(self, field: int, now: float, limits: SetLimits) -> list[float]:
        """Drop forgotten values of ``field``, then its least recently seen to 3/4 of the cap.

        Returns the last sightings of the dropped values.
        """
        times = self._times
        positions = self._positions(field)
        horizon = now - limits.forget_after
        kept = [position for position in positions if times[2 * position] > horizon]
        keep = max(1, limits.cap * 3 // 4)
        if len(kept) > keep:
            by_recency = sorted(kept, key=lambda position: times[2 * position], reverse=True)
            recent = set(by_recency[:keep])
            kept = [position for position in kept if position in recent]
        chosen = set(kept)
        dropped = [position for position in positions if position not in chosen]
        values, fields = self._values, self._fields
        self._values, self._fields, self._times, self._index = [], b"", array("d"), None
        gone = set(dropped)
        for position, value in enumerate(values):
            if position not in gone:
                self._append(fields[position], value, times[2 * position], times[2 * position + 1])
        return [times[2 * position] for position in dropped]

    def recent(self, field: int, limit: int | None = None) -> list[str]:
        """The values of ``field``, most recently seen first (at most ``limit``)."""
        times = self._times
        positions = self._positions(field)
        order = sorted(positions, key=lambda position: times[2 * position], reverse=True)
        return [self._values[position] for position in order[:limit]]

    def to_state(self, names: tuple[str, ...], limits: tuple[SetLimits, ...]) -> dict[str, Any]:
        """Plain JSON as a dict of FirstSeenSet states: field name → its ``to_state`` rows.

        ``names[f]`` and ``limits[f]``: field number ``f``'s name and limits.
        """
        state: dict[str, list[list[Any]]] = {}
        times = self._times
        for position, (field, value) in enumerate(self._pairs()):
            row = [value, times[2 * position]]
            if limits[field].remember_first:
                row.append(times[2 * position + 1])
            state.setdefault(names[field], []).append(row)
        return state

    @classmethod
    def from_state(cls, numbers: dict[str, int], state: dict[str, Any]) -> RememberedValues:
        """Rebuild from :meth:`to_state` (``numbers``: field name → number); unknown fields go."""
        remembered = cls()
        for name, rows in state.items():
            field = numbers.get(name)
            if field is None:
                continue
            for value, last, *first in rows:
                text = intern(str(value))
                sighted = float(first[0]) if first else float(last)
                position = remembered._position(field, text)
                if position >= 0:  # a repeated row replaces the earlier one, in its place
                    times = remembered._times
                    times[2 * position] = float(last)
                    times[2 * position + 1] = sighted
                else:
                    remembered._append(field, text, float(last), sighted)
        return remembered
