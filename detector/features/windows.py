"""Event-time sliding-window primitives with bounded memory.

Times are POSIX seconds (floats) taken from the events, never from the wall
clock, so replaying the same events gives the same numbers.

- :class:`WindowCounter` counts several channels (events, failures, ...) over
  several windows at once. Each window is a run of 60 buckets of width
  ``window / 60``; a count covers the buckets ending at the key's newest time,
  so a window's edge is exact to one bucket. Memory per window is at most 60
  small lists, whatever the event rate.
- :class:`FirstSeenSet` remembers values with when each was first and last
  seen, capped, forgetting values unseen for ``forget_after``. With a
  counter channel holding "one per value, in the bucket of its last
  sighting" it also gives distinct counts per window.
- :class:`HourOfWeekProfile` counts a key's events per hour of the week (UTC).

Every class has ``to_state()`` / ``from_state()`` with plain JSON data.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "BUCKETS_PER_WINDOW",
    "HOURS_PER_WEEK",
    "FirstSeenSet",
    "HourOfWeekProfile",
    "SetLimits",
    "WindowCounter",
    "WindowSpec",
    "hour_of_week",
]

BUCKETS_PER_WINDOW = 60
HOURS_PER_WEEK = 168
_THURSDAY_HOURS = 3 * 24  # 1970-01-01 was a Thursday; Monday 00:00 UTC is hour 0
_NO_BUCKET = -(1 << 62)
_PROFILE_LIMIT = 1 << 31  # halve the profile before a count could overflow array("I")


def hour_of_week(time: float) -> int:
    """Hour of the week in UTC, Monday 00:00-00:59 being 0 and Sunday 23:00 being 167."""
    return (int(time // 3600) + _THURSDAY_HOURS) % HOURS_PER_WEEK


class WindowSpec:
    """Window lengths (seconds, shortest first) and their bucket widths.

    One spec is shared by every counter of a store, so a counter only holds
    its buckets.
    """

    __slots__ = ("buckets", "seconds", "widths")

    def __init__(self, windows: Sequence[float], buckets: int = BUCKETS_PER_WINDOW) -> None:
        if not windows or any(window <= 0 for window in windows):
            raise ValueError("windows must be positive lengths in seconds")
        self.seconds = tuple(float(window) for window in windows)
        self.widths = tuple(window / buckets for window in self.seconds)
        self.buckets = buckets


class WindowCounter:
    """Counts of a few channels over every window of a :class:`WindowSpec`.

    ``add(t, channels)`` counts one at time ``t`` in each listed channel;
    ``discard(t, channel)`` takes one back (a distinct value seen again later
    moves to its new bucket); ``counts(now)`` gives, per window, the channel
    totals over the buckets ending at ``now``. Times may arrive out of order:
    an older time lands in its own bucket as long as that bucket is still in
    the window, otherwise it is ignored for that window.

    >>> counter = WindowCounter(WindowSpec([300.0]), channels=2)
    >>> counter.add(1000.0, [0, 1]); counter.add(1010.0, [0])
    >>> counter.counts(1010.0)
    [[2, 1]]
    >>> counter.counts(1400.0)
    [[0, 0]]
    """

    __slots__ = ("_buckets", "_channels", "_newest", "_spec", "_totals")

    def __init__(self, spec: WindowSpec, channels: int) -> None:
        self._spec = spec
        self._channels = channels
        windows = len(spec.widths)
        self._buckets: list[dict[int, list[int]]] = [{} for _ in range(windows)]
        self._totals = [[0] * channels for _ in range(windows)]
        self._newest = [_NO_BUCKET] * windows

    def add(self, time: float, channels: Iterable[int]) -> None:
        """Count one at ``time`` in each of ``channels`` (a channel may repeat)."""
        span = self._spec.buckets
        for window, width in enumerate(self._spec.widths):
            bucket = int(time // width)
            newest = self._newest[window]
            if bucket > newest:
                self._advance(window, bucket)
            elif bucket <= newest - span:
                continue  # already outside this window
            counts = self._buckets[window].get(bucket)
            if counts is None:
                counts = self._open_bucket(window, bucket)
            totals = self._totals[window]
            for channel in channels:
                counts[channel] += 1
                totals[channel] += 1

    def discard(self, time: float, channel: int) -> None:
        """Take back one count made at ``time`` in ``channel``, where it is still in a window."""
        for window, width in enumerate(self._spec.widths):
            counts = self._buckets[window].get(int(time // width))
            if counts is not None and counts[channel] > 0:
                counts[channel] -= 1
                self._totals[window][channel] -= 1

    def counts(self, now: float) -> list[list[int]]:
        """Per window (shortest first), the channel totals of the window ending at ``now``.

        The lists are the counter's own: read them, do not keep or change them.
        """
        for window, width in enumerate(self._spec.widths):
            bucket = int(now // width)
            if bucket > self._newest[window]:
                self._advance(window, bucket)
        return self._totals

    def _advance(self, window: int, bucket: int) -> None:
        """Make ``bucket`` the newest of ``window`` and drop the buckets that fell out."""
        previous = self._newest[window]
        self._newest[window] = bucket
        buckets = self._buckets[window]
        if not buckets:
            return
        cutoff = bucket - self._spec.buckets
        totals = self._totals[window]
        if previous <= cutoff:  # idle for a whole window: everything expired
            buckets.clear()
            totals[:] = [0] * self._channels
            return
        while buckets:
            oldest = next(iter(buckets))
            if oldest > cutoff:
                return
            for channel, count in enumerate(buckets.pop(oldest)):
                totals[channel] -= count

    def _open_bucket(self, window: int, bucket: int) -> list[int]:
        buckets = self._buckets[window]
        counts = [0] * self._channels
        buckets[bucket] = counts
        if bucket < self._newest[window]:
            # Rare: an out-of-order time opened a bucket. Keep buckets sorted so
            # expiry can stop at the first bucket still inside the window.
            ordered = sorted(buckets.items())
            buckets.clear()
            buckets.update(ordered)
        return counts

    def to_state(self) -> dict[str, Any]:
        """Plain JSON: per window the newest bucket and the rows ``[bucket, count...]``."""
        return {
            "newest": [None if newest == _NO_BUCKET else newest for newest in self._newest],
            "buckets": [
                [[bucket, *counts] for bucket, counts in buckets.items()]
                for buckets in self._buckets
            ],
        }

    @classmethod
    def from_state(cls, spec: WindowSpec, channels: int, state: dict[str, Any]) -> WindowCounter:
        """Rebuild a counter from :meth:`to_state`; raises ``ValueError`` if it does not fit."""
        counter = cls(spec, channels)
        newest, rows_per_window = state["newest"], state["buckets"]
        if len(newest) != len(spec.widths) or len(rows_per_window) != len(spec.widths):
            raise ValueError("counter state has a different number of windows")
        for window, rows in enumerate(rows_per_window):
            counter._newest[window] = _NO_BUCKET if newest[window] is None else int(newest[window])
            totals = counter._totals[window]
            for bucket, *counts in rows:
                if len(counts) != channels:
                    raise ValueError("counter state has a different number of channels")
                counter._buckets[window][int(bucket)] = [int(count) for count in counts]
                for channel, count in enumerate(counts):
                    totals[channel] += int(count)
        return counter


class SetLimits:
    """How long a :class:`FirstSeenSet` remembers an unseen value and how many it keeps."""

    __slots__ = ("cap", "forget_after")

    def __init__(self, forget_after: float, cap: int) -> None:
        self.forget_after = forget_after
        self.cap = cap


class FirstSeenSet:
    """Values with their first and last sighting, at most ``cap`` of them.

    ``observe(value, t)`` returns the value's previous last sighting, or
    ``None`` when the value is new: never seen, not seen for ``forget_after``
    (then its first sighting restarts at ``t``), or dropped from a full set.
    When a new value makes the set exceed ``cap``, values not seen for
    ``forget_after`` are dropped and, if that is not enough, the least
    recently seen ones down to three quarters of ``cap`` (trimming in batches
    keeps ``observe`` O(1): the set is never reordered).

    >>> seen = FirstSeenSet(SetLimits(forget_after=86400.0, cap=2))
    >>> seen.observe("DE", 0.0) is None, seen.observe("DE", 60.0)
    (True, 0.0)
    >>> seen.observe("DE", 60.0 + 86400.0) is None
    True
    """

    __slots__ = ("_limits", "_values")

    def __init__(self, limits: SetLimits) -> None:
        self._limits = limits
        self._values: dict[str, list[float]] = {}

    def observe(self, value: str, time: float) -> float | None:
        """Record ``value`` seen at ``time``; its previous last sighting, ``None`` if new."""
        entry = self._values.get(value)
        if entry is None:
            self._values[value] = [time, time]
            if len(self._values) > self._limits.cap:
                self._trim(time)
            return None
        last = entry[1]
        if time - last >= self._limits.forget_after:
            entry[0] = entry[1] = time
            return None
        if time > last:
            entry[1] = time
        elif time < entry[0]:
            entry[0] = time
        return last

    def _trim(self, now: float) -> None:
        horizon = now - self._limits.forget_after
        kept = {value: entry for value, entry in self._values.items() if entry[1] > horizon}
        keep = max(1, self._limits.cap * 3 // 4)
        if len(kept) > keep:
            recent = sorted(kept.items(), key=lambda item: item[1][1], reverse=True)[:keep]
            chosen = {value for value, _ in recent}
            kept = {value: entry for value, entry in kept.items() if value in chosen}
        self._values = kept

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __len__(self) -> int:
        return len(self._values)

    def first_seen(self, value: str) -> float | None:
        entry = self._values.get(value)
        return None if entry is None else entry[0]

    def last_seen(self, value: str) -> float | None:
        entry = self._values.get(value)
        return None if entry is None else entry[1]

    def recent(self, limit: int | None = None) -> list[str]:
        """The values, most recently seen first (at most ``limit``)."""
        ordered = sorted(self._values.items(), key=lambda item: item[1][1], reverse=True)
        return [value for value, _ in ordered[:limit]]

    def to_state(self) -> list[list[Any]]:
        """Plain JSON: ``[value, first, last]`` rows in the set's own order."""
        return [[value, first, last] for value, (first, last) in self._values.items()]

    @classmethod
    def from_state(cls, limits: SetLimits, state: list[list[Any]]) -> FirstSeenSet:
        seen = cls(limits)
        for value, first, last in state:
            seen._values[str(value)] = [float(first), float(last)]
        return seen


class HourOfWeekProfile:
    """How many of a key's events fell in each of the 168 hours of the week (UTC).

    Counts are halved when one would overflow, so very old habits fade slowly.
    """

    __slots__ = ("_counts", "_total")

    def __init__(self) -> None:
        self._counts = array("I", bytes(4 * HOURS_PER_WEEK))
        self._total = 0

    def add(self, time: float) -> None:
        hour = hour_of_week(time)
        if self._counts[hour] >= _PROFILE_LIMIT:
            self._halve()
        self._counts[hour] += 1
        self._total += 1

    def share(self, time: float) -> float:
        """The share of the counted events in the hour of week of ``time`` (0 if none)."""
        return self._counts[hour_of_week(time)] / self._total if self._total else 0.0

    @property
    def total(self) -> int:
        return self._total

    def active_hours(self) -> int:
        """In how many of the 168 hours of the week the key was ever active."""
        return HOURS_PER_WEEK - self._counts.count(0)

    def _halve(self) -> None:
        for hour, count in enumerate(self._counts):
            self._counts[hour] = count // 2
        self._total = sum(self._counts)

    def to_state(self) -> list[list[int]]:
        """Plain JSON: ``[hour, count]`` for the hours with a count."""
        return [[hour, count] for hour, count in enumerate(self._counts) if count]

    @classmethod
    def from_state(cls, state: list[list[int]]) -> HourOfWeekProfile:
        profile = cls()
        for hour, count in state:
            if not 0 <= hour < HOURS_PER_WEEK:
                raise ValueError(f"hour of week {hour} is outside 0..167")
            profile._counts[hour] = int(count)
        profile._total = sum(profile._counts)
        return profile
