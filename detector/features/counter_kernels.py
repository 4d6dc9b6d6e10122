"""The compiled steps of window counters kept in an arena (:mod:`detector.features.arena`).

A hot counter's window ``w`` is a ring of ``span`` buckets in rows of numpy
arrays: ``ring[slot, w, b % span]`` holds bucket ``b``'s id (or :data:`EMPTY`),
``counts[slot, w, b % span]`` its count per channel, ``totals[slot, w]`` the sum
of the buckets present and ``newest[slot, w]`` the newest bucket seen. A
window holds the buckets of ``(newest - span, newest]``: ``span`` consecutive
ids, one per ring position, so a bucket is found without a search. The steps
give exactly the numbers of :class:`~detector.features.windows.WindowCounter`'s
plain form (the same buckets kept, expired and changed), which stays the way
of a process that has not compiled them (:mod:`detector.jit`).

The bodies are plain Python over numpy arrays, compiled by numba.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detector.features.buckets import NO_BUCKET
from detector.features.lanes import LANE_BITS, LANE_MASK
from detector.jit import Kernel, LazyKernel

__all__ = [
    "COUNT",
    "DISCARD",
    "EMPTY",
    "MOVE",
    "READ",
    "compiled_kernels",
    "dump_kernel",
    "load_kernel",
    "step_kernel",
]

EMPTY = NO_BUCKET
"""A ring position holding no bucket; also a window's newest bucket before any."""
COUNT, READ, MOVE, DISCARD = 0, 1, 2, 3
"""What :func:`counter_step` does."""
_SPREAD_BYTES = LANE_BITS // 8  # a channel's field in a packed count
_SPREAD_LIMIT = LANE_MASK + 1

Ints = npt.NDArray[np.int64]


def counter_step(
    op: int,
    arena: tuple[Ints, Ints, Ints, Ints],
    slot: int,
    buckets: Ints,
    time: float,
    moved_from: float,
    widths: npt.NDArray[np.float64],
    nested: bool,
    increments: Ints,
    unit: Ints,
    out: npt.NDArray[np.uint8],
) -> int:
    """One step of the counter in ``slot`` of ``arena`` (ring, counts, totals, newest).

    ``buckets``: the step's bucket per window; empty, those of ``time``.

    - ``COUNT``: an event adds ``increments[w]`` to window ``w``; if ``unit`` has
      channels, a distinct value last counted at ``moved_from`` moves first (as
      ``MOVE``) and ``unit`` joins the increments of the windows it moved in.
    - ``READ``: the windows only advance to ``buckets`` (a read at a later time).
    - ``MOVE``: the move alone; returns the bit mask of the windows whose bucket
      changed (the caller counts the unit there).
    - ``DISCARD``: ``unit`` counted at ``moved_from`` is taken back in every window
      holding it.

    ``COUNT`` and ``READ`` spread each window's totals into ``out`` as a packed count's
    little-endian bytes and return 1, or 0 if a total does not fit its field (below 0 or
    past 40 bits: the caller packs ``totals`` itself).
    """
    ring, counts, totals, newest = arena
    windows, span = ring.shape[1], ring.shape[2]
    if not buckets.shape[0]:
        buckets = np.empty(windows, dtype=np.int64)
        for window in range(windows):
            buckets[window] = np.int64(time // widths[window])
    mask = 0
    if op != READ and unit.shape[0]:
        for window in range(windows):
            old = np.int64(moved_from // widths[window])
            if op != DISCARD:
                if old == buckets[window]:
                    if nested:
                        break
                    continue
                mask |= 1 << window
                if old <= newest[slot, window] - span:
                    continue
            at = old % span
            if ring[slot, window, at] == old:
                for channel in range(unit.shape[0]):
                    counts[slot, window, at, channel] -= unit[channel]
                    totals[slot, window, channel] -= unit[channel]
        if op in (MOVE, DISCARD):
            return mask
    for window in range(windows):
        bucket = buckets[window]
        last = newest[slot, window]
        if bucket > last:
            newest[slot, window] = bucket
            if bucket - last >= span:  # idle for a whole window: every bucket leaves
                ring[slot, window, :] = EMPTY
                totals[slot, window, :] = 0
            else:
                for gone in range(last - span + 1, bucket - span + 1):
                    at = gone % span
                    if ring[slot, window, at] == gone:
                        totals[slot, window, :] -= counts[slot, window, at, :]
                        ring[slot, window, at] = EMPTY
        if op == READ or bucket <= last - span:
            continue
        moved = mask >> window & 1
        if not (moved or increments[window].any()):
            continue
        at = bucket % span
        if ring[slot, window, at] != bucket:
            ring[slot, window, at] = bucket
            counts[slot, window, at, :] = 0
        for channel in range(increments.shape[1]):
            counts[slot, window, at, channel] += increments[window, channel]
            totals[slot, window, channel] += increments[window, channel]
        for channel in range(unit.shape[0] if moved else 0):
            counts[slot, window, at, channel] += unit[channel]
            totals[slot, window, channel] += unit[channel]
    fits = 1
    width = totals.shape[2]
    for window in range(windows):
        for channel in range(width):
            value = totals[slot, window, channel]
            if value < 0 or value >= _SPREAD_LIMIT:
                fits = 0
            at = (window * width + channel) * _SPREAD_BYTES
            for byte in range(_SPREAD_BYTES):
                out[at + byte] = (value >> (8 * byte)) & 255
    return fits


def counter_load(
    ring: Ints,
    counts: Ints,
    totals: Ints,
    newest: Ints,
    slot: int,
    ids: Ints,
    lanes: Ints,
    stride: int,
) -> None:
    """Fill ``slot`` from a plain counter's ids and lanes (the layout of
    :class:`~detector.features.buckets.BucketRuns`, ids widened to 8 bytes)."""
    windows = ring.shape[1]
    span = ring.shape[2]
    ring[slot, :, :] = EMPTY
    counts[slot, :, :, :] = 0
    totals[slot, :, :] = 0
    position = 2 * windows
    row = 0
    for window in range(windows):
        newest[slot, window] = ids[window]
        for _ in range(ids[windows + window]):
            bucket = ids[position]
            at = bucket % span
            ring[slot, window, at] = bucket
            for channel in range(stride):
                count = lanes[row * stride + channel]
                counts[slot, window, at, channel] = count
                totals[slot, window, channel] += count
            position += 1
            row += 1


def counter_dump(ring: Ints, counts: Ints, newest: Ints, slot: int, ids: Ints, lanes: Ints) -> int:
    """Write ``slot`` as a plain counter's ids (into ``ids``) and lanes of every channel
    (into ``lanes``, ``counts.shape[3]`` per bucket); how many buckets it holds."""
    windows = ring.shape[1]
    span = ring.shape[2]
    channels = counts.shape[3]
    position = 2 * windows
    for window in range(windows):
        last = newest[slot, window]
        ids[window] = last
        held = 0
        if last != EMPTY:
            for bucket in range(last - span + 1, last + 1):
                at = bucket % span
                if ring[slot, window, at] == bucket:
                    ids[position] = bucket
                    row = position - 2 * windows
                    lanes[row * channels : (row + 1) * channels] = counts[slot, window, at, :]
                    position += 1
                    held += 1
        ids[windows + window] = held
    return int(position - 2 * windows)


def _sample_arena() -> tuple[Ints, Ints, Ints, Ints]:
    return (
        np.full((1, 1, 2), EMPTY, dtype=np.int64),
        np.zeros((1, 1, 2, 1), dtype=np.int64),
        np.zeros((1, 1, 1), dtype=np.int64),
        np.full((1, 1), EMPTY, dtype=np.int64),
    )


step_kernel = LazyKernel(
    counter_step,
    sample_args=(
        COUNT,
        _sample_arena(),
        0,
        np.zeros(1, dtype=np.int64),
        0.0,
        0.0,
        np.ones(1),
        True,
        np.ones((1, 1), dtype=np.int64),
        np.ones(1, dtype=np.int64),
        np.zeros(_SPREAD_BYTES, dtype=np.uint8),
    ),
)
"""The compiled :func:`counter_step` (with every kernel: :func:`~detector.jit.compile_all`)."""
load_kernel = LazyKernel(
    counter_load,
    sample_args=(
        *_sample_arena(),
        0,
        np.array([5, 1, 5], dtype=np.int64),
        np.ones(1, dtype=np.int64),
        1,
    ),
)
"""The compiled :func:`counter_load`."""
dump_kernel = LazyKernel(
    counter_dump,
    sample_args=(
        *_sample_arena()[:2],
        _sample_arena()[3],
        0,
        np.zeros(4, dtype=np.int64),
        np.zeros(2, dtype=np.int64),
    ),
)
"""The compiled :func:`counter_dump`."""


def compiled_kernels(events: int = 0) -> tuple[Kernel, Kernel, Kernel] | None:
    """The step, load and dump kernels once this process has counted ``events`` more
    events and enough in all (:data:`~detector.jit.COMPILE_AFTER_ROWS`), or compiled
    them (:func:`~detector.jit.compile_all`); ``None`` before: the plain form."""
    step, load, dump = (kernel.kernel(events) for kernel in (step_kernel, load_kernel, dump_kernel))
    if step is None or load is None or dump is None:
        return None
    return step, load, dump
