"""A scaled-out consumer group grows 1 → 3 → 1 while events stream in: exactly replay's alerts.

A generated organisation streams into a six-partition topic while the group
changes under it: one replica, then three (the second SIGKILLed while the third
joins, so in the middle of that rebalance), then one again (the third stopped).
The replicas hand each stage their events at their own pace, some from offsets
read again after the kill; the stage partitions put them back in event time
through their producers' marks (detector.scale.inbox). Together they deliver
exactly the alert ids a single ``ciwatch replay`` of the same records raises:
nothing lost, and nothing twice except the same id sent again.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from detector.sources.broker import EmbeddedBroker, free_port
from tests.integration.running import Daemon, delivered_ids, expected_ids, metrics, total, wait_for
from tests.integration.test_daemon_partitions import PARTITIONS
from tests.integration.test_scale_stages import committed, consumed, quiet, scaled_config
from tests.receiver import Receiver

pytestmark = pytest.mark.integration

STREAM_S = 40.0
"""How long the organisation takes to stream in."""


class Stream(threading.Thread):
    """Produces ``values`` in order, record ``i`` to partition ``i % 6``, over :data:`STREAM_S`."""

    def __init__(self, broker: EmbeddedBroker, topic: str, values: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.broker, self.topic, self.values = broker, topic, values
        self.sent = 0
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            producer = KafkaProducer(bootstrap_servers=self.broker.bootstrap, linger_ms=5)
            started, per_record = time.monotonic(), STREAM_S / len(self.values)
            for number, value in enumerate(self.values):
                producer.send(self.topic, value=value, partition=number % PARTITIONS)
                self.sent = number + 1
                ahead = started + number * per_record - time.monotonic()
                if ahead > 0.05:
                    producer.flush()
                    time.sleep(ahead)  # pacing the producer, not waiting for a condition
            producer.flush()
            producer.close()
        except BaseException as exc:  # reported by the test, which would else wait in vain
            self.failure = exc


def test_a_group_scaled_1_3_1_with_a_replica_killed_in_a_rebalance_raises_replays_alerts(
    broker: EmbeddedBroker, world: list[bytes], tmp_path: Path, receiver: Receiver
) -> None:
    topic = "events-scale-group"
    broker.create_topics([topic], partitions=PARTITIONS)
    names = ("first", "second", "third")
    ports = {name: free_port() for name in names}
    configs = {}
    for name in names:
        (tmp_path / name).mkdir()
        configs[name] = scaled_config(broker, topic, ports[name], receiver.url, tmp_path / name)
    expected = expected_ids(configs["first"], world, tmp_path)
    actors = f"{topic}.by-actor"

    def at_work(name: str) -> bool:
        return consumed(ports[name], actors) > 0

    stream = Stream(broker, topic, world)
    stream.start()
    first = Daemon(configs["first"])
    wait_for(
        lambda: consumed(ports["first"], topic) >= len(world) // 6, "the first replica at work"
    )
    second = Daemon(configs["second"])  # 1 → 2
    wait_for(lambda: at_work("second"), "the second replica at work")
    third = Daemon(configs["third"])  # → 3: the group rebalances again
    wait_for(lambda: consumed(ports["third"]) > 0 or stream.sent == len(world), "the third joining")
    assert second.stop(signal.SIGKILL) == -signal.SIGKILL  # in the middle of that rebalance
    wait_for(lambda: at_work("third"), "the third replica at work")
    assert third.stop() == 0  # 3 → 1
    stream.join(timeout=STREAM_S * 3)
    assert stream.failure is None and stream.sent == len(world)
    ends = {p: len(range(p, len(world), PARTITIONS)) for p in range(PARTITIONS)}
    wait_for(lambda: committed(broker, f"{topic}-group", topic) == ends, "every record committed")
    wait_for(quiet(ports["first"]), "the first replica caught up")
    late = total(metrics(ports["first"]), "ciwatch_late_events")
    assert first.stop() == 0
    delivered = set().union(*(delivered_ids(tmp_path / name / "alerts.jsonl") for name in names))
    sends = Counter(
        alert["id"]
        for _, _, body in receiver.received
        for alert in orjson.loads(body)
        if alert["revision"] == 0
    )
    again = sum(count - 1 for count in sends.values())
    print(f"expected {len(expected)}; delivered {len(delivered)}; sent again {again}; late {late}")
    assert delivered == expected
    assert set(sends) == expected
