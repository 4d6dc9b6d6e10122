"""The stage producer through confluent-kafka (librdkafka): ``KafkaStageProducer``'s twin.

Chosen with ``service.kafka.client: confluent``
(:func:`~detector.scale.producing.open_stage_producer`).
Same guarantees: a batch's records sorted by event time, ``acks=all`` with one
request in flight per connection (retries keep each partition's order),
explicit partitions (a key's is the one kafka-python's producer gives it, see
:class:`~detector.scale.producing.KeyPartitions`; librdkafka's own default
partitioner hashes keys differently), flushed and checked before the batch is
committed. Why it is cheaper: a record costs one call into C, and
librdkafka's threads batch, send and acknowledge; only failed records come
back to Python (``delivery.report.only.error``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from detector.errors import UnreachableError
from detector.scale.producing import KeyPartitions, StageProducer
from detector.scale.wire import Outgoing

__all__ = ["ConfluentStageProducer", "producer_config"]

_LOG = logging.getLogger("ciwatch.kafka")
_TIMEOUT_S = 60.0
_LINGER_MS = 5_000
"""Never reached: :meth:`ConfluentStageProducer.send` flushes at once, and a flush sends
without lingering; below ``message.timeout.ms``, as librdkafka requires."""
_BATCH_BYTES = 512 * 1024
"""Per partition and request; below the brokers' default 1 MiB message limit."""
_METADATA_AGE_S = 300.0
"""How long a topic's partitions are trusted (kafka-python's ``metadata_max_age_ms``)."""


def producer_config(connection: dict[str, Any]) -> dict[str, Any]:
    """librdkafka properties of the stage producer, on ``connection``'s (servers, TLS, SASL)."""
    return {
        **connection,
        "acks": "all",
        # Ordered by one request in flight, as kafka-python's: idempotence would need the
        # IDEMPOTENT_WRITE permission on older brokers, which a deployment may not grant.
        "enable.idempotence": False,
        "max.in.flight.requests.per.connection": 1,
        "linger.ms": _LINGER_MS,
        "batch.size": _BATCH_BYTES,
        # A record not acknowledged by then fails (raised), instead of waiting past the flush.
        "message.timeout.ms": int(_TIMEOUT_S * 1000),
        "delivery.report.only.error": True,
    }


class ConfluentStageProducer(StageProducer):
    """:class:`~detector.scale.producing.StageProducer` through librdkafka (see the module).

    ``connection``: from :func:`detector.sources.librdkafka.connection_config`.
    """

    def __init__(self, connection: dict[str, Any]) -> None:
        self._partitions = KeyPartitions()
        self._known: dict[str, tuple[float, list[int]]] = {}
        """Topic → (when asked, its partitions, sorted)."""
        self._failures: list[str] = []
        config = {**producer_config(connection), "on_delivery": self._delivered}
        try:
            self._producer = Producer(config, logger=_LOG)
        except KafkaException as exc:
            where = str(connection.get("bootstrap.servers", ""))
            raise UnreachableError(
                f"cannot connect the stage producer: {exc}", where=where
            ) from None

    def send(self, outgoing: list[Outgoing]) -> None:
        if not outgoing:
            return
        outgoing.sort(key=lambda record: record.time)
        try:
            topics = {record.topic for record in outgoing if record.partition is None}
            partitions = {topic: self._partitions_of(topic) for topic in topics}
            produce = self._producer.produce
            for record in outgoing:
                key = record.key.encode()
                partition = record.partition
                if partition is None:
                    partition = self._partitions.of(record.topic, key, partitions[record.topic])
                try:
                    produce(record.topic, record.value, key, partition)
                except BufferError:  # the local queue is full: wait for what it holds, once
                    self._producer.flush(_TIMEOUT_S)
                    produce(record.topic, record.value, key, partition)
            left = self._producer.flush(_TIMEOUT_S)
        except KafkaException as exc:
            raise UnreachableError(f"stage records not produced: {exc}", where="stages") from None
        self._raise_failures(left)

    def close(self) -> None:
        self._producer.flush(_TIMEOUT_S)
        self._producer.close()

    def _partitions_of(self, topic: str) -> list[int]:
        """The topic's partitions, sorted; asked of the cluster at most every few minutes."""
        now = time.monotonic()
        known = self._known.get(topic)
        if known is not None and now - known[0] < _METADATA_AGE_S:
            return known[1]
        found = self._producer.list_topics(topic, timeout=_TIMEOUT_S).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            why = found.error if found is not None else "unknown topic"
            raise UnreachableError(f"no partitions for the stage topic: {why}", where=topic)
        partitions = sorted(found.partitions)
        self._known[topic] = (now, partitions)
        return partitions

    def _raise_failures(self, left: int) -> None:
        failures, self._failures = self._failures, []
        if left:
            message = f"{left} stage records not acknowledged within {_TIMEOUT_S:g}s"
            raise UnreachableError(message, where="stages")
        if failures:
            message = f"{len(failures)} stage records refused: {failures[0]}"
            raise UnreachableError(message, where="stages")

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        # Called only for failures (delivery.report.only.error), from flush.
        if error is not None:
            self._failures.append(f"{message.topic()}[{message.partition()}]: {error.str()}")
