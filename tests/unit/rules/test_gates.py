"""Gates: a rule's conditions decided per (source, action) answer as the whole map does."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from detector.features.observation import Observation
from detector.rules.conditions import RegexGuard, compile_any_of, compile_condition_map
from detector.rules.gates import Decision, unless_gate, where_gate
from tests.unit.rules.factories import obs

SPECS: list[dict[str, Any]] = [
    {},
    {"source": "okta_system_log", "outcome": "failure"},
    {"source": ["OKTA_SYSTEM_LOG", "github_audit"], "action": {"prefix": "user."}},
    {"action": {"regex": "^user\\.(session|authentication)\\."}, "ip": {"exists": True}},
    {"action": {"not": {"glob": "*.login*"}}, "actor": "alice"},
    {"source": {"not": "github_audit"}, "action": {"not_in": ["git.clone"]}},
    {"action": {"equals_field": "actor"}},
    {"action": {"not": {"equals_field": "attributes.op"}}},
    {"source": {"exists": False}},
    {"action": {"contains": "LOGIN"}, "source": {"suffix": "_audit"}},
    {
        "outcome": "success",
        "any": [
            {"source": "okta_system_log", "action": {"regex": "session"}},
            {"source": "github_audit", "action": "git.clone", "attributes.repo": {"exists": True}},
            {"all": [{"source": "cloudtrail"}, {"actor": {"prefix": "a"}}]},
        ],
    },
    {"all": [{"action": {"suffix": "start"}}, {"any": [{"source": "x"}, {"ip": "10.0.0.1"}]}]},
]
PAIRS = [
    ("okta_system_log", "user.session.start"),
    ("github_audit", "git.clone"),
    ("github_audit", "user.login"),
    ("cloudtrail", "ConsoleLogin"),
    ("Okta_System_Log", "USER.authentication.sso"),
    ("k8s_audit", "alice"),
    ("cloudtrail", ""),
]
OTHERS: list[dict[str, Any]] = [
    {"actor": "alice", "outcome": "success", "ip": None},
    {"actor": "bob", "outcome": "failure", "attributes": {"repo": "a/b", "op": "git.clone"}},
    {"actor": "alice", "outcome": "success", "ip": "10.0.0.1", "attributes": {"op": "x"}},
]


def _apply(decision: Decision, observation: Observation) -> bool:
    return decision if isinstance(decision, bool) else decision(observation)


@pytest.mark.parametrize("spec", SPECS)
def test_a_decided_where_answers_as_the_whole_map(spec: dict[str, Any]) -> None:
    whole = compile_condition_map(spec, RegexGuard(), allow_empty=True)
    gate = where_gate(spec, RegexGuard(), allow_empty=True)
    for (source, action), others in itertools.product(PAIRS, OTHERS):
        observation = obs(source=source, action=action, **others)
        assert _apply(gate.decide(source, action), observation) == whole(observation), (
            source,
            action,
            others,
        )


def test_a_decided_unless_answers_as_the_whole_list() -> None:
    specs = [{"action": "user.login", "actor": "bob"}, {"source": "cloudtrail"}]
    whole = compile_any_of(specs, RegexGuard())
    gate = unless_gate(specs, RegexGuard())
    for (source, action), others in itertools.product(PAIRS, OTHERS):
        observation = obs(source=source, action=action, **others)
        assert _apply(gate.decide(source, action), observation) == whole(observation)
    assert gate.decide("cloudtrail", "x") is True
    assert gate.decide("okta_system_log", "x") is False
    assert unless_gate([], RegexGuard()).decide("okta_system_log", "x") is False


def test_pairs_that_settle_the_conditions_leave_nothing_to_test() -> None:
    gate = where_gate({"source": "okta_system_log", "action": {"prefix": "user."}}, RegexGuard())
    assert gate.decide("okta_system_log", "user.session.start") is True
    assert gate.decide("github_audit", "user.login") is False


def test_a_regex_that_meets_a_bound_is_left_to_each_event() -> None:
    guard = RegexGuard().for_rule("r")
    spec = {"action": {"regex": {"pattern": "start", "max_length": 5}}}
    decision = where_gate(spec, guard).decide("okta_system_log", "user.session.start")
    assert not isinstance(decision, bool)  # cut to its first 5 characters: counted per event
    assert guard.limits == {}
    observation = obs(source="okta_system_log", action="user.session.start")
    assert decision(observation) is False
    assert guard.limits == {("r", "too_long"): 1}
