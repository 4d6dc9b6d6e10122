"""``ciwatch replay --learn``: learning over event time, as the daemon does, deterministically.

One small generated world (6 days, 20 people) is replayed with models learnt
from it (``models.learn.learning_period: 2d``; ECOD, which fits in
milliseconds, keeps the three replays fast). The daemon's start-up choice of
models (:meth:`Pipeline.from_config` with ``bundled_fallback=False``) is
checked here too.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detector.cli import main
from detector.config import load_config
from detector.pipeline import Pipeline
from detector.resources import bundled_models_dir
from detector.sources.files import FileSource
from tests.normalizing import bundled_normalizer

LEARNING = timedelta(days=2)
CONFIG = "models:\n  detector: ecod\n  learn:\n    learning_period: 2d\n"


@dataclass(frozen=True)
class Replay:
    alerts: list[dict[str, Any]]
    err: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("world")
    argv = ["generate", "--seed", "5", "--days", "6", "--people", "20", "--out", str(directory)]
    assert main(argv) == 0
    (directory / "learn.yaml").write_text(CONFIG)
    return directory


def replay(world: Path, out: Path, batch: int, *extra: str) -> Replay:
    """``ciwatch replay --learn`` in process with detection batches of ``batch`` events."""
    out.mkdir(parents=True, exist_ok=True)
    argv = ["replay", str(world / "all.jsonl"), "--config", str(world / "learn.yaml"), "--learn"]
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(err):
        patch.setattr("detector.cli.replay._BATCH", batch)
        assert main([*argv, "--alerts-out", str(out / "alerts.jsonl"), *extra]) == 0
    lines = (out / "alerts.jsonl").read_text().splitlines()
    return Replay([json.loads(line) for line in lines], err.getvalue())


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("learnt") / "state"


@pytest.fixture(scope="module")
def first(world: Path, state: Path) -> Replay:
    return replay(world, state.parent / "out", 500, "--learn-dir", str(state))


@pytest.fixture(scope="module")
def first_event(world: Path) -> datetime:
    with FileSource([world / "all.jsonl"]) as source:
        records = [record for batch in source.batches(1000) for record in batch]
    return min(event.time for event in bundled_normalizer().normalize_batch(records).events)


def _time(alert: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(alert["time"].replace("Z", "+00:00"))


def _ids(run: Replay) -> list[tuple[str, int]]:
    return sorted((alert["id"], alert["revision"]) for alert in run.alerts)


def test_no_anomaly_alert_inside_the_learning_period(first: Replay, first_event: datetime) -> None:
    anomalies = [alert for alert in first.alerts if alert["kind"] == "anomaly"]
    assert anomalies, "the learnt models must alert after the learning period"
    assert min(_time(alert) for alert in anomalies) >= first_event + LEARNING
    held = re.search(r"([\d,]+) anomalies scored in the learning period", first.err)
    assert held is not None and int(held[1].replace(",", "")) > 0, first.err


def test_generations_and_history_are_kept_in_the_learn_dir(first: Replay, state: Path) -> None:
    models = state / "models"
    generations = sorted(models.glob("gen-*"))
    assert generations, "no generation published"
    current = int((models / "current").read_text())
    assert (models / f"gen-{current:06d}" / "models").is_dir()
    checks = (models / "checks.jsonl").read_text().splitlines()
    assert len(checks) >= len(generations)
    assert list((state / "history").glob("*/*.parquet")), "the history was not written"


def test_the_summary_reports_the_learning(
    first: Replay, first_event: datetime, state: Path
) -> None:
    start = (first_event + LEARNING).isoformat()
    assert f"learning     alerts from {start};" in first.err
    assert "anomalies scored in the learning period, not alerted" in first.err
    current = int((state / "models" / "current").read_text())
    assert f"current {current}" in first.err


def test_alerts_do_not_depend_on_the_batch_size(first: Replay, world: Path, tmp_path: Path) -> None:
    other = replay(world, tmp_path, 37)
    assert _ids(other) == _ids(first)


def test_the_same_files_give_the_same_alerts_again(
    first: Replay, world: Path, tmp_path: Path
) -> None:
    again = replay(world, tmp_path, 500, "--learn-dir", str(tmp_path / "state"))
    strip = [{**alert, "detected_at": None} for alert in first.alerts]
    assert [{**alert, "detected_at": None} for alert in again.alerts] == strip


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--learn", "--models", "{models}"], "--models: --learn needs models.dir null"),
        (["--learn-dir", "{dir}"], "--learn-dir: --learn-dir needs --learn"),
    ],
)
def test_contradicting_options_are_one_line_and_exit_2(
    world: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    says: str,
) -> None:
    models = bundled_models_dir()
    assert models is not None
    argv = [opt.format(models=models, dir=tmp_path / "state") for opt in options]
    code = main(
        ["replay", str(world / "all.jsonl"), "--alerts-out", str(tmp_path / "a.jsonl"), *argv]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("ciwatch: error: ")
    assert says in err
    assert not (tmp_path / "state").exists()


def test_the_daemon_uses_no_bundled_models_unless_told(tmp_path: Path) -> None:
    learning = load_config(None)
    assert learning.models.dir is None
    pipeline = Pipeline.from_config(learning, learn_dir=tmp_path, bundled_fallback=False)
    assert pipeline.models_dir is None and pipeline.learner is not None
    assert pipeline.scorer is not None and pipeline.scorer.describe() == []  # learning, no model
    bundled = tmp_path / "bundled.yaml"
    bundled.write_text("models:\n  dir: bundled\n")
    told = Pipeline.from_config(
        load_config(bundled), learn_dir=tmp_path / "other", bundled_fallback=False
    )
    assert told.learner is None and told.models_dir == bundled_models_dir()
    assert told.scorer is not None and told.scorer.describe()
    assert not (tmp_path / "other").exists()
