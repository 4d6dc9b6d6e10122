"""``ciwatch generate``: an organisation's audit logs with labeled attacks, as JSONL files."""

from __future__ import annotations

import argparse
from pathlib import Path

from detector.cli.options import output_directory
from detector.errors import ConfigError
from detector.generator import (
    ATTACKS_FROM,
    DEFAULT_PEOPLE,
    DEFAULT_SHAPE,
    HOME_PLACES,
    MAX_PEOPLE,
    MIN_DAYS,
    MIN_PEOPLE,
    SHAPE_RANGES,
    Shape,
    check_attacks_from,
    generate,
    labels,
    write,
)

__all__ = [
    "MAX_DAYS",
    "MAX_SEED",
    "add_command",
    "add_shape_options",
    "add_world_options",
    "check_world_options",
    "shape_from",
    "world_ranges",
]

MAX_SEED = 2**32 - 1
"""Seeds run from 0 to this: ``random.Random`` folds a negative seed onto its absolute value."""
MAX_DAYS = 365
"""A year of event time: more only costs memory and minutes (a year at 20 people is ~350k)."""


def world_ranges() -> dict[str, tuple[int, int]]:
    """The valid range, inclusive, of each world option: ``seed``, ``days``, ``people``."""
    return {"seed": (0, MAX_SEED), "days": (MIN_DAYS, MAX_DAYS), "people": (MIN_PEOPLE, MAX_PEOPLE)}


def check_world_options(args: argparse.Namespace) -> None:
    """Raise :class:`ConfigError` (one line, exit status 2) for a value out of its range."""
    for name, (low, high) in world_ranges().items():
        value = getattr(args, name)
        if not low <= value <= high:
            raise ConfigError(f"must be from {low} to {high}", where=name)


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "generate",
        help="write a generated organisation's audit logs with labeled attacks",
        description=(
            "Write GitHub, Okta, Kubernetes and CloudTrail audit logs of a generated "
            "organisation, with rule-shaped and behavioural attacks injected after day two "
            "(or from --attacks-from DAY): "
            "one JSONL file per source, all.jsonl (every record in event-time order) and "
            "labels.json. The same options always give byte-identical files."
        ),
    )
    command.add_argument("--out", type=Path, required=True, metavar="DIR", help="write here")
    add_world_options(command, days=7)
    command.add_argument(
        "--no-attacks",
        action="store_true",
        help="leave the attacks out: a clean history to train models on",
    )
    command.add_argument(
        "--attacks-from",
        type=int,
        default=ATTACKS_FROM,
        metavar="DAY",
        help=(
            f"the first day attacks fall on, counted from 0, {ATTACKS_FROM} to --days - 1 "
            f"(default {ATTACKS_FROM}); the days before stay clean, e.g. a learning period: "
            "--days 25 --attacks-from 15 gives 15 clean days"
        ),
    )
    add_shape_options(command)
    command.set_defaults(handler=_run_generate)


SHAPE_HELP = {
    "admin_share": "people who are GitHub owners and AWS admins, in percent, {} to {} (default {})",
    "k8s_share": "people with Kubernetes access, in percent, {} to {} (default {})",
    "aws_share": "people with AWS access, in percent, {} to {} (default {})",
    "work_start": "local hour work starts (for some up to 2 h later), {} to {} (default {})",
    "bot_share": (
        "machine identities as a share of all identities, in percent, {} to {} "
        "(default {}: only the organisation's own CI and operators)"
    ),
}


def add_shape_options(command: argparse.ArgumentParser) -> None:
    """The organisation's shape: role mix, homes, working hours, share of machines."""
    group = command.add_argument_group(
        "organisation shape", "the defaults are the shape the bundled models were trained on"
    )
    for name, text in SHAPE_HELP.items():
        default = getattr(DEFAULT_SHAPE, name)
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=int,
            default=default,
            metavar="HOUR" if name == "work_start" else "PCT",
            help=text.format(*SHAPE_RANGES[name], default),
        )
    group.add_argument(
        "--homes",
        default="",
        metavar="PLACE,...",
        help=(
            f"where people live (their time zones), everyone in turn: one or more of "
            f"{', '.join(HOME_PLACES)} (default: seven places from San Francisco to Bengaluru)"
        ),
    )


def shape_from(args: argparse.Namespace) -> Shape:
    """The :class:`Shape` the options ask for; :class:`ConfigError` naming a bad one."""
    homes = tuple(home.strip() for home in args.homes.split(",")) if args.homes else ()
    if any(not home for home in homes):
        raise ConfigError("an empty place in the list", where="homes")
    values = {name: getattr(args, name) for name in SHAPE_HELP}
    return Shape(homes=homes, **values)


def add_world_options(command: argparse.ArgumentParser, *, days: int) -> None:
    """``--seed``, ``--days`` and ``--people``, their valid ranges in the help."""
    ranges = world_ranges()
    command.add_argument(
        "--seed",
        type=int,
        default=7,
        metavar="N",
        help="random seed, {} to {} (default 7)".format(*ranges["seed"]),
    )
    command.add_argument(
        "--days",
        type=int,
        default=days,
        metavar="N",
        help="days of event time, {} to {} (default {}); attacks start after day two".format(
            *ranges["days"], days
        ),
    )
    command.add_argument(
        "--people",
        type=int,
        default=DEFAULT_PEOPLE,
        metavar="N",
        help="people in the organisation, {} to {} (default {})".format(
            *ranges["people"], DEFAULT_PEOPLE
        ),
    )


def _run_generate(args: argparse.Namespace) -> int:
    check_world_options(args)
    check_attacks_from(args.attacks_from, args.days)  # before the directory: nothing written
    shape = shape_from(args)
    output_directory(args.out, "the generated logs")
    world = generate(
        args.seed,
        args.days,
        args.people,
        attacks=not args.no_attacks,
        shape=shape,
        attacks_from=args.attacks_from,
    )
    write(world, args.out)
    summary = labels(world)
    counts = ", ".join(f"{source} {count}" for source, count in summary["counts"].items())
    kinds = [attack["kind"] for attack in summary["attacks"]]
    print(
        f"{summary['events']} events ({counts}); {kinds.count('rule')} rule-shaped and "
        f"{kinds.count('behavioural')} behavioural attacks and {len(summary['benign'])} "
        f"benign scenarios labeled in {args.out / 'labels.json'}"
        + ("" if shape.is_default else f"; shape: {shape.describe()}")
        + ("" if args.attacks_from == ATTACKS_FROM else f"; attacks from day {args.attacks_from}")
    )
    return 0
