"""Model directories: a faithful round trip, and loud refusal of anything that does not match."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from detector.errors import ConfigError
from detector.features.families import FAMILIES
from detector.scoring.envelope import ModelError, current_schema_hashes, load_models, save_models
from detector.scoring.training import ModelSet, train_models
from tests.unit.scoring.synthetic import ordinary_frame

CREATED = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def saved(model_set: ModelSet, tmp_path: Path) -> Path:
    save_models(model_set, tmp_path / "models", CREATED)
    return tmp_path / "models"


def _edit_envelope(path: Path, change: dict[str, Any]) -> None:
    data = orjson.loads(path.read_bytes())
    data.update(change)
    path.write_bytes(orjson.dumps(data))


def test_round_trip_scores_identically(model_set: ModelSet, saved: Path) -> None:
    loaded = load_models(saved)
    assert set(loaded.models) == set(model_set.models) == set(FAMILIES)
    assert loaded.warnings == ()
    for name, model in model_set.models.items():
        matrix = ordinary_frame(FAMILIES[name], rows=50, seed=8)[list(model.features)].to_numpy()
        np.testing.assert_array_equal(loaded.models[name].scores(matrix), model.scores(matrix))
        assert loaded.models[name].population == model.population
        assert loaded.models[name].window == model.window


def test_directory_holds_artifact_envelope_and_card(saved: Path) -> None:
    assert sorted(path.name for path in saved.iterdir()) == sorted(
        f"{name}.{suffix}" for name in FAMILIES for suffix in ("npz", "json", "md")
    )
    data = orjson.loads((saved / "code.json").read_bytes())
    assert data["created_at"] == CREATED.isoformat()
    assert data["schema_hash"] == current_schema_hashes()["code"]
    assert data["detector"] == {
        "name": "iforest",
        "params": {"n_estimators": 50, "max_samples": 1024},
    }
    assert {"python", "scikit-learn", "pyod", "numpy", "pandas"} <= set(data["libraries"])
    assert data["training"]["rows"] == 400
    card = (saved / "code.md").read_text()
    assert "| p99.9 |" in card
    assert "actor.distinct_repos.1h" in card
    assert "your own" in card


def test_tampered_artifact_is_refused_before_reading(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = saved / "code.npz"
    artifact.write_bytes(artifact.read_bytes() + b"\x00")
    for other in ("auth", "infra"):
        (saved / f"{other}.json").unlink()

    def never(*args: object, **kwargs: object) -> object:
        raise AssertionError("np.load called on an unverified artifact")

    monkeypatch.setattr(np, "load", never)
    with pytest.raises(ModelError) as raised:
        load_models(saved)
    assert raised.value.where == str(artifact)
    assert "SHA-256" in str(raised.value)


def test_schema_mismatch_is_refused_naming_the_envelope(saved: Path) -> None:
    expected = {**current_schema_hashes(), "infra": "0" * 64}
    with pytest.raises(ModelError) as raised:
        load_models(saved, expected)
    assert raised.value.where == str(saved / "infra.json")
    assert "retrain" in str(raised.value)
    assert isinstance(raised.value, ConfigError)
    assert "\n" not in str(raised.value)


def test_feature_list_edited_without_its_hash_is_refused(saved: Path) -> None:
    path = saved / "auth.json"
    features = orjson.loads(path.read_bytes())["features"]
    _edit_envelope(path, {"features": features[::-1]})
    with pytest.raises(ModelError, match="feature list") as raised:
        load_models(saved)
    assert raised.value.where == str(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "colour"),
        ({"threshold": 1.0}, "threshold"),
        ({"format": 99}, "format 99"),
        ({"format": 1}, "retrain"),
        ({"family": "billing"}, "unknown model family"),
        ({"artifact": "../elsewhere.npz"}, "not found"),
    ],
)
def test_malformed_envelope_is_refused(saved: Path, change: dict[str, Any], message: str) -> None:
    _edit_envelope(saved / "code.json", change)
    with pytest.raises(ModelError, match=message) as raised:
        load_models(saved)
    assert raised.value.where == str(saved / "code.json")


def test_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model envelopes"):
        load_models(tmp_path)


def test_library_version_differences_become_warnings(saved: Path) -> None:
    path = saved / "code.json"
    libraries = orjson.loads(path.read_bytes())["libraries"]
    _edit_envelope(path, {"libraries": {**libraries, "scikit-learn": "0.1"}})
    loaded = load_models(saved)
    assert any("scikit-learn 0.1" in warning for warning in loaded.warnings)


def test_pyod_ensemble_round_trips(tmp_path: Path) -> None:
    spec = {"name": "ensemble", "members": ["iforest", "pyod:HBOS"]}
    frames = {"infra": ordinary_frame(FAMILIES["infra"], rows=300)}
    models = train_models(frames, detector=spec)
    save_models(models, tmp_path, CREATED)
    loaded = load_models(tmp_path)
    matrix = frames["infra"][list(FAMILIES["infra"].features)].to_numpy()
    np.testing.assert_array_equal(
        loaded.models["infra"].raw_scores(matrix), models.models["infra"].raw_scores(matrix)
    )
    assert orjson.loads((tmp_path / "infra.json").read_bytes())["detector"]["members"][1] == {
        "name": "pyod:HBOS",
        "params": {},
    }
