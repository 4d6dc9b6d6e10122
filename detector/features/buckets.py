"""The runs of buckets a window counter keeps, and their edits and plain JSON form.

A :class:`~detector.features.windows.WindowCounter` exists per actor, IP and
target, so its buckets are kept small: the bucket ids of every window in one
``array("i")`` (``"q"`` once an id outgrows 4 bytes), window after window, each
window's run sorted by bucket (after a header: the newest bucket of each
window, then how many buckets each window holds), and their counts unpacked
in one array of ``stride`` lanes per bucket (:mod:`detector.features.lanes`).
:class:`BucketRuns` holds them and the edits the counter's hot paths leave to
it: opening a bucket, changing one, widening the lanes or ids, expiring the
oldest; and reads them into and out of plain JSON.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from itertools import accumulate, pairwise
from typing import TYPE_CHECKING, Any

from detector.features.lanes import (
    KINDS,
    LANE_MASK,
    PACKED,
    ROWS,
    WIDER,
    bucket_row,
    channel_counts,
    frozen,
    lane,
    packed_sum,
    restrided,
    split,
    thawed,
    with_count,
)

if TYPE_CHECKING:
    from detector.features.arena import HotSlot
    from detector.features.windows import WindowSpec

__all__ = ["NO_BUCKET", "NO_SMALL_BUCKET", "BucketRuns", "checked_stride", "lanes_per_bucket"]

NO_BUCKET = -(1 << 62)
"""A window's newest bucket before any (8-byte ids)."""
# Bucket ids are 4-byte ints (a second-wide bucket fits until 2038, the default
# 5 s ones for centuries) until one does not fit; then 8 bytes, and the smaller
# "no bucket yet" mark becomes NO_BUCKET.
NO_SMALL_BUCKET = -(1 << 31)
"""A window's newest bucket before any (4-byte ids)."""
_NO_BUCKET_OF = {"i": NO_SMALL_BUCKET, "q": NO_BUCKET}
_MOST_CHANNELS = 64  # a sane bound on lanes per bucket (an actor counts 23 channels)


def lanes_per_bucket(ids: array[int], lanes: array[int], windows: int) -> int:
    """The stride of a counter's ``lanes`` (0 while it holds no bucket), from its ``ids``."""
    held = len(ids) - 2 * windows
    return len(lanes) // held if held else 0


def checked_stride(data: bytes, windows: int, span: int) -> int:
    """The stride of the counter :func:`~detector.features.lanes.frozen` made into ``data``;
    ``ValueError`` unless it holds ``windows`` runs of buckets, each sorted, at most ``span``
    long and within ``span`` of its newest bucket, and lanes for each of their buckets.

    A restored counter goes to compiled kernels that do not check their indices, so
    damaged bytes must be refused here.
    """
    if not data or data[0] >= KINDS:
        raise ValueError("counter bytes of an unknown kind")
    ids, lanes = thawed(data, windows)
    runs, held = ids[windows : 2 * windows], len(ids) - 2 * windows
    if len(runs) != windows or min(runs, default=0) < 0 or sum(runs) != held:
        raise ValueError("counter bytes do not hold their runs of buckets")
    stride = len(lanes) // held if held else 0
    if len(lanes) != held * stride or stride > _MOST_CHANNELS:
        raise ValueError("counter bytes do not hold lanes for each bucket")
    if lanes.typecode == "q" and lanes and not -LANE_MASK <= min(lanes) <= max(lanes) <= LANE_MASK:
        raise ValueError("counter bytes hold a count out of range")
    start, none = 2 * windows, _NO_BUCKET_OF[ids.typecode]
    for newest, length in zip(ids[:windows], runs, strict=True):
        run = ids[start : start + length]
        start += length
        if length and (
            newest == none
            or length > span
            or run[0] <= newest - span
            or run[-1] > newest
            or any(earlier >= later for earlier, later in pairwise(run))
        ):
            raise ValueError("counter bytes hold buckets out of their window")
    return stride


class BucketRuns:
    """A window counter's buckets: ids and lanes, and the edits on them.

    ``_totals``, the counter's packed totals per window, is declared here (one
    set of slots) and kept by the counter: a list while hot, or the arena slot
    it is hot in (:mod:`detector.features.arena`); its ids and lanes frozen into
    bytes (:func:`~detector.features.lanes.frozen`) while cold, None while new.
    """

    __slots__ = ("_ids", "_lanes", "_spec", "_stride", "_totals")

    def __init__(self, spec: WindowSpec) -> None:
        self._spec = spec
        windows = len(spec.widths)
        # _ids[w]: the newest bucket of window w; _ids[W + w]: how many buckets
        # window w holds; from 2W on, the buckets: window w's run starts after
        # the runs of windows 0 .. w-1. Every method walks the windows in order,
        # adding up where each run starts.
        self._ids = array("i", [NO_SMALL_BUCKET] * windows + [0] * windows)
        self._lanes = array("B")  # bucket k's channel c at k * stride + c (k from 0)
        self._stride = 0  # channels per bucket: grows to the highest channel counted
        # Hot: the packed totals per window; cold: the frozen ids and lanes; None: new.
        self._totals: list[int] | bytes | HotSlot | None = None

    def _open(self, position: int, bucket: int, increment: int) -> None:
        """A new bucket at ``position`` of ``_ids`` holding ``increment``."""
        lanes = self._lanes
        row = ROWS.get((increment, lanes.typecode, self._stride))
        if row is None:
            row = self._row(increment)
            lanes = self._lanes
        try:
            self._ids.insert(position, bucket)
        except OverflowError:
            self._wide_ids().insert(position, bucket)
        at = (position - 2 * len(self._spec.widths)) * self._stride
        lanes[at:at] = row

    def _row(self, increment: int) -> array[int]:
        """The lanes of a bucket holding ``increment``, lanes widened until it fits."""
        top = split(increment)[-1][0]
        if top >= self._stride:
            self._widen(top + 1)
        while True:
            try:
                return bucket_row(increment, self._lanes.typecode, self._stride)
            except OverflowError:
                self._lanes = array(WIDER[self._lanes.typecode], self._lanes)

    def _change(self, position: int, packed: int, sign: int) -> None:
        """Add (``sign`` 1) or take (-1) ``packed`` to the bucket at ``position`` of ``_ids``."""
        channels = split(packed)
        if channels[-1][0] >= self._stride:
            self._widen(channels[-1][0] + 1)
        lanes = self._lanes
        at = (position - 2 * len(self._spec.widths)) * self._stride
        for channel, count in channels:
            try:
                lanes[at + channel] += sign * count
            except OverflowError:
                self._set_wider(at + channel, lanes[at + channel] + sign * count)
                lanes = self._lanes

    def _wide_ids(self) -> array[int]:
        """Switch to 8-byte bucket ids (a bucket id outgrew 4 bytes); the new ids."""
        windows = len(self._spec.widths)
        ids = array("q", self._ids)
        for window in range(windows):
            if ids[window] == NO_SMALL_BUCKET:
                ids[window] = NO_BUCKET
        self._ids = ids
        return ids

    def _set_wider(self, index: int, count: int) -> None:
        """Store ``count`` at lane ``index``, widening every lane until it fits."""
        self._lanes = with_count(self._lanes, index, count)

    def _widen(self, stride: int) -> None:
        """Give every bucket ``stride`` lanes (a channel beyond the current ones is counted)."""
        self._lanes = restrided(self._lanes, self._stride, stride)
        self._stride = stride

    def _packed(self, first: int, stop: int) -> int:
        """The packed sum of buckets ``first .. stop - 1`` (counted from 0)."""
        return packed_sum(self._lanes, self._stride, first, stop)

    def _expire(
        self, window: int, start: int, length: int, bucket: int, previous: int, totals: list[int]
    ) -> int:
        """Drop the buckets of ``window`` now older than its span; how many it keeps.

        ``totals``: the counter's own (hot) totals, which lose the dropped buckets.
        """
        end = start + length
        cutoff = bucket - self._spec.buckets
        base = 2 * len(totals)
        if previous <= cutoff:  # idle for a whole window: all expired
            stop = end
            totals[window] = 0
        else:
            if length == 1 or self._ids[start + 1] > cutoff:  # most often: just the oldest
                stop = start + 1
                lanes, stride = self._lanes, self._stride
                at = (start - base) * stride  # packed_sum inline: a bucket remembered by its bytes
                packed = PACKED.get((lanes.typecode, lanes[at : at + stride].tobytes()))
                if packed is None:
                    packed = self._packed(start - base, stop - base)
            else:
                stop = bisect_right(self._ids, cutoff, start, end)
                packed = self._packed(start - base, stop - base)
            totals[window] -= packed
        del self._ids[start:stop]
        stride = self._stride
        del self._lanes[(start - base) * stride : (stop - base) * stride]
        length -= stop - start
        self._ids[len(totals) + window] = length
        return length

    def _arrays(self) -> tuple[array[int], array[int]]:
        """The bucket ids and lanes, thawed (for reading only) if the counter is cold."""
        if isinstance(self._totals, bytes):
            return thawed(self._totals, len(self._spec.widths))
        return self._ids, self._lanes

    def _windows(self) -> list[list[tuple[int, int]]]:
        """Per window, its ``(bucket, packed count)`` pairs in bucket order."""
        windows = len(self._spec.widths)
        ids, lanes = self._arrays()
        stride = lanes_per_bucket(ids, lanes, windows)
        buckets = ids[2 * windows :]
        pairs = [(bucket, packed_sum(lanes, stride, k, k + 1)) for k, bucket in enumerate(buckets)]
        ends = accumulate(ids[windows : 2 * windows], initial=0)
        return [pairs[start:end] for start, end in pairwise(ends)]

    def to_state(self) -> dict[str, Any]:
        """Plain JSON: per window the newest bucket and ``[bucket, count per channel...]`` rows."""
        newest = self._arrays()[0][: len(self._spec.widths)]
        none = _NO_BUCKET_OF[newest.typecode]
        return {
            "newest": [None if bucket == none else bucket for bucket in newest],
            "buckets": [
                [[bucket, *channel_counts(count)] for bucket, count in pairs]
                for pairs in self._windows()
            ],
        }

    def frozen_counts(self) -> bytes:
        """The buckets as :func:`~detector.features.lanes.frozen` bytes, the counter unchanged
        (a snapshot: a cold counter's own bytes, a hot one's copied)."""
        totals = self._totals
        return totals if isinstance(totals, bytes) else frozen(*self._arrays())

    def load_counts(self, state: dict[str, Any]) -> None:
        """Fill this empty counter from :meth:`to_state` (a key state is its own counter)."""
        spec = self._spec
        newest, rows_per_window = state["newest"], state["buckets"]
        windows = len(spec.widths)
        if len(newest) != windows or len(rows_per_window) != windows:
            raise ValueError("counter state has a different number of windows")
        for window, rows in enumerate(rows_per_window):
            if newest[window] is not None:
                try:
                    self._ids[window] = int(newest[window])
                except OverflowError:
                    self._wide_ids()[window] = int(newest[window])
            buckets: dict[int, int] = {}
            for bucket, *counts in rows:
                if not all(0 <= int(count) <= LANE_MASK for count in counts):
                    raise ValueError(f"bucket {bucket} has a count out of range")
                buckets[int(bucket)] = sum(
                    lane(channel) * int(count) for channel, count in enumerate(counts)
                )
            for bucket in sorted(buckets):
                position = len(self._ids)
                self._open(position, bucket, buckets[bucket])
            self._ids[windows + window] = len(buckets)
