"""Event-time sliding-window primitives with bounded memory.

Times are POSIX seconds (floats) taken from the events, never from the wall
clock, so replaying the same events gives the same numbers.

- :class:`WindowCounter` counts a few channels (events, failures, distinct
  values ...) over several windows at once. A window is a run of 60 buckets
  of width ``window / 60``; its count covers the buckets ending at the key's
  newest time, so a window's edge is exact to one bucket. Memory per window is
  at most 60 buckets, whatever the event rate.
- :class:`FirstSeenSet` (:mod:`detector.features.seen`, re-exported here)
  remembers values with their last (and optionally first) sighting, capped,
  forgetting values unseen for ``forget_after``. Counting each value once, in
  the bucket of its last sighting, turns a counter channel into a distinct
  count per window.

Every class has ``to_state()`` / ``from_state()`` with plain JSON data. A
store holds millions of these objects, so they keep numbers in flat arrays
and lists rather than dicts of int and float objects (docs/features.md,
"Memory bounds").
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import accumulate, pairwise
from typing import Any

from detector.features.seen import FirstSeenSet, SetLimits

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

    The buckets of every window live in two flat sequences, window after
    window, each window's run sorted by bucket: their ids in one
    ``array("q")`` and their packed counts in one list. A counter exists per
    actor, IP and target, and this costs a third of a dict per window keyed by
    bucket-id ints.

    >>> spec = WindowSpec([300.0])
    >>> counter = WindowCounter(spec)
    >>> _ = counter.add(spec.bucket_ids(1000.0), [lane(0) + lane(1)])
    >>> unpack(counter.add(spec.bucket_ids(1010.0), [lane(0)])[0], 2)
    [2, 1]
    >>> unpack(counter.counts(1400.0)[0], 2)
    [0, 0]
    """

    __slots__ = ("_counts", "_ids", "_marks", "_spec", "_totals")

    def __init__(self, spec: WindowSpec) -> None:
        self._spec = spec
        windows = len(spec.widths)
        self._ids = array("q")
        self._counts: list[int] = []
        # The newest bucket of each window, then how many buckets each window
        # holds: window w's run starts after the runs of windows 0 .. w-1. Every
        # method walks the windows in order, adding up where each run starts.
        self._marks = array("q", [_NO_BUCKET] * windows + [0] * windows)
        self._totals = [0] * windows

    def add(self, ids: Sequence[int], increments: Sequence[int]) -> list[int]:
        """Add the packed ``increments[w]`` to bucket ``ids[w]``; the packed totals per window.

        The returned list is the counter's own: read it, do not keep or change it.
        """
        span = self._spec.buckets
        marks, keys, counts, totals = self._marks, self._ids, self._counts, self._totals
        windows = len(totals)
        start = 0
        for window, bucket in enumerate(ids):
            newest = marks[window]
            increment = increments[window]
            length = marks[windows + window]
            if bucket > newest:
                marks[window] = bucket
                if length and keys[start] <= bucket - span:
                    length = self._expire(window, start, length, bucket, newest)
                if increment:  # the newest bucket goes last in its window's run
                    keys.insert(start + length, bucket)
                    counts.insert(start + length, increment)
                    marks[windows + window] = length = length + 1
                    totals[window] += increment
            elif increment and bucket > newest - span:
                end = start + length
                if length and keys[end - 1] == bucket:
                    counts[end - 1] += increment
                else:
                    position = bisect_left(keys, bucket, start, end)
                    if position < end and keys[position] == bucket:
                        counts[position] += increment
                    else:  # rare: an out-of-order time opens a bucket within the run
                        keys.insert(position, bucket)
                        counts.insert(position, increment)
                        marks[windows + window] = length = length + 1
                totals[window] += increment
            start += length
        return totals

    def _expire(self, window: int, start: int, length: int, bucket: int, previous: int) -> int:
        """Drop the buckets of ``window`` now older than its span; how many it keeps."""
        end = start + length
        cutoff = bucket - self._spec.buckets
        if previous <= cutoff:  # idle for a whole window: all expired
            stop = end
            self._totals[window] = 0
        elif length == 1 or self._ids[start + 1] > cutoff:  # most often: just the oldest
            stop = start + 1
            self._totals[window] -= self._counts[start]
        else:
            stop = bisect_right(self._ids, cutoff, start, end)
            self._totals[window] -= sum(self._counts[start:stop])
        del self._ids[start:stop]
        del self._counts[start:stop]
        length -= stop - start
        self._marks[len(self._totals) + window] = length
        return length

    def move(self, previous: float, ids: Sequence[int], unit: int, increments: list[int]) -> None:
        """A distinct value counted (``unit``) at time ``previous`` is seen again in ``ids``.

        Takes it out of its old bucket wherever the bucket changes and adds
        ``unit`` to ``increments`` for those windows, for the coming :meth:`add`.
        """
        nested = self._spec.nested
        span = self._spec.buckets
        marks, keys, counts, totals = self._marks, self._ids, self._counts, self._totals
        windows = len(totals)
        start = 0
        for window, width in enumerate(self._spec.widths):
            old = int(previous // width)
            if old == ids[window]:
                if nested:
                    return
                start += marks[windows + window]
                continue
            end = start + marks[windows + window]
            # Every bucket a window holds is newer than its newest minus its span.
            if old > marks[window] - span:
                position = end - 1  # most often the value was last seen in the newest bucket
                if position < start or keys[position] != old:
                    position = bisect_left(keys, old, start, end)
                if position < end and keys[position] == old:
                    counts[position] -= unit
                    totals[window] -= unit
            increments[window] += unit
            start = end

    def discard(self, time: float, unit: int) -> None:
        """Take back ``unit`` counted at ``time``, in the windows still holding its bucket."""
        marks, keys, totals = self._marks, self._ids, self._totals
        windows = len(totals)
        start = 0
        for window, width in enumerate(self._spec.widths):
            bucket = int(time // width)
            end = start + marks[windows + window]
            position = bisect_left(keys, bucket, start, end)
            if position < end and keys[position] == bucket:
                self._counts[position] -= unit
                totals[window] -= unit
            start = end

    def counts(self, now: float) -> list[int]:
        """Per window, the packed totals of the window ending at ``now`` (own list: read only)."""
        marks, windows = self._marks, len(self._totals)
        start = 0
        for window, bucket in enumerate(self._spec.bucket_ids(now)):
            length = marks[windows + window]
            newest = marks[window]
            if bucket > newest:
                marks[window] = bucket
                if length and self._ids[start] <= bucket - self._spec.buckets:
                    length = self._expire(window, start, length, bucket, newest)
            start += length
        return self._totals

    def _windows(self) -> list[list[tuple[int, int]]]:
        """Per window, its ``(bucket, packed count)`` pairs in bucket order."""
        pairs = list(zip(self._ids, self._counts, strict=True))
        ends = accumulate(self._marks[len(self._totals) :], initial=0)
        return [pairs[start:end] for start, end in pairwise(ends)]

    def to_state(self) -> dict[str, Any]:
        """Plain JSON: per window the newest bucket and ``[bucket, count per channel...]`` rows."""
        newest = self._marks[: len(self._totals)]
        return {
            "newest": [None if bucket == _NO_BUCKET else bucket for bucket in newest],
            "buckets": [
                [[bucket, *_lanes(count)] for bucket, count in pairs] for pairs in self._windows()
            ],
        }

    @classmethod
    def from_state(cls, spec: WindowSpec, state: dict[str, Any]) -> WindowCounter:
        """Rebuild a counter from :meth:`to_state`; raises ``ValueError`` if it does not fit."""
        counter = cls(spec)
        newest, rows_per_window = state["newest"], state["buckets"]
        windows = len(spec.widths)
        if len(newest) != windows or len(rows_per_window) != windows:
            raise ValueError("counter state has a different number of windows")
        for window, rows in enumerate(rows_per_window):
            counter._marks[window] = _NO_BUCKET if newest[window] is None else int(newest[window])
            buckets: dict[int, int] = {}
            for bucket, *counts in rows:
                if not all(0 <= int(count) <= LANE_MASK for count in counts):
                    raise ValueError(f"bucket {bucket} has a count out of range")
                buckets[int(bucket)] = sum(
                    lane(channel) * int(count) for channel, count in enumerate(counts)
                )
            for bucket in sorted(buckets):
                counter._ids.append(bucket)
                counter._counts.append(buckets[bucket])
            counter._marks[windows + window] = len(buckets)
            counter._totals[window] = sum(buckets.values())
        return counter
