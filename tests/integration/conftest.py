"""Integration fixtures: one real Kafka-protocol broker (Tansu) per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from detector.sources.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running
