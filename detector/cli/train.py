"""``ciwatch train``: fit one anomaly model per feature family on history (JSONL files)."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from detector.cli.generate import MAX_SEED
from detector.cli.options import int_option, output_directory, rate_option
from detector.cli.report import table
from detector.config import PipelineConfig, load_config
from detector.events.model import Event
from detector.features.batch import build_frame
from detector.normalizing import build_normalizer
from detector.scoring import ModelSet, make_detector, save_models, train_models
from detector.sources.files import FileSource

__all__ = ["add_command"]

_logger = logging.getLogger("ciwatch.train")


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = commands.add_parser(
        "train",
        help="fit the anomaly models on history",
        description=(
            "Build the features of the history in FILE... (JSONL, read in the order given: give "
            "it in event-time order) with the same code the daemon uses, fit one model per "
            "feature family, calibrate each threshold to the target alert rate and write the "
            "artifacts, envelopes and model cards to --out."
        ),
    )
    train.add_argument("files", nargs="+", metavar="FILE")
    train.add_argument("--out", type=Path, required=True, metavar="DIR", help="model directory")
    train.add_argument("--config", type=Path, metavar="FILE", help="pipeline YAML")
    train.add_argument(
        "--detector", metavar="SPEC", help="iforest, pyod:ECOD, ... (default: the config's)"
    )
    train.add_argument(
        "--target-alert-rate",
        type=rate_option(below=0.5),
        metavar="RATE",
        help="share of training events above the threshold, below 0.5 (default: the config's)",
    )
    train.add_argument(
        "--seed",
        type=int_option(0, MAX_SEED),
        default=0,
        metavar="N",
        help=f"random seed, 0 to {MAX_SEED} (default 0)",
    )
    train.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    detector = args.detector or config.models.detector
    make_detector(detector)  # an unknown detector: one line now, not after the features
    output_directory(args.out, "models")
    started = time.perf_counter()
    history = _History(args.files, config)
    # Streamed: the frame keeps the numbers, not a million vendor documents.
    frame = build_frame(history.events(), config.features)
    models = train_models(
        frame,
        detector=detector,
        target_alert_rate=args.target_alert_rate or config.models.target_alert_rate,
        seed=args.seed,
    )
    # The newest event time, not the wall clock: the same history gives the same files.
    save_models(models, args.out, history.newest)
    print(_training_summary(models, history.count, time.perf_counter() - started))
    for warning in models.warnings:
        _logger.warning(warning)
    return 0 if len(models) else 1


class _History:
    """The normalized events of the training files, streamed once; counts and newest time."""

    def __init__(self, files: list[str], config: PipelineConfig) -> None:
        self.files = files
        self.config = config
        self.count = 0
        self.newest = datetime(1970, 1, 1, tzinfo=UTC)

    def events(self) -> Iterator[Event]:
        normalizer = build_normalizer(self.config)
        limit = self.config.normalizer.max_record_bytes
        with FileSource(self.files, max_record_bytes=limit) as source:
            for batch in source.batches(5000):
                for event in normalizer.normalize_batch(batch).events:
                    self.count += 1
                    self.newest = max(self.newest, event.time)
                    yield event


def _training_summary(models: ModelSet, events: int, elapsed_s: float) -> str:
    rows = [
        [
            model.family,
            f"{model.window.rows:,}",
            f"{model.window.actors:,}",
            f"{model.calibration.threshold:.4f}",
            str(model.detector.spec.get("name", model.detector.spec)),
        ]
        for model in models
    ]
    rows += [[family, "-", "-", "-", f"skipped: {why}"] for family, why in models.skipped.items()]
    header = ["family", "rows", "actors", "threshold", "detector"]
    return f"{table(header, rows)}\n{events:,} events, {len(models)} models in {elapsed_s:.1f} s"
