"""A batch's events counted on their keys, each event's draft observation made.

The feature store (:mod:`.store`) keeps the state and the watermark; a
:class:`Drafting` does what observing each event of a batch changes, in
either of two forms with the same numbers:

- event by event (:meth:`Drafting.plain`): a process that has not compiled
  the counter kernels (:mod:`detector.jit`);
- the compiled way (:meth:`Drafting.compiled`): what stays per event (the
  watermark, the tables, the profile) in one walk, the actors' values, the
  IPs' and targets' actors and the counts of all three a stretch at a time
  (:mod:`.compiled_actors`, :mod:`.compiled_keys`); a stretch's run makes its
  actors' observations.

Either hands back drafts (or observations) that :meth:`VectorParts.finish`
makes observations of once the queued counts have run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from operator import itemgetter
from typing import cast

from detector.events.model import Event, Outcome
from detector.features.arena import CounterArena, Pending
from detector.features.compiled_actors import CompiledActors, Stretch
from detector.features.compiled_keys import BatchColumns, CompiledKeys, KeyStretch
from detector.features.observation import Observation
from detector.features.schema import ACTOR_CHANNELS, CATEGORY_CHANNELS, IP_CHANNELS, TARGET_CHANNELS
from detector.features.state import ActorState, KeyState, TrackedField
from detector.features.tables import KeyTables
from detector.features.vector_parts import Draft, Totals, VectorParts, event_flags
from detector.features.watermark import Watermark
from detector.features.windows import FirstSeenSet, WindowCounter, lane

__all__ = ["Column", "Drafting"]

_POSITION = itemgetter(0)

_FAILURE = Outcome.FAILURE
_ACTOR_EVENT = lane(ACTOR_CHANNELS.index("events"))
_ACTOR_FAILURE = lane(ACTOR_CHANNELS.index("failures"))
_ACTOR_PRIVILEGED = lane(ACTOR_CHANNELS.index("privileged"))
_ACTOR_PRODUCTION = lane(ACTOR_CHANNELS.index("production"))
_ACTOR_NOVEL = lane(ACTOR_CHANNELS.index("novel"))
_CATEGORY_UNIT = {
    category: lane(ACTOR_CHANNELS.index(channel)) for category, channel in CATEGORY_CHANNELS.items()
}
_IP_EVENT = lane(IP_CHANNELS.index("events"))
_IP_FAILURE = lane(IP_CHANNELS.index("failures"))
_IP_ACTOR = lane(IP_CHANNELS.index("distinct_actors"))
_TARGET_ACTOR = lane(TARGET_CHANNELS.index("distinct_actors"))
_NO_KNOWN: Mapping[str, tuple[str, ...]] = {}
_NO_NEW: Mapping[str, str] = {}
_KNOWN_LISTED = 10  # the known values an alert on a new value shows
# At most this many events a stretch: the value pools keep room for a stretch in which
# every event brings a new value, so a replay's large batches would grow them for good.
_STRETCH_EVENTS = 4096
# Per key kind: its events, failures (-1: none) and distinct actors channels.
_IP_CHANNELS = (
    IP_CHANNELS.index("events"),
    IP_CHANNELS.index("failures"),
    IP_CHANNELS.index("distinct_actors"),
)
_TARGET_CHANNELS = (-1, -1, TARGET_CHANNELS.index("distinct_actors"))

Column = tuple[Event, float, list[int], int]
"""An event with its time in seconds, its buckets per window and its hour of the week."""
Carried = Mapping[str, Sequence[int]] | None
"""Key kind → the packed window counts an upstream stage counted for the event."""


class Drafting:
    """What observing each event of a batch changes in one store's tables (see the module).

    ``clock``: the store's watermark, which tells late events (described from the
    state as it is, changing nothing); ``counted``: the key kinds this store counts
    (actor, ip, target).
    """

    def __init__(
        self,
        tables: KeyTables,
        fields: tuple[TrackedField, ...],
        parts: VectorParts,
        compiled: CompiledActors,
        compiled_keys: CompiledKeys,
        learning_period: float,
        counted: frozenset[str],
        clock: Watermark,
    ) -> None:
        self._tables, self._fields, self._parts = tables, fields, parts
        self._numbers = {field.name: number for number, field in enumerate(fields)}
        self._compiled, self._compiled_keys = compiled, compiled_keys
        self._learning_period = learning_period
        self._actors_counted = "actor" in counted
        self._ips_counted = "ip" in counted
        self._targets_counted = "target" in counted
        self._clock = clock

    def plain(
        self, columns: Iterable[Column], carried: Mapping[str, Carried] | None
    ) -> list[Draft]:
        """The drafts of the events, one by one."""
        draft = self._draft
        return [
            draft(event, time, ids, hour, carried.get(event.id) if carried else None)
            for event, time, ids, hour in columns
        ]

    def _draft(
        self, event: Event, time: float, ids: list[int], hour: int, carried: Carried
    ) -> Draft:
        """What observing ``event`` (at ``time``: buckets ``ids``, hour of week ``hour``)
        changes, done; its observation if complete, else its draft."""
        parts = self._parts
        if self._clock.late(event, time):
            return self._describe_late(event, time)
        failure = event.outcome is _FAILURE
        ip_counts, target_counts = self._key_counts(event, time, ids, failure, carried)
        if not self._actors_counted:
            return event, False, _NO_NEW, _NO_KNOWN, None, ip_counts, target_counts, [], 0, 0.0, []
        production = parts.production.event_is_production(event)
        increment = _ACTOR_EVENT + _CATEGORY_UNIT.get(event.category, 0)
        if failure:
            increment += _ACTOR_FAILURE
        if event.privileged:
            increment += _ACTOR_PRIVILEGED
        if production:
            increment += _ACTOR_PRODUCTION
        actor, actor_counts, new_values, learning = self._observe_actor(event, time, ids, increment)
        history = time - actor.first
        head, total = parts.head_then_add(actor.profile, history, hour, learning)
        tail = [
            *(parts.new_value_flags(new_values) if new_values else parts.no_new_values),
            *event_flags(event, failure, production),
        ]
        # The models see every first sighting (the flags); rules see them only after
        # the learning period, when a new value has become worth an alert.
        reported, known = _NO_NEW, _NO_KNOWN
        if new_values and not learning:
            reported = new_values
            remembered, numbers = actor.remembered, self._numbers
            known = {
                name: tuple(remembered.recent(numbers[name], _KNOWN_LISTED)) for name in new_values
            }
        return (
            event, learning, reported, known, actor_counts, ip_counts, target_counts,
            head, total, history, tail,
        )  # fmt: skip

    def compiled(
        self,
        arenas: tuple[CounterArena | None, CounterArena],
        events: Sequence[Event],
        times: Sequence[float],
        columns: BatchColumns,
        carried: Mapping[str, Carried] | None,
    ) -> list[Draft]:
        """The drafts of the events the compiled way: what stays per event here, the actors'
        values and the keys' actors and the counts of both a stretch at a time
        (:mod:`.compiled_actors`, :mod:`.compiled_keys`), their times, buckets and hours
        taken from ``columns``. ``arenas``: the actors' (None in a store that counts no
        actors: a scale-out stage keyed by IP makes none) and the keys'."""
        walk = _Walk(self._compiled, self._compiled_keys, arenas, columns)
        drafts, late, tables = walk.drafts, self._clock.late, self._tables
        actors = tables.actors if self._actors_counted else None
        is_production = self._parts.production.event_is_production
        for event, time in zip(events, times, strict=True):
            if len(drafts) % _STRETCH_EVENTS == 0:
                walk.run()  # the pools make room for a stretch's worst case: bounded
            if late(event, time):  # described from the counts as they are
                walk.run()
                drafts.append(self._describe_late(event, time))
                continue
            failure = event.outcome is _FAILURE
            handed = carried.get(event.id) if carried else None
            keys = self._gather_keys(walk, event, time, failure, handed)
            if actors is None:
                drafts.append((event, False, _NO_NEW, _NO_KNOWN, None, *keys, [], 0, 0.0, []))
                continue
            # The actor's state found as _gather_key finds a key's; made or claimed if need be.
            state = actors.get(event.actor)
            slot = None if state is None else state.arena_slot
            if state is None or slot is None:
                state, slot = self._claim_actor(walk, event.actor, time)
            elif time > state.last:
                state.last = time
            if time < state.first:
                state.first = time
            history = time - state.first
            learning, production = history < self._learning_period, is_production(event)
            walk.actors.add(
                len(drafts), event, slot, learning, failure, production, keys, history, state
            )  # fmt: skip
            drafts.append(None)  # made by the stretch's run
        walk.run()
        return cast("list[Draft]", drafts)

    def _gather_keys(
        self, walk: _Walk, event: Event, time: float, failure: bool, handed: Carried
    ) -> tuple[Totals, Totals]:
        """The event's IP and target totals (what gives them once the walk runs its
        stretches), its keys' actors and counts gathered, unless an upstream stage
        ``handed`` them."""
        tables, no_counts = self._tables, self._parts.no_counts
        ip: Totals = no_counts
        if handed and (totals := handed.get("ip")) is not None:
            ip = list(totals)
        elif event.ip and self._ips_counted:
            ip = self._gather_key(walk, tables.ips, event.ip, time, failure, event.actor)
        target: Totals = no_counts
        if handed and (totals := handed.get("target")) is not None:
            target = list(totals)
        elif event.target and self._targets_counted:
            target = self._gather_key(
                walk, tables.targets, event.target, time, failure, event.actor
            )
        return ip, target

    def _gather_key(
        self, walk: _Walk, table: dict[str, KeyState], key: str, time: float, failure: bool,
        actor: str,
    ) -> Pending:  # fmt: skip
        """An event of ``actor`` on ``key`` of ``table`` gathered; what gives its totals."""
        tables = self._tables
        state = table.get(key)  # KeyTables.touch, its call left for a key not seen yet
        if state is None:
            state = tables.touch(table, key, time, tables.new_key)
        elif time > state.last:
            state.last = time
        slot = state.arena_slot
        if slot is None:
            walk.claiming(walk.key_arena, walk.keys)
            state.into_arena()
            slot = state.pool_slot
        walk.keys.add(state)
        stretch = walk.ips if table is tables.ips else walk.targets  # after a claim's run
        return stretch.add(slot, len(walk.drafts), failure, actor)

    def _claim_actor(self, walk: _Walk, actor: str, time: float) -> tuple[ActorState, int]:
        """An actor's state made hot (made first if new: KeyTables.touch), and its slot."""
        tables = self._tables
        state = tables.touch(tables.actors, actor, time, tables.new_actor)
        slot = state.arena_slot
        if slot is None:
            walk.claiming(cast(CounterArena, walk.actor_arena), walk.actors.actors)
            state.into_arena()
            slot = state.pool_slot
        return state, slot

    def _describe_late(self, event: Event, time: float) -> Observation:
        """Features of a late event from the current state of its keys, changing nothing."""
        tables = self._tables
        ip = tables.ips.get(event.ip) if event.ip else None
        target = tables.targets.get(event.target) if event.target else None
        actor = tables.actors.get(event.actor)
        return self._parts.describe_late(event, time, actor, ip, target)

    def _key_counts(
        self, event: Event, time: float, ids: list[int], failure: bool, carried: Carried
    ) -> tuple[Totals, Totals]:
        """The event counted on its IP and target (unless an upstream stage ``carried``
        their totals); their totals, or the steps that give them."""
        parts, tables = self._parts, self._tables
        ip = carried.get("ip") if carried else None
        ip_counts: Totals = parts.no_counts if ip is None else list(ip)
        if ip is None and event.ip and self._ips_counted:
            increment = _IP_EVENT + _IP_FAILURE if failure else _IP_EVENT
            state = tables.touch(tables.ips, event.ip, time, tables.new_key)
            ip_counts = count_key(state, event.actor, time, ids, increment, _IP_ACTOR)
        target = carried.get("target") if carried else None
        target_counts: Totals = parts.no_counts if target is None else list(target)
        if target is None and event.target and self._targets_counted:
            state = tables.touch(tables.targets, event.target, time, tables.new_key)
            target_counts = count_key(state, event.actor, time, ids, 0, _TARGET_ACTOR)
        return ip_counts, target_counts

    def _observe_actor(
        self, event: Event, time: float, ids: list[int], increment: int
    ) -> tuple[ActorState, Totals, dict[str, str], bool]:
        """Count the event for its actor; the state, packed totals, new values, learning."""
        tables = self._tables
        state = tables.touch(tables.actors, event.actor, time, tables.new_actor)
        if time < state.first:
            state.first = time
        learning = time - state.first < self._learning_period
        increments = [increment] * len(ids)
        counter = state
        remembered = state.remembered
        attributes = event.attributes
        new_values: dict[str, str] = {}
        new_units = 0
        full: list[int] = []
        # Values seen again usually were all last seen at the actor's previous
        # event: their units move between the same buckets together, in one call.
        moving_from, moving = 0.0, 0
        for number, (name, on_event, unit, tracked, limits) in enumerate(self._fields):
            value = getattr(event, name) if on_event else attributes.get(name)
            if not value:
                continue
            previous = remembered.observe(number, value, time, limits)
            if previous is None:
                if tracked:
                    new_values[name] = value
                new_units += unit
                if remembered.full(number, limits):
                    full.append(number)
            elif unit and previous < time:
                if previous != moving_from and moving:
                    counter.move_later(moving_from, ids, moving, increments)
                    moving = 0
                moving_from = previous
                moving += unit
        if new_values:
            new_units += _ACTOR_NOVEL
        if new_units:
            increments = [count + new_units for count in increments]
        # The last run of moving values moves in the same step as the event is counted.
        counts = counter.count_later(time, ids, increments, moving_from if moving else None, moving)
        for number in full:  # after add, so a dropped value is taken back exactly
            field = self._fields[number]
            for last in remembered.trim(number, time, field.limits):
                if field.unit:
                    counter.discard(last, field.unit)
        if full:
            counts = counter.totals_later()  # less the values dropped
        return state, counts, new_values, learning


class _Walk:
    """A batch's compiled walk: its drafts so far and the stretches gathered since the
    last run (:meth:`Drafting.compiled`)."""

    def __init__(
        self, actors: CompiledActors, keys: CompiledKeys,
        arenas: tuple[CounterArena | None, CounterArena], columns: BatchColumns,
    ) -> None:  # fmt: skip
        self._compiled_actors, self._compiled_keys = actors, keys
        actor_arena, key_arena = self.actor_arena, self.key_arena = arenas
        self._columns = columns
        # Before any claim: how many counters are hot stays put in a walk.
        if actor_arena is not None:
            actor_arena.widen(len(ACTOR_CHANNELS))
        key_arena.widen(max(len(IP_CHANNELS), len(TARGET_CHANNELS)))
        self.drafts: list[Draft | None] = []
        self._gather()

    def _gather(self) -> None:
        self.actors = Stretch(self._columns)
        self.ips = KeyStretch(_IP_CHANNELS, self._columns)
        self.targets = KeyStretch(_TARGET_CHANNELS, self._columns)
        self.keys: set[object] = set()
        """The key states the stretches count (their slots must stay theirs)."""

    def claiming(self, arena: CounterArena, counted: set[object]) -> None:
        """Make room for a claim in ``arena`` without cooling a counter in ``counted`` (its
        slot, and its values' in the pool, are the stretch's): such a counter at the head of
        the queue goes to its back, as if claimed now; the stretches run first only if
        every hot counter is theirs."""
        hot = arena.hot
        going = len(hot) - arena.limit + 1
        if going <= 0:
            return
        if going > 1:  # not one claim's room (the arena's limit fell): the plain way
            if any(counter in counted for counter in islice(hot, going)):
                self.run()
            return
        for _ in range(len(hot)):
            if hot[0] not in counted:
                return
            hot.rotate(-1)
        self.run()

    def run(self) -> None:
        """Count the stretches gathered; the actors' drafts in their places."""
        self._compiled_keys.run(self.ips, self.key_arena)
        self._compiled_keys.run(self.targets, self.key_arena)
        stretch = self.actors
        if len(stretch):
            drafted = self._compiled_actors.run(stretch, cast(CounterArena, self.actor_arena))
            # Each row's first field is its event's place in the batch (Gathered.positions).
            for position, draft in zip(map(_POSITION, stretch.rows), drafted, strict=True):
                self.drafts[position] = draft
        self._gather()


def count_key(
    state: KeyState, actor: str, time: float, ids: list[int], increment: int, actor_unit: int
) -> list[int] | Pending:
    """Count an event of ``actor`` on an IP or target key; the key's packed totals (or the
    queued step that gives them: :meth:`WindowCounter.count_later`)."""
    actors = state.actors
    previous = actors.observe(actor, time)
    if previous is None:
        counts = state.count_later(time, ids, [increment + actor_unit] * len(ids), None, 0)
    else:
        moved_from = previous if previous < time else None
        counts = state.count_later(time, ids, [increment] * len(ids), moved_from, actor_unit)
    if actors.full:
        trim_set(actors, time, state, actor_unit)
        counts = state.totals_later()  # less the actors dropped
    return counts


def trim_set(seen: FirstSeenSet, now: float, counter: WindowCounter, unit: int) -> None:
    """Trim a full set; its dropped values stop counting as distinct (``unit``) in ``counter``."""
    for last in seen.trim(now):
        if unit:
            counter.discard(last, unit)
