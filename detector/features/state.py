"""The per-key states a :class:`~detector.features.store.FeatureStore` keeps, and their JSON forms.

Kept apart from the store so the hot path (store.py) and the snapshot format
(here) each stay readable. States use ``__slots__``: there is one per actor,
IP and target, and their size is the store's memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from detector.features.schema import ACTOR_CHANNELS
from detector.features.windows import (
    FirstSeenSet,
    HourOfWeekProfile,
    SetLimits,
    WindowCounter,
    WindowSpec,
)

__all__ = ["SNAPSHOT_FORMAT", "SNAPSHOT_VERSION", "ActorState", "KeyState", "TrackedField"]

SNAPSHOT_FORMAT = "ciwatch-features"
SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class TrackedField:
    """A field whose values an actor remembers.

    ``on_event``: an Event attribute (else an ``attributes`` key); ``channel``:
    the actor counter channel counting its distinct values (-1: none);
    ``tracked``: first sightings are reported as new values.
    """

    name: str
    on_event: bool
    channel: int
    tracked: bool
    limits: SetLimits


class ActorState:
    """One actor: its first and newest event time, counters, remembered values and profile."""

    __slots__ = ("counter", "first", "last", "profile", "sets")

    def __init__(self, time: float, counter: WindowCounter) -> None:
        self.first = time
        self.last = time
        self.counter = counter
        self.sets: dict[str, FirstSeenSet] = {}
        self.profile = HourOfWeekProfile()

    def to_state(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "last": self.last,
            "counter": self.counter.to_state(),
            "sets": {field: seen.to_state() for field, seen in self.sets.items()},
            "profile": self.profile.to_state(),
        }

    @classmethod
    def from_state(
        cls, spec: WindowSpec, limits: Mapping[str, SetLimits], state: Mapping[str, Any]
    ) -> ActorState:
        """Rebuild from :meth:`to_state`; sets of fields no longer remembered are left out."""
        counter = WindowCounter.from_state(spec, len(ACTOR_CHANNELS), state["counter"])
        actor = cls(float(state["first"]), counter)
        actor.last = float(state["last"])
        for field, rows in state["sets"].items():
            if field in limits:
                actor.sets[field] = FirstSeenSet.from_state(limits[field], rows)
        actor.profile = HourOfWeekProfile.from_state(state["profile"])
        return actor


class KeyState:
    """One source IP or target: its newest event time, counters and the actors seen with it."""

    __slots__ = ("actors", "counter", "last")

    def __init__(self, time: float, counter: WindowCounter, actors: FirstSeenSet) -> None:
        self.last = time
        self.counter = counter
        self.actors = actors

    def to_state(self) -> dict[str, Any]:
        return {
            "last": self.last,
            "counter": self.counter.to_state(),
            "actors": self.actors.to_state(),
        }

    @classmethod
    def from_state(
        cls, spec: WindowSpec, channels: int, limits: SetLimits, state: Mapping[str, Any]
    ) -> KeyState:
        """Rebuild from :meth:`to_state`."""
        counter = WindowCounter.from_state(spec, channels, state["counter"])
        return cls(float(state["last"]), counter, FirstSeenSet.from_state(limits, state["actors"]))
