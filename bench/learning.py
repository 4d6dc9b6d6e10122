"""What learning where ciwatch runs costs: one training at the full history bound, and a replay.

    python bench/learning.py [--detectors ensemble iforest] [--per-day 2000]
                             [--people 100] [--days 20] [--learning-period 2d] [--seed 7]

1. **One training at the history's bound.** A state directory's ``history/``
   is filled to ``models.learn``'s bound: ``--per-day`` rows (2,000 by default)
   for each of the four families on each of window + check period days (30 + 1).
   The rows are real: a generated world (``ciwatch generate``, 60 people over
   10 days, no attacks) is normalized and run through the pipeline's
   :class:`~detector.features.store.FeatureStore`; its observations, moved to
   each of the 31 days at their own time of day under new event ids, fill the
   days through :meth:`FeatureHistory.observe` and ``flush`` (sealed parquet
   days, as the daemon writes them). Then, per detector, a **fresh process**
   opens a :class:`~detector.scoring.learner.Learner` on a copy of that
   directory and times, apart:

   - :meth:`Learner.prepare` at the cut the learner is due at: reading the
     frames, on the daemon loop's thread, so consumption pauses this long;
   - :meth:`TrainingJob.run`: fit, check on the held-out day and publish a
     generation, on the daemon's background thread.

   Memory is the process's peak RSS (``VmHWM`` from /proc, reset with
   ``clear_refs`` before each step, as ``bench/memory.py`` does: what the
   kernel's OOM killer counts) during ``prepare`` and during ``run``, each
   above its RSS just before ``prepare`` (the frames ``prepare`` returns stay
   held through ``run``; the larger of the two is the training's headroom).
   scikit-learn, which a process loads at its first training, is imported
   before and its RSS shown apart.

2. **The cost of learning on a replay.** ``python -m detector replay`` on a
   generated world (``--people`` x ``--days``, with its attacks) with the
   bundled models, then with ``--learn`` (a config whose
   ``models.learn.learning_period`` is ``--learning-period``; the rest is the
   default: daily retraining on a 30-day window). Each replay runs as its own
   process: events/s as the replay prints it, the process's wall time and
   peak RSS (``wait4``), and, with ``--learn``, the trainings' count and their
   time (``prepare`` + ``run`` of each, timed inside that process; a replay
   trains synchronously, so it is part of its wall time).

3. **The state directory after that replay**: bytes and files of
   ``history/`` and ``models/``.

Nothing here asserts a figure. The defaults take about 3 minutes on two cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from memory import proc_status, reset_peak, rss

from detector.cli import main as ciwatch
from detector.config import load_config
from detector.features.families import FAMILIES
from detector.features.observation import Observation
from detector.features.store import FeatureStore
from detector.generator import generate, write
from detector.normalizing import build_normalizer
from detector.scoring.history import FeatureHistory
from detector.scoring.learner import Learner, TrainingJob
from detector.scoring.training import MIN_HISTORY_DAYS
from detector.sources.record import Position, RawRecord

MiB = 2**20
DAY = timedelta(days=1)
_START = datetime(2026, 1, 5, tzinfo=UTC)
_AGE = "actor.age_days"


# -- 1. one training at the bound ---------------------------------------------------------


def template_rows(seed: int) -> dict[str, list[Observation]]:
    """Per family, the observations of a generated world a history would keep as rows."""
    world = generate(seed=seed, days=10, people=60, attacks=False)
    config = load_config(None)
    normalizer = build_normalizer(config)
    records = [
        RawRecord(orjson.dumps(record.doc), Position("world", number))
        for number, record in enumerate(world.records)
    ]
    store = FeatureStore(config.features)
    rows: dict[str, list[Observation]] = {name: [] for name in FAMILIES}
    for event in normalizer.normalize_batch(records).events:
        observation = store.observe(dataclasses.replace(event, raw={}))
        if observation.late or observation.features.get(_AGE, 0.0) < MIN_HISTORY_DAYS:
            continue
        for name, family in FAMILIES.items():
            if family.applies(observation.event):
                rows[name].append(observation)
    return rows


def day_of_rows(
    templates: dict[str, list[Observation]], day: int, per_day: int
) -> Iterator[Observation]:
    """``per_day`` observations per family on ``day``, each template at its own time of day."""
    midnight = _START + day * DAY
    for name, observations in templates.items():
        for index in range(per_day):
            template = observations[(day * per_day + index) % len(observations)]
            event = template.event
            of_day = event.time - event.time.replace(hour=0, minute=0, second=0, microsecond=0)
            moved = dataclasses.replace(
                event, id=f"bench:{name}:{day}:{index}", time=midnight + of_day
            )
            yield dataclasses.replace(template, event=moved)


def fill_history(directory: Path, per_day: int, seed: int) -> tuple[dict[str, int], float]:
    """A full history in ``directory``/history (the learner's bounds); rows per family, seconds."""
    settings = load_config(None).models.learn.model_copy(update={"per_day_rows": per_day})
    days = settings.window.days + settings.check_period.days
    started = time.perf_counter()
    templates = template_rows(seed)
    counts = ", ".join(f"{name} {len(rows):,}" for name, rows in templates.items())
    print(f"template rows from the generated world: {counts}")
    history = FeatureHistory(
        directory / "history",
        per_day=per_day,
        keep_days=days + 1,  # as Learner opens it
    )
    for day in range(days):
        history.observe(list(day_of_rows(templates, day, per_day)))
        history.flush()
    return history.rows(), time.perf_counter() - started


def train_in_child(state: Path, detector: str, per_day: int) -> dict[str, Any]:
    """One training on a copy of ``state``, in a fresh process: its figures."""
    with tempfile.TemporaryDirectory(prefix="ciwatch-bench-train-") as tmp:
        shutil.copytree(state / "history", Path(tmp) / "history")
        output = subprocess.run(
            [sys.executable, __file__, "--train-child", tmp, detector, str(per_day)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    result: dict[str, Any] = orjson.loads(output.splitlines()[-1])
    return result


def train_child(directory: str, detector: str, per_day: int) -> None:
    """Open the learner, prepare and run its due training; print the figures as JSON."""
    config = load_config(None)
    settings = config.models.learn.model_copy(update={"per_day_rows": per_day})
    started = time.perf_counter()
    learner = Learner(
        Path(directory),
        settings,
        detector=detector,
        target_alert_rate=config.models.target_alert_rate,
    )
    opened = time.perf_counter() - started
    cut = learner.due()
    if cut is None:
        raise SystemExit("no training due: the history is too small")
    # A process's first training loads scikit-learn (the iforest member): counted apart,
    # since a daemon that has scored with a generation has it loaded already.
    unloaded = rss()
    import sklearn.ensemble  # type: ignore[import-untyped]  # noqa: F401

    before = rss()
    reset_peak()
    started = time.perf_counter()
    job = learner.prepare(cut)
    prepared = time.perf_counter() - started
    prepare_peak = proc_status("VmHWM") - before
    reset_peak()
    started = time.perf_counter()
    result = job.run()
    ran = time.perf_counter() - started
    figures = {
        "open_s": opened,
        "prepare_s": prepared,
        "run_s": ran,
        "libraries": before - unloaded,
        "before": before,
        "prepare_peak": prepare_peak,
        "run_peak": proc_status("VmHWM") - before,
        "train_rows": sum(len(frame) for frame in job.train.values()),
        "recent_rows": sum(len(frame) for frame in job.recent.values()),
        "published": result.generation is not None,
        "check": result.check.summary(),
    }
    print(orjson.dumps(figures).decode())


def bench_training(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ciwatch-bench-history-") as tmp:
        rows, seconds = fill_history(Path(tmp), args.per_day, args.seed)
        on_disk = tree_size(Path(tmp) / "history")
        print(
            f"history: {sum(rows.values()):,} rows"
            f" ({', '.join(f'{name} {count:,}' for name, count in rows.items())})"
            f" in {on_disk[0] / MiB:.1f} MiB, {on_disk[1]} files; filled in {seconds:.0f} s"
        )
        print(
            "| detector | open the learner | prepare (loop thread) | run: fit + check + publish"
            " (background) | train / held-out rows | RSS before (+ scikit-learn loaded) | peak"
            " above it: prepare / run | check |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for detector in args.detectors:
            row = training_row(detector, train_in_child(Path(tmp), detector, args.per_day))
            print(row, flush=True)


def training_row(detector: str, f: dict[str, Any]) -> str:
    outcome = "published" if f["published"] else "rejected"
    return (
        f"| {detector} | {f['open_s']:.2f} s | {f['prepare_s']:.2f} s | {f['run_s']:.1f} s"
        f" | {f['train_rows']:,} / {f['recent_rows']:,}"
        f" | {f['before'] / MiB:.0f} MiB (+{f['libraries'] / MiB:.0f})"
        f" | +{f['prepare_peak'] / MiB:.0f} / +{f['run_peak'] / MiB:.0f} MiB"
        f" | {outcome}: {f['check']} |"
    )


# -- 2. and 3. a replay with and without learning ---------------------------------------------


def replay(world: Path, work: Path, options: list[str]) -> dict[str, Any]:
    """``python -m detector replay`` (through this file, timing trainings) as a process."""
    figures = work / "trainings.json"
    command = [
        sys.executable,
        __file__,
        "--replay-child",
        str(figures),
        "replay",
        str(world),
        "--alerts-out",
        str(work / "alerts.jsonl"),
        "--progress",
        "never",
        *options,
    ]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    summary = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"replay failed:\n{summary}")
    found = re.search(r"^events\s+([\d,]+).*?^throughput\s+([\d,]+) events/s", summary, re.M | re.S)
    assert found is not None, summary
    return {
        "events": int(found[1].replace(",", "")),
        "rate": int(found[2].replace(",", "")),
        "wall": wall,
        "peak": usage.ru_maxrss * 1024,
        "trainings": orjson.loads(figures.read_bytes()) if figures.exists() else [],
    }


def replay_child(figures: str, argv: list[str]) -> None:
    """Run the ciwatch command ``argv``, timing every training; their figures to ``figures``."""
    trainings: list[dict[str, Any]] = []
    prepare, run = Learner.prepare, TrainingJob.run

    def timed_prepare(learner: Learner, cut: datetime) -> TrainingJob:
        started = time.perf_counter()
        job = prepare(learner, cut)
        trainings.append({"prepare_s": time.perf_counter() - started})
        return job

    def timed_run(job: TrainingJob) -> Any:
        started = time.perf_counter()
        result = run(job)
        trainings[-1].update(run_s=time.perf_counter() - started, published=bool(result.generation))
        return result

    Learner.prepare = timed_prepare  # type: ignore[method-assign, assignment]
    TrainingJob.run = timed_run  # type: ignore[method-assign, assignment]
    status = ciwatch(argv)
    if trainings:
        Path(figures).write_bytes(orjson.dumps(trainings))
    raise SystemExit(status)


def tree_size(directory: Path) -> tuple[int, int]:
    """Bytes and number of the files under ``directory``."""
    files = [path for path in directory.rglob("*") if path.is_file()]
    return sum(path.stat().st_size for path in files), len(files)


def bench_replay(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ciwatch-bench-learning-") as tmp:
        work = Path(tmp)
        world = write(generate(args.seed, args.days, args.people), work / "world")["all.jsonl"]
        config = work / "learn.yaml"
        config.write_text(f"models:\n  learn:\n    learning_period: {args.learning_period}\n")
        print(
            f"\nreplay of {args.people} people x {args.days} days"
            f" (learning period {args.learning_period}):"
        )
        print(
            "| replay | events | events/s | wall time (process) | peak RSS | trainings"
            " (published) | time in trainings: prepare + run | share of the wall time |"
            " wall time outside trainings |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        runs = {
            "bundled models": ["--config", str(config)],
            "--learn": ["--config", str(config), "--learn", "--learn-dir", str(work / "state")],
        }
        for name, options in runs.items():
            print_replay(name, replay(world, work, options))
        for part in ("history", "models"):
            size, files = tree_size(work / "state" / part)
            print(f"state directory after --learn: {part}/ {size / MiB:.2f} MiB in {files} files")


def print_replay(name: str, f: dict[str, Any]) -> None:
    trainings = f["trainings"]
    prepared = sum(t["prepare_s"] for t in trainings)
    ran = sum(t.get("run_s", 0.0) for t in trainings)
    published = sum(1 for t in trainings if t.get("published"))
    spent = f"{prepared:.1f} + {ran:.1f} s" if trainings else "-"
    share = f"{(prepared + ran) / f['wall']:.0%}" if trainings else "-"
    outside = f["wall"] - prepared - ran
    print(
        f"| {name} | {f['events']:,} | {f['rate']:,} | {f['wall']:.1f} s"
        f" | {f['peak'] / MiB:.0f} MiB | {len(trainings)} ({published}) | {spent} | {share}"
        f" | {outside:.1f} s |",
        flush=True,
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--replay-child":
        replay_child(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--detectors", nargs="+", default=["ensemble", "iforest"])
    parser.add_argument("--per-day", type=int, default=2000, help="models.learn.per_day_rows")
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--learning-period", default="2d")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-training", action="store_true", help="only the replays")
    parser.add_argument("--skip-replay", action="store_true", help="only the training")
    parser.add_argument("--train-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_child:
        directory, detector, per_day = args.train_child
        train_child(directory, detector, int(per_day))
        return
    if not args.skip_training:
        bench_training(args)
    if not args.skip_replay:
        bench_replay(args)


if __name__ == "__main__":
    main()
