"""A model directory: per family its arrays, its JSON envelope and a Markdown model card.

``<family>.npz`` holds the fitted detector's state as plain numeric arrays
(tree nodes, sorted training columns, reference scores; see
:meth:`~detector.scoring.base.Detector.to_arrays`). ``<family>.json`` (the
envelope) holds everything else as plain data: format version, family,
detector spec, library versions, feature names and their schema hash, the
training window and row counts, the calibration (threshold, score mapping),
the population baseline, the SHA-256 of the arrays and ``created_at``.
``<family>.md`` is the model card for people (:mod:`detector.scoring.card`).

:func:`load_models` checks that the envelope is well-formed, that its schema
hash matches the running code's features and that the arrays' SHA-256
matches the envelope, then reads the arrays with ``allow_pickle=False`` and
rebuilds the detector from them: loading a model never runs code from the
file. Any problem raises :class:`ModelError` (one line, naming the file).
Directories of the pickle format (``<family>.joblib``, envelope format 1) are
refused with a request to retrain.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from detector.errors import CiwatchError, ConfigError
from detector.features.families import FAMILIES, schema_hash
from detector.files import write_atomically
from detector.scoring.calibration import Calibration, FeatureStats
from detector.scoring.card import model_card
from detector.scoring.detectors import SAVEABLE, Detector, StateError, detector_from_arrays
from detector.scoring.npz import NpzError, read_npz, write_npz
from detector.scoring.training import ModelSet, TrainedModel, TrainingWindow

__all__ = [
    "ENVELOPE_FORMAT",
    "ModelError",
    "current_schema_hashes",
    "library_versions",
    "load_models",
    "save_models",
]

ENVELOPE_FORMAT = 2
"""1: a pickled detector (``.joblib``), no longer read; 2: plain arrays (``.npz``)."""
_PICKLE_FORMAT = 1
_LIBRARIES = ("scikit-learn", "pyod", "numpy", "pandas")


class ModelError(ConfigError):
    """A model directory or file cannot be used; ``where`` names the file."""


class _Window(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    first: datetime | None
    last: datetime | None
    rows: int
    actors: int


class _Calibration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    method: str
    threshold_score: float
    high_score: float
    target_alert_rate: float
    threshold: float
    spread: float
    quantiles: list[float]
    percentiles: dict[str, float]


class _Stats(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    median: float
    p95: float


class _Envelope(BaseModel):
    """The envelope's JSON, validated before the arrays are read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: int
    family: str
    detector: dict[str, Any]
    libraries: dict[str, str]
    features: list[str]
    schema_hash: str
    training: _Window
    calibration: _Calibration
    population: dict[str, _Stats]
    artifact: str
    artifact_sha256: str
    created_at: datetime


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that fitted (and score) the detectors."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def current_schema_hashes() -> dict[str, str]:
    """Family name → the schema hash of its features in the running code."""
    return {name: schema_hash(family.features) for name, family in FAMILIES.items()}


def save_models(models: ModelSet, directory: Path, created_at: datetime) -> list[Path]:
    """Write each model's arrays, envelope and card into ``directory``; the paths written.

    ``created_at`` is supplied by the caller (deterministic runs pass a fixed
    time). Each file is replaced atomically and durably
    (:func:`detector.files.write_atomically`).
    A detector that is not plain data (see :data:`SAVEABLE`) raises
    :class:`ModelError` before anything is written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    versions = library_versions()
    artifacts = {model.family: _artifact(model) for model in models}  # all refused, or none
    for model in models:
        artifact = artifacts[model.family]
        envelope = _envelope(model, versions, hashlib.sha256(artifact).hexdigest(), created_at)
        names = (f"{model.family}.npz", f"{model.family}.json", f"{model.family}.md")
        contents = (
            artifact,
            orjson.dumps(envelope, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n",
            model_card(model, envelope).encode("utf-8"),
        )
        for name, content in zip(names, contents, strict=True):
            # Readable by everyone: models are read by other users (containers, packages).
            write_atomically(directory / name, content, mode=0o644)
            written.append(directory / name)
    return written


def _artifact(model: TrainedModel) -> bytes:
    """The detector's arrays as ``.npz`` bytes, or :class:`ModelError` if it is not plain data."""
    name = model.detector.spec.get("name", "?")
    try:
        return write_npz(model.detector.to_arrays())
    except (StateError, NpzError, AttributeError) as error:
        message = (
            f"detector {name} cannot be saved as plain arrays ({error}); "
            f"saveable: {', '.join(SAVEABLE)}"
        )
        raise ModelError(message, where=model.family) from None


def load_models(
    directory: Path, expected_schema_hashes: Mapping[str, str] | None = None
) -> ModelSet:
    """Every model of ``directory``, verified (see the module docs).

    ``expected_schema_hashes``: family → hash the running features have
    (default :func:`current_schema_hashes`). A family not in it, a schema or
    SHA-256 mismatch, or a malformed envelope raises :class:`ModelError`.
    """
    expected = current_schema_hashes() if expected_schema_hashes is None else expected_schema_hashes
    envelopes = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not envelopes:
        raise ModelError("no model envelopes (<family>.json) found", where=str(directory))
    models: dict[str, TrainedModel] = {}
    warnings: list[str] = []
    versions = library_versions()
    for path in envelopes:
        model, differences = _load_one(path, expected, versions)
        models[model.family] = model
        warnings += [f"{path}: {difference}" for difference in differences]
    return ModelSet(models, warnings=tuple(warnings))


def _load_one(
    path: Path, expected: Mapping[str, str], versions: Mapping[str, str]
) -> tuple[TrainedModel, list[str]]:
    envelope = _read_envelope(path)
    where = str(path)
    _check_envelope(envelope, expected, where)
    plain_name = envelope.artifact not in ("", ".", "..") and Path(envelope.artifact).name == (
        envelope.artifact
    )
    artifact_path = path.with_name(envelope.artifact) if plain_name else path
    if not plain_name or not artifact_path.is_file():
        raise ModelError(f"artifact {envelope.artifact!r} not found beside it", where=where)
    try:
        artifact = artifact_path.read_bytes()
    except OSError as error:
        raise ModelError(f"cannot read: {error}", where=str(artifact_path)) from None
    if hashlib.sha256(artifact).hexdigest() != envelope.artifact_sha256:
        message = "SHA-256 does not match its envelope; refusing to load"
        raise ModelError(message, where=str(artifact_path))
    # Read only now, and the very bytes that were hashed (no second read of the file).
    detector = _rebuild(envelope, artifact, str(artifact_path))
    differences = [
        f"trained with {name} {version}, running {versions.get(name, 'absent')}"
        for name, version in envelope.libraries.items()
        if versions.get(name, "absent") != version
    ]
    return _model(envelope, detector), differences


def _check_envelope(envelope: _Envelope, expected: Mapping[str, str], where: str) -> None:
    if envelope.format == _PICKLE_FORMAT:
        raise ModelError(
            "a model of the old pickle format (.joblib), which is no longer loaded; retrain "
            "it: ciwatch train HISTORY.jsonl --out DIR",
            where=where,
        )
    if envelope.format != ENVELOPE_FORMAT:
        raise ModelError(
            f"envelope format {envelope.format}, this version reads {ENVELOPE_FORMAT}", where=where
        )
    if envelope.family not in expected:
        raise ModelError(f"unknown model family {envelope.family!r}", where=where)
    if schema_hash(envelope.features) != envelope.schema_hash:
        raise ModelError("schema hash does not match the envelope's feature list", where=where)
    if envelope.schema_hash != expected[envelope.family]:
        raise ModelError(
            "trained on another feature schema than this version computes; retrain "
            f"(model {envelope.schema_hash[:12]}, expected {expected[envelope.family][:12]})",
            where=where,
        )


def _rebuild(envelope: _Envelope, artifact: bytes, where: str) -> Detector:
    """The detector from its arrays, checked by scoring one row of the envelope's width."""
    try:
        detector = detector_from_arrays(envelope.detector, read_npz(artifact))
        detector.decision_function(np.zeros((1, len(envelope.features))))
    except (CiwatchError, ValueError, TypeError, IndexError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(f"cannot rebuild the detector: {detail}", where=where) from None
    return detector


def _read_envelope(path: Path) -> _Envelope:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise ModelError(f"cannot read envelope: {error}", where=str(path)) from None
    try:
        return _Envelope.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise ModelError(f"invalid envelope: {location}: {first['msg']}", where=str(path)) from None


def _envelope(
    model: TrainedModel, versions: Mapping[str, str], sha256: str, created_at: datetime
) -> dict[str, Any]:
    window = model.window
    return {
        "format": ENVELOPE_FORMAT,
        "family": model.family,
        "detector": model.detector.spec,
        "libraries": dict(versions),
        "features": list(model.features),
        "schema_hash": model.schema_hash,
        "training": {
            "first": window.first.isoformat() if window.first else None,
            "last": window.last.isoformat() if window.last else None,
            "rows": window.rows,
            "actors": window.actors,
        },
        "calibration": model.calibration.to_dict(),
        "population": {name: stats.to_dict() for name, stats in model.population.items()},
        "artifact": f"{model.family}.npz",
        "artifact_sha256": sha256,
        "created_at": created_at.isoformat(),
    }


def _model(envelope: _Envelope, detector: Detector) -> TrainedModel:
    training = envelope.training
    return TrainedModel(
        family=envelope.family,
        features=tuple(envelope.features),
        schema_hash=envelope.schema_hash,
        detector=detector,
        calibration=Calibration.from_dict(envelope.calibration.model_dump()),
        population={
            name: FeatureStats(stats.median, stats.p95)
            for name, stats in envelope.population.items()
        },
        window=TrainingWindow(training.first, training.last, training.rows, training.actors),
    )
