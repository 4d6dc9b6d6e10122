"""A reload that fails (hash, format, schema, arrays) keeps the running models, counted and logged.

Checked on the pipeline and on the daemon, the latter through SIGHUP: the
handler only raises a flag, and the loop's reload step then runs.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from detector.config import ModelSettings, PipelineConfig, load_config
from detector.daemon import Daemon
from detector.pipeline import Pipeline
from detector.scoring.envelope import save_models
from detector.scoring.training import ModelSet

CREATED = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def _edit(envelope: Path, **changes: object) -> None:
    envelope.write_bytes(orjson.dumps({**orjson.loads(envelope.read_bytes()), **changes}))


def _bad_hash(directory: Path) -> None:
    artifact = directory / "auth.npz"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")


def _old_format(directory: Path) -> None:
    _edit(directory / "auth.json", format=1, artifact="auth.joblib")


def _other_schema(directory: Path) -> None:
    _edit(directory / "auth.json", schema_hash="0" * 64)


def _unreadable_arrays(directory: Path) -> None:
    """Garbage whose hash the envelope was made to match: fails only when read."""
    artifact = directory / "auth.npz"
    artifact.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    _edit(
        directory / "auth.json", artifact_sha256=hashlib.sha256(artifact.read_bytes()).hexdigest()
    )


DAMAGES: list[Callable[[Path], None]] = [_bad_hash, _old_format, _other_schema, _unreadable_arrays]


@pytest.fixture
def models(model_set: ModelSet, tmp_path: Path) -> Path:
    save_models(model_set, tmp_path / "models", CREATED)
    return tmp_path / "models"


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda damage: damage.__name__)
def test_the_pipeline_keeps_its_models_when_a_reload_fails(
    models: Path, damage: Callable[[Path], None]
) -> None:
    pipeline = Pipeline.from_config(PipelineConfig(models=ModelSettings(dir=models)))
    before = pipeline.scorer
    assert before is not None
    described = before.describe()
    damage(models)
    assert pipeline.reload_models(force=True) is False
    assert pipeline.scorer is before and before.describe() == described
    assert pipeline.model_reload_errors == 1
    error = pipeline.last_model_error
    assert error is not None and "auth" in error and "\n" not in error


@pytest.fixture
def sighup_handled() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, previous)


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda damage: damage.__name__)
def test_sighup_with_broken_models_keeps_the_daemon_and_its_models(
    models: Path, tmp_path: Path, damage: Callable[[Path], None], sighup_handled: None
) -> None:
    config = tmp_path / "ciwatch.yaml"
    config.write_text(f"models: {{dir: {models}}}\n")
    lines: list[str] = []
    daemon = Daemon(load_config(config), [], log=lines.append)
    before = daemon.pipeline.scorer
    daemon.signals.install()
    damage(models)
    os.kill(os.getpid(), signal.SIGHUP)
    deadline = time.monotonic() + 5.0
    while not daemon.signals.reload:
        assert time.monotonic() < deadline, "SIGHUP was not handled"
        time.sleep(0.01)
    # The loop's reload step, as it runs after a SIGHUP.
    forced, daemon.signals.reload = daemon.signals.reload, False
    daemon._reload_models(forced=forced)
    assert daemon.pipeline.scorer is before
    errors = daemon.metrics.registry.get_sample_value("ciwatch_model_reload_errors_total")
    assert errors == 1
    assert any("models not reloaded" in line and "auth" in line for line in lines)
