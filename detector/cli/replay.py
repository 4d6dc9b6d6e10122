"""``ciwatch replay``: the detection pipeline, offline, over log files in event-time order.

Every record is normalized first (streaming); the events are sorted by event
time in bounded memory (:class:`~detector.events.ordering.EventSorter`, which
spills sorted runs to temporary files past ``--sort-memory``) and then go
through detection in that order. So the same set of files, in any order or
split any way, gives the same alerts.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, Never

from tqdm import tqdm

from detector.assembly import learns
from detector.cli.normalize import dead_letter_file, write_dead_letter
from detector.cli.options import add_rules_option, with_rule_packs
from detector.cli.report import learning_summary, replay_summary
from detector.config import PipelineConfig, load_config
from detector.errors import ConfigError
from detector.events.model import DeadLetter, Event
from detector.events.ordering import DEFAULT_MEMORY_BUDGET, EventSorter
from detector.pipeline import Pipeline
from detector.sinks.base import Sink
from detector.sinks.fanout import deliver
from detector.sinks.file import AlertsFileError, JsonlFileSink
from detector.sources.files import FileSource

__all__ = ["add_command", "memory_size", "replay_files"]

_BATCH = 500
_SIZE = re.compile(r"(\d+)\s*([kmg]?)(i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = commands.add_parser(
        "replay",
        help="run detection over log files, alerts to a file",
        description=(
            "Run the same pipeline as the daemon over files and directories (walked "
            "recursively; gzip or zstd; JSON Lines, JSON arrays, concatenated or pretty-printed "
            "objects, detected per file), with "
            "every event sorted by event time first (in bounded memory, see --sort-memory): "
            "deterministic, the same events in any file order or split give the same alerts "
            "and ids. Ends with a summary table on stderr."
        ),
    )
    replay.add_argument(
        "files", nargs="+", metavar="FILE", help="a file, a directory, or '-' for stdin"
    )
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
        "--learn",
        action="store_true",
        help=(
            "learn the models from these files as the daemon would from an empty state "
            "(models.learn: learning period, daily retraining, checks), instead of using "
            "fixed models"
        ),
    )
    replay.add_argument(
        "--learn-dir",
        type=Path,
        metavar="DIR",
        help="with --learn: keep the history and model generations here (default: a "
        "temporary directory, removed at the end); an existing one is continued",
    )
    replay.add_argument(
        "--alerts-out", type=Path, metavar="FILE", required=True, help="alerts as JSONL"
    )
    replay.add_argument(
        "--dead-letters", type=Path, metavar="FILE", help="dead letters as JSONL (default: count)"
    )
    replay.add_argument(
        "--sort-memory",
        type=memory_size,
        default=DEFAULT_MEMORY_BUDGET,
        metavar="SIZE",
        help=(
            "events held in memory while sorting them by event time, as serialized bytes "
            "(e.g. 64MiB, 512M, 2G; default 64MiB); beyond it sorted runs go to temporary files"
        ),
    )
    replay.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="progress bar on stderr (auto: only on a terminal)",
    )
    add_rules_option(replay)
    replay.set_defaults(handler=_run_replay)


def _run_replay(args: argparse.Namespace) -> int:
    config = with_model_options(load_config(args.config), args.models, args.no_models)
    config = with_rule_packs(config, args.rules)
    with _learn_dir(args, config) as learn_dir:
        pipeline = Pipeline.from_config(config, learn_dir=learn_dir)
        return _replay(args, config, pipeline)


@contextlib.contextmanager
def _learn_dir(args: argparse.Namespace, config: PipelineConfig) -> Iterator[Path | None]:
    """The state directory ``--learn`` learns in (a temporary one unless ``--learn-dir``)."""
    if not args.learn:
        if args.learn_dir is not None:
            raise ConfigError("--learn-dir needs --learn", where="--learn-dir")
        yield None
        return
    if not learns(config):
        what = "--models" if args.models else "models.dir" if config.models.dir else "config"
        raise ConfigError("--learn needs models.dir null and models.learn.enabled", where=what)
    if args.learn_dir is not None:
        args.learn_dir.mkdir(parents=True, exist_ok=True)
        yield args.learn_dir
        return
    with tempfile.TemporaryDirectory(prefix="ciwatch-learn-") as temporary:
        yield Path(temporary)


def _replay(args: argparse.Namespace, config: PipelineConfig, pipeline: Pipeline) -> int:
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    started = time.perf_counter()
    try:
        with (
            JsonlFileSink(args.alerts_out, truncate=True) as sink,
            dead_letter_file(args.dead_letters) as dead_file,
            EventSorter(args.sort_memory) as sorter,
        ):
            replay_files(
                args.files,
                pipeline,
                [sink],
                sorter,
                on_dead_letters=lambda dead: _keep_dead_letters(dead, dead_file),
                max_record_bytes=config.normalizer.max_record_bytes,
                show_progress=show,
            )
    except AlertsFileError as exc:  # the daemon pauses on it; a replay has nobody to wait for
        raise ConfigError(f"cannot write alerts: {exc.strerror}", where=exc.filename) from None
    elapsed = time.perf_counter() - started
    print(replay_summary(pipeline.stats, elapsed), file=sys.stderr)
    if pipeline.learner is not None:
        print(learning_summary(pipeline), file=sys.stderr)
    if sorter.runs_written:
        print(
            f"sorted in {sorter.runs_written:,} runs on disk "
            f"({sorter.bytes_spilled / (1 << 20):,.1f} MiB written)",
            file=sys.stderr,
        )
    return 0


def replay_files(
    files: Sequence[str | Path],
    pipeline: Pipeline,
    sinks: Sequence[Sink],
    sorter: EventSorter,
    *,
    on_dead_letters: Callable[[list[DeadLetter]], None] | None = None,
    max_record_bytes: int = 1 << 20,
    show_progress: bool = False,
) -> None:
    """Normalize every record of ``files``, then detect over the events in event-time order.

    Dead letters are handed to ``on_dead_letters`` as they are found; alerts
    go to every sink batch by batch, then the pipeline's final re-sends.
    """
    with (
        FileSource(files, max_record_bytes=max_record_bytes) as source,
        _bar(show_progress, "reading", " records") as bar,
    ):
        for batch in source.batches(_BATCH):
            outcome = pipeline.normalize(batch)
            if on_dead_letters and outcome.dead_letters:
                on_dead_letters(outcome.dead_letters)
            for event in outcome.events:
                sorter.add(event)
            bar.update(len(batch))
    hourly = pipeline.learner is not None
    hour = -1
    with _bar(show_progress, "detecting", " events", total=sorter.events) as bar:
        for events in _batches(sorter.sorted_events(), hourly=hourly):
            if hourly and _hour(events[0]) != hour:
                hour = _hour(events[0])
                _hour_starts(pipeline, events[0])
            deliver(sinks, pipeline.detect(events))
            bar.set_postfix(alerts=pipeline.stats.alerts.total(), refresh=False)
            bar.update(len(events))
    if pipeline.learner is not None:
        pipeline.learner.history.flush()
    deliver(sinks, pipeline.finish())


def _hour_starts(pipeline: Pipeline, first: Event) -> None:
    """At the first batch of an hour: write the history at a new day (bounded memory, kept
    in --learn-dir) and train if due, as the daemon does. Only here: a later batch of the
    hour would count rows past the cut, making when it trains depend on the batch size."""
    learner = pipeline.learner
    latest = learner.latest if learner is not None else None
    if learner is not None and latest is not None and latest.date() != first.time.date():
        learner.history.flush()
    pipeline.train_if_due(first.time)


def memory_size(text: str) -> int:
    """A byte count from ``64MiB``, ``512M``, ``2G``, ``65536`` (binary units)."""
    found = _SIZE.fullmatch(text.strip())
    if found is None or int(found[1]) == 0:
        raise argparse.ArgumentTypeError(f"expected a size like 64MiB or 512M, got {text!r}")
    return int(found[1]) * _UNITS[found[2].lower()]


def _batches(events: Iterator[Event], *, hourly: bool = False) -> Iterator[list[Event]]:
    """Batches of at most :data:`_BATCH` events; ``hourly``: none spans two hours of event
    time, so training at the turn of an hour sees the same rows whatever the batch size."""
    if not hourly:
        while chunk := list(islice(events, _BATCH)):
            yield chunk
        return
    batch: list[Event] = []
    for event in events:
        if batch and (len(batch) >= _BATCH or _hour(event) != _hour(batch[0])):
            yield batch
            batch = []
        batch.append(event)
    if batch:
        yield batch


def _hour(event: Event) -> int:
    return int(event.time.timestamp() // 3600)


def _bar(show: bool, what: str, unit: str, total: int | None = None) -> tqdm[Never]:
    return tqdm(
        disable=not show, desc=what, unit=unit, total=total, file=sys.stderr, dynamic_ncols=True
    )


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
