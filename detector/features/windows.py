"""Event-time sliding-window primitives with bounded memory.

Times are POSIX seconds (floats) taken from the events, never from the wall
clock, so replaying the same events gives the same numbers.

- :class:`WindowCounter` counts a few channels (events, failures, distinct
  values ...) over several windows at once. A window is a run of 60 buckets
  of width ``window / 60``; its count covers the buckets ending at the key's
  newest time, so a window's edge is exact to one bucket. Memory per window is
  at most 60 buckets, whatever the event rate.
- :class:`FirstSeenSet` remembers values with their last (and optionally
  first) sighting, capped, forgetting values unseen for ``forget_after``.
  Counting each value once, in the bucket of its last sighting, turns a
  counter channel into a distinct count per window.

Every class has ``to_state()`` / ``from_state()`` with plain JSON data. The
classes hold only ints and floats in dicts and arrays, which the garbage
collector does not track: a store holds millions of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from sys import intern
from typing import Any

__all__ = [
    "BUCKETS_PER_WINDOW",
    "LANE_BITS",
    "LANE_MASK",
    "FirstSeenSet",
    "SetLimits",
    "WindowCounter",
    "WindowSpec",
    "lane",
    "unpack",
]

BUCKETS_PER_WINDOW = 60
LANE_BITS = 40  # a channel holds up to 2**40 - 1 counts per window
LANE_MASK = (1 << LANE_BITS) - 1
_NO_BUCKET = -(1 << 62)


def lane(channel: int) -> int:
    """The packed form of a count of one in ``channel``."""
    return 1 << (channel * LANE_BITS)


def unpack(packed: int, channels: int) -> list[int]:
    """The per-channel counts held in one packed count."""
    return [(packed >> (channel * LANE_BITS)) & LANE_MASK for channel in range(channels)]


def _lanes(packed: int) -> list[int]:
    """Every channel's count up to the last non-zero one (JSON ints stay below 2**64)."""
    counts = []
    while packed:
        counts.append(packed & LANE_MASK)
        packed >>= LANE_BITS
    return counts


class WindowSpec:
    """Window lengths (seconds, shortest first) and their bucket widths.

    One spec is shared by every counter of a store, so a counter only holds
    its buckets. :meth:`bucket_ids` turns a time into its bucket per window,
    once per event for all of the event's keys.
    """

    __slots__ = ("buckets", "nested", "seconds", "widths")

    def __init__(self, windows: Sequence[float], buckets: int = BUCKETS_PER_WINDOW) -> None:
        if not windows or any(window <= 0 for window in windows):
            raise ValueError("windows must be positive lengths in seconds")
        self.seconds = tuple(sorted(float(window) for window in windows))
        self.widths = tuple(window / buckets for window in self.seconds)
        self.buckets = buckets
        # Each bucket width a whole multiple of the previous one (5s, 1m, 24m for
        # 5m, 1h, 24h): two times in one bucket of a window share the buckets of
        # every longer window too.
        self.nested = all(wider % narrower == 0 for narrower, wider in pairwise(self.widths))

    def bucket_ids(self, time: float) -> list[int]:
        """The bucket of ``time`` in each window, shortest window first."""
        return [int(time // width) for width in self.widths]


class WindowCounter:
    """Counts of a few channels over every window of a :class:`WindowSpec`.

    Counts are *packed*: channel ``c`` occupies bits ``40c .. 40c+39`` of one
    Python int (see :func:`lane`, :func:`unpack`), so adding an event to all
    its channels is one integer addition per window.

    ``add(ids, increments)`` adds ``increments[w]`` to bucket ``ids[w]`` of each
    window ``w`` and returns the packed totals per window, ending at the newest
    time ever added; ``move`` re-buckets a distinct value seen again;
    ``discard`` takes a count back. Times may arrive out of order: an older
    time lands in its own bucket while that bucket is still in the window,
    otherwise it is ignored for that window.

    >>> spec = WindowSpec([300.0])
    >>> counter = WindowCounter(spec)
    >>> _ = counter.add(spec.bucket_ids(1000.0), [lane(0) + lane(1)])
    >>> unpack(counter.add(spec.bucket_ids(1010.0), [lane(0)])[0], 2)
    [2, 1]
    >>> unpack(counter.counts(1400.0)[0], 2)
    [0, 0]
    """

    __slots__ = ("_buckets", "_newest", "_spec", "_totals")

    def __init__(self, spec: WindowSpec) -> None:
        self._spec = spec
        windows = len(spec.widths)
        self._buckets: list[dict[int, int]] = [{} for _ in range(windows)]
        self._totals = [0] * windows
        self._newest = [_NO_BUCKET] * windows

    def add(self, ids: Sequence[int], increments: Sequence[int]) -> list[int]:
        """Add the packed ``increments[w]`` to bucket ``ids[w]``; the packed totals per window.

        The returned list is the counter's own: read it, do not keep or change it.
        """
        span = self._spec.buckets
        newest_of = self._newest
        totals = self._totals
        for window, bucket in enumerate(ids):
            newest = newest_of[window]
            if bucket > newest:
                self._advance(window, bucket, newest)
            elif bucket <= newest - span:
                continue  # already outside this window
            increment = increments[window]
            if increment:
                buckets = self._buckets[window]
                count = buckets.get(bucket)
                if count is not None:
                    buckets[bucket] = count + increment
                else:
                    buckets[bucket] = increment
                    if bucket < newest:
                        self._sort(window)
                totals[window] += increment
        return totals

    def move(self, previous: float, ids: Sequence[int], unit: int, increments: list[int]) -> None:
        """A distinct value counted (``unit``) at time ``previous`` is seen again in ``ids``.

        Takes it out of its old bucket wherever the bucket changes and adds
        ``unit`` to ``increments`` for those windows, for the coming :meth:`add`.
        """
        nested = self._spec.nested
        for window, width in enumerate(self._spec.widths):
            old = int(previous // width)
            if old == ids[window]:
                if nested:
                    return
                continue
            buckets = self._buckets[window]
            count = buckets.get(old)
            if count is not None:
                buckets[old] = count - unit
                self._totals[window] -= unit
            increments[window] += unit

    def discard(self, time: float, unit: int) -> None:
        """Take back ``unit`` counted at ``time``, in the windows still holding its bucket."""
        for window, width in enumerate(self._spec.widths):
            buckets = self._buckets[window]
            bucket = int(time // width)
            count = buckets.get(bucket)
            if count is not None:
                buckets[bucket] = count - unit
                self._totals[window] -= unit

    def counts(self, now: float) -> list[int]:
        """Per window, the packed totals of the window ending at ``now`` (own list: read only)."""
        for window, bucket in enumerate(self._spec.bucket_ids(now)):
            if bucket > self._newest[window]:
                self._advance(window, bucket, self._newest[window])
        return self._totals

    def _advance(self, window: int, bucket: int, previous: int) -> None:
        """Make ``bucket`` the newest of ``window`` (after ``previous``); drop what fell out."""
        self._newest[window] = bucket
        buckets = self._buckets[window]
        if not buckets:
            return
        cutoff = bucket - self._spec.buckets
        if previous <= cutoff:  # idle for a whole window: everything expired
            buckets.clear()
            self._totals[window] = 0
            return
        while True:
            oldest = next(iter(buckets))
            if oldest > cutoff:
                return
            self._totals[window] -= buckets.pop(oldest)
            if not buckets:
                return

    def _sort(self, window: int) -> None:
        # Rare: an out-of-order time opened a bucket. Keep buckets sorted so
        # expiry can stop at the first bucket still inside the window.
        buckets = self._buckets[window]
        ordered = sorted(buckets.items())
        buckets.clear()
        buckets.update(ordered)

    def to_state(self) -> dict[str, Any]:
        """Plain JSON: per window the newest bucket and ``[bucket, count per channel...]`` rows."""
        return {
            "newest": [None if newest == _NO_BUCKET else newest for newest in self._newest],
            "buckets": [
                [[bucket, *_lanes(count)] for bucket, count in buckets.items()]
                for buckets in self._buckets
            ],
        }

    @classmethod
    def from_state(cls, spec: WindowSpec, state: dict[str, Any]) -> WindowCounter:
        """Rebuild a counter from :meth:`to_state`; raises ``ValueError`` if it does not fit."""
        counter = cls(spec)
        newest, rows_per_window = state["newest"], state["buckets"]
        if len(newest) != len(spec.widths) or len(rows_per_window) != len(spec.widths):
            raise ValueError("counter state has a different number of windows")
        for window, rows in enumerate(rows_per_window):
            counter._newest[window] = _NO_BUCKET if newest[window] is None else int(newest[window])
            buckets = counter._buckets[window]
            for bucket, *counts in rows:
                if not all(0 <= int(count) <= LANE_MASK for count in counts):
                    raise ValueError(f"bucket {bucket} has a count out of range")
                buckets[int(bucket)] = sum(
                    lane(channel) * int(count) for channel, count in enumerate(counts)
                )
            counter._totals[window] = sum(buckets.values())
        return counter


class SetLimits:
    """How a :class:`FirstSeenSet` forgets: after ``forget_after`` unseen, or beyond ``cap`` values.

    ``remember_first``: also keep each value's first sighting (first-seen sets
    do; sets that only count distinct values do not need it).
    """

    __slots__ = ("cap", "forget_after", "remember_first")

    def __init__(self, forget_after: float, cap: int, *, remember_first: bool = True) -> None:
        self.forget_after = forget_after
        self.cap = cap
        self.remember_first = remember_first


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

    __slots__ = ("_first", "_last", "_limits")

    def __init__(self, limits: SetLimits) -> None:
        self._limits = limits
        self._last: dict[str, float] = {}
        self._first: dict[str, float] | None = {} if limits.remember_first else None

    def observe(self, value: str, time: float) -> float | None:
        """Record ``value`` seen at ``time``; its previous last sighting, ``None`` if new."""
        last = self._last.get(value)
        if last is None or time - last >= self._limits.forget_after:
            if last is None:
                # One copy of a value many keys share (a country, a user agent, an
                # actor seen on many IPs) instead of one per key: every event brings
                # its own copy of each string.
                value = intern(value)
            self._last[value] = time
            if self._first is not None:
                self._first[value] = time
            return None
        if time > last:
            self._last[value] = time
        elif self._first is not None and time < self._first[value]:
            self._first[value] = time
        return last

    @property
    def full(self) -> bool:
        """More values than ``cap``: time to :meth:`trim`."""
        return len(self._last) > self._limits.cap

    def trim(self, now: float) -> list[float]:
        """Drop forgotten values, then the least recently seen down to 3/4 of ``cap``.

        Returns the last sightings of the dropped values.
        """
        horizon = now - self._limits.forget_after
        kept = [value for value, last in self._last.items() if last > horizon]
        keep = max(1, self._limits.cap * 3 // 4)
        if len(kept) > keep:
            recent = set(sorted(kept, key=self._last.__getitem__, reverse=True)[:keep])
            kept = [value for value in kept if value in recent]
        chosen = set(kept)
        dropped = [last for value, last in self._last.items() if value not in chosen]
        self._last = {value: self._last[value] for value in kept}
        if self._first is not None:
            self._first = {value: self._first[value] for value in kept}
        return dropped

    def __contains__(self, value: object) -> bool:
        return value in self._last

    def __len__(self) -> int:
        return len(self._last)

    def first_seen(self, value: str) -> float | None:
        """When ``value`` was first seen (since last forgotten); ``None`` if not remembered."""
        return self._first.get(value) if self._first is not None else None

    def last_seen(self, value: str) -> float | None:
        return self._last.get(value)

    def recent(self, limit: int | None = None) -> list[str]:
        """The values, most recently seen first (at most ``limit``)."""
        return sorted(self._last, key=self._last.__getitem__, reverse=True)[:limit]

    def to_state(self) -> list[list[Any]]:
        """Plain JSON: ``[value, last]`` or ``[value, last, first]`` rows, in the set's order."""
        first = self._first
        if first is None:
            return [[value, last] for value, last in self._last.items()]
        return [[value, last, first[value]] for value, last in self._last.items()]

    @classmethod
    def from_state(cls, limits: SetLimits, state: list[list[Any]]) -> FirstSeenSet:
        seen = cls(limits)
        for value, last, *first in state:
            name = intern(str(value))
            seen._last[name] = float(last)
            if seen._first is not None:
                seen._first[name] = float(first[0]) if first else float(last)
        return seen
