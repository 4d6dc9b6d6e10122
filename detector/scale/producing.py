"""The producer of the stage records: each batch's records in event time, acknowledged by all.

One idempotent-in-effect path for every internal record (events, notes,
marks): sorted by event time, so each partition receives a producer's records
in order; ``acks=all`` and one request in flight per connection, so retries
keep that order; flushed and checked before the batch is committed.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from detector.errors import UnreachableError
from detector.scale.wire import Outgoing

__all__ = ["StageProducer"]

_TIMEOUT_S = 60.0


class StageProducer:
    """Sends :class:`~detector.scale.wire.Outgoing` records (see the module)."""

    def __init__(self, connection: dict[str, Any]) -> None:
        try:
            self._producer = KafkaProducer(
                acks="all",
                linger_ms=5,
                max_in_flight_requests_per_connection=1,  # retries keep each partition's order
                **connection,
            )
        except KafkaError as exc:
            where = ",".join(connection.get("bootstrap_servers", []))
            raise UnreachableError(
                f"cannot connect the stage producer: {exc}", where=where
            ) from None

    def send(self, outgoing: list[Outgoing]) -> None:
        """Every record to its topic (its partition, or its key's), in event time; raises
        :class:`~detector.errors.UnreachableError` unless all were acknowledged."""
        if not outgoing:
            return
        outgoing.sort(key=lambda record: record.time)
        try:
            sends = [
                self._producer.send(
                    record.topic,
                    key=record.key.encode(),
                    value=record.value,
                    partition=record.partition,
                )
                for record in outgoing
            ]
            self._producer.flush(timeout=_TIMEOUT_S)
            for sent in sends:
                sent.get(timeout=_TIMEOUT_S)  # raises the send's error, if any
        except KafkaError as exc:
            raise UnreachableError(f"stage records not produced: {exc}", where="stages") from None

    def close(self) -> None:
        self._producer.close(timeout=_TIMEOUT_S)
