"""``ciwatch models list|show|rollback``: the model generations a daemon learnt in its state dir.

The store is ``<state dir>/models`` (:mod:`detector.scoring.generations`).
These commands never tidy it: a running daemon may be writing a generation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from detector.cli.options import int_option
from detector.cli.report import table
from detector.errors import ConfigError
from detector.scoring.generations import CARD, Generation, GenerationStore

__all__ = ["add_command"]

ROLLED_BACK = (
    "generation {number} is current; a running daemon picks it up within reload_every or on SIGHUP"
)


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = commands.add_parser(
        "models",
        help="list, show or roll back the model generations a daemon learnt",
        description=(
            "The anomaly-model generations the daemon trained from its own history, kept in "
            "<state dir>/models: list them, print one's card, or make an older one current."
        ),
    )
    actions = models.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    listing = actions.add_parser("list", help="one line per generation, the current one marked")
    _add_state_dir(listing)
    listing.set_defaults(handler=_run_list)
    show = actions.add_parser("show", help="print a generation's card (default: the current)")
    _add_state_dir(show)
    show.add_argument("number", nargs="?", type=int_option(1), metavar="N", help="generation")
    show.set_defaults(handler=_run_show)
    rollback = actions.add_parser(
        "rollback",
        help="make an older generation current",
        description=(
            "Make generation --to N current (default: the newest one older than the current), "
            "after verifying its models load. A running daemon picks it up within "
            "service.reload_every or on SIGHUP."
        ),
    )
    _add_state_dir(rollback)
    rollback.add_argument("--to", type=int_option(1), metavar="N", help="generation number")
    rollback.set_defaults(handler=_run_rollback)


def _add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", type=Path, required=True, metavar="DIR", help="the daemon's state dir"
    )


def _store(state_dir: Path) -> GenerationStore | None:
    """The state dir's store, or None if no generation was ever written there."""
    if not state_dir.is_dir():
        raise ConfigError("no such directory", where=str(state_dir))
    directory = state_dir / "models"
    return GenerationStore(directory, tidy=False) if directory.is_dir() else None


def _run_list(args: argparse.Namespace) -> int:
    store = _store(args.state_dir)
    generations = store.generations() if store is not None else []
    if store is None or not generations:
        print(f"no model generations in {args.state_dir / 'models'}")
        return 0
    current = store.current()
    rows = [_row(generation, current) for generation in generations]
    header = ["generation", "created", "trained until", "rows", "families", "check", "current"]
    print(table(header, rows))
    if current is None:
        print(_no_current(store))
    return 0


def _row(generation: Generation, current: Generation | None) -> list[str]:
    passed = generation.check.get("passed", [])
    failed = generation.check.get("failed", [])
    check = f"{len(passed)} of {len(passed) + len(failed)} passed"
    if generation.carried:
        check += f", carried {' '.join(generation.carried)}"
    is_current = current is not None and current.number == generation.number
    return [
        str(generation.number),
        _minute(generation.created_at.isoformat()),
        _minute(generation.trained_until.isoformat()) if generation.trained_until else "-",
        f"{sum(generation.rows.values()):,}",
        " ".join(generation.families),
        check,
        "*" if is_current else "",
    ]


def _minute(iso: str) -> str:
    """``2026-01-05T10:00:00+00:00`` → ``2026-01-05 10:00`` (the table's precision)."""
    return iso[:16].replace("T", " ")


def _no_current(store: GenerationStore) -> str:
    number = store.current_number()
    if number is None:
        return "no current generation (models/current is missing or unreadable)"
    return (
        f"no current generation: models/current names generation {number}, which is missing "
        "or damaged; a running daemon keeps the models it has loaded "
        "(ciwatch models rollback --to N makes another current)"
    )


def _run_show(args: argparse.Namespace) -> int:
    store = _store(args.state_dir)
    if store is None:
        raise ConfigError("no model generations here", where=str(args.state_dir / "models"))
    if args.number is None:
        generation = store.current()
        if generation is None:
            raise ConfigError(_no_current(store), where=str(store.directory))
    else:
        generation = store.generation(args.number)
    card = generation.directory / CARD
    try:
        print(card.read_text(encoding="utf-8"), end="")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the card: {error}", where=str(card)) from None
    return 0


def _run_rollback(args: argparse.Namespace) -> int:
    store = _store(args.state_dir)
    if store is None:
        raise ConfigError("no model generations here", where=str(args.state_dir / "models"))
    generation = store.rollback(args.to)
    print(ROLLED_BACK.format(number=generation.number))
    return 0
