"""Per-key behavioural state over event-time windows: events in, Observations out.

The store keeps three independent key kinds — actors, source IPs and
targets — each a table of small per-key states (window counters, first-seen
sets, an hour-of-week profile). Nothing here assumes it sees every key: a
partition of the stream gets a store of its own, and a key's numbers depend
only on that key's events. Time is event time; the watermark is the newest
event time seen, and events older than ``watermark`` minus their source's
allowed lateness are late: described, counted, and left out of the state.

Memory is bounded: keys idle for ``evict_idle_after`` and the least recently
active keys beyond ``max_keys`` (per kind) are dropped, and each set holds at
most about ``max_values_per_set`` values. See docs/features.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, cast

import numpy as np
import orjson

from detector.errors import ConfigError
from detector.events.model import Event, Outcome
from detector.features.arena import CounterArena
from detector.features.compiled_actors import CompiledActors, Stretch, pool_fields
from detector.features.counter_kernels import compiled_kernels
from detector.features.observation import Observation
from detector.features.profile import hours_of_week
from detector.features.schema import ACTOR_CHANNELS, CATEGORY_CHANNELS, IP_CHANNELS, TARGET_CHANNELS
from detector.features.settings import FeatureSettings
from detector.features.snapshot_format import check_snapshot, snapshot_header
from detector.features.state import ActorState, actor_fields, count_key
from detector.features.tables import KeyTables
from detector.features.value_pool import ValuePool
from detector.features.vector import KINDS, FeatureLayout, packed_counts
from detector.features.vector_parts import Draft, Totals, VectorParts, event_flags
from detector.features.windows import (
    SetLimits,
    WindowSpec,
    lane,
)
from detector.files import write_atomically

__all__ = ["KINDS", "FeatureStore"]

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


class FeatureStore:
    """Per-actor, per-IP and per-target state; :meth:`observe_batch` per batch of events.

    ``late_events`` counts events too old to count; ``evicted_keys`` counts
    keys dropped for being idle or beyond ``max_keys`` (kept in snapshots);
    ``evictions``: keys this process dropped, by (kind, ``idle`` | ``cap``), for
    the metrics. ``feature_names``: the names every observation carries, in
    vector order (docs/features.md).
    """

    def __init__(
        self,
        settings: FeatureSettings,
        *,
        kinds: Collection[str] = KINDS,
        carried: Collection[str] = (),
    ) -> None:
        self.settings = settings
        # A scale-out stage counts only the key kind its partitions are keyed by
        # (:mod:`detector.scale`): another kind's keys are spread over every partition.
        # ``carried``: kinds an upstream stage counts and hands on (named, not counted).
        self.kinds = frozenset(kinds)
        self.carried = frozenset(carried)
        self.late_events = 0
        self._spec = WindowSpec([window.total_seconds() for window in settings.windows])
        self._lateness = settings.allowed_lateness.total_seconds()
        # Per source, in seconds: the late check stays one dict lookup per event.
        self._source_lateness = {
            source: lateness.total_seconds()
            for source, lateness in settings.source_lateness.items()
        }
        self._learning_period = settings.learning_period.total_seconds()
        idle = settings.evict_idle_after.total_seconds()
        # Idle keys are looked for by a scan every 1/100 of the idle time (at
        # least a minute of event time), not per event.
        self._eviction_interval = max(60.0, idle / 100)
        self._tracked_limits = SetLimits(
            settings.forget_after.total_seconds(), settings.max_values_per_set
        )
        self._window_limits = SetLimits(
            self._spec.seconds[-1], settings.max_values_per_set, remember_first=False
        )
        self._fields = actor_fields(settings, self._tracked_limits, self._window_limits)
        self._field_numbers = {field.name: number for number, field in enumerate(self._fields)}
        # Compiled, the actors hot in the arena keep their values here (:mod:`.compiled_actors`).
        self._pool = self._spec.values = ValuePool(pool_fields(self._fields))
        tables = self._tables = KeyTables(self._spec, self._window_limits, settings.max_keys, idle)
        self._actors, self._ips, self._targets = tables.actors, tables.ips, tables.targets
        self._watermark: float | None = None
        self._name_kinds()

    def count_also(self, kinds: Collection[str]) -> None:
        """Count ``kinds`` too from now on (their features named in the vectors): a store
        counts only the kinds something reads (:func:`~detector.rules.reads.kinds_read`)."""
        if not frozenset(kinds) <= self.kinds:
            self.kinds |= frozenset(kinds)
            self._name_kinds()

    def _name_kinds(self) -> None:
        """The vectors' layout and the counting flags for :attr:`kinds` and :attr:`carried`."""
        self._actors_counted = "actor" in self.kinds
        self._ips_counted = "ip" in self.kinds
        self._targets_counted = "target" in self.kinds
        self._layout = FeatureLayout(self.settings, self.kinds | self.carried)
        self.feature_names = self._layout.names
        self._parts = VectorParts(self.settings, self._spec, self._layout)
        self._compiled = CompiledActors(self._fields, self._pool, self._parts)

    @property
    def watermark(self) -> datetime | None:
        """The newest event time observed so far (``None`` before the first event)."""
        if self._watermark is None:
            return None
        return datetime.fromtimestamp(self._watermark, UTC)

    @property
    def key_counts(self) -> dict[str, int]:
        """How many keys of each kind the store holds (for metrics)."""
        return self._tables.key_counts

    @property
    def evicted_keys(self) -> int:
        return self._tables.evicted_keys

    @property
    def evictions(self) -> Counter[tuple[str, str]]:
        return self._tables.evictions

    def observe(
        self, event: Event, carried: Mapping[str, Sequence[int]] | None = None
    ) -> Observation:
        """Add ``event`` to its keys' state and describe it; late events are only described.

        ``carried``: key kind (``ip``, ``target``) → the packed window counts an
        upstream stage keyed by that kind computed for this event (scale-out,
        :mod:`detector.scale`); those kinds are not counted here.
        """
        (observation,) = self.observe_batch([event], {event.id: carried} if carried else None)
        return observation

    def observe_batch(
        self,
        events: Sequence[Event],
        carried: Mapping[str, Mapping[str, Sequence[int]]] | None = None,
        times: Sequence[float] | None = None,
    ) -> list[Observation]:
        """:meth:`observe` of each event in turn (``carried`` by event id), the counting of
        hot counters queued and run at once for the batch (:mod:`.arena`). ``times``: the
        events' times in seconds, if the caller has them already."""
        if times is None:
            times = [event.time.timestamp() for event in events]
        # The times' buckets and hours of the week worked out for the whole batch at once.
        column = np.array(times, dtype=np.float64)
        buckets, hours = self._spec.bucket_rows(column), hours_of_week(column)
        columns = zip(events, times, buckets, hours, strict=True)
        arena = self._spec.arena(ActorState) if self._actors_counted else None
        if arena is not None:
            drafts = self._walk(arena, columns, carried)
        else:
            draft = self._draft
            drafts = [
                draft(event, time, ids, hour, carried.get(event.id) if carried else None)
                for event, time, ids, hour in columns
            ]
        observations = self._parts.finish(drafts)
        self._settle()
        return observations

    def _settle(self) -> None:
        for arena in self._spec.arenas.values():
            arena.settle()

    def _draft(
        self,
        event: Event,
        time: float,
        ids: list[int],
        hour: int,
        carried: Mapping[str, Sequence[int]] | None,
    ) -> Draft:
        """What observing ``event`` (at ``time``: buckets ``ids``, hour of week ``hour``)
        changes, done; its observation if complete, else what :meth:`VectorParts.finish`
        makes it from once the queued counts have run."""
        parts = self._parts
        if self._late(event, time):
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
            known = {name: self.known_values(event.actor, name) for name in new_values}
        return (
            event, learning, reported, known, actor_counts, ip_counts, target_counts,
            head, total, history, tail,
        )  # fmt: skip

    def _late(self, event: Event, time: float) -> bool:
        """Whether ``event`` (at ``time``) is too late to count (counted); the watermark
        moved on, and idle keys dropped when its scan is due, if it is not."""
        watermark = self._watermark
        if watermark is None or time > watermark:
            self._watermark = time
            interval = self._eviction_interval
            if watermark is not None and time // interval != watermark // interval:
                self.evict_idle()
            return False
        if time < watermark - self._source_lateness.get(event.source, self._lateness):
            self.late_events += 1
            return True
        return False

    def _walk(
        self,
        arena: CounterArena,
        columns: Iterable[tuple[Event, float, list[int], int]],
        carried: Mapping[str, Mapping[str, Sequence[int]]] | None,
    ) -> list[Draft]:
        """:meth:`_draft` of each event the compiled way: what stays per event here, the
        actors' values and counts a stretch at a time (:mod:`.compiled_actors`)."""
        drafts: list[Draft | None] = []
        stretch = Stretch()
        parts, tables = self._parts, self._tables
        arena.widen(len(ACTOR_CHANNELS))  # before any claim: how many are hot stays put
        for event, time, ids, hour in columns:
            if self._late(event, time):  # described from the counts as they are
                stretch = self._run(stretch, drafts, arena)
                drafts.append(self._describe_late(event, time))
                continue
            failure = event.outcome is _FAILURE
            counted = carried.get(event.id) if carried else None
            ip_counts, target_counts = self._key_counts(event, time, ids, failure, counted)
            state = tables.touch(self._actors, event.actor, time, tables.new_actor)
            if not state.in_arena:
                going = islice(arena.hot, max(0, len(arena.hot) - arena.limit + 1))
                if any(id(counter) in stretch.actors for counter in going):
                    stretch = self._run(stretch, drafts, arena)  # their slots are about to go
                state.into_arena()
            if time < state.first:
                state.first = time
            learning = time - state.first < self._learning_period
            history = time - state.first
            head, total = parts.head_then_add(state.profile, history, hour, learning)
            production = parts.production.event_is_production(event)
            rest = (ip_counts, target_counts, head, total, history, failure, production)
            stretch.add(
                len(drafts), event, state.pool_slot, time, ids, learning, failure, production,
                rest, state,
            )  # fmt: skip
            drafts.append(None)  # made by the stretch's run
        self._run(stretch, drafts, arena)
        return cast(list[Draft], drafts)

    def _run(self, stretch: Stretch, drafts: list[Draft | None], arena: CounterArena) -> Stretch:
        """The drafts of ``stretch``'s events in their places; a new stretch."""
        if len(stretch):
            drafted = self._compiled.run(stretch, arena)
            for position, draft in zip(stretch.positions, drafted, strict=True):
                drafts[position] = draft
        return Stretch()

    def _key_counts(
        self,
        event: Event,
        time: float,
        ids: list[int],
        failure: bool,
        carried: Mapping[str, Sequence[int]] | None,
    ) -> tuple[Totals, Totals]:
        """The event counted on its IP and target (unless an upstream stage ``carried``
        their totals); their totals, or the steps that give them."""
        parts, tables = self._parts, self._tables
        ip = carried.get("ip") if carried else None
        ip_counts: Totals = parts.no_counts if ip is None else list(ip)
        if ip is None and event.ip and self._ips_counted:
            increment = _IP_EVENT + _IP_FAILURE if failure else _IP_EVENT
            state = tables.touch(self._ips, event.ip, time, tables.new_key)
            ip_counts = count_key(state, event.actor, time, ids, increment, _IP_ACTOR)
        target = carried.get("target") if carried else None
        target_counts: Totals = parts.no_counts if target is None else list(target)
        if target is None and event.target and self._targets_counted:
            state = tables.touch(self._targets, event.target, time, tables.new_key)
            target_counts = count_key(state, event.actor, time, ids, 0, _TARGET_ACTOR)
        return ip_counts, target_counts

    @staticmethod
    def counted(events: int) -> None:
        """``events`` more were observed (a long replay switches to arenas: :mod:`.arena`)."""
        compiled_kernels(events)

    def carried_counts(self, observations: Sequence[Observation], kind: str) -> list[list[int]]:
        """The packed window counts of key kind ``kind`` in each of ``observations``, to
        carry to a later stage (:func:`~.vector.packed_counts`)."""
        vectors = [observation.features for observation in observations]
        return packed_counts(vectors, KINDS.index(kind), len(self._parts.no_counts))

    def _observe_actor(
        self, event: Event, time: float, ids: list[int], increment: int
    ) -> tuple[ActorState, Totals, dict[str, str], bool]:
        """Count the event for its actor; the state, packed totals, new values, learning."""
        tables = self._tables
        state = tables.touch(self._actors, event.actor, time, tables.new_actor)
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

    def _describe_late(self, event: Event, time: float) -> Observation:
        """Features of a late event from the current state of its keys, changing nothing."""
        ip = self._ips.get(event.ip) if event.ip else None
        target = self._targets.get(event.target) if event.target else None
        return self._parts.describe_late(event, time, self._actors.get(event.actor), ip, target)

    def evict_idle(self) -> int:
        """Drop keys with no event for ``evict_idle_after`` before the watermark; how many."""
        if self._watermark is None:
            return 0
        return self._tables.evict_idle(self._watermark)

    def baseline(self, actor: str) -> Mapping[str, float]:
        """The actor's usual behaviour, for explanations; empty for an unknown actor
        (:meth:`ActorState.baseline`)."""
        state = self._actors.get(actor)
        if state is None:
            return {}
        tracked = {field: self._field_numbers[field] for field in self.settings.tracked}
        return state.baseline(tracked, self._learning_period)

    def known_values(self, actor: str, field: str, limit: int = 10) -> tuple[str, ...]:
        """The values of ``field`` the actor is remembered with, most recently seen first."""
        state = self._actors.get(actor)
        number = self._field_numbers.get(field)
        if state is None or number is None:
            return ()
        return tuple(state.remembered.recent(number, limit))

    def snapshot(self, *, streamed: bool = False) -> dict[str, Any]:
        """The whole state as versioned plain JSON data (see :meth:`restore`); ``streamed``:
        the key tables as sections of a checkpoint (:meth:`KeyTables.snapshot`)."""
        return {
            **snapshot_header(self._spec),
            "watermark": self._watermark,
            "late_events": self.late_events,
            **self._tables.snapshot(self._fields, streamed=streamed),
        }

    @classmethod
    def restore(
        cls,
        settings: FeatureSettings,
        data: Any,
        *,
        where: str = "feature snapshot",
        kinds: Collection[str] = KINDS,
        carried: Collection[str] = (),
    ) -> FeatureStore:
        """A store continuing exactly where :meth:`snapshot` left off.

        Raises :class:`~detector.errors.ConfigError` naming ``where`` if the
        data is not a snapshot of this version, was taken with other windows,
        or is damaged.
        """
        store = cls(settings, kinds=kinds, carried=carried)
        check_snapshot(data, store._spec, where=where)
        try:
            store._load(data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ConfigError(f"damaged snapshot: {error!r}", where=where) from error
        return store

    def _load(self, data: Mapping[str, Any]) -> None:
        self._watermark = None if data["watermark"] is None else float(data["watermark"])
        self.late_events = int(data["late_events"])
        self._tables.load(data, self._fields)

    def save(self, path: Path) -> None:
        """Write :meth:`snapshot` to ``path`` atomically: readers see the old file or the new."""
        write_atomically(path, orjson.dumps(self.snapshot()))

    @classmethod
    def load(cls, path: Path, settings: FeatureSettings) -> FeatureStore:
        """Restore a store saved with :meth:`save`; ``ConfigError`` naming the file if unusable."""
        try:
            data = orjson.loads(path.read_bytes())
        except OSError as error:
            message = f"cannot read feature snapshot: {error.strerror}"
            raise ConfigError(message, where=str(path)) from None
        except orjson.JSONDecodeError as error:
            raise ConfigError(f"feature snapshot is not JSON: {error}", where=str(path)) from None
        return cls.restore(settings, data, where=str(path))
