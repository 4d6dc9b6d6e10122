"""Engine state: snapshot/restore continues identically, bounded tables, determinism."""

from __future__ import annotations

import random

import orjson
import pytest

from detector.detections import Detection
from detector.features.observation import Observation
from detector.rules import EngineStateError, Rule, RuleContext, RuleEngine
from detector.rules.state import GroupTable
from tests.unit.rules.factories import obs, observe_all, rule, rules

PACK = """
- id: brute-force
  kind: threshold
  where: {outcome: failure}
  threshold: {window: 10m, count: 6}
- id: spray
  kind: threshold
  group_by: [ip]
  where: {outcome: failure}
  threshold: {window: 30m, distinct: {field: actor, count: 4}}
- id: success-after-failures
  kind: sequence
  sequence:
    window: 20m
    steps:
      - {where: {outcome: failure}, count: 3}
      - {where: {outcome: success}}
- id: new-country
  kind: new_value
  new_value: {field: country}
- id: admin-action
  kind: match
  where: {action: org.add_member}
"""

ACTORS = ["alice", "bob", "carol", "dave", "erin"]
IPS = ["203.0.113.9", "198.51.100.7", "192.0.2.44"]


def stream(seed: int, count: int) -> list[Observation]:
    """A reproducible mix of failures, successes and the odd new country or admin action."""
    chooser = random.Random(seed)
    out = []
    minute = 0.0
    for index in range(count):
        minute += chooser.choice([0.1, 0.2, 0.5, 1, 7])
        roll = chooser.random()
        out.append(
            obs(
                minute,
                actor=chooser.choice(ACTORS),
                ip=chooser.choice(IPS),
                id=f"ev{index}",
                outcome="failure" if roll < 0.6 else "success",
                action="org.add_member" if roll > 0.97 else "user.session.start",
                new_values={"country": "BR"} if 0.9 < roll < 0.93 else {},
            )
        )
    return out


def engine(pack: list[Rule] | None = None, **context: object) -> RuleEngine:
    return RuleEngine(pack if pack is not None else rules(PACK), RuleContext(**context))  # type: ignore[arg-type]


def roundtrip(snapshot: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = orjson.loads(orjson.dumps(snapshot))
    return loaded


@pytest.mark.parametrize("split", [1, 37, 150, 299])
def test_snapshot_and_restore_continue_identically(split: int) -> None:
    events = stream(seed=7, count=300)
    uninterrupted = observe_all(engine(), events)
    assert {d.name for d in uninterrupted} == {
        "brute-force",
        "spray",
        "success-after-failures",
        "new-country",
        "admin-action",
    }
    first = engine()
    before = observe_all(first, events[:split])
    second = engine()
    second.restore(roundtrip(first.snapshot()))
    after = observe_all(second, events[split:])
    assert before + after == uninterrupted


def test_restored_state_matters() -> None:
    events = [obs(minute, outcome="failure") for minute in range(6)]
    first = engine()
    observe_all(first, events[:5])
    resumed = engine()
    resumed.restore(roundtrip(first.snapshot()))
    assert [d.name for d in resumed.evaluate(events[5])] == ["brute-force"]
    assert [d.name for d in engine().evaluate(events[5])] == []


def test_state_of_a_changed_rule_is_discarded() -> None:
    first = engine()
    observe_all(first, [obs(minute, outcome="failure") for minute in range(5)])
    changed = rules(PACK.replace("count: 6}", "count: 7}"))
    resumed = engine(changed)
    resumed.restore(roundtrip(first.snapshot()))
    assert resumed.group_counts()["brute-force"] == 0
    assert resumed.group_counts()["spray"] == 1  # unchanged rules keep theirs


@pytest.mark.parametrize(
    "snapshot",
    [
        {"version": 99, "rules": {}},
        {"rules": {}},
        {
            "version": 1,
            "rules": {"brute-force": {"fingerprint": None, "groups": []}},
            "watermark": "x",
        },
        "not a mapping",
    ],
)
def test_unusable_snapshots_are_refused(snapshot: object) -> None:
    with pytest.raises(EngineStateError):
        engine().restore(snapshot)  # type: ignore[arg-type]


def test_malformed_groups_are_refused() -> None:
    first = engine()
    observe_all(first, [obs(0, outcome="failure")])
    data = roundtrip(first.snapshot())
    data["rules"]["brute-force"]["groups"] = [["alice"]]  # type: ignore[index]
    with pytest.raises(EngineStateError, match="malformed"):
        engine().restore(data)


def test_idle_groups_are_swept_after_their_window() -> None:
    checker = engine([rule("kind: threshold\nthreshold: {window: 10m, count: 100}")])
    observe_all(checker, [obs(index / 100, actor=f"user{index}") for index in range(100)])
    assert checker.group_counts() == {"test-rule": 100}
    checker.evaluate(obs(14, actor="late-riser"))  # within window + lateness: nothing goes
    assert checker.group_counts() == {"test-rule": 101}
    checker.evaluate(obs(120, actor="next-day"))
    assert checker.group_counts() == {"test-rule": 1}
    assert checker.swept == 101


def test_tables_are_bounded_least_recently_active_first() -> None:
    checker = engine(
        [rule("kind: threshold\nthreshold: {window: 1h, count: 3}")], max_groups_per_rule=2
    )
    observe_all(checker, [obs(0, actor="alice"), obs(1, actor="bob"), obs(2, actor="alice")])
    checker.evaluate(obs(3, actor="carol"))  # bob is the least recently active
    assert checker.group_counts() == {"test-rule": 2}
    assert checker.evicted_groups() == 1
    assert observe_all(checker, [obs(4, actor="bob"), obs(5, actor="bob")]) == []
    assert len(checker.evaluate(obs(6, actor="alice"))) == 0  # alice was evicted by bob's return
    assert len(checker.evaluate(obs(7, actor="bob"))) == 1


def test_same_input_same_detections_and_state() -> None:
    events = stream(seed=11, count=200)
    one, two = engine(), engine()
    first: list[Detection] = observe_all(one, events)
    second: list[Detection] = observe_all(two, events)
    assert first == second
    assert orjson.dumps(one.snapshot()) == orjson.dumps(two.snapshot())


def test_a_sweep_drops_exactly_the_idle_groups_whatever_the_order_of_their_events() -> None:
    table: GroupTable[str] = GroupTable(100)
    for key, last in [("a", 50), ("b", 10), ("c", 30), ("a", 5), ("d", 70)]:
        table.put((key,), last, key)  # "a" again, older: out of order
    assert table.sweep(5) == 0  # nothing older than the bound: no scan needed
    assert table.sweep(31) == 3  # a (5), b (10), c (30)
    assert [key for key, _, _ in table.items()] == [("d",)]
    assert table.sweep(70) == 0
    restored: GroupTable[str] = GroupTable(100)
    restored.load_state([[["x"], 40, "x"], [["y"], 20, "y"]], str)
    assert restored.sweep(30) == 1
    assert [key for key, _, _ in restored.items()] == [("x",)]
