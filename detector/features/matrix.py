"""A batch's features by column, and the matrix of some features a model reads.

:meth:`~detector.features.vector_parts.VectorParts.finish` keeps what it
worked out for a batch's observations as columns (:class:`FeatureBatch`): per
key kind each row's totals (packed, or a row of an arena's results), and the
scalar parts in blocks of one width. Each observation's
:class:`~detector.features.vector.FeatureVector` is a row of it, whose parts
are fetched when the vector is first read on its own (a rule's condition, an
explanation); most never are.

A model reads the same columns of many vectors at once: :func:`feature_table`
builds that matrix in a few numpy calls over the whole batch (the scalars
from one matrix of the batch, each packed window total written to bytes
once and its channels cut out of the bytes by numpy, the arena rows read by
row groups) instead of unpacking vector by vector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

from detector.features.arena import CountRow, Counts
from detector.features.vector import (
    FeatureLayout,
    FeatureVector,
    Indices,
    RowSource,
    Table,
    TablePlan,
)
from detector.features.windows import LANE_MASK

__all__ = ["FeatureBatch", "assemble_table", "feature_table", "row_groups"]


class FeatureBatch:
    """The features of a batch's observations by column (see the module).

    ``kinds``: per key kind (actor, IP, target), each row's totals: packed ints
    per window, or a row of an arena's results. ``blocks``: the scalar parts
    after them, each block a list of one sequence per row, all of one width
    (the actor's first scalars, its ratios, the flags).
    """

    __slots__ = ("_blocks", "_kinds", "_packed_totals", "_rows", "_unread", "layout")

    def __init__(
        self,
        layout: FeatureLayout,
        kinds: Sequence[Sequence[Counts]],
        blocks: Sequence[Sequence[Sequence[float]]],
    ) -> None:
        self.layout = layout
        self._kinds = kinds
        self._blocks = blocks
        self._unread: list[float | None] = [None] * layout.windows
        self._packed_totals: dict[int, list[Sequence[float | None]]] = {}
        self._rows: dict[int, list[CountRow | None]] = {}

    def vectors(self) -> list[FeatureVector]:
        """A vector per row, in order."""
        layout = self.layout
        return [
            FeatureVector(layout, None, None, self, index) for index in range(len(self._kinds[0]))
        ]

    def parts(self, index: int) -> tuple[list[float | None], list[CountRow | None] | None]:
        """Row ``index``'s :class:`FeatureVector` parts (None for a kind's totals in an
        arena row) and its rows per kind (None if there is none)."""
        parts: list[float | None] = []
        rows: list[CountRow | None] = [None, None, None]
        counted = False
        for kind, column in enumerate(self._kinds):
            counts = column[index]
            if type(counts) is list:
                parts += counts
            else:
                parts += self._unread
                rows[kind] = cast(CountRow, counts)
                counted = True
        for block in self._blocks:
            parts += block[index]
        return parts, rows if counted else None

    def table(self, indices: Indices, plan: TablePlan) -> Table | None:
        """:func:`feature_table` of rows ``indices`` (None where the columns cannot give it)."""
        at = indices.tolist()
        # Part → its values in the rows ``at``: the rows' packed totals and scalar blocks
        # taken and transposed in C, as :func:`_batch_table` does with vectors' parts.
        columns: dict[int, Sequence[float | None]] = {}
        windows = self.layout.windows
        for kind in sorted({part // windows for part in plan.packed}):
            taken = map(self._packed(kind).__getitem__, at)
            columns.update(enumerate(zip(*taken, strict=True), kind * windows))
        start = self.layout.scalars_at
        for block in self._blocks:
            width = len(block[0])
            if any(start <= part < start + width for part in plan.scalars):
                columns.update(enumerate(zip(*map(block.__getitem__, at), strict=True), start))
            start += width
        try:
            scalars = np.array([columns[part] for part in plan.scalars], dtype=np.float64).T
        except (TypeError, ValueError):
            return None
        by_kind = [
            list(map(self._kind_rows(kind).__getitem__, at)) if channels else []
            for kind, channels in enumerate(plan.kind_channels)
        ]
        packed = [columns[part] for part in plan.packed]
        return assemble_table(plan, len(at), scalars, packed, by_kind)

    def _packed(self, kind: int) -> list[Sequence[float | None]]:
        """Each row's packed totals of ``kind`` (None per window for a row's), made once."""
        found = self._packed_totals.get(kind)
        if found is None:
            unread = self._unread
            found = self._packed_totals[kind] = [
                counts if type(counts) is list else unread for counts in self._kinds[kind]
            ]
        return found

    def _kind_rows(self, kind: int) -> list[CountRow | None]:
        """Each row's arena row of ``kind`` (None for packed totals), made once."""
        found = self._rows.get(kind)
        if found is None:
            column = self._kinds[kind]
            found = self._rows[kind] = [
                None if type(counts) is list else cast(CountRow, counts) for counts in column
            ]
        return found


_PARTS = attrgetter("_parts")
_SOURCE = attrgetter("_source")
_INDEX = attrgetter("_index")
_MATRIX = itemgetter(0)
_STEP = itemgetter(1)
_NO_ROWS: tuple[None, None, None] = (None, None, None)
_LAYOUT = attrgetter("_layout")


def feature_table(
    vectors: Sequence[Mapping[str, float]], names: tuple[str, ...]
) -> npt.NDArray[np.float64]:
    """The values of ``names`` of many vectors, one row each: ``[[v[n] for n in names] ...]``.

    Rows of one batch (the usual case) are read from the batch's columns; other
    vectors a store made with one layout column by column, whole batch at once;
    anything else (other mappings, mixed layouts, a value the batch path cannot
    read) row by row, with the same values and errors (KeyError for a name a
    vector lacks).

    >>> feature_table([{"a": 1, "b": 2.5}, {"a": 3, "b": 0.0}], ("b", "a")).tolist()
    [[2.5, 1.0], [0.0, 3.0]]
    """
    if vectors and set(map(type, vectors)) == {FeatureVector}:
        layouts = set(map(_LAYOUT, vectors))
        if len(layouts) == 1:
            plan = layouts.pop().table_plan(names)
            sources: set[RowSource | None] = set(map(_SOURCE, vectors))
            source = sources.pop() if len(sources) == 1 else None
            if source is not None:
                indices = np.fromiter(map(_INDEX, vectors), dtype=np.intp, count=len(vectors))
                table = source.table(indices, plan)
            else:
                table = _batch_table(cast(Sequence[FeatureVector], vectors), plan)
            if table is not None:
                return table
    return _row_table(vectors, names)


def _batch_table(vectors: Sequence[FeatureVector], plan: TablePlan) -> Table | None:
    """The table by columns; None for vectors it cannot read (left to :func:`_row_table`)."""
    if None in map(_PARTS, vectors):  # rows of several batches: each vector's parts
        for vector in vectors:
            if vector._parts is None:
                vector._fetch()
    columns = list(zip(*map(_PARTS, vectors), strict=False))
    if len(columns) < plan.parts:  # parts too short: row by row, for its IndexError
        return None
    try:
        scalars = np.array([columns[part] for part in plan.scalars], dtype=np.float64).T
    except (TypeError, ValueError):
        return None
    packed = [columns[part] for part in plan.packed]
    by_kind: list[Sequence[CountRow | None]] = []
    if any(plan.kind_channels):  # per kind, every vector's row (or None)
        by_kind = list(zip(*[vector._rows or _NO_ROWS for vector in vectors], strict=True))
    return assemble_table(plan, len(vectors), scalars, packed, by_kind)


def assemble_table(
    plan: TablePlan,
    rows: int,
    scalars: npt.NDArray[np.float64],
    packed: Sequence[Sequence[float | None]],
    by_kind: Sequence[Sequence[CountRow | None]],
) -> Table | None:
    """:func:`feature_table`'s matrix of ``rows`` vectors from their columns: the scalars
    ``plan.scalars`` (one row per vector), each of ``plan.packed``'s packed totals (None
    where a kind's totals are in ``by_kind``'s arena rows); None if a value cannot be read
    this way (a float or negative total, one too wide)."""
    table = np.empty((rows, plan.width), dtype=np.float64)
    if plan.scalars:
        table[:, plan.scalar_columns] = scalars
    if not plan.packed:
        return table
    raw = np.zeros((rows, sum(plan.lengths)), dtype=np.uint8)
    little: repeat[Literal["little"]] = repeat("little")
    offset = 0
    try:
        for column, length in zip(packed, plan.lengths, strict=True):
            if None in column:  # totals in an arena's rows, read below: 0 here
                if column.count(None) == rows:
                    offset += length
                    continue
                column = [0 if total is None else total for total in column]
            # Each packed total once to bytes, in C loops; a float or negative total (or
            # one too wide) raises here and is read row by row.
            data = b"".join(map(int.to_bytes, column, repeat(length), little))  # type: ignore[arg-type]
            raw[:, offset : offset + length] = np.frombuffer(data, np.uint8).reshape(rows, length)
            offset += length
    except (TypeError, ValueError, OverflowError):
        return None
    # ``(total >> shift) & LANE_MASK`` for every channel of every vector at once.
    words = raw.take(plan.bytes_at, axis=1).view("<u8")
    table[:, plan.channel_columns] = (words >> plan.bits) & np.uint64(LANE_MASK)
    _fill_counted(table, by_kind, plan)
    return table


def _fill_counted(
    table: Table, by_kind: Sequence[Sequence[CountRow | None]], plan: TablePlan
) -> None:
    """The columns of totals still in arena rows, read from the rows, a batch's at once."""
    for kind, channels_read in enumerate(plan.kind_channels):
        if not channels_read:  # no column of this kind's totals asked for
            continue
        for totals, where, steps in row_groups(by_kind[kind]):
            block = totals[steps]  # (vectors, windows, channels)
            at = where[:, None]
            for window, columns, channels in channels_read:
                inside = channels < block.shape[2]
                values = np.zeros((len(steps), len(columns)))
                values[:, inside] = block[:, window, channels[inside]]
                table[at, columns] = values


def row_groups(column: Sequence[CountRow | None]) -> list[tuple[np.ndarray, Indices, Indices]]:
    """The rows of ``column`` (None where there is none) grouped by their matrix (a batch's
    totals): each matrix with the positions in ``column`` and the steps of its rows, to read
    them in one numpy call. A batch's rows usually all come from one flush: that case is
    read without a Python step per row."""
    count = len(column)
    if count and None not in column:
        rows = cast(Sequence[CountRow], column)
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
