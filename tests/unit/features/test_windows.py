"""Window primitives: bucketed counters, first-seen sets, the hour-of-week profile."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from detector.features.profile import HourOfWeekProfile, hour_of_week, hours_of_week
from detector.features.windows import (
    LANE_MASK,
    FirstSeenSet,
    SetLimits,
    WindowCounter,
    WindowSpec,
    lane,
    unpack,
)
from tests.unit.features.helpers import at

FIVE_MINUTES = WindowSpec([300.0])  # 60 buckets of 5 s
START = 1_000_000.0  # a multiple of every bucket width used here
ONE = [lane(0)]


def count(counter: WindowCounter, now: float, window: int = 0, channel: int = 0) -> int:
    return unpack(counter.counts(now)[window], channel + 1)[channel]


def add(counter: WindowCounter, spec: WindowSpec, time: float, increment: int = 1) -> None:
    counter.add(spec.bucket_ids(time), [increment] * len(spec.widths))


def test_a_batch_of_times_gets_the_buckets_and_hours_of_each_time_alone() -> None:
    # The store works these out for a whole batch with NumPy; they must be the
    # numbers each event's own time gives, at bucket edges and around the epoch too.
    spec = WindowSpec([300.0, 3600.0, 86400.0])
    edges = [START + width * k for width in spec.widths for k in (-1, 0, 1)]
    times = [*edges, *(edge - 1e-6 for edge in edges), 0.0, -0.5, -3600.0, 1.7e9 + 0.123456]
    column = np.array(times, dtype=np.float64)
    assert spec.bucket_rows(column).tolist() == [spec.bucket_ids(time) for time in times]
    assert hours_of_week(column).tolist() == [hour_of_week(time) for time in times]
    assert spec.bucket_rows(column[:0]).tolist() == [] and hours_of_week(column[:0]).tolist() == []


def test_counts_events_until_their_bucket_leaves_the_window() -> None:
    counter = WindowCounter(FIVE_MINUTES)
    add(counter, FIVE_MINUTES, START)
    add(counter, FIVE_MINUTES, START + 12)
    assert count(counter, START + 12) == 2
    assert count(counter, START + 299) == 2
    assert count(counter, START + 300) == 1  # the first event's bucket fell out
    # The window is the 60 buckets ending with now's: the second event's bucket
    # (START+10 .. START+15) leaves when now reaches START+310, 298 s after it.
    assert count(counter, START + 309) == 1
    assert count(counter, START + 310) == 0


def test_out_of_order_time_lands_in_its_own_bucket() -> None:
    counter = WindowCounter(FIVE_MINUTES)
    add(counter, FIVE_MINUTES, START + 100)
    add(counter, FIVE_MINUTES, START)  # older, arrives later
    assert count(counter, START + 100) == 2
    assert count(counter, START + 299) == 2
    assert count(counter, START + 300) == 1  # it expires at its own time, not the newest's
    assert count(counter, START + 400) == 0


def test_time_older_than_the_window_is_ignored() -> None:
    counter = WindowCounter(FIVE_MINUTES)
    add(counter, FIVE_MINUTES, START + 600)
    add(counter, FIVE_MINUTES, START)
    assert count(counter, START + 600) == 1


def test_windows_expire_independently() -> None:
    spec = WindowSpec([3600.0, 300.0])
    assert spec.seconds == (300.0, 3600.0)
    counter = WindowCounter(spec)
    for offset in range(0, 60, 10):
        add(counter, spec, START + offset)
    totals = counter.counts(START + 60 + 360)
    assert [unpack(total, 1)[0] for total in totals] == [0, 6]


def test_channels_count_separately() -> None:
    counter = WindowCounter(FIVE_MINUTES)
    add(counter, FIVE_MINUTES, START, lane(0) + lane(2))
    add(counter, FIVE_MINUTES, START + 1, lane(0))
    assert unpack(counter.counts(START + 1)[0], 3) == [2, 0, 1]


def test_a_lane_holds_large_counts_without_spilling() -> None:
    counter = WindowCounter(FIVE_MINUTES)
    add(counter, FIVE_MINUTES, START, LANE_MASK * lane(0) + lane(1))
    assert unpack(counter.counts(START)[0], 2) == [LANE_MASK, 1]


def test_move_keeps_a_distinct_value_counted_once_from_its_last_sighting() -> None:
    spec = WindowSpec([300.0, 3600.0])
    counter = WindowCounter(spec)
    counter.add(spec.bucket_ids(START), [lane(0), lane(0)])
    ids = spec.bucket_ids(START + 200)
    increments = [0, 0]
    counter.move(START, ids, lane(0), increments)
    assert increments == [lane(0), lane(0)]  # the value changes bucket in both windows
    counter.add(ids, increments)
    assert [unpack(total, 1)[0] for total in counter.counts(START + 200)] == [1, 1]
    assert [unpack(total, 1)[0] for total in counter.counts(START + 450)] == [1, 1]
    assert [unpack(total, 1)[0] for total in counter.counts(START + 500)] == [0, 1]


def test_move_within_one_bucket_changes_nothing() -> None:
    spec = WindowSpec([300.0, 3600.0])
    counter = WindowCounter(spec)
    counter.add(spec.bucket_ids(START), [lane(0), lane(0)])
    increments = [0, 0]
    counter.move(START, spec.bucket_ids(START + 2), lane(0), increments)
    assert increments == [0, 0]
    assert [unpack(total, 1)[0] for total in counter.counts(START + 2)] == [1, 1]


def test_discard_takes_a_count_back() -> None:
    counter = WindowCounter(FIVE_MINUTES)
    add(counter, FIVE_MINUTES, START, lane(0))
    add(counter, FIVE_MINUTES, START + 50, lane(0))
    counter.discard(START, lane(0))
    assert count(counter, START + 50) == 1


def test_counter_state_round_trips_through_json() -> None:
    spec = WindowSpec([300.0, 3600.0])
    counter = WindowCounter(spec)
    for offset in (0, 7, 7, 130, 95, 1000):
        counter.add(spec.bucket_ids(START + offset), [lane(0) + lane(3), lane(1)])
    state = orjson.loads(orjson.dumps(counter.to_state()))
    restored = WindowCounter.from_state(spec, state)
    assert restored.to_state() == counter.to_state()
    for later in (1005, 1200, 1400, 5000):
        ids = spec.bucket_ids(START + later)
        assert restored.add(ids, [lane(2), lane(2)]) == counter.add(ids, [lane(2), lane(2)])


def test_counter_state_for_other_windows_is_refused() -> None:
    state = WindowCounter(FIVE_MINUTES).to_state()
    with pytest.raises(ValueError, match="number of windows"):
        WindowCounter.from_state(WindowSpec([300.0, 3600.0]), state)


def test_first_seen_set_reports_new_values_once() -> None:
    seen = FirstSeenSet(SetLimits(forget_after=3600.0, cap=10))
    assert seen.observe("DE", START) is None
    assert seen.observe("DE", START + 60) == START
    assert seen.observe("FR", START + 61) is None
    assert seen.observe("DE", START + 120) == START + 60
    assert seen.first_seen("DE") == START
    assert seen.last_seen("DE") == START + 120
    assert seen.recent() == ["DE", "FR"]


def test_first_seen_set_forgets_values_unseen_for_forget_after() -> None:
    seen = FirstSeenSet(SetLimits(forget_after=3600.0, cap=10))
    seen.observe("DE", START)
    assert seen.observe("DE", START + 3599) == START
    assert seen.observe("DE", START + 3599 + 3600) is None
    assert seen.first_seen("DE") == START + 3599 + 3600


def test_first_seen_set_takes_an_earlier_sighting_arriving_late() -> None:
    seen = FirstSeenSet(SetLimits(forget_after=3600.0, cap=10))
    seen.observe("DE", START + 100)
    assert seen.observe("DE", START + 40) == START + 100
    assert seen.first_seen("DE") == START + 40
    assert seen.last_seen("DE") == START + 100


def test_first_seen_set_without_first_sightings() -> None:
    seen = FirstSeenSet(SetLimits(forget_after=3600.0, cap=10, remember_first=False))
    seen.observe("alice", START)
    assert seen.first_seen("alice") is None
    assert seen.to_state() == [["alice", START]]


def test_trim_drops_forgotten_then_least_recently_seen_values() -> None:
    seen = FirstSeenSet(SetLimits(forget_after=1000.0, cap=4))
    seen.observe("old", START)
    for index, value in enumerate(["a", "b", "c", "d"]):
        seen.observe(value, START + 2000 + index)
    assert seen.full
    dropped = seen.trim(START + 2003)
    # "old" is forgotten; of the other four, the least recent goes to leave 3 (3/4 of cap).
    assert sorted(dropped) == [START, START + 2000]
    assert seen.recent() == ["d", "c", "b"]


def test_trim_keeps_the_most_recent_three_quarters() -> None:
    seen = FirstSeenSet(SetLimits(forget_after=10_000.0, cap=8))
    for index in range(9):
        seen.observe(f"v{index}", START + index)
    dropped = seen.trim(START + 9)
    assert len(seen) == 6
    assert sorted(dropped) == [START, START + 1, START + 2]
    assert seen.recent(2) == ["v8", "v7"]
    assert seen.observe("v0", START + 10) is None  # dropped values are new again


def test_first_seen_set_state_round_trips() -> None:
    limits = SetLimits(forget_after=3600.0, cap=10)
    seen = FirstSeenSet(limits)
    for offset, value in [(0, "DE"), (5, "FR"), (9, "DE")]:
        seen.observe(value, START + offset)
    restored = FirstSeenSet.from_state(limits, orjson.loads(orjson.dumps(seen.to_state())))
    assert restored.to_state() == seen.to_state()
    assert restored.observe("DE", START + 20) == seen.observe("DE", START + 20)


@pytest.mark.parametrize(
    ("hours", "minutes", "expected"),
    [(-10, 0, 0), (0, 0, 10), (-10, 59, 0), (6 * 24 + 13, 30, 167)],
)
def test_hour_of_week_counts_from_monday_midnight_utc(
    hours: int, minutes: int, expected: int
) -> None:
    # at(0) is Monday 10:00 UTC
    assert hour_of_week(at(hours * 3600 + minutes * 60).timestamp()) == expected


def test_profile_share_and_active_hours() -> None:
    profile = HourOfWeekProfile()
    monday_ten = at(0).timestamp()
    for week in range(3):
        profile.add(monday_ten + week * 7 * 86_400)
    profile.add(monday_ten + 3600)
    assert profile.total == 4
    assert profile.share(monday_ten + 14 * 86_400 + 1800) == 0.75
    assert profile.share(monday_ten + 5 * 3600) == 0.0
    assert profile.active_hours == 2
    assert HourOfWeekProfile().share(monday_ten) == 0.0


def test_profile_state_round_trips_and_checks_hours() -> None:
    profile = HourOfWeekProfile()
    profile.add(START)
    profile.add(START + 7200)
    restored = HourOfWeekProfile.from_state(orjson.loads(orjson.dumps(profile.to_state())))
    assert restored.to_state() == profile.to_state()
    assert (restored.total, restored.active_hours) == (2, 2)
    with pytest.raises(ValueError, match="out of range"):
        HourOfWeekProfile.from_state([[168, 1]])
