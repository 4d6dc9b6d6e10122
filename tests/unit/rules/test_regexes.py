"""Rule regexes: RE2 (linear time) where it compiles, a counted and bounded fallback elsewhere,
values bounded in length, every bound counted per rule and exported to Prometheus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from detector.metrics import Metrics, MetricsServer
from detector.rules import RuleEngine, bundled_rules_dir
from detector.rules.conditions import RegexGuard, compile_condition_map
from detector.rules.context import RuleContext
from detector.rules.regexes import DEFAULT_MAX_LENGTH, linear_time
from tests.unit.rules.factories import obs, rule

PATHOLOGICAL = [
    # (pattern, a value that makes a backtracking engine take seconds or give up)
    ("^(a+)+$", "a" * 100_000 + "!"),
    ("(a|aa)+b", "a" * 100_000),
    (".*x.*y.*z", "xy" * 50_000),
    ("(a|aa)+$", "a" * 5_000 + "!a"),  # matches, at the very end
]


@pytest.mark.parametrize(("pattern", "value"), PATHOLOGICAL, ids=[p for p, _ in PATHOLOGICAL])
def test_pathological_patterns_run_on_the_linear_time_engine(pattern: str, value: str) -> None:
    assert linear_time(pattern)
    guard = RegexGuard(timeout=0.01, max_length=len(value))
    predicate = compile_condition_map({"actor": {"regex": pattern}}, guard.for_rule("r"))
    expected = pattern == "(a|aa)+$"
    assert predicate(obs(actor=value)) is expected
    assert guard.limits == {}  # no timeout, no fallback, nothing cut short


def test_a_match_the_backtracking_engine_gave_up_on_is_found() -> None:
    # The old engine ran out of time on the first start position and said "no match".
    engine = RuleEngine(
        [rule(kind="match", where={"actor": {"regex": "(a|aa)+$"}})],
        RuleContext(regex_timeout=0.01),
    )
    assert len(engine.evaluate(obs(actor="a" * 5_000 + "!a"))) == 1
    assert engine.regex_timeouts == 0
    assert engine.regex_limits == {}


def test_a_long_value_is_searched_on_its_prefix_and_counted() -> None:
    guard = RegexGuard().for_rule("long-values")
    predicate = compile_condition_map({"actor": {"regex": "needle"}}, guard)
    padding = "x" * DEFAULT_MAX_LENGTH
    assert predicate(obs(actor="needle" + padding))
    assert not predicate(obs(actor=padding + "needle"))
    assert predicate(obs(actor="x" * 100 + "needle"))  # short values are not counted
    assert guard.limits == {("long-values", "too_long"): 2}


def test_a_condition_sets_its_own_max_length() -> None:
    guard = RegexGuard().for_rule("short")
    spec = {"actor": {"regex": {"pattern": "b", "max_length": 3}}}
    predicate = compile_condition_map(spec, guard)
    assert predicate(obs(actor="ab"))
    assert not predicate(obs(actor="aaab"))
    assert guard.limits == {("short", "too_long"): 1}
    assert compile_condition_map({"actor": {"regex": {"pattern": "b"}}}, guard)(obs(actor="aaab"))


def test_context_sets_the_default_max_length() -> None:
    engine = RuleEngine(
        [rule(kind="match", where={"actor": {"regex": "b"}})], RuleContext(regex_max_length=3)
    )
    assert engine.evaluate(obs(actor="aaab")) == []
    assert engine.regex_limits == {("test-rule", "too_long"): 1}


def test_lookaround_falls_back_to_the_backtracking_engine_and_is_counted() -> None:
    pattern = "^system:(?!serviceaccount:)"
    assert not linear_time(pattern)
    guard = RegexGuard().for_rule("k8s")
    predicate = compile_condition_map({"actor": {"regex": pattern}}, guard)
    assert predicate(obs(actor="system:kube-scheduler"))
    assert not predicate(obs(actor="system:serviceaccount:ci:deployer"))
    assert guard.limits == {("k8s", "fallback"): 2}


def test_a_fallback_that_runs_out_of_time_is_no_match_and_counted() -> None:
    catastrophic = "^(?=a)(a|aa)+$"  # the lookahead keeps it off RE2
    engine = RuleEngine(
        [rule(kind="match", where={"actor": {"regex": catastrophic}})],
        RuleContext(regex_timeout=0.01),
    )
    assert engine.evaluate(obs(actor="a" * 5_000 + "!")) == []
    assert engine.regex_limits == {("test-rule", "fallback"): 1, ("test-rule", "timeout"): 1}
    assert engine.regex_timeouts == 1


def test_limits_are_counted_per_rule() -> None:
    engine = RuleEngine(
        [
            rule(id="first", kind="match", where={"actor": {"regex": "x"}}),
            rule(id="second", kind="match", where={"target": {"regex": "(a)\\1"}}),
        ],
        RuleContext(regex_max_length=4),
    )
    engine.evaluate(obs(actor="aaaaa", target="aa"))
    assert engine.regex_limits == {("first", "too_long"): 1, ("second", "fallback"): 1}


def test_a_lone_surrogate_in_a_value_does_not_break_the_linear_engine() -> None:
    predicate = compile_condition_map({"actor": {"regex": "^.x"}}, RegexGuard())
    assert predicate(obs(actor="\ud800x"))


def _regexes(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [value for key, value in node.items() if key == "regex" and isinstance(value, str)]
        return found + [pattern for value in node.values() for pattern in _regexes(value)]
    if isinstance(node, list):
        return [pattern for item in node for pattern in _regexes(item)]
    return []


KNOWN_LOOKAROUNDS = {
    # m365.yaml: forwarding set to anything but $null; no RE2 form says that exactly.
    "(?i)-(ForwardingSmtpAddress|ForwardingAddress) (?!\\$?null\\b)\\S",
}


def test_shipped_regexes_run_in_linear_time_but_for_known_lookarounds() -> None:
    packs = sorted(Path(bundled_rules_dir()).glob("*.yaml"))
    patterns = {p for pack in packs for p in _regexes(yaml.safe_load(pack.read_text()))}
    assert len(patterns) > 10
    backtracking = {pattern for pattern in patterns if not linear_time(pattern)}
    assert backtracking == KNOWN_LOOKAROUNDS


def test_limits_reach_the_metrics_endpoint() -> None:
    engine = RuleEngine(
        [rule(id="ua-regex", kind="match", where={"actor": {"regex": "(?i)python"}})],
        RuleContext(regex_max_length=8),
    )
    metrics = Metrics()
    before = engine.regex_limits
    engine.evaluate(obs(actor="curl/8.5.0 python-requests"))
    metrics.count_regex_limits(engine.regex_limits - before)  # what the daemon does per batch
    labels = {"rule": "ua-regex", "reason": "too_long"}
    assert metrics.registry.get_sample_value("ciwatch_rule_regex_limits_total", labels) == 1
    server = MetricsServer(metrics, host="127.0.0.1", port=0, ready=lambda: True).start()
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5.0)
    finally:
        server.stop()
    assert response.status_code == 200
    assert 'ciwatch_rule_regex_limits_total{reason="too_long",rule="ua-regex"} 1.0' in response.text
