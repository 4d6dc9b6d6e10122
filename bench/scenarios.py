"""A small organisation's audit logs with hand-injected attacks, labeled.

    python bench/scenarios.py --out DIR [--seed 7] [--days 7]

Twenty people in seven countries and a few machine identities working around
the clock (``scenario_org``) leave GitHub audit-log streaming, Okta System Log,
Kubernetes audit (EKS) and CloudTrail records in the vendors' own JSON
(``scenario_records``) over ``days`` days of event time from
2026-01-05T00:00:00Z, a Monday. Sixteen rule-shaped attacks are injected after
day two, one of each (``scenario_attacks``), next to benign look-alikes: CI
deploying to production at night, bots cloning every repository, an admin
adjusting branch protection, password typos, a traveller back in a country seen
before, routine clones.

Written to ``DIR``: one JSONL file per source, ``all.jsonl`` (every record in
event-time order, for replays that read files one after another) and
``labels.json``, which lists each attack and benign scenario with its events,
named by the ids the normalizer gives them (``<source>:<vendor id>``). The same
seed and days give byte-identical output: all randomness is
``random.Random(seed)`` and nothing reads the clock.

Attacks by new-value rules (the new-country login) only fire after the actor's
learning period: with the default of 7 days, use ``--days 9`` or more, or a
shorter learning period in the replay's configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from scenario_attacks import ATTACK, ATTACKS, inject, lookalikes
from scenario_org import everyday, organisation
from scenario_world import START, World, isoformat

__all__ = ["ATTACK_IDS", "MERGED", "MIN_DAYS", "SOURCES", "generate", "labels", "main", "write"]

SOURCES = ("github_audit", "okta_system_log", "k8s_audit", "cloudtrail")
MERGED = "all.jsonl"
MIN_DAYS = 3
ATTACK_IDS = tuple(ATTACKS)


def generate(seed: int = 7, days: int = 7) -> World:
    """The world for ``seed`` over ``days`` days; its records sorted by event time."""
    if days < MIN_DAYS:
        raise ValueError(f"days must be at least {MIN_DAYS}: attacks start after day 2")
    world = World(seed, days)
    org = organisation(world)
    everyday(world, org)
    org = lookalikes(world, org)
    inject(world, org)
    world.records.sort(key=lambda record: record.time)  # stable: ties keep emission order
    return world


def labels(world: World) -> dict[str, Any]:
    """What ``labels.json`` holds: the run's parameters, file names, counts and scenarios."""
    counts = Counter(record.source for record in world.records)
    scenarios = [s.to_dict() for s in world.scenarios.values()]
    return {
        "generator": "bench/scenarios.py",
        "seed": world.seed,
        "days": world.days,
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--days", type=int, default=7, help="days of event time (default 7)")
    args = parser.parse_args(argv)
    try:
        world = generate(args.seed, args.days)
    except ValueError as exc:
        parser.error(str(exc))
    write(world, args.out)
    summary = labels(world)
    counts = ", ".join(f"{source} {count}" for source, count in summary["counts"].items())
    print(
        f"{summary['events']} events ({counts}); {len(summary['attacks'])} attacks and "
        f"{len(summary['benign'])} benign scenarios labeled in {args.out / 'labels.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
