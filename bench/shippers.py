"""The live runs' producer: records sent as a log shipper sends them (bench/daemon.py).

Shippers (Vector, Fluent Bit, Filebeat) send through a native client on
machines of their own. The bench's producer shares the daemon's two cores,
so what it costs is taken from the daemon: kafka-python spent about 54 µs
of CPU per record sending the bench's world (about 0.7 of a core at 13k
records/s), librdkafka (confluent-kafka) about 2.3 µs. The default is
librdkafka, with the Java clients' partitioner (murmur2 of the key, as
kafka-python's), so a key lands on the same partition with either.
"""

from __future__ import annotations

from typing import Literal, Protocol

from confluent_kafka import Producer
from kafka import KafkaProducer

__all__ = ["SHIPPERS", "Shipper", "shipper"]

ShipperName = Literal["librdkafka", "kafka-python"]
SHIPPERS: tuple[ShipperName, ...] = ("librdkafka", "kafka-python")
LINGER_MS = 5
"""A shipper's usual linger: a request per record would cost CPU the daemon shares."""


class Shipper(Protocol):
    def send(self, topic: str, value: bytes, key: bytes | None) -> None: ...

    def close(self) -> None:
        """Flush what is queued, then close."""


class _Librdkafka:
    def __init__(self, bootstrap: str) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": LINGER_MS,
                "partitioner": "murmur2_random",
            }
        )

    def send(self, topic: str, value: bytes, key: bytes | None) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key)
                break
            except BufferError:  # its queue is full: let it deliver some first
                self._producer.poll(0.01)
        self._producer.poll(0)  # serve delivery reports, or they pile up

    def close(self) -> None:
        if self._producer.flush(60) > 0:
            raise SystemExit("librdkafka could not deliver every live record within 60 s")


class _KafkaPython:
    def __init__(self, bootstrap: str) -> None:
        self._producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=LINGER_MS)

    def send(self, topic: str, value: bytes, key: bytes | None) -> None:
        self._producer.send(topic, value, key=key)

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()


def shipper(name: ShipperName, bootstrap: str) -> Shipper:
    """The producer ``name`` on the broker at ``bootstrap``."""
    return _Librdkafka(bootstrap) if name == "librdkafka" else _KafkaPython(bootstrap)
