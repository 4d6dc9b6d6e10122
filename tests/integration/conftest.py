"""Integration fixtures: a generated world, webhook receivers, a topic per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from detector.generator import MERGED, generate, write
from detector.sources.broker import EmbeddedBroker
from tests.receiver import Receiver, running_receiver


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """A generated organisation (seed 7, 10 days, 20 people) with attacks, as records."""
    directory = tmp_path_factory.mktemp("world")
    write(generate(seed=7, days=10, people=20), directory)
    return (directory / MERGED).read_bytes().splitlines()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def topic(broker: EmbeddedBroker, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"events-{request.node.name.replace('[', '-').replace(']', '')}"
    broker.create_topics([name], partitions=1)
    yield name
