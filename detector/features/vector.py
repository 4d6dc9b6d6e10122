"""The features of one observation, as a read-only mapping read on demand.

The store hands every observation all its features, but most consumers (a
rule condition, an explanation) read a handful of them. A
:class:`FeatureVector` therefore keeps the packed window totals as they were
at that event and unpacks a feature when it is read; :meth:`FeatureVector.vector`
unpacks all of them in :func:`~detector.features.schema.feature_names` order for
models. It is a ``Mapping[str, float]``: use :meth:`FeatureVector.to_dict`
(or ``dict(vector)``) where a plain dict is needed, e.g. for JSON.

A store's vectors are rows of their batch's columns (:mod:`.matrix`), from
which a model's matrix is read without going through each vector.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple, Protocol, cast

import numpy as np
import numpy.typing as npt

from detector.features.arena import CountRow, packed_row
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

__all__ = ["FeatureLayout", "FeatureVector", "Indices", "RowSource", "Table", "TablePlan"]

_SCALAR = -1
KINDS_COUNTED = (ACTOR_CHANNELS, IP_CHANNELS, TARGET_CHANNELS)
"""The channels of each key kind whose totals lead a vector, in order."""
_WORD = 8  # bytes of the uint64 a channel is read through
Indices = npt.NDArray[np.intp]
"""Positions and steps of rows (:func:`row_groups`)."""
Table = npt.NDArray[np.float64]


class TablePlan(NamedTuple):
    """Where the table of some names comes from, worked out once per layout and names.

    Every packed part read is written to ``lengths`` little-endian bytes per
    vector, the parts of one vector side by side (a row of bytes); a channel
    is then the 8-byte word at ``bytes_at`` of that row, shifted by ``bits``
    and masked.
    """

    width: int
    parts: int  # the number of parts a vector must have for the plan to apply
    scalars: tuple[int, ...]  # the scalar parts read, in ``scalar_columns`` order
    scalar_columns: npt.NDArray[np.intp]
    packed: tuple[int, ...]  # the packed parts read
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
    pair: shift is the channel's bit offset, or -1 for a scalar part.
    """

    __slots__ = (
        "_columns", "_packed_bytes", "_plans", "index", "names", "positions", "scalars_at",
        "windows",
    )  # fmt: skip

    def __init__(self, settings: FeatureSettings) -> None:
        self.names = feature_names(settings)
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
        self.positions = tuple(positions)
        self.index = dict(zip(self.names, self.positions, strict=True))
        self._columns: dict[tuple[str, ...], tuple[tuple[int, int], ...]] = {}
        self._plans: dict[tuple[str, ...], TablePlan] = {}

    def columns(self, names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
        """The positions of ``names``, in that order (remembered: a model asks for the same)."""
        found = self._columns.get(names)
        if found is None:
            found = self._columns[names] = tuple(self.index[name] for name in names)
        return found

    def table_plan(self, names: tuple[str, ...]) -> TablePlan:
        """How a model's matrix of ``names`` is read (:mod:`.matrix`; remembered; KeyError
        for an unknown name)."""
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
            parts=1 + max((part for part, _ in positions), default=-1),
            scalars=tuple(part for _, part in scalars),
            scalar_columns=np.array([column for column, _ in scalars], dtype=np.intp),
            packed=tuple(packed),
            lengths=tuple(lengths),
            channel_columns=np.array(columns, dtype=np.intp),
            bytes_at=(np.array(words, dtype=np.intp)[:, None] + np.arange(_WORD)).ravel(),
            bits=np.array(bits, dtype=np.uint64),
        )


class RowSource(Protocol):
    """A batch's features by column (:class:`~detector.features.matrix.FeatureBatch`):
    what its vectors read of one row, and a model's matrix of some rows."""

    layout: FeatureLayout

    def parts(self, index: int) -> tuple[list[float | None], list[CountRow | None] | None]:
        """Row ``index``'s :class:`FeatureVector` parts and rows."""

    def table(self, indices: Indices, plan: TablePlan) -> npt.NDArray[np.float64] | None:
        """The matrix ``plan`` reads of rows ``indices`` (None: read vector by vector)."""


class FeatureVector(Mapping[str, float]):
    """Feature name → value for one observation (read-only; values fixed at that event).

    ``rows``: per key kind (actor, IP, target), ``None`` if its packed totals are in
    ``parts``, else row ``k`` of a batch's totals ``(steps, windows, channels)`` that an
    arena counted (:mod:`detector.features.arena`), ``parts`` holding ``None`` there: they
    are packed when first read, and a model's matrix reads them as numbers.

    A store's vectors are rows of their batch (``source``, ``index``; ``parts`` None):
    most are only ever read in a model's matrix
    (:func:`~detector.features.matrix.feature_table`), which takes the batch's columns;
    the first read of one vector on its own fetches its parts.
    """

    __slots__ = ("_index", "_layout", "_parts", "_rows", "_source")

    def __init__(
        self,
        layout: FeatureLayout,
        parts: Sequence[float | None] | None,
        rows: Sequence[CountRow | None] | None = None,
        source: RowSource | None = None,
        index: int = 0,
    ) -> None:
        self._layout = layout
        self._parts = parts
        self._rows = rows
        self._source = source
        self._index = index

    def __getitem__(self, name: str) -> float:
        part, shift = self._layout.index[name]
        parts = self._parts
        if parts is None:
            parts = self._fetch()
        value = parts[part]
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

    def _fetch(self) -> Sequence[float | None]:
        """The parts of a batch's row, read from the batch once."""
        assert self._source is not None  # parts are None only for a batch's rows
        parts, self._rows = self._source.parts(self._index)
        self._parts = parts
        return parts

    def _packed_parts(self) -> Sequence[float]:
        """:attr:`_parts` with every kind's totals packed (the rows packed once, kept)."""
        if self._parts is None:
            self._fetch()
        rows = self._rows
        if rows is None:
            return cast(Sequence[float], self._parts)
        parts = list(cast(Sequence[float | None], self._parts))
        windows = self._layout.windows
        for kind, row in enumerate(rows):
            if row is not None:
                parts[kind * windows : (kind + 1) * windows] = packed_row(row[0][row[1]])
        self._parts, self._rows = parts, None
        return cast(Sequence[float], parts)

    def to_dict(self) -> dict[str, float]:
        """A plain dict (for JSON and printing)."""
        return dict(zip(self._layout.names, self.vector(), strict=True))

    def __repr__(self) -> str:
        return f"FeatureVector({self.to_dict()!r})"
