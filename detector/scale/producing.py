"""The producer of the stage records: each batch's records in event time, acknowledged by all.

One idempotent-in-effect path for every internal record (events, notes,
marks): sorted by event time, so each partition receives a producer's records
in order; ``acks=all`` and one request in flight per connection, so retries
keep that order; flushed and checked before the batch is committed.

:func:`open_stage_producer` picks the client ``service.kafka.client`` names, as
the source and the alerts topic do: :class:`KafkaStageProducer` (kafka-python,
the default) or :class:`~detector.scale.producing_confluent.ConfluentStageProducer`
(librdkafka). Both send a keyed record to the partition Kafka's default
partitioner gives its key (:class:`KeyPartitions`), so a deployment may switch
clients without moving a key to another task.

What a record costs with kafka-python is kafka-python's, in Python, per record:

- every send is followed by a flush, so lingering costs no latency and each
  partition's records of a batch go in one record batch. With kafka-python's
  defaults (16 KiB batches, sent as soon as the sender thread wakes) they went
  out about one per record batch, and each new record batch woke the sender
  thread (a socket write) from the main thread: a third of a replica's
  producing time, and a record batch per record for every consumer to parse;
- a key's partition is the default partitioner's (murmur2 of the key, as the
  Java client), worked out once per key and topic size instead of per record
  in pure Python: keys (actors, addresses) repeat.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from detector.errors import UnreachableError
from detector.scale.wire import Outgoing
from detector.sources.factory import require_client
from detector.sources.kafka import KafkaSettings

__all__ = ["KafkaStageProducer", "KeyPartitions", "StageProducer", "open_stage_producer"]

_TIMEOUT_S = 60.0
_LINGER_MS = 60_000
"""Never reached: :meth:`KafkaStageProducer.send` flushes at once (the flush sends regardless)."""
_BATCH_BYTES = 512 * 1024
"""Per partition and request; below the brokers' default 1 MiB message limit."""
_CACHED_KEYS = 200_000
"""Keys remembered per topic before the memory starts afresh (a few MiB at most)."""


class KeyPartitions:
    """The partition Kafka's default partitioner gives a key, remembered per topic size."""

    def __init__(self, limit: int = _CACHED_KEYS) -> None:
        self.limit = limit
        self._known: dict[tuple[str, int], dict[bytes, int]] = {}

    def of(self, topic: str, key: bytes, partitions: list[int]) -> int:
        """``key``'s partition among the topic's ``partitions`` (sorted)."""
        known = self._known.setdefault((topic, len(partitions)), {})
        found = known.get(key)
        if found is None:
            if len(known) >= self.limit:
                known.clear()
            found = known[key] = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
        return found


class StageProducer(ABC):
    """Sends :class:`~detector.scale.wire.Outgoing` records (see the module)."""

    @abstractmethod
    def send(self, outgoing: list[Outgoing]) -> None:
        """Every record to its topic (its partition, or its key's), in event time; raises
        :class:`~detector.errors.UnreachableError` unless all were acknowledged."""

    @abstractmethod
    def close(self) -> None:
        """Wait for what is still sent (within a time-out), then disconnect."""


def open_stage_producer(kafka: KafkaSettings) -> StageProducer:
    """The stage producer for ``kafka.client``, connected as the source is (same cluster)."""
    require_client(kafka)
    if kafka.client == "confluent":
        # Imported here: nothing loads confluent-kafka unless it was chosen.
        from detector.scale.producing_confluent import ConfluentStageProducer
        from detector.sources.librdkafka import connection_config

        return ConfluentStageProducer(connection_config(kafka))
    return KafkaStageProducer(kafka.connection_config())


class KafkaStageProducer(StageProducer):
    """:class:`StageProducer` through kafka-python (see the module)."""

    def __init__(self, connection: dict[str, Any]) -> None:
        self._partitions = KeyPartitions()
        try:
            self._producer = KafkaProducer(
                acks="all",
                linger_ms=_LINGER_MS,
                batch_size=_BATCH_BYTES,
                max_in_flight_requests_per_connection=1,  # retries keep each partition's order
                **connection,
            )
        except KafkaError as exc:
            where = ",".join(connection.get("bootstrap_servers", []))
            raise UnreachableError(
                f"cannot connect the stage producer: {exc}", where=where
            ) from None

    def send(self, outgoing: list[Outgoing]) -> None:
        if not outgoing:
            return
        outgoing.sort(key=lambda record: record.time)
        try:
            topics = {record.topic for record in outgoing if record.partition is None}
            partitions = {topic: sorted(self._producer.partitions_for(topic)) for topic in topics}
            sends = []
            for record in outgoing:
                key = record.key.encode()
                partition = record.partition
                if partition is None:
                    partition = self._partitions.of(record.topic, key, partitions[record.topic])
                sends.append(
                    self._producer.send(
                        record.topic, key=key, value=record.value, partition=partition
                    )
                )
            self._producer.flush(timeout=_TIMEOUT_S)
            for sent in sends:
                sent.get(timeout=_TIMEOUT_S)  # raises the send's error, if any
        except KafkaError as exc:
            raise UnreachableError(f"stage records not produced: {exc}", where="stages") from None

    def close(self) -> None:
        self._producer.close(timeout=_TIMEOUT_S)
