"""Threshold rules: counting and distinct counting per group within an event-time window."""

from __future__ import annotations

from typing import Any

from detector.features.observation import Observation
from detector.rules import RuleEngine
from detector.rules.state import EVIDENCE_CAP
from tests.unit.rules.factories import obs, observe_all, rule

BRUTE_FORCE = """
where: {outcome: failure}
kind: threshold
threshold: {window: 10m, count: 10}
"""

SPRAY = """
where: {outcome: failure}
kind: threshold
group_by: [ip]
threshold:
  window: 1h
  distinct: {field: actor, count: 5}
"""


def failures(count: int, *, every: float = 1, start: float = 0, **fields: Any) -> list[Observation]:
    return [
        obs(start + index * every, outcome="failure", id=f"f{start + index * every:g}", **fields)
        for index in range(count)
    ]


def test_fires_once_when_the_count_is_reached() -> None:
    engine = RuleEngine([rule(BRUTE_FORCE)])
    assert observe_all(engine, failures(9)) == []
    (detection,) = engine.evaluate(obs(9, outcome="failure", id="f9"))
    assert detection.name == "test-rule"
    assert detection.key == (("actor", "alice"),)
    assert detection.evidence == tuple(f"f{minute}" for minute in range(10))
    assert detection.explanation["count"] == 10
    assert detection.explanation["threshold"] == 10
    assert detection.explanation["window"] == "10m"
    assert detection.explanation["window_start"] == "2026-01-05T10:00:00Z"
    assert detection.score is None


def test_the_window_restarts_after_firing() -> None:
    engine = RuleEngine([rule(BRUTE_FORCE)])
    assert len(observe_all(engine, failures(19, every=0.25))) == 1
    assert len(observe_all(engine, failures(1, start=4.75))) == 1


def test_events_spread_wider_than_the_window_do_not_fire() -> None:
    engine = RuleEngine([rule(BRUTE_FORCE)])
    # One failure every 2 minutes: never more than 6 in any 10 minutes.
    assert observe_all(engine, failures(30, every=2)) == []


def test_the_window_edge_is_inclusive() -> None:
    engine = RuleEngine([rule(BRUTE_FORCE.replace("count: 10", "count: 2"))])
    assert observe_all(engine, [obs(0, outcome="failure"), obs(10, outcome="failure")])
    engine = RuleEngine([rule(BRUTE_FORCE.replace("count: 10", "count: 2"))])
    assert not observe_all(engine, [obs(0, outcome="failure"), obs(10.01, outcome="failure")])


def test_groups_count_separately() -> None:
    engine = RuleEngine([rule(BRUTE_FORCE)])
    interleaved = [
        obs(index, actor=("alice", "bob")[index % 2], outcome="failure") for index in range(18)
    ]
    assert observe_all(engine, interleaved) == []
    by_ip = RuleEngine([rule(BRUTE_FORCE, group_by=["ip"])])
    (detection,) = observe_all(by_ip, interleaved[:10])
    assert detection.key == (("ip", "203.0.113.9"),)
    assert "across 2 actors" in detection.summary


def test_several_group_fields_make_the_key() -> None:
    engine = RuleEngine([rule(BRUTE_FORCE, group_by=["actor", "attributes.org"])])
    acme, other = {"org": "acme"}, {"org": "other"}
    stream = failures(5, attributes=acme) + failures(5, start=5, attributes=other)
    assert observe_all(engine, stream) == []
    (detection,) = observe_all(engine, failures(5, start=8, every=0.1, attributes=acme))
    assert detection.key == (("actor", "alice"), ("attributes.org", "acme"))


def test_out_of_order_events_within_the_lateness_count_in_their_place() -> None:
    engine = RuleEngine([rule(BRUTE_FORCE)])
    stream = failures(9, start=1)
    stream.insert(4, obs(0, outcome="failure", id="early"))  # arrives after later events
    (detection,) = observe_all(engine, stream)
    assert detection.evidence[0] == "early"
    assert detection.evidence[-1] == "f9"


def test_late_observations_are_skipped() -> None:
    engine = RuleEngine([rule(BRUTE_FORCE)])
    late = [obs(minute, outcome="failure", late=True) for minute in range(20)]
    assert observe_all(engine, late) == []
    assert engine.group_counts() == {"test-rule": 0}


def test_events_without_the_group_field_are_not_counted() -> None:
    engine = RuleEngine([rule(BRUTE_FORCE, group_by=["ip"])])
    assert observe_all(engine, failures(20, ip=None)) == []


def test_distinct_values_per_group() -> None:
    engine = RuleEngine([rule(SPRAY)])
    same_user = [obs(minute, actor="alice", outcome="failure") for minute in range(10)]
    assert observe_all(engine, same_user) == []
    users = [
        obs(10 + index, actor=name, outcome="failure", id=f"{name}-{index}")
        for index, name in enumerate(["bob", "carol", "dave", "erin"])
    ]
    (detection,) = observe_all(engine, users)
    assert detection.key == (("ip", "203.0.113.9"),)
    assert detection.explanation["distinct"] == 5
    assert detection.explanation["count"] == 14
    assert set(detection.explanation["distinct_values"]) == {
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
    }
    # One event per value, the latest; the trigger last.
    assert detection.evidence == ("e-alice-9", "bob-0", "carol-1", "dave-2", "erin-3")
    assert detection.actor == "erin"
    assert detection.summary.startswith("203.0.113.9: 5 distinct actor values within 1h")
    assert "last by erin" in detection.summary


def test_distinct_values_expire_with_the_window() -> None:
    engine = RuleEngine([rule(SPRAY)])
    names = ["a", "b", "c", "d", "e", "f", "g", "h"]
    # One new user every 20 minutes: at most 4 distinct in any hour.
    stream = [obs(20 * index, actor=name, outcome="failure") for index, name in enumerate(names)]
    assert observe_all(engine, stream) == []


def test_distinct_ignores_events_without_the_field() -> None:
    engine = RuleEngine([rule(SPRAY.replace("field: actor", "field: attributes.repo"))])
    assert observe_all(engine, failures(20)) == []


def test_evidence_is_capped_with_the_trigger_last() -> None:
    engine = RuleEngine([rule(BRUTE_FORCE.replace("count: 10", "count: 120"))])
    stream = [obs(index / 60, outcome="failure", id=f"f{index}") for index in range(120)]
    (detection,) = observe_all(engine, stream)
    assert len(detection.evidence) == EVIDENCE_CAP
    assert detection.evidence[-1] == "f119"
    assert detection.evidence[0] == f"f{120 - EVIDENCE_CAP}"
    assert detection.explanation["count"] == 120


def test_default_summary_names_actor_action_and_numbers() -> None:
    engine = RuleEngine([rule(BRUTE_FORCE)])
    stream = [obs(i, outcome="failure", ip=f"198.51.100.{i % 3}") for i in range(10)]
    (detection,) = observe_all(engine, stream)
    assert detection.summary == (
        "alice: 10 failed user.session.start events within 10m (threshold 10), from 3 IP addresses"
    )


def test_summary_templates_render_the_numbers() -> None:
    template = "{actor} failed to sign in {count} times in {window} from {distinct_ips} addresses"
    engine = RuleEngine([rule(BRUTE_FORCE, summary=template)])
    stream = [obs(i, outcome="failure", ip=f"198.51.100.{i % 2}") for i in range(10)]
    (detection,) = observe_all(engine, stream)
    assert detection.summary == "alice failed to sign in 10 times in 10m from 2 addresses"
