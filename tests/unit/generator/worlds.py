"""Generated worlds, normalized, shared by the generator tests (each built once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import orjson

from detector.events.model import Event
from detector.generator import World, generate, labels
from detector.sources.record import Position, RawRecord
from tests.normalizing import bundled_normalizer

__all__ = ["Normalized", "normalize", "normalized_world", "span"]


@dataclass(frozen=True)
class Normalized:
    """A world, its labels, and its events in time order (also by id)."""

    world: World
    labels: dict[str, Any]
    events: list[Event]
    by_id: dict[str, Event]

    def attack(self, sid: str) -> dict[str, Any]:
        return next(a for a in self.labels["attacks"] if a["id"] == sid)

    def of(self, sid: str) -> list[Event]:
        """The events of attack ``sid``, in time order."""
        return [self.by_id[event_id] for event_id in self.attack(sid)["events"]]

    def before(self, actor: str, moment: datetime) -> list[Event]:
        """``actor``'s events before ``moment``."""
        return [e for e in self.events if e.actor == actor and e.time < moment]


def normalize(world: World) -> list[Event]:
    """Every record of ``world`` as the bundled normalizer makes it (none may be dead)."""
    records = [
        RawRecord(orjson.dumps(record.doc), Position("generated", index + 1))
        for index, record in enumerate(world.records)
    ]
    result = bundled_normalizer().normalize_batch(records)
    assert result.dead_letters == []
    return result.events


@cache
def normalized_world(seed: int, days: int, people: int = 20) -> Normalized:
    world = generate(seed, days, people)
    events = normalize(world)
    return Normalized(world, labels(world), events, {e.id: e for e in events})


def span(events: list[Event]) -> timedelta:
    return max(e.time for e in events) - min(e.time for e in events)
