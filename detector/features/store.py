"""Per-key behavioural state over event-time windows: events in, Observations out.

The store keeps three independent key kinds — actors, source IPs and
targets — each a table of small per-key states (window counters, first-seen
sets, an hour-of-week profile). Nothing here assumes it sees every key: a
partition of the stream gets a store of its own and the numbers of a key
depend only on that key's events. Time is event time; the watermark is the
newest event time seen, and events older than ``watermark - allowed_lateness``
are late: reported, counted, and left out of the windows.

Memory is bounded: keys idle for ``evict_idle_after`` and the least recently
active keys beyond ``max_keys`` (per kind) are dropped, and each set holds at
most ``max_values_per_set`` values.

>>> store = FeatureStore(FeatureSettings())
>>> observation = store.observe(event)  # doctest: +SKIP
>>> observation.features["actor.events.5m"]  # doctest: +SKIP
1
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from detector.errors import ConfigError
from detector.events.model import Event, Outcome
from detector.features.observation import Observation
from detector.features.schema import (
    ACTOR_CHANNELS,
    ACTOR_DISTINCT_FIELDS,
    FEATURE_SCHEMA_VERSION,
    IP_CHANNELS,
    TARGET_CHANNELS,
    feature_names,
)
from detector.features.settings import EVENT_FIELDS, FeatureSettings
from detector.features.state import (
    SNAPSHOT_FORMAT,
    SNAPSHOT_VERSION,
    ActorState,
    KeyState,
    TrackedField,
)
from detector.features.windows import FirstSeenSet, SetLimits, WindowCounter, WindowSpec

__all__ = ["FeatureStore"]

_EVENTS, _FAILURES, _PRIVILEGED = 0, 1, 2
_KEY_DISTINCT_ACTORS = {"ip": IP_CHANNELS.index("distinct_actors"), "target": 0}
_EVICTION_INTERVAL = 60.0  # check for idle keys once per minute of event time
_SECONDS_PER_DAY = 86_400.0

_State = TypeVar("_State", ActorState, KeyState)


class FeatureStore:
    """Per-actor, per-IP and per-target state; one :meth:`observe` per event.

    ``late_events`` counts events too old to count; ``evicted_keys`` counts
    keys dropped for being idle or beyond ``max_keys``.
    """

    def __init__(self, settings: FeatureSettings) -> None:
        self.settings = settings
        self.feature_names = feature_names(settings)
        self.late_events = 0
        self.evicted_keys = 0
        self._spec = WindowSpec([window.total_seconds() for window in settings.windows])
        self._lateness = settings.allowed_lateness.total_seconds()
        self._learning_period = settings.learning_period.total_seconds()
        self._idle = settings.evict_idle_after.total_seconds()
        self._tracked_limits = SetLimits(
            settings.forget_after.total_seconds(), settings.max_values_per_set
        )
        self._window_limits = SetLimits(self._spec.seconds[-1], settings.max_values_per_set)
        self._fields = _actor_fields(settings, self._tracked_limits, self._window_limits)
        # Ordered by last activity (move_to_end), so idle keys sit at the front.
        self._actors: OrderedDict[str, ActorState] = OrderedDict()
        self._ips: OrderedDict[str, KeyState] = OrderedDict()
        self._targets: OrderedDict[str, KeyState] = OrderedDict()
        self._watermark: float | None = None
        windows = len(self._spec.widths)
        self._zero_ip = [0] * (len(IP_CHANNELS) * windows)
        self._zero_target = [0] * (len(TARGET_CHANNELS) * windows)
        self._zero_actor = [0] * (len(ACTOR_CHANNELS) * windows)

    @property
    def watermark(self) -> datetime | None:
        """The newest event time observed so far (``None`` before the first event)."""
        if self._watermark is None:
            return None
        return datetime.fromtimestamp(self._watermark, UTC)

    @property
    def key_counts(self) -> dict[str, int]:
        """How many keys of each kind the store holds (for metrics)."""
        return {"actor": len(self._actors), "ip": len(self._ips), "target": len(self._targets)}

    def observe(self, event: Event) -> Observation:
        """Add ``event`` to its keys' state and describe it; late events are only described."""
        time = event.time.timestamp()
        watermark = self._watermark
        if watermark is None or time > watermark:
            self._watermark = time
            if watermark is None or time // _EVICTION_INTERVAL != watermark // _EVICTION_INTERVAL:
                self.evict_idle()
        elif time < watermark - self._lateness:
            self.late_events += 1
            return self._describe_late(event, time)
        failure = event.outcome is Outcome.FAILURE
        values, new_values, learning = self._observe_actor(event, time, failure)
        values += self._observe_ip(event, time, failure) if event.ip else self._zero_ip
        values += self._observe_target(event, time) if event.target else self._zero_target
        return self._observation(event, values, new_values, learning)

    def _observe_actor(
        self, event: Event, time: float, failure: bool
    ) -> tuple[list[float], dict[str, str], bool]:
        state = self._touch(self._actors, event.actor, time, self._new_actor)
        state.first = min(state.first, time)
        learning = time - state.first < self._learning_period
        channels = [_EVENTS]
        if failure:
            channels.append(_FAILURES)
        if event.privileged:
            channels.append(_PRIVILEGED)
        counter = state.counter
        new_values: dict[str, str] = {}
        attributes = event.attributes
        for field in self._fields:
            value = getattr(event, field.name) if field.on_event else attributes.get(field.name)
            if not value:
                continue
            seen = state.sets.get(field.name)
            if seen is None:
                seen = state.sets[field.name] = FirstSeenSet(field.limits)
            previous = seen.observe(value, time)
            if previous is None:
                if field.tracked and not learning:
                    new_values[field.name] = value
            elif field.channel < 0 or previous >= time:
                continue  # not counted, or seen later already: its sighting stays put
            else:
                counter.discard(previous, field.channel)  # it moves to this event's bucket
            if field.channel >= 0:
                channels.append(field.channel)
        counter.add(time, channels)
        values: list[float] = [count for counts in counter.counts(state.last) for count in counts]
        values += self._actor_scalars(state, time, learning)
        state.profile.add(time)
        return values, new_values, learning

    def _actor_scalars(self, state: ActorState, time: float, learning: bool) -> list[float]:
        profile = state.profile
        return [
            profile.share(time),
            profile.active_hours(),
            max(0.0, time - state.first) / _SECONDS_PER_DAY,
            1 if learning else 0,
        ]

    def _observe_ip(self, event: Event, time: float, failure: bool) -> list[int]:
        assert event.ip is not None
        state = self._touch(self._ips, event.ip, time, self._new_ip)
        channels = [_EVENTS, _FAILURES] if failure else [_EVENTS]
        return self._count_actor(state, event.actor, time, channels, _KEY_DISTINCT_ACTORS["ip"])

    def _observe_target(self, event: Event, time: float) -> list[int]:
        assert event.target is not None
        state = self._touch(self._targets, event.target, time, self._new_target)
        return self._count_actor(state, event.actor, time, [], _KEY_DISTINCT_ACTORS["target"])

    @staticmethod
    def _count_actor(
        state: KeyState, actor: str, time: float, channels: list[int], distinct: int
    ) -> list[int]:
        previous = state.actors.observe(actor, time)
        if previous is None or previous < time:
            if previous is not None:
                state.counter.discard(previous, distinct)
            channels.append(distinct)
        state.counter.add(time, channels)
        return [count for counts in state.counter.counts(state.last) for count in counts]

    def _touch(
        self,
        table: OrderedDict[str, _State],
        key: str,
        time: float,
        new: Callable[[float], _State],
    ) -> _State:
        """The key's state, created if needed, moved to the most recently active end."""
        state = table.get(key)
        if state is None:
            if len(table) >= self.settings.max_keys:
                table.popitem(last=False)
                self.evicted_keys += 1
            state = table[key] = new(time)
            return state
        if time > state.last:
            state.last = time
        table.move_to_end(key)
        return state

    def _new_actor(self, time: float) -> ActorState:
        return ActorState(time, WindowCounter(self._spec, len(ACTOR_CHANNELS)))

    def _new_ip(self, time: float) -> KeyState:
        counter = WindowCounter(self._spec, len(IP_CHANNELS))
        return KeyState(time, counter, FirstSeenSet(self._window_limits))

    def _new_target(self, time: float) -> KeyState:
        counter = WindowCounter(self._spec, len(TARGET_CHANNELS))
        return KeyState(time, counter, FirstSeenSet(self._window_limits))

    def _describe_late(self, event: Event, time: float) -> Observation:
        """Numbers for a late event from the current state, changing nothing."""
        actor = self._actors.get(event.actor)
        if actor is None:
            values: list[float] = [*self._zero_actor, 0.0, 0, 0.0, 1]
            learning = True
        else:
            counts = actor.counter.counts(actor.last)
            values = [count for window in counts for count in window]
            learning = time - actor.first < self._learning_period
            values += self._actor_scalars(actor, time, learning)
        for table, key, zero in (
            (self._ips, event.ip, self._zero_ip),
            (self._targets, event.target, self._zero_target),
        ):
            state = table.get(key) if key else None
            if state is None:
                values += zero
            else:
                values += [count for window in state.counter.counts(state.last) for count in window]
        return self._observation(event, values, {}, learning, late=True)

    def _observation(
        self,
        event: Event,
        values: list[float],
        new_values: dict[str, str],
        learning: bool,
        late: bool = False,
    ) -> Observation:
        values += [1 if field in new_values else 0 for field in self.settings.tracked]
        values += [1 if event.outcome is Outcome.FAILURE else 0, 1 if event.privileged else 0]
        features = dict(zip(self.feature_names, values, strict=True))
        return Observation(event, late, learning, new_values, features)

    def evict_idle(self) -> int:
        """Drop keys with no event for ``evict_idle_after`` before the watermark; how many."""
        if self._watermark is None:
            return 0
        horizon = self._watermark - self._idle
        evicted = (
            _evict_before(self._actors, horizon)
            + _evict_before(self._ips, horizon)
            + _evict_before(self._targets, horizon)
        )
        self.evicted_keys += evicted
        return evicted

    def baseline(self, actor: str) -> Mapping[str, float]:
        """The actor's usual behaviour, for explanations; empty for an unknown actor.

        ``events_per_hour`` over its whole history, ``active_hours_of_week``
        (of 168), ``usual_hour_share`` (the share of its busiest hour of week),
        ``age_days``, and ``known.<field>``: how many values of each tracked
        field it is remembered with.
        """
        state = self._actors.get(actor)
        if state is None:
            return {}
        hours = max(1.0, (state.last - state.first) / 3600.0)
        profile = state.profile
        baseline: dict[str, float] = {
            "events_per_hour": profile.total / hours,
            "active_hours_of_week": profile.active_hours(),
            "age_days": (state.last - state.first) / _SECONDS_PER_DAY,
            "learning": 1 if state.last - state.first < self._learning_period else 0,
        }
        for field in self.settings.tracked:
            seen = state.sets.get(field)
            baseline[f"known.{field}"] = len(seen) if seen is not None else 0
        return baseline

    def known_values(self, actor: str, field: str, limit: int = 10) -> tuple[str, ...]:
        """The values of ``field`` the actor is remembered with, most recently seen first."""
        state = self._actors.get(actor)
        seen = state.sets.get(field) if state is not None else None
        return tuple(seen.recent(limit)) if seen is not None else ()

    def snapshot(self) -> dict[str, Any]:
        """The whole state as versioned plain JSON data (restore with :meth:`restore`)."""
        return {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "feature_schema": FEATURE_SCHEMA_VERSION,
            "windows": list(self._spec.seconds),
            "watermark": self._watermark,
            "late_events": self.late_events,
            "evicted_keys": self.evicted_keys,
            "actors": {name: state.to_state() for name, state in self._actors.items()},
            "ips": {ip: state.to_state() for ip, state in self._ips.items()},
            "targets": {target: state.to_state() for target, state in self._targets.items()},
        }

    @classmethod
    def restore(
        cls, settings: FeatureSettings, data: Mapping[str, Any], *, where: str = "features snapshot"
    ) -> FeatureStore:
        """A store continuing exactly where :meth:`snapshot` left off.

        Raises :class:`ConfigError` naming ``where`` if the data is not a
        snapshot of this version or was taken with other windows.
        """
        store = cls(settings)
        if not isinstance(data, Mapping) or data.get("format") != SNAPSHOT_FORMAT:
            raise ConfigError("not a ciwatch feature snapshot", where=where)
        if data.get("version") != SNAPSHOT_VERSION:
            raise ConfigError(
                f"snapshot version {data.get('version')!r} is not {SNAPSHOT_VERSION}; "
                "delete it to start with empty state",
                where=where,
            )
        if [float(seconds) for seconds in data.get("windows", [])] != list(store._spec.seconds):
            raise ConfigError(
                f"snapshot was taken with windows {data.get('windows')} (seconds), the settings "
                f"say {', '.join(settings.window_labels)}; delete it or restore the old windows",
                where=where,
            )
        try:
            store._load_state(data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ConfigError(f"damaged snapshot: {error!r}", where=where) from error
        return store

    def _load_state(self, data: Mapping[str, Any]) -> None:
        self._watermark = None if data["watermark"] is None else float(data["watermark"])
        self.late_events = int(data["late_events"])
        self.evicted_keys = int(data["evicted_keys"])
        tracked = {field.name: field.limits for field in self._fields}
        for name, state in data["actors"].items():
            self._actors[name] = ActorState.from_state(self._spec, tracked, state)
        for ip, state in data["ips"].items():
            self._ips[ip] = KeyState.from_state(
                self._spec, len(IP_CHANNELS), self._window_limits, state
            )
        for target, state in data["targets"].items():
            self._targets[target] = KeyState.from_state(
                self._spec, len(TARGET_CHANNELS), self._window_limits, state
            )

    def save(self, path: Path) -> None:
        """Write :meth:`snapshot` to ``path`` atomically: a reader sees the old file or the new."""
        payload = orjson.dumps(self.snapshot())
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with temporary.open("wb") as file:
                file.write(payload)
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise

    @classmethod
    def load(cls, path: Path, settings: FeatureSettings) -> FeatureStore:
        """Restore a store saved with :meth:`save`; :class:`ConfigError` naming the file if not."""
        try:
            data = orjson.loads(path.read_bytes())
        except OSError as error:
            raise ConfigError(
                f"cannot read feature snapshot: {error.strerror}", where=str(path)
            ) from None
        except orjson.JSONDecodeError as error:
            raise ConfigError(f"feature snapshot is not JSON: {error}", where=str(path)) from None
        return cls.restore(settings, data, where=str(path))


def _evict_before(table: OrderedDict[str, _State], horizon: float) -> int:
    """Drop the keys at the idle end of ``table`` whose last event is before ``horizon``."""
    evicted = 0
    while table:
        oldest = next(iter(table.values()))
        if oldest.last >= horizon:
            break
        table.popitem(last=False)
        evicted += 1
    return evicted


def _actor_fields(
    settings: FeatureSettings, tracked_limits: SetLimits, window_limits: SetLimits
) -> tuple[TrackedField, ...]:
    """The fields whose values an actor remembers: tracked ones, then distinct-counted ones."""
    channel_of = {
        field: ACTOR_CHANNELS.index(channel) for channel, field in ACTOR_DISTINCT_FIELDS.items()
    }
    names = list(settings.tracked) + [f for f in channel_of if f not in settings.tracked]
    return tuple(
        TrackedField(
            name=name,
            on_event=name in EVENT_FIELDS,
            channel=channel_of.get(name, -1),
            tracked=name in settings.tracked,
            limits=tracked_limits if name in settings.tracked else window_limits,
        )
        for name in names
    )
