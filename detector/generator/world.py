"""The generator's state: people, places, records, labeled scenarios.

Everything random comes from one ``random.Random(seed)`` held by :class:`World`;
nothing reads the wall clock, so a seed always gives the same world.
"""

from __future__ import annotations

import random
import uuid
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from detector.events.model import isoformat
from detector.generator.shape import DEFAULT_SHAPE, Shape

__all__ = [
    "ATTACKS_FROM",
    "DOMAIN",
    "START",
    "Person",
    "Place",
    "Record",
    "Scenario",
    "World",
    "isoformat",
]

START = datetime(2026, 1, 5, tzinfo=UTC)
ATTACKS_FROM = 2
"""The first day (counted from 0 at :data:`START`) attacks fall on by default: two clean days."""
DOMAIN = "acme.example"


@dataclass(frozen=True, slots=True)
class Place:
    """Where someone is: country as GitHub (code) and Okta (name) write it, clock offset."""

    code: str
    country: str
    city: str
    offset: float  # hours from UTC in January
    isp: str


@dataclass(frozen=True, slots=True)
class Person:
    """One employee: ``login`` is the GitHub handle, ``email`` the Okta/Kubernetes/AWS name."""

    login: str
    name: str
    home: Place
    ip: str
    admin: bool
    k8s: bool
    aws: bool
    repos: tuple[str, ...]

    @property
    def email(self) -> str:
        return f"{self.name}@{DOMAIN}"

    @property
    def okta_id(self) -> str:
        return f"00u{zlib.crc32(self.email.encode()):010d}"

    @property
    def display_name(self) -> str:
        return self.name.replace(".", " ").title()


@dataclass(frozen=True, slots=True)
class Record:
    """One vendor record, its event time and the id the normalizer will give it."""

    time: datetime
    source: str
    doc: dict[str, Any]
    event_id: str


@dataclass(slots=True)
class Scenario:
    """A labeled group of records: an injected attack or a benign look-alike.

    ``actors`` (the main one first) and ``keys`` (addresses) are the values an
    alert about this scenario may carry as its actor or group key. An attack's
    ``kind`` says what should catch it: ``rule`` (one rule of the default pack)
    or ``behavioural`` (no rule; only a model of normal behaviour).
    """

    id: str
    label: str
    description: str
    actors: tuple[str, ...]
    keys: tuple[str, ...] = ()
    records: list[Record] = field(default_factory=list)
    kind: str = ""

    @property
    def start(self) -> datetime:
        return min(record.time for record in self.records)

    @property
    def end(self) -> datetime:
        return max(record.time for record in self.records)

    def to_dict(self) -> dict[str, Any]:
        records = sorted(self.records, key=lambda record: record.time)
        times = [r.time for r in records]
        found: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "description": self.description,
            "actor": self.actors[0],
            "actors": list(self.actors),
            "keys": list(self.keys),
            "start": isoformat(min(times)),
            "end": isoformat(max(times)),
            "sources": sorted({r.source for r in records}),
            "events": [r.event_id for r in records],
        }
        if self.kind:
            found["kind"] = self.kind
        return found


class World:
    """The generator's state: one seeded random source, the records, the scenarios.

    Records added inside :meth:`scenario` blocks are labeled with that scenario.
    Attacks fall on day ``attacks_from`` (counted from 0) or later; the days before are clean.
    """

    def __init__(
        self,
        seed: int,
        days: int,
        people: int = 20,
        shape: Shape = DEFAULT_SHAPE,
        *,
        attacks_from: int = ATTACKS_FROM,
    ) -> None:
        self.seed, self.days, self.people, self.shape = seed, days, people, shape
        self.attacks_from = attacks_from
        self.end = START + timedelta(days=days)
        self.rng = random.Random(seed)
        self.records: list[Record] = []
        self.scenarios: dict[str, Scenario] = {}
        self._open: list[Scenario] = []
        self._cast: list[str] = []
        self._next_host = {"203.0.113": 20, "192.0.2": 128}

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def new_ip(self, network: str = "203.0.113") -> str:
        """An address not handed out before (TEST-NET-3 by default; hosts 21-254)."""
        self._next_host[network] += 1
        if self._next_host[network] > 254:
            raise ValueError(f"out of addresses in {network}.0/24")
        return f"{network}.{self._next_host[network]}"

    def between(self, begin: datetime, end: datetime) -> datetime:
        return begin + (end - begin) * self.rng.random()

    def cast(self, pool: Sequence[Person], *, avoid: Sequence[str] = ()) -> Person:
        """Someone from ``pool`` not cast in an attack yet (or anyone, once all have been)."""
        allowed = [p for p in pool if p.login not in avoid] or list(pool)
        fresh = [p for p in allowed if p.login not in self._cast] or allowed
        chosen = self.rng.choice(fresh)
        self._cast.append(chosen.login)
        return chosen

    def add(self, time: datetime, source: str, doc: dict[str, Any], vendor_id: str) -> Record:
        record = Record(time, source, doc, f"{source}:{vendor_id}")
        self.records.append(record)
        for scenario in self._open:
            scenario.records.append(record)
        return record

    @contextmanager
    def scenario(
        self,
        sid: str,
        label: str,
        description: str,
        actors: Sequence[str],
        keys: Sequence[str] = (),
    ) -> Iterator[Scenario]:
        """Label the records added inside with scenario ``sid``.

        Opening an existing scenario again adds to it, and adds any new actors and keys.
        """
        found = self.scenarios.setdefault(sid, Scenario(sid, label, description, (), ()))
        found.actors += tuple(a for a in dict.fromkeys(actors) if a not in found.actors)
        found.keys += tuple(k for k in dict.fromkeys(keys) if k not in found.keys)
        self._open.append(found)
        try:
            yield found
        finally:
            self._open.remove(found)
