"""Alerts to a Kafka topic through confluent-kafka (librdkafka): :class:`KafkaTopicSink`'s twin.

Chosen with ``service.kafka.client: confluent``, like the source. Same
contract: one JSON alert per message keyed by its id, ``acks=all``, and
``flush`` returns only once the brokers acknowledged every message sent, or
raises, so the daemon commits no offset for an alert that was not delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from detector.alerts.model import Alert
from detector.detections import Severity
from detector.errors import UnreachableError
from detector.sinks.base import Sink

__all__ = ["ConfluentTopicSink"]

_LOG = logging.getLogger("ciwatch.kafka")


class ConfluentTopicSink(Sink):
    """Produces each alert (``Alert.to_dict``) to ``topic``; ``connection``: librdkafka settings.

    ``connection`` comes from :func:`detector.sources.librdkafka.connection_config`.
    """

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
        config = {**connection, "acks": "all", "linger.ms": 5}
        try:
            self._producer = Producer(config, logger=_LOG)
        except KafkaException as exc:
            message = f"cannot connect the alerts producer: {exc}"
            raise UnreachableError(message, where=topic) from None
        self._failures: list[str] = []

    def send(self, batch: Sequence[Alert]) -> None:
        for alert in batch:
            value = orjson.dumps(alert.to_dict())
            key = alert.id.encode()
            try:
                self._producer.produce(self.topic, value, key, on_delivery=self._delivered)
            except BufferError:  # the local queue is full: wait for acknowledgements, once
                self._producer.flush(self._timeout_s)
                self._producer.produce(self.topic, value, key, on_delivery=self._delivered)

    def flush(self) -> None:
        """Block until every message sent is acknowledged; raise if one was not."""
        left = self._producer.flush(self._timeout_s)
        failures, self._failures = self._failures, []
        if left:
            message = f"{left} alerts not acknowledged within {self._timeout_s:g}s"
            raise UnreachableError(message, where=self.topic)
        if failures:
            message = f"{len(failures)} alerts refused: {failures[0]}"
            raise UnreachableError(message, where=self.topic)

    def close(self) -> None:
        self._producer.flush(self._timeout_s)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(error.str())
