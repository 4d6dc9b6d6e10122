"""FeatureHistory: bottom-k day samples that ignore order and batching, on real parquet files."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]

from detector.events.model import ActorType, Category, Event, Outcome
from detector.features.families import FAMILIES
from detector.features.observation import Observation
from detector.features.schema import FEATURE_NAMES
from detector.scoring.history import FeatureHistory

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
CODE = FAMILIES["code"]
CODE_ONLY = {"code": CODE}


def observation(
    day: int,
    number: int,
    *,
    late: bool = False,
    age_days: float = 5.0,
    actor_type: ActorType = ActorType.HUMAN,
    features: dict[str, float] | None = None,
) -> Observation:
    """A GitHub clone (a ``code`` row) on ``DAY0 + day``, its features derived from ``number``."""
    event = Event(
        time=DAY0 + timedelta(days=day, seconds=37 * number % 86_000),
        source="github_audit",
        action="git.clone",
        category=Category.CODE_ACCESS,
        outcome=Outcome.SUCCESS,
        actor=f"person{number % 7}",
        actor_type=actor_type,
        id=f"gh:{day}:{number}",
    )
    values = {name: float((number * (i + 3)) % 11) for i, name in enumerate(FEATURE_NAMES)}
    values["actor.age_days"] = age_days
    return Observation(event, late=late, features=values if features is None else features)


def days(count: int, per_day: int, *, first: int = 0) -> list[Observation]:
    return [observation(first + d, n) for d in range(count) for n in range(per_day)]


def fed(history: FeatureHistory, batches: Sequence[Sequence[Observation]]) -> FeatureHistory:
    for batch in batches:
        history.observe(batch)
        history.flush()
    return history


def key(event_id: str, family: str = "code") -> int:
    digest = hashlib.blake2b(f"{family}\0{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def frame_ids(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["time"].astype(str), frame["actor"], strict=True))


def test_each_day_keeps_the_per_day_smallest_keys(tmp_path: Path) -> None:
    observations = days(3, 40)
    history = fed(FeatureHistory(tmp_path, families=CODE_ONLY, per_day=10), [observations])
    frame = history.frame("code")
    assert history.rows() == {"code": 30}
    assert len(frame) == 30
    for day in range(3):
        ids = [
            o.event.id
            for o in observations
            if o.event.time.date() == (DAY0 + timedelta(day)).date()
        ]
        expected = sorted(ids, key=key)[:10]
        kept = {o.event.time for o in observations if o.event.id in expected}
        on_day = frame[frame["time"].dt.date == (DAY0 + timedelta(day)).date()]
        assert set(on_day["time"].dt.to_pydatetime()) == kept


def test_order_and_batching_do_not_change_the_kept_rows(tmp_path: Path) -> None:
    observations = days(4, 60)
    whole = fed(FeatureHistory(tmp_path / "a", per_day=15, open_days=4), [observations])
    shuffled = list(observations)
    random.Random(7).shuffle(shuffled)
    batches = [shuffled[i : i + 17] for i in range(0, len(shuffled), 17)]
    pieces = fed(FeatureHistory(tmp_path / "b", per_day=15, open_days=4), batches)
    in_memory = fed(FeatureHistory(None, per_day=15), batches[::-1])
    for name in FAMILIES:
        expected = whole.frame(name)
        pd.testing.assert_frame_equal(pieces.frame(name), expected)
        pd.testing.assert_frame_equal(in_memory.frame(name), expected)
    assert whole.rows()["code"] == 60
    reopened = FeatureHistory(tmp_path / "b", per_day=15, open_days=4)
    pd.testing.assert_frame_equal(reopened.frame("code"), whole.frame("code"))


def test_an_event_seen_twice_is_kept_once(tmp_path: Path) -> None:
    history = FeatureHistory(tmp_path, families=CODE_ONLY, per_day=100)
    batch = days(1, 30)
    assert history.observe(batch) == 30
    assert history.observe(batch[::2]) == 0
    history.flush()
    assert history.observe(batch[1::2]) == 0
    assert history.rows() == {"code": 30}
    assert not history.frame("code").duplicated().any()


def test_reopening_after_flush_gives_the_same_frame(tmp_path: Path) -> None:
    history = fed(FeatureHistory(tmp_path, per_day=20), [days(5, 30)])
    reopened = FeatureHistory(tmp_path, per_day=20)
    assert reopened.rows() == history.rows()
    assert reopened.span() == history.span()
    for name in FAMILIES:
        pd.testing.assert_frame_equal(reopened.frame(name), history.frame(name))
    assert sorted(p.name for p in (tmp_path / "code").iterdir()) == [
        f"2026-03-0{day}.parquet" for day in range(2, 7)
    ]


def test_open_days_reloaded_merge_rereads_within_the_bound(tmp_path: Path) -> None:
    first = days(3, 30)
    fed(FeatureHistory(tmp_path, families=CODE_ONLY, per_day=12), [first])
    # A restart re-reads the last records, and new ones of the open days follow.
    reread = first[-40:] + [observation(2, n) for n in range(30, 60)]
    reopened = fed(FeatureHistory(tmp_path, families=CODE_ONLY, per_day=12), [reread])
    once = fed(FeatureHistory(None, families=CODE_ONLY, per_day=12), [first + reread[40:]])
    assert reopened.dropped_late == 0
    assert reopened.rows() == {"code": 36}
    frame = reopened.frame("code")
    assert not frame.duplicated().any()
    assert frame.groupby(frame["time"].dt.date).size().max() == 12
    pd.testing.assert_frame_equal(frame, once.frame("code"))


def test_rows_for_sealed_days_are_counted_late_not_kept(tmp_path: Path) -> None:
    history = FeatureHistory(tmp_path, families=CODE_ONLY, open_days=1)
    fed(history, [days(1, 5), days(1, 5, first=1)])
    assert history.observe([observation(0, 99)]) == 0
    assert history.dropped_late == 1
    reopened = FeatureHistory(tmp_path, families=CODE_ONLY, open_days=1)
    assert reopened.observe([observation(0, 98)]) == 0
    assert reopened.dropped_late == 1
    assert reopened.observe([observation(1, 98)]) == 1  # the open day takes it
    assert history.rows() == {"code": 10}


def test_flush_rewrites_only_the_days_that_changed(tmp_path: Path) -> None:
    history = fed(FeatureHistory(tmp_path, families=CODE_ONLY, open_days=3), [days(3, 5)])
    before = {p.name: p.stat().st_ino for p in (tmp_path / "code").iterdir()}
    history.observe([observation(2, 50)])
    history.flush()
    after = {p.name: p.stat().st_ino for p in (tmp_path / "code").iterdir()}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"2026-03-04.parquet"}


def test_keep_days_prunes_old_files(tmp_path: Path) -> None:
    history = FeatureHistory(tmp_path, families=CODE_ONLY, keep_days=3)
    fed(history, [days(2, 4), days(3, 4, first=2)])
    assert sorted(p.name for p in (tmp_path / "code").iterdir()) == [
        "2026-03-04.parquet",
        "2026-03-05.parquet",
        "2026-03-06.parquet",
    ]
    assert history.rows() == {"code": 12}
    assert history.span()[0] == history.frame("code")["time"].min()
    assert history.observe([observation(1, 77)]) == 0  # older than anything kept
    assert history.dropped_late == 1


def test_late_learning_foreign_and_incomplete_observations_are_not_rows() -> None:
    history = FeatureHistory(None, families=CODE_ONLY)
    partial = dict.fromkeys(CODE.features[1:], 1.0) | {"actor.age_days": 5.0}
    rejected = [
        observation(0, 1, late=True),
        observation(0, 2, age_days=0.5),
        observation(0, 3, actor_type=ActorType.SERVICE),  # the service family's, not code's
        observation(0, 4, features=partial),
    ]
    assert history.observe(rejected) == 0
    assert history.rows() == {"code": 0}
    assert history.observe([observation(0, 5, age_days=1.0)]) == 1


def test_damaged_and_foreign_files_are_skipped_and_counted(tmp_path: Path) -> None:
    fed(FeatureHistory(tmp_path, families=CODE_ONLY, open_days=1), [days(4, 6)])
    folder = tmp_path / "code"
    (folder / "2026-03-03.parquet").write_bytes(b"PAR1 not really")
    other = pd.DataFrame({"key": [1], "time": [DAY0], "actor": ["x"]})
    other.to_parquet(folder / "2026-03-05.parquet")  # the open day, with other columns
    (folder / ".2026-03-05.parquet.123.tmp").write_bytes(b"interrupted")
    (folder / "notes.parquet").write_bytes(b"not a day file")
    history = FeatureHistory(tmp_path, families=CODE_ONLY, open_days=1)
    assert history.unreadable == 2
    assert history.last_error is not None and "2026-03-05.parquet" in history.last_error
    assert not (folder / ".2026-03-05.parquet.123.tmp").exists()
    assert history.rows() == {"code": 12}  # days 0 and 2
    assert len(history.frame("code")) == 12
    (folder / "2026-03-02.parquet").write_bytes(b"damaged after start")
    assert len(history.frame("code")) == 6
    assert len(history.frame("code")) == 6
    assert history.unreadable == 3
    history.observe([observation(3, 1)])  # the damaged open day starts afresh
    history.flush()
    reopened = FeatureHistory(tmp_path, families=CODE_ONLY)
    assert reopened.unreadable == 2  # 2026-03-02 and 03, damaged still
    assert reopened.rows() == {"code": 7}


def test_frame_window_includes_start_and_excludes_end(tmp_path: Path) -> None:
    history = fed(FeatureHistory(tmp_path, families=CODE_ONLY, open_days=1), [days(3, 10)])
    whole = history.frame("code")
    start, end = whole["time"].iloc[7].to_pydatetime(), whole["time"].iloc[22].to_pydatetime()
    window = history.frame("code", start, end)
    expected = whole[(whole["time"] >= start) & (whole["time"] < end)].reset_index(drop=True)
    pd.testing.assert_frame_equal(window, expected)
    assert window["time"].iloc[0] == start and end not in set(window["time"])
    assert list(whole.columns) == ["time", "actor", *CODE.features]
    assert whole["time"].is_monotonic_increasing
    empty = history.frame("code", end=DAY0)
    assert list(empty.columns) == list(whole.columns) and len(empty) == 0
    assert empty.dtypes.equals(whole.dtypes)
    assert str(whole["time"].dt.tz) == "UTC"
