"""The models shipped in models/: they load against today's feature schema, and score real formats.

If a feature change breaks the first test, retrain the bundled models (models/README.md).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from detector.features.batch import build_frame, family_rows
from detector.features.families import FAMILIES
from detector.resources import bundled_models_dir
from detector.scoring import ModelSet, load_models
from detector.sources.record import Position, RawRecord
from tests.normalizing import VENDORS, bundled_normalizer
from tests.samples import load_samples


@pytest.fixture(scope="module")
def bundled() -> ModelSet:
    directory = bundled_models_dir()
    assert directory is not None
    return load_models(directory)


def test_every_family_has_a_bundled_model_matching_the_schema(bundled: ModelSet) -> None:
    assert set(bundled.models) == set(FAMILIES)


@pytest.mark.parametrize("vendor", VENDORS)
def test_published_vendor_events_score_within_bounds(bundled: ModelSet, vendor: str) -> None:
    normalizer = bundled_normalizer()
    records = [
        RawRecord(json.dumps(item.event).encode(), Position(vendor, item.line))
        for item in load_samples(vendor)
    ]
    events = sorted(normalizer.normalize_batch(records).events, key=lambda event: event.time)
    frame = build_frame(events)
    scored = 0
    for model in bundled:
        rows = family_rows(frame, FAMILIES[model.family], include_late=True)
        if len(rows):
            scores = model.scores(rows[list(model.features)].to_numpy())
            assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))
            scored += len(rows)
    assert scored > 0
