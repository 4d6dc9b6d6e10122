"""Hot counters in compiled arenas: when a process starts using them, and how full they get.

That an arena counts exactly as the plain form is checked against dicts of
buckets in test_compact_state.py (``counter_form``); here, the switch of a long
run from one form to the other and the bound on an arena's slots.
"""

from __future__ import annotations

import random
from typing import Any, cast

import numpy as np
import pytest

from detector.events.model import Category, Outcome
from detector.features import arena, counter_kernels
from detector.features.arena import CounterArena, HotSlot
from detector.features.compiled_actors import CompiledActors, Stretch
from detector.features.count_width import NARROW_LIMIT
from detector.features.observation import Observation
from detector.features.settings import FeatureSettings
from detector.features.spec import BUCKETS_PER_WINDOW
from detector.features.store import FeatureStore
from detector.features.windows import WindowCounter, WindowSpec, lane
from detector.jit import LazyKernel
from tests.unit.features.helpers import event, spelled_out

SPEC_SECONDS = (300.0, 3600.0, 86_400.0)


def observe_all(store: FeatureStore, count: int, *, tick: bool) -> list[Observation]:
    """``count`` events of a few actors, IPs and targets; ``tick``: tell the store of each."""
    rng = random.Random(8)
    observations = []
    for number in range(count):
        sample = event(
            number * rng.choice([1.0, 30.0, 600.0]) / 4,
            actor=f"user{rng.randrange(6)}",
            ip=f"10.0.0.{rng.randrange(5)}",
            target=f"acme/r{rng.randrange(4)}",
            number=number,
        )
        observations.append(store.observe(sample))
        if tick:
            store.counted(1)
    return observations


def test_a_long_run_moves_its_hot_counters_into_arenas_with_the_same_features(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replay compiles the counter kernels after enough events (here 150); counters that
    go hot after that live in arenas, and every observation is the plain form's."""
    settings = FeatureSettings()
    with monkeypatch.context() as plain:
        plain.setattr(WindowSpec, "arena", lambda self, kind: None)
        plain_store = FeatureStore(settings)
        expected = observe_all(plain_store, 600, tick=False)
        expected_snapshot = spelled_out(plain_store.snapshot())
    for name in ("step_kernel", "load_kernel", "dump_kernel"):
        kernel = getattr(counter_kernels, name)
        fresh = LazyKernel(
            kernel.body,
            sample_args=kernel.sample_args,
            more_samples=kernel.more_samples,
            after_rows=150,
        )
        monkeypatch.setattr(counter_kernels, name, fresh)
    store = FeatureStore(settings)
    store._spec.hot_limit = 4  # counters go cold and come back hot: into the arena
    assert observe_all(store, 600, tick=True) == expected
    assert counter_kernels.step_kernel.built
    assert store._spec.arenas  # the hot counters made after the switch
    assert any(isinstance(actor._totals, HotSlot) for actor in store._actors.values())
    assert spelled_out(store.snapshot()) == expected_snapshot


@pytest.mark.usefixtures("compiled_counters")
def test_a_full_arena_sends_the_counter_counted_longest_ago_cold() -> None:
    one_slot = len(SPEC_SECONDS) * BUCKETS_PER_WINDOW * (8 + 2 * 4)  # two channels
    spec = WindowSpec(SPEC_SECONDS, arena_bytes=2 * one_slot)
    counters = [WindowCounter(spec) for _ in range(3)]
    ids = spec.bucket_ids(1000.0)
    for counter in counters:
        assert counter.add(ids, [lane(0) + lane(1)] * len(ids)) == [lane(0) + lane(1)] * 3
    first, second, third = counters
    assert isinstance(first._totals, bytes)  # cold: two slots, counted longest ago
    assert isinstance(second._totals, HotSlot) and isinstance(third._totals, HotSlot)
    assert first.add(ids, [lane(1)] * len(ids)) == [lane(0) + 2 * lane(1)] * 3
    assert isinstance(first._totals, HotSlot) and isinstance(second._totals, bytes)
    assert first._totals.slot != third._totals.slot


@pytest.mark.usefixtures("compiled_counters")
def test_an_arena_counts_in_four_bytes_until_a_count_would_not_fit_then_in_eight() -> None:
    """A bucket's count on its way past 2**31 - 1 widens the arena (fewer counters fit its
    bytes) before it would wrap; every total is exact, the other counters' too."""
    spec = WindowSpec(SPEC_SECONDS)
    counter, other = WindowCounter(spec), WindowCounter(spec)
    ids = spec.bucket_ids(1000.0)
    other.add(ids, [lane(0)] * len(ids))
    big = (1 << 28) * lane(1)
    assert counter.add(ids, [big] * len(ids)) == [big] * 3
    held = cast(HotSlot, counter._totals)
    assert held.arena._counts.dtype == np.int32
    narrow_limit = held.arena.limit
    for times in range(2, 10):  # 9 * 2**28: past what 4 bytes hold
        assert counter.add(ids, [big] * len(ids)) == [times * big] * 3
    assert held.arena._counts.dtype == np.int64
    assert held.arena.limit < narrow_limit
    assert other.add(ids, [lane(0)] * len(ids)) == [2 * lane(0)] * 3  # kept through the move
    counter.cool()
    assert counter.add(ids, [lane(0)] * len(ids)) == [9 * big + lane(0)] * 3


@pytest.mark.usefixtures("compiled_counters")
def test_a_cold_counter_past_four_bytes_widens_the_arena_it_comes_back_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counted past 2**31 - 1 in the plain form, frozen, then claimed by a narrow arena."""
    spec = WindowSpec(SPEC_SECONDS)
    counter = WindowCounter(spec)
    ids = spec.bucket_ids(1000.0)
    huge = (1 << 33) * lane(2)
    with monkeypatch.context() as plain:
        plain.setattr(WindowSpec, "arena", lambda self, kind: None)
        counter.add(ids, [huge] * len(ids))
        counter.cool()
    assert counter.add(ids, [lane(0)] * len(ids)) == [huge + lane(0)] * 3
    assert cast(HotSlot, counter._totals).arena._counts.dtype == np.int64


@pytest.mark.usefixtures("compiled_counters")
def test_a_count_bound_at_the_limit_is_made_exact_before_the_arena_widens() -> None:
    """The bound only grows as steps run; at the limit it is made exact from the counts,
    which are small: the arena stays narrow."""
    spec = WindowSpec(SPEC_SECONDS)
    counter = WindowCounter(spec)
    ids = spec.bucket_ids(1000.0)
    counter.add(ids, [lane(0)] * len(ids))
    held = cast(HotSlot, counter._totals)
    held.arena._width.bound = NARROW_LIMIT
    assert counter.add(ids, [lane(0)] * len(ids)) == [2 * lane(0)] * 3
    assert held.arena._counts.dtype == np.int32
    assert held.arena._width.bound < 100


@pytest.mark.usefixtures("compiled_counters")
def test_a_batch_whose_counters_go_cold_and_whose_tables_refill_midway_counts_as_plain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's steps are queued and run together; a counter going cold (its arena full),
    the increments' table starting again or the channels growing runs them early, in order."""
    rng = random.Random(3)
    events = [
        event(
            number * rng.choice([1.0, 30.0, 600.0]) / 4,
            actor=f"user{rng.randrange(9)}",
            ip=f"10.0.0.{rng.randrange(7)}",
            target=f"acme/r{rng.randrange(6)}",
            country=rng.choice(["DE", "FR", "US"]),
            outcome=rng.choice([Outcome.SUCCESS, Outcome.FAILURE]),
            privileged=rng.random() < 0.2,
            category=rng.choice(list(Category)),
            number=number,
        )
        for number in range(900)
    ]
    with monkeypatch.context() as plain:
        plain.setattr(WindowSpec, "arena", lambda self, kind: None)
        plain_store = FeatureStore(FeatureSettings())
        expected = [plain_store.observe(item) for item in events]
        expected_snapshot = spelled_out(plain_store.snapshot())
    monkeypatch.setattr(arena, "_VECTOR_LIMIT", 3)
    # Under the setting's floor (model_copy does not validate): one actor, a few IPs and targets.
    store = FeatureStore(FeatureSettings().model_copy(update={"arena_bytes": 20_000}))
    found = [seen for start in (0, 300, 600) for seen in store.observe_batch(events[start:][:300])]
    assert [dict(seen.features) for seen in found] == [dict(seen.features) for seen in expected]
    assert [seen.new_values for seen in found] == [seen.new_values for seen in expected]
    assert spelled_out(store.snapshot()) == expected_snapshot
    assert all(len(held.hot) <= held.limit for held in store._spec.arenas.values())
    limits = {kind.__name__: held.limit for kind, held in store._spec.arenas.items()}
    assert limits == {"ActorState": 1, "KeyState": 5}  # 20,000 B of 13,680 and 3,600 B slots


@pytest.mark.usefixtures("compiled_counters")
def test_a_claim_cools_a_counter_its_stretch_does_not_count_before_running_it_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two actor slots, x and y hot, x (the next to go cold) counted in the stretch: z's claim
    sends x to the back of the queue and cools y, and the batch is one stretch."""
    settings = FeatureSettings().model_copy(update={"arena_bytes": 2 * 3 * 60 * (8 + 17 * 4)})
    runs: list[int] = []
    original = CompiledActors.run

    def counted_run(self: CompiledActors, stretch: Stretch, arena: CounterArena) -> list[Any]:
        runs.append(len(stretch))
        return original(self, stretch, arena)

    monkeypatch.setattr(CompiledActors, "run", counted_run)
    store = FeatureStore(settings)
    store.observe_batch([event(0.0, actor="x", ip=None), event(1.0, actor="y", ip=None)])
    runs.clear()
    found = store.observe_batch([event(2.0, actor="x", ip=None), event(3.0, actor="z", ip=None)])
    assert runs == [2]  # one stretch: x's slot was not taken from it
    actors = store._actors
    hot = {name for name in "xyz" if isinstance(actors[name]._totals, HotSlot)}
    assert hot == {"x", "z"}
    assert [seen.features["actor.events.1h"] for seen in found] == [2, 1]


class _PlainSpec(WindowSpec):
    """A spec whose counters stay in the plain form in a process with the kernels compiled."""

    def arena(self, kind: type) -> CounterArena | None:
        return None


_NARROWEST = ((0, 1 << 8, "B"), (0, 1 << 16, "H"), (0, 1 << 32, "I"))


@pytest.mark.usefixtures("compiled_counters")
@pytest.mark.parametrize(
    ("start", "choices", "trimmed", "types"),
    [
        (1_000_000.0, (0, lane(0), lane(0) + lane(2)), 0.0, "iB"),
        (1_000_000.0, (lane(0) + 300 * lane(1),), 0.0, "iH"),
        (1_000_000.0, (70_000 * lane(3), lane(0)), 0.0, "iI"),
        (1_000_000.0, ((1 << 33) * lane(2) + lane(5), lane(0)), 0.0, "iq"),
        (1_000_000.0, (0, lane(0)), 0.3, "iq"),  # trimmed below 0: signed
        (3.0e9, (0, lane(0)), 0.0, "qB"),  # one-second bucket ids past four bytes
        (-3.0e9, (lane(0),), 0.0, "qB"),
    ],
)
def test_a_dumped_slot_holds_the_plain_counters_numbers_in_their_narrowest_types(
    start: float, choices: tuple[int, ...], trimmed: float, types: str
) -> None:
    """What a counter going cold keeps: the ids in four bytes when all fit, the lanes of the
    channels with a count in the narrowest type (signed once one is below 0)."""
    seconds = [60.0, 3600.0]
    hot, plain = WindowCounter(WindowSpec(seconds)), WindowCounter(_PlainSpec(seconds))
    rng = random.Random(8)
    time, seen = start, [start]
    for _ in range(300):
        time += rng.choice([0.5, 3.0, 40.0, 700.0])
        ids = hot._spec.bucket_ids(time)
        increments = [rng.choice(choices)] * len(ids)
        mirrored = list(increments)
        if rng.random() < 0.3:  # a value seen again: its unit moves
            previous = rng.choice(seen)
            hot.move(previous, ids, lane(1), increments)
            plain.move(previous, ids, lane(1), mirrored)
        assert hot.add(ids, increments) == plain.add(ids, mirrored)
        if rng.random() < trimmed:  # a value trimmed that the bucket never counted: below 0
            hot.discard(time, lane(4))
            plain.discard(time, lane(4))
        seen.append(time)
    slot = hot._totals
    assert isinstance(slot, HotSlot)
    dumped_ids, lanes = slot.arena.dump(slot.slot)
    plain_ids, plain_lanes = plain._ids, plain._lanes
    assert dumped_ids.typecode == plain_ids.typecode and list(dumped_ids) == list(plain_ids)
    rows = [
        list(plain_lanes[at : at + plain._stride])
        for at in range(0, len(plain_lanes), plain._stride)
    ]
    used = max(
        (channel + 1 for row in rows for channel, count in enumerate(row) if count), default=0
    )
    values = [count for row in rows for count in row[:used]]
    assert list(lanes) == values
    low, high = min(values, default=0), max(values, default=0)
    narrowest = next(
        (code for floor, bound, code in _NARROWEST if floor <= low and high < bound), "q"
    )
    assert lanes.typecode == (narrowest if values else "B")
    assert dumped_ids.typecode + lanes.typecode == types
