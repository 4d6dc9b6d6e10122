"""Model files are plain arrays: exact round trips, no pickle on load, refusals in one line."""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from detector.features.families import FAMILIES
from detector.scoring.envelope import ENVELOPE_FORMAT, ModelError, load_models, save_models
from detector.scoring.training import ModelSet, train_models
from tests.unit.scoring.synthetic import ordinary_frame

CREATED = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
FAMILY = "infra"
SMALL_FOREST = {"name": "iforest", "params": {"n_estimators": 30}}
SAVEABLE_SPECS: list[Any] = [
    SMALL_FOREST,
    "ecod",
    {"name": "ensemble", "members": [SMALL_FOREST, "ecod"]},
    {"name": "ensemble", "members": [SMALL_FOREST, "pyod:HBOS"]},
    "pyod:ECOD",
    "pyod:COPOD",
]


class _WritesMarker:
    """Unpickling this creates a file: proof that a pickle ran, if the file appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _frames() -> dict[str, Any]:
    return {FAMILY: ordinary_frame(FAMILIES[FAMILY], rows=300, seed=2)}


def _matrix() -> np.ndarray:
    probe = ordinary_frame(FAMILIES[FAMILY], rows=80, seed=9)
    rows = probe[list(FAMILIES[FAMILY].features)].to_numpy(dtype=np.float64)
    return np.vstack([rows, rows[:5] * 40.0])  # some far outside the training range


def _rehash(envelope: Path, artifact: Path) -> None:
    """What someone who can write the directory does: make the envelope agree again."""
    data = orjson.loads(envelope.read_bytes())
    data["artifact"] = artifact.name
    data["artifact_sha256"] = hashlib.sha256(artifact.read_bytes()).hexdigest()
    envelope.write_bytes(orjson.dumps(data))


@pytest.fixture
def saved(model_set: ModelSet, tmp_path: Path) -> Path:
    save_models(model_set, tmp_path / "models", CREATED)
    return tmp_path / "models"


@pytest.mark.parametrize("spec", SAVEABLE_SPECS, ids=str)
def test_every_saveable_detector_scores_identically_after_a_round_trip(
    spec: Any, tmp_path: Path
) -> None:
    models = train_models(_frames(), detector=spec)
    save_models(models, tmp_path, CREATED)
    loaded = load_models(tmp_path).models[FAMILY]
    original = models.models[FAMILY]
    matrix = _matrix()
    assert np.array_equal(loaded.raw_scores(matrix), original.raw_scores(matrix))
    assert np.array_equal(loaded.scores(matrix), original.scores(matrix))
    assert orjson.loads((tmp_path / f"{FAMILY}.json").read_bytes())["format"] == ENVELOPE_FORMAT


@pytest.mark.parametrize("spec", ["pyod:IForest", {"name": "ensemble", "members": ["pyod:KNN"]}])
def test_a_detector_that_is_not_plain_data_is_refused_at_save_time(
    spec: Any, tmp_path: Path
) -> None:
    models = train_models(_frames(), detector=spec)
    with pytest.raises(ModelError) as raised:
        save_models(models, tmp_path / "out", CREATED)
    message = str(raised.value)
    assert "\n" not in message
    assert "pyod:" in message and "saveable: iforest, ecod, ensemble" in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_object_array_is_refused_without_running_its_pickle(saved: Path) -> None:
    marker = saved.parent / "pickle-ran"
    buffer = io.BytesIO()
    np.savez(buffer, columns=np.array([_WritesMarker(marker)], dtype=object))
    artifact = saved / "code.npz"
    artifact.write_bytes(buffer.getvalue())
    _rehash(saved / "code.json", artifact)
    with pytest.raises(ModelError) as raised:
        load_models(saved)
    assert not marker.exists()
    assert raised.value.where == str(artifact)
    assert "\n" not in str(raised.value) and "plain arrays" in str(raised.value)
    # The control: read the way a pickle-based loader would, the same file does run code.
    np.load(artifact, allow_pickle=True)["columns"]
    assert marker.exists()


def test_an_old_joblib_directory_is_refused_with_a_request_to_retrain(saved: Path) -> None:
    marker = saved.parent / "pickle-ran"
    for family in FAMILIES:
        (saved / f"{family}.npz").unlink()
        old = saved / f"{family}.joblib"
        old.write_bytes(pickle.dumps(_WritesMarker(marker)))
        envelope = saved / f"{family}.json"
        _rehash(envelope, old)
        data = orjson.loads(envelope.read_bytes())
        envelope.write_bytes(orjson.dumps({**data, "format": 1}))
    with pytest.raises(ModelError) as raised:
        load_models(saved)
    message = str(raised.value)
    assert "retrain" in message and "ciwatch train" in message and "\n" not in message
    assert not marker.exists()


def test_loading_never_unpickles(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError("pickle used while loading models")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    assert set(load_models(saved).models) == set(FAMILIES)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _not_a_zip(path: Path) -> None:
    path.write_bytes(pickle.dumps([1, 2, 3]))


def _wrong_width(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        arrays = {
            name.removesuffix(".npy"): np.load(archive.open(name)) for name in archive.namelist()
        }
    arrays["n_features"] = np.asarray(3)
    arrays["feature"] = np.minimum(arrays["feature"], 2)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("damage", [_truncate, _not_a_zip, _wrong_width])
def test_arrays_with_a_matching_hash_that_do_not_fit_are_one_line(saved: Path, damage: Any) -> None:
    artifact = saved / "auth.npz"
    damage(artifact)
    _rehash(saved / "auth.json", artifact)
    with pytest.raises(ModelError) as raised:
        load_models(saved)
    assert raised.value.where == str(artifact)
    assert "\n" not in str(raised.value)


def test_the_bundled_models_are_plain_arrays() -> None:
    from detector.resources import bundled_models_dir

    directory = bundled_models_dir()
    assert directory is not None
    assert not list(directory.glob("*.joblib"))
    for family in FAMILIES:
        envelope = orjson.loads((directory / f"{family}.json").read_bytes())
        assert envelope["format"] == ENVELOPE_FORMAT and envelope["artifact"] == f"{family}.npz"
        with np.load(directory / f"{family}.npz", allow_pickle=False) as arrays:
            assert all(arrays[name].dtype.kind in "biuf" for name in arrays.files)
