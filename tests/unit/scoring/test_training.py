"""Training picks each family's rows, records the window and population, and is seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from detector.errors import ConfigError
from detector.features.batch import family_column
from detector.features.families import FAMILIES, schema_hash
from detector.scoring.training import MIN_TRAINING_ROWS, TrainedModel, train_family, train_models
from tests.unit.scoring.synthetic import START, ordinary_frame


def _combined_frame() -> pd.DataFrame:
    """A build_frame-shaped frame: all features, family flags, late, actor type and age."""
    code = ordinary_frame(FAMILIES["code"], rows=300, seed=1)
    auth = ordinary_frame(FAMILIES["auth"], rows=300, seed=2)
    frame = pd.concat([code, auth], ignore_index=True).fillna(0.0)
    for name in FAMILIES:
        frame[family_column(name)] = False
    frame.loc[: len(code) - 1, family_column("code")] = True
    frame.loc[len(code) :, family_column("auth")] = True
    frame["late"] = False
    frame["actor_type"] = "human"
    frame["actor.age_days"] = 3.0
    frame.loc[:4, "actor.age_days"] = 0.5
    # As build_frame marks them: service identities belong to the service family only.
    frame.loc[5:9, "actor_type"] = "service"
    frame.loc[5:9, family_column("code")] = False
    frame.loc[5:9, family_column("service")] = True
    frame.loc[10:19, "late"] = True
    return frame


def test_train_models_uses_each_familys_rows_minus_late_and_new() -> None:
    models = train_models(
        _combined_frame(), detector={"name": "iforest", "params": {"n_estimators": 20}}
    )
    assert set(models.models) == {"code", "auth"}
    assert models.models["code"].window.rows == 280
    assert models.models["auth"].window.rows == 300
    assert "infra" in models.skipped
    assert "5 rows" in models.skipped["service"]
    assert models.models["code"].window.first == START + pd.Timedelta(minutes=20)
    assert models.models["code"].window.actors == 25


def test_too_few_rows_skips_the_family_with_a_reason() -> None:
    small = {"code": ordinary_frame(FAMILIES["code"], rows=MIN_TRAINING_ROWS - 1)}
    models = train_models(small)
    assert len(models) == 0
    assert "at least" in models.skipped["code"]


def test_missing_features_raise_config_error_naming_the_family(code_frame: pd.DataFrame) -> None:
    with pytest.raises(ConfigError) as raised:
        train_family("code", code_frame.drop(columns=["actor.distinct_repos.1h"]))
    assert raised.value.where == "code"
    assert "actor.distinct_repos.1h" in str(raised.value)


def test_model_records_schema_hash_and_population(
    code_model: TrainedModel, code_frame: pd.DataFrame
) -> None:
    assert code_model.features == FAMILIES["code"].features
    assert code_model.schema_hash == schema_hash(FAMILIES["code"].features)
    column = code_frame["actor.distinct_repos.1h"]
    stats = code_model.population["actor.distinct_repos.1h"]
    assert stats.median == float(column.median())
    assert stats.p95 == float(np.percentile(column, 95))


def test_same_seed_gives_identical_models(
    code_frame: pd.DataFrame, code_model: TrainedModel
) -> None:
    again = train_family(
        "code", code_frame, target_alert_rate=code_model.calibration.target_alert_rate, seed=1
    )
    matrix = code_frame.loc[:, list(code_model.features)].to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(again.raw_scores(matrix), code_model.raw_scores(matrix))
    assert again.calibration == code_model.calibration
