"""Models trained once per session: tests read them, none refits its own."""

from __future__ import annotations

import pandas as pd  # type: ignore[import-untyped]
import pytest

from detector.features.families import FAMILIES
from detector.scoring.training import ModelSet, TrainedModel, train_family, train_models
from tests.unit.scoring.synthetic import ordinary_frame

RATE = 0.01


@pytest.fixture(scope="session")
def code_frame() -> pd.DataFrame:
    return ordinary_frame(FAMILIES["code"])


@pytest.fixture(scope="session")
def code_model(code_frame: pd.DataFrame) -> TrainedModel:
    return train_family("code", code_frame, target_alert_rate=RATE, seed=1)


@pytest.fixture(scope="session")
def model_set() -> ModelSet:
    frames = {name: ordinary_frame(family, rows=400) for name, family in FAMILIES.items()}
    return train_models(frames, detector={"name": "iforest", "params": {"n_estimators": 50}})
