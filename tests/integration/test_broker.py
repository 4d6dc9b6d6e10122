"""The embedded broker starts on a free loopback port, serves metadata, and stops cleanly."""

from __future__ import annotations

import socket

import pytest
from kafka import KafkaAdminClient

from detector.sources.broker import EmbeddedBroker

pytestmark = pytest.mark.integration


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_broker_lifecycle_creates_topics_and_releases_its_port() -> None:
    broker = EmbeddedBroker().start()
    try:
        broker.create_topics(["lifecycle"], partitions=2)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        assert "lifecycle" in admin.list_topics()
        admin.close()
        port = broker.port
    finally:
        broker.stop()
    assert not accepts_connections(port)
    broker.stop()  # stopping twice is harmless


def test_two_brokers_run_side_by_side() -> None:
    with EmbeddedBroker() as first, EmbeddedBroker() as second:
        assert first.port != second.port
        assert accepts_connections(first.port)
        assert accepts_connections(second.port)
