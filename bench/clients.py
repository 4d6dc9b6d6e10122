"""kafka-python against confluent-kafka: consume + parse floors, and ``ciwatch run`` on each.

    python bench/clients.py [--people 300] [--days 22] [--seed 7] [--rounds 3] [--no-daemon]

Loads the generated world (300 people x 22 days ≈ 100k records) into a
one-partition topic of the embedded broker, then, for each client, in
alternating order over ``--rounds`` rounds (each in a fresh consumer group):

1. **bare floor**: the client's own consumer (the daemon's consumer settings,
   batches of 2,000) that only ``orjson``-parses each record;
2. **source**: ciwatch's source for that client (``open_source``:
   :class:`~detector.sources.kafka.KafkaSource` or
   :class:`~detector.sources.kafka_confluent.ConfluentSource`), ``poll(2000)``
   + ``orjson``, i.e. the floor plus building the records the pipeline gets.

Rates are records/s from the end of the first batch (the group join is over)
to the last record; the median of the rounds is printed with the range.
Then, unless ``--no-daemon``, ``python -m detector run`` once per client over
the same topic (:func:`daemon.bench_end_to_end`: the bundled rules and
models, a webhook sink). Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
from confluent_kafka import Consumer
from daemon import (
    DaemonProcess,
    WorldIndex,
    bench_end_to_end,
    kafka_settings,
    preload,
    world_records,
)
from kafka import KafkaConsumer

from detector.demo import AlertReceiver
from detector.sources import librdkafka
from detector.sources.broker import EmbeddedBroker
from detector.sources.factory import open_source
from detector.sources.kafka import KafkaClient, KafkaSettings

MAX_RECORDS = 2_000
CLIENTS: list[KafkaClient] = ["kafka-python", "confluent"]

Batches = Callable[[KafkaSettings], Iterator[list[bytes]]]
"""Opens a consumer and yields the values of each poll, forever."""


def kafka_python_bare(settings: KafkaSettings) -> Iterator[list[bytes]]:
    consumer = KafkaConsumer(enable_auto_commit=False, **settings.consumer_config())
    consumer.subscribe(settings.topics)
    try:
        while True:
            fetched = consumer.poll(timeout_ms=1000, max_records=MAX_RECORDS)
            yield [message.value for messages in fetched.values() for message in messages]
    finally:
        consumer.close()


def confluent_bare(settings: KafkaSettings) -> Iterator[list[bytes]]:
    consumer = Consumer(librdkafka.consumer_config(settings))
    consumer.subscribe(settings.topics)
    try:
        while True:
            messages = consumer.consume(MAX_RECORDS, 1.0)
            yield [value for m in messages if m.error() is None and (value := m.value())]
    finally:
        consumer.close()


def ciwatch_source(settings: KafkaSettings) -> Iterator[list[bytes]]:
    with open_source(settings) as source:
        while True:
            yield [record.value for record in source.poll(MAX_RECORDS, 1.0)]


def rate(batches: Iterator[list[bytes]], count: int) -> float:
    """Parse every value until ``count`` are seen; records/s after the first batch."""
    seen, first, started = 0, 0, 0.0
    for batch in batches:
        for value in batch:
            orjson.loads(value)
        seen += len(batch)
        if batch and not first:
            first, started = seen, time.perf_counter()
        if seen >= count:
            break
    elapsed = time.perf_counter() - started
    batches.close()  # type: ignore[attr-defined]  # a generator: closes its consumer
    return (seen - first) / elapsed


def bench_floors(
    broker: EmbeddedBroker, topic: str, count: int, rounds: int
) -> dict[KafkaClient, float]:
    """Prints every rate; returns each client's bare floor (median)."""
    ways: dict[str, dict[KafkaClient, Batches]] = {
        "bare floor": {"kafka-python": kafka_python_bare, "confluent": confluent_bare},
        "source": {"kafka-python": ciwatch_source, "confluent": ciwatch_source},
    }
    rates: dict[tuple[str, KafkaClient], list[float]] = {}
    for number in range(rounds):
        order = CLIENTS if number % 2 == 0 else CLIENTS[::-1]
        for way, opens in ways.items():
            for client in order:
                group = f"bench-{way.replace(' ', '-')}-{client}-{number}"
                settings = kafka_settings(broker, topic, group).model_copy(
                    update={"client": client}
                )
                measured = rate(opens[client](settings), count)
                rates.setdefault((way, client), []).append(measured)
    for (way, client), found in rates.items():
        print(f"{way:<10} {client:<12} {statistics.median(found):>10,.0f} records/s"
              f" (median of {len(found)}; {min(found):,.0f}-{max(found):,.0f})")  # fmt: skip
    return {client: statistics.median(rates[("bare floor", client)]) for client in CLIENTS}


def bench_daemons(
    broker: EmbeddedBroker, topic: str, count: int, floors: dict[KafkaClient, float]
) -> None:
    with tempfile.TemporaryDirectory(prefix="ciwatch-bench-") as tmp:
        for client in CLIENTS:
            print(f"ciwatch run, client {client}:")
            with AlertReceiver() as receiver:
                settings = kafka_settings(broker, topic, f"bench-daemon-{client}")
                settings = settings.model_copy(update={"client": client})
                daemon = DaemonProcess(Path(tmp) / client, settings, receiver.url)
                bench_end_to_end(daemon, count, floors[client])  # ratio to its own floor


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--days", type=int, default=22)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-daemon", action="store_true", help="only the consumer floors")
    args = parser.parse_args()
    values = world_records(args.seed, args.days, args.people)
    print(f"world: seed {args.seed}, {args.people} people x {args.days} days"
          f" = {len(values):,} records")  # fmt: skip
    with EmbeddedBroker() as broker:
        broker.create_topics(["bench"], partitions=1)
        preload(broker, ["bench"] * len(values), values, WorldIndex(values).keys)
        floors = bench_floors(broker, "bench", len(values), args.rounds)
        if not args.no_daemon:
            bench_daemons(broker, "bench", len(values), floors)


if __name__ == "__main__":
    main()
