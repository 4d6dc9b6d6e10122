"""A cold key's compact forms: values, sets and profiles frozen, then thawed to the same state.

An idle key keeps its remembered values, its actors and a sparse profile as a
tuple or bytes (docs/features.md, "Memory bounds"); reading or counting it
thaws them. A thawed structure must answer exactly as the one frozen would.
"""

from __future__ import annotations

import random
from array import array
from binascii import a2b_base64

import pytest

from detector.features.profile import HourOfWeekProfile, hour_of_week
from detector.features.remembered import RememberedValues
from detector.features.state import ActorState, KeyState
from detector.features.windows import FirstSeenSet, SetLimits, WindowSpec, lane

TRACKED = SetLimits(forget_after=5000.0, cap=30)
COUNTED = SetLimits(forget_after=900.0, cap=30, remember_first=False)
LIMITS = (TRACKED, COUNTED, TRACKED)


def test_remembered_values_thawed_answer_as_the_frozen_ones_would() -> None:
    """Small tables (scanned) and large ones (indexed, past 16 values) alike."""
    rng = random.Random(3)
    live = RememberedValues()
    for step in range(1500):
        field = rng.randrange(3)
        value, time = f"v{rng.randrange(25)}", step * 7.0
        if rng.random() < 0.1:  # go cold and come back, as an idle actor does
            live = RememberedValues.thawed(live.frozen())
        reference = RememberedValues.thawed(live.frozen())
        assert live.observe(field, value, time, LIMITS[field]) == reference.observe(
            field, value, time, LIMITS[field]
        )
        assert (live._index is None) == (reference._index is None)
        if live.full(field, LIMITS[field]):
            assert live.trim(field, time, LIMITS[field]) == reference.trim(
                field, time, LIMITS[field]
            )
        names = ("a", "b", "c")
        assert reference.to_state(names, LIMITS) == live.to_state(names, LIMITS)
    assert RememberedValues.thawed(RememberedValues().frozen()).to_state(("a",), LIMITS) == {}


def test_a_first_seen_set_thawed_answers_as_the_frozen_one_would() -> None:
    rng = random.Random(4)
    live = FirstSeenSet(TRACKED)
    for step in range(800):
        value, time = f"actor{rng.randrange(40)}", step * 11.0
        reference = FirstSeenSet.thawed(live.frozen())
        assert (live._index is None) == (reference._index is None)
        assert live.observe(value, time) == reference.observe(value, time)
        if live.full:
            assert live.trim(time) == reference.trim(time)
        assert live.to_state() == reference.to_state()
        if rng.random() < 0.1:
            live = FirstSeenSet.thawed(live.frozen())
    empty = FirstSeenSet.thawed(FirstSeenSet(COUNTED).frozen())
    assert len(empty) == 0 and empty.to_state() == []


def test_a_sparse_profile_packs_into_bytes_and_a_dense_one_stays() -> None:
    sparse = HourOfWeekProfile()
    for hour in (1, 1, 5, 30, 30, 30):
        sparse.add(hour * 3600.0)
    packed = sparse.packed()
    assert isinstance(packed, bytes)
    thawed = HourOfWeekProfile.from_packed(packed)
    assert thawed.to_state() == sparse.to_state()
    assert (thawed.total, thawed.active_hours) == (sparse.total, sparse.active_hours)
    assert thawed.share_and_rarity(30 * 3600.0) == sparse.share_and_rarity(30 * 3600.0)
    dense = HourOfWeekProfile()
    for _ in range(300):
        dense.add(0.0)
    assert dense.packed() is dense


def cold_actor(spec: WindowSpec) -> ActorState:
    actor = ActorState(1000.0, spec)
    actor.add(spec.bucket_ids(1000.0), [lane(0)] * len(spec.widths))
    actor.remembered.observe(0, "10.0.0.1", 1000.0, TRACKED)
    actor.profile.add(1000.0)
    spec.hot.clear()  # as if other keys were counted since
    actor.cool()
    return actor


@pytest.mark.usefixtures("plain_counters")
def test_reading_a_cold_actor_makes_it_hot_with_its_live_state() -> None:
    spec = WindowSpec([300.0])
    actor = cold_actor(spec)
    assert isinstance(actor._remembered, tuple) and isinstance(actor._profile, bytes)
    assert actor.remembered.to_state(("ip",), (TRACKED,)) == {"ip": [["10.0.0.1", 1000.0, 1000.0]]}
    assert isinstance(actor._remembered, RememberedValues)
    assert isinstance(actor._profile, HourOfWeekProfile)
    assert isinstance(actor._totals, list) and list(spec.hot) == [actor]
    assert actor.remembered is actor.remembered  # the live values, not a copy
    assert actor.profile.total == 1


@pytest.mark.usefixtures("plain_counters")
def test_a_snapshot_reads_cold_keys_without_thawing_them() -> None:
    spec = WindowSpec([300.0])
    actor = cold_actor(spec)
    frozen_values, frozen_profile = actor._remembered, actor._profile
    assert isinstance(frozen_values, tuple)
    first, last, _, values, sightings, profile = actor.to_row()
    assert (first, last, values) == (1000.0, 1000.0, ["10.0.0.1"])
    assert a2b_base64(sightings) == frozen_values[-1]
    assert a2b_base64(profile) == frozen_profile == bytes((hour_of_week(1000.0), 1))
    assert actor._remembered is frozen_values and not spec.hot
    key = KeyState(1000.0, spec, FirstSeenSet(COUNTED))
    key.actors.observe("alice", 1000.0)
    key.cool()
    assert isinstance(key._actors, tuple)
    _, _, actors, sightings = key.to_row()
    assert actors == ["alice"] and array("d", a2b_base64(sightings)).tolist() == [1000.0]
    assert isinstance(key._actors, tuple) and not spec.hot
    assert key.actors.observe("alice", 1010.0) == 1000.0  # counted: thawed, hot
    assert isinstance(key._actors, FirstSeenSet) and list(spec.hot) == [key]
