"""Alerts to a Kafka topic: one JSON alert per message, keyed by its id, acknowledged by all.

For pipelines that route alerts onwards themselves (a SIEM's Kafka connector,
a stream processor). ``flush`` returns once the brokers have acknowledged
every message (``acks=all``), so the daemon's offset commit after it loses
nothing; the key is the alert id, so a compacted topic keeps each alert's
latest revision and consumers can deduplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from detector.alerts.model import Alert
from detector.detections import Severity
from detector.errors import UnreachableError
from detector.sinks.base import Sink
from detector.sources.kafka import KafkaSettings

__all__ = ["KafkaTopicSink", "open_topic_sink"]


class KafkaTopicSink(Sink):
    """Produces each alert (``Alert.to_dict``) to ``topic``; ``connection``: producer settings."""

    name = "kafka"

    def __init__(
        self,
        connection: dict[str, Any],
        topic: str,
        *,
        min_severity: Severity = Severity.INFO,
        timeout_s: float = 60.0,
    ) -> None:
        super().__init__(min_severity=min_severity)
        self.topic = topic
        self._timeout_s = timeout_s
        try:
            self._producer = KafkaProducer(
                acks="all", linger_ms=5, retries=2_147_483_647, **connection
            )
        except KafkaError as exc:
            message = f"cannot connect the alerts producer: {exc}"
            raise UnreachableError(message, where=topic) from None
        self._pending: list[Any] = []

    def send(self, batch: Sequence[Alert]) -> None:
        for alert in batch:
            value = orjson.dumps(alert.to_dict())
            future = self._producer.send(self.topic, key=alert.id.encode(), value=value)
            self._pending.append(future)

    def flush(self) -> None:
        """Block until every message sent is acknowledged; raise if one was not."""
        self._producer.flush(timeout=self._timeout_s)
        pending, self._pending = self._pending, []
        for future in pending:
            future.get(timeout=self._timeout_s)  # raises the send's error, if any

    def close(self) -> None:
        self._producer.close(timeout=self._timeout_s)


def open_topic_sink(
    kafka: KafkaSettings, topic: str, *, min_severity: Severity = Severity.INFO
) -> Sink:
    """The alerts-topic sink for ``kafka.client``, connected as the source is (same cluster)."""
    # The same client as the source: one library to install, tune and trust per deployment.
    from detector.sources.factory import require_client

    require_client(kafka)
    if kafka.client == "confluent":
        from detector.sinks.kafka_topic_confluent import ConfluentTopicSink
        from detector.sources.librdkafka import connection_config

        return ConfluentTopicSink(connection_config(kafka), topic, min_severity=min_severity)
    return KafkaTopicSink(kafka.connection_config(), topic, min_severity=min_severity)
