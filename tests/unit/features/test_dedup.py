"""Duplicates: a redelivered event counts once, in the features, the rules and the checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from detector.config import PipelineConfig
from detector.events.model import ActorType, Category, Event, Outcome
from detector.features.dedup import DuplicateSettings, RecentIds
from detector.pipeline import Pipeline
from detector.sources.record import RawRecord
from tests.unit.test_time_sanity import okta_failure, record

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def event(event_id: str, seconds: float, source: str = "okta_system_log") -> Event:
    return Event(
        time=START + timedelta(seconds=seconds),
        source=source,
        action="user.session.start",
        category=Category.AUTHENTICATION,
        outcome=Outcome.FAILURE,
        actor="dana@example.com",
        actor_type=ActorType.HUMAN,
        id=f"{source}:{event_id}",
    )


def test_an_id_seen_within_the_window_is_a_duplicate() -> None:
    ids = RecentIds(DuplicateSettings(window=timedelta(hours=1)))
    assert not ids.is_duplicate(event("a", 0))
    assert ids.is_duplicate(event("a", 0))
    assert ids.is_duplicate(event("a", 1800))


def test_an_id_is_forgotten_once_its_source_has_moved_past_the_window() -> None:
    ids = RecentIds(DuplicateSettings(window=timedelta(hours=1)))
    ids.is_duplicate(event("a", 0))
    ids.is_duplicate(event("b", 3601))
    assert not ids.is_duplicate(event("a", 0))


def test_sources_keep_their_ids_apart_and_each_is_capped() -> None:
    ids = RecentIds(DuplicateSettings(max_ids=3))
    for number in range(5):
        ids.is_duplicate(event(f"e{number}", number, source="cloudtrail"))
    ids.is_duplicate(event("x", 0, source="okta_system_log"))
    assert len(ids) == 4
    assert not ids.is_duplicate(event("e0", 0, source="cloudtrail"))  # pushed out by the cap
    assert ids.is_duplicate(event("x", 0, source="okta_system_log"))


def test_a_batch_is_checked_as_its_events_one_at_a_time() -> None:
    # Repeats inside the batch, an id forgotten mid-batch (the window passed) and the cap.
    batch = [
        event("a", 0), event("b", 10), event("a", 20), event("c", 3700), event("a", 3710),
        event("d", 3711, source="cloudtrail"), event("d", 3712, source="cloudtrail"),
        event("e", 3713), event("f", 3714), event("c", 3715),
    ]  # fmt: skip
    settings = DuplicateSettings(window=timedelta(hours=1), max_ids=3)
    one_by_one = RecentIds(settings)
    expected = [one_by_one.is_duplicate(item) for item in batch]
    times = [item.time.timestamp() for item in batch]
    kept, kept_times, duplicates = RecentIds(settings).new_events(batch, times)
    assert kept == [item for item, seen in zip(batch, expected, strict=True) if not seen]
    assert duplicates == [item for item, seen in zip(batch, expected, strict=True) if seen]
    assert kept_times == [item.time.timestamp() for item in kept]
    assert [item.id for item in duplicates] == ["okta_system_log:a", "cloudtrail:d"]


def test_switched_off_nothing_is_a_duplicate() -> None:
    ids = RecentIds(DuplicateSettings(enabled=False))
    ids.is_duplicate(event("a", 0))
    assert not ids.is_duplicate(event("a", 0))


def test_the_remembered_ids_survive_a_snapshot() -> None:
    ids = RecentIds(DuplicateSettings())
    ids.is_duplicate(event("a", 0))
    restored = RecentIds(DuplicateSettings())
    restored.restore(orjson.loads(orjson.dumps(ids.snapshot())))
    assert restored.is_duplicate(event("a", 0))
    assert not restored.is_duplicate(event("b", 0))


def failed_okta_sign_ins(count: int) -> list[RawRecord]:
    """The published failed Okta sign-in, as ``count`` distinct attempts 20 s apart."""
    return [
        record(okta_failure(START + timedelta(seconds=20 * number), number), number)
        for number in range(count)
    ]


def brute_force_summaries(records: list[RawRecord], *, recognise: bool = True) -> list[str]:
    config = PipelineConfig.model_validate(
        {"models": {"enabled": False}, "duplicates": {"enabled": recognise}}
    )
    pipeline = Pipeline.from_config(config)
    outcome = pipeline.process(records)
    alerts = [*outcome.alerts, *pipeline.finish()]
    return [a.detection.summary for a in alerts if a.detection.name == "okta-brute-force"]


def test_failed_sign_ins_delivered_twice_count_once() -> None:
    six = failed_okta_sign_ins(6)
    # Six attempts are below the brute-force threshold of ten, however often delivered...
    assert brute_force_summaries(six + six) == []
    # ... where counting every delivery would have made them twelve.
    assert brute_force_summaries(six + six, recognise=False) != []
    ten = failed_okta_sign_ins(10)
    assert brute_force_summaries(ten + ten[::-1]) == [
        "casey.hill@hey.com failed to sign in to Okta 10 times in 10m"
    ]


def test_the_pipeline_counts_duplicates_per_source() -> None:
    pipeline = Pipeline.from_config(PipelineConfig.model_validate({"models": {"enabled": False}}))
    records = failed_okta_sign_ins(5)
    pipeline.process(records + records)
    assert pipeline.stats.duplicates == {"okta_system_log": 5}
    assert pipeline.features.key_counts["actor"] == 1


def test_a_restored_pipeline_still_knows_what_it_has_seen() -> None:
    config = PipelineConfig.model_validate({"models": {"enabled": False}})
    first = Pipeline.from_config(config)
    records = failed_okta_sign_ins(3)
    first.process(records)
    second = Pipeline.from_config(config)
    second.restore(orjson.loads(orjson.dumps(first.snapshot())))
    second.process(records)
    assert second.stats.duplicates == {"okta_system_log": 3}
