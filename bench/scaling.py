"""What the keyed stages of scale-out cost, and whether they change any alert.

    python bench/scaling.py [--people 300] [--days 10] [--seed 1001] [--partitions 1 6 12]

Generates a world (with its attacks), normalizes it once, then times, on the
same events in event-time order:

- one pipeline (``Pipeline.detect`` in batches of 500, as ``replay`` runs);
- the scale-out stages in memory (:func:`detector.scale.local.run_in_memory`)
  over each partition count: every event encoded to the IP stage's topic,
  decoded, detected on, encoded with its IP counts for the actor stage,
  decoded and detected on again — the work a replica of each stage does per
  event, without the broker.

It prints events/s for each, the records each stage read, and whether the
alert ids equal the single pipeline's (they must). Not a test: figures only.
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


def one_pipeline(config: PipelineConfig, events: list[Event]) -> tuple[set[str], float]:
    pipeline = Pipeline.from_config(config)
    started = time.perf_counter()
    ids = {a.id for i in range(0, len(events), 500) for a in pipeline.detect(events[i : i + 500])}
    ids |= {alert.id for alert in pipeline.finish()}
    return ids, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1001)
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 6, 12])
    args = parser.parse_args()
    config = PipelineConfig()
    events = normalized(args.seed, args.days, args.people)
    expected, seconds = one_pipeline(config, events)
    print(f"{len(events):,} events, {len(expected)} alerts")
    print(f"one pipeline: {len(events) / seconds:,.0f} events/s")
    for partitions in args.partitions:
        started = time.perf_counter()
        alerts, records = run_in_memory(config, events, partitions=partitions)
        seconds = time.perf_counter() - started
        same = {alert.id for alert in alerts} == expected
        read = ", ".join(f"{stage} {count:,}" for stage, count in records.items())
        print(
            f"stages, {partitions} partitions: {len(events) / seconds:,.0f} events/s "
            f"(records read: {read}); alert ids {'identical' if same else 'DIFFERENT'}"
        )


if __name__ == "__main__":
    main()
