"""Model generations: checks before a swap, atomic publish, pruning, rollback, damaged files."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd  # type: ignore[import-untyped]
import pytest

from detector.errors import ConfigError
from detector.features.families import FAMILIES
from detector.scoring.detectors import Matrix
from detector.scoring.envelope import ModelError
from detector.scoring.generations import (
    CheckOutcome,
    GenerationStore,
    check_models,
)
from detector.scoring.model_checks import allowed_alerts
from detector.scoring.training import ModelSet, TrainedModel, train_models
from tests.unit.scoring.synthetic import ordinary_frame

RATE = 0.01
SPEC = {"name": "iforest", "params": {"n_estimators": 30}}
FAMILY_NAMES = ("auth", "code")
CREATED = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def models() -> ModelSet:
    frames = {name: ordinary_frame(FAMILIES[name], rows=400, seed=11) for name in FAMILY_NAMES}
    return train_models(frames, detector=SPEC, target_alert_rate=RATE)


@pytest.fixture(scope="module")
def recent() -> dict[str, pd.DataFrame]:
    """Rows like the training rows, but not among them (another seed)."""
    return {name: ordinary_frame(FAMILIES[name], rows=300, seed=12) for name in FAMILY_NAMES}


@pytest.fixture(scope="module")
def passed(models: ModelSet, recent: dict[str, pd.DataFrame]) -> CheckOutcome:
    return check_models(models, recent, target_alert_rate=RATE)


def _publish(store: GenerationStore, models: ModelSet, check: CheckOutcome, day: int) -> int:
    return store.publish(models, check, created_at=CREATED.replace(day=day)).number


# --- checks ---------------------------------------------------------------------------


def test_held_out_rows_like_the_training_rows_pass(passed: CheckOutcome) -> None:
    assert passed.passed_families == FAMILY_NAMES
    assert passed.failed_families == ()
    for check in passed.families.values():
        assert check.rows == 300
        assert check.alert_rate is not None
        assert check.alert_rate <= allowed_alerts(300, RATE, 5.0) / 300
        assert check.spread is not None and check.spread > 1e-6
        assert check.reason.startswith("alert rate ")
        assert "on 300 recent rows (bound" in check.reason
    assert passed.summary() == "2 of 2 families passed"


def test_rows_far_off_the_training_rows_fail_on_the_alert_rate(
    models: ModelSet, recent: dict[str, pd.DataFrame]
) -> None:
    drifted = recent["code"].copy()
    features = list(FAMILIES["code"].features)
    drifted[features] = drifted[features] * 40 + 25
    outcome = check_models(models, {**recent, "code": drifted}, target_alert_rate=RATE)
    assert outcome.failed_families == ("code",)
    failed = outcome.families["code"]
    assert failed.alert_rate is not None and failed.alert_rate > 0.5
    assert "alert rate" in failed.reason
    assert outcome.summary().startswith("1 of 2 families passed (failed code: alert rate ")


def test_the_bound_allows_for_small_samples() -> None:
    assert allowed_alerts(1000, 0.001, 5.0) == 7
    assert allowed_alerts(100, 0.001, 5.0) == 3
    assert allowed_alerts(0, 0.001, 5.0) == 2


def test_a_model_of_constant_training_data_is_collapsed_and_fails() -> None:
    features = FAMILIES["auth"].features
    constant = pd.DataFrame({name: np.ones(200) for name in features})
    collapsed = train_models({"auth": constant}, detector=SPEC, target_alert_rate=RATE)
    varied = {"auth": ordinary_frame(FAMILIES["auth"], rows=100, seed=4)}
    outcome = check_models(collapsed, varied, target_alert_rate=RATE)
    assert outcome.failed_families == ("auth",)
    assert outcome.families["auth"].reason.startswith("collapsed score distribution (spread 0")


def test_identical_recent_rows_are_not_taken_for_a_collapse(
    models: ModelSet, recent: dict[str, pd.DataFrame]
) -> None:
    same = pd.concat([recent["auth"].iloc[[0]]] * 50, ignore_index=True)
    outcome = check_models(models, {"auth": same}, target_alert_rate=RATE)
    assert outcome.families["auth"].passed, outcome.families["auth"].reason


class _NaNDetector:
    """A detector whose scores are NaN (a broken fit), for the finite-scores check."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def fit(self, matrix: Matrix) -> _NaNDetector:
        return self

    def decision_function(self, matrix: Matrix) -> Matrix:
        return np.full(len(matrix), np.nan)

    def to_arrays(self) -> dict[str, Matrix]:
        return {}


def test_non_finite_scores_fail_without_raising(
    models: ModelSet, recent: dict[str, pd.DataFrame]
) -> None:
    code = models.models["code"]
    broken_detector = dataclasses.replace(code, detector=_NaNDetector(code.detector.spec))
    percentiles = {**code.calibration.percentiles, "p99": float("nan")}
    broken_calibration = dataclasses.replace(
        code, calibration=dataclasses.replace(code.calibration, percentiles=percentiles)
    )
    for broken in (broken_detector, broken_calibration):
        outcome = check_models(ModelSet({"code": broken}), recent, target_alert_rate=RATE)
        assert outcome.families["code"].reason == "non-finite scores"
        assert not outcome.families["code"].passed


def test_odd_recent_rows_fail_in_one_line_without_raising(
    models: ModelSet, recent: dict[str, pd.DataFrame]
) -> None:
    with_nan = recent["code"].copy()
    with_nan.iloc[3, 0] = np.nan
    text = recent["code"].copy()
    text[FAMILIES["code"].features[0]] = "many"
    missing = recent["code"].drop(columns=[FAMILIES["code"].features[1]])
    reasons = [
        check_models(models, {"code": frame}, target_alert_rate=RATE).families["code"].reason
        for frame in (with_nan, text, missing)
    ]
    assert reasons == [
        "non-finite feature values in 1 of 300 recent rows",
        "recent rows hold non-numeric feature values",
        f"recent rows lack features {[FAMILIES['code'].features[1]]}",
    ]


def test_too_few_recent_rows_pass_with_a_reason(
    models: ModelSet, recent: dict[str, pd.DataFrame]
) -> None:
    outcome = check_models(models, {"code": recent["code"].head(3)}, target_alert_rate=RATE)
    assert outcome.families["code"].passed
    assert outcome.families["code"].reason == "only 3 recent rows (alert rate not checked)"
    assert outcome.families["auth"].reason == "only 0 recent rows (alert rate not checked)"


# --- the store ------------------------------------------------------------------------


def test_publish_makes_a_verified_generation_current(
    tmp_path: Path, models: ModelSet, recent: dict[str, pd.DataFrame], passed: CheckOutcome
) -> None:
    store = GenerationStore(tmp_path / "models")
    assert store.current() is None and store.generations() == []
    generation = store.publish(models, passed, created_at=CREATED, carried=["auth"])
    assert generation.number == 1
    assert generation.directory == tmp_path / "models" / "gen-000001"
    assert store.current() == generation  # generation.json reads back into the same Generation
    assert store.generations() == [generation]
    assert generation.rows == {"auth": 400, "code": 400}
    assert generation.families == FAMILY_NAMES and generation.carried == ("auth",)
    assert generation.trained_from == models.models["code"].window.first
    assert generation.check["passed"] == ["auth", "code"]
    record = orjson.loads((generation.directory / "generation.json").read_bytes())
    assert record["created_at"] == "2026-02-01T12:00:00+00:00"
    assert record["parent"] is None
    loaded = store.load(generation)
    matrix = recent["code"][list(FAMILIES["code"].features)].to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(
        loaded.models["code"].scores(matrix), models.models["code"].scores(matrix)
    )
    card = (generation.directory / "card.md").read_text()
    assert card.startswith("# Model generation 1\n")
    assert "[code.md](models/code.md)" in card and "carried over" in card
    assert sorted(p.name for p in generation.models_directory.iterdir()) == [
        f"{name}.{ext}" for name in FAMILY_NAMES for ext in ("json", "md", "npz")
    ]
    lines = (tmp_path / "models" / "checks.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["generation"] for line in lines] == [1]


def test_a_rejected_check_is_recorded_without_a_generation(
    tmp_path: Path, passed: CheckOutcome
) -> None:
    store = GenerationStore(tmp_path)
    store.record_check(passed, created_at=CREATED)
    line = orjson.loads((tmp_path / "checks.jsonl").read_bytes())
    assert line["generation"] is None and line["summary"] == "2 of 2 families passed"
    assert store.generations() == [] and store.current_number() is None


def test_pruning_keeps_the_newest_and_always_the_current(
    tmp_path: Path, models: ModelSet, passed: CheckOutcome
) -> None:
    store = GenerationStore(tmp_path, keep=2)
    for day in (1, 2, 3):
        _publish(store, models, passed, day)
    assert [g.number for g in store.generations()] == [2, 3]
    store.rollback(to=2)
    narrow = GenerationStore(tmp_path, keep=1)
    assert narrow.prune() == []  # 3 is the newest, 2 is current
    _publish(narrow, models, passed, 4)
    assert [g.number for g in narrow.generations()] == [4]
    assert not list(tmp_path.glob("*.tmp-*"))


def test_rollback_goes_to_the_previous_generation_by_default_or_to_the_one_named(
    tmp_path: Path, models: ModelSet, passed: CheckOutcome
) -> None:
    store = GenerationStore(tmp_path)
    for day in (1, 2, 3):
        _publish(store, models, passed, day)
    assert store.rollback().number == 2
    assert store.rollback().number == 1
    with pytest.raises(ConfigError, match=r"no readable generation older than the current 1"):
        store.rollback()
    assert store.rollback(to=3).number == 3
    with pytest.raises(ConfigError, match=r"no readable generation 9 \(have: 1, 2, 3\)"):
        store.rollback(to=9)
    assert store.current_number() == 3


def test_numbers_continue_from_the_highest_after_a_rollback(
    tmp_path: Path, models: ModelSet, passed: CheckOutcome
) -> None:
    store = GenerationStore(tmp_path)
    for day in (1, 2, 3):
        _publish(store, models, passed, day)
    store.rollback(to=1)
    generation = store.publish(models, passed, created_at=CREATED)
    assert generation.number == 4
    record = orjson.loads((generation.directory / "generation.json").read_bytes())
    assert record["parent"] == 1


def test_signature_changes_when_current_is_rewritten(
    tmp_path: Path, models: ModelSet, passed: CheckOutcome
) -> None:
    store = GenerationStore(tmp_path)
    assert store.signature() == ()
    _publish(store, models, passed, 1)
    _publish(store, models, passed, 2)
    before = store.signature()
    assert store.signature() == before
    GenerationStore(tmp_path, tidy=False).rollback()  # as the CLI does, from another store
    assert store.signature() != before
    assert store.current_number() == 1


def test_leftovers_of_an_interrupted_publish_are_removed_at_init(
    tmp_path: Path, models: ModelSet, passed: CheckOutcome
) -> None:
    store = GenerationStore(tmp_path)
    _publish(store, models, passed, 1)
    half = tmp_path / "gen-000002.tmp-4242" / "models"
    half.mkdir(parents=True)
    (half / "code.npz").write_bytes(b"half")
    (tmp_path / "gen-000001.tmp-prune-4242").mkdir()
    (tmp_path / ".current.4242.tmp").write_text("2\n")
    GenerationStore(tmp_path, tidy=False)
    assert len(list(tmp_path.glob("*.tmp*"))) == 3  # the CLI never tidies
    reopened = GenerationStore(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checks.jsonl", "current", "gen-000001"]
    assert reopened.current_number() == 1
    assert _publish(reopened, models, passed, 2) == 2


def test_models_that_fail_the_round_trip_leave_no_trace(
    tmp_path: Path, models: ModelSet, passed: CheckOutcome
) -> None:
    store = GenerationStore(tmp_path)
    _publish(store, models, passed, 1)
    wrong: TrainedModel = dataclasses.replace(models.models["code"], schema_hash="0" * 64)
    with pytest.raises(ModelError, match="schema hash"):
        store.publish(ModelSet({"code": wrong}), passed, created_at=CREATED)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checks.jsonl", "current", "gen-000001"]
    assert store.current_number() == 1


def test_a_failure_before_current_is_written_leaves_the_old_generation_current(
    tmp_path: Path, models: ModelSet, passed: CheckOutcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = GenerationStore(tmp_path)
    _publish(store, models, passed, 1)

    def full_disk(self: GenerationStore, number: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(GenerationStore, "_set_current", full_disk)
    with pytest.raises(OSError, match="No space"):
        _publish(store, models, passed, 2)
    monkeypatch.undo()
    assert store.current_number() == 1
    assert [g.number for g in store.generations()] == [1, 2]  # 2 is whole, just not current
    assert _publish(store, models, passed, 3) == 3


def test_a_damaged_generation_is_skipped_and_a_damaged_current_is_none(
    tmp_path: Path, models: ModelSet, passed: CheckOutcome, caplog: pytest.LogCaptureFixture
) -> None:
    store = GenerationStore(tmp_path)
    for day in (1, 2, 3):
        _publish(store, models, passed, day)
    (tmp_path / "gen-000001" / "generation.json").write_bytes(b"{")
    (tmp_path / "gen-000002" / "generation.json").write_bytes(orjson.dumps({"number": 2}))
    with caplog.at_level(logging.WARNING, logger="ciwatch.models"):
        assert [g.number for g in store.generations()] == [3]
    assert "gen-000001/generation.json: cannot read" in caplog.text
    assert "gen-000002/generation.json: invalid: created_at: Field required" in caplog.text
    (tmp_path / "gen-000003" / "generation.json").unlink()
    assert store.current() is None and store.current_number() == 3
    with pytest.raises(ConfigError, match="no readable generation older than the current 3"):
        store.rollback()
    assert _publish(store, models, passed, 4) == 4


def test_keep_must_be_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="keep_generations: must be at least 1, got 0"):
        GenerationStore(tmp_path, keep=0)


def test_a_rollback_to_models_that_fail_verification_leaves_current_alone(
    tmp_path: Path, models: ModelSet, passed: CheckOutcome
) -> None:
    store = GenerationStore(tmp_path)
    _publish(store, models, passed, 1)
    _publish(store, models, passed, 2)
    artifact = tmp_path / "gen-000001" / "models" / "code.npz"
    artifact.write_bytes(artifact.read_bytes() + b"x")
    with pytest.raises(ModelError, match="SHA-256 does not match"):
        store.rollback()
    assert store.current_number() == 2
