"""Per-stage cost per event of the pipeline: the baseline for batched execution.

    python bench/stages.py [--people 300] [--days 10] [--seed 7] [--batch 500] [--repeat 3]
                            [--default-gc] [--compiled [--arena-mib MIB]]

A generated world (``ciwatch generate``: ``--people`` x ``--days`` of GitHub,
Okta, Kubernetes and CloudTrail audit logs, with its attacks), serialized as
``all.jsonl`` is (the bytes a Kafka record carries), goes through a pipeline
built from the default config with the bundled rules and models
(``models.dir: bundled``, as ``ciwatch demo``), in batches of ``--batch``
records, as the daemon's intake hands its batches to the pipeline.

The staged run does what :meth:`Pipeline.process` does, step by step in the
same order (the detector's code is not changed; its steps are called here),
with ``time.perf_counter`` around each:

1. decode + normalize: :meth:`Pipeline.normalize` over the batch's RawRecords
   (JSON decode, normalizer, the run's counters);
2. event-time order: ``in_event_time_order`` over the batch's events;
3. dedup: :meth:`Pipeline.without_duplicates` (each event's time read, the batch checked);
4. feature observe: :meth:`FeatureStore.observe_batch` over the events kept;
5. rules: :meth:`RuleEngine.evaluate` per observation, in order;
6. scoring: :meth:`AnomalyScorer.score` over the batch's observations;
7. suppression + risk: the rest of :meth:`Pipeline.process_events` (merging
   rule and model detections in event time, the suppressor, the watermark's
   due alerts, risk) and the alert counters.

Each stage's µs per event (over the events normalized; stage 1 pays for the
records that became no event too), its share of the total, and the events/s
the pipeline would reach if that stage were all it did. Then the staged total
against a plain run (``Pipeline.process`` per batch, a fresh pipeline, the
same batches, timed per batch) — the timers' own cost — and both runs' alert
counts, which must be equal. ``--repeat`` runs of each, alternated; of each
kind, the run with the least total time is printed (two shared cores are
noisy, ±10 % from run to run; the best run is the one least disturbed).
``Pipeline.finish`` (the end of a bounded source) is left out of both.
The collector is set as every ``ciwatch`` command sets it
(:mod:`detector.collector`); ``--default-gc`` keeps CPython's thresholds.
``--compiled`` compiles the numba kernels first, as the daemon does at start-up
(:mod:`detector.jit`: the feature counters in arenas, the scoring kernels);
without it the run is a short replay's (plain counters, NumPy scoring).
``--arena-mib`` sets ``features.arena_bytes`` (the compiled counters' arenas):
small, a world's active actors outnumber them, as a large organisation's may a
worker's. Nothing here asserts a figure; the defaults take under a minute on two cores.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from daemon import world_records

from detector import collector
from detector.alerts.model import Alert
from detector.config import BUNDLED, PipelineConfig, load_config
from detector.detections import Detection
from detector.events.ordering import in_event_time_order
from detector.features.observation import Observation
from detector.jit import compile_all
from detector.pipeline import Pipeline
from detector.sources.record import Position, RawRecord

STAGES = (
    "decode + normalize",
    "event-time order",
    "dedup",
    "feature observe",
    "rules",
    "scoring",
    "suppression + risk",
)


@dataclass(slots=True)
class Run:
    """Seconds per stage (or one "plain" total) and what the run produced."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    events: int = 0
    alerts: int = 0

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def bundled_config() -> PipelineConfig:
    """The default config with the bundled models (as ``detector/demo/run.py`` builds it)."""
    config = load_config(None)
    models = config.models.model_copy(update={"dir": BUNDLED})
    return config.model_copy(update={"models": models})


def batches(values: list[bytes], size: int) -> list[list[RawRecord]]:
    records = [RawRecord(value, Position("world", number)) for number, value in enumerate(values)]
    return [records[start : start + size] for start in range(0, len(records), size)]


def staged_batch(pipeline: Pipeline, records: Sequence[RawRecord], run: Run) -> None:
    """:meth:`Pipeline.process` over one batch, its steps timed apart into ``run``."""
    now, seconds = time.perf_counter, run.seconds
    started = now()
    outcome = pipeline.normalize(records)
    normalized = now()
    events = in_event_time_order(outcome.events)
    ordered = now()
    seconds["decode + normalize"] += normalized - started
    seconds["event-time order"] += ordered - normalized
    started = now()
    kept, times = pipeline.without_duplicates(events)
    checked = now()
    observations = pipeline.features.observe_batch(kept, None, times)
    observed = now()
    detections: list[Detection] = []
    for observation in observations:
        if observation.late:
            pipeline.stats.late_events += 1
        detections.extend(pipeline.rules.evaluate(observation))
    pipeline.features.counted(len(observations))
    evaluated = now()
    dedup, observe, rules = checked - started, observed - checked, evaluated - observed
    seconds["dedup"] += dedup
    seconds["feature observe"] += observe
    seconds["rules"] += rules
    run.alerts += len(rest(pipeline, observations, detections, seconds))
    run.events += len(events)


def rest(
    pipeline: Pipeline,
    observations: list[Observation],
    detections: list[Detection],
    seconds: dict[str, float],
) -> list[Alert]:
    """Scoring, then the rest of :meth:`Pipeline.process_events` and :meth:`Pipeline.detect`."""
    now = time.perf_counter
    started = now()
    scorer = pipeline.scorer
    if pipeline.learner is not None and scorer is not None:  # none here: bundled models
        pipeline.learner.observe(observations)
        scorer.alert_from = pipeline.learner.alert_from
    scored = scorer.score(observations) if scorer is not None else []
    merged = now()
    if scorer is not None:
        detections.extend(scored)
        detections.sort(key=lambda found: found.time)
    alerts = pipeline.suppressor.process(detections)
    watermark = pipeline.features.watermark
    if watermark is not None:
        alerts.extend(pipeline.suppressor.advance(watermark))
    alerts = pipeline.risk.process(alerts)
    pipeline._keep_out_of_training(alerts)
    pipeline.stats.add_alerts(alerts)
    seconds["scoring"] += merged - started
    seconds["suppression + risk"] += now() - merged
    return alerts


def staged_run(config: PipelineConfig, work: list[list[RawRecord]]) -> Run:
    pipeline, run = Pipeline.from_config(config), Run()
    for records in work:
        staged_batch(pipeline, records, run)
    return run


def plain_run(config: PipelineConfig, work: list[list[RawRecord]]) -> Run:
    pipeline, run = Pipeline.from_config(config), Run(seconds={"plain": 0.0})
    now = time.perf_counter
    for records in work:
        started = now()
        outcome = pipeline.process(records)
        run.seconds["plain"] += now() - started
        run.events += len(outcome.events)
        run.alerts += len(outcome.alerts)
    return run


def best(runs: list[Run]) -> Run:
    """The run that took the least time in all: its stages add up to its total."""
    return min(runs, key=lambda run: run.total)


def print_table(staged: Run, plain: Run, records: int) -> None:
    total = staged.total
    print("| stage | µs/event | share | events/s if it were the only stage |")
    print("|---|---:|---:|---:|")
    for stage, seconds in staged.seconds.items():
        per_event = seconds / staged.events * 1e6
        print(
            f"| {stage} | {per_event:.1f} | {seconds / total:.1%}"
            f" | {staged.events / seconds:,.0f} |"
        )
    per_event = total / staged.events * 1e6
    print(f"| **total (staged)** | {per_event:.1f} | 100% | {staged.events / total:,.0f} |")
    plain_s = plain.seconds["plain"]
    print(
        f"plain Pipeline.process: {plain_s / plain.events * 1e6:.1f} µs/event,"
        f" {plain.events / plain_s:,.0f} events/s; the staged run's timers add"
        f" {total / plain_s - 1:+.1%} ({records:,} records, {staged.events:,} events;"
        f" alerts: staged {staged.alerts}, plain {plain.alerts})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=500, help="records per batch (the daemon's)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    parser.add_argument(
        "--default-gc", action="store_true", help="CPython's collector thresholds, not ciwatch's"
    )
    parser.add_argument(
        "--compiled", action="store_true", help="compile the numba kernels first, as the daemon"
    )
    parser.add_argument(
        "--arena-mib", type=int, default=None, help="features.arena_bytes, MiB (with --compiled)"
    )
    args = parser.parse_args()
    if not args.default_gc:
        collector.tune()  # as every ciwatch command does
    if args.compiled:
        print(f"{compile_all()} kernels compiled")
    values = world_records(args.seed, args.days, args.people)
    work = batches(values, args.batch)
    config = bundled_config()
    if args.arena_mib is not None:
        features = config.features.model_copy(update={"arena_bytes": args.arena_mib << 20})
        config = config.model_copy(update={"features": features})
    staged: list[Run] = []
    plain: list[Run] = []
    for number in range(args.repeat):
        # The previous run's pipeline is garbage in a cycle (rules → pipeline): collect it
        # first, or its objects slow the next run's collections. Alternate who goes first.
        for kind in (staged, plain)[:: 1 if number % 2 == 0 else -1]:
            gc.collect()
            kind.append((staged_run if kind is staged else plain_run)(config, work))
    arena = "" if args.arena_mib is None else f", arenas of {args.arena_mib} MiB"
    print(
        f"{args.people} people x {args.days} days (seed {args.seed}), batches of {args.batch}"
        f" records, default rules + bundled models{arena}, best of {args.repeat}:"
    )
    print_table(best(staged), best(plain), len(values))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
