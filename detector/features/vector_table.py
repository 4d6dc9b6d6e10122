"""Many feature vectors read at once: a model's matrix, and the counts a stage carries on.

A model reads the same columns of many vectors: :func:`feature_table` builds
that matrix in a few numpy calls over the whole batch instead of unpacking
vector by vector. The vectors of a stretch's block (:class:`~.vector.BlockVector`,
the compiled store's) are read from the block's columns at once; others have each
packed window total written to bytes once and its channels cut out by numpy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from detector.features.arena import CountRow
from detector.features.arena_numbers import packed_rows
from detector.features.vector import BlockVector, FeatureBlock, FeatureVector, TablePlan
from detector.features.windows import LANE_BITS, LANE_MASK

__all__ = ["feature_table", "packed_counts", "row_groups"]

Indices = npt.NDArray[np.intp]
"""Positions and steps of rows (:func:`row_groups`)."""
KindChannels = tuple[tuple[int, npt.NDArray[np.intp], npt.NDArray[np.intp]], ...]
"""A key kind's (window, columns, channels) read (:attr:`TablePlan.kind_channels`)."""


def packed_counts(vectors: Sequence[object], kind: int, windows: int) -> list[list[int]]:
    """Each vector's packed window counts of key kind ``kind`` (its index in :data:`KINDS`),
    to carry to a later stage; zeros for a vector the store did not make. The rows an arena
    counted are packed a batch's totals at a time (:func:`~.arena_numbers.packed_rows`): one by one,
    numpy's calls cost several microseconds per vector."""
    start = kind * windows
    counts: list[list[int]] = []
    counted: dict[int, tuple[np.ndarray, list[int], list[int]]] = {}
    for position, vector in enumerate(vectors):
        if not isinstance(vector, FeatureVector):
            counts.append([0] * windows)
            continue
        rows = vector._rows
        row = None if rows is None else rows[kind]
        if row is None:
            parts = cast("Sequence[float]", vector._parts[start : start + windows])  # packed here
            counts.append([int(value) for value in parts])
            continue
        matrix, step = row
        _, steps, positions = counted.setdefault(id(matrix), (matrix, [], []))
        steps.append(step)
        positions.append(position)
        counts.append([])  # filled below
    for matrix, steps, positions in counted.values():
        for position, packed in zip(positions, packed_rows(matrix[steps]), strict=True):
            counts[position] = packed
    return counts


_PARTS = attrgetter("_parts")
_MATRIX = itemgetter(0)
_STEP = itemgetter(1)
_NO_ROWS: tuple[None, None, None] = (None, None, None)
_LAYOUT = attrgetter("_layout")
_BLOCK = attrgetter("_block")  # a slot: read in C, not through the property
_INDEX = attrgetter("_index")
_VECTORS = {FeatureVector, BlockVector}


def feature_table(
    vectors: Sequence[Mapping[str, float]], names: tuple[str, ...]
) -> npt.NDArray[np.float64]:
    """The values of ``names`` of many vectors, one row each: ``[[v[n] for n in names] ...]``.

    Vectors a store made with one layout (the usual batch) are read column by
    column, whole batch at once (rows of blocks from the blocks' columns);
    anything else (other mappings, mixed layouts, a value the batch path cannot
    read) row by row, with the same values and errors (KeyError for a name a
    vector lacks).

    >>> feature_table([{"a": 1, "b": 2.5}, {"a": 3, "b": 0.0}], ("b", "a")).tolist()
    [[2.5, 1.0], [0.0, 3.0]]
    """
    kinds = set(map(type, vectors))
    if vectors and kinds <= _VECTORS:
        layouts = set(map(_LAYOUT, vectors))
        if len(layouts) == 1:
            plan = layouts.pop().table_plan(names)
            if kinds == {BlockVector}:
                return _block_table(cast("Sequence[BlockVector]", vectors), plan)
            table = _batch_table(vectors, plan)
            if table is not None:
                return table
    return _row_table(vectors, names)


def _block_table(vectors: Sequence[BlockVector], plan: TablePlan) -> npt.NDArray[np.float64]:
    """The table of vectors that are rows of blocks, read from the blocks' columns."""
    table = np.empty((len(vectors), plan.width), dtype=np.float64)
    blocks = list(map(_BLOCK, vectors))
    indices = np.fromiter(map(_INDEX, vectors), dtype=np.intp, count=len(vectors))
    if len(set(blocks)) == 1:  # the usual batch: one stretch
        _fill_block(table, blocks[0], np.arange(len(vectors)), indices, plan)
        return table
    places: dict[FeatureBlock, list[int]] = {}
    for place, block in enumerate(blocks):
        places.setdefault(block, []).append(place)
    for block, where in places.items():
        at = np.array(where, dtype=np.intp)
        _fill_block(table, block, at, indices[at], plan)
    return table


def _fill_block(
    table: npt.NDArray[np.float64], block: FeatureBlock, where: Indices, indices: Indices,
    plan: TablePlan,
) -> None:  # fmt: skip
    """Rows ``where`` of the table: rows ``indices`` of ``block``."""
    at = where[:, None]
    if plan.scalars:
        table[at, plan.scalar_columns] = block.scalars[indices[:, None], plan.scalar_offsets]
    windows = block.layout.windows
    for kind, kind_channels in enumerate(plan.kind_channels):
        if not kind_channels:  # no column of this kind's totals asked for
            continue
        totals = block.totals[kind]
        if totals is not None:
            matrix, steps = totals
            chosen = steps[indices]
            rows = matrix[chosen]
            rows[chosen < 0] = 0  # events without the key
            _fill_rows(table, at, rows, kind_channels)
            continue
        for window, columns, channels in kind_channels:  # the same totals in every row
            packed = int(cast(float, block.parts[kind * windows + window]))
            table[at, columns] = [
                (packed >> channel * LANE_BITS) & LANE_MASK for channel in channels.tolist()
            ]


def _batch_table(
    vectors: Sequence[Mapping[str, float]], plan: TablePlan
) -> npt.NDArray[np.float64] | None:
    """The table by columns; None for vectors it cannot read (left to :func:`_row_table`)."""
    parts = list(map(_PARTS, vectors))
    rows = len(vectors)
    table = np.empty((rows, plan.width), dtype=np.float64)
    made = cast("Sequence[FeatureVector]", vectors)
    # Per key kind, every vector's row (or None), if totals are read: one transposition.
    by_kind = []
    if plan.packed:
        by_kind = list(zip(*[vector._rows or _NO_ROWS for vector in made], strict=True))
    try:
        if plan.scalars:
            _fill_scalars(table, made, parts, plan)
        if plan.packed:
            # A part whose kind every vector keeps in rows is None in all of them: not read.
            columns = [
                list(map(itemgetter(part), parts)) if None in by_kind[kind] else None
                for part, kind in zip(plan.packed, plan.packed_kinds, strict=True)
            ]
            if any(column is not None for column in columns):
                _unpack(table, columns, plan)
    except IndexError:  # a vector with too few parts: row by row, for its error
        return None
    except (TypeError, ValueError, OverflowError):  # a total that is no packed int
        return None
    if plan.packed:
        _fill_counted(table, by_kind, plan)
    return table


def _fill_scalars(
    table: npt.NDArray[np.float64],
    vectors: Sequence[FeatureVector],
    parts: list[Sequence[float | None]],
    plan: TablePlan,
) -> None:
    """The scalar columns: blocks of the stretches' matrices, and the parts of the rest."""
    in_matrices = [vector._scalars for vector in vectors]
    plain_count = in_matrices.count(None)
    if plain_count < len(in_matrices):
        for matrix, where, steps in row_groups(in_matrices):
            block = matrix[steps[:, None], plan.scalar_offsets]
            table[where[:, None], plan.scalar_columns] = block
    if not plain_count:
        return
    plain = [index for index, at in enumerate(in_matrices) if at is None]
    # Only the parts read, a tuple per vector, streamed to numpy (np.array of the tuples
    # takes twice as long: it first works out their shape and type).
    read: Iterator[Any] = map(plan.scalar_parts, [parts[index] for index in plain])
    if len(plan.scalars) > 1:
        read = chain.from_iterable(read)
    scalars = np.fromiter(read, dtype=np.float64, count=len(plain) * len(plan.scalars))
    block = scalars.reshape(len(plain), len(plan.scalars))
    table[np.array(plain, np.intp)[:, None], plan.scalar_columns] = block


def _unpack(
    table: npt.NDArray[np.float64], columns: list[list[float | None] | None], plan: TablePlan
) -> None:
    """The channels of the packed parts read (``columns``: each part's totals in
    ``plan.packed`` order, None where all are in arena rows: 0 here, read by
    :func:`_fill_counted`)."""
    rows = len(table)
    raw = np.zeros((rows, sum(plan.lengths)), dtype=np.uint8)
    little: repeat[Literal["little"]] = repeat("little")
    offset = 0
    for column, length in zip(columns, plan.lengths, strict=True):
        if column is not None:
            if None in column:
                column = [0 if total is None else total for total in column]
            # Each packed total once to bytes, in C loops; a float or negative total (or
            # one too wide) raises here and is read row by row.
            data = b"".join(map(int.to_bytes, column, repeat(length), little))  # type: ignore[arg-type]
            raw[:, offset : offset + length] = np.frombuffer(data, np.uint8).reshape(rows, length)
        offset += length
    # ``(total >> shift) & LANE_MASK`` for every channel of every vector at once.
    words = raw.take(plan.bytes_at, axis=1).view("<u8")
    table[:, plan.channel_columns] = (words >> plan.bits) & np.uint64(LANE_MASK)


def _fill_counted(
    table: npt.NDArray[np.float64],
    by_kind: list[tuple[CountRow | None, ...]],
    plan: TablePlan,
) -> None:
    """The columns of totals still in arena rows (``by_kind``: each kind's row of every
    vector, or None), read from the rows, a batch's at once."""
    for kind, kind_channels in enumerate(plan.kind_channels):
        if not kind_channels:  # no column of this kind's totals asked for
            continue
        for totals, where, steps in row_groups(by_kind[kind]):
            _fill_rows(table, where[:, None], totals[steps], kind_channels)


def _fill_rows(
    table: npt.NDArray[np.float64], at: Indices, rows: np.ndarray, kind_channels: KindChannels
) -> None:
    """Rows ``at`` of the table's columns of one key kind, from its totals ``rows``
    (vectors, windows, channels); a channel past the rows' is 0."""
    for window, columns, channels in kind_channels:
        inside = channels < rows.shape[2]
        values = np.zeros((len(rows), len(columns)))
        values[:, inside] = rows[:, window, channels[inside]]
        table[at, columns] = values


def row_groups(column: Sequence[CountRow | None]) -> list[tuple[np.ndarray, Indices, Indices]]:
    """The rows of ``column`` (None where there is none) grouped by their matrix (a batch's
    totals): each matrix with the positions in ``column`` and the steps of its rows, to read
    them in one numpy call. A batch's rows usually all come from one flush: that case is
    read without a Python step per row."""
    count = len(column)
    if count and None not in column:
        rows = cast("Sequence[CountRow]", column)
        if len(set(map(id, map(_MATRIX, rows)))) == 1:
            steps = np.fromiter(map(_STEP, rows), dtype=np.intp, count=count)
            return [(rows[0][0], np.arange(count, dtype=np.intp), steps)]
    groups: dict[int, tuple[np.ndarray, list[int], list[int]]] = {}
    for index, row in enumerate(column):
        if row is None:
            continue
        matrix, step = row
        group = groups.get(id(matrix))
        if group is None:
            group = groups[id(matrix)] = (matrix, [], [])
        group[1].append(index)
        group[2].append(step)
    return [
        (matrix, np.array(where, dtype=np.intp), np.array(steps, dtype=np.intp))
        for matrix, where, steps in groups.values()
    ]


def _row_table(
    vectors: Sequence[Mapping[str, float]], names: tuple[str, ...]
) -> npt.NDArray[np.float64]:
    values = chain.from_iterable(
        [
            vector.take(names)
            if isinstance(vector, FeatureVector)
            else [vector[name] for name in names]
            for vector in vectors
        ]
    )
    flat = np.fromiter(values, dtype=np.float64, count=len(vectors) * len(names))
    return flat.reshape(len(vectors), len(names))
