"""Fixtures for every test folder: the real broker the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from detector.sources.broker import EmbeddedBroker


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/data/golden from the current parsers (review the diff!)",
    )


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One real Kafka-protocol broker (Tansu) on loopback for the whole session."""
    with EmbeddedBroker() as running:
        yield running
