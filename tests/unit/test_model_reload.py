"""Hot reload: a new model directory takes effect without a restart; a broken one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.cli import main
from detector.config import ModelSettings, PipelineConfig
from detector.errors import ConfigError
from detector.generator import MERGED, generate, write
from detector.pipeline import Pipeline


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("history")
    write(generate(seed=6, days=4, people=20, attacks=False), out)
    return out / MERGED


def train(history: Path, out: Path, seed: int) -> None:
    assert main(["train", str(history), "--out", str(out), "--seed", str(seed)]) == 0


def pipeline_for(models: Path) -> Pipeline:
    return Pipeline.from_config(PipelineConfig(models=ModelSettings(dir=models)))


def test_unchanged_models_are_not_reloaded(history: Path, tmp_path: Path) -> None:
    train(history, tmp_path, seed=0)
    pipeline = pipeline_for(tmp_path)
    assert pipeline.scorer is not None
    assert pipeline.reload_models() is False


def test_retrained_models_replace_the_scorer(history: Path, tmp_path: Path) -> None:
    train(history, tmp_path, seed=0)
    pipeline = pipeline_for(tmp_path)
    before = pipeline.scorer
    train(history, tmp_path, seed=1)
    assert pipeline.reload_models() is True
    assert pipeline.scorer is not before


def test_a_broken_directory_keeps_the_current_models(history: Path, tmp_path: Path) -> None:
    train(history, tmp_path, seed=0)
    pipeline = pipeline_for(tmp_path)
    before = pipeline.scorer
    artifact = tmp_path / "auth.npz"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    assert pipeline.reload_models() is False
    assert pipeline.scorer is before
    assert pipeline.model_reload_errors == 1
    assert pipeline.last_model_error is not None and "auth" in pipeline.last_model_error


def test_broken_models_at_start_up_are_a_config_error(history: Path, tmp_path: Path) -> None:
    train(history, tmp_path, seed=0)
    (tmp_path / "code.json").write_text("{}")
    with pytest.raises(ConfigError):
        pipeline_for(tmp_path)
