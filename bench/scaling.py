"""What the keyed stages of scale-out cost, and whether they change any alert.

    python bench/scaling.py [--people 300] [--days 10] [--seed 1001] [--partitions 1 6 12]
                            [--batch 500] [--compiled]

Generates a world (with its attacks), normalizes it once, then times, on the
same events in event-time order:

- one pipeline (``Pipeline.detect`` in batches of 500, as ``replay`` runs);
- the scale-out stages in memory (:func:`detector.scale.local.run_in_memory`)
  over each partition count: every event encoded to the IP stage's topic,
  decoded, detected on, encoded with its IP counts for the actor stage,
  decoded and detected on again — the work a replica of each stage does per
  event, without the broker.

It prints events/s and µs of CPU per event (this thread's: everything runs in
it) for each, the records each stage read, and whether the alert ids equal the
single pipeline's (they must). ``--compiled`` compiles the numba kernels first,
as the daemon does at start-up; ``--batch``: events per batch of each (the
daemon's are up to 2,000 records). Not a test: figures only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from detector.config import PipelineConfig
from detector.events.model import Event
from detector.events.ordering import in_event_time_order
from detector.generator import MERGED, generate, write
from detector.jit import compile_all
from detector.pipeline import Pipeline
from detector.scale.local import run_in_memory
from detector.sources.files import FileSource


def normalized(seed: int, days: int, people: int) -> list[Event]:
    with tempfile.TemporaryDirectory() as directory:
        write(generate(seed=seed, days=days, people=people), Path(directory))
        pipeline = Pipeline.from_config(PipelineConfig())
        events: list[Event] = []
        with FileSource([Path(directory) / MERGED]) as source:
            for batch in source.batches(2000):
                events.extend(pipeline.normalize(batch).events)
    return in_event_time_order(events)


def one_pipeline(
    config: PipelineConfig, events: list[Event], batch: int
) -> tuple[set[str], float, float]:
    """The alert ids of one pipeline, its wall seconds and its CPU seconds."""
    pipeline = Pipeline.from_config(config)
    started, cpu = time.perf_counter(), time.thread_time()
    ids = {
        a.id for i in range(0, len(events), batch) for a in pipeline.detect(events[i : i + batch])
    }
    ids |= {alert.id for alert in pipeline.finish()}
    return ids, time.perf_counter() - started, time.thread_time() - cpu


def rates(events: int, seconds: float, cpu: float) -> str:
    return f"{events / seconds:,.0f} events/s, {cpu / events * 1e6:.1f} µs of CPU per event"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1001)
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 6, 12])
    parser.add_argument("--batch", type=int, default=500, help="events per batch")
    parser.add_argument("--compiled", action="store_true", help="compile the kernels first")
    args = parser.parse_args()
    if args.compiled:
        compile_all()
    config = PipelineConfig()
    events = normalized(args.seed, args.days, args.people)
    expected, seconds, cpu = one_pipeline(config, events, args.batch)
    print(f"{len(events):,} events, {len(expected)} alerts")
    print(f"one pipeline: {rates(len(events), seconds, cpu)}")
    for partitions in args.partitions:
        started, cpu_started = time.perf_counter(), time.thread_time()
        alerts, records = run_in_memory(config, events, partitions=partitions, batch=args.batch)
        seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        same = {alert.id for alert in alerts} == expected
        read = ", ".join(f"{stage} {count:,}" for stage, count in records.items())
        print(
            f"stages, {partitions} partitions: {rates(len(events), seconds, cpu)} "
            f"(records read: {read}); alert ids {'identical' if same else 'DIFFERENT'}"
        )


if __name__ == "__main__":
    main()
