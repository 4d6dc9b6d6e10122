"""How wide an arena's bucket counts are: 4 bytes while every one fits, then 8.

Most of a hot counter's slot is its buckets' counts: an actor's 60 buckets of 17
channels in each of three windows. At 8 bytes a count the slot is 25.9 KB, at 4
bytes 13.7 KB: nearly twice the actors hot in the same ``features.arena_bytes``. A
bucket of one key that counts past ``2**31 - 1`` is beyond what a worker reads
today (one actor at 50,000 events a second for the twelve hours of a 30-day
window's bucket), but a count must never wrap. :class:`CountWidth` keeps a
bound on every count's size, raised by the most each run of steps could add
and set by what a loaded counter holds; when the bound would pass the limit it
is first made exact from the counts themselves (a scan of the arena, about
once in 500 million events counted), and only if they are that large does the
arena widen to 8 bytes, for good. The kernels compute in 8 bytes either way.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__all__ = ["NARROW_LIMIT", "CountWidth", "largest"]

NARROW_LIMIT = (1 << 31) - 1
"""The largest count (and, negated, the least) a 4-byte arena holds."""


def largest(values: npt.NDArray[np.integer]) -> int:
    """The greatest absolute value among ``values`` (0 for none), without numpy's overflow of
    the least integer's absolute value."""
    if not values.size:
        return 0
    return max(int(values.max()), -int(values.min()))


class CountWidth:
    """The type of an arena's bucket counts, and a bound on their absolute values."""

    __slots__ = ("bound", "dtype")

    def __init__(self) -> None:
        self.dtype: type[np.signedinteger] = np.int32
        self.bound = 0
        """No count's absolute value is greater (counted only while the counts are narrow)."""

    @property
    def itemsize(self) -> int:
        return int(np.dtype(self.dtype).itemsize)

    def holds(self, added: int, exact: Callable[[], int]) -> bool:
        """Whether every count can change by ``added`` at most and stay in the current type:
        the bound raised by it if so. ``exact``: the bound made exact (from the arena's
        counts and what is about to join them), called only when needed. False: widen
        first (:meth:`widened`)."""
        if self.dtype is np.int64:
            return True
        if self.bound + added > NARROW_LIMIT:
            self.bound = exact()
            if self.bound + added > NARROW_LIMIT:
                return False
        self.bound += added
        return True

    def loads(self, size: int) -> bool:
        """Whether a counter whose counts' absolute values are at most ``size`` fits the
        current type: the bound raised to it if so; False: widen first."""
        if self.dtype is np.int64:
            return True
        if size > NARROW_LIMIT:
            return False
        self.bound = max(self.bound, size)
        return True

    def widened(self) -> None:
        """Counts in 8 bytes from now on."""
        self.dtype = np.int64
