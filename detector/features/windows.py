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

A process that has compiled the counter kernels keeps hot counters in an arena
instead (:mod:`detector.features.arena`), to the same numbers.

Every class has ``to_state()`` / ``from_state()`` with plain JSON data. A
store holds millions of these objects, so they keep numbers in flat arrays
and lists rather than dicts of int and float objects (docs/features.md,
"Memory bounds").
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from detector.features.arena import HotSlot, Pending
from detector.features.buckets import (
    NO_BUCKET,
    NO_SMALL_BUCKET,
    BucketRuns,
    checked_stride,
    lanes_per_bucket,
)
from detector.features.lanes import (
    LANE_BITS,
    LANE_MASK,
    ROWS,
    SPLITS,
    frozen,
    lane,
    thawed,
    unpack,
    window_sums,
)
from detector.features.seen import FirstSeenSet, SetLimits
from detector.features.spec import BUCKETS_PER_WINDOW, WindowSpec

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

_COLD_IDS = array("i")  # a cold counter's arrays: never changed, it thaws first
_COLD_LANES = array("B")


class WindowCounter(BucketRuns):
    """Counts of a few channels over every window of a :class:`WindowSpec`.

    Counts go in and out *packed*: channel ``c`` occupies bits ``40c .. 40c+39``
    of one Python int (see :func:`lane`, :func:`unpack`), so the totals of a
    window with all their channels are one integer.

    ``add(ids, increments)`` adds ``increments[w]`` to bucket ``ids[w]`` of each
    window ``w`` and returns the packed totals per window, ending at the newest
    time ever added; ``move`` re-buckets a distinct value seen again;
    ``discard`` takes a count back. Times may arrive out of order: an older
    time lands in its own bucket while that bucket is still in the window,
    otherwise it is ignored for that window.

    A counter exists per actor, IP and target, so its buckets are kept small
    (:class:`~detector.features.buckets.BucketRuns`: ids in one array, counts
    unpacked in lanes of a byte each until a count outgrows it): a packed int
    per bucket cost 30 to 110 bytes, a bucket of an actor's 17 channels is 17
    bytes there. Only the totals stay packed, and only while the counter is
    *hot* (:data:`HOT_TOTALS`): a cold counter keeps its ids and lanes frozen
    in one bytes object and no totals, and is thawed and summed when next
    counted.

    >>> spec = WindowSpec([300.0])
    >>> counter = WindowCounter(spec)
    >>> _ = counter.add(spec.bucket_ids(1000.0), [lane(0) + lane(1)])
    >>> unpack(counter.add(spec.bucket_ids(1010.0), [lane(0)])[0], 2)
    [2, 1]
    >>> unpack(counter.counts(1400.0)[0], 2)
    [0, 0]
    """

    __slots__ = ()

    def add(self, ids: Sequence[int], increments: Sequence[int]) -> list[int]:
        """Add the packed ``increments[w]`` to bucket ``ids[w]``; the packed totals per window.

        The returned list is the counter's own: read it, do not keep or change it.
        """
        span = self._spec.buckets
        totals = self._totals
        if not isinstance(totals, list):
            totals = self._hot()
            if isinstance(totals, HotSlot):
                arena = totals.arena
                return arena.packed(arena.count(totals.slot, ids, increments, None, 0))
        keys = self._ids
        windows = len(totals)
        start = base = 2 * windows
        unset = NO_SMALL_BUCKET
        for window, bucket in enumerate(ids):
            newest = keys[window]
            if newest == unset and bucket <= newest:  # a time before 1902
                keys, newest = self._wide_ids(), NO_BUCKET
            increment = increments[window]
            length = keys[windows + window]
            if bucket > newest:
                try:
                    keys[window] = bucket
                except OverflowError:
                    keys = self._wide_ids()
                    keys[window] = bucket
                if length and keys[start] <= bucket - span:
                    if newest <= bucket - span:  # idle for a whole window: _expire inline
                        at = (start - base) * self._stride
                        del keys[start : start + length]
                        del self._lanes[at : at + length * self._stride]
                        keys[windows + window] = length = 0
                        totals[window] = 0
                    else:
                        length = self._expire(window, start, length, bucket, newest, totals)
                if increment:  # the newest bucket goes last in its window's run
                    lanes = self._lanes  # _open inline: a sparse key opens a bucket per event
                    stride = self._stride
                    row = ROWS.get((increment, lanes.typecode, stride))
                    if row is None:
                        row = self._row(increment)
                        lanes, stride = self._lanes, self._stride
                    end = start + length
                    keys.insert(end, bucket)  # fits: it is the newest mark already
                    at = (end - base) * stride
                    lanes[at:at] = row
                    keys[windows + window] = length = length + 1
                    totals[window] += increment
            elif increment and bucket > newest - span:
                end = start + length
                channels = SPLITS.get(increment)
                if (
                    length
                    and keys[end - 1] == bucket
                    and channels
                    and channels[-1][0] < self._stride
                ):
                    lanes = self._lanes  # _change inline: a busy key adds to its newest bucket
                    at = (end - 1 - base) * self._stride
                    for channel, count in channels:
                        try:
                            lanes[at + channel] += count
                        except OverflowError:
                            self._set_wider(at + channel, lanes[at + channel] + count)
                            lanes = self._lanes
                elif length and keys[end - 1] == bucket:
                    self._change(end - 1, increment, 1)
                else:
                    position = bisect_left(keys, bucket, start, end)
                    if position < end and keys[position] == bucket:
                        self._change(position, increment, 1)
                    else:  # rare: an out-of-order time opens a bucket within the run
                        self._open(position, bucket, increment)
                        keys = self._ids  # in case the ids widened
                        keys[windows + window] = length = length + 1
                totals[window] += increment
            start += length
        return totals

    def count_later(
        self,
        time: float,
        ids: Sequence[int],
        increments: list[int],
        moved_from: float | None,
        unit: int,
    ) -> list[int] | Pending:
        """:meth:`add` of an event at ``time`` (buckets ``ids``), after :meth:`move` of a
        distinct value (``unit``) last counted at ``moved_from`` if not None; the totals,
        which an arena gives once it runs its queue (a copy here)."""
        totals = self._totals
        if type(totals) is not HotSlot and not isinstance(totals, list):
            totals = self._hot()
        if isinstance(totals, HotSlot):
            arena = totals.arena
            return arena, arena.count(totals.slot, ids, increments, moved_from, unit)
        if moved_from is not None:
            self.move(moved_from, ids, unit, increments)
        return self.add(ids, increments)[:]

    def move_later(
        self, previous: float, ids: Sequence[int], unit: int, increments: list[int]
    ) -> None:
        """:meth:`move` before a :meth:`count_later`: in an arena, queued, ``unit`` joining
        that count's increments there (``increments`` unchanged)."""
        totals = self._hot()
        if isinstance(totals, HotSlot):
            totals.arena.carry(totals.slot, previous, ids, unit)
        else:
            self.move(previous, ids, unit, increments)

    def move(self, previous: float, ids: Sequence[int], unit: int, increments: list[int]) -> None:
        """A distinct value counted (``unit``) at time ``previous`` is seen again in ``ids``.

        Takes it out of its old bucket wherever the bucket changes and adds
        ``unit`` to ``increments`` for those windows, for the coming :meth:`add`.
        """
        nested = self._spec.nested
        span = self._spec.buckets
        totals = self._totals
        if not isinstance(totals, list):
            totals = self._hot()
            if isinstance(totals, HotSlot):
                mask = totals.arena.move(totals.slot, previous, ids, unit)
                for window in range(len(increments) if mask else 0):
                    if mask >> window & 1:
                        increments[window] += unit
                return
        keys = self._ids
        windows = len(totals)
        start = base = 2 * windows
        channels = SPLITS.get(unit)  # _change inline: runs per value seen again
        if channels is None or channels[-1][0] >= self._stride:
            channels = ()  # not split yet, or a channel beyond the lanes: by _change
        for window, width in enumerate(self._spec.widths):
            old = int(previous // width)
            if old == ids[window]:
                if nested:
                    return
                start += keys[windows + window]
                continue
            end = start + keys[windows + window]
            # Every bucket a window holds is newer than its newest minus its span.
            if old > keys[window] - span:
                position = end - 1  # most often the value was last seen in the newest bucket
                if position < start or keys[position] != old:
                    position = bisect_left(keys, old, start, end)
                if position < end and keys[position] == old:
                    if channels:
                        at = (position - base) * self._stride
                        for channel, count in channels:
                            try:
                                self._lanes[at + channel] -= count
                            except OverflowError:  # below 0: lanes become signed
                                self._set_wider(at + channel, self._lanes[at + channel] - count)
                    else:
                        self._change(position, unit, -1)
                    totals[window] -= unit
            increments[window] += unit
            start = end

    def discard(self, time: float, unit: int) -> None:
        """Take back ``unit`` counted at ``time``, in the windows still holding its bucket."""
        totals = self._totals
        if not isinstance(totals, list):
            totals = self._hot()
            if isinstance(totals, HotSlot):
                totals.arena.discard(totals.slot, time, unit)
                return
        keys = self._ids
        windows = len(totals)
        start = 2 * windows
        for window, width in enumerate(self._spec.widths):
            bucket = int(time // width)
            end = start + keys[windows + window]
            position = bisect_left(keys, bucket, start, end)
            if position < end and keys[position] == bucket:
                self._change(position, unit, -1)
                totals[window] -= unit
            start = end

    def counts(self, now: float) -> list[int]:
        """Per window, the packed totals of the window ending at ``now`` (own list: read only)."""
        totals = self._totals
        if not isinstance(totals, list):
            totals = self._hot()
            if isinstance(totals, HotSlot):
                arena = totals.arena
                return arena.packed(arena.read(totals.slot, self._spec.bucket_ids(now)))
        keys, windows = self._ids, len(totals)
        start = 2 * windows
        for window, bucket in enumerate(self._spec.bucket_ids(now)):
            length = keys[windows + window]
            newest = keys[window]
            if newest == NO_SMALL_BUCKET and bucket <= newest:  # a time before 1902
                keys, newest = self._wide_ids(), NO_BUCKET
            if bucket > newest:
                try:
                    keys[window] = bucket
                except OverflowError:
                    keys = self._wide_ids()
                    keys[window] = bucket
                if length and keys[start] <= bucket - self._spec.buckets:
                    length = self._expire(window, start, length, bucket, newest, totals)
            start += length
        return totals

    def totals_later(self) -> list[int] | Pending:
        """The packed totals per window as they are, which an arena gives once it runs its
        queue (a copy here)."""
        totals = self._hot()
        if isinstance(totals, HotSlot):
            return totals.arena, totals.arena.read(totals.slot)
        return totals[:]

    def _hot(self) -> list[int] | HotSlot:
        """The counter's hot form (made hot if it is not)."""
        totals = self._totals
        if isinstance(totals, (list, HotSlot)):
            return totals
        return self._hot_totals()

    def _hot_totals(self) -> list[int] | HotSlot:
        """Make the counter hot (:data:`HOT_TOTALS`): its buckets thawed, its totals summed;
        in an arena's slot once the process has compiled the counter kernels.

        The counter that has been hot the longest goes cold to make room.
        """
        hot, windows = self._spec.hot, len(self._spec.widths)
        if isinstance(self._totals, bytes):
            self._ids, self._lanes = thawed(self._totals, windows)
        arena = self._spec.arena(type(self))
        if arena is not None:
            slot = self._totals = arena.claim(self, self._ids, self._lanes)
            self._ids, self._lanes = _COLD_IDS, _COLD_LANES
            return slot
        totals = window_sums(self._lanes, self._stride, self._ids[windows : 2 * windows])
        if len(hot) >= self._spec.hot_limit:
            hot.popleft().cool()
        hot.append(self)
        self._totals = totals
        return totals

    def into_arena(self) -> None:
        """Make the counter hot in its arena (an actor's values, a key's actors in their
        pool): from the plain form too (a process compiles the kernels after a while,
        :mod:`detector.jit`)."""
        if not isinstance(self._totals, bytes):  # hot the plain way, or without a pool
            self.cool()
        self._hot()

    @property
    def pool_slot(self) -> int:
        """The counter's slot in its arena, where its owner's values are in their pool
        (it is made hot)."""
        totals = self._hot()
        assert isinstance(totals, HotSlot)
        return totals.slot

    def cool(self) -> None:
        """Go cold: totals dropped, buckets frozen (other counters were counted since, or restored).

        A key that went cold is likely idle: subclasses compact their other
        containers here too (arrays that grow keep room for more).
        """
        totals = self._totals
        if isinstance(totals, HotSlot):
            ids, lanes = totals.arena.release(totals.slot)
            self._stride = lanes_per_bucket(ids, lanes, len(self._spec.widths))
            self._totals = frozen(ids, lanes)
            self._ids, self._lanes = _COLD_IDS, _COLD_LANES
        elif not isinstance(totals, bytes):  # not cold already
            self._totals = frozen(self._ids, self._lanes)
            self._ids, self._lanes = _COLD_IDS, _COLD_LANES

    def _arrays(self) -> tuple[array[int], array[int]]:
        totals = self._totals
        if isinstance(totals, HotSlot):
            return totals.arena.dump(totals.slot)
        return super()._arrays()

    def load_frozen(self, data: bytes) -> None:
        """Make this new counter the cold one :meth:`frozen_counts` gave ``data`` for;
        ``ValueError`` if ``data`` is not a counter of these windows."""
        self._stride = checked_stride(data, len(self._spec.widths), self._spec.buckets)
        self._totals = data
        self._ids, self._lanes = _COLD_IDS, _COLD_LANES

    @classmethod
    def from_state(cls, spec: WindowSpec, state: dict[str, Any]) -> WindowCounter:
        """Rebuild a counter from :meth:`to_state`; raises ``ValueError`` if it does not fit."""
        counter = cls(spec)
        counter.load_counts(state)
        return counter
