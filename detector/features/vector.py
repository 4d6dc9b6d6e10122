"""The features of one observation, as a read-only mapping read on demand.

The store hands every observation all its features, but most consumers (a
rule condition, an explanation) read a handful of them. A
:class:`FeatureVector` therefore keeps the packed window totals as they were
at that event and unpacks a feature when it is read; :meth:`FeatureVector.vector`
unpacks all of them in :func:`~detector.features.schema.feature_names` order for
models. It is a ``Mapping[str, float]``: use :meth:`FeatureVector.to_dict`
(or ``dict(vector)``) where a plain dict is needed, e.g. for JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

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

__all__ = ["FeatureLayout", "FeatureVector"]

_SCALAR = -1


class FeatureLayout:
    """Where each feature of a store's settings sits in a vector's parts.

    Parts are, in order: the packed totals per window of the actor, the IP and
    the target (one int per window), then the scalar features (actor scalars,
    ``actor.new.<field>`` flags, event flags). A feature is a (part, shift)
    pair: shift is the channel's bit offset, or -1 for a scalar part.
    """

    __slots__ = ("_columns", "index", "names", "positions", "scalars_at")

    def __init__(self, settings: FeatureSettings) -> None:
        self.names = feature_names(settings)
        windows = len(settings.windows)
        positions: list[tuple[int, int]] = []
        part = 0
        for channels in (ACTOR_CHANNELS, IP_CHANNELS, TARGET_CHANNELS):
            for window in range(windows):
                positions += [
                    (part + window, channel * LANE_BITS) for channel in range(len(channels))
                ]
            part += windows
        self.scalars_at = part
        ratios = len(ACTOR_RATIOS) * windows
        scalars = len(ACTOR_SCALARS) + ratios + len(settings.tracked) + len(EVENT_FLAGS)
        positions += [(part + offset, _SCALAR) for offset in range(scalars)]
        self.positions = tuple(positions)
        self.index = dict(zip(self.names, self.positions, strict=True))
        self._columns: dict[tuple[str, ...], tuple[tuple[int, int], ...]] = {}

    def columns(self, names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
        """The positions of ``names``, in that order (remembered: a model asks for the same)."""
        found = self._columns.get(names)
        if found is None:
            found = self._columns[names] = tuple(self.index[name] for name in names)
        return found


class FeatureVector(Mapping[str, float]):
    """Feature name → value for one observation (read-only; values fixed at that event)."""

    __slots__ = ("_layout", "_parts")

    def __init__(self, layout: FeatureLayout, parts: Sequence[float]) -> None:
        self._layout = layout
        self._parts = parts

    def __getitem__(self, name: str) -> float:
        part, shift = self._layout.index[name]
        value = self._parts[part]
        if shift == _SCALAR:
            return value
        return (int(value) >> shift) & LANE_MASK

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout.names)

    def __len__(self) -> int:
        return len(self._layout.names)

    def vector(self) -> list[float]:
        """Every value in feature-name order: the fixed-width input of a model."""
        parts = self._parts
        return [
            parts[part] if shift == _SCALAR else (int(parts[part]) >> shift) & LANE_MASK
            for part, shift in self._layout.positions
        ]

    def take(self, names: tuple[str, ...]) -> list[float]:
        """``[self[name] for name in names]``, unpacked in one pass (a model's matrix row)."""
        parts = self._parts
        return [
            parts[part] if shift == _SCALAR else (int(parts[part]) >> shift) & LANE_MASK
            for part, shift in self._layout.columns(names)
        ]

    def packed(self, start: int, stop: int) -> Sequence[float]:
        """The raw parts ``start:stop`` (packed window counts; see :func:`windows.lane`)."""
        return self._parts[start:stop]

    def to_dict(self) -> dict[str, float]:
        """A plain dict (for JSON and printing)."""
        return dict(zip(self._layout.names, self.vector(), strict=True))

    def __repr__(self) -> str:
        return f"FeatureVector({self.to_dict()!r})"
