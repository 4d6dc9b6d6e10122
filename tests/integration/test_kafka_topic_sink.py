"""The alerts-topic sink against a real broker: every alert acknowledged, keyed by its id.

Runs on both clients (``service.kafka.client``): the sink each one builds keeps the same contract.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from detector.detections import Severity
from detector.sinks.kafka_topic import open_topic_sink
from detector.sources.broker import EmbeddedBroker
from detector.sources.kafka import KafkaClient, KafkaSettings
from tests.unit.sinks.test_webhook_format import make_alert

pytestmark = pytest.mark.integration

WAIT_S = 30.0


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_alerts_reach_the_topic_keyed_by_id_and_filtered_by_severity(
    broker: EmbeddedBroker, client: KafkaClient
) -> None:
    topic = f"alerts-out-{client}"
    broker.create_topics([topic])
    settings = KafkaSettings(client=client, bootstrap_servers=[broker.bootstrap], topics=["unused"])
    sink = open_topic_sink(settings, topic, min_severity=Severity.MEDIUM)
    assert sink.name == "kafka"
    wanted = [make_alert(f"user{i}") for i in range(5)]
    quiet = make_alert("low-one", severity=Severity.LOW)
    sink.accept([*wanted, quiet])
    sink.flush()  # returns once the broker acknowledged them
    sink.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    messages: list[Any] = []
    deadline = time.monotonic() + WAIT_S
    while len(messages) < len(wanted):
        assert time.monotonic() < deadline, f"only {len(messages)} alerts within {WAIT_S}s"
        for batch in consumer.poll(timeout_ms=500).values():
            messages.extend(batch)
    consumer.close()
    assert [m.key.decode() for m in messages] == [alert.id for alert in wanted]
    assert [orjson.loads(m.value)["id"] for m in messages] == [alert.id for alert in wanted]
