"""The learner's event-time schedule, held-out checks, carried families, learning period, state.

Observations are small synthetic ones (a GitHub or Kubernetes event of a person,
features from :func:`ordinary_frame`): the schedule depends only on row counts
and event times, and synthetic rows make both exact. ECOD fits in milliseconds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from detector.events.model import ActorType, Category, Event, Outcome
from detector.features.families import FAMILIES, Family
from detector.features.observation import Observation
from detector.scoring.learn_settings import LearnSettings
from detector.scoring.learner import Learner, TrainingResult
from detector.scoring.training import MIN_TRAINING_ROWS
from tests.unit.scoring.synthetic import ordinary_frame

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
CHECK = timedelta(hours=6)
SETTINGS = LearnSettings(
    learning_period=timedelta(days=2),
    retrain_every=DAY,
    window=timedelta(days=30),
    check_period=CHECK,
)
CODE_ONLY = {"code": FAMILIES["code"]}
CODE_INFRA = {"code": FAMILIES["code"], "infra": FAMILIES["infra"]}
_SOURCE = {
    "code": ("github_audit", Category.CODE_ACCESS),
    "infra": ("k8s_audit", Category.INFRASTRUCTURE_CHANGE),
}


def rows(
    family: str,
    start: timedelta,
    hours: int,
    per_hour: int,
    *,
    seed: int = 1,
    scale: float = 1.0,
    age_days: float = 5.0,
) -> list[Observation]:
    """``hours x per_hour`` observations of ``family`` from ``T0 + start``, evenly spaced.

    ``scale`` multiplies every feature: 1 gives ordinary rows, 30 rows far off them.
    """
    count = hours * per_hour
    frame = ordinary_frame(FAMILIES[family], rows=count, seed=seed)
    source, category = _SOURCE[family]
    step = HOUR / per_hour
    out = []
    for index in range(count):
        event = Event(
            time=T0 + start + index * step,
            source=source,
            action="read",
            category=category,
            outcome=Outcome.SUCCESS,
            actor=f"person{index % 9}",
            actor_type=ActorType.HUMAN,
            id=f"{family}:{seed}:{start.total_seconds():.0f}:{index}",
        )
        values = {
            name: float(frame[name].iloc[index]) * scale for name in FAMILIES[family].features
        }
        values["actor.age_days"] = age_days
        out.append(Observation(event, features=values))
    return out


def learner(directory: Path, families: dict[str, Family] = CODE_ONLY) -> Learner:
    return Learner(
        directory,
        SETTINGS,
        detector="ecod",
        target_alert_rate=0.01,
        families=families,
        clock=lambda: datetime(2026, 4, 1, tzinfo=UTC),
    )


def train(subject: Learner, cut: datetime) -> TrainingResult:
    """What the pipeline does when due: prepare, run, record."""
    result = subject.prepare(cut).run()
    subject.finished(result)
    return result


# --- the schedule ---------------------------------------------------------------------


def test_no_training_before_enough_rows_then_at_the_first_hour_cut_with_them(
    tmp_path: Path,
) -> None:
    subject = learner(tmp_path)
    assert subject.due() is None  # nothing seen
    per_hour = 20
    for hour in range(3):
        subject.observe(rows("code", hour * HOUR, 1, per_hour, seed=hour))
        held = subject.history.rows()["code"]
        due = subject.due(T0 + (hour + 1) * HOUR)
        if held < MIN_TRAINING_ROWS:
            assert due is None, f"{held} rows must not train"
        else:
            assert due == T0 + (hour + 1) * HOUR
    assert subject.history.rows()["code"] == 3 * per_hour >= MIN_TRAINING_ROWS
    # Within the hour the cut stays the whole hour; with no argument, the latest event time.
    assert subject.due(T0 + timedelta(hours=3, minutes=40)) == T0 + 3 * HOUR
    assert subject.due() == T0 + 2 * HOUR  # the latest row is at 02:57


def test_retraining_waits_for_retrain_every(tmp_path: Path) -> None:
    subject = learner(tmp_path)
    subject.observe(rows("code", timedelta(0), 3, 20))
    cut = T0 + 3 * HOUR
    result = train(subject, cut)
    assert result.generation is not None and result.generation.number == 1
    assert result.generation.cut == cut
    assert subject.due(cut) is None  # this cut is done
    for hours in range(1, 24):
        assert subject.due(cut + hours * HOUR) is None, f"retrained after {hours} h"
    assert subject.due(cut + DAY) == cut + DAY
    assert subject.due(cut + DAY + timedelta(minutes=59)) == cut + DAY


def test_a_family_never_trained_is_picked_up_at_the_next_cut(tmp_path: Path) -> None:
    subject = learner(tmp_path, CODE_INFRA)
    subject.observe(rows("code", timedelta(0), 3, 20) + rows("infra", timedelta(0), 3, 10))
    first = train(subject, T0 + 3 * HOUR)
    assert first.generation is not None and first.generation.families == ("code",)
    subject.observe(rows("infra", 3 * HOUR, 1, 30, seed=2))  # infra now has 60 rows
    assert subject.due(T0 + 4 * HOUR) == T0 + 4 * HOUR  # long before retrain_every
    second = train(subject, T0 + 4 * HOUR)
    assert second.generation is not None
    assert sorted(second.generation.families) == ["code", "infra"]
    assert subject.due(T0 + 5 * HOUR) is None  # every family trained: back to the daily rhythm


def test_a_family_with_no_recent_rows_is_not_retrained_every_hour(tmp_path: Path) -> None:
    """Infra's rows stop before the held-out period: its check has no rows, yet it was trained."""
    subject = learner(tmp_path, CODE_INFRA)
    subject.observe(rows("code", timedelta(0), 30, 3) + rows("infra", timedelta(0), 20, 3))
    cut = T0 + 30 * HOUR
    result = train(subject, cut)
    assert result.generation is not None
    assert sorted(result.generation.families) == ["code", "infra"]
    assert result.check.families["infra"].rows == 0
    assert [subject.due(cut + hours * HOUR) for hours in range(1, 24)] == [None] * 23


def test_give_up_waits_for_the_next_retraining(tmp_path: Path) -> None:
    subject = learner(tmp_path)
    subject.observe(rows("code", timedelta(0), 3, 20))
    cut = T0 + 3 * HOUR
    train(subject, cut)
    subject.give_up(cut + DAY)  # that training failed outright (a full disk)
    assert subject.last_cut == cut + DAY
    assert subject.generation is not None and subject.generation.number == 1
    assert subject.due(cut + DAY) is None
    assert subject.due(cut + DAY + HOUR) is None
    assert subject.due(cut + 2 * DAY) == cut + 2 * DAY


# --- the held-out check ---------------------------------------------------------------


def test_the_newest_check_period_is_held_out_once_the_history_spans_two(tmp_path: Path) -> None:
    subject = learner(tmp_path)
    subject.observe(rows("code", timedelta(0), 30, 4))
    cut = T0 + 30 * HOUR
    job = subject.prepare(cut)
    trained, recent = job.train["code"], job.recent["code"]
    assert trained["time"].max() < cut - CHECK <= recent["time"].min()
    assert recent["time"].max() < cut
    assert len(trained) + len(recent) == len(subject.history.frame("code"))
    assert len(recent) == 6 * 4


def test_a_young_history_is_checked_on_what_it_learnt(tmp_path: Path) -> None:
    subject = learner(tmp_path)
    subject.observe(rows("code", timedelta(0), 10, 6))  # spans 10 h < 2 x 6 h
    job = subject.prepare(T0 + 10 * HOUR)
    assert len(job.train["code"]) == len(job.recent["code"]) == 60


def test_a_family_failing_its_check_keeps_the_previous_model(tmp_path: Path) -> None:
    subject = learner(tmp_path, CODE_INFRA)
    ordinary = rows("code", timedelta(0), 30, 4) + rows("infra", timedelta(0), 30, 4)
    subject.observe(ordinary)
    first = train(subject, T0 + 30 * HOUR)
    assert first.generation is not None and first.models is not None
    assert sorted(first.check.passed_families) == ["code", "infra"]
    # A day later: code as usual; infra as usual until its last 6 hours, then far off.
    subject.observe(
        rows("code", 30 * HOUR, 24, 4, seed=2)
        + rows("infra", 30 * HOUR, 18, 4, seed=3)
        + rows("infra", 48 * HOUR, 6, 4, seed=4, scale=30.0)
    )
    cut = T0 + 54 * HOUR
    assert subject.due(cut) == cut
    second = train(subject, cut)
    assert second.check.failed_families == ("infra",)
    assert "alert rate" in second.check.families["infra"].reason
    assert second.generation is not None and second.models is not None
    assert second.generation.carried == ("infra",)
    assert sorted(second.generation.families) == ["code", "infra"]
    carried, before = second.models.models["infra"], first.models.models["infra"]
    assert carried.window == before.window  # the previous generation's model, not a new one
    newer, older = second.models.models["code"].window.last, first.models.models["code"].window.last
    assert newer is not None and older is not None and newer > older
    record = orjson.loads((second.generation.directory / "generation.json").read_bytes())
    assert record["carried"] == ["infra"] and record["parent"] == 1
    assert subject.generation == second.generation


def test_a_training_no_family_passes_publishes_nothing_and_records_the_check(
    tmp_path: Path,
) -> None:
    subject = learner(tmp_path)
    subject.observe(rows("code", timedelta(0), 24, 4) + rows("code", 24 * HOUR, 6, 4, scale=30.0))
    cut = T0 + 30 * HOUR
    result = train(subject, cut)
    assert result.generation is None and result.models is None
    assert result.check.failed_families == ("code",)
    assert subject.store.current() is None and subject.store.generations() == []
    assert subject.generation is None and subject.current_models() is None
    lines = (tmp_path / "models" / "checks.jsonl").read_text().splitlines()
    assert len(lines) == 1
    check = json.loads(lines[0])
    assert check["generation"] is None and check["failed"] == ["code"]
    assert subject.last_cut == cut
    assert subject.due(cut + HOUR) is None  # retried at the next retraining, not every hour
    assert subject.due(cut + DAY) == cut + DAY


# --- the learning period --------------------------------------------------------------


def test_alerts_start_a_learning_period_after_the_first_row(tmp_path: Path) -> None:
    subject = learner(tmp_path)
    assert subject.alert_from is None and subject.learning()
    start = timedelta(hours=10, minutes=17)
    batch = rows("code", start, 1, 6)
    subject.observe(batch[3:])
    subject.observe(batch[:3])  # out of order: the first row still counts
    assert subject.alert_from == T0 + start + SETTINGS.learning_period
    late = rows("code", timedelta(0), 1, 1, seed=9)[0]
    subject.observe([Observation(late.event, late=True, features=late.features)])
    assert subject.first_seen == T0 + start  # a late event does not move it
    assert subject.learning()
    subject.observe(rows("code", start + SETTINGS.learning_period - HOUR, 1, 1, seed=2))
    assert subject.learning()  # the latest row is an hour before the end
    subject.observe(rows("code", start + SETTINGS.learning_period, 1, 1, seed=3))
    assert not subject.learning()


# --- state ----------------------------------------------------------------------------


def test_snapshot_and_restore_round_trip(tmp_path: Path) -> None:
    subject = learner(tmp_path, CODE_INFRA)
    subject.observe(rows("code", timedelta(0), 3, 20) + rows("infra", timedelta(0), 3, 5))
    train(subject, T0 + 3 * HOUR)
    subject.history.flush()
    state = json.loads(json.dumps(subject.snapshot()))  # a checkpoint is JSON
    again = learner(tmp_path, CODE_INFRA)
    again.restore(state)
    assert again.snapshot() == subject.snapshot()
    assert (again.first_seen, again.latest, again.last_cut, again.attempted) == (
        subject.first_seen,
        subject.latest,
        subject.last_cut,
        subject.attempted,
    )
    assert again.alert_from == subject.alert_from
    moments = [T0 + hours * HOUR for hours in range(0, 30)]
    assert [again.due(m) for m in moments] == [subject.due(m) for m in moments]


def test_restore_counts_a_generation_published_after_the_checkpoint(tmp_path: Path) -> None:
    subject = learner(tmp_path)
    subject.observe(rows("code", timedelta(0), 3, 20))
    subject.history.flush()
    checkpoint = json.loads(json.dumps(subject.snapshot()))  # written before the training
    cut = T0 + 3 * HOUR
    train(subject, cut)
    restarted = learner(tmp_path)  # a crash after publishing, before the next checkpoint
    assert restarted.generation is not None and restarted.generation.cut == cut
    restarted.restore(checkpoint)
    assert restarted.last_cut == cut
    assert restarted.first_seen == subject.first_seen
    assert restarted.due(cut) is None
    assert [restarted.due(cut + hours * HOUR) for hours in range(1, 24)] == [None] * 23
    assert restarted.due(cut + DAY) == cut + DAY


def test_a_restart_without_a_checkpoint_reads_the_history_and_generation(tmp_path: Path) -> None:
    subject = learner(tmp_path)
    subject.observe(rows("code", timedelta(0), 3, 20))
    cut = T0 + 3 * HOUR
    train(subject, cut)
    subject.history.flush()
    restarted = learner(tmp_path)
    assert restarted.last_cut == cut
    assert (restarted.first_seen, restarted.latest) == (subject.first_seen, subject.latest)
    assert restarted.due(cut + HOUR) is None
    models = restarted.current_models()
    assert models is not None and list(models.models) == ["code"]


@pytest.mark.parametrize("state", [{}, {"first_seen": None, "last_cut": None}])
def test_restore_of_an_empty_checkpoint_starts_from_nothing(
    tmp_path: Path, state: dict[str, object]
) -> None:
    subject = learner(tmp_path)
    subject.restore(state)
    assert (subject.first_seen, subject.latest, subject.last_cut) == (None, None, None)
    assert subject.attempted == set() and subject.learning()


# --- incidents kept out of training ------------------------------------------------------


def test_an_alerted_actors_rows_around_the_alert_are_left_out_of_training(tmp_path: Path) -> None:
    subject = learner(tmp_path)
    subject.observe(rows("code", timedelta(0), 10, 18))  # person0..8, 18 rows an hour
    alert_time = T0 + 5 * HOUR
    subject.exclude([("alert-1", "person3", alert_time, alert_time + 10 * timedelta(minutes=1))])
    job = subject.prepare(T0 + 10 * HOUR)
    kept = job.train["code"]
    end = alert_time + 10 * timedelta(minutes=1) + HOUR  # an hour either side of the alert
    window = (kept["time"] >= alert_time - HOUR) & (kept["time"] <= end)
    assert not (window & (kept["actor"] == "person3")).any()
    assert (window & (kept["actor"] == "person4")).any()  # others stay
    assert ((kept["actor"] == "person3") & (kept["time"] < alert_time - 2 * HOUR)).any()
    assert subject.excluded_rows > 0


def test_a_revision_widens_the_incident_and_incidents_survive_a_restart(tmp_path: Path) -> None:
    subject = learner(tmp_path)
    subject.observe(rows("code", timedelta(0), 10, 18))
    first = T0 + 2 * HOUR
    subject.exclude([("alert-1", "person3", first, first)])
    subject.exclude([("alert-1", "person3", first, first + 5 * HOUR)])  # revised: later events
    subject.history.flush()
    again = learner(tmp_path)
    again.restore(json.loads(json.dumps(subject.snapshot())))
    kept = again.prepare(T0 + 10 * HOUR).train["code"]
    late = (
        (kept["actor"] == "person3") & (kept["time"] >= first) & (kept["time"] <= first + 6 * HOUR)
    )
    assert not late.any()
