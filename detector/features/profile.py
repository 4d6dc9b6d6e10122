"""A key's activity per hour of the week (UTC): how usual is this hour for them."""

from __future__ import annotations

from array import array
from math import log

import numpy as np
import numpy.typing as npt

__all__ = [
    "DENSE_TYPECODES",
    "HALVE_AT",
    "HOURS_PER_WEEK",
    "SPARSE_COUNT",
    "SPARSE_HOURS",
    "HourOfWeekProfile",
    "hour_of_week",
    "hours_of_week",
]

HOURS_PER_WEEK = 168
_THURSDAY_HOURS = 3 * 24  # 1970-01-01 was a Thursday; Monday 00:00 UTC is hour 0
HALVE_AT = 1 << 31
"""A profile is halved before a count of this would be added to (it would overflow array("I"))."""
# Counts start as bytes and widen when one outgrows them: most keys never count
# 256 events in one hour of the week, and a profile per actor is 168 counts.
DENSE_TYPECODES = (("B", 1 << 8), ("H", 1 << 16), ("I", 1 << 32))
"""A dense profile's array typecodes, narrowest first, each with the counts it holds up to
(not including)."""
_WIDER = {"B": "H", "H": "I"}
_WIDTH = {code: rank for rank, (code, _) in enumerate(DENSE_TYPECODES)}
# Up to this many active hours a profile keeps (hour, count) pairs, not 168 counts.
SPARSE_HOURS = 48
SPARSE_COUNT = 255  # the largest count a sparse profile's pair holds


def hour_of_week(time: float) -> int:
    """Hour of the week in UTC, Monday 00:00-00:59 being 0 and Sunday 23:00 being 167."""
    return (int(time // 3600) + _THURSDAY_HOURS) % HOURS_PER_WEEK


def hours_of_week(times: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """:func:`hour_of_week` of each of ``times``, worked out for all of them at once."""
    hours: npt.NDArray[np.int64] = (
        (times // 3600).astype(np.int64) + _THURSDAY_HOURS
    ) % HOURS_PER_WEEK
    return hours


class HourOfWeekProfile:
    """How many of a key's events fell in each of the 168 hours of the week (UTC).

    Counts are halved when one would overflow, so very old habits fade slowly.
    While the key was active in few hours, each with fewer than 256 events,
    the profile is one ``bytearray`` of (hour, count) pairs: most actors are,
    and 168 counts would be most of a small actor's memory. Beyond that it is
    168 counts in the narrowest array that fits them (1, 2 or 4 bytes each).
    """

    __slots__ = ("_active", "_counts", "_pairs", "_total")

    def __init__(self) -> None:
        # Sparse: _pairs holds hour, count, hour, count ...; dense (_pairs None): _counts.
        self._pairs: bytearray | None = bytearray()
        self._counts: array[int] | None = None
        self._total = 0
        self._active = 0

    def _count(self, hour: int) -> int:
        pairs = self._pairs
        if pairs is None:
            assert self._counts is not None
            return self._counts[hour]
        position = pairs[0::2].find(hour)
        return pairs[2 * position + 1] if position >= 0 else 0

    def _densify(self) -> array[int]:
        """Switch to 168 counts (an hour past 255 events, or active in too many hours)."""
        pairs = self._pairs
        assert pairs is not None
        dense = array("B", bytes(HOURS_PER_WEEK))
        for at in range(0, len(pairs), 2):
            dense[pairs[at]] = pairs[at + 1]
        self._pairs, self._counts = None, dense
        return dense

    def add(self, time: float) -> None:
        self.add_hour(hour_of_week(time))

    def add_hour(self, hour: int) -> None:
        """:meth:`add` of a time in hour of week ``hour``."""
        pairs = self._pairs
        if pairs is None:
            self._add_dense(hour)
        else:
            self._add_sparse(pairs, hour, pairs[0::2].find(hour))

    def _add_sparse(self, pairs: bytearray, hour: int, position: int) -> None:
        """:meth:`add_hour` of a sparse profile, ``hour`` at pair ``position`` (-1: none)."""
        if position >= 0 and pairs[2 * position + 1] < SPARSE_COUNT:
            pairs[2 * position + 1] += 1
            self._total += 1
        elif position < 0 and len(pairs) < 2 * SPARSE_HOURS:
            pairs += bytes((hour, 1))
            self._active += 1
            self._total += 1
        else:
            self._densify()
            self._add_dense(hour)

    def read_then_add(self, hour: int) -> tuple[float, float, int, int]:
        """:meth:`share_and_rarity_in` of ``hour``, the active hours and the total, as they
        were before :meth:`add_hour` of ``hour``, which this then does (one search of the
        sparse pairs instead of two: it runs for every event)."""
        pairs, total, active = self._pairs, self._total, self._active
        if pairs is None:
            assert self._counts is not None
            count = self._counts[hour]
            self._add_dense(hour)
        else:
            position = pairs[0::2].find(hour)
            count = pairs[2 * position + 1] if position >= 0 else 0
            self._add_sparse(pairs, hour, position)
        share = count / total if total else 0.0
        return share, log((total + HOURS_PER_WEEK) / (count + 1)), active, total

    def _add_dense(self, slot: int) -> None:
        counts = self._counts
        assert counts is not None
        count = counts[slot]
        if count >= HALVE_AT:
            self._halve()
            count = counts[slot]
        elif not count:
            self._active += 1
        try:
            counts[slot] = count + 1
        except OverflowError:
            self._counts = array(_WIDER[counts.typecode], counts)
            self._counts[slot] = count + 1
        self._total += 1

    def share(self, time: float) -> float:
        """The share of the counted events in the hour of week of ``time`` (0 if none)."""
        return self._count(hour_of_week(time)) / self._total if self._total else 0.0

    def share_and_rarity(self, time: float) -> tuple[float, float]:
        """:meth:`share`, and how surprising the hour of ``time`` is for the key.

        Rarity is ``-ln((c + 1) / (n + 168))`` for ``c`` events in that hour
        of ``n``: add-one smoothing over the 168 hours, so a key with no
        history gives ``ln 168`` (about 5.12), a usual hour little, and an
        hour never used more the longer the history.
        """
        return self.share_and_rarity_in(hour_of_week(time))

    def share_and_rarity_in(self, hour: int) -> tuple[float, float]:
        """:meth:`share_and_rarity` of a time in hour of week ``hour``."""
        count = self._count(hour)
        total = self._total
        share = count / total if total else 0.0
        return share, log((total + HOURS_PER_WEEK) / (count + 1))

    @property
    def total(self) -> int:
        return self._total

    @property
    def active_hours(self) -> int:
        """In how many of the 168 hours of the week the key was active (a count above 0)."""
        return self._active

    def form(self) -> tuple[list[int], list[int], str | None]:
        """The hours with a count (in the order they were first counted while sparse), their
        counts, and the dense counts' typecode (None while sparse): all there is to a profile
        (:class:`~.profile_pool.ProfilePool` keeps it so)."""
        pairs = self._pairs
        if pairs is not None:
            return list(pairs[0::2]), list(pairs[1::2]), None
        counts = self._counts
        assert counts is not None
        hours = [hour for hour, count in enumerate(counts) if count]
        return hours, [counts[hour] for hour in hours], counts.typecode

    @classmethod
    def of_form(
        cls, hours: list[int], counts: list[int], typecode: str | None
    ) -> HourOfWeekProfile:
        """The profile :meth:`form` gave these for; or, for counts added since, the one
        adding them to it would have given: sparse while it was and can be, else dense in
        the narrowest typecode that holds its counts (and is no narrower than ``typecode``)."""
        profile = cls()
        largest = max(counts, default=0)
        if typecode is None and len(hours) <= SPARSE_HOURS and largest <= SPARSE_COUNT:
            pairs = zip(hours, counts, strict=True)
            profile._pairs = bytearray(value for pair in pairs for value in pair)
        else:
            fitting = next(code for code, bound in DENSE_TYPECODES if largest < bound)
            if typecode is not None and _WIDTH[typecode] > _WIDTH[fitting]:
                fitting = typecode  # an array is never narrowed (halving keeps its typecode)
            dense = [0] * HOURS_PER_WEEK
            for hour, count in zip(hours, counts, strict=True):
                dense[hour] = count
            profile._pairs, profile._counts = None, array(fitting, dense)
        profile._total = sum(counts)
        profile._active = len(hours)
        return profile

    def _halve(self) -> None:
        counts = self._counts
        assert counts is not None
        for slot, count in enumerate(counts):
            counts[slot] = count // 2
        self._total = sum(counts)
        self._active = len(counts) - counts.count(0)

    def packed(self) -> bytes | HourOfWeekProfile:
        """The form a cold key keeps: a sparse profile's (hour, count) pairs as bytes.

        One ``bytes`` instead of this object and its ``bytearray`` (about 100
        bytes less); a dense profile stays as it is. :meth:`from_packed` reads it.
        """
        return self if self._pairs is None else bytes(self._pairs)

    @classmethod
    def from_packed(cls, pairs: bytes) -> HourOfWeekProfile:
        """The profile :meth:`packed` gave ``pairs`` for (its total and active hours summed)."""
        profile = cls()
        profile._pairs = bytearray(pairs)
        profile._total = sum(pairs[1::2])  # a sparse profile's counts are never halved
        profile._active = len(pairs) // 2  # nor 0: a pair is added with its first event
        return profile

    @staticmethod
    def checked_packed(pairs: bytes) -> bytes:
        """``pairs`` if :meth:`packed` could have given them, else ``ValueError``."""
        hours, counts = pairs[0::2], pairs[1::2]
        if (
            len(pairs) % 2
            or len(hours) > SPARSE_HOURS
            or max(hours, default=0) >= HOURS_PER_WEEK
            or 0 in counts
            or len(set(hours)) != len(hours)
        ):
            raise ValueError("a sparse hour-of-week profile is damaged")
        return pairs

    def to_state(self) -> list[list[int]]:
        """Plain JSON: ``[hour, count]`` for the hours with a count."""
        pairs = self._pairs
        if pairs is not None:
            hours, counts = pairs[0::2], pairs[1::2]
            return sorted([hour, count] for hour, count in zip(hours, counts, strict=True) if count)
        assert self._counts is not None
        return [[hour, count] for hour, count in enumerate(self._counts) if count]

    @classmethod
    def from_state(cls, state: list[list[int]]) -> HourOfWeekProfile:
        counts = [0] * HOURS_PER_WEEK
        for hour, count in state:
            if not 0 <= hour < HOURS_PER_WEEK or not 0 < count < 1 << 32:
                raise ValueError(f"hour of week {hour} (count {count}) is out of range")
            counts[hour] = int(count)
        profile = cls()
        largest = max(counts)
        active = [hour for hour, count in enumerate(counts) if count]
        if len(active) <= SPARSE_HOURS and largest <= SPARSE_COUNT:
            profile._pairs = bytearray(value for hour in active for value in (hour, counts[hour]))
        else:
            typecode = next(code for code, bound in DENSE_TYPECODES if largest < bound)
            profile._pairs, profile._counts = None, array(typecode, counts)
        profile._total = sum(counts)
        profile._active = len(active)
        return profile
