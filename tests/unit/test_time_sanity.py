"""Time sanity: one record with a hostile timestamp must not blind or crash the detector.

A record dated in year 2900 used to move the watermark past every real event
(every later event "late", no rule firing, baselines evicted); one near year
9999 crashed the suppressor with an ``OverflowError``, so its batch was never
committed. Times outside the supported range are now ``invalid_time``, and the
daemon dead-letters events too far ahead of its wall clock (``future_time``).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.alerts import Alert, Suppressor
from detector.cli.replay import replay_files
from detector.config import NormalizerSettings, PipelineConfig, load_config
from detector.daemon import Daemon
from detector.detections import Detection, DetectorKind, Severity
from detector.errors import ConfigError
from detector.events.fields import EARLIEST_TIME, LATEST_TIME, MAX_SHOWN_CHARS, parse_time
from detector.events.model import DeadLetterReason, ParseError
from detector.events.ordering import EventSorter
from detector.outcomes import BatchOutcome
from detector.pipeline import Pipeline
from detector.sources.record import Position, RawRecord
from tests.samples import sample
from tests.unit.test_daemon_delivery import Collecting

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = START + timedelta(minutes=30)
"""The wall clock of the tests' daemon: the sign-ins happened minutes ago."""
BRUTE_FORCE = "okta-brute-force"


def okta_failure(time: datetime | str, number: int) -> dict[str, Any]:
    """The published failed Okta sign-in, as attempt ``number`` at ``time``."""
    attempt: dict[str, Any] = copy.deepcopy(
        sample("okta_system_log", "Okta.Login.Success: Failed Login")
    )
    attempt["uuid"] = f"{attempt['uuid']}-{number}"
    attempt["published"] = time if isinstance(time, str) else time.isoformat()
    return attempt


def record(doc: dict[str, Any], offset: int) -> RawRecord:
    return RawRecord(orjson.dumps(doc), Position("okta", offset))


def twelve_failures(start: datetime = START, first_offset: int = 1) -> list[RawRecord]:
    return [
        record(okta_failure(start + timedelta(seconds=20 * n), n), first_offset + n)
        for n in range(12)
    ]


def pipeline(*, wall_clock: datetime | None = None, **normalizer: Any) -> Pipeline:
    config = PipelineConfig.model_validate({"models": {"enabled": False}, "normalizer": normalizer})
    clock = None if wall_clock is None else (lambda: wall_clock)
    return Pipeline.from_config(config, wall_clock=clock)


def brute_force(outcome: BatchOutcome, detector: Pipeline) -> list[Alert]:
    alerts = [*outcome.alerts, *detector.finish()]
    return [alert for alert in alerts if alert.detection.name == BRUTE_FORCE]


def reasons(outcome: BatchOutcome) -> list[DeadLetterReason]:
    return [dead.reason for dead in outcome.dead_letters]


# -- the supported range ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2900-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:00:00-05:00",  # overflows when moved to UTC
        "0001-01-01T00:00:00+05:00",
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        1e20,  # epoch nanoseconds of year 5138
        -1,
    ],
)
def test_times_outside_the_supported_range_are_invalid(value: Any) -> None:
    with pytest.raises(ParseError) as caught:
        parse_time(value)
    assert caught.value.reason is DeadLetterReason.INVALID_TIME


def test_the_range_is_named_in_the_detail_and_its_edges_are_accepted() -> None:
    with pytest.raises(ParseError, match="outside the supported range 1970-01-01 to 2200-01-01"):
        parse_time("2900-01-01T00:00:00Z")
    assert parse_time("1970-01-01T00:00:00Z") == EARLIEST_TIME
    assert parse_time("2199-12-31T23:59:59.999999Z") == LATEST_TIME - timedelta(microseconds=1)


@pytest.mark.parametrize(
    "huge",
    ["9" * 10 + "x" * 900_000, "2026-" + "1" * 900_000, "9" * 900_000, 10**5000],
    ids=["digits-then-letters", "long-iso", "long-digits", "huge-integer"],
)
def test_a_huge_timestamp_gives_a_bounded_detail(huge: Any) -> None:
    with pytest.raises(ParseError) as caught:
        parse_time(huge)
    assert len(str(caught.value)) < MAX_SHOWN_CHARS + 150


def test_a_huge_timestamp_in_a_record_gives_a_small_dead_letter() -> None:
    huge = "2026-03-02T09:00:00Z" + "x" * 900_000
    outcome = pipeline().process([record(okta_failure(huge, 0), 0)])
    (dead,) = outcome.dead_letters
    assert dead.reason is DeadLetterReason.INVALID_TIME
    assert "900,020 characters" in dead.detail
    assert len(dead.detail) + len(dead.excerpt) < 1000


# -- the regressions of issue 12 -------------------------------------------------------


def test_a_year_2900_record_does_not_blind_the_detector() -> None:
    detector = pipeline(wall_clock=NOW)
    outcome = detector.process([record(okta_failure("2900-01-01T00:00:00Z", 99), 0)])
    outcome_after = detector.process(twelve_failures())
    assert reasons(outcome) == [DeadLetterReason.INVALID_TIME]
    fired = brute_force(outcome_after, detector)
    assert (
        fired[0].detection.summary == "casey.hill@hey.com failed to sign in to Okta 10 times in 10m"
    )
    assert detector.stats.late_events == 0


def test_a_record_ahead_of_the_wall_clock_is_a_future_time_dead_letter() -> None:
    detector = pipeline(wall_clock=NOW)
    ahead = record(okta_failure(NOW + timedelta(days=365 * 100), 99), 0)
    outcome = detector.process([ahead, *twelve_failures()])
    assert reasons(outcome) == [DeadLetterReason.FUTURE_TIME]
    assert "ahead of the wall clock (normalizer.max_future_skew)" in outcome.dead_letters[0].detail
    assert len(brute_force(outcome, detector)) == 1
    assert detector.stats.late_events == 0
    assert detector.stats.dead_letters[DeadLetterReason.FUTURE_TIME] == 1


def test_a_future_time_within_the_skew_is_an_event() -> None:
    detector = pipeline(wall_clock=NOW, max_future_skew="1h")
    outcome = detector.process(twelve_failures(NOW + timedelta(minutes=50)))
    assert outcome.dead_letters == [] and len(outcome.events) == 12
    outcome = detector.process([record(okta_failure(NOW + timedelta(minutes=61), 50), 50)])
    assert reasons(outcome) == [DeadLetterReason.FUTURE_TIME]


@pytest.mark.parametrize("off", [0, "0s", None])
def test_a_skew_of_zero_or_null_switches_the_check_off(off: Any) -> None:
    detector = pipeline(wall_clock=NOW, max_future_skew=off)
    outcome = detector.process(twelve_failures(NOW + timedelta(days=30)))
    assert outcome.dead_letters == [] and len(outcome.events) == 12


def test_without_a_wall_clock_future_events_are_events() -> None:
    outcome = pipeline().process(twelve_failures(NOW + timedelta(days=365 * 100)))
    assert outcome.dead_letters == [] and len(outcome.events) == 12


def test_the_normalizer_reads_the_clock_per_record_too() -> None:
    wall = [NOW]
    detector = Pipeline.from_config(
        PipelineConfig.model_validate({"models": {"enabled": False}}), wall_clock=lambda: wall[0]
    )
    later = record(okta_failure(NOW + timedelta(hours=2), 0), 0)
    (dead,) = detector.normalizer.normalize(later)
    assert getattr(dead, "reason", None) is DeadLetterReason.FUTURE_TIME
    wall[0] = NOW + timedelta(hours=2)
    assert detector.normalizer.normalize(later)[0].__class__.__name__ == "Event"


def test_the_daemon_compares_event_times_with_its_wall_clock(tmp_path: Path) -> None:
    config_path = tmp_path / "ciwatch.yaml"
    config_path.write_text("models: {enabled: false}\n")
    daemon = Daemon(load_config(config_path), [], log=lambda line: None)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    outcome = daemon.pipeline.process([record(okta_failure(tomorrow, 0), 0)])
    assert reasons(outcome) == [DeadLetterReason.FUTURE_TIME]


@pytest.mark.parametrize("year_9999", ["9999-12-31T23:50:00Z", "9999-12-31T23:59:59.999999+00:00"])
def test_a_year_9999_record_is_a_dead_letter_not_a_crash(year_9999: str) -> None:
    end = datetime.fromisoformat(year_9999)
    records = [
        record(okta_failure(end - timedelta(seconds=20 * (11 - n)), n), n) for n in range(12)
    ]
    detector = pipeline()
    outcome = detector.process(records)
    assert reasons(outcome) == [DeadLetterReason.INVALID_TIME] * 12
    assert detector.finish() == []


@pytest.mark.parametrize(
    "edge", [EARLIEST_TIME, LATEST_TIME - timedelta(minutes=5), LATEST_TIME - timedelta(seconds=1)]
)
def test_events_at_the_edges_of_the_range_go_through_the_pipeline(edge: datetime) -> None:
    start = min(edge, LATEST_TIME - timedelta(seconds=20 * 12))
    detector = pipeline(wall_clock=LATEST_TIME)
    outcome = detector.process([*twelve_failures(start), record(okta_failure(edge, 40), 40)])
    assert outcome.dead_letters == []
    assert len(brute_force(outcome, detector)) == 1
    restored = pipeline()
    restored.restore(detector.snapshot())


def test_a_suppression_period_past_the_last_representable_time_does_not_overflow() -> None:
    suppressor = Suppressor()
    late = datetime(2199, 12, 31, 23, 0, tzinfo=UTC)
    forever = Detection(
        kind=DetectorKind.RULE,
        name="forever",
        title="Forever",
        severity=Severity.HIGH,
        time=late,
        key=(("actor", "alice"),),
        actor="alice",
        source="okta_system_log",
        summary="alice did something",
        evidence=("okta_system_log:e1",),
        suppress=timedelta(days=999_999_999),
    )
    assert len(suppressor.process([forever])) == 1
    assert suppressor.process([forever]) == []  # still open: folded
    restored = Suppressor()
    restored.restore(suppressor.snapshot())
    assert restored.open_alerts == 1


# -- replay ----------------------------------------------------------------------------


def test_a_far_future_record_in_a_replay_neither_blinds_nor_crashes(tmp_path: Path) -> None:
    hostile = [
        okta_failure("2900-01-01T00:00:00Z", 90),
        okta_failure("2199-12-31T23:59:59Z", 91),  # in range: sorted last, after the sign-ins
        okta_failure("9999-12-31T23:59:59Z", 92),
    ]
    lines = [*hostile, *(orjson.loads(r.value) for r in twelve_failures())]
    log = tmp_path / "okta.jsonl"
    log.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    detector = pipeline()
    dead: list[DeadLetterReason] = []
    sink = Collecting()
    with EventSorter(temp_dir=tmp_path) as sorter:
        replay_files(
            [log],
            detector,
            [sink],
            sorter,
            on_dead_letters=lambda d: dead.extend(x.reason for x in d),
        )
    assert dead == [DeadLetterReason.INVALID_TIME] * 2
    fired = [alert for alert in sink.got if alert.detection.name == BRUTE_FORCE]
    assert fired and fired[0].detection.time < START + timedelta(minutes=5)
    assert detector.stats.late_events == 0


# -- configuration ---------------------------------------------------------------------


def test_the_skew_defaults_to_an_hour_and_reads_durations() -> None:
    assert NormalizerSettings().max_future_skew == timedelta(hours=1)
    for written, read in [("90s", timedelta(seconds=90)), (0, None), ("0s", None), (None, None)]:
        assert (
            NormalizerSettings.model_validate({"max_future_skew": written}).max_future_skew == read
        )
    assert load_config().normalizer.max_future_skew == timedelta(hours=1)  # default.yaml


@pytest.mark.parametrize("bad", ["soon", "-1h", "true", "[1h]"])
def test_a_bad_skew_is_one_clear_config_error(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "ciwatch.yaml"
    path.write_text(f"normalizer:\n  max_future_skew: {bad}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "normalizer.max_future_skew" in message and "\n" not in message
