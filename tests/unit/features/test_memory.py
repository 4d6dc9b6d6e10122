"""The feature store's memory savings change no number, and keys dropped at the cap are counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from prometheus_client import CollectorRegistry

from detector.events.model import ActorType, Category, Event, Outcome
from detector.features.profile import HourOfWeekProfile
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from detector.metrics import Metrics

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


def event(number: int, actor: str, *, country: str = "DE", ip: str = "10.0.0.1") -> Event:
    return Event(
        time=START + timedelta(seconds=number),
        source="github_audit",
        action="git.clone",
        category=Category.CODE_ACCESS,
        outcome=Outcome.SUCCESS,
        actor=actor,
        actor_type=ActorType.HUMAN,
        id=f"e{number}",
        ip=ip,
        country=country,
        user_agent="git/2.43",
        target="acme/api",
        attributes={"repo": "acme/api", "namespace": "team-a"},
    )


def test_profile_counts_past_one_and_two_bytes_stay_exact_and_round_trip() -> None:
    profile = HourOfWeekProfile()
    monday_nine = START.timestamp()
    for _ in range(70_000):  # past 255 (one byte) and 65,535 (two bytes) in one hour
        profile.add(monday_nine)
    profile.add(monday_nine + 3600)
    assert (profile.total, profile.active_hours) == (70_001, 2)
    assert profile.share(monday_nine) == 70_000 / 70_001
    restored = HourOfWeekProfile.from_state(orjson.loads(orjson.dumps(profile.to_state())))
    assert restored.to_state() == profile.to_state()
    assert restored.share_and_rarity(monday_nine) == profile.share_and_rarity(monday_nine)


def test_a_value_many_actors_share_is_held_once() -> None:
    store = FeatureStore(FeatureSettings())
    # Equal strings, separate objects: what two parsed records bring.
    store.observe(event(1, "ann", country="".join(["D", "E"])))
    store.observe(event(2, "bob", country="".join(["D", "E"])))
    (ann,) = store.known_values("ann", "country")
    (bob,) = store.known_values("bob", "country")
    assert ann == bob == "DE"
    assert ann is bob


def test_a_restored_store_holds_shared_values_once_and_continues_the_same() -> None:
    original = FeatureStore(FeatureSettings())
    for number in range(200):
        original.observe(event(number * 37, f"user{number % 23}", ip=f"10.0.0.{number % 7}"))
    restored = FeatureStore.restore(
        FeatureSettings(), orjson.loads(orjson.dumps(original.snapshot()))
    )
    assert restored.snapshot() == original.snapshot()
    (first,) = restored.known_values("user1", "country")
    (second,) = restored.known_values("user2", "country")
    assert first is second
    later = event(200 * 37, "user3", ip="10.0.0.9")
    assert restored.observe(later) == original.observe(later)


def test_keys_dropped_at_the_cap_are_counted_by_kind_and_reason() -> None:
    store = FeatureStore(FeatureSettings(max_keys=10))
    for number in range(25):
        store.observe(event(number, f"user{number}", ip=f"10.0.1.{number}"))
    assert store.key_counts["actor"] == 10  # a full table drops a tenth: one key each time
    assert store.evictions["actor", "cap"] == store.evictions["ip", "cap"] == 15
    assert store.evicted_keys == 30
    store.observe(event(40 * 86_400, "late-comer"))  # 40 days on: the others are idle
    assert store.evictions["actor", "idle"] == 10


def test_eviction_totals_become_a_counter_that_survives_a_reset() -> None:
    metrics = Metrics(CollectorRegistry())

    def value() -> float | None:
        labels = {"kind": "actor", "reason": "cap"}
        return metrics.registry.get_sample_value("ciwatch_state_evictions_total", labels)

    metrics.count_evictions({("actor", "cap"): 5})
    metrics.count_evictions({("actor", "cap"): 8})
    assert value() == 8
    metrics.count_evictions({("actor", "cap"): 2})  # a restored store counts from 0 again
    assert value() == 10
