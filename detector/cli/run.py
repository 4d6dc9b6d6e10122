"""``ciwatch run``: the daemon (see :mod:`detector.daemon`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from detector.config import PipelineConfig, load_config
from detector.daemon import Daemon
from detector.sinks.base import Sink
from detector.sinks.file import JsonlFileSink

__all__ = ["add_command", "build_sinks"]


def add_command(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="consume Kafka, detect, deliver alerts (the daemon)",
        description=(
            "Consume the configured Kafka topics in a consumer group, detect with the rules "
            "and models, deliver alerts to the configured sinks and commit offsets only "
            "after delivery. SIGTERM stops cleanly; SIGHUP reloads the models. "
            "CIWATCH_* environment variables override the file (see docs)."
        ),
    )
    run.add_argument("--config", type=Path, metavar="FILE", help="pipeline YAML")
    run.set_defaults(handler=_run)


def build_sinks(config: PipelineConfig) -> list[Sink]:
    """The sinks the ``service`` section asks for."""
    sinks: list[Sink] = []
    if config.service.alerts_file is not None:
        sinks.append(JsonlFileSink(config.service.alerts_file))
    return sinks


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config, environ=os.environ)
    return Daemon(config, build_sinks(config)).run()
