"""Numbers in and out of a counter arena (:mod:`detector.features.arena`): a batch's
totals as packed counts, a slot's dumped lanes in their narrowest type, and the
increments' and units' tables the kernels read.

A packed count holds every channel of a key in one Python int, 40 bits each
(:mod:`detector.features.lanes`); an arena holds them as numpy rows of
channel counts. These turn one into the other without a loop per channel.
"""

from __future__ import annotations

from array import array

import numpy as np

from detector.features.lanes import LANE_BITS, LANE_MASK, split

__all__ = [
    "SPREAD_LIMIT",
    "channel_matrix",
    "narrowest",
    "packed_exactly",
    "packed_row",
    "packed_rows",
    "stored",
    "widened",
]

_LANE_TYPES = (("B", np.uint8, 1 << 8), ("H", np.uint16, 1 << 16), ("I", np.uint32, 1 << 32))
_SPREAD_BYTES = LANE_BITS // 8  # a channel's field in a packed count
SPREAD_LIMIT = LANE_MASK + 1
"""Totals from here on (or below 0) do not fit a packed count's field: :func:`packed_exactly`."""


def channel_matrix(increments: tuple[int, ...]) -> np.ndarray:
    """Packed increments (one per window) as a matrix of channel counts."""
    pairs = [split(increment) for increment in increments]
    channels = 1 + max(channel for pair in pairs for channel, _ in pair)
    matrix = np.zeros((len(increments), channels), dtype=np.int64)
    for row, pair in enumerate(pairs):
        for channel, count in pair:
            matrix[row, channel] = count
    return matrix


def stored(table: np.ndarray, row: int, values: np.ndarray, channels: int) -> np.ndarray:
    """``table`` (doubled if ``row`` is past its end) with ``values`` as row ``row``, their
    channels (last axis) first, zeros after."""
    if row == len(table):
        table = widened(table, 2 * row, channels)
    table[row] = 0
    table[row, ..., : values.shape[-1]] = values
    return table


def widened(table: np.ndarray, rows: int, channels: int) -> np.ndarray:
    """``table`` with ``rows`` rows (first axis) of ``channels`` (last axis), zeros added."""
    wider = np.zeros((rows, *table.shape[1:-1], channels), dtype=np.int64)
    wider[: len(table), ..., : table.shape[-1]] = table
    return wider


def packed_row(totals: np.ndarray) -> list[int]:
    """A slot's totals (windows, channels; each in ``[0, 2**40)``) as packed ints per window."""
    return packed_rows(totals[None])[0]


def packed_rows(totals: np.ndarray) -> list[list[int]]:
    """:func:`packed_row` of each of ``totals`` (rows, windows, channels) in one conversion:
    numpy's calls cost about a microsecond each, however few the rows."""
    rows, windows, channels = totals.shape
    data = totals.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :_SPREAD_BYTES].tobytes()
    width = channels * _SPREAD_BYTES
    packed = [int.from_bytes(data[at : at + width], "little") for at in range(0, len(data), width)]
    return [packed[at : at + windows] for at in range(0, rows * windows, windows)]


def packed_exactly(totals: np.ndarray) -> list[int]:
    """A slot's totals packed per window, whatever their size (Python ints)."""
    return [
        sum(int(value) << (channel * LANE_BITS) for channel, value in enumerate(window))
        for window in totals
    ]


def narrowest(lanes: np.ndarray, low: int, high: int) -> array[int]:
    """``lanes`` (counts from ``low`` to ``high``) in the narrowest type holding them (signed
    8 bytes once one is below 0)."""
    if not len(lanes):
        return array("B")
    if low >= 0:
        for typecode, dtype, bound in _LANE_TYPES:
            if high < bound:
                return array(typecode, lanes.astype(dtype).tobytes())
    return array("q", lanes.tobytes())
