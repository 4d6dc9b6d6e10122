"""Detection benchmark: rules only vs models only vs both, on generated worlds.

    python bench/detection.py [--seeds 7 3 11] [--days 10] [--people 20] [--models DIR]

For each seed, generates a world (``ciwatch generate``: 16 rule-shaped and 5
behavioural attacks, benign look-alikes), replays it three times with
``ciwatch replay`` — ``--no-models``, models with the bundled rule pack switched
off, and both — and prints, per mode: per-attack recall (rule-shaped and
behavioural separately), false alerts per 1,000 actor-days (an actor-day is an
actor active on a calendar day, UTC), and the median and worst time from an
attack's first event to its first alert. The models are the bundled ones
(trained on a different world: seed 101, 21 days, 60 people) unless
``--models`` says otherwise. Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import replay_quality as rq

from detector.generator import MERGED, generate, write

MODES = {
    "rules only": ["--no-models"],
    "models only": ["--config", "{rules_off}"],
    "rules + models": [],
}
SLACK = timedelta(minutes=2)


def actor_days(path: Path) -> int:
    """Distinct (actor, UTC day) pairs, read from the normalized events."""
    from detector.config import load_config
    from detector.pipeline import build_normalizer
    from detector.sources.files import FileSource

    normalizer = build_normalizer(load_config(None))
    seen: set[tuple[str, object]] = set()
    with FileSource([path]) as source:
        for batch in source.batches(5000):
            seen.update((e.actor, e.time.date()) for e in normalizer.normalize_batch(batch).events)
    return len(seen)


def run_mode(world: Path, options: list[str], work: Path, models: Path | None) -> rq.Score:
    alerts = work / "alerts.jsonl"
    rules_off = work / "rules-off.yaml"
    rules_off.write_text("rules: {bundled: false}\n")
    argv = [a.replace("{rules_off}", str(rules_off)) for a in options]
    if models is not None and "--no-models" not in argv:
        argv += ["--models", str(models)]
    command = [sys.executable, "-m", "detector"]
    rq.replay(command, [world / MERGED], alerts, None, argv)
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
    """One mode's figures summed over the worlds."""

    rule_hits: int = 0
    rule_attacks: int = 0
    behavioural_hits: int = 0
    behavioural_attacks: int = 0
    false_alerts: int = 0
    actor_days: int = 0
    delays: list[float] = field(default_factory=list)

    def add(self, result: rq.Score, world: Path, days: int) -> None:
        self.rule_hits += result.detected
        self.rule_attacks += len(result.per_attack)
        self.behavioural_hits += result.behavioural_detected
        self.behavioural_attacks += len(result.per_behavioural)
        self.false_alerts += len(result.false_alerts)
        self.actor_days += days
        self.delays += delays(result, world)

    def row(self, mode: str) -> str:
        median = f"{statistics.median(self.delays):.0f} s" if self.delays else "-"
        worst = f"{max(self.delays):.0f} s" if self.delays else "-"
        per_thousand = 1000 * self.false_alerts / max(self.actor_days, 1)
        return (
            f"| {mode} | {self.rule_hits}/{self.rule_attacks} "
            f"| {self.behavioural_hits}/{self.behavioural_attacks} "
            f"| {per_thousand:.1f} ({self.false_alerts} in {self.actor_days:,}) "
            f"| {median} / {worst} |"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 3, 11])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--models", type=Path)
    args = parser.parse_args(argv)
    tallies = {mode: Tally() for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="ciwatch-detection-") as tmp:
        for seed in args.seeds:
            world = Path(tmp) / f"world-{seed}"
            write(generate(seed=seed, days=args.days, people=args.people), world)
            days = actor_days(world / MERGED)
            for mode, options in MODES.items():
                tallies[mode].add(run_mode(world, options, world, args.models), world, days)
    print(f"seeds {' '.join(map(str, args.seeds))}, {args.days} days, {args.people} people")
    print("| mode | rule-shaped attacks found | behavioural attacks found "
          "| false alerts / 1,000 actor-days | time to detect (median / worst) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for mode, tally in tallies.items():
        print(tally.row(mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
