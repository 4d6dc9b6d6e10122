"""The windows every counter of a store shares: their lengths, buckets and hot counters."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from detector.features.arena import CounterArena
from detector.features.counter_kernels import compiled_kernels
from detector.features.settings import DEFAULT_ARENA_BYTES

if TYPE_CHECKING:
    from detector.features.profile_pool import ProfilePool
    from detector.features.value_pool import ValuePool
    from detector.features.windows import WindowCounter

__all__ = ["BUCKETS_PER_WINDOW", "HOT_TOTALS", "WindowSpec"]

BUCKETS_PER_WINDOW = 60
HOT_TOTALS = 1 << 16
"""How many counters of a store are *hot*: keep their packed window totals at hand (the
plain form; compiled, the arenas' ``arena_bytes`` bound them first).

Totals are the sums of a counter's buckets, kept so an event adds to them
instead of summing the buckets again; but a list of packed ints per key is
about a third of an idle key's memory. Only the counters that were counted
most recently (a spec's :attr:`WindowSpec.hot`) keep them; the others are
*cold*: their buckets frozen into one bytes object (:func:`frozen`), thawed
and summed when next counted, to the same numbers.
"""


class WindowSpec:
    """Window lengths (seconds, shortest first) and their bucket widths.

    One spec is shared by every counter of a store, so a counter only holds
    its buckets. :meth:`bucket_ids` turns a time into its bucket per window,
    once per event for all of the event's keys.
    """

    __slots__ = (
        "arena_bytes", "arenas", "buckets", "hot", "hot_limit", "key_values", "nested", "profiles",
        "seconds", "values", "widths",
    )  # fmt: skip

    def __init__(
        self,
        windows: Sequence[float],
        buckets: int = BUCKETS_PER_WINDOW,
        arena_bytes: int = DEFAULT_ARENA_BYTES,
    ) -> None:
        if not windows or any(window <= 0 for window in windows):
            raise ValueError("windows must be positive lengths in seconds")
        self.seconds = tuple(sorted(float(window) for window in windows))
        self.widths = tuple(window / buckets for window in self.seconds)
        self.buckets = buckets
        # Each bucket width a whole multiple of the previous one (5s, 1m, 24m for
        # 5m, 1h, 24h): two times in one bucket of a window share the buckets of
        # every longer window too.
        self.nested = all(wider % narrower == 0 for narrower, wider in pairwise(self.widths))
        # The hot counters, the one to go cold next first (it may be a key the
        # store has dropped: it is released when its turn comes).
        self.hot: deque[WindowCounter] = deque()
        self.hot_limit = max(1, HOT_TOTALS)
        self.arena_bytes = arena_bytes
        """At most this many bytes of slots in each of :attr:`arenas`."""
        self.arenas: dict[type, CounterArena] = {}
        self.values: ValuePool | None = None
        """The remembered values of the actors hot in an arena, in their slots' numbers."""
        self.profiles: ProfilePool | None = None
        """The hour-of-week profiles of the same actors, in the same numbers."""
        self.key_values: ValuePool | None = None
        """The actors of the IPs and targets hot in an arena, in their slots' numbers."""

    def arena(self, kind: type) -> CounterArena | None:
        """Where hot counters of ``kind`` live once the process has compiled the counter
        kernels (:mod:`detector.features.arena`); ``None`` before: the plain form."""
        arena = self.arenas.get(kind)
        if arena is None:
            kernels = compiled_kernels()
            if kernels is None:
                return None
            arena = self.arenas[kind] = CounterArena(self, kernels)
        return arena

    def bucket_ids(self, time: float) -> list[int]:
        """The bucket of ``time`` in each window, shortest window first."""
        return [int(time // width) for width in self.widths]

    def bucket_rows(self, times: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """:meth:`bucket_ids` of each of ``times`` (a row each), worked out at once."""
        # NumPy's floor division of floats is Python's (the same rounding), in one call.
        widths = np.array(self.widths, dtype=np.float64)
        rows: npt.NDArray[np.int64] = (times[:, None] // widths).astype(np.int64)
        return rows
