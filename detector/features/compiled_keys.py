"""A batch's IPs and targets the compiled way: their actors and counts from its columns.

What :func:`~detector.features.drafting.count_key` does per event, for a stretch
of a batch's events at once, as :mod:`.compiled_actors` does for the actors:
the key pool (:class:`~.value_pool.ValuePool`, one field: the actors seen
with the key, forgotten as an IP's or target's :class:`FirstSeenSet`) observes
the stretch's actors in one numba call, the steps kernel of the actors
(:mod:`.actor_steps`) builds the keys' counter steps from the answers (the
event's channels, the distinct actor's unit where the actor is new to the key,
its move where it was seen before, the take-back of the actors a trim
dropped), and the key arena runs them. IPs and targets share the arena and the
pool (their slots differ); each kind is built and run on its own, its distinct
actors in its own channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from detector.features.actor_steps import counted_steps, units_table
from detector.features.arena import CounterArena, Counts, Pending, RowsColumn
from detector.features.value_pool import ValuePool

__all__ = ["BatchColumns", "CompiledKeys", "KeyStretch"]

_FLAGS = 2  # events, failures


class BatchColumns(NamedTuple):
    """A batch's events' times (seconds), buckets (a row per event, a column per window)
    and hours of the week: a stretch takes its events' by their positions in the batch."""

    times: npt.NDArray[np.float64]
    buckets: npt.NDArray[np.int64]
    hours: npt.NDArray[np.int64]

    def of(self, positions: Sequence[int]) -> BatchColumns:
        """The columns of the events at ``positions``."""
        index = np.array(positions, np.intp)
        return BatchColumns(self.times[index], self.buckets[index], self.hours[index])


class KeyStretch:
    """One kind's key events gathered by the store's walk, in order; once run
    (:meth:`CompiledKeys.run`), the totals of each event's key after it, by ticket
    (:class:`~.arena.Results`: a draft holds its ticket until it is finished)."""

    def __init__(self, channels: tuple[int, int, int], columns: BatchColumns) -> None:
        self.channels = channels
        """The kind's events, failures (-1: not counted) and distinct actors channels."""
        self.columns = columns
        self.rows: list[tuple[int, int, bool, str]] = []
        """Each event's key slot, place in the batch, failure and actor (a tuple: one append)."""
        self._found: np.ndarray | list[list[int]] = []
        self._result_rows: list[int] = []

    def add(self, slot: int, position: int, failure: bool, actor: str) -> Pending:
        """Gather an event of ``actor`` (at ``position`` in the batch) on the key in ``slot``;
        what gives its totals."""
        rows = self.rows
        rows.append((slot, position, failure, actor))
        return self, len(rows) - 1

    def counted(self, found: np.ndarray | list[list[int]], rows: list[int]) -> None:
        """The totals :meth:`CompiledKeys.run` gave, and the row of each event's."""
        self._found, self._result_rows = found, rows

    def result(self, ticket: int) -> Counts:
        found, row = self._found, self._result_rows[ticket]
        return found[row] if isinstance(found, list) else (found, row)

    def rows_of(self, tickets: Sequence[int]) -> RowsColumn | None:
        found = self._found
        if isinstance(found, list):
            return None
        return found, np.array(self._result_rows, np.intp)[np.array(tickets, np.intp)]

    def __len__(self) -> int:
        return len(self.rows)


class CompiledKeys:
    """The IPs and targets of one store the compiled way (see the module)."""

    def __init__(self, pool: ValuePool) -> None:
        self._pool = pool
        self._units: dict[tuple[int, int], np.ndarray] = {}

    def run(self, stretch: KeyStretch, arena: CounterArena) -> None:
        """Count ``stretch``'s events on their keys: their totals, by ticket, in the stretch."""
        events = len(stretch)
        if not events:
            return
        pool = self._pool
        slots_of, positions, failures, actors = zip(*stretch.rows, strict=True)
        slots = np.array(slots_of, np.int64)
        times, buckets, _ = stretch.columns.of(positions)
        values = pool.ids(actors).reshape(1, events)
        answers = pool.observe(slots, times, values, np.ones(events, np.bool_))
        channel = stretch.channels[2]
        units = self._units.get((channel, arena.channels))
        if units is None:
            units = self._units[channel, arena.channels] = units_table([channel], arena.channels)
        # Each event's two channels: its kind's events, and its failures (-1: not one).
        counted, failed, _ = stretch.channels
        flags = np.full((events, _FLAGS), counted, np.int64)
        flags[:, 1] = np.where(np.array(failures, np.bool_), failed, -1)
        channels = np.array([channel], np.int64)
        stretch.counted(
            *counted_steps(arena, slots, buckets, flags, answers, channels, 0, 0, units)
        )
