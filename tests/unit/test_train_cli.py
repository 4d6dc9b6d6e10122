"""``ciwatch train`` end to end in process: model files that replay then loads and uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.cli import main
from detector.generator import MERGED, generate, write
from detector.scoring import load_models


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write(generate(seed=5, days=4, people=20, attacks=False), out)
    return out


def test_train_writes_verified_models_and_cards(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    assert main(["train", str(world / MERGED), "--out", str(models)]) == 0
    loaded = load_models(models)
    assert set(loaded.models) == {"auth", "code", "infra", "service"}
    for family in loaded.models:
        envelope = json.loads((models / f"{family}.json").read_text())
        assert envelope["training"]["rows"] == loaded.models[family].window.rows > 0
        assert envelope["schema_hash"] == loaded.models[family].schema_hash
        assert (models / f"{family}.md").read_text().startswith("# Model card")
    assert "4 models" in capsys.readouterr().out


def test_training_twice_gives_the_same_files(world: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert main(["train", str(world / MERGED), "--out", str(tmp_path / name)]) == 0
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def test_replay_accepts_the_trained_models(world: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    main(["train", str(world / MERGED), "--out", str(models)])
    alerts = tmp_path / "alerts.jsonl"
    command = ["replay", str(world / MERGED), "--models", str(models), "--alerts-out", str(alerts)]
    assert main(command) == 0
    assert alerts.exists()


def test_a_tampered_model_is_refused_in_one_line(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    main(["train", str(world / MERGED), "--out", str(models)])
    artifact = models / "code.npz"
    artifact.write_bytes(artifact.read_bytes() + b"x")
    capsys.readouterr()
    code = main(
        [
            "replay",
            str(world / MERGED),
            "--models",
            str(models),
            "--alerts-out",
            str(tmp_path / "a"),
        ]
    )
    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("ciwatch: error: ") and "code" in line
