"""Kafka over TLS for real: the embedded broker behind stunnel, each client consuming.

The broker advertises stunnel's port, and the clients speak TLS, so every
connection — bootstrap and the ones metadata points to — is a TLS connection;
a plain one to the broker's own port would fail the handshake. Nothing is
skipped: without stunnel these tests fail (``.ci/run`` installs it). The
source tests run on both clients (``service.kafka.client``); the producer
that fills the topic is kafka-python.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from detector.errors import SourceError
from detector.sources.broker import EmbeddedBroker, free_port
from detector.sources.factory import ConsumerSource, open_source
from detector.sources.kafka import KafkaClient, KafkaSettings
from detector.sources.record import RawRecord
from tests.integration.tls import Certificates, Stunnel, make_certificates

pytestmark = pytest.mark.integration

WAIT_S = 60.0
CLIENTS: list[KafkaClient] = ["kafka-python", "confluent"]


@dataclass(frozen=True)
class TlsBroker:
    certificates: Certificates
    broker: EmbeddedBroker
    stunnel: Stunnel

    def client_config(self, cafile: Path | None = None) -> dict[str, Any]:
        """kafka-python TLS settings for a client that bootstraps through stunnel."""
        return {
            "bootstrap_servers": [self.stunnel.address],
            "security_protocol": "SSL",
            "ssl_cafile": str(cafile or self.certificates.ca),
            "ssl_check_hostname": True,
        }


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    workdir = tmp_path_factory.mktemp("kafka-tls")
    certificates = make_certificates(workdir)
    tls_port = free_port()
    with (
        EmbeddedBroker(advertised_url=f"tcp://127.0.0.1:{tls_port}") as broker,
        Stunnel(workdir, certificates, accept_port=tls_port, target_port=broker.port) as stunnel,
    ):
        yield TlsBroker(certificates, broker, stunnel)


def tls_source(
    tls_broker: TlsBroker, topic: str, group: str, cafile: Path, client: KafkaClient
) -> ConsumerSource:
    settings = KafkaSettings(
        client=client,
        topics=[topic],
        group_id=group,
        session_timeout_ms=6000,  # this broker's group join takes half of it
        heartbeat_interval_ms=1000,
        **tls_broker.client_config(cafile),
    )
    return open_source(settings)


@pytest.mark.parametrize("client", CLIENTS)
def test_records_are_produced_and_consumed_through_tls(
    tls_broker: TlsBroker, client: KafkaClient
) -> None:
    topic = f"tls-events-{client}"
    tls_broker.broker.create_topics([topic], partitions=2, client_config=tls_broker.client_config())
    values = [f'{{"n": {n}}}'.encode() for n in range(40)]
    producer = KafkaProducer(linger_ms=5, **tls_broker.client_config())
    for index, value in enumerate(values):
        producer.send(topic, key=str(index % 3).encode(), value=value)
    producer.flush()
    producer.close()

    source = tls_source(
        tls_broker, topic, f"tls-group-{client}", tls_broker.certificates.ca, client
    )
    seen: list[RawRecord] = []
    deadline = time.monotonic() + WAIT_S
    try:
        while len(seen) < len(values):
            assert time.monotonic() < deadline, f"only {len(seen)} records within {WAIT_S}s"
            batch = source.poll(max_records=100, timeout_s=0.5)
            seen.extend(batch)
            source.commit(r.position for r in batch)
    finally:
        source.close()

    assert sorted(r.value for r in seen) == sorted(values)
    assert {r.position.partition for r in seen} == {0, 1}
    assert "Service [kafka] accepted connection" in tls_broker.stunnel.log()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_certificate_from_another_ca_is_refused_with_a_clear_error(
    tls_broker: TlsBroker, client: KafkaClient
) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError) as refused:
        tls_source(tls_broker, "tls-events", "wrong-ca", tls_broker.certificates.other_ca, client)

    assert refused.value.where == tls_broker.stunnel.address
    assert "TLS certificate refused" in refused.value.message
    assert "ssl_cafile" in refused.value.message
    # Refused at the first handshake, not after kafka-python's 30 s of bootstrap retries.
    assert time.monotonic() - started < 10.0
