"""Rules decided per kind of event (source, action, category, outcome, actor type) answer
exactly as their whole conditions do, and the shortcuts around them change nothing."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta
from typing import Any

import pytest

from detector.features.observation import Observation
from detector.rules import RuleEngine
from detector.rules.conditions import RegexGuard, compile_any_of, compile_condition_map
from detector.rules.engine import RuleContext
from detector.rules.fields import group_key_function, parse_field_path
from detector.rules.gates import Decision, Gate, unless_gate, where_gate
from detector.rules.regexes import LimitReason, compile_regex
from detector.rules.sequence import SequenceEvaluator, Step
from detector.rules.state import GroupTable
from tests.unit.rules.factories import obs, observe_all, rule, rules

KIND_SPECS: list[dict[str, Any]] = [
    {"outcome": "failure", "ip": {"exists": True}},
    {"outcome": {"not": "failure"}, "actor_type": ["service", "unknown"]},
    {"category": {"prefix": "auth"}, "any": [{"outcome": "success"}, {"actor": "bob"}]},
    {"actor_type": {"regex": "^hum"}, "attributes.repo": {"exists": False}},
    {"outcome": {"equals_field": "actor"}},
    {"any": [{"outcome": "failure", "source": "github_audit"}, {"category": "pipeline"}]},
    {"all": [{"actor_type": {"not_in": ["human"]}}, {"any": [{"attributes.repo": "a/b"}]}]},
]
KINDS = list(
    itertools.product(
        ("okta_system_log", "github_audit"),
        ("success", "failure", "unknown"),
        ("human", "service"),
        ("authentication", "pipeline"),
    )
)
OTHERS: list[dict[str, Any]] = [
    {"actor": "alice", "ip": None},
    {"actor": "bob", "attributes": {"repo": "a/b"}},
    {"actor": "failure", "ip": "10.0.0.1"},
]


def _apply(decision: Decision, observation: Observation) -> bool:
    return decision if isinstance(decision, bool) else decision(observation)


def _observation(kind: tuple[str, str, str, str], **others: Any) -> Observation:
    source, outcome, actor_type, category = kind
    return obs(source=source, outcome=outcome, actor_type=actor_type, category=category, **others)


def _decide_for(gate: Gate, observation: Observation) -> Decision:
    event = observation.event
    return gate.decide(
        event.source,
        event.action,
        category=event.category,
        outcome=event.outcome,
        actor_type=event.actor_type,
    )


@pytest.mark.parametrize("spec", KIND_SPECS)
def test_a_where_decided_per_kind_answers_as_the_whole_map(spec: dict[str, Any]) -> None:
    whole = compile_condition_map(spec, RegexGuard())
    gate = where_gate(spec, RegexGuard())
    for kind, others in itertools.product(KINDS, OTHERS):
        observation = _observation(kind, **others)
        assert _apply(_decide_for(gate, observation), observation) == whole(observation), (
            kind,
            others,
        )


def test_an_unless_decided_per_kind_answers_as_the_whole_list() -> None:
    specs = [{"actor_type": "service"}, {"outcome": "unknown", "actor": "bob"}]
    whole = compile_any_of(specs, RegexGuard())
    gate = unless_gate(specs, RegexGuard())
    for kind, others in itertools.product(KINDS, OTHERS):
        observation = _observation(kind, **others)
        assert _apply(_decide_for(gate, observation), observation) == whole(observation)
    service = _observation(("github_audit", "success", "service", "pipeline"))
    assert _decide_for(gate, service) is True


def test_fields_left_out_of_a_kind_stay_tests() -> None:
    gate = where_gate({"source": "okta_system_log", "outcome": "failure"}, RegexGuard())
    decision = gate.decide("okta_system_log", "user.session.start")
    assert not isinstance(decision, bool)
    assert decision(obs(outcome="failure")) and not decision(obs(outcome="success"))
    assert gate.decide("okta_system_log", "x", outcome="failure") is True
    assert gate.decide("okta_system_log", "x", outcome="success") is False


PACK = """
- id: failed-sign-in
  kind: match
  where: {outcome: failure, category: authentication}
  unless: [{actor_type: service}]
- id: burst
  kind: threshold
  where: {source: okta_system_log, outcome: {not: success}}
  group_by: [actor, ip]
  threshold: {window: 30m, count: 3}
- id: fail-then-succeed
  kind: sequence
  where: {source: okta_system_log}
  unless: [{actor: carol}]
  sequence:
    window: 30m
    steps:
      - where: {outcome: failure}
        count: 2
      - where: {outcome: success, actor_type: human}
- id: new-country
  kind: new_value
  where: {outcome: success, country: {exists: true}}
  unless: [{actor_type: service}]
  new_value: {field: country}
"""


def _stream() -> list[Observation]:
    """Events of every kind, out of order and some late, from three actors and two IPs."""
    observations = []
    for minute in range(120):
        actor = ("alice", "bob", "carol")[minute % 3]
        observations.append(
            obs(
                minute - (minute % 4) * 3,  # out of order, within the lateness
                actor=actor,
                outcome=("failure", "failure", "success", "unknown", "failure")[minute % 5],
                actor_type="service" if minute % 7 == 0 else "human",
                ip=("203.0.113.9", "198.51.100.7")[minute % 2],
                source="github_audit" if minute % 11 == 0 else "okta_system_log",
                country="FR" if minute % 13 == 0 else None,
                new_values={"country": "FR"} if minute % 13 == 0 else {},
                late=minute % 17 == 0,
            )
        )
    return observations


def _reference(engine: RuleEngine, observations: list[Observation]) -> list[tuple[str, ...]]:
    """What the engine answers with every condition tested in full (no gates, no shortcut)."""
    found = []
    for observation in observations:
        for compiled in engine._compiled:
            if observation.late and compiled.evaluator.stateful:
                continue
            if not compiled.where(observation) or compiled.unless(observation):
                continue
            key = tuple(path.text_value(observation) for path in compiled.group)
            firing = compiled.evaluator.observe(observation, key)
            if firing is not None:
                found.append((compiled.rule.id, observation.event.id, *firing.evidence))
    return found


def test_the_engine_fires_as_full_conditions_do() -> None:
    stream = _stream()
    pack = rules(PACK)
    detections = observe_all(RuleEngine(pack), stream)
    expected = _reference(RuleEngine(pack), stream)
    assert {found[0] for found in expected} == {rule.id for rule in pack}
    got = [(d.name, d.evidence[-1], *d.evidence) for d in detections]
    assert got == expected


@pytest.mark.parametrize("size", [1, 7, 120])
def test_a_batch_evaluated_at_once_fires_as_one_observation_at_a_time(size: int) -> None:
    """The pipeline's call (evaluate_batch) against evaluate per observation: the same
    detections in the same order, the watermark and the sweeps moving alike."""
    stream = _stream()
    batched = RuleEngine(rules(PACK))
    found = []
    for start in range(0, len(stream), size):
        found += batched.evaluate_batch(stream[start : start + size])
    alone = RuleEngine(rules(PACK))
    expected = observe_all(alone, stream)
    assert len({d.name for d in expected}) == 4
    assert [(d.name, d.evidence) for d in found] == [(d.name, d.evidence) for d in expected]
    assert batched.snapshot() == alone.snapshot()


def test_snapshots_carry_the_watermark_between_sweeps() -> None:
    engine = RuleEngine(rules(PACK), RuleContext(allowed_lateness=timedelta(0)))
    engine.evaluate(obs(0))
    engine.evaluate(obs(1))  # before the next sweep: the watermark still moves
    assert engine.snapshot()["watermark"] == engine.watermark
    again = RuleEngine(rules(PACK))
    again.restore(engine.snapshot())
    assert again.watermark == engine.watermark
    stream = _stream()
    assert observe_all(again, stream) == observe_all(engine, stream)


def test_a_later_step_alone_leaves_no_state() -> None:
    steps = [
        Step(compile_condition_map({"outcome": "failure"}, RegexGuard()), 1, {}),
        Step(compile_condition_map({"outcome": "success"}, RegexGuard()), 1, {}),
    ]
    evaluator = SequenceEvaluator(timedelta(minutes=5), steps, ("actor",), 100)
    assert evaluator.observe(obs(0, outcome="success"), ("alice",)) is None
    assert evaluator.group_count() == 0
    assert evaluator.observe(obs(1, outcome="failure"), ("alice",)) is None
    assert evaluator.observe(obs(2, outcome="success"), ("alice",)) is not None


def test_a_kind_no_step_matches_never_reaches_a_sequence() -> None:
    guard = RegexGuard()
    spec = {"outcome": "failure"}
    evaluator = SequenceEvaluator(
        timedelta(minutes=5),
        [Step(compile_condition_map(spec, guard), 1, spec, where_gate(spec, guard))] * 2,
        ("actor",),
        100,
    )

    def success(gate: Gate) -> Decision:
        return gate.decide("okta_system_log", "x", outcome="success")

    assert evaluator.specialise(success) is None

    def unknown_outcome(gate: Gate) -> Decision:
        return gate.decide("okta_system_log", "x")

    assert evaluator.specialise(unknown_outcome) is not None


@pytest.mark.parametrize(
    "paths",
    [("actor",), ("actor", "ip"), ("privileged",), ("outcome", "attributes.n"), ("raw.a.b",)],
)
def test_group_keys_are_the_text_values_of_their_paths(paths: tuple[str, ...]) -> None:
    parsed = [parse_field_path(path) for path in paths]
    key = group_key_function(parsed)
    for observation in (
        obs(ip=None, attributes={"n": "1"}, raw={"a": [{"b": 1}, {"b": True}]}),
        obs(privileged=True, raw={"a": {"b": 2.0}}),
    ):
        assert key(observation) == tuple(path.text_value(observation) for path in parsed)


def test_remembered_regex_answers_still_count_long_values() -> None:
    guard = RegexGuard(max_length=10).for_rule("r")
    search = compile_regex("b", guard, "actor.regex")
    assert [search("ab"), search("ab"), search("xy"), search("xy")] == [True, True, False, False]
    assert not guard.limits
    long = "a" * 20 + "b"
    assert [search(long), search(long)] == [False, False]  # only the prefix is searched
    assert guard.limits == {("r", LimitReason.TOO_LONG.value): 2}


def test_kinds_do_not_hide_a_rule_without_conditions_on_them() -> None:
    engine = RuleEngine([rule(kind="match", where={"actor": "alice"})])
    for kind in KINDS:
        assert len(engine.evaluate(_observation(kind, actor="alice"))) == 1
        assert engine.evaluate(_observation(kind, actor="bob")) == []


@pytest.mark.parametrize("seed", range(6))
def test_sweeps_drop_what_a_full_scan_drops_in_order_or_not(seed: int) -> None:
    """The ordered shortcut (stop at the first active group) leaves what a scan leaves."""
    chance = random.Random(seed)
    table: GroupTable[int] = GroupTable(40)
    reference: dict[tuple[str, ...], int] = {}  # key → last, least recently put first
    now = 0
    for step in range(600):
        now += chance.randrange(0, 5)
        key = (str(chance.randrange(60)),)
        last = now - (chance.randrange(30) if seed % 2 and chance.random() < 0.1 else 0)
        last = max(last, reference.get(key, last))
        table.put(key, last, step)
        reference.pop(key, None)
        reference[key] = last
        while len(reference) > 40:
            del reference[next(iter(reference))]
        if chance.random() < 0.05:
            table.drop(key)
            reference.pop(key, None)
        if step % 25 == 0:
            horizon = now - chance.randrange(10, 60)
            idle = [k for k, seen in reference.items() if seen < horizon]
            assert table.sweep(horizon) == len(idle)
            for k in idle:
                del reference[k]
            assert [(k, seen) for k, seen, _ in table.items()] == list(reference.items())
