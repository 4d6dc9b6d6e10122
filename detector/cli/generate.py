"""``ciwatch generate``: an organisation's audit logs with labeled attacks, as JSONL files."""

from __future__ import annotations

import argparse
from pathlib import Path

from detector.generator import DEFAULT_PEOPLE, generate, labels, write

__all__ = ["add_command"]


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "generate",
        help="write a generated organisation's audit logs with labeled attacks",
        description=(
            "Write GitHub, Okta, Kubernetes and CloudTrail audit logs of a generated "
            "organisation, with rule-shaped and behavioural attacks injected after day two: "
            "one JSONL file per source, all.jsonl (every record in event-time order) and "
            "labels.json. The same options always give byte-identical files."
        ),
    )
    command.add_argument("--out", type=Path, required=True, metavar="DIR", help="write here")
    command.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    command.add_argument(
        "--days", type=int, default=7, help="days of event time, at least 3 (default 7)"
    )
    command.add_argument(
        "--people",
        type=int,
        default=DEFAULT_PEOPLE,
        help=f"people in the organisation (default {DEFAULT_PEOPLE})",
    )
    command.add_argument(
        "--no-attacks",
        action="store_true",
        help="leave the attacks out: a clean history to train models on",
    )
    command.set_defaults(handler=_run_generate)


def _run_generate(args: argparse.Namespace) -> int:
    world = generate(args.seed, args.days, args.people, attacks=not args.no_attacks)
    write(world, args.out)
    summary = labels(world)
    counts = ", ".join(f"{source} {count}" for source, count in summary["counts"].items())
    kinds = [attack["kind"] for attack in summary["attacks"]]
    print(
        f"{summary['events']} events ({counts}); {kinds.count('rule')} rule-shaped and "
        f"{kinds.count('behavioural')} behavioural attacks and {len(summary['benign'])} "
        f"benign scenarios labeled in {args.out / 'labels.json'}"
    )
    return 0
