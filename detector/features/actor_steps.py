"""A batch's actor counter steps, built from its columns by numba instead of event by event.

What the feature store's loop queues for each actor event in the arena
(:mod:`detector.features.arena`): the moves of the remembered values seen
again (a carry per group but the last, which joins the count), the count with
the event's increments (its category and flags, and a unit per new value of a
counted field, and the novel channel for a new tracked value), then the
take-back of each value a trim dropped and a read of the totals after them. The
answers of :class:`~detector.features.value_pool.ValuePool` give the moves, new
values and drops; :func:`actor_steps` writes the steps for the arena's step
kernel to run in one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from detector.features.arena import CounterArena, Counts, RowsColumn
from detector.features.counter_kernels import CARRY, COUNT, DISCARD, EMPTY, READ
from detector.jit import LazyKernel

if TYPE_CHECKING:
    from detector.features.value_pool import Answers

__all__ = ["counted_steps", "steps_kernel", "totals_column", "units_table"]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def actor_steps(
    slots: Ints, buckets: Ints, flags: Ints, new: Ints, groups: tuple[Floats, Ints, Ints],
    drop_start: Ints, drop_fields: Ints, drop_lasts: Floats, field_channels: Ints,
    tracked: int, novel: int, out: tuple[Ints, Floats, Ints, Ints], results: Ints,
) -> int:  # fmt: skip
    """Write event ``i``'s steps on arena slot ``slots[i]`` at ``buckets[i]``; how many.

    ``flags[i]``: the channels its count adds one to, -1 past the last (events,
    category, failure, privileged, production). ``groups``: the moves (from, field
    mask, how many) and ``drop_*`` the drops (event ``i``'s from ``drop_start[i]`` to
    ``drop_start[i + 1]``) of :class:`~.value_pool.Answers`, as arrays. A field mask is
    also its unit's row in the units table (:func:`units_table`), and event ``i``'s
    increments are row ``i`` of ``out[3]``. ``results[i]``: the step whose totals are
    the event's (its count, or the read after its drops).
    """
    at, increments = out[2], out[3]
    froms, masks, counts = groups
    windows = buckets.shape[1]
    written = 0
    taken = 0
    for event in range(len(slots)):
        slot = slots[event]
        for flag in range(flags.shape[1]):
            channel = flags[event, flag]
            if channel < 0:
                break
            for window in range(windows):
                increments[event, window, channel] += 1
        fresh = new[event]
        for field in range(len(field_channels)):
            if fresh >> field & 1 and field_channels[field] >= 0:
                for window in range(windows):
                    increments[event, window, field_channels[field]] += 1
        if fresh & tracked:
            for window in range(windows):
                increments[event, window, novel] += 1
        grouped = counts[event]
        for group in range(grouped - 1):
            _step(out, written, CARRY, slot, 0, masks[event, group], froms[event, group])
            at[written] = buckets[event]
            written += 1
        unit, origin = 0, 0.0
        if grouped:
            unit, origin = masks[event, grouped - 1], froms[event, grouped - 1]
        _step(out, written, COUNT, slot, event, unit, origin)
        at[written] = buckets[event]
        written += 1
        results[event] = taken
        taken += 1
        if drop_start[event + 1] > drop_start[event]:
            for drop in range(drop_start[event], drop_start[event + 1]):
                field = drop_fields[drop]
                if field_channels[field] >= 0:
                    _step(out, written, DISCARD, slot, 0, 1 << field, drop_lasts[drop])
                    at[written] = EMPTY
                    written += 1
            _step(out, written, READ, slot, 0, 0, 0.0)
            at[written] = EMPTY
            written += 1
            results[event] = taken
            taken += 1
    return written


def _step(
    out: tuple[Ints, Floats, Ints, Ints], row: int, op: int, slot: int, increments: int,
    unit: int, moved_from: float,
) -> None:  # fmt: skip
    ops, moved, _, _ = out
    ops[row, 0] = op
    ops[row, 1] = slot
    ops[row, 2] = increments
    ops[row, 3] = unit
    moved[row] = moved_from


def counted_steps(
    arena: CounterArena, slots: Ints, buckets: Ints, flags: Ints, answers: Answers,
    field_channels: Ints, tracked: int, novel: int, units: Ints,
) -> tuple[np.ndarray | list[list[int]], list[int]]:  # fmt: skip
    """The steps of events ``i`` on ``slots[i]`` (:func:`actor_steps`, the moves, new values
    and drops of ``answers``) built and run in ``arena``: the totals of :meth:`CounterArena.run`
    and the row of each event's, after it (:func:`totals_column`)."""
    events = len(slots)
    froms, masks, grouped = answers.groups
    drops, lasts = answers.dropped
    starts = np.searchsorted(drops[:, 0], np.arange(events + 1)).astype(np.int64)
    steps = int(np.maximum(grouped, 1).sum()) + 2 * len(drops) + events
    out = (
        np.zeros((steps, 4), np.int64),
        np.zeros(steps),
        np.zeros((steps, buckets.shape[1]), np.int64),
        np.zeros((events, buckets.shape[1], arena.channels), np.int64),
    )
    results = np.zeros(events, np.int64)
    build = steps_kernel.runnable()  # or the plain body: the same steps
    written = build(
        slots, buckets, flags, np.array(answers.new, np.int64), (froms, masks, grouped), starts,
        np.ascontiguousarray(drops[:, 1]), lasts, field_channels, tracked, novel, out, results,
    )  # fmt: skip
    ops, moved, at, increments = out
    steps_totals = int(results.max(initial=-1)) + 1
    found = arena.run(ops[:written], moved[:written], at[:written], increments, units, steps_totals)
    return found, results.tolist()


def totals_column(
    found: np.ndarray | list[list[int]], rows: list[int]
) -> RowsColumn | list[Counts]:
    """Rows ``rows`` of totals :meth:`CounterArena.run` gave: a column of the matrix's
    rows, or each event's packed totals where some total is past a packed count's field."""
    if isinstance(found, list):
        return [found[row] for row in rows]
    return found, np.array(rows, np.intp)


def units_table(field_channels: list[int], channels: int) -> Ints:
    """Row ``mask``: one in the channel of each counted field in ``mask``."""
    table = np.zeros((1 << len(field_channels), channels), np.int64)
    for mask in range(len(table)):
        for field, channel in enumerate(field_channels):
            if mask >> field & 1 and channel >= 0:
                table[mask, channel] += 1
    return table


steps_kernel = LazyKernel(
    actor_steps,
    sample_args=(
        np.zeros(1, np.int64),
        np.zeros((1, 1), np.int64),
        np.array([[0, -1]], np.int64),
        np.ones(1, np.int64),
        (np.zeros((1, 1)), np.ones((1, 1), np.int64), np.ones(1, np.int64)),
        np.array([0, 1], np.int64),
        np.zeros(1, np.int64),
        np.zeros(1),
        np.zeros(1, np.int64),
        1,
        0,
        (
            np.zeros((4, 4), np.int64),
            np.zeros(4),
            np.zeros((4, 1), np.int64),
            np.zeros((1, 1, 1), np.int64),
        ),
        np.zeros(1, np.int64),
    ),
    helpers=(_step,),
)
"""The compiled :func:`actor_steps`."""
