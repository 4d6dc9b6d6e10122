"""The actors of a batch the compiled way: their values and counts from the batch's columns.

Once the counter kernels are compiled (:mod:`detector.jit`), the feature store
walks a batch's events once for what stays event by event (the watermark, the
tables, the profile; :mod:`.drafting`) and gathers each actor event into a
:class:`Stretch` (and its IP and target into theirs: :mod:`.compiled_keys`).
This module then observes the stretch's remembered values in the value pool
(:class:`~.value_pool.ValuePool`, one numba call), builds the actors' counter
steps from the answers (:mod:`.actor_steps`, one more) and runs them in the
actor arena (one more): the three calls do what the store's loop did per field
and event, with the same numbers. Each event's observation is then made from
its actor's totals (their ratios worked out for the whole stretch at once) and
its keys' (counted before it).

A stretch ends where the arena must be read as it is (a late event's
description) or would give up a slot one of its actors holds (a claim when it
is full), so every step runs in the order the events came, and after 4,096
events (the pool keeps room for a stretch's worst case).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import attrgetter, methodcaller
from typing import Any

import numpy as np

from detector.events.model import Event
from detector.features.actor_steps import counted_steps, totals_rows, units_table
from detector.features.arena import CounterArena, Counts
from detector.features.lanes import LANE_BITS
from detector.features.observation import Observation
from detector.features.schema import ACTOR_CHANNELS, CATEGORY_CHANNELS
from detector.features.state import TrackedField
from detector.features.value_pool import Answers, PoolField, ValuePool
from detector.features.vector_parts import VectorParts, event_flags

__all__ = ["CompiledActors", "Stretch", "pool_fields"]

_EVENTS = ACTOR_CHANNELS.index("events")
_FAILURES = ACTOR_CHANNELS.index("failures")
_PRIVILEGED = ACTOR_CHANNELS.index("privileged")
_PRODUCTION = ACTOR_CHANNELS.index("production")
_NOVEL = ACTOR_CHANNELS.index("novel")
_CATEGORY = {category: ACTOR_CHANNELS.index(name) for category, name in CATEGORY_CHANNELS.items()}
_FLAGS = 5  # events, category, failure, privileged, production
_PADDING = [[-1] * (_FLAGS - count) for count in range(_FLAGS + 1)]
_NO_NEW: Mapping[str, str] = {}
_NO_KNOWN: Mapping[str, tuple[str, ...]] = {}


def pool_fields(fields: tuple[TrackedField, ...]) -> list[PoolField]:
    """The value pool's fields of an actor's remembered fields."""
    return [PoolField(f.limits, unit=bool(f.unit), tracked=f.tracked) for f in fields]


@dataclass
class Stretch:
    """Actor events gathered by the store's walk, in order, for :meth:`CompiledActors.run`."""

    positions: list[int] = field(default_factory=list)
    """Each event's place in the batch's drafts."""
    events: list[Event] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    buckets: list[int] = field(default_factory=list)
    """Each event's buckets, one after the other."""
    learning: list[bool] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    """Each event's count channels (:data:`_FLAGS` of them, -1 past the last), one after
    the other."""
    rest: list[tuple[Any, ...]] = field(default_factory=list)
    """Each event's IP and target totals, actor head, past events, history, event flags."""
    actors: set[int] = field(default_factory=set)
    """The ids of the actor states it counts (their slots must stay theirs)."""

    def add(
        self, position: int, event: Event, slot: int, moment: float, buckets: list[int],
        learning: bool, failure: bool, production: bool, rest: tuple[Any, ...], actor: object,
    ) -> None:  # fmt: skip
        self.positions.append(position)
        self.events.append(event)
        self.slots.append(slot)
        self.times.append(moment)
        self.buckets += buckets
        self.learning.append(learning)
        flags = [_EVENTS]
        category = _CATEGORY.get(event.category)
        if category is not None:
            flags.append(category)
        if failure:
            flags.append(_FAILURES)
        if event.privileged:
            flags.append(_PRIVILEGED)
        if production:
            flags.append(_PRODUCTION)
        self.flags += flags
        self.flags += _PADDING[len(flags)]
        self.rest.append(rest)
        self.actors.add(id(actor))

    def __len__(self) -> int:
        return len(self.events)


class CompiledActors:
    """A store's actors the compiled way (see the module)."""

    def __init__(
        self, fields: tuple[TrackedField, ...], pool: ValuePool, parts: VectorParts
    ) -> None:
        self._fields = fields
        self._pool = pool
        self._parts = parts
        self._getters = [
            (f.on_event, attrgetter(f.name) if f.on_event else methodcaller("get", f.name))
            for f in fields
        ]
        self._channels = np.array(
            [(f.unit.bit_length() - 1) // LANE_BITS if f.unit else -1 for f in fields], np.int64
        )
        self._tracked = sum(1 << number for number, f in enumerate(fields) if f.tracked)
        self._units: dict[int, np.ndarray] = {}

    def run(self, stretch: Stretch, arena: CounterArena) -> list[Observation]:
        """The observations of ``stretch``'s events, their values and counts observed (the
        IPs' and targets' totals they hold counted already)."""
        events = stretch.events
        slots = np.array(stretch.slots, np.int64)
        answers = self._pool.observe(
            slots, np.array(stretch.times), self._values(events), np.array(stretch.learning)
        )
        counts = self._count(stretch, slots, answers, arena)
        rest = stretch.rest
        ratios = self._parts.ratio_rows(
            counts, [part[3] for part in rest], [part[4] for part in rest]
        )
        return [
            self._observation(index, event, stretch, answers, counts[index], ratios[index])
            for index, event in enumerate(events)
        ]

    def _values(self, events: list[Event]) -> np.ndarray:
        """The value ids of each remembered field (a row each) of ``events``."""
        attributes = [event.attributes for event in events]
        ids = self._pool.ids
        return np.array(
            [ids(map(get, events if on_event else attributes)) for on_event, get in self._getters],
            np.int64,
        ).reshape(len(self._getters), len(events))

    def _count(
        self, stretch: Stretch, slots: np.ndarray, answers: Answers, arena: CounterArena
    ) -> list[Counts]:
        """The actors' counter steps built and run: each event's totals after it."""
        channels = arena.channels
        units = self._units.get(channels)
        if units is None:
            units = self._units[channels] = units_table(self._channels.tolist(), channels)
        events = len(stretch)
        flags = np.array(stretch.flags, np.int64).reshape(events, _FLAGS)
        buckets = np.array(stretch.buckets, np.int64).reshape(events, -1)
        found, rows = counted_steps(
            arena, slots, buckets, flags, answers, self._channels, self._tracked, _NOVEL, units
        )
        return totals_rows(found, rows)

    def _observation(
        self, index: int, event: Event, stretch: Stretch, answers: Answers, counts: Counts,
        ratios: list[float],
    ) -> Observation:  # fmt: skip
        ip_counts, target_counts, head, _, _, failure, production = stretch.rest[index]
        learning = stretch.learning[index]
        new_values: dict[str, str] = {}
        fresh = answers.new[index] & self._tracked
        if fresh:
            for number, (on_event, get) in enumerate(self._getters):
                if fresh >> number & 1:
                    new_values[self._fields[number].name] = get(
                        event if on_event else event.attributes
                    )
        parts = self._parts
        scalars = [
            *head,
            *ratios,
            *(parts.new_value_flags(new_values) if new_values else parts.no_new_values),
            *event_flags(event, failure, production),
        ]
        reported, known = _NO_NEW, _NO_KNOWN
        if new_values and not learning:
            lists = answers.known.get(index, {})
            reported = new_values
            known = {self._fields[number].name: tuple(values) for number, values in lists.items()}
        return parts.observation(
            event, learning, reported, known, counts, ip_counts, target_counts, scalars
        )
