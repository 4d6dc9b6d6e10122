"""Detection benchmark on held-out organisations: rules, models and both, per kind of models.

    python bench/detection.py [--quick] [--only NAME ...] [--models bundled trained learned]
                              [--work DIR] [--json FILE]

For each organisation of the held-out set (``bench/heldout.py``: seeds and
shapes never used while tuning, 25 to 2,000 people), generates the world with
attacks (16 rule-shaped and 5 behavioural, benign look-alikes), replays it
with ``ciwatch replay`` as a separate process — rules only, models only (the
rule pack switched off) and both — and scores the alerts against the labels
(``bench/replay_quality.py``). Models come in kinds (``--models``):

* ``bundled``: the models shipped in ``models/``, trained on another,
  default-shaped organisation;
* ``trained``: ``ciwatch train`` on a clean history of the same organisation
  (its ``history_seed``, no attacks, the same shape, people and days), as a
  team would train on its own past before turning the models on;
* ``learned``: ``ciwatch replay --learn``, the models ciwatch learns from the
  events as they come, as ``ciwatch run`` does (``bench/learned.py``). It
  replays the same organisation generated over the learning period (14 days)
  plus its days, attacks only after the learning period, and counts false
  alerts and actor-days from the day after the learning period.

Each kind adds its own ``ciwatch replay`` options (:data:`MODEL_KINDS`).

It prints one table per kind of models — rows rules / models / both; columns
rule-shaped and behavioural attacks found, false alerts per 1,000 actor-days
(an actor active on a UTC calendar day) with the counts, time from an attack's
first event to its first alert — then the same per organisation, the false
alerts by rule and look-alike, and the attacks missed. Everything is
deterministic: the same code gives the same figures. Nothing here asserts a
figure. ``--quick`` measures only the two small organisations (about two
minutes for ``bundled`` and ``trained``, about eight more for ``learned``, which
learns in each of its two model replays: 24 days of event time, ~25 trainings);
the whole set takes about fifteen minutes on two cores without ``learned``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import replay_quality as rq
from heldout import HeldOut, select
from learned import counted_from, fresh_learn_dir, learned, learned_world, learning_days, since

from detector.generator import MERGED, generate, write

CIWATCH = [sys.executable, "-m", "detector"]
SLACK = timedelta(minutes=2)
DETECTORS = ("rules", "models", "both")


# --- the kinds of models ----------------------------------------------------------------


def bundled(held: HeldOut, work: Path) -> list[str]:
    """The shipped models: ``ciwatch replay``'s default."""
    return []


def trained(held: HeldOut, work: Path) -> list[str]:
    """Models trained on a clean history of the same organisation (another seed)."""
    history, models = work / "history", work / "models-trained"
    world = generate(held.history_seed, held.days, held.people, attacks=False, shape=held.shape)
    write(world, history)
    command = [*CIWATCH, "train", str(history / MERGED), "--out", str(models)]
    done = subprocess.run([*command, "--log-level", "warning"], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"train failed ({done.returncode}): {' '.join(command)}\n{done.stderr.strip()}")
    return ["--models", str(models)]


MODEL_KINDS: dict[str, Callable[[HeldOut, Path], list[str]]] = {
    "bundled": bundled,
    "trained": trained,
    "learned": learned,
}
"""Each kind of models by name: what it prepares, and the replay options that use it."""


# --- scoring ----------------------------------------------------------------------------


def actor_days(path: Path, start: datetime | None = None) -> int:
    """Distinct (actor, UTC day) pairs of the events at ``start`` or later (None: all)."""
    from detector.config import load_config
    from detector.normalizing import build_normalizer
    from detector.sources.files import FileSource

    normalizer = build_normalizer(load_config(None))
    seen: set[tuple[str, object]] = set()
    with FileSource([path]) as source:
        for batch in source.batches(5000):
            events = normalizer.normalize_batch(batch).events
            seen.update(
                (e.actor, e.time.date()) for e in events if start is None or e.time >= start
            )
    return len(seen)


def replay(world: Path, alerts: Path, options: list[str]) -> rq.Score:
    """Replay the world with ``options``, then score its alerts against the labels."""
    rq.replay(CIWATCH, [world / MERGED], alerts, None, [*options, "--log-level", "warning"])
    attacks, benign, _ = rq.read_labels(world / "labels.json")
    return rq.score(rq.read_alerts(alerts), attacks, benign, SLACK)


def delays(result: rq.Score, world: Path) -> list[float]:
    attacks, _, _ = rq.read_labels(world / "labels.json")
    starts = {attack.id: attack.start for attack in attacks}
    found = {**result.per_attack, **result.per_behavioural}
    return [
        (min(alert.first for alert in alerts) - starts[attack]).total_seconds()
        for attack, alerts in found.items()
        if alerts
    ]


@dataclass
class Tally:
    """One row's figures, summed over organisations."""

    rule_hits: int = 0
    rule_attacks: int = 0
    behavioural_hits: int = 0
    behavioural_attacks: int = 0
    false_alerts: int = 0
    actor_days: int = 0
    delays: list[float] = field(default_factory=list)
    false_by: Counter[tuple[str, str]] = field(default_factory=Counter)
    missed: list[str] = field(default_factory=list)

    def add(self, result: rq.Score, world: Path, days: int, name: str) -> None:
        self.rule_hits += result.detected
        self.rule_attacks += len(result.per_attack)
        self.behavioural_hits += result.behavioural_detected
        self.behavioural_attacks += len(result.per_behavioural)
        self.false_alerts += len(result.false_alerts)
        self.actor_days += days
        self.delays += delays(result, world)
        self.false_by.update((alert.rule, look_alike) for alert, look_alike in result.false_alerts)
        found = {**result.per_attack, **result.per_behavioural}
        self.missed += [f"{name}: {attack}" for attack, alerts in found.items() if not alerts]

    @property
    def per_thousand(self) -> float:
        return 1000 * self.false_alerts / max(self.actor_days, 1)

    def cells(self) -> list[str]:
        median = f"{statistics.median(self.delays):.0f} s" if self.delays else "-"
        worst = f"{max(self.delays):.0f} s" if self.delays else "-"
        return [
            f"{self.rule_hits}/{self.rule_attacks}",
            f"{self.behavioural_hits}/{self.behavioural_attacks}",
            f"{self.per_thousand:.1f} ({self.false_alerts} in {self.actor_days:,})",
            f"{median} / {worst}",
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "rule_shaped": [self.rule_hits, self.rule_attacks],
            "behavioural": [self.behavioural_hits, self.behavioural_attacks],
            "false_alerts": self.false_alerts,
            "actor_days": self.actor_days,
            "false_per_1000_actor_days": round(self.per_thousand, 2),
            "delays_seconds": sorted(self.delays),
            "false_by_rule": {f"{r} on {b}": n for (r, b), n in sorted(self.false_by.items())},
            "missed": self.missed,
        }


Key = tuple[str, str, str]
"""(organisation or ``all``, kind of models, detectors)."""


# --- running ----------------------------------------------------------------------------


def measure(held: HeldOut, kinds: Sequence[str], work: Path, tallies: dict[Key, Tally]) -> None:
    """Every detector and kind of models on one organisation, into ``tallies``.

    The ``learned`` kind replays a world of its own (:func:`learned.learned_world`),
    with its own rules-only row, counted after the learning period.
    """
    prepared = [kind for kind in kinds if kind != "learned"]
    if prepared:
        world = work / "world"
        write(generate(held.seed, held.days, held.people, shape=held.shape), world)
        measure_world(held, world, prepared, tallies, None)
    if "learned" in kinds:
        started = time.perf_counter()
        world = work / "world-learned"
        write(learned_world(held), world)
        measure_world(held, world, ["learned"], tallies, counted_from())
        print(f"    {held.name}, learned: {time.perf_counter() - started:.0f} s", flush=True)


def measure_world(
    held: HeldOut,
    world: Path,
    kinds: Sequence[str],
    tallies: dict[Key, Tally],
    start: datetime | None,
) -> None:
    """Rules alone, then models alone and both per kind, on ``world``; counted from ``start``."""
    work = world.parent
    days = actor_days(world / MERGED, start)
    rules_off = work / "rules-off.yaml"
    rules_off.write_text("rules: {bundled: false}\n")
    rules_only = replay(world, work / f"alerts-{world.name}-rules.jsonl", ["--no-models"])
    for kind in kinds:
        options = MODEL_KINDS[kind](held, work)
        runs = {"rules": rules_only}
        for detectors, extra in (("models", ["--config", str(rules_off)]), ("both", [])):
            learn = fresh_learn_dir(options, work / f"learn-{kind}-{detectors}")
            alerts = work / f"alerts-{kind}-{detectors}.jsonl"
            runs[detectors] = replay(world, alerts, [*learn, *extra])
        for detectors, result in runs.items():
            for scope in (held.name, "all"):
                tally = tallies.setdefault((scope, kind, detectors), Tally())
                tally.add(since(result, start), world, days, held.name)


def measured_over(kind: str) -> str:
    """What a kind's table measures, when its worlds are not the held-out ones as they are."""
    if kind != "learned":
        return ""
    days = learning_days()
    return (
        f" (each over {days} learning days plus its days, attacks after them; false alerts "
        f"and actor-days counted from day {days}, counted from 0)"
    )


HEADER = (
    "| {first} | rule-shaped attacks found | behavioural attacks found "
    "| false alerts / 1,000 actor-days | time to detect (median / worst) |"
)


def print_tables(held: Sequence[HeldOut], kinds: Sequence[str], tallies: dict[Key, Tally]) -> None:
    for kind in kinds:
        print(f"\n{kind} models, {len(held)} held-out organisations{measured_over(kind)}")
        print(HEADER.format(first="detectors") + "\n|---|---|---|---|---|")
        for detectors in DETECTORS:
            print(f"| {detectors} | " + " | ".join(tallies["all", kind, detectors].cells()) + " |")
    print("\nper organisation")
    print(
        HEADER.format(first="organisation | models | detectors") + "\n|---|---|---|---|---|---|---|"
    )
    for org in held:
        for kind in kinds:
            for detectors in DETECTORS:
                cells = tallies[org.name, kind, detectors].cells()
                print(f"| {org.name} | {kind} | {detectors} | " + " | ".join(cells) + " |")
    for kind in kinds:
        both = tallies["all", kind, "both"]
        print(f"\n{kind} models + rules, false alerts by rule and look-alike:")
        for (rule, look_alike), count in sorted(both.false_by.items(), key=lambda i: -i[1]):
            print(f"  {count:>4} x {rule} on {look_alike}")
        print(f"  missed: {', '.join(both.missed) or 'none'}")


def describe(held: Sequence[HeldOut]) -> None:
    print("held-out organisations (bench/heldout.py; never used for tuning):")
    for org in held:
        options = " ".join(org.generate_options())
        print(f"  {org.name}: {org.about}\n    ciwatch generate --seed {org.seed} {options}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the small organisations")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these organisations")
    parser.add_argument("--models", nargs="+", choices=list(MODEL_KINDS), default=list(MODEL_KINDS))
    parser.add_argument("--work", type=Path, help="keep the worlds, models and alerts here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    held = select(args.only, quick=args.quick)
    describe(held)
    tallies: dict[Key, Tally] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ciwatch-detection-") as tmp:
        root = args.work or Path(tmp)
        for org in held:
            measure(org, args.models, root / org.name, tallies)
            print(f"  measured {org.name} ({time.perf_counter() - started:.0f} s)", flush=True)
    print_tables(held, args.models, tallies)
    if args.json is not None:
        figures = {" / ".join(key): tally.summary() for key, tally in sorted(tallies.items())}
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
