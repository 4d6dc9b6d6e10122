"""The per-key states a feature store keeps, and the snapshot format around them.

Kept apart from the store so the hot path (store.py) and the snapshot format
(here) each stay readable; the helpers that update a key's state
(:func:`count_key`, :func:`trim_set`) live here with the states. States use
``__slots__``: there is one per actor, IP and target, and their size is the
store's memory.

A snapshot is one JSON object: ``format``, ``version``, ``feature_schema``,
``windows`` (seconds), then the store's counters and the three key tables
(``actors``, ``ips``, ``targets``: key → state).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, cast

from detector.errors import ConfigError
from detector.features.arena import HotSlot, Pending
from detector.features.profile import HourOfWeekProfile
from detector.features.remembered import MAX_FIELDS, RememberedValues
from detector.features.schema import (
    ACTOR_CHANNELS,
    ACTOR_DISTINCT_FIELDS,
    FEATURE_SCHEMA_VERSION,
)
from detector.features.settings import EVENT_FIELDS, FeatureSettings
from detector.features.windows import (
    FirstSeenSet,
    SetLimits,
    WindowCounter,
    WindowSpec,
    lane,
)

__all__ = [
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_VERSION",
    "ActorState",
    "KeyState",
    "TrackedField",
    "actor_fields",
    "check_snapshot",
    "count_key",
    "snapshot_header",
    "trim_set",
]

SNAPSHOT_FORMAT = "ciwatch-features"
SNAPSHOT_VERSION = 1


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
        self._remembered: RememberedValues | tuple[str | bytes, ...] = RememberedValues()
        self._profile: HourOfWeekProfile | bytes = HourOfWeekProfile()

    @property
    def remembered(self) -> RememberedValues:
        """The actor's remembered values, to read or change (a cold actor becomes hot)."""
        remembered = self._remembered
        if not isinstance(remembered, RememberedValues):  # cold
            self._hot_totals()
            return cast(RememberedValues, self._remembered)
        return remembered

    @property
    def profile(self) -> HourOfWeekProfile:
        """The actor's hour-of-week profile, to read or count in (a cold actor becomes hot)."""
        profile = self._profile
        if isinstance(profile, bytes):  # cold
            self._hot_totals()
            return cast(HourOfWeekProfile, self._profile)
        return profile

    def _hot_totals(self) -> list[int] | HotSlot:
        totals = super()._hot_totals()
        remembered, profile = self._remembered, self._profile
        if not isinstance(remembered, RememberedValues):
            self._remembered = RememberedValues.thawed(remembered)
        if isinstance(profile, bytes):
            self._profile = HourOfWeekProfile.from_packed(profile)
        return totals

    def cool(self) -> None:
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
        for field, number in tracked.items():
            baseline[f"known.{field}"] = self.remembered.count(number)
        return baseline

    def to_snapshot(self, fields: tuple[TrackedField, ...]) -> dict[str, Any]:
        """Plain JSON; ``fields``: the store's remembered fields, by field number."""
        names = tuple(field.name for field in fields)
        limits = tuple(field.limits for field in fields)
        # Read as they are: a cold actor stays cold (a checkpoint reads every actor).
        remembered, profile = self._remembered, self._profile
        if not isinstance(remembered, RememberedValues):
            remembered = RememberedValues.thawed(remembered)
        if isinstance(profile, bytes):
            profile = HourOfWeekProfile.from_packed(profile)
        return {
            "first": self.first,
            "last": self.last,
            "counter": self.to_state(),
            "sets": remembered.to_state(names, limits),
            "profile": profile.to_state(),
        }

    @classmethod
    def from_snapshot(
        cls, spec: WindowSpec, numbers: dict[str, int], state: Mapping[str, Any]
    ) -> ActorState:
        """Rebuild from :meth:`to_snapshot`; sets of fields no longer remembered are left out.

        ``numbers``: the name → number of each field the store remembers.
        """
        actor = cls(float(state["first"]), spec)
        actor.load_counts(state["counter"])
        actor.last = float(state["last"])
        actor._remembered = RememberedValues.from_state(numbers, state["sets"])
        actor._profile = HourOfWeekProfile.from_state(state["profile"])
        actor.cool()  # until counted again, as compact as an idle key
        return actor


class KeyState(WindowCounter):
    """One source IP or target: its window counts (its own counter), newest event time
    and the actors seen with it (:meth:`FirstSeenSet.frozen` while cold, as
    :class:`ActorState` keeps its values)."""

    __slots__ = ("_actors", "last")

    def __init__(self, time: float, spec: WindowSpec, actors: FirstSeenSet) -> None:
        super().__init__(spec)
        self.last = time
        self._actors: FirstSeenSet | tuple[SetLimits | str | bytes, ...] = actors

    @property
    def actors(self) -> FirstSeenSet:
        """The actors seen with the key, to read or change (a cold key becomes hot)."""
        actors = self._actors
        if not isinstance(actors, FirstSeenSet):  # cold
            self._hot_totals()
            return cast(FirstSeenSet, self._actors)
        return actors

    def _hot_totals(self) -> list[int] | HotSlot:
        totals = super()._hot_totals()
        actors = self._actors
        if not isinstance(actors, FirstSeenSet):
            self._actors = FirstSeenSet.thawed(actors)
        return totals

    def cool(self) -> None:
        super().cool()
        actors = self._actors
        if isinstance(actors, FirstSeenSet):
            self._actors = actors.frozen()

    def to_snapshot(self) -> dict[str, Any]:
        actors = self._actors  # read as it is: a cold key stays cold
        if not isinstance(actors, FirstSeenSet):
            actors = FirstSeenSet.thawed(actors)
        return {
            "last": self.last,
            "counter": self.to_state(),
            "actors": actors.to_state(),
        }

    @classmethod
    def from_snapshot(
        cls, spec: WindowSpec, limits: SetLimits, state: Mapping[str, Any]
    ) -> KeyState:
        """Rebuild from :meth:`to_snapshot`."""
        key = cls(float(state["last"]), spec, FirstSeenSet.from_state(limits, state["actors"]))
        key.load_counts(state["counter"])
        key.cool()  # until counted again, as compact as an idle key
        return key


def snapshot_header(spec: WindowSpec) -> dict[str, Any]:
    """What identifies a snapshot and the windows its counters were built for."""
    return {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "feature_schema": FEATURE_SCHEMA_VERSION,
        "windows": list(spec.seconds),
    }


def check_snapshot(data: Any, spec: WindowSpec, *, where: str) -> None:
    """Raise :class:`ConfigError` unless ``data`` is a snapshot this store can continue from."""
    if not isinstance(data, Mapping) or data.get("format") != SNAPSHOT_FORMAT:
        raise ConfigError("not a ciwatch feature snapshot", where=where)
    if data.get("version") != SNAPSHOT_VERSION:
        raise ConfigError(
            f"snapshot version {data.get('version')!r} is not {SNAPSHOT_VERSION}; "
            "delete it to start with empty state",
            where=where,
        )
    schema = data.get("feature_schema")
    if schema != FEATURE_SCHEMA_VERSION:
        # Channels mean other things (or are missing) in another schema: counts
        # restored from it would be wrong, not just old.
        raise ConfigError(
            f"snapshot has feature schema {schema!r}, this version uses "
            f"{FEATURE_SCHEMA_VERSION!r}; delete it to start with empty state",
            where=where,
        )
    windows = data.get("windows")
    if not isinstance(windows, list) or [float(seconds) for seconds in windows] != list(
        spec.seconds
    ):
        raise ConfigError(
            f"snapshot was taken with windows of {windows} seconds, the settings say "
            f"{list(spec.seconds)}; delete it or set the old windows again",
            where=where,
        )


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
