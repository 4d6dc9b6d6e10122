"""Fixtures several unit test modules share."""

from __future__ import annotations

import pytest

from detector.config import load_config
from detector.events.model import Event
from detector.generator import MERGED, generate, write
from detector.pipeline import Pipeline
from detector.sources.files import FileSource


@pytest.fixture(scope="session")
def world_events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    """A generated organisation's events (25 people, 4 days), normalized as the daemon does."""
    directory = tmp_path_factory.mktemp("world")
    write(generate(seed=11, days=4, people=25), directory)
    with FileSource([directory / MERGED]) as source:
        records = [record for batch in source.batches(1000) for record in batch]
    return Pipeline.from_config(load_config(None)).normalize(records).events
