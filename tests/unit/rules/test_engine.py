"""The engine: match and new_value rules, exceptions, change windows, detections, bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detector.detections import DetectorKind, Severity
from detector.errors import RuleError
from detector.features.observation import Observation
from detector.rules import ChangeWindow, RuleContext, RuleEngine
from detector.rules.conditions import RegexGuard, compile_condition_map
from tests.unit.rules.factories import obs, observe_all, rule, rules

BRANCH_PROTECTION = """
id: branch-protection-removed
kind: match
severity: critical
tags: [attack.defense_evasion, attack.t1562.001]
runbook: Ask the actor why.
suppress: 30m
where:
  source: github_audit
  action: [protected_branch.destroy, repository_ruleset.destroy]
unless:
  - actor_type: service
  - actor: {glob: "admin-*"}
"""

NEW_COUNTRY = """
id: new-country
kind: new_value
severity: medium
where: {category: authentication, outcome: success}
new_value: {field: country}
"""


def github(minutes: float = 0, **fields: Any) -> Observation:
    defaults: dict[str, Any] = {
        "source": "github_audit",
        "action": "protected_branch.destroy",
        "category": "config_change",
        "target": "acme/api",
    }
    return obs(minutes, **{**defaults, **fields})


def test_match_rules_fire_on_every_matching_event_with_the_rule_s_fields() -> None:
    engine = RuleEngine([rule(BRANCH_PROTECTION)])
    (detection,) = engine.evaluate(github(0, id="gh-1"))
    assert detection.kind is DetectorKind.RULE
    assert detection.name == "branch-protection-removed"
    assert detection.severity is Severity.CRITICAL
    assert detection.time == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert detection.key == (("actor", "alice"),)
    assert detection.actor == "alice"
    assert detection.source == "github_audit"
    assert detection.evidence == ("gh-1",)
    assert detection.suppress == timedelta(minutes=30)
    assert detection.tags == ("attack.defense_evasion", "attack.t1562.001")
    assert detection.runbook == "Ask the actor why."
    assert detection.score is None
    assert detection.summary == (
        "alice performed protected_branch.destroy on acme/api from 203.0.113.9 "
        "(github_audit, success)"
    )
    assert detection.explanation["conditions"]["where"]["source"] == "github_audit"
    assert detection.explanation["group"] == {"actor": "alice"}
    assert len(engine.evaluate(github(1))) == 1


def test_where_must_hold() -> None:
    engine = RuleEngine([rule(BRANCH_PROTECTION)])
    assert engine.evaluate(github(action="repo.create")) == []
    assert engine.evaluate(obs(action="protected_branch.destroy")) == []  # another source


def test_unless_exceptions_ignore_the_event() -> None:
    engine = RuleEngine([rule(BRANCH_PROTECTION)])
    assert engine.evaluate(github(actor_type="service")) == []
    assert engine.evaluate(github(actor="admin-carol")) == []
    assert len(engine.evaluate(github(actor="carol"))) == 1


SATURDAY_NIGHT_PARIS = ChangeWindow(
    days=("sat",), start="22:00", end="02:00", timezone="Europe/Paris"
)


def test_change_windows_silence_only_rules_that_ask_for_it() -> None:
    context = RuleContext(change_windows=(SATURDAY_NIGHT_PARIS,))
    respectful = rule(BRANCH_PROTECTION, unless_change_window=True)
    strict = rule(BRANCH_PROTECTION, id="strict")
    engine = RuleEngine([respectful, strict], context)
    saturday_23_paris = 5 * 24 * 60 + 12 * 60  # 2026-01-10 22:00 UTC = 23:00 Paris
    inside = engine.evaluate(github(saturday_23_paris))
    assert [d.name for d in inside] == ["strict"]
    outside = engine.evaluate(github(saturday_23_paris - 120))
    assert [d.name for d in outside] == ["branch-protection-removed", "strict"]


def test_change_windows_apply_to_threshold_rules_before_counting() -> None:
    context = RuleContext(change_windows=(ChangeWindow(start="10:00", end="10:05"),))
    counting = rule(
        "kind: threshold\nwhere: {outcome: failure}\nthreshold: {window: 1h, count: 3}",
        unless_change_window=True,
    )
    engine = RuleEngine([counting], context)
    stream = [obs(minute, outcome="failure") for minute in (1, 2, 3, 6, 7)]
    assert observe_all(engine, stream) == []
    assert len(engine.evaluate(obs(8, outcome="failure"))) == 1


def test_new_value_fires_on_a_first_seen_value_after_learning() -> None:
    engine = RuleEngine([rule(NEW_COUNTRY)])
    assert engine.evaluate(obs(0, country="US")) == []
    assert engine.evaluate(obs(1, new_values={"ip": "198.51.100.7"})) == []
    assert engine.evaluate(obs(2, learning=True, new_values={"country": "FR"})) == []
    assert engine.evaluate(obs(3, outcome="failure", new_values={"country": "FR"})) == []
    (detection,) = engine.evaluate(obs(4, country="FR", new_values={"country": "FR"}))
    assert detection.explanation["field"] == "country"
    assert detection.explanation["value"] == "FR"
    assert "known_values" not in detection.explanation
    assert detection.summary == "alice performed user.session.start with a new country FR"


def test_new_value_explains_with_the_known_values() -> None:
    known = {("alice", "country"): ["US", "DE", "FR"]}
    engine = RuleEngine(
        [rule(NEW_COUNTRY)], known_values=lambda actor, field: known.get((actor, field), [])
    )
    (detection,) = engine.evaluate(obs(country="FR", new_values={"country": "FR"}))
    assert detection.explanation["known_values"] == ["US", "DE"]
    assert detection.summary.endswith("with a new country FR (known: US, DE)")
    (first,) = engine.evaluate(obs(actor="bob", new_values={"country": "FR"}))
    assert first.summary.endswith("(no earlier value known)")


def test_new_value_explains_with_the_values_known_at_its_event() -> None:
    """A store observes a whole batch before rules read it: what it knew at the event wins."""
    engine = RuleEngine([rule(NEW_COUNTRY)], known_values=lambda actor, field: ["JP", "FR"])
    observation = obs(country="FR", new_values={"country": "FR"})
    at_event = Observation(
        observation.event,
        new_values=observation.new_values,
        known_values={"country": ("FR", "DE")},
    )
    (detection,) = engine.evaluate(at_event)
    assert detection.explanation["known_values"] == ["DE"]


def test_a_new_value_rule_keeps_its_place_among_the_rules_that_fire() -> None:
    """New value rules are tried only on events that report one; their detections still come
    in rule order among the others' (the engine tries them apart: see _candidates)."""
    first = rule(id="first", kind="match", where={"category": "authentication"})
    last = rule(id="last", kind="match", where={"outcome": "success"})
    engine = RuleEngine([first, rule(NEW_COUNTRY), last])
    fired = engine.evaluate(obs(country="FR", new_values={"country": "FR"}))
    assert [detection.name for detection in fired] == ["first", "new-country", "last"]
    assert [d.name for d in engine.evaluate(obs(country="FR"))] == ["first", "last"]


def test_a_new_value_rule_with_a_regex_is_tried_on_every_event() -> None:
    """Its regex bounds are tallied on every event of the kinds it admits, new value or not."""
    spec = rule(
        id="new-country-bots",
        kind="new_value",
        where={"actor": {"regex": "(a)\\1"}},
        new_value={"field": "country"},
    )
    engine = RuleEngine([spec])
    assert engine.evaluate(obs(actor="aa")) == []
    assert engine.evaluate(obs(actor="aa", new_values={"country": "FR"})) != []
    assert engine.regex_limits == {("new-country-bots", "fallback"): 2}


def test_new_value_fields_must_be_tracked_by_the_context() -> None:
    with pytest.raises(RuleError, match="not a tracked field") as caught:
        RuleEngine([rule(NEW_COUNTRY)], RuleContext(tracked=("ip",)))
    assert caught.value.where is not None
    assert caught.value.where.endswith("rule new-country: new_value.field")


def test_late_observations_still_reach_match_and_new_value_rules() -> None:
    engine = RuleEngine([rule(BRANCH_PROTECTION), rule(NEW_COUNTRY)])
    assert len(engine.evaluate(github(late=True))) == 1
    assert len(engine.evaluate(obs(late=True, new_values={"country": "FR"}))) == 1


def test_disabled_rules_do_not_run() -> None:
    engine = RuleEngine([rule(BRANCH_PROTECTION, enabled=False)])
    assert engine.rules == ()
    assert engine.evaluate(github()) == []


def test_detections_come_in_rule_order() -> None:
    pack = rules(
        """
        - {id: b-rule, kind: match, where: {actor: alice}}
        - {id: a-rule, kind: match, where: {source: {in: [OKTA_SYSTEM_LOG]}}}
        - {id: c-rule, kind: match, where: {source: github_audit}}
        """
    )
    engine = RuleEngine(pack)
    assert [d.name for d in engine.evaluate(obs())] == ["b-rule", "a-rule"]
    assert [d.name for d in engine.evaluate(github())] == ["b-rule", "c-rule"]


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(RuleError, match="duplicate rule id"):
        RuleEngine([rule(BRANCH_PROTECTION), rule(BRANCH_PROTECTION)])


def test_templates_reach_attributes_and_features_and_show_unknowns_as_dashes() -> None:
    template = (
        "{actor} on {attributes[repo]} ({attributes[org]}), {features[actor.events.1h]:.0f}/h"
    )
    engine = RuleEngine([rule(BRANCH_PROTECTION, summary=template)])
    observation = github(attributes={"repo": "acme/api"}, features={"actor.events.1h": 12.0})
    (detection,) = engine.evaluate(observation)
    assert detection.summary == "alice on acme/api (-), 12/h"


def test_a_template_that_fails_at_run_time_falls_back_to_the_default() -> None:
    engine = RuleEngine([rule(BRANCH_PROTECTION, summary="{features[actor.events.1h]:.0f}/h")])
    (detection,) = engine.evaluate(github())
    assert detection.summary.startswith("alice performed protected_branch.destroy")


def test_regex_timeouts_are_counted_as_non_matches() -> None:
    engine = RuleEngine(
        [rule(kind="match", where={"actor": {"regex": "^(?=a)(a|aa)+$"}})],  # off RE2
        RuleContext(regex_timeout=0.01),
    )
    assert engine.evaluate(obs(actor="a" * 5000 + "!")) == []
    assert engine.regex_timeouts == 1


PINNING_CASES = [
    {"source": "github_audit"},
    {"source": ["GitHub_Audit", "okta_system_log"]},
    {"source": {"in": ["k8s_audit"]}},
    {"source": {"not_in": ["github_audit"]}},
    {"any": [{"source": "github_audit", "outcome": "success"}, {"source": "k8s_audit"}]},
    {"any": [{"source": "github_audit"}, {"actor": "alice"}]},
    {"all": [{"outcome": "success"}, {"source": "okta_system_log"}]},
    {"actor": "alice"},
]


@pytest.mark.parametrize("where", PINNING_CASES)
def test_rules_see_exactly_the_events_their_conditions_match(where: dict[str, Any]) -> None:
    # The engine only tries a rule on the sources its conditions pin: never fewer events.
    engine = RuleEngine([rule(kind="match", where=where)])
    predicate = compile_condition_map(where, RegexGuard())
    for source in ("github_audit", "okta_system_log", "k8s_audit", "GITHUB_AUDIT"):
        for actor in ("alice", "bob"):
            observation = obs(source=source, actor=actor)
            assert bool(engine.evaluate(observation)) is predicate(observation), source


ACTION_PINNING_CASES = [
    {"action": "git.clone"},
    {"action": ["Git.Clone", "repo.create"]},
    {"action": {"in": ["repo.create"]}},
    {"action": {"not_in": ["git.clone"]}},
    {"action": {"glob": "git.*"}},
    {"any": [{"action": "git.clone", "outcome": "success"}, {"action": "repo.create"}]},
    {"any": [{"action": "git.clone"}, {"actor": "alice"}]},
    {"all": [{"outcome": "success"}, {"action": "repo.create"}]},
    {"source": "github_audit", "action": "git.clone"},
]


@pytest.mark.parametrize("where", ACTION_PINNING_CASES)
def test_rules_see_exactly_the_events_their_action_conditions_match(
    where: dict[str, Any],
) -> None:
    # The engine indexes rules by the actions their conditions pin: never fewer events.
    engine = RuleEngine([rule(kind="match", where=where)])
    predicate = compile_condition_map(where, RegexGuard())
    for action in ("git.clone", "GIT.CLONE", "repo.create", "org.update_member"):
        for actor in ("alice", "bob"):
            observation = obs(source="github_audit", action=action, actor=actor)
            assert bool(engine.evaluate(observation)) is predicate(observation), action
