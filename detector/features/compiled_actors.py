"""The actors of a batch the compiled way: their values and counts from the batch's columns.

Once the counter kernels are compiled (:mod:`detector.jit`), the feature store
walks a batch's events once for what stays event by event (the watermark, the
tables; :mod:`.drafting`) and gathers each actor event into a
:class:`Stretch` (and its IP and target into theirs: :mod:`.compiled_keys`).
This module then observes the stretch's remembered values in the value pool
(:class:`~.value_pool.ValuePool`, one numba call), builds the actors' counter
steps from the answers (:mod:`.actor_steps`, one more), runs them in the
actor arena (one more) and reads and counts the events' hours in the profile
pool (:class:`~.profile_pool.ProfilePool`, one more): the four calls do what the
store's loop did per field and event, with the same numbers. Each event's
observation is then made from its actor's totals (their ratios worked out for
the whole stretch at once) and its keys' (counted before it).

A stretch ends where the arena must be read as it is (a late event's
description) or would give up a slot one of its actors holds (a claim when it
is full), so every step runs in the order the events came, and after 4,096
events (the pool keeps room for a stretch's worst case).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter, methodcaller
from typing import Any, NamedTuple

import numpy as np

from detector.events.model import Category, Event
from detector.features.actor_steps import counted_steps, totals_column, units_table
from detector.features.arena import CounterArena, Counts, RowsColumn
from detector.features.compiled_keys import BatchColumns
from detector.features.lanes import LANE_BITS
from detector.features.observation import Observation
from detector.features.profile_pool import ProfilePool
from detector.features.schema import (
    ACTOR_CHANNELS,
    CATEGORY_CHANNELS,
    MUTATING_CATEGORIES,
)
from detector.features.state import TrackedField
from detector.features.value_pool import Answers, PoolField, ValuePool
from detector.features.vector_parts import VectorParts, head_rows

__all__ = ["CompiledActors", "Stretch", "pool_fields"]

_EVENTS = ACTOR_CHANNELS.index("events")
_FAILURES = ACTOR_CHANNELS.index("failures")
_PRIVILEGED = ACTOR_CHANNELS.index("privileged")
_PRODUCTION = ACTOR_CHANNELS.index("production")
_NOVEL = ACTOR_CHANNELS.index("novel")
_CATEGORY = {category: ACTOR_CHANNELS.index(name) for category, name in CATEGORY_CHANNELS.items()}
_FLAGS = 5  # events, category, failure, privileged, production
_EVENT_FLAG_SHIFTS = np.arange(4, dtype=np.int64)
_EVENT_FLAG_BITS = np.zeros(len(ACTOR_CHANNELS) + 1, np.int64)
"""Channel → the bits of the event flags (failure, privileged, mutating, production:
:func:`~.vector_parts.event_flags`) an event counted in it has; the last, a stretch's
padding (-1), none."""
_EVENT_FLAG_BITS[_FAILURES] = 1
_EVENT_FLAG_BITS[_PRIVILEGED] = 2
_EVENT_FLAG_BITS[[_CATEGORY[category] for category in MUTATING_CATEGORIES]] = 4
_EVENT_FLAG_BITS[_PRODUCTION] = 8


def _channels_counted(
    category: Category, failure: bool, privileged: bool, production: bool
) -> tuple[int, ...]:
    """The channels an event counts in (:data:`_FLAGS` of them, -1 past the last)."""
    flags = [_EVENTS]
    if (channel := _CATEGORY.get(category)) is not None:
        flags.append(channel)
    if failure:
        flags.append(_FAILURES)
    if privileged:
        flags.append(_PRIVILEGED)
    if production:
        flags.append(_PRODUCTION)
    return (*flags, *[-1] * (_FLAGS - len(flags)))


_FLAGS_OF: dict[tuple[Category, bool, bool, bool], tuple[int, ...]] = {}
""":func:`_channels_counted` of each kind of event met (a few dozen kinds at most)."""


def pool_fields(fields: tuple[TrackedField, ...]) -> list[PoolField]:
    """The value pool's fields of an actor's remembered fields."""
    return [PoolField(f.limits, unit=bool(f.unit), tracked=f.tracked) for f in fields]


class Gathered(NamedTuple):
    """A stretch's events and what the walk found of each, a column each (:class:`Stretch`)."""

    positions: tuple[int, ...]
    """Each event's place in the batch (and its drafts)."""
    events: tuple[Event, ...]
    slots: tuple[int, ...]
    learning: tuple[bool, ...]
    flags: tuple[tuple[int, ...], ...]
    """Each event's count channels (:data:`_FLAGS` of them, -1 past the last)."""
    keys: tuple[tuple[Any, Any], ...]
    """Each event's IP and target totals (or what gives them)."""
    history: tuple[float, ...]
    """Each event's actor's seconds since its first event."""


@dataclass
class Stretch:
    """Actor events gathered by the store's walk, in order, for :meth:`CompiledActors.run`."""

    columns: BatchColumns
    """The batch's times, buckets and hours, which the events' are taken from."""
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    """Each event's :class:`Gathered` fields, as the walk met it (a tuple each: one append)."""
    actors: set[object] = field(default_factory=set)
    """The actor states it counts (their slots must stay theirs; states hash by identity)."""

    def add(
        self, position: int, event: Event, slot: int, learning: bool, failure: bool,
        production: bool, keys: tuple[Any, Any], history: float, actor: object,
    ) -> None:  # fmt: skip
        kind = (event.category, failure, event.privileged, production)
        flags = _FLAGS_OF.get(kind)
        if flags is None:
            flags = _FLAGS_OF[kind] = _channels_counted(*kind)
        self.rows.append((position, event, slot, learning, flags, keys, history))
        self.actors.add(actor)

    def gathered(self) -> Gathered:
        """The events gathered, a column each."""
        return Gathered(*zip(*self.rows, strict=True))

    def __len__(self) -> int:
        return len(self.rows)


class CompiledActors:
    """A store's actors the compiled way (see the module)."""

    def __init__(
        self,
        fields: tuple[TrackedField, ...],
        pool: ValuePool,
        profiles: ProfilePool,
        parts: VectorParts,
    ) -> None:
        self._fields = fields
        self._pool = pool
        self._profiles = profiles
        self._parts = parts
        self._getters = [
            (f.on_event, attrgetter(f.name) if f.on_event else methodcaller("get", f.name))
            for f in fields
        ]
        self._channels = np.array(
            [(f.unit.bit_length() - 1) // LANE_BITS if f.unit else -1 for f in fields], np.int64
        )
        self._tracked = sum(1 << number for number, f in enumerate(fields) if f.tracked)
        # The tracked fields' numbers, in the order of their new-value flags (settings.tracked).
        self._flag_bits = np.array(
            [number for number, f in enumerate(fields) if f.tracked], dtype=np.int64
        )
        self._units: dict[int, np.ndarray] = {}

    def run(self, stretch: Stretch, arena: CounterArena) -> list[Observation]:
        """The observations of ``stretch``'s events, their values and counts observed (the
        IPs' and targets' totals they hold counted already)."""
        gathered = stretch.gathered()
        events, learning = gathered.events, gathered.learning
        times, buckets, hours = stretch.columns.of(gathered.positions)
        slots = np.array(gathered.slots, np.int64)
        answers = self._pool.observe(slots, times, self._values(events), np.array(learning))
        flags = np.array(gathered.flags, np.int64)
        counts = self._count(slots, buckets, flags, answers, arena)
        # Each event's hour counted in its actor's profile (the read before it kept).
        profile = self._profiles.read_then_add(slots, hours)
        scalars = self._scalars(gathered, profile, flags, answers, counts)
        new, tracked = answers.new, self._tracked
        reports = {
            index: self._report(index, event, answers)
            for index, event in enumerate(events)
            if new[index] & tracked and not learning[index]
        }
        return self._parts.observations(events, learning, reports, counts, gathered.keys, scalars)

    def _scalars(
        self, gathered: Gathered, profile: tuple[np.ndarray, np.ndarray], flags: np.ndarray,
        answers: Answers, counts: RowsColumn | list[Counts],
    ) -> np.ndarray:  # fmt: skip
        """The scalar parts of the stretch's vectors, an event a row (the actor's head and
        ratios, the new value flags, the event flags: :class:`~.vector.FeatureLayout`);
        ``profile``: what the profile pool read (:meth:`ProfilePool.read_then_add`)."""
        read, past = profile
        heads = head_rows(read, gathered.history, gathered.learning)
        ratios = self._parts.ratio_rows(counts, past.tolist(), gathered.history)
        new = np.array(answers.new, np.int64)[:, None] >> self._flag_bits & 1
        # An event's flags as bits, from the channels it counted in: then a column each.
        counted = np.bitwise_or.reduce(_EVENT_FLAG_BITS[flags], axis=1)
        event_flags = counted[:, None] >> _EVENT_FLAG_SHIFTS & 1
        return np.concatenate((heads, ratios, new, event_flags), axis=1, dtype=np.float64)

    def _values(self, events: Sequence[Event]) -> np.ndarray:
        """The value ids of each remembered field (a row each) of ``events``."""
        attributes = [event.attributes for event in events]
        ids = self._pool.ids
        return np.array(
            [ids(map(get, events if on_event else attributes)) for on_event, get in self._getters],
            np.int64,
        ).reshape(len(self._getters), len(events))

    def _count(
        self, slots: np.ndarray, buckets: np.ndarray, flags: np.ndarray, answers: Answers,
        arena: CounterArena,
    ) -> RowsColumn | list[Counts]:  # fmt: skip
        """The actors' counter steps built and run: each event's totals after it (as a column
        of one matrix's rows: :func:`~.actor_steps.totals_column`)."""
        channels = arena.channels
        units = self._units.get(channels)
        if units is None:
            units = self._units[channels] = units_table(self._channels.tolist(), channels)
        found, rows = counted_steps(
            arena, slots, buckets, flags, answers, self._channels, self._tracked, _NOVEL, units
        )
        return totals_column(found, rows)

    def _report(
        self, index: int, event: Event, answers: Answers
    ) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
        """The new tracked values an event past its actor's learning shows, and the values
        known for each (event ``index`` of the stretch)."""
        fields, fresh = self._fields, answers.new[index] & self._tracked
        reported = {
            fields[number].name: get(event if on_event else event.attributes)
            for number, (on_event, get) in enumerate(self._getters)
            if fresh >> number & 1
        }
        lists = answers.known.get(index, {})
        return reported, {fields[number].name: tuple(values) for number, values in lists.items()}
