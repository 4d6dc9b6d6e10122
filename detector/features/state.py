"""The per-key states a feature store keeps, and their rows in a snapshot.

Kept apart from the store so the hot path (drafting.py) and the snapshot rows
(here; the snapshot's header in :mod:`.snapshot_format`) each stay readable.
States use ``__slots__``: there is one per actor, IP and target, and their size
is the store's memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from detector.errors import ConfigError
from detector.features.arena import HotSlot
from detector.features.profile import HourOfWeekProfile
from detector.features.remembered import MAX_FIELDS, RememberedValues
from detector.features.schema import ACTOR_CHANNELS, ACTOR_DISTINCT_FIELDS
from detector.features.settings import EVENT_FIELDS, FeatureSettings
from detector.features.snapshot_format import RowFields, row_bytes, row_text
from detector.features.windows import (
    FirstSeenSet,
    SetLimits,
    WindowCounter,
    WindowSpec,
    lane,
)

if TYPE_CHECKING:
    from detector.features.value_pool import ValuePool

__all__ = [
    "ActorState",
    "KeyState",
    "TrackedField",
    "actor_fields",
]


class TrackedField(NamedTuple):
    """A field whose values an actor remembers.

    ``on_event``: an Event attribute (else an ``attributes`` key); ``unit``:
    the packed count of one in the actor channel counting its distinct values
    (0: not counted); ``tracked``: first sightings are reported as new values.
    """

    name: str
    on_event: bool
    unit: int
    tracked: bool
    limits: SetLimits


class Pooled:
    """An actor's values are in the store's value pool (:class:`~.value_pool.ValuePool`),
    or its profile in its profile pool (:class:`~.profile_pool.ProfilePool`), at its arena
    slot's number."""

    __slots__ = ()


POOLED = Pooled()


class ActorState(WindowCounter):
    """One actor: its window counts (it is its own counter: one object less per key),
    first and newest event time, remembered values and profile.

    Cold (:meth:`cool`), the actor keeps its remembered values
    (:meth:`RememberedValues.frozen`) and a sparse profile
    (:meth:`HourOfWeekProfile.packed`) in their compact forms too; reading either
    makes it hot again (:meth:`_hot_totals` thaws all three), as counting it does.
    """

    __slots__ = ("_profile", "_remembered", "first", "last")

    def __init__(self, time: float, spec: WindowSpec) -> None:
        super().__init__(spec)
        self.first = time
        self.last = time
        self._remembered: RememberedValues | tuple[str | bytes, ...] | Pooled = RememberedValues()
        self._profile: HourOfWeekProfile | bytes | Pooled = HourOfWeekProfile()

    @property
    def remembered(self) -> RememberedValues:
        """The actor's remembered values, to read or change (a cold actor becomes hot); hot
        in an arena, a copy of them to read (they change in the store's value pool)."""
        if not isinstance(self._remembered, RememberedValues | Pooled):  # cold
            self._hot_totals()
        remembered = self._remembered
        if isinstance(remembered, Pooled):
            return RememberedValues.thawed(self._pooled())
        return cast(RememberedValues, remembered)

    @property
    def arena_slot(self) -> int | None:
        """The actor's slot if it is hot in its arena, its values in the value pool; else
        None (read for every event: one test, where ``pool_slot`` would make it hot)."""
        totals = self._totals
        if type(totals) is HotSlot and type(self._remembered) is Pooled:
            return totals.slot
        return None

    def _pooled(self) -> tuple[str | bytes, ...]:
        pool = self._spec.values
        assert pool is not None and isinstance(self._totals, HotSlot)
        return pool.frozen(self._totals.slot)

    @property
    def profile(self) -> HourOfWeekProfile:
        """The actor's hour-of-week profile, to read or count in (a cold actor becomes hot);
        hot in an arena, a copy of it to read (it is counted in the store's profile pool)."""
        profile = self._profile
        if isinstance(profile, bytes):  # cold
            self._hot_totals()
            profile = self._profile
        if isinstance(profile, Pooled):
            return self._pooled_profile()
        return cast(HourOfWeekProfile, profile)  # thawed by _hot_totals

    def _pooled_profile(self) -> HourOfWeekProfile:
        profiles = self._spec.profiles
        assert profiles is not None and isinstance(self._totals, HotSlot)
        return profiles.profile(self._totals.slot)

    def _pooled_packed(self) -> bytes | HourOfWeekProfile:
        """The pooled profile's cold form (:meth:`HourOfWeekProfile.packed`), one kernel call
        for a sparse one."""
        profiles = self._spec.profiles
        assert profiles is not None and isinstance(self._totals, HotSlot)
        return profiles.packed(self._totals.slot)

    def _hot_totals(self) -> list[int] | HotSlot:
        totals = super()._hot_totals()
        remembered, profile = self._remembered, self._profile
        pool, profiles = self._spec.values, self._spec.profiles
        if isinstance(totals, HotSlot) and pool is not None and profiles is not None:
            # In an arena's slot, its values and profile in the same slot of the pools.
            if not isinstance(remembered, Pooled):
                if isinstance(remembered, RememberedValues):
                    remembered = remembered.frozen()
                pool.load(totals.slot, remembered)
                self._remembered = POOLED
            if isinstance(profile, bytes):  # a sparse profile's pairs, as it went cold
                profiles.load_packed(totals.slot, profile)
            elif not isinstance(profile, Pooled):
                profiles.load(totals.slot, profile)
            self._profile = POOLED
            return totals
        if isinstance(profile, bytes):
            self._profile = HourOfWeekProfile.from_packed(profile)
        if not isinstance(remembered, RememberedValues | Pooled):
            self._remembered = RememberedValues.thawed(remembered)
        return totals

    def cool(self) -> None:
        if isinstance(self._remembered, Pooled):
            pool = cast("ValuePool", self._spec.values)
            self._remembered = pool.release(cast(HotSlot, self._totals).slot)
        if isinstance(self._profile, Pooled):
            self._profile = self._pooled_packed()
        super().cool()
        remembered, profile = self._remembered, self._profile
        if isinstance(remembered, RememberedValues):
            self._remembered = remembered.frozen()
        if isinstance(profile, HourOfWeekProfile):
            self._profile = profile.packed()

    def baseline(self, tracked: Mapping[str, int], learning_period: float) -> dict[str, float]:
        """The actor's usual behaviour, for explanations.

        ``events_per_hour`` over its history, ``active_hours_of_week`` (of
        168), ``age_days``, ``learning`` (0/1), and ``known.<field>``: how many
        values of each ``tracked`` field (name → number) it is remembered with.
        """
        history = self.last - self.first
        profile = self.profile
        baseline: dict[str, float] = {
            "events_per_hour": profile.total / max(1.0, history / 3600.0),
            "active_hours_of_week": profile.active_hours,
            "age_days": history / 86_400.0,
            "learning": 1 if history < learning_period else 0,
        }
        remembered = self.remembered  # pooled, a copy: made once
        for field, number in tracked.items():
            baseline[f"known.{field}"] = remembered.count(number)
        return baseline

    @classmethod
    def from_snapshot(
        cls, spec: WindowSpec, numbers: dict[str, int], state: Mapping[str, Any]
    ) -> ActorState:
        """Rebuild from a version 1 snapshot's state; sets of fields no longer remembered are
        left out.

        ``numbers``: the name → number of each field the store remembers.
        """
        actor = cls(float(state["first"]), spec)
        actor.load_counts(state["counter"])
        actor.last = float(state["last"])
        actor._remembered = RememberedValues.from_state(numbers, state["sets"])
        actor._profile = HourOfWeekProfile.from_state(state["profile"])
        actor.cool()  # until counted again, as compact as an idle key
        return actor

    def to_row(self) -> list[Any]:
        """The actor in its cold form, as a version 2 row: ``[first, last, counter, values,
        sightings, profile]`` (bytes in base64); the actor unchanged, hot or cold.

        A cold actor's parts are written as they are: a few µs an actor, where
        spelling its state out as version 1 did took some 60.
        """
        return self.row(self.captured())

    def captured(self) -> tuple[Any, ...]:
        """The parts :meth:`row` makes the actor's row of, as they are now: never changed
        later (a cold actor's own, which counting replaces; a hot one's copied), so the row
        may be made while the actor is counted again (a checkpoint written between batches)."""
        # Most actors are cold: their parts taken as they are, in few steps (a checkpoint
        # takes every actor's while the loop waits).
        remembered, profile, totals = self._remembered, self._profile, self._totals
        if isinstance(remembered, RememberedValues):
            remembered = remembered.frozen()
        elif isinstance(remembered, Pooled):
            remembered = self._pooled()
        kept: bytes | list[list[int]]
        if isinstance(profile, Pooled):
            profile = self._pooled_packed()
        if isinstance(profile, bytes):
            kept = profile
        else:
            packed = profile.packed()  # dense: counted in place, cold or hot
            kept = packed if isinstance(packed, bytes) else packed.to_state()
        counter = totals if isinstance(totals, bytes) else self.frozen_counts()
        return self.first, self.last, counter, remembered, kept

    @staticmethod
    def row(captured: tuple[Any, ...]) -> list[Any]:
        """The row of what :meth:`captured` gave."""
        first, last, counter, remembered, profile = captured
        *values, sightings = remembered
        return [
            first,
            last,
            row_text(counter),
            values,
            row_text(sightings),
            profile if isinstance(profile, list) else row_text(profile),
        ]

    @classmethod
    def from_row(cls, spec: WindowSpec, fields: RowFields, row: Any) -> ActorState:
        """The cold actor :meth:`to_row` gave ``row`` for; ``ValueError`` (or ``TypeError``)
        if it is damaged."""
        first, last, counter, values, sightings, profile = row
        actor = cls(float(first), spec)
        actor.last = float(last)
        actor.load_frozen(row_bytes(counter))
        actor._remembered = fields.remembered(values, row_bytes(sightings))
        if isinstance(profile, list):
            actor._profile = HourOfWeekProfile.from_state(profile).packed()
        else:
            actor._profile = HourOfWeekProfile.checked_packed(row_bytes(profile))
        return actor


class KeyState(WindowCounter):
    """One source IP or target: its window counts (its own counter), newest event time
    and the actors seen with it (:meth:`FirstSeenSet.frozen` while cold, as
    :class:`ActorState` keeps its values; hot in an arena, in the store's key pool at its
    slot's number: :meth:`ValuePool.load_set`)."""

    __slots__ = ("_actors", "last")

    def __init__(self, time: float, spec: WindowSpec, actors: FirstSeenSet) -> None:
        super().__init__(spec)
        self.last = time
        self._actors: FirstSeenSet | tuple[SetLimits | str | bytes, ...] | Pooled = actors

    @property
    def actors(self) -> FirstSeenSet:
        """The actors seen with the key, to read or change (a cold key becomes hot); hot in
        an arena, a copy of them to read (they change in the key pool)."""
        if not isinstance(self._actors, FirstSeenSet | Pooled):  # cold
            self._hot_totals()
        actors = self._actors
        if isinstance(actors, Pooled):
            return FirstSeenSet.thawed(self._pooled())
        return cast(FirstSeenSet, actors)

    @property
    def arena_slot(self) -> int | None:
        """The key's slot if it is hot in its arena, its actors in the key pool; else None."""
        totals = self._totals
        if type(totals) is HotSlot and type(self._actors) is Pooled:
            return totals.slot
        return None

    def _pooled(self) -> tuple[SetLimits | str | bytes, ...]:
        pool = self._spec.key_values
        assert pool is not None and isinstance(self._totals, HotSlot)
        values, lasts = pool.set_of(self._totals.slot)
        return (pool.fields[0].limits, *values, lasts)

    def _hot_totals(self) -> list[int] | HotSlot:
        totals = super()._hot_totals()
        actors = self._actors
        pool = self._spec.key_values
        if isinstance(totals, HotSlot) and pool is not None:
            if not isinstance(actors, Pooled):
                frozen = actors.frozen() if isinstance(actors, FirstSeenSet) else actors
                pool.load_set(totals.slot, cast("list[str]", frozen[1:-1]), cast(bytes, frozen[-1]))
                self._actors = POOLED
        elif not isinstance(actors, FirstSeenSet | Pooled):
            self._actors = FirstSeenSet.thawed(actors)
        return totals

    def cool(self) -> None:
        if isinstance(self._actors, Pooled):
            pool = cast("ValuePool", self._spec.key_values)
            values, lasts = pool.release_set(cast(HotSlot, self._totals).slot)
            self._actors = (pool.fields[0].limits, *values, lasts)
        super().cool()
        actors = self._actors
        if isinstance(actors, FirstSeenSet):
            self._actors = actors.frozen()

    def to_row(self) -> list[Any]:
        """The key in its cold form, as a version 2 row: ``[last, counter, actors,
        sightings]`` (bytes in base64); the key unchanged (see :meth:`ActorState.to_row`)."""
        return self.row(self.captured())

    def captured(self) -> tuple[Any, ...]:
        """The parts of the key's row as they are now (see :meth:`ActorState.captured`)."""
        actors, totals = self._actors, self._totals
        if isinstance(actors, FirstSeenSet):
            actors = actors.frozen()
        elif isinstance(actors, Pooled):
            actors = self._pooled()
        counter = totals if isinstance(totals, bytes) else self.frozen_counts()
        return self.last, counter, actors

    @staticmethod
    def row(captured: tuple[Any, ...]) -> list[Any]:
        """The row of what :meth:`captured` gave."""
        last, counter, actors = captured
        *values, sightings = actors[1:]
        return [last, row_text(counter), values, row_text(sightings)]

    @classmethod
    def from_row(cls, spec: WindowSpec, limits: SetLimits, row: Any) -> KeyState:
        """The cold key :meth:`to_row` gave ``row`` for; ``ValueError`` (or ``TypeError``)
        if it is damaged."""
        last, counter, actors, sightings = row
        key = cls(float(last), spec, FirstSeenSet(limits))
        key.load_frozen(row_bytes(counter))
        key._actors = FirstSeenSet.checked_frozen(limits, actors, row_bytes(sightings))
        return key

    @classmethod
    def from_snapshot(
        cls, spec: WindowSpec, limits: SetLimits, state: Mapping[str, Any]
    ) -> KeyState:
        """Rebuild from a version 1 snapshot's state."""
        key = cls(float(state["last"]), spec, FirstSeenSet.from_state(limits, state["actors"]))
        key.load_counts(state["counter"])
        key.cool()  # until counted again, as compact as an idle key
        return key


def actor_fields(
    settings: FeatureSettings, tracked_limits: SetLimits, window_limits: SetLimits
) -> tuple[TrackedField, ...]:
    """The fields whose values an actor remembers: tracked ones, then distinct-counted ones."""
    unit_of = {
        field: lane(ACTOR_CHANNELS.index(channel))
        for channel, field in ACTOR_DISTINCT_FIELDS.items()
    }
    names = list(settings.tracked) + [name for name in unit_of if name not in settings.tracked]
    if len(names) > MAX_FIELDS:
        raise ConfigError(
            f"at most {MAX_FIELDS} fields can be remembered, not {len(names)}",
            where="features.tracked",
        )
    return tuple(
        TrackedField(
            name=name,
            on_event=name in EVENT_FIELDS,
            unit=unit_of.get(name, 0),
            tracked=name in settings.tracked,
            limits=tracked_limits if name in settings.tracked else window_limits,
        )
        for name in names
    )
