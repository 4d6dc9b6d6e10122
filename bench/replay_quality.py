"""Detection quality and replay throughput on the hand-built attack scenarios.

    python bench/replay_quality.py [--seed 7] [--days 7] [--work DIR] [--config FILE]
                                   [--per-source] [--json FILE]

Generates a world with ``bench/scenarios.py`` (``ciwatch generate``: an
organisation's GitHub, Okta, Kubernetes and CloudTrail logs with sixteen
rule-shaped and five behavioural labeled attacks and benign look-alikes),
runs ``ciwatch replay`` on it as a separate process, exactly as a user would,
reads the alerts it wrote and scores them against ``labels.json``:

* an attack is **detected** when at least one alert cites one of its events as
  evidence, or names one of its actors or keys (as the alert's actor or in its
  group key) at a time inside the attack's span (give or take ``--slack``);
* **alerts per attack** counts the distinct alerts matching it (ideal: one);
* a **false alert** matches no attack; it is attributed to the benign scenario
  it matches the same way, else to background activity;
* **recall** = detected attacks / attacks, over the rule-shaped attacks only;
  the behavioural ones (labeled kind ``behavioural``: no rule covers them)
  are reported apart;
* **precision** = alerts matching an attack of either kind / all alerts;
* **throughput** = events / wall-clock seconds of the replay process, also net
  of the process start-up (measured by replaying an empty file).

By default the replay reads ``all.jsonl`` (every source, in event-time order);
``--per-source`` passes the four per-source files one after another instead,
so event time jumps back at each file. Nothing here asserts a figure: it
prints them (and writes them with ``--json``) for the README and issue notes.
New-value rules (the new-country login) fire only after the actor's learning
period: with the default 7 days, use ``--days 9`` or more, or ``--config`` with
a shorter ``features.learning_period``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import scenarios

__all__ = ["Labeled", "Score", "SeenAlert", "main", "read_alerts", "read_labels", "score"]


@dataclass(frozen=True, slots=True)
class SeenAlert:
    """The parts of one alert (its highest revision) that scoring looks at."""

    id: str
    rule: str
    severity: str
    actor: str
    names: frozenset[str]
    first: datetime
    last: datetime
    evidence: frozenset[str]
    count: int = 1

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeenAlert:
        key = data.get("key") or {}
        first = _time(data.get("first_time") or data["time"])
        return cls(
            id=str(data["id"]),
            rule=str(data.get("rule") or data.get("model") or "?"),
            severity=str(data.get("severity", "?")),
            actor=str(data.get("actor") or ""),
            names=frozenset({str(data.get("actor") or ""), *(str(v) for v in key.values())}),
            first=first,
            last=_time(data.get("last_time") or data["time"]),
            evidence=frozenset(str(e) for e in data.get("evidence") or ()),
            count=int(data.get("count", 1)),
        )


@dataclass(frozen=True, slots=True)
class Labeled:
    """One labeled scenario of labels.json: an attack or a benign look-alike."""

    id: str
    names: frozenset[str]
    start: datetime
    end: datetime
    events: frozenset[str]
    kind: str = "rule"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Labeled:
        names = frozenset([*data["actors"], *data["keys"]])
        start, end = _time(data["start"]), _time(data["end"])
        kind = str(data.get("kind", "rule"))
        return cls(str(data["id"]), names, start, end, frozenset(data["events"]), kind)

    def matched_by(self, alert: SeenAlert, slack: timedelta) -> bool:
        if alert.evidence & self.events:
            return True
        overlaps = alert.first <= self.end + slack and alert.last >= self.start - slack
        return overlaps and bool(alert.names & self.names)


@dataclass(slots=True)
class Score:
    """Alerts set against the labels: which attack each matched, and which matched none.

    ``per_attack`` holds the rule-shaped attacks, which recall is about;
    ``per_behavioural`` those no rule covers, reported apart (an alert matching
    one is not false, but rules are not expected to find them).
    """

    alerts: list[SeenAlert]
    per_attack: dict[str, list[SeenAlert]] = field(default_factory=dict)
    false_alerts: list[tuple[SeenAlert, str]] = field(default_factory=list)
    per_behavioural: dict[str, list[SeenAlert]] = field(default_factory=dict)

    @property
    def detected(self) -> int:
        return sum(1 for found in self.per_attack.values() if found)

    @property
    def behavioural_detected(self) -> int:
        return sum(1 for found in self.per_behavioural.values() if found)

    @property
    def recall(self) -> float:
        return self.detected / len(self.per_attack) if self.per_attack else 0.0

    @property
    def true_alerts(self) -> int:
        return len(self.alerts) - len(self.false_alerts)

    @property
    def precision(self) -> float | None:
        return self.true_alerts / len(self.alerts) if self.alerts else None


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_labels(path: Path) -> tuple[list[Labeled], list[Labeled], dict[str, Any]]:
    """Attacks, benign scenarios, and the whole labels.json document."""
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    attacks = [Labeled.from_json(item) for item in data["attacks"]]
    return attacks, [Labeled.from_json(item) for item in data["benign"]], data


def read_alerts(path: Path) -> list[SeenAlert]:
    """Every alert of an alerts JSONL file, once: a re-sent alert keeps its highest revision."""
    latest: dict[str, dict[str, Any]] = {}
    for line in path.read_bytes().splitlines():
        if line.strip():
            data = orjson.loads(line)
            seen = latest.get(data["id"])
            if seen is None or data.get("revision", 0) >= seen.get("revision", 0):
                latest[data["id"]] = data
    alerts = [SeenAlert.from_json(data) for data in latest.values()]
    return sorted(alerts, key=lambda alert: (alert.first, alert.rule, alert.id))


def score(
    alerts: Sequence[SeenAlert],
    attacks: Sequence[Labeled],
    benign: Sequence[Labeled],
    slack: timedelta,
) -> Score:
    result = Score(list(alerts))
    for attack in attacks:
        into = result.per_behavioural if attack.kind == "behavioural" else result.per_attack
        into[attack.id] = []
    for alert in alerts:
        hits = [attack for attack in attacks if attack.matched_by(alert, slack)]
        for attack in hits:
            found = result.per_attack.get(attack.id)
            (result.per_behavioural[attack.id] if found is None else found).append(alert)
        if not hits:
            look_alike = next((b.id for b in benign if b.matched_by(alert, slack)), "background")
            result.false_alerts.append((alert, look_alike))
    return result


# --- running the replay ------------------------------------------------------------------


def replay(
    command: Sequence[str],
    files: Sequence[Path],
    alerts: Path,
    config: Path | None,
    options: Sequence[str] = (),
) -> float:
    """Run ``ciwatch replay`` and return its wall-clock seconds; exit on its failure."""
    argv = [*command, "replay", *map(str, files), "--alerts-out", str(alerts), *options]
    if config is not None:
        argv += ["--config", str(config)]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"replay failed ({done.returncode}): {' '.join(argv)}\n{done.stderr.strip()}")
    return elapsed


def measure(args: argparse.Namespace, work: Path, files: Sequence[Path]) -> dict[str, float]:
    """Replay the world, then an empty file for the start-up cost; the timings in seconds."""
    elapsed = replay(args.ciwatch, files, work / "alerts.jsonl", args.config)
    empty = work / "empty.jsonl"
    empty.write_bytes(b"")
    startup = replay(args.ciwatch, [empty], work / "empty-alerts.jsonl", args.config)
    return {"seconds": elapsed, "startup_seconds": startup}


# --- the report --------------------------------------------------------------------------


def report(result: Score, labels: dict[str, Any], timing: dict[str, float]) -> dict[str, Any]:
    """Everything measured, as JSON-ready data."""
    events = int(labels["events"])
    net = max(timing["seconds"] - timing["startup_seconds"], 1e-9)
    matched = [len(found) for found in result.per_attack.values() if found]
    return {
        "seed": labels["seed"],
        "days": labels["days"],
        "events": events,
        "attacks": len(result.per_attack),
        "detected": result.detected,
        "recall": result.recall,
        "alerts": len(result.alerts),
        "true_alerts": result.true_alerts,
        "false_alerts": len(result.false_alerts),
        "precision": result.precision,
        "alerts_per_detected_attack": sum(matched) / len(matched) if matched else None,
        "attacks_with_exactly_one_alert": sum(1 for n in matched if n == 1),
        "throughput": {
            **timing,
            "events_per_second": events / timing["seconds"],
            "events_per_second_net": events / net,
        },
        "per_attack": {
            sid: sorted({a.rule for a in found}) for sid, found in result.per_attack.items()
        },
        "behavioural_attacks": len(result.per_behavioural),
        "behavioural_detected": result.behavioural_detected,
        "per_behavioural": {
            sid: sorted({a.rule for a in found}) for sid, found in result.per_behavioural.items()
        },
        "false": [
            {
                "id": a.id,
                "rule": a.rule,
                "actor": a.actor,
                "time": a.first.isoformat(),
                "look_alike": look_alike,
            }
            for a, look_alike in result.false_alerts
        ],
    }


def print_report(result: Score, summary: dict[str, Any]) -> None:
    print(f"{'attack':<36} {'detected':<9} {'alerts':>6}  rules")
    for sid, found in result.per_attack.items():
        rules = ", ".join(summary["per_attack"][sid]) or "-"
        print(f"{sid:<36} {'yes' if found else 'NO':<9} {len(found):>6}  {rules}")
    if result.per_behavioural:
        print("behavioural attacks (no rule covers them):")
    for sid, found in result.per_behavioural.items():
        rules = ", ".join(summary["per_behavioural"][sid]) or "-"
        print(f"{sid:<36} {'yes' if found else 'no':<9} {len(found):>6}  {rules}")
    precision = summary["precision"]
    shown = "n/a (no alerts)" if precision is None else f"{precision:.1%}"
    print(
        f"\nrecall {summary['detected']}/{summary['attacks']} = {summary['recall']:.1%}; "
        f"precision {summary['true_alerts']}/{summary['alerts']} = {shown}; "
        f"{summary['attacks_with_exactly_one_alert']} attacks with exactly one alert; "
        f"behavioural attacks (no rule covers them) detected: "
        f"{summary['behavioural_detected']}/{summary['behavioural_attacks']}"
    )
    by_look_alike = Counter((a.rule, look_alike) for a, look_alike in result.false_alerts)
    print(f"false alerts: {len(result.false_alerts)}")
    for (rule, look_alike), count in sorted(by_look_alike.items()):
        print(f"  {count:>4} x {rule} on {look_alike}")
    speed = summary["throughput"]
    print(
        f"replay: {summary['events']} events in {speed['seconds']:.2f} s = "
        f"{speed['events_per_second']:,.0f} events/s; net of {speed['startup_seconds']:.2f} s "
        f"start-up: {speed['events_per_second_net']:,.0f} events/s"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--work", type=Path, help="directory for the world and the alerts")
    parser.add_argument("--config", type=Path, help="pipeline YAML passed to ciwatch replay")
    parser.add_argument("--per-source", action="store_true", help="replay the per-source files")
    parser.add_argument("--slack", type=float, default=2.0, help="minutes around attack spans")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--ciwatch",
        nargs="+",
        default=[sys.executable, "-m", "detector"],
        help="how to run ciwatch (default: this Python's -m detector)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="ciwatch-quality-"))
    paths = scenarios.write(scenarios.generate(args.seed, args.days), work)
    per_source = (paths[f"{source}.jsonl"] for source in scenarios.SOURCES)
    files: Iterable[Path] = per_source if args.per_source else [paths[scenarios.MERGED]]
    timing = measure(args, work, list(files))
    attacks, benign, labels = read_labels(paths["labels.json"])
    result = score(
        read_alerts(work / "alerts.jsonl"), attacks, benign, timedelta(minutes=args.slack)
    )
    summary = report(result, labels, timing)
    print_report(result, summary)
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"world, alerts: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
