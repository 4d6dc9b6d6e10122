"""The features of one observation, as a read-only mapping read on demand.

The store hands every observation all its features, but most consumers (a
rule condition, an explanation) read a handful of them. A
:class:`FeatureVector` therefore keeps the packed window totals as they were
at that event and unpacks a feature when it is read; :meth:`FeatureVector.vector`
unpacks all of them in :func:`~detector.features.schema.feature_names` order for
models. It is a ``Mapping[str, float]``: use :meth:`FeatureVector.to_dict`
(or ``dict(vector)``) where a plain dict is needed, e.g. for JSON.

A model reads the same columns of many vectors at once: :func:`feature_table`
builds that matrix in a few numpy calls over the whole batch (each packed
window total written to bytes once, its channels cut out of the bytes by
numpy) instead of unpacking vector by vector.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Any, Literal, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from detector.features.arena import CountRow, packed_row, packed_rows
from detector.features.schema import (
    ACTOR_CHANNELS,
    ACTOR_RATIOS,
    ACTOR_SCALARS,
    EVENT_FLAGS,
    IP_CHANNELS,
    TARGET_CHANNELS,
    feature_names,
)
from detector.features.settings import FeatureSettings
from detector.features.windows import LANE_BITS, LANE_MASK

__all__ = [
    "KINDS",
    "FeatureLayout",
    "FeatureVector",
    "feature_table",
    "packed_counts",
    "row_groups",
]

_SCALAR = -1
KINDS_COUNTED = (ACTOR_CHANNELS, IP_CHANNELS, TARGET_CHANNELS)
"""The channels of each key kind whose totals lead a vector, in order."""
KINDS = ("actor", "ip", "target")
"""Key kinds, in the order their window counts lead each vector."""
_KEYED = ("ip", "target")  # kinds whose features a vector may leave out
_COUNTED_SCALARS = ("actor.active_hours_of_week", "actor.learning")  # the actor scalars that count
_WORD = 8  # bytes of the uint64 a channel is read through
Indices = npt.NDArray[np.intp]
"""Positions and steps of rows (:func:`row_groups`)."""


class _TablePlan(NamedTuple):
    """Where the table of some names comes from, worked out once per layout and names.

    Every packed part read is written to ``lengths`` little-endian bytes per
    vector, the parts of one vector side by side (a row of bytes); a channel
    is then the 8-byte word at ``bytes_at`` of that row, shifted by ``bits``
    and masked.
    """

    width: int
    scalars: tuple[int, ...]  # the scalar parts read, in ``scalar_columns`` order
    scalar_parts: Callable[[Sequence[float | None]], Any]  # itemgetter of ``scalars``
    scalar_offsets: npt.NDArray[np.intp]  # ``scalars`` in a stretch's matrix of scalar parts
    scalar_columns: npt.NDArray[np.intp]
    packed: tuple[int, ...]  # the packed parts read
    packed_kinds: tuple[int, ...]  # the key kind of each
    lengths: tuple[int, ...]  # bytes each is written to (room for its last channel's word)
    channel_columns: npt.NDArray[np.intp]  # the columns of the channels, in word order
    bytes_at: npt.NDArray[np.intp]  # per channel, the 8 byte offsets of its word in a row
    bits: npt.NDArray[np.uint64]  # per channel, its bit offset within its word
    # per key kind: (window, columns, channels) of the packed parts read from its totals
    kind_channels: tuple[tuple[tuple[int, npt.NDArray[np.intp], npt.NDArray[np.intp]], ...], ...]


class FeatureLayout:
    """Where each feature of a store's settings sits in a vector's parts.

    Parts are, in order: the packed totals per window of the actor, the IP and
    the target (one int per window), then the scalar features (actor scalars,
    ``actor.new.<field>`` flags, event flags). A feature is a (part, shift)
    pair: shift is the channel's bit offset, or -1 for a scalar part. The IP's
    and target's features are named only if their kind is in ``kinds``.
    """

    __slots__ = (
        "_columns", "_packed_bytes", "_plans", "index", "names", "positions", "scalar_types",
        "scalars_at", "windows",
    )  # fmt: skip

    def __init__(self, settings: FeatureSettings, kinds: Collection[str] = KINDS) -> None:
        windows = self.windows = len(settings.windows)
        positions: list[tuple[int, int]] = []
        packed_bytes: list[int] = []  # per packed part, the bytes its channels fill
        part = 0
        for channels in KINDS_COUNTED:
            for window in range(windows):
                positions += [
                    (part + window, channel * LANE_BITS) for channel in range(len(channels))
                ]
            packed_bytes += [-(-len(channels) * LANE_BITS // 8)] * windows
            part += windows
        self._packed_bytes = tuple(packed_bytes)
        self.scalars_at = part
        ratios = len(ACTOR_RATIOS) * windows
        scalars = len(ACTOR_SCALARS) + ratios + len(settings.tracked) + len(EVENT_FLAGS)
        positions += [(part + offset, _SCALAR) for offset in range(scalars)]
        # What each scalar part holds in a vector's own parts: active hours, learning and the
        # flags count, the rest are fractions. A stretch's matrix of them holds floats alone.
        counted = {ACTOR_SCALARS.index(name) for name in _COUNTED_SCALARS}
        self.scalar_types: tuple[type[int] | type[float], ...] = tuple(
            int if offset in counted or offset >= len(ACTOR_SCALARS) + ratios else float
            for offset in range(scalars)
        )
        # An IP's or target's features are named only where that kind is counted or handed
        # on: elsewhere nothing reads them, and an alert would show them as 0.
        named = [
            (name, position)
            for name, position in zip(feature_names(settings), positions, strict=True)
            if (kind := name.split(".", 1)[0]) not in _KEYED or kind in kinds
        ]
        self.names = tuple(name for name, _ in named)
        self.positions = tuple(position for _, position in named)
        self.index = dict(named)
        self._columns: dict[tuple[str, ...], tuple[tuple[int, int], ...]] = {}
        self._plans: dict[tuple[str, ...], _TablePlan] = {}

    def columns(self, names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
        """The positions of ``names``, in that order (remembered: a model asks for the same)."""
        found = self._columns.get(names)
        if found is None:
            found = self._columns[names] = tuple(self.index[name] for name in names)
        return found

    def table_plan(self, names: tuple[str, ...]) -> _TablePlan:
        """How :func:`feature_table` reads ``names`` (remembered; KeyError for an unknown name)."""
        found = self._plans.get(names)
        if found is None:
            found = self._plans[names] = self._plan(self.columns(names))
        return found

    def _plan(self, positions: tuple[tuple[int, int], ...]) -> _TablePlan:
        scalars = [(column, part) for column, (part, shift) in enumerate(positions) if shift < 0]
        channels: dict[int, list[tuple[int, int]]] = {}
        for column, (part, shift) in enumerate(positions):
            if shift >= 0:
                channels.setdefault(part, []).append((column, shift))
        packed = sorted(channels)
        lengths = [
            max(self._packed_bytes[part], *(shift // 8 + _WORD for _, shift in channels[part]))
            for part in packed
        ]
        columns, words, bits = [], [], []
        row_offset = 0
        for part, length in zip(packed, lengths, strict=True):
            for column, shift in channels[part]:
                columns.append(column)
                words.append(row_offset + shift // 8)
                bits.append(shift % 8)
            row_offset += length
        kind_channels: list[list[tuple[int, npt.NDArray[np.intp], npt.NDArray[np.intp]]]] = [
            [] for _ in KINDS_COUNTED
        ]
        for part in packed:
            kind, window = divmod(part, self.windows)
            kind_channels[kind].append(
                (
                    window,
                    np.array([column for column, _ in channels[part]], dtype=np.intp),
                    np.array([shift // LANE_BITS for _, shift in channels[part]], dtype=np.intp),
                )
            )
        return _TablePlan(
            kind_channels=tuple(tuple(entries) for entries in kind_channels),
            width=len(positions),
            scalars=tuple(part for _, part in scalars),
            scalar_parts=itemgetter(*[part for _, part in scalars] or [0]),
            scalar_offsets=np.array([part - self.scalars_at for _, part in scalars], np.intp),
            scalar_columns=np.array([column for column, _ in scalars], dtype=np.intp),
            packed=tuple(packed),
            packed_kinds=tuple(part // self.windows for part in packed),
            lengths=tuple(lengths),
            channel_columns=np.array(columns, dtype=np.intp),
            bytes_at=(np.array(words, dtype=np.intp)[:, None] + np.arange(_WORD)).ravel(),
            bits=np.array(bits, dtype=np.uint64),
        )


class FeatureVector(Mapping[str, float]):
    """Feature name → value for one observation (read-only; values fixed at that event).

    ``rows``: per key kind (actor, IP, target), ``None`` if its packed totals are in
    ``parts``, else row ``k`` of a batch's totals ``(steps, windows, channels)`` that an
    arena counted (:mod:`detector.features.arena`), ``parts`` holding ``None`` there: they
    are packed when first read, and :func:`feature_table` reads them as numbers.

    ``scalars``: ``None`` if the scalar parts follow the totals in ``parts``, else row
    ``k`` of a stretch's matrix of them ``(events, scalars)`` (as floats; read as the
    parts would hold them, :attr:`FeatureLayout.scalar_types`), ``parts`` holding the
    totals alone: the store makes a stretch's scalars in a few numpy calls, not a list
    per event, and :func:`feature_table` reads them as a block.
    """

    __slots__ = ("_layout", "_parts", "_rows", "_scalars")

    def __init__(
        self,
        layout: FeatureLayout,
        parts: Sequence[float | None],
        rows: Sequence[CountRow | None] | None = None,
        scalars: CountRow | None = None,
    ) -> None:
        self._layout = layout
        self._parts = parts
        self._rows = rows
        self._scalars = scalars

    def __getitem__(self, name: str) -> float:
        layout = self._layout
        part, shift = layout.index[name]
        if shift == _SCALAR and self._scalars is not None:
            matrix, row = self._scalars
            offset = part - layout.scalars_at
            return layout.scalar_types[offset](matrix[row, offset])
        value = self._parts[part]
        if shift == _SCALAR:
            return cast(float, value)
        if value is None:
            value = self._packed_parts()[part]
        return (int(value) >> shift) & LANE_MASK

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout.names)

    def __len__(self) -> int:
        return len(self._layout.names)

    def vector(self) -> list[float]:
        """Every value in feature-name order: the fixed-width input of a model."""
        parts = self._packed_parts()
        return [
            parts[part] if shift == _SCALAR else (int(parts[part]) >> shift) & LANE_MASK
            for part, shift in self._layout.positions
        ]

    def take(self, names: tuple[str, ...]) -> list[float]:
        """``[self[name] for name in names]``, unpacked in one pass (a model's matrix row)."""
        parts = self._packed_parts()
        return [
            parts[part] if shift == _SCALAR else (int(parts[part]) >> shift) & LANE_MASK
            for part, shift in self._layout.columns(names)
        ]

    def packed(self, start: int, stop: int) -> Sequence[float]:
        """The raw parts ``start:stop`` (packed window counts; see :func:`windows.lane`)."""
        return self._packed_parts()[start:stop]

    def _packed_parts(self) -> Sequence[float]:
        """:attr:`_parts` with every kind's totals packed and the scalars after them (the
        rows read once, kept)."""
        rows, scalars = self._rows, self._scalars
        if rows is None and scalars is None:
            return cast("Sequence[float]", self._parts)
        parts = list(self._parts)
        layout = self._layout
        windows = layout.windows
        for kind, row in enumerate(rows or ()):
            if row is not None:
                parts[kind * windows : (kind + 1) * windows] = packed_row(row[0][row[1]])
        if scalars is not None:
            values = scalars[0][scalars[1]].tolist()
            parts += [kind(value) for kind, value in zip(layout.scalar_types, values, strict=True)]
        self._parts, self._rows, self._scalars = parts, None, None
        return cast("Sequence[float]", parts)

    def to_dict(self) -> dict[str, float]:
        """A plain dict (for JSON and printing)."""
        return dict(zip(self._layout.names, self.vector(), strict=True))

    def __repr__(self) -> str:
        return f"FeatureVector({self.to_dict()!r})"


def packed_counts(vectors: Sequence[object], kind: int, windows: int) -> list[list[int]]:
    """Each vector's packed window counts of key kind ``kind`` (its index in :data:`KINDS`),
    to carry to a later stage; zeros for a vector the store did not make. The rows an arena
    counted are packed a batch's totals at a time (:func:`~.arena.packed_rows`): one by one,
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


def feature_table(
    vectors: Sequence[Mapping[str, float]], names: tuple[str, ...]
) -> npt.NDArray[np.float64]:
    """The values of ``names`` of many vectors, one row each: ``[[v[n] for n in names] ...]``.

    Vectors a store made with one layout (the usual batch) are read column by
    column, whole batch at once; anything else (other mappings, mixed layouts,
    a value the batch path cannot read) row by row, with the same values and
    errors (KeyError for a name a vector lacks).

    >>> feature_table([{"a": 1, "b": 2.5}, {"a": 3, "b": 0.0}], ("b", "a")).tolist()
    [[2.5, 1.0], [0.0, 3.0]]
    """
    if vectors and set(map(type, vectors)) == {FeatureVector}:
        layouts = set(map(_LAYOUT, vectors))
        if len(layouts) == 1:
            table = _batch_table(vectors, layouts.pop().table_plan(names))
            if table is not None:
                return table
    return _row_table(vectors, names)


def _batch_table(
    vectors: Sequence[Mapping[str, float]], plan: _TablePlan
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
    plan: _TablePlan,
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
    table: npt.NDArray[np.float64], columns: list[list[float | None] | None], plan: _TablePlan
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
    plan: _TablePlan,
) -> None:
    """The columns of totals still in arena rows (``by_kind``: each kind's row of every
    vector, or None), read from the rows, a batch's at once."""
    for kind, kind_channels in enumerate(plan.kind_channels):
        if not kind_channels:  # no column of this kind's totals asked for
            continue
        for totals, where, steps in row_groups(by_kind[kind]):
            block = totals[steps]  # (vectors, windows, channels)
            at = where[:, None]
            for window, columns, channels in kind_channels:
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
