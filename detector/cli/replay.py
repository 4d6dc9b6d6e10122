"""``ciwatch replay``: the detection pipeline, offline, over JSONL files in order."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import IO, Never

from tqdm import tqdm

from detector.cli.normalize import dead_letter_file, write_dead_letter
from detector.cli.report import replay_summary
from detector.config import PipelineConfig, load_config
from detector.events.model import DeadLetter
from detector.pipeline import Pipeline, drive
from detector.sinks.file import JsonlFileSink
from detector.sources.files import FileSource

__all__ = ["add_command"]


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = commands.add_parser(
        "replay",
        help="run detection over JSONL files, alerts to a file",
        description=(
            "Run the same pipeline as the daemon over JSON Lines files (plain or gzip) read in "
            "the order given, in event time: deterministic, the same input gives the same "
            "alerts and ids. Ends with a summary table on stderr."
        ),
    )
    replay.add_argument("files", nargs="+", metavar="FILE")
    replay.add_argument(
        "--config", type=Path, metavar="FILE", help="pipeline YAML (default: the bundled one)"
    )
    replay.add_argument(
        "--models",
        type=Path,
        metavar="DIR",
        help="anomaly models from `ciwatch train` (default: the config's, else the bundled ones)",
    )
    replay.add_argument(
        "--no-models", action="store_true", help="rules only: do not score with anomaly models"
    )
    replay.add_argument(
        "--alerts-out", type=Path, metavar="FILE", required=True, help="alerts as JSONL"
    )
    replay.add_argument(
        "--dead-letters", type=Path, metavar="FILE", help="dead letters as JSONL (default: count)"
    )
    replay.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="progress bar on stderr (auto: only on a terminal)",
    )
    replay.set_defaults(handler=_run_replay)


def _run_replay(args: argparse.Namespace) -> int:
    config = with_model_options(load_config(args.config), args.models, args.no_models)
    pipeline = Pipeline.from_config(config)
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    started = time.perf_counter()
    with (
        FileSource(args.files, max_record_bytes=config.normalizer.max_record_bytes) as source,
        JsonlFileSink(args.alerts_out, truncate=True) as sink,
        dead_letter_file(args.dead_letters) as dead_file,
        tqdm(disable=not show, unit=" records", file=sys.stderr, dynamic_ncols=True) as bar,
    ):
        drive(
            source,
            pipeline,
            [sink],
            on_dead_letters=lambda dead: _keep_dead_letters(dead, dead_file),
            on_batch=lambda _, records: _progress(bar, records, pipeline),
        )
    elapsed = time.perf_counter() - started
    print(replay_summary(pipeline.stats, elapsed), file=sys.stderr)
    return 0


def with_model_options(
    config: PipelineConfig, models: Path | None, no_models: bool
) -> PipelineConfig:
    """The config with ``--models DIR`` / ``--no-models`` applied."""
    update: dict[str, object] = {}
    if models is not None:
        update["dir"] = models
    if no_models:
        update["enabled"] = False
    return config.model_copy(update={"models": config.models.model_copy(update=update)})


def _keep_dead_letters(dead: list[DeadLetter], dead_file: IO[bytes] | None) -> None:
    # Without --dead-letters they are counted in the summary, not printed one by one.
    if dead_file is not None:
        for item in dead:
            write_dead_letter(item, dead_file)


def _progress(bar: tqdm[Never], records: int, pipeline: Pipeline) -> None:
    bar.set_postfix(alerts=pipeline.stats.alerts.total(), refresh=False)
    bar.update(records)
