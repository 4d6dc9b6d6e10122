"""The per-key states a feature store keeps, and the snapshot format around them.

Kept apart from the store so the hot path (store.py) and the snapshot format
(here) each stay readable. States use ``__slots__``: there is one per actor,
IP and target, and their size is the store's memory.

A snapshot is one JSON object: ``format``, ``version``, ``feature_schema``,
``windows`` (seconds), then the store's counters and the three key tables
(``actors``, ``ips``, ``targets``: key → state).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from detector.errors import ConfigError
from detector.features.schema import FEATURE_SCHEMA_VERSION
from detector.features.windows import (
    FirstSeenSet,
    HourOfWeekProfile,
    SetLimits,
    WindowCounter,
    WindowSpec,
)

__all__ = [
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_VERSION",
    "ActorState",
    "KeyState",
    "TrackedField",
    "check_snapshot",
    "snapshot_header",
    "write_atomically",
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
        counter = WindowCounter.from_state(spec, state["counter"])
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
    def from_state(cls, spec: WindowSpec, limits: SetLimits, state: Mapping[str, Any]) -> KeyState:
        """Rebuild from :meth:`to_state`."""
        counter = WindowCounter.from_state(spec, state["counter"])
        return cls(float(state["last"]), counter, FirstSeenSet.from_state(limits, state["actors"]))


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
    windows = data.get("windows")
    if not isinstance(windows, list) or [float(seconds) for seconds in windows] != list(
        spec.seconds
    ):
        raise ConfigError(
            f"snapshot was taken with windows of {windows} seconds, the settings say "
            f"{list(spec.seconds)}; delete it or set the old windows again",
            where=where,
        )


def write_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so readers see the old content or the new, never a mix.

    The bytes go to a temporary file in the same directory, are flushed to
    disk, and the file is renamed over ``path``.
    """
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
