"""Normalization throughput: files in memory and Kafka (embedded broker) → Events.

    python bench/normalize.py [--repeat 20] [--kafka 50000]

Prints events/s for the normalizer alone over the copied vendor samples
(repeated), and for Kafka consume + normalize on the embedded broker, plus the
process's peak RSS. Figures go into the README; nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from kafka import KafkaProducer

from detector.events.normalizer import Normalizer
from detector.events.taxonomy import Taxonomy
from detector.sources.broker import EmbeddedBroker
from detector.sources.files import FileSource
from detector.sources.kafka import KafkaSettings, KafkaSource
from detector.sources.record import RawRecord

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "samples"


def sample_records(directory: Path = SAMPLES) -> list[RawRecord]:
    with FileSource(sorted(directory.glob("*.jsonl"))) as source:
        return [r for batch in source.batches() for r in batch]


def bench_normalizer(records: list[RawRecord], repeat: int) -> None:
    normalizer = Normalizer(Taxonomy.bundled())
    normalizer.normalize_batch(records)  # warm the taxonomy caches
    started = time.perf_counter()
    events = dead = 0
    for _ in range(repeat):
        result = normalizer.normalize_batch(records)
        events, dead = events + len(result.events), dead + len(result.dead_letters)
    elapsed = time.perf_counter() - started
    total = len(records) * repeat
    print(
        f"normalizer: {total} records ({events} events, {dead} dead letters) in {elapsed:.2f} s"
        f" = {total / elapsed:,.0f} records/s, {elapsed / total * 1e6:.1f} µs/record"
    )


def bench_kafka(records: list[RawRecord], count: int) -> None:
    normalizer = Normalizer(Taxonomy.bundled())
    with EmbeddedBroker() as broker:
        broker.create_topics(["bench"], partitions=4)
        producer = KafkaProducer(
            bootstrap_servers=broker.bootstrap, linger_ms=20, batch_size=1 << 18
        )
        for index in range(count):
            producer.send("bench", records[index % len(records)].value)
        producer.flush()
        settings = KafkaSettings(
            bootstrap_servers=[broker.bootstrap], topics=["bench"], group_id="bench",
            session_timeout_ms=6000, heartbeat_interval_ms=1000,
        )  # fmt: skip
        with KafkaSource(settings) as source:
            seen, started = 0, None
            while seen < count:
                batch = source.poll(max_records=2000, timeout_s=1.0)
                if batch and started is None:
                    started = time.perf_counter()  # exclude the consumer-group join
                normalizer.normalize_batch(batch)
                source.commit(r.position for r in batch)
                seen += len(batch)
            elapsed = time.perf_counter() - (started or time.perf_counter())
    print(
        f"kafka consume+normalize+commit: {seen} records in {elapsed:.2f} s"
        f" = {seen / elapsed:,.0f} records/s (after group join)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--kafka", type=int, default=50_000, help="records through Kafka (0: skip)")
    parser.add_argument(
        "--samples",
        type=Path,
        default=SAMPLES,
        metavar="DIR",
        help="the *.jsonl sample files to normalize (default: tests/data/samples)",
    )
    args = parser.parse_args()
    records = sample_records(args.samples)
    bench_normalizer(records, args.repeat)
    if args.kafka:
        bench_kafka(records, args.kafka)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
