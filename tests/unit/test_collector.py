"""Every ciwatch command sets the collector for a large, long-lived state (detector.collector)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from detector import collector
from detector.cli import main


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("thresholds")
def test_a_command_collects_the_youngest_generation_every_50_000_allocations() -> None:
    gc.set_threshold(700, 10, 10)
    assert main(["validate"]) == 0  # the default config
    assert gc.get_threshold()[0] == collector.YOUNG_THRESHOLD == 50_000
