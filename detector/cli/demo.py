"""``ciwatch demo``: the daemon against generated attacks, on an embedded broker (see
:mod:`detector.demo`)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from detector.cli.generate import add_world_options, check_world_options
from detector.demo import DemoOptions, run_demo
from detector.features.durations import parse_duration

__all__ = ["add_command"]


def add_command(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="watch the daemon catch injected attacks, on one machine",
        description=(
            "Start an embedded Kafka broker, generate an organisation's audit logs with "
            "labeled attacks and play them into Kafka on an accelerated clock, run the "
            "daemon on them with the bundled rules and models, and show events per second "
            "and each alert as it reaches a local webhook receiver. Ends with a table of "
            "the injected attacks: caught or not, by which rule or model, how fast. "
            "Below it, the alerts that matched no attack, one a line. "
            "Ctrl-C ends it early, with the table."
        ),
    )
    demo.add_argument(
        "--duration",
        type=_duration,
        default=timedelta(minutes=2),
        metavar="TIME",
        help="longest run once the daemon is consuming, like 40s or 2m (default 2m)",
    )
    demo.add_argument(
        "--speed",
        type=_speed,
        metavar="N",
        help="event seconds per wall second (default: fit the world into --duration)",
    )
    add_world_options(demo, days=10)
    demo.set_defaults(handler=_run)


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than zero")
    return value


def _run(args: argparse.Namespace) -> int:
    check_world_options(args)  # before the broker starts: a bad value is one line, at once
    options = DemoOptions(args.duration, args.speed, args.seed, args.days, args.people)
    return run_demo(options)
