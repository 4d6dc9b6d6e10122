"""``ciwatch models list|show|rollback`` on a state dir with real generations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from detector.cli import main
from detector.features.families import FAMILIES
from detector.scoring.generations import GenerationStore, check_models
from detector.scoring.training import ModelSet, train_models
from tests.unit.scoring.synthetic import ordinary_frame

RATE = 0.01
CREATED = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
ROLLED_BACK = (
    "generation {} is current; a running daemon picks it up within reload_every or on SIGHUP\n"
)


@pytest.fixture(scope="module")
def models() -> ModelSet:
    frames = {name: ordinary_frame(FAMILIES[name], rows=300, seed=21) for name in ("auth", "code")}
    return train_models(
        frames, detector={"name": "iforest", "params": {"n_estimators": 20}}, target_alert_rate=RATE
    )


@pytest.fixture
def state_dir(tmp_path: Path, models: ModelSet) -> Path:
    """A state dir with generations 1 and 2 (current), as a daemon leaves it."""
    recent = {name: ordinary_frame(FAMILIES[name], rows=100, seed=22) for name in ("auth", "code")}
    check = check_models(models, recent, target_alert_rate=RATE)
    store = GenerationStore(tmp_path / "models")
    store.publish(models, check, created_at=CREATED)
    store.publish(models, check, created_at=CREATED.replace(day=2), carried=["auth"])
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_shows_each_generation_and_marks_the_current(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run(capsys, "models", "list", "--state-dir", str(state_dir))
    assert (status, err) == (0, "")
    header, rule, first, second = out.splitlines()
    assert header.split() == [
        "generation", "created", "trained", "until", "rows", "families", "check", "current"
    ]  # fmt: skip
    assert set(rule) == {"-", " "}
    assert first.split()[:4] == ["1", "2026-02-01", "12:00", "2026-01-05"]
    assert "600" in first.split() and "auth code" in first and not first.endswith("*")
    assert "2 of 2 passed, carried auth" in second and second.endswith("*")


def test_show_prints_the_current_card_or_the_one_named(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _run(capsys, "models", "show", "--state-dir", str(state_dir))
    assert status == 0 and out.startswith("# Model generation 2\n")
    assert "- Parent: generation 1" in out
    status, out, _ = _run(capsys, "models", "show", "--state-dir", str(state_dir), "1")
    assert status == 0 and out.startswith("# Model generation 1\n")
    status, out, err = _run(capsys, "models", "show", "--state-dir", str(state_dir), "7")
    assert (status, out) == (2, "")
    assert err == f"ciwatch: error: {state_dir / 'models'}: no generation 7\n"


def test_rollback_makes_the_previous_generation_current_then_refuses_in_one_line(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _run(capsys, "models", "rollback", "--state-dir", str(state_dir))
    assert (status, out) == (0, ROLLED_BACK.format(1))
    _, listing, _ = _run(capsys, "models", "list", "--state-dir", str(state_dir))
    assert listing.splitlines()[2].endswith("*")
    status, out, err = _run(capsys, "models", "rollback", "--state-dir", str(state_dir))
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert "no readable generation older than the current 1 (have: 1, 2)" in err
    status, out, _ = _run(capsys, "models", "rollback", "--state-dir", str(state_dir), "--to", "2")
    assert (status, out) == (0, ROLLED_BACK.format(2))
    status, _, err = _run(capsys, "models", "rollback", "--state-dir", str(state_dir), "--to", "5")
    assert status == 2 and err.endswith("no readable generation 5 (have: 1, 2)\n")
    with pytest.raises(SystemExit) as usage:
        main(["models", "rollback", "--state-dir", str(state_dir), "--to", "0"])
    assert usage.value.code == 2
    assert "models rollback: argument --to: must be at least 1, got 0" in capsys.readouterr().err


def test_a_current_pointing_at_a_damaged_generation_is_reported(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (state_dir / "models" / "gen-000002" / "generation.json").write_text("not json")
    status, out, err = _run(capsys, "models", "list", "--state-dir", str(state_dir))
    assert status == 0
    assert len(out.splitlines()) == 4  # header, rule, generation 1, the note
    assert out.splitlines()[-1].startswith(
        "no current generation: models/current names generation 2, which is missing or damaged"
    )
    assert "skipping a damaged generation" in err and "gen-000002" in err
    status, _, err = _run(capsys, "models", "show", "--state-dir", str(state_dir))
    assert status == 2 and "names generation 2, which is missing or damaged" in err


def test_an_empty_or_missing_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "models", "list", "--state-dir", str(tmp_path))
    assert (status, out) == (0, f"no model generations in {tmp_path / 'models'}\n")
    assert not (tmp_path / "models").exists()  # listing never creates anything
    missing = tmp_path / "nowhere"
    for action in ("list", "show", "rollback"):
        status, out, err = _run(capsys, "models", action, "--state-dir", str(missing))
        assert (status, out) == (2, "")
        assert err == f"ciwatch: error: {missing}: no such directory\n"
    status, _, err = _run(capsys, "models", "rollback", "--state-dir", str(tmp_path))
    assert status == 2 and err.endswith(f"{tmp_path / 'models'}: no model generations here\n")
