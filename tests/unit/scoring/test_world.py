"""End to end on a generated world: frame → train → save → load → score streaming observations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import scenarios

from detector.features.batch import frame_from_observations
from detector.features.families import FAMILIES
from detector.features.observation import Observation
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from detector.scoring import AnomalyScorer, load_models, save_models, train_models
from detector.sources.files import FileSource
from tests.normalizing import bundled_normalizer

RATE = 0.005


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureStore, list[Observation]]:
    directory = tmp_path_factory.mktemp("world")
    scenarios.write(scenarios.generate(seed=5, days=4), directory)
    with FileSource([Path(directory) / scenarios.MERGED]) as source:
        records = [record for batch in source.batches(1000) for record in batch]
    store = FeatureStore(FeatureSettings.model_validate({"learning_period": "1d"}))
    events = bundled_normalizer().normalize_batch(records).events
    return store, [store.observe(event) for event in events]


def test_models_trained_on_a_world_alert_on_about_the_target_share(
    world: tuple[FeatureStore, list[Observation]], tmp_path: Path
) -> None:
    store, observations = world
    frame = frame_from_observations(observations, store.feature_names)
    trained = train_models(frame, target_alert_rate=RATE, seed=2)
    assert set(trained.models) == set(FAMILIES)
    save_models(trained, tmp_path, datetime(2026, 3, 1, tzinfo=UTC))
    scorer = AnomalyScorer(load_models(tmp_path))
    detections = scorer.score(observations)
    scored = sum(scorer.scored.values())
    assert scored == sum(model.window.rows for model in trained)
    assert 0 < len(detections) <= RATE * scored
    for detection in detections:
        family = detection.name.removesuffix("-anomaly")
        assert set(detection.features) == set(trained.models[family].features)
        assert detection.summary.startswith(f"{detection.actor}: ")
        assert 1 <= len(detection.explanation["top_features"]) <= 3
