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
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detector.errors import ConfigError
from detector.events.model import Event
from detector.features.compiled_actors import CompiledActors, pool_fields
from detector.features.compiled_keys import BatchColumns, CompiledKeys
from detector.features.counter_kernels import compiled_kernels
from detector.features.drafting import Drafting
from detector.features.observation import Observation
from detector.features.profile import hours_of_week
from detector.features.profile_pool import ProfilePool
from detector.features.settings import FeatureSettings
from detector.features.snapshot_format import check_snapshot, snapshot_header
from detector.features.state import ActorState, KeyState, actor_fields
from detector.features.tables import KeyTables
from detector.features.value_pool import PoolField, ValuePool
from detector.features.vector import KINDS, FeatureLayout
from detector.features.vector_parts import VectorParts
from detector.features.vector_table import packed_counts
from detector.features.watermark import Watermark
from detector.features.windows import SetLimits, WindowSpec
from detector.files import write_atomically

__all__ = ["KINDS", "FeatureStore"]


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
        self._spec = WindowSpec(
            [window.total_seconds() for window in settings.windows],
            arena_bytes=settings.arena_bytes,
        )
        self._learning_period = settings.learning_period.total_seconds()
        idle = settings.evict_idle_after.total_seconds()
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
        self._profiles = self._spec.profiles = ProfilePool()
        # And the IPs' and targets' actors (:mod:`.compiled_keys`).
        key_field = PoolField(self._window_limits, unit=True, tracked=False)
        self._key_pool = self._spec.key_values = ValuePool([key_field], empty_is_value=True)
        tables = self._tables = KeyTables(self._spec, self._window_limits, settings.max_keys, idle)
        self._actors = tables.actors
        self._clock = Watermark(settings, tables)
        self._name_kinds()

    def count_also(self, kinds: Collection[str]) -> None:
        """Count ``kinds`` too from now on (their features named in the vectors): a store
        counts only the kinds something reads (:func:`~detector.rules.reads.kinds_read`)."""
        if not frozenset(kinds) <= self.kinds:
            self.kinds |= frozenset(kinds)
            self._name_kinds()

    def _name_kinds(self) -> None:
        """The vectors' layout and the drafting of events for :attr:`kinds` and :attr:`carried`."""
        self._layout = FeatureLayout(self.settings, self.kinds | self.carried)
        self.feature_names = self._layout.names
        self._parts = VectorParts(self.settings, self._spec, self._layout)
        compiled = CompiledActors(self._fields, self._pool, self._profiles, self._parts)
        self._drafting = Drafting(
            self._tables, self._fields, self._parts, compiled, CompiledKeys(self._key_pool),
            self._learning_period,
            self.kinds, self._clock,
        )  # fmt: skip

    @property
    def watermark(self) -> datetime | None:
        """The newest event time observed so far (``None`` before the first event)."""
        newest = self._clock.newest
        return None if newest is None else datetime.fromtimestamp(newest, UTC)

    @property
    def late_events(self) -> int:
        """Events too old to count, since the store began (kept in snapshots)."""
        return self._clock.late_events

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
        batch = BatchColumns(column, self._spec.bucket_rows(column), hours_of_week(column))
        key_arena = self._spec.arena(KeyState)
        if key_arena is not None:  # compiled: an actor arena only where actors are counted
            actor_arena = self._spec.arena(ActorState) if "actor" in self.kinds else None
            arenas = (actor_arena, key_arena)
            drafts = self._drafting.compiled(arenas, events, times, batch, carried)
        else:
            buckets, hours = batch.buckets.tolist(), batch.hours.tolist()
            drafts = self._drafting.plain(zip(events, times, buckets, hours, strict=True), carried)
        observations = self._parts.finish(drafts)
        self._settle()
        return observations

    def _settle(self) -> None:
        for arena in self._spec.arenas.values():
            arena.settle()

    @staticmethod
    def counted(events: int) -> None:
        """``events`` more were observed (a long replay switches to arenas: :mod:`.arena`)."""
        compiled_kernels(events)

    def carried_counts(self, observations: Sequence[Observation], kind: str) -> list[list[int]]:
        """The packed window counts of key kind ``kind`` in each of ``observations``, to
        carry to a later stage (:func:`~.vector.packed_counts`)."""
        vectors = [observation.features for observation in observations]
        return packed_counts(vectors, KINDS.index(kind), len(self._parts.no_counts))

    def evict_idle(self) -> int:
        """Drop keys with no event for ``evict_idle_after`` before the watermark; how many."""
        return self._clock.evict_idle()

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
            "watermark": self._clock.newest,
            "late_events": self._clock.late_events,
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
        clock = self._clock
        clock.newest = None if data["watermark"] is None else float(data["watermark"])
        clock.late_events = int(data["late_events"])
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
