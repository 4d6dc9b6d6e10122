"""Condition maps: every matcher, every kind of field path, missing values, the regex bound."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from detector.features.observation import Observation
from detector.rules.conditions import (
    ConditionError,
    RegexGuard,
    compile_any_of,
    compile_condition_map,
)
from tests.unit.rules.factories import obs


def holds(where: str | dict[str, Any], observation: Observation) -> bool:
    spec = yaml.safe_load(where) if isinstance(where, str) else where
    return compile_condition_map(spec, RegexGuard())(observation)


def error_path(where: str) -> str:
    with pytest.raises(ConditionError) as caught:
        compile_condition_map(yaml.safe_load(where), RegexGuard())
    return caught.value.path


ALICE = obs(actor="Alice.Smith@Example.com", ip="203.0.113.9", target="acme/api")


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("actor: alice.smith@example.com", True),  # scalar equals ignores case
        ("actor: bob@example.com", False),
        ("actor: {equals: ALICE.SMITH@EXAMPLE.COM}", True),
        ("actor: [bob, alice.smith@example.com]", True),  # list means in
        ("actor: {in: [bob, carol]}", False),
        ("actor: {not_in: [bob, carol]}", True),
        ("actor: {not_in: [bob, alice.smith@example.com]}", False),
        ("actor: {prefix: alice.}", True),
        ("actor: {prefix: smith}", False),
        ("actor: {suffix: '@EXAMPLE.com'}", True),
        ("actor: {contains: smith@}", True),
        ("actor: {contains: jones}", False),
        ("actor: {glob: 'alice*@*.com'}", True),
        ("actor: {glob: 'alice.smit?@example.com'}", True),
        ("actor: {glob: 'alice'}", False),  # a glob matches the whole value
        ("target: {glob: 'acme/[a]pi'}", False),  # brackets are not wild
        ("actor: {regex: '^Alice\\.'}", True),
        ("actor: {regex: '^alice\\.'}", False),  # regex is case-sensitive unless (?i)
        ("actor: {regex: '(?i)^alice\\.'}", True),
        ("actor: {regex: 'Smith'}", True),  # regex searches
        ("actor: {not: {prefix: bob}}", True),
        ("actor: {not: {prefix: alice}}", False),
        ("ip: {exists: true}", True),
        ("country: {exists: false}", True),
        ("country: {exists: true}", False),
    ],
)
def test_string_matchers(where: str, expected: bool) -> None:
    assert holds(where, ALICE) is expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("features.actor.failures.1h: {gt: 4}", True),
        ("features.actor.failures.1h: {gt: 5}", False),
        ("features.actor.failures.1h: {gte: 5}", True),
        ("features.actor.failures.1h: {lt: 5}", False),
        ("features.actor.failures.1h: {lte: 5}", True),
        ("features.actor.failures.1h: 5", True),  # 5.0 equals 5
        ("features.actor.hour_of_week_share: {lt: 0.01}", True),
        ("features.actor.unknown.1h: {gte: 0}", False),  # missing feature
        ("features.actor.unknown.1h: {exists: false}", True),
        ("raw.status: {gte: 400}", True),  # numeric strings compare as numbers
        ("raw.status: '403'", True),
    ],
)
def test_numeric_matchers(where: str, expected: bool) -> None:
    observation = obs(
        features={"actor.failures.1h": 5.0, "actor.hour_of_week_share": 0.0},
        raw={"status": "403"},
    )
    assert holds(where, observation) is expected


def test_normalized_enum_and_boolean_fields() -> None:
    observation = obs(outcome="failure", category="authentication", privileged=True)
    assert holds("outcome: FAILURE", observation)
    assert holds("category: [authentication, privilege_change]", observation)
    assert holds("actor_type: human", observation)
    assert holds("privileged: true", observation)
    assert not holds("privileged: false", observation)
    assert holds("time: {prefix: '2026-01-05T10:00'}", observation)


def test_attribute_paths() -> None:
    observation = obs(attributes={"namespace": "prod-payments", "repo": "acme/api"})
    assert holds("attributes.namespace: {prefix: prod}", observation)
    assert holds("attributes.repo: ACME/API", observation)
    assert not holds("attributes.org: acme", observation)
    assert holds("attributes.org: {exists: false}", observation)


def test_new_values_paths() -> None:
    observation = obs(new_values={"country": "FR"})
    assert holds("new_values.country: {exists: true}", observation)
    assert holds("new_values.country: fr", observation)
    assert not holds("new_values.ip: {exists: true}", observation)


RAW = {
    "requestParameters": {"name": "prod-trail", "tags": ["prod", "audit"]},
    "targets": [{"type": "User", "id": "u1"}, {"type": "AppInstance", "id": "a1"}],
    "annotations": {"authorization.k8s.io/decision": "allow"},
    "count": 3,
    "flag": False,
    "nothing": None,
}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("raw.requestParameters.name: prod-trail", True),
        ("raw.requestParameters.tags: audit", True),  # lists: any element
        ("raw.requestParameters.tags: {not: {equals: audit}}", False),  # not negates the whole
        ("raw.requestParameters.tags: {not: {equals: dev}}", True),
        ("raw.requestParameters.tags: {not_in: [prod]}", True),  # audit is not in [prod]
        ("raw.targets.type: AppInstance", True),  # lists of objects fan out
        ("raw.targets.id: {in: [u9, a1]}", True),
        ("raw.targets.0.type: User", True),  # a numeric segment indexes
        ("raw.targets.1.type: User", False),
        ("raw.annotations.authorization.k8s.io/decision: allow", True),  # dotted keys
        ("raw.count: {gt: 2}", True),
        ("raw.flag: false", True),
        ("raw.nothing: {exists: false}", True),  # null counts as missing
        ("raw.requestParameters: {exists: true}", True),
        ("raw.requestParameters: {equals: x}", False),  # objects never equal a scalar
        ("raw.missing.path: {exists: false}", True),
        ("raw.missing.path: {not: {equals: x}}", True),
        ("raw.missing.path: {not_in: [x]}", False),
    ],
)
def test_raw_paths(where: str, expected: bool) -> None:
    assert holds(where, obs(raw=RAW)) is expected


def test_missing_values_satisfy_only_exists_false_and_not() -> None:
    observation = obs(country=None)
    assert not holds("country: {not_in: [US]}", observation)
    assert not holds("country: {glob: '*'}", observation)
    assert not holds("country: {regex: '.*'}", observation)
    assert holds("country: {not: {equals: US}}", observation)


def test_any_and_all_groups() -> None:
    observation = obs(actor="bob", outcome="failure")
    where = """
    any:
      - actor: alice
      - all:
          - actor: bob
          - outcome: failure
    """
    assert holds(where, observation)
    assert not holds(where, obs(actor="bob", outcome="success"))
    assert not holds("{actor: bob, outcome: success}", observation)  # the map is an AND


def test_unless_list_holds_if_any_map_holds_entirely() -> None:
    unless = compile_any_of(
        [{"actor_type": "service"}, {"actor": {"glob": "svc-*"}, "outcome": "failure"}],
        RegexGuard(),
    )
    assert unless(obs(actor_type="service"))
    assert unless(obs(actor="svc-deploy", outcome="failure"))
    assert not unless(obs(actor="svc-deploy", outcome="success"))
    assert not compile_any_of([], RegexGuard())(obs())


def test_a_backtracking_regex_is_time_bounded_and_counts_timeouts() -> None:
    guard = RegexGuard(timeout=0.02)
    # The lookahead keeps the pattern off RE2 (linear time, see test_regexes.py).
    predicate = compile_condition_map({"actor": {"regex": "^(?=a)(a|aa)+$"}}, guard)
    started = time.perf_counter()
    assert not predicate(obs(actor="a" * 5000 + "!"))
    assert time.perf_counter() - started < 2.0
    assert guard.timeouts == 1
    assert predicate(obs(actor="aaaa"))
    assert guard.timeouts == 1


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("actr: alice", "actr"),
        ("raw.: x", "raw."),
        ("features: 1", "features"),
        ("actor: {regex: '(unclosed'}", "actor.regex"),
        ("actor: {glob: ''}", "actor.glob"),
        ("actor: {startswith: a}", "actor"),
        ("actor: {prefix: a, suffix: b}", "actor"),
        ("actor: null", "actor"),
        ("actor: {in: []}", "actor.in"),
        ("actor: {in: [{a: 1}]}", "actor.in[0]"),
        ("actor: {gt: ten}", "actor.gt"),
        ("actor: {exists: yes-please}", "actor.exists"),
        ("actor: {not: {regex: '['}}", "actor.not.regex"),
        ("actor: {regex: {pattern: '(?<x'}}", "actor.regex.pattern"),
        ("actor: {regex: {pattern: a, max_length: 0}}", "actor.regex.max_length"),
        ("actor: {regex: {pattern: a, max_length: many}}", "actor.regex.max_length"),
        ("actor: {regex: {pattern: a, flags: i}}", "actor.regex"),
        ("actor: {regex: {max_length: 10}}", "actor.regex.pattern"),
        ("any: []", "any"),
        ("any: [{actor: a}, {bogus: b}]", "any[1].bogus"),
        ("time: 2026-01-05", "time"),  # an unquoted YAML date is not a string
    ],
)
def test_invalid_conditions_name_their_path(where: str, path: str) -> None:
    assert error_path(where) == path


def test_empty_map_is_an_error_unless_allowed() -> None:
    with pytest.raises(ConditionError, match="empty"):
        compile_condition_map({}, RegexGuard())
    assert compile_condition_map({}, RegexGuard(), allow_empty=True)(obs())
