"""The features of one observation, as a read-only mapping read on demand.

The store hands every observation all its features, but most consumers (a
rule condition, an explanation) read a handful of them. A
:class:`FeatureVector` therefore keeps the packed window totals as they were
at that event and unpacks a feature when it is read; :meth:`FeatureVector.vector`
unpacks all of them in :func:`~detector.features.schema.feature_names` order for
models. It is a ``Mapping[str, float]``: use :meth:`FeatureVector.to_dict`
(or ``dict(vector)``) where a plain dict is needed, e.g. for JSON.

The compiled store makes a stretch's features as columns (a
:class:`FeatureBlock`), and each of its events' vectors is a row of them
(:class:`BlockVector`): made with no list per event, read from the columns.
:mod:`detector.features.vector_table` reads many vectors at once (a model's
matrix).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from detector.features.arena import CountRow, RowsColumn
from detector.features.arena_numbers import packed_row
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
    "BlockVector",
    "FeatureBlock",
    "FeatureLayout",
    "FeatureVector",
    "TablePlan",
]

_SCALAR = -1
KINDS_COUNTED = (ACTOR_CHANNELS, IP_CHANNELS, TARGET_CHANNELS)
"""The channels of each key kind whose totals lead a vector, in order."""
KINDS = ("actor", "ip", "target")
"""Key kinds, in the order their window counts lead each vector."""
_KEYED = ("ip", "target")  # kinds whose features a vector may leave out
_COUNTED_SCALARS = ("actor.active_hours_of_week", "actor.learning")  # the actor scalars that count
_WORD = 8  # bytes of the uint64 a channel is read through


class TablePlan(NamedTuple):
    """Where the table of some names comes from, worked out once per layout and names
    (:func:`~detector.features.vector_table.feature_table`).

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
        self._plans: dict[tuple[str, ...], TablePlan] = {}

    def columns(self, names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
        """The positions of ``names``, in that order (remembered: a model asks for the same)."""
        found = self._columns.get(names)
        if found is None:
            found = self._columns[names] = tuple(self.index[name] for name in names)
        return found

    def table_plan(self, names: tuple[str, ...]) -> TablePlan:
        """How :func:`~.vector_table.feature_table` reads ``names`` (remembered; KeyError for
        an unknown name)."""
        found = self._plans.get(names)
        if found is None:
            found = self._plans[names] = self._plan(self.columns(names))
        return found

    def _plan(self, positions: tuple[tuple[int, int], ...]) -> TablePlan:
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
        return TablePlan(
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


_LAZY = frozenset(("_parts", "_rows", "_scalars"))
"""The parts a :class:`BlockVector` makes from its block only if they are asked for."""


class FeatureBlock:
    """A stretch's features as columns; its events' vectors are its rows (:class:`BlockVector`).

    ``parts``: what every vector's parts hold before the scalars: the packed totals of a
    key kind the stretch's events all share (a kind not counted), None for a kind in
    ``totals``. ``totals``: per key kind, None, or a batch's totals ``(steps, windows,
    channels)`` and each event's step in it (-1: the event has no such key, its totals are
    0). ``scalars``: the scalar parts, an event a row (as floats; read as
    :attr:`FeatureLayout.scalar_types` says).
    """

    __slots__ = ("layout", "parts", "scalars", "totals")

    def __init__(
        self,
        layout: FeatureLayout,
        parts: tuple[float | None, ...],
        totals: tuple[RowsColumn | None, ...],
        scalars: np.ndarray,
    ) -> None:
        self.layout, self.parts, self.totals, self.scalars = layout, parts, totals, scalars

    def value(self, index: int, part: int, shift: int) -> float:
        """The value at ``(part, shift)`` (:attr:`FeatureLayout.index`) of row ``index``."""
        layout = self.layout
        if shift == _SCALAR:
            offset = part - layout.scalars_at
            return layout.scalar_types[offset](self.scalars[index, offset])
        kind, window = divmod(part, layout.windows)
        totals = self.totals[kind]
        if totals is None:
            return (int(cast(float, self.parts[part])) >> shift) & LANE_MASK
        matrix, steps = totals
        step, channel = steps[index], shift // LANE_BITS
        return int(matrix[step, window, channel]) if step >= 0 and channel < matrix.shape[2] else 0


class BlockVector(FeatureVector):
    """Row ``index`` of a :class:`FeatureBlock`: a feature is read from the block's columns;
    the parts a :class:`FeatureVector` holds are made only where something asks for them
    (the vector's whole values, a mapping copied), when first read."""

    __slots__ = ("_block", "_index")

    def __init__(self, block: FeatureBlock, index: int) -> None:
        # The parent's parts are left unset: __getattr__ makes them if they are read.
        self._layout = block.layout
        self._block = block
        self._index = index

    @property
    def block(self) -> FeatureBlock:
        return self._block

    @property
    def index(self) -> int:
        return self._index

    def __getattr__(self, name: str) -> Any:
        if name not in _LAZY:
            raise AttributeError(name)
        block, index = self._block, self._index
        parts, rows, windows = block.parts, [], self._layout.windows
        for kind, totals in enumerate(block.totals):
            step = -1 if totals is None else int(totals[1][index])
            rows.append(None if step < 0 else (cast(np.ndarray, totals)[0], step))
            if totals is not None and step < 0:  # no such key: no counts
                parts = (*parts[: kind * windows], *[0] * windows, *parts[(kind + 1) * windows :])
        self._parts = parts
        self._rows = rows if any(row is not None for row in rows) else None
        self._scalars = (block.scalars, index)
        return getattr(self, name)

    def __getitem__(self, name: str) -> float:
        part, shift = self._layout.index[name]
        return self._block.value(self._index, part, shift)
