"""The compact per-key state gives exactly the numbers of the plain dict-based state.

Each compact structure is checked against a straightforward reference over
random operations: the window counter against dicts of buckets (the layout it
replaced), an actor's remembered values against one first-seen set per field.
"""

from __future__ import annotations

import gc
import math
import random
import sys
from bisect import insort
from collections.abc import Sequence

import orjson
import pytest

from detector.errors import ConfigError
from detector.features.arena import HotSlot
from detector.features.profile import HOURS_PER_WEEK, HourOfWeekProfile
from detector.features.remembered import RememberedValues
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from detector.features.windows import FirstSeenSet, SetLimits, WindowCounter, WindowSpec, lane
from tests.unit.features.helpers import event

SPEC = WindowSpec([300.0, 3600.0, 86_400.0])  # nested: 5 s, 1 m, 24 m buckets
SKEWED = WindowSpec([300.0, 420.0])  # 5 s and 7 s buckets: not nested


class DictCounter:
    """The reference: per window a dict bucket → packed count, as counters used to be."""

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self.buckets: list[dict[int, int]] = [{} for _ in spec.widths]
        self.newest = [-(1 << 62)] * len(spec.widths)

    def add(self, ids: Sequence[int], increments: Sequence[int]) -> list[int]:
        for window, bucket in enumerate(ids):
            if bucket > self.newest[window]:
                self.newest[window] = bucket
                cutoff = bucket - self.spec.buckets
                self.buckets[window] = {
                    old: count for old, count in self.buckets[window].items() if old > cutoff
                }
            elif bucket <= self.newest[window] - self.spec.buckets:
                continue
            if increments[window]:
                buckets = self.buckets[window]
                buckets[bucket] = buckets.get(bucket, 0) + increments[window]
        return [sum(buckets.values()) for buckets in self.buckets]

    def move(self, previous: float, ids: Sequence[int], unit: int, increments: list[int]) -> None:
        for window, width in enumerate(self.spec.widths):
            old = int(previous // width)
            if old == ids[window]:
                if self.spec.nested:
                    return
                continue
            self.discard_bucket(window, old, unit)
            increments[window] += unit

    def discard_bucket(self, window: int, bucket: int, unit: int) -> None:
        if bucket in self.buckets[window]:
            self.buckets[window][bucket] -= unit

    def rows(self) -> list[list[tuple[int, int]]]:
        return [sorted(buckets.items()) for buckets in self.buckets]


def run_counters(
    spec: WindowSpec,
    seed: int,
    start: float = 1_000_000.0,
    choices: Sequence[int] = (0, lane(0), lane(0) + lane(2)),
    steps: int = 3000,
    *,
    cold: bool = False,
) -> WindowCounter:
    """Random adds (some out of order or too old), moves and discards on both counters.

    ``cold``: another counter of a spec keeping one counter hot is counted
    between any two steps, so the compact one goes cold and hot again each time.
    """
    rng = random.Random(seed)
    if cold:
        spec = WindowSpec(spec.seconds)
        spec.hot_limit = 1
    compact, reference, rival = WindowCounter(spec), DictCounter(spec), WindowCounter(spec)
    time = start
    sightings: list[float] = []
    for _ in range(steps):
        time += rng.choice([0.5, 3.0, 40.0, 700.0, 9000.0])
        at = time - rng.choice([0.0, 0.0, 0.0, 2.0, 30.0, 400.0, 100_000.0])
        ids = spec.bucket_ids(at)
        increments = [rng.choice(choices)] * len(ids)
        mirrored = list(increments)
        if sightings and rng.random() < 0.3:  # a distinct value seen again
            previous = rng.choice(sightings)
            compact.move(previous, ids, lane(1), increments)
            reference.move(previous, ids, lane(1), mirrored)
            assert increments == mirrored
        if sightings and rng.random() < 0.05:  # a distinct value trimmed from its set
            gone = rng.choice(sightings)
            compact.discard(gone, lane(1))
            for window, width in enumerate(spec.widths):
                reference.discard_bucket(window, int(gone // width), lane(1))
        insort(sightings, at)
        assert compact.add(ids, increments) == reference.add(ids, mirrored)
        if cold:
            rival.add(ids, [lane(0)] * len(ids))
            assert isinstance(compact._totals, bytes)  # frozen: read below without thawing
        assert compact._windows() == reference.rows()
    now = time + 200.0  # reading later expires buckets the same way
    assert compact.counts(now) == reference.add(spec.bucket_ids(now), [0] * len(spec.widths))
    assert compact._windows() == reference.rows()
    state = orjson.loads(orjson.dumps(compact.to_state()))
    assert WindowCounter.from_state(spec, state).to_state() == state
    return compact


def test_counts_past_one_two_and_four_bytes_per_lane_stay_exact(counter_form: str) -> None:
    """A bucket's lanes widen (2, 4, 8 bytes) as its counts grow, keeping every number
    (an arena's are 8 bytes throughout).

    (The random moves also take counts below 0: the lanes turn signed, as exact.)
    """
    big = (lane(0) + 200 * lane(1), 70_000 * lane(3), (1 << 33) * lane(2) + lane(5))
    for seed, wide in enumerate(big):
        counter = run_counters(SPEC, seed, choices=(0, lane(0), wide), steps=600)
        if counter_form == "plain":
            assert counter._lanes.itemsize > 1


def test_bucket_ids_beyond_four_bytes_stay_exact(counter_form: str) -> None:
    """Times past 2038 or before 1902 in one-second buckets: the ids widen to 8 bytes
    (an arena's are 8 bytes throughout)."""
    seconds = WindowSpec([60.0, 3600.0])  # 1 s and 1 min buckets
    for start in (2_147_400_000.0, 3.0e9, -3.0e9):
        counter = run_counters(seconds, 4, start=start, steps=600)
        if counter_form == "plain":
            assert counter._ids.typecode == "q"
    if counter_form == "plain":
        assert run_counters(SPEC, 4, steps=300)._ids.typecode == "i"


@pytest.mark.usefixtures("counter_form")
def test_the_counter_matches_dicts_of_buckets_nested_and_not() -> None:
    for seed in range(3):
        run_counters(SPEC, seed)
        run_counters(SKEWED, seed)


@pytest.mark.usefixtures("counter_form")
def test_a_counter_going_cold_and_hot_again_keeps_every_number() -> None:
    """Cold, its buckets frozen and its totals dropped; hot again, the totals summed anew."""
    big = lane(0) + 300 * lane(1) + 70_000 * lane(3)
    for seed in range(2):
        run_counters(SPEC, seed, steps=1500, cold=True)
        run_counters(SKEWED, seed, steps=1500, cold=True)
        run_counters(SPEC, seed, choices=(0, lane(0), big), steps=600, cold=True)


@pytest.mark.usefixtures("compiled_counters")
def test_a_counter_hot_in_the_plain_form_goes_on_in_an_arena(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kernels compiled while a counter is hot (plain): once it has gone cold it is
    counted in an arena, to the same numbers."""
    spec = WindowSpec(SPEC.seconds)
    compact, reference = WindowCounter(spec), DictCounter(spec)
    rng = random.Random(6)
    monkeypatch.setattr(WindowSpec, "arena", lambda self, kind: None)
    for step in range(400):
        if step == 200:
            monkeypatch.undo()
            compact.cool()
        ids = spec.bucket_ids(1_000_000.0 + step * rng.choice([2.0, 50.0, 900.0]))
        increments = [rng.choice((lane(0), lane(0) + 7 * lane(4)))] * len(ids)
        assert compact.add(ids, increments) == reference.add(ids, list(increments))
        assert compact._windows() == reference.rows()
    assert isinstance(compact._totals, HotSlot)


def test_remembered_values_match_one_first_seen_set_per_field() -> None:
    """Values shared between fields, forgetting, trimming and a table past its dict index."""
    names = ("ip", "country", "target")
    limits = (
        SetLimits(forget_after=5000.0, cap=12),
        SetLimits(forget_after=5000.0, cap=3),
        SetLimits(forget_after=5000.0, cap=12, remember_first=False),
    )
    rng = random.Random(5)
    remembered = RememberedValues()
    sets = [FirstSeenSet(field_limits) for field_limits in limits]
    time = 0.0
    for _ in range(4000):
        time += rng.choice([1.0, 60.0, 900.0])
        at = time - rng.choice([0.0, 0.0, 30.0])
        field = rng.randrange(len(names))
        value = f"v{rng.randrange(30)}"  # the same text turns up in several fields
        assert remembered.observe(field, value, at, limits[field]) == sets[field].observe(value, at)
        full = remembered.full(field, limits[field])
        assert full == sets[field].full
        if full:
            assert remembered.trim(field, at, limits[field]) == sets[field].trim(at)
        for number, seen in enumerate(sets):
            assert remembered.count(number) == len(seen)
            assert remembered.recent(number, 5) == seen.recent(5)
    state = remembered.to_state(names, limits)
    assert state == {name: seen.to_state() for name, seen in zip(names, sets, strict=True) if seen}
    numbers = {name: number for number, name in enumerate(names)}
    restored = RememberedValues.from_state(numbers, orjson.loads(orjson.dumps(state)))
    assert restored.to_state(names, limits) == state


def deep_size(root: object) -> int:
    seen: set[int] = set()
    size, stack = 0, [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type):
            continue
        seen.add(id(item))
        size += sys.getsizeof(item)
        stack.extend(gc.get_referents(item))
    return size


@pytest.mark.usefixtures("plain_counters")
def test_an_actor_with_its_ip_costs_under_three_kilobytes() -> None:
    """Twelve events over two days each: 2.7 KB now; a packed int per bucket took 4.2 KB,
    dicts of buckets and sets 7.8 KB."""
    settings = FeatureSettings()
    empty = FeatureStore(settings)
    store = FeatureStore(settings)
    actors = 200
    rng = random.Random(2)
    times = sorted((rng.uniform(0, 172_800.0), number % actors) for number in range(actors * 12))
    for number, (time, actor) in enumerate(times):
        store.observe(
            event(
                time,
                actor=f"user{actor}@example.com",
                ip=f"10.1.{actor >> 8}.{actor & 255}",
                attributes={"repo": f"acme/r{number % 7}", "namespace": "team-a"},
                number=number,
            )
        )
    assert store.late_events == 0
    per_actor = (deep_size(store) - deep_size(empty)) / actors
    assert per_actor < 3000


def test_a_profile_kept_sparse_then_dense_counts_like_168_counters() -> None:
    profile = HourOfWeekProfile()
    counts = [0] * HOURS_PER_WEEK
    rng = random.Random(9)
    for step in range(3000):
        hour = rng.randrange(8) if step < 500 else rng.randrange(HOURS_PER_WEEK)
        time = hour * 3600.0 + 4 * 86_400.0  # 1970-01-05 was a Monday: hour 0
        profile.add(time + rng.randrange(3600) + 7 * 86_400.0 * rng.randrange(50))
        counts[hour] += 1 + 299 * (step == 100)  # one hour goes past a byte
        if step == 100:
            for _ in range(299):
                profile.add(time)
        share, rarity = profile.share_and_rarity(time)
        assert share == counts[hour] / sum(counts)
        assert rarity == math.log((sum(counts) + HOURS_PER_WEEK) / (counts[hour] + 1))
        assert profile.active_hours == HOURS_PER_WEEK - counts.count(0)
        if step in (100, 499, 2999):  # sparse, still sparse, dense
            state = [[hour, count] for hour, count in enumerate(counts) if count]
            assert profile.to_state() == state
            restored = HourOfWeekProfile.from_state(state)
            assert restored.to_state() == state
            assert restored.share_and_rarity(time) == (share, rarity)


def test_reading_then_adding_an_hour_at_once_gives_what_the_reads_then_add_hour_give() -> None:
    # One search of the sparse pairs instead of two: through every form the profile takes
    # (sparse, an hour past a byte, too many hours: dense, a count past two bytes).
    reference, fused = HourOfWeekProfile(), HourOfWeekProfile()
    rng = random.Random(3)
    hours = [rng.randrange(6) for _ in range(400)] + [5] * 70_000
    hours += [rng.randrange(HOURS_PER_WEEK) for _ in range(2000)]
    for hour in hours:
        share, rarity = reference.share_and_rarity_in(hour)
        before = (share, rarity, reference.active_hours, reference.total)
        reference.add_hour(hour)
        assert fused.read_then_add(hour) == before
        assert fused.to_state() == reference.to_state()


@pytest.mark.usefixtures("counter_form")
def test_a_store_whose_keys_go_cold_after_each_event_describes_events_the_same() -> None:
    """Cold keys (one counter hot, every other one frozen; restored ones) give the same
    observations, explanations and snapshot."""
    settings = FeatureSettings(max_values_per_set=4)  # sets trim: distinct counts taken back
    plain, cold = FeatureStore(settings), FeatureStore(settings)
    cold._spec.hot_limit = 1
    rng = random.Random(5)
    time = 0.0
    for number in range(1500):
        if number == 700:  # restored keys start cold
            cold = FeatureStore.restore(settings, orjson.loads(orjson.dumps(plain.snapshot())))
            cold._spec.hot_limit = 1
        time += rng.choice([1.0, 20.0, 400.0, 5000.0])
        late = rng.random() < 0.05  # some too late to count: described from cold state
        sample = event(
            time - (rng.choice([30.0, 7200.0]) if late else 0.0),
            actor=f"user{rng.randrange(12)}",
            ip=f"10.0.0.{rng.randrange(9)}",
            target=f"acme/r{rng.randrange(15)}",
            attributes={"namespace": f"team-{rng.randrange(6)}"},
            number=number,
        )
        assert cold.observe(sample) == plain.observe(sample)
    assert plain.late_events > 0
    for actor in ("user1", "user7"):
        assert cold.baseline(actor) == plain.baseline(actor)
        assert cold.known_values(actor, "ip") == plain.known_values(actor, "ip")
    assert orjson.dumps(cold.snapshot()) == orjson.dumps(plain.snapshot())


def test_more_fields_than_a_byte_numbers_are_refused() -> None:
    """An actor's remembered values keep their field numbers a byte each."""
    FeatureStore(FeatureSettings(tracked=tuple(f"field{number}" for number in range(250))))
    with pytest.raises(ConfigError, match="at most 256 fields"):
        FeatureStore(FeatureSettings(tracked=tuple(f"field{number}" for number in range(300))))
