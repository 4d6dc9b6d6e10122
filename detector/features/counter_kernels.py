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

An arena queues the steps of a whole batch of events and runs them in one
call of :func:`counter_steps`, which writes each counting step's totals to a
row of its results: one dispatch per batch instead of one per key and event.
The bodies are plain Python over numpy arrays, compiled by numba, each for
buckets' counts in 4 bytes and in 8 (an arena's counts are 4 bytes until one
would not fit: :class:`~detector.features.arena.CounterArena`); ids, totals and
the rest are 8 bytes. Arithmetic is in 8 bytes; a count is stored in its arena's width.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detector.features.buckets import NO_BUCKET, NO_SMALL_BUCKET
from detector.jit import Kernel, LazyKernel

__all__ = [
    "CARRY",
    "COUNT",
    "DISCARD",
    "EMPTY",
    "MOVE",
    "OP_FIELDS",
    "READ",
    "SMALL_ID",
    "compiled_kernels",
    "dump_kernel",
    "load_kernel",
    "step_kernel",
]

EMPTY = NO_BUCKET
"""A ring position holding no bucket; also a window's newest bucket before any."""
SMALL_ID = 1 << 31
"""Bucket ids below this (and above :data:`NO_SMALL_BUCKET`) fit a 4-byte plain counter."""
COUNT, READ, MOVE, DISCARD, CARRY = 0, 1, 2, 3, 4
"""What a step of :func:`counter_steps` does."""
OP_FIELDS = 4
"""A step's row in ``ops``: what it does, its slot, its increments' row, its unit's row."""

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def counter_steps(
    ops: Ints,
    moved_from: Floats,
    buckets: Ints,
    arena: tuple[Ints, Ints, Ints, Ints],
    widths: Floats,
    nested: bool,
    increments: Ints,
    units: Ints,
    carry: Ints,
    results: Ints,
) -> int:
    """Steps of the counters of ``arena`` (ring, counts, totals, newest), in order.

    Step ``i`` is ``ops[i]`` (what, slot, row of ``increments``, row of ``units``; unit
    row 0 is none) at the buckets ``buckets[i]`` (one per window):

    - ``COUNT``: an event adds ``increments[row, w]`` to window ``w``; if it has a
      unit, a distinct value last counted at ``moved_from[i]`` moves first (as
      ``MOVE``) and the unit joins the increments of the windows it moved in;
      so do the units ``CARRY`` steps left in ``carry``, which it empties.
    - ``READ``: the windows only advance to the buckets (a read at a later time;
      :data:`EMPTY` buckets advance nothing).
    - ``MOVE``: the move alone; the step's mask of the windows whose bucket changed
      is returned if it is the last (the caller counts the unit there).
    - ``CARRY``: the move, its unit kept in ``carry`` for the windows it moved in,
      for the next ``COUNT``.
    - ``DISCARD``: the unit counted at ``moved_from[i]`` is taken back in every window
      holding it.

    ``COUNT`` and ``READ`` write the slot's totals after the step to the next row of
    ``results``.
    """
    ring, counts, totals, newest = arena
    windows, span, channels = ring.shape[1], ring.shape[2], counts.shape[3]
    mask = 0
    written = 0
    # Whether ``carry`` holds units: emptied by the next COUNT, which may come in a later call.
    carried = False
    for window in range(windows):
        for channel in range(channels):
            carried = carried or carry[window, channel] != 0
    # Channel by channel rather than through slices: a step changes a few short rows of
    # a large arena, and a slice's view costs more than its handful of additions.
    for step in range(ops.shape[0]):
        op, slot, row, unit_row = ops[step, 0], ops[step, 1], ops[step, 2], ops[step, 3]
        moved = 0
        if op != READ and unit_row:  # the unit out of its old bucket (see MOVE, DISCARD)
            for window in range(windows):
                old = np.int64(moved_from[step] // widths[window])
                if op != DISCARD:
                    if old == buckets[step, window]:
                        if nested:
                            break
                        continue
                    moved |= 1 << window
                    if old <= newest[slot, window] - span:
                        continue
                at = old % span
                if ring[slot, window, at] == old:
                    for channel in range(channels):
                        counts[slot, window, at, channel] -= units[unit_row, channel]
                        totals[slot, window, channel] -= units[unit_row, channel]
        if op == MOVE:
            mask = moved
            continue
        if op == CARRY:
            for window in range(windows):
                if moved >> window & 1:
                    carried = True
                    for channel in range(channels):
                        carry[window, channel] += units[unit_row, channel]
            continue
        if op == DISCARD:
            continue
        for window in range(windows):
            bucket = buckets[step, window]
            last = newest[slot, window]
            if bucket > last:
                newest[slot, window] = bucket
                if bucket - last >= span:  # idle for a whole window: every bucket leaves
                    for at in range(span):
                        ring[slot, window, at] = EMPTY
                    for channel in range(channels):
                        totals[slot, window, channel] = 0
                else:
                    for gone in range(last - span + 1, bucket - span + 1):
                        at = gone % span
                        if ring[slot, window, at] == gone:
                            for channel in range(channels):
                                totals[slot, window, channel] -= counts[slot, window, at, channel]
                            ring[slot, window, at] = EMPTY
            if op == READ or bucket <= last - span:
                continue
            unit = moved >> window & 1
            adds = unit == 1
            for channel in range(channels):
                if adds:
                    break
                adds = increments[row, window, channel] != 0 or (
                    carried and carry[window, channel] != 0
                )
            if not adds:
                continue
            at = bucket % span
            if ring[slot, window, at] != bucket:
                ring[slot, window, at] = bucket
                for channel in range(channels):
                    counts[slot, window, at, channel] = 0
            for channel in range(channels):
                added = increments[row, window, channel]
                if carried:
                    added += carry[window, channel]
                if unit:
                    added += units[unit_row, channel]
                counts[slot, window, at, channel] += added
                totals[slot, window, channel] += added
        if op == COUNT and carried:
            carry[:, :] = 0
            carried = False
        for window in range(windows):
            for channel in range(channels):
                results[written, window, channel] = totals[slot, window, channel]
        written += 1
    return mask


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


def counter_dump(
    ring: Ints, counts: Ints, newest: Ints, slot: int, ids: Ints, small: Ints, lanes: Ints
) -> tuple[int, int, int, int, int]:
    """Write ``slot`` as a plain counter's ids, into ``ids`` and (4-byte marks and all)
    ``small``, and its counts of the channels it uses into ``lanes``, bucket by bucket.

    Returns how many buckets it holds, the lanes per bucket (one past the last channel
    with a count), whether every bucket id fits 4 bytes, and the least and greatest
    count: what picks each array's narrowest type, worked out here rather than by
    numpy calls that cost more than the walk.
    """
    windows = ring.shape[1]
    span = ring.shape[2]
    channels = counts.shape[3]
    position = 2 * windows
    stride, fits, low, high = 0, 1, 0, 0
    for window in range(windows):
        last = newest[slot, window]
        ids[window] = last
        small[window] = NO_SMALL_BUCKET if last == EMPTY else last
        held = 0
        if last != EMPTY:
            fits = fits and NO_SMALL_BUCKET < last < SMALL_ID
            for bucket in range(last - span + 1, last + 1):
                at = bucket % span
                if ring[slot, window, at] == bucket:
                    ids[position] = small[position] = bucket
                    fits = fits and NO_SMALL_BUCKET < bucket < SMALL_ID
                    for channel in range(channels):
                        count = counts[slot, window, at, channel]
                        if count != 0 and channel >= stride:
                            stride = channel + 1
                        low, high = min(low, count), max(high, count)
                    position += 1
                    held += 1
        ids[windows + window] = small[windows + window] = held
    written = 0
    for window in range(windows):  # the same buckets again, now that the stride is known
        last = newest[slot, window]
        if last == EMPTY:
            continue
        for bucket in range(last - span + 1, last + 1):
            at = bucket % span
            if ring[slot, window, at] == bucket:
                for channel in range(stride):
                    lanes[written] = counts[slot, window, at, channel]
                    written += 1
    return position - 2 * windows, stride, int(fits), low, high


def _sample_arena(count_type: type[np.signedinteger]) -> tuple[Ints, Ints, Ints, Ints]:
    return (
        np.full((1, 1, 2), EMPTY, dtype=np.int64),
        np.zeros((1, 1, 2, 1), dtype=count_type),
        np.zeros((1, 1, 1), dtype=np.int64),
        np.full((1, 1), EMPTY, dtype=np.int64),
    )


def _step_sample(count_type: type[np.signedinteger]) -> tuple[object, ...]:
    return (
        np.array([[COUNT, 0, 0, 1], [MOVE, 0, 0, 1]], dtype=np.int64),
        np.zeros(2),
        np.ones((2, 1), dtype=np.int64),
        _sample_arena(count_type),
        np.ones(1),
        True,
        np.ones((1, 1, 1), dtype=np.int64),
        np.ones((2, 1), dtype=np.int64),
        np.zeros((1, 1), dtype=np.int64),
        np.zeros((1, 1, 1), dtype=np.int64),
    )


def _load_sample(count_type: type[np.signedinteger]) -> tuple[object, ...]:
    ids = np.array([5, 1, 5], dtype=np.int64)
    return (*_sample_arena(count_type), 0, ids, np.ones(1, dtype=np.int64), 1)


def _dump_sample(count_type: type[np.signedinteger]) -> tuple[object, ...]:
    ring, counts, _, newest = _sample_arena(count_type)
    written = (np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64), np.zeros(2, np.int64))
    return (ring, counts, newest, 0, *written)


# Compiled for 4-byte counts, an arena's own, and 8-byte ones, which an arena widens to.
step_kernel = LazyKernel(
    counter_steps, sample_args=_step_sample(np.int32), more_samples=[_step_sample(np.int64)]
)
"""The compiled :func:`counter_steps` (with every kernel: :func:`~detector.jit.compile_all`)."""
load_kernel = LazyKernel(
    counter_load, sample_args=_load_sample(np.int32), more_samples=[_load_sample(np.int64)]
)
"""The compiled :func:`counter_load`."""
dump_kernel = LazyKernel(
    counter_dump, sample_args=_dump_sample(np.int32), more_samples=[_dump_sample(np.int64)]
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
