"""The stage producer follows ``service.kafka.client``; both clients send alike.

Both libraries are replaced by fakes that record what they are asked to send
(no broker): each client must put every record on the same partition, in the
same order, so a deployment may switch clients without moving a key's state;
the librdkafka one must raise what its brokers refused or never acknowledged.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from kafka.partitioner.default import DefaultPartitioner

from detector.errors import ConfigError, UnreachableError
from detector.scale import producing, producing_confluent
from detector.scale.producing import KafkaStageProducer, StageProducer, open_stage_producer
from detector.scale.producing_confluent import ConfluentStageProducer, producer_config
from detector.scale.wire import Outgoing
from detector.sources.kafka import KafkaSettings

PARTITIONS = 6
Sent = tuple[str, int, bytes, bytes]
"""(topic, partition, key, value)."""


class Done:
    """kafka-python's future of one send, already acknowledged."""

    def get(self, timeout: float) -> None:
        return None


class FakeKafkaProducer:
    """What :class:`KafkaStageProducer` asks of kafka-python's ``KafkaProducer``."""

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.sent: list[Sent] = []

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def send(self, topic: str, *, key: bytes, value: bytes, partition: int) -> Done:
        self.sent.append((topic, partition, key, value))
        return Done()

    def flush(self, timeout: float) -> None:
        return None


@dataclass
class Topic:
    partitions: dict[int, object]
    error: KafkaError | None = None


@dataclass
class Metadata:
    topics: dict[str, Topic]


class Refused:
    """A delivery report's message."""

    def topic(self) -> str:
        return "stages.by-actor"

    def partition(self) -> int:
        return 3


class FakeRdkafkaProducer:
    """What :class:`ConfluentStageProducer` asks of confluent-kafka's ``Producer``."""

    refuse = False
    left = 0
    queue_full_once = False

    def __init__(self, config: dict[str, Any], logger: object = None) -> None:
        self.config = config
        self.sent: list[Sent] = []
        self.flushes = 0
        self.asked: list[str] = []

    def list_topics(self, topic: str, timeout: float) -> Metadata:
        self.asked.append(topic)
        return Metadata({topic: Topic(dict.fromkeys(range(PARTITIONS)))})

    def produce(self, topic: str, value: bytes, key: bytes, partition: int) -> None:
        if self.queue_full_once:
            self.queue_full_once = False
            raise BufferError("queue full")
        self.sent.append((topic, partition, key, value))

    def flush(self, timeout: float) -> int:
        self.flushes += 1
        if self.refuse:
            self.config["on_delivery"](KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), Refused())
        return self.left

    def close(self) -> None:
        return None


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(producing, "KafkaProducer", FakeKafkaProducer)
    monkeypatch.setattr(producing_confluent, "Producer", FakeRdkafkaProducer)


def batch() -> list[Outgoing]:
    """Keyed records to two stages out of event-time order, and marks to given partitions."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    records = [
        Outgoing(
            topic=f"stages.by-{'actor' if n % 3 else 'ip'}",
            key=f"user-{n % 40}@example.com" if n % 3 else f"10.0.{n % 7}.{n % 11}",
            value=f"event-{n}".encode(),
            time=start + timedelta(seconds=(n * 37) % 101),
        )
        for n in range(300)
    ]
    marks = [
        Outgoing("stages.by-actor", "replica-1", b"mark", start + timedelta(seconds=50), p)
        for p in range(PARTITIONS)
    ]
    return records + marks


def library(producer: StageProducer) -> FakeKafkaProducer | FakeRdkafkaProducer:
    """The fake client library under ``producer``."""
    inner = vars(producer)["_producer"]
    assert isinstance(inner, FakeKafkaProducer | FakeRdkafkaProducer)
    return inner


def rdkafka_of(producer: StageProducer) -> FakeRdkafkaProducer:
    inner = library(producer)
    assert isinstance(inner, FakeRdkafkaProducer)
    return inner


@pytest.mark.usefixtures("fakes")
def test_the_client_named_in_the_settings_builds_the_stage_producer() -> None:
    servers = ["k1:9092", "k2:9092"]
    default = open_stage_producer(KafkaSettings(topics=["github"], bootstrap_servers=servers))
    confluent = open_stage_producer(
        KafkaSettings(topics=["github"], client="confluent", bootstrap_servers=servers)
    )
    assert type(default) is KafkaStageProducer
    assert type(confluent) is ConfluentStageProducer
    kafka_python, rdkafka = library(default), rdkafka_of(confluent)
    assert isinstance(kafka_python, FakeKafkaProducer)
    assert kafka_python.config["bootstrap_servers"] == servers
    assert kafka_python.config["acks"] == "all"
    assert rdkafka.config["bootstrap.servers"] == "k1:9092,k2:9092"
    assert rdkafka.config["acks"] == "all"


def test_the_confluent_stage_producer_keeps_order_and_waits_for_every_replica() -> None:
    config = producer_config({"bootstrap.servers": "127.0.0.1:9"})
    assert config["acks"] == "all"
    assert config["max.in.flight.requests.per.connection"] == 1
    assert config["delivery.report.only.error"] is True
    assert config["linger.ms"] > 0
    Producer(config).close()  # librdkafka accepts every property (it connects lazily)


@pytest.mark.usefixtures("fakes")
def test_both_clients_send_each_record_to_the_same_partition_in_event_time() -> None:
    records = batch()
    kafka_python = KafkaStageProducer({"bootstrap_servers": ["127.0.0.1:9"]})
    confluent = ConfluentStageProducer({"bootstrap.servers": "127.0.0.1:9"})
    kafka_python.send(list(records))
    confluent.send(list(records))
    sent = library(confluent).sent
    assert sent == library(kafka_python).sent
    assert len(sent) == len(records)
    by_value = {record.value: record for record in records if record.partition is None}
    partitioner, cluster = DefaultPartitioner(), Cluster()
    for topic, partition, key, value in sent:
        if value in by_value:  # keyed: the default partitioner's partition for its key
            assert partition == partitioner.partition(topic, None, key, None, None, cluster)
    assert [p for _, p, _, value in sent if value == b"mark"] == list(range(PARTITIONS))
    times = [by_value[value].time for _, _, _, value in sent if value in by_value]
    assert times == sorted(times)


class Cluster:
    """What kafka-python's default partitioner asks of the cluster metadata."""

    def topics(self) -> set[str]:
        return {"stages.by-actor", "stages.by-ip"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))


@pytest.mark.usefixtures("fakes")
def test_the_confluent_stage_producer_flushes_and_asks_for_partitions_once() -> None:
    producer = ConfluentStageProducer({"bootstrap.servers": "127.0.0.1:9"})
    producer.send(batch())
    producer.send(batch())
    producer.send([])
    inner = rdkafka_of(producer)
    assert inner.flushes == 2  # once per batch: acknowledged before its offsets are committed
    assert sorted(inner.asked) == ["stages.by-actor", "stages.by-ip"]  # remembered


@pytest.mark.usefixtures("fakes")
def test_a_full_local_queue_is_drained_and_the_record_sent_again() -> None:
    producer = ConfluentStageProducer({"bootstrap.servers": "127.0.0.1:9"})
    inner = rdkafka_of(producer)
    inner.queue_full_once = True
    producer.send(batch())
    assert len(inner.sent) == len(batch())
    assert inner.flushes == 2


@pytest.mark.usefixtures("fakes")
def test_refused_and_unacknowledged_records_are_raised_not_swallowed() -> None:
    producer = ConfluentStageProducer({"bootstrap.servers": "127.0.0.1:9"})
    inner = rdkafka_of(producer)
    inner.refuse = True
    with pytest.raises(UnreachableError, match=r"1 stage records refused: stages.by-actor\[3\]"):
        producer.send(batch())
    inner.refuse, inner.left = False, 4
    with pytest.raises(UnreachableError, match="4 stage records not acknowledged"):
        producer.send(batch())
    inner.left = 0
    producer.send(batch())  # a failure is raised once, not again with the next batch


def test_confluent_chosen_but_not_installed_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)
    with pytest.raises(ConfigError, match="pip install"):
        open_stage_producer(KafkaSettings(topics=["github"], client="confluent"))
