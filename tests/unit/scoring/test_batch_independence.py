"""Alerts and their words depend on the events, never on how they were batched.

``replay`` reads files in large batches, the daemon takes what the broker
gives it: the same events must give the same alerts, with the same
explanation text, either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import scenarios

from detector.config import load_config
from detector.events.model import Event
from detector.pipeline import Pipeline
from detector.sources.files import FileSource
from tests.normalizing import bundled_normalizer


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    directory = tmp_path_factory.mktemp("world")
    scenarios.write(scenarios.generate(seed=7, days=6), directory)
    with FileSource([Path(directory) / scenarios.MERGED]) as source:
        records = [record for batch in source.batches(1000) for record in batch]
    return bundled_normalizer().normalize_batch(records).events


def _alerts(events: list[Event], size: int) -> list[dict[str, Any]]:
    pipeline = Pipeline.from_config(load_config(None))
    assert pipeline.scorer is not None  # the bundled models
    sent = []
    for start in range(0, len(events), size):
        sent.extend(pipeline.detect(events[start : start + size]))
    sent.extend(pipeline.finish())
    # Re-sends of closed alerts leave when event time passes their end, which a batch
    # boundary can bring a few alerts earlier: compare the alerts, not their interleaving.
    found = [alert.to_dict() | {"detected_at": None} for alert in sent]
    return sorted(found, key=lambda alert: (alert["id"], alert["revision"]))


@pytest.fixture(scope="module")
def reference(events: list[Event]) -> list[dict[str, Any]]:
    return _alerts(events, len(events))


@pytest.mark.parametrize("size", [1, 7, 500])
def test_batches_of_any_size_give_identical_alerts_and_explanations(
    events: list[Event], reference: list[dict[str, Any]], size: int
) -> None:
    anomalies = [alert for alert in reference if alert["kind"] == "anomaly"]
    assert anomalies, "the world must raise anomaly alerts for this to compare anything"
    assert _alerts(events, size) == reference
