"""A model directory: per family an artifact, its JSON envelope and a Markdown model card.

``<family>.joblib`` holds the fitted detector only. ``<family>.json`` (the
envelope) holds everything else as plain data: format version, family,
detector spec, library versions, feature names and their schema hash, the
training window and row counts, the calibration (threshold, score mapping),
the population baseline, the SHA-256 of the artifact and ``created_at``.
``<family>.md`` is the model card for people (:mod:`detector.scoring.card`).

:func:`load_models` checks, before unpickling anything, that the envelope is
well-formed, that its schema hash matches the running code's features, and
that the artifact's SHA-256 matches the envelope; any mismatch raises
:class:`ModelError` naming the file. joblib (pickle) runs only after that.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import tempfile
from collections.abc import Mapping
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]  # no stubs
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from detector.errors import ConfigError
from detector.features.families import FAMILIES, schema_hash
from detector.scoring.calibration import Calibration, FeatureStats
from detector.scoring.card import model_card
from detector.scoring.detectors import Detector
from detector.scoring.training import ModelSet, TrainedModel, TrainingWindow

__all__ = [
    "ENVELOPE_FORMAT",
    "ModelError",
    "current_schema_hashes",
    "library_versions",
    "load_models",
    "save_models",
]

ENVELOPE_FORMAT = 1
_LIBRARIES = ("scikit-learn", "pyod", "numpy", "pandas", "joblib")


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
    """The envelope's JSON, validated before anything is unpickled."""

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
    """Versions of Python and the libraries a pickled detector depends on."""
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
    """Write each model's artifact, envelope and card into ``directory``; the paths written.

    ``created_at`` is supplied by the caller (deterministic runs pass a fixed
    time). Each file is written to a temporary name and renamed into place.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    versions = library_versions()
    for model in models:
        buffer = io.BytesIO()
        # Compressed: forests and the training rows some detectors keep shrink ~6x.
        joblib.dump(model.detector, buffer, compress=3)
        artifact = buffer.getvalue()
        envelope = _envelope(model, versions, hashlib.sha256(artifact).hexdigest(), created_at)
        names = (f"{model.family}.joblib", f"{model.family}.json", f"{model.family}.md")
        contents = (
            artifact,
            orjson.dumps(envelope, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n",
            model_card(model, envelope).encode("utf-8"),
        )
        for name, content in zip(names, contents, strict=True):
            _write_atomically(directory / name, content)
            written.append(directory / name)
    return written


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
    if envelope.family not in expected:
        raise ModelError(f"unknown model family {envelope.family!r}", where=where)
    if envelope.format != ENVELOPE_FORMAT:
        raise ModelError(
            f"envelope format {envelope.format}, this version reads {ENVELOPE_FORMAT}", where=where
        )
    if schema_hash(envelope.features) != envelope.schema_hash:
        raise ModelError("schema hash does not match the envelope's feature list", where=where)
    if envelope.schema_hash != expected[envelope.family]:
        raise ModelError(
            "trained on another feature schema than this version computes; retrain "
            f"(model {envelope.schema_hash[:12]}, expected {expected[envelope.family][:12]})",
            where=where,
        )
    plain_name = envelope.artifact not in ("", ".", "..") and Path(envelope.artifact).name == (
        envelope.artifact
    )
    artifact_path = path.with_name(envelope.artifact) if plain_name else path
    if not plain_name or not artifact_path.is_file():
        raise ModelError(f"artifact {envelope.artifact!r} not found beside it", where=where)
    artifact = artifact_path.read_bytes()
    if hashlib.sha256(artifact).hexdigest() != envelope.artifact_sha256:
        message = "SHA-256 does not match its envelope; refusing to load"
        raise ModelError(message, where=str(artifact_path))
    # Unpickle only now, and the very bytes that were hashed (no second read of the file).
    detector: Detector = joblib.load(io.BytesIO(artifact))
    differences = [
        f"trained with {name} {version}, running {versions.get(name, 'absent')}"
        for name, version in envelope.libraries.items()
        if versions.get(name, "absent") != version
    ]
    return _model(envelope, detector), differences


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
        "artifact": f"{model.family}.joblib",
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


def _write_atomically(path: Path, content: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        # mkstemp creates 0600; model files are read by other users (containers, packages).
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
