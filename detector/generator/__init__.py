"""An organisation's audit logs with injected attacks, labeled: ``ciwatch generate``.

People in seven countries (twenty by default, up to 2,000 with ``people``; a
:class:`Shape` moves them elsewhere, changes their hours and role mix and adds
machines) and a few machine identities working around the clock (``org``) leave GitHub
audit-log streaming, Okta System Log, Kubernetes audit (EKS) and CloudTrail
records in the vendors' own JSON (``records``) over ``days`` days of event time
from 2026-01-05T00:00:00Z, a Monday. After day two (or from the day
``attacks_from`` names, the days before staying clean), attacks are injected, one
of each (``schedule``): sixteen rule-shaped ones, each what one rule of the
default pack is for (``attacks``, labeled kind ``rule``), and five that no rule
covers (``behavioural``, kind ``behavioural``). Next to them are benign
look-alikes: CI deploying to production at night, bots cloning every
repository, an admin adjusting branch protection, password typos, a traveller
back in a country seen before, routine clones.

:func:`write` puts into a directory one JSONL file per source, ``all.jsonl``
(every record in event-time order, for replays that read files one after
another) and ``labels.json``, which lists each attack and benign scenario with
its events, named by the ids the normalizer gives them (``<source>:<vendor
id>``). The same seed, days and people give byte-identical output: all
randomness is ``random.Random(seed)`` and nothing reads the clock.

Attacks by new-value rules (the new-country login) only fire after the actor's
learning period: with the default of 7 days, generate 9 days or more, or use a
shorter learning period in the replay's configuration.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from detector.errors import ConfigError
from detector.generator.attacks import ATTACK, ATTACKS, BEHAVIOURAL, RULE, lookalikes
from detector.generator.bots import service_bots
from detector.generator.org import everyday, organisation
from detector.generator.people import BASE_PEOPLE, MAX_PEOPLE
from detector.generator.schedule import inject
from detector.generator.shape import DEFAULT_SHAPE, HOME_PLACES, SHAPE_RANGES, Shape
from detector.generator.world import ATTACKS_FROM, START, World, isoformat

__all__ = [
    "ATTACKS_FROM",
    "ATTACK_IDS",
    "BEHAVIOURAL_ATTACK_IDS",
    "DEFAULT_PEOPLE",
    "DEFAULT_SHAPE",
    "HOME_PLACES",
    "MAX_PEOPLE",
    "MERGED",
    "MIN_DAYS",
    "MIN_PEOPLE",
    "RULE_ATTACK_IDS",
    "SHAPE_RANGES",
    "SOURCES",
    "Shape",
    "World",
    "check_attacks_from",
    "generate",
    "labels",
    "write",
]

SOURCES = ("github_audit", "okta_system_log", "k8s_audit", "cloudtrail")
MERGED = "all.jsonl"
MIN_DAYS = 3
DEFAULT_PEOPLE = MIN_PEOPLE = BASE_PEOPLE
ATTACK_IDS = tuple(ATTACKS)
RULE_ATTACK_IDS = tuple(sid for sid, spec in ATTACKS.items() if spec.kind == RULE)
BEHAVIOURAL_ATTACK_IDS = tuple(sid for sid, spec in ATTACKS.items() if spec.kind == BEHAVIOURAL)


def generate(
    seed: int = 7,
    days: int = 7,
    people: int = DEFAULT_PEOPLE,
    *,
    attacks: bool = True,
    shape: Shape = DEFAULT_SHAPE,
    attacks_from: int = ATTACKS_FROM,
) -> World:
    """The world for ``seed`` over ``days`` days with ``people`` people; records in time order.

    ``attacks=False`` leaves the attacks out (benign look-alikes stay): a clean
    history to train models on. ``shape`` changes the role mix, homes, working
    hours and share of machines (:class:`Shape`; the default changes nothing).
    ``attacks_from`` is the first day (counted from 0) an attack may fall on; the
    days before are clean, e.g. for a learning period (the default, two, changes nothing).

    Raises :class:`~detector.errors.ConfigError` naming ``days``, ``people`` or
    ``attacks-from`` when there are too few days for the attacks, too few (or too
    many) people, or the first attack day is before day two or not before the end.
    """
    if days < MIN_DAYS:
        raise ConfigError(f"must be at least {MIN_DAYS}: attacks start after day two", where="days")
    if not MIN_PEOPLE <= people <= MAX_PEOPLE:
        raise ConfigError(f"must be from {MIN_PEOPLE} to {MAX_PEOPLE}", where="people")
    check_attacks_from(attacks_from, days)
    world = World(seed, days, people, shape, attacks_from=attacks_from)
    org = organisation(world, people)
    everyday(world, org)
    service_bots(world, org)  # none in the default shape: no draws, the same output as ever
    org = lookalikes(world, org)
    if attacks:
        inject(world, org)
    world.records.sort(key=lambda record: record.time)  # stable: ties keep emission order
    return world


def check_attacks_from(attacks_from: int, days: int) -> None:
    """:class:`ConfigError` naming ``attacks-from`` unless it is a day from two to ``days - 1``."""
    if not ATTACKS_FROM <= attacks_from < days:
        within = f"from {ATTACKS_FROM} to {days - 1}, a day of the {days} generated"
        raise ConfigError(f"must be {within}", where="attacks-from")


def labels(world: World) -> dict[str, Any]:
    """What ``labels.json`` holds: the run's parameters, file names, counts and scenarios.

    ``attacks`` holds both kinds, each with its ``kind`` (``rule`` or ``behavioural``).
    ``shape`` (only when not the default) holds the shape's changes, ``attacks_from``
    (only when not the default) the first day attacks may fall on.
    """
    counts = Counter(record.source for record in world.records)
    scenarios = [s.to_dict() for s in world.scenarios.values()]
    extra: dict[str, Any] = {} if world.shape.is_default else {"shape": world.shape.changes()}
    if world.attacks_from != ATTACKS_FROM:  # absent by default: the same bytes as ever
        extra["attacks_from"] = world.attacks_from
    return {
        "generator": "ciwatch generate",
        "seed": world.seed,
        "days": world.days,
        "people": world.people,
        **extra,
        "start": isoformat(START),
        "end": isoformat(world.end),
        "events": len(world.records),
        "counts": {source: counts[source] for source in SOURCES},
        "files": {source: f"{source}.jsonl" for source in SOURCES},
        "merged": MERGED,
        "attacks": sorted((s for s in scenarios if s["label"] == ATTACK), key=_by_start),
        "benign": [s for s in scenarios if s["label"] != ATTACK],
    }


def _by_start(scenario: dict[str, Any]) -> str:
    return str(scenario["start"])


def write(world: World, out: Path) -> dict[str, Path]:
    """Write the per-source files, ``all.jsonl`` and ``labels.json``; their paths by name."""
    out.mkdir(parents=True, exist_ok=True)
    lines = {source: bytearray() for source in SOURCES}
    merged = bytearray()
    for record in world.records:
        line = orjson.dumps(record.doc) + b"\n"
        lines[record.source] += line
        merged += line
    written: dict[str, Path] = {}
    for name, data in [*((f"{s}.jsonl", lines[s]) for s in SOURCES), (MERGED, merged)]:
        written[name] = out / name
        written[name].write_bytes(bytes(data))
    written["labels.json"] = out / "labels.json"
    written["labels.json"].write_bytes(
        orjson.dumps(labels(world), option=orjson.OPT_INDENT_2) + b"\n"
    )
    return written
