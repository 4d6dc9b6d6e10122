"""Fixtures for the operations tests: the chart rendered once per value combination."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ops.chart import render
from tests.ops.chart_values import COMBINATIONS


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: render(values) for name, values in COMBINATIONS.items()}
