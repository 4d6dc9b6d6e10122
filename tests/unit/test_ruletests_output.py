"""What ``ciwatch test-rules`` says when an embedded test fails: where, what, and why.

One pack whose tests fail for every reason a test can fail; each test checks the
exact lines printed for one of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.cli import main
from detector.config import PipelineConfig
from detector.rules import load_rules
from detector.ruletests import MAX_REASONS, RuleTestResult, failure_report, run_rule_tests

PACK = """\
rules:
  - id: repo-create
    title: Repository created
    kind: match
    severity: low
    description: A person created a repository.
    where: {source: github_audit, action: repo.create}
    unless:
      - actor: {glob: "svc-*"}
    tests:
      - name: nothing fires
        alerts: 1
        events:
          - {source: github_audit, action: repo.destroy, actor: bob}
          - {source: github_audit, action: repo.create, actor: svc-deploy}
      - name: one fires too many
        alerts: 0
        events:
          - {source: github_audit, action: repo.create, actor: bob}
      - name: folded by suppression
        alerts: 2
        events:
          - {source: github_audit, action: repo.create, actor: bob, repeat: 2}
      - name: not a vendor record
        alerts: 1
        events:
          - {source: github_audit, action: repo.create, actor: bob}
          - raw: {hello: world}
      - name: passes
        alerts: 1
        events:
          - {source: github_audit, action: repo.create, actor: bob}
  - id: sign-in-failures
    title: Sign-in failures
    kind: threshold
    severity: medium
    description: Many failed sign-ins.
    where:
      source: okta_system_log
      outcome: failure
    threshold: {window: 10m, count: 3}
    tests:
      - name: two are not three
        alerts: 1
        events:
          - {source: okta_system_log, action: user.session.start, actor: al,
             outcome: failure, repeat: 2}
          - {source: okta_system_log, action: user.session.start, actor: al}
      - name: many reasons
        alerts: 1
        events:
          - {source: okta_system_log, action: user.session.start, actor: a}
          - {source: github_audit, action: repo.create, actor: b}
          - {source: okta_system_log, action: user.session.start, actor: c}
          - {source: okta_system_log, action: user.session.start, actor: d,
             outcome: unknown}
  - id: corp-zone
    title: Corporate zone
    kind: match
    severity: low
    description: A sign-in from the corporate network zone.
    where: {source: okta_system_log, raw.client.zone: {prefix: corp}}
    tests:
      - name: compact events have no raw document
        alerts: 1
        events:
          - {source: okta_system_log, action: user.session.start, actor: al}
"""
# Lines: repo-create's tests at 11, 16, 20, 24 (events at 14 and 15, 19, 23, 27 and 28);
# sign-in-failures' at 43 and 49 (events at 46 and 48; 52, 53, 54, 55); corp-zone's at 64
# (event at 67).


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RuleTestResult]:
    path = tmp_path_factory.mktemp("pack") / "pack.yaml"
    path.write_text(PACK, encoding="utf-8")
    return {r.test: r for r in run_rule_tests(load_rules([path]), PipelineConfig())}


def report(results: dict[str, RuleTestResult], test: str, **options: bool) -> list[str]:
    result = results[test]
    assert not result.passed
    return [
        line.replace(result.location.rpartition(":")[0], "P")
        for line in failure_report(result, **options)
    ]


def test_no_alert_names_the_first_condition_each_event_failed(
    results: dict[str, RuleTestResult],
) -> None:
    assert report(results, "nothing fires") == [
        "FAIL P:11: rule repo-create, test 'nothing fires': expected 1 alert, got 0",
        "  events[0] (line 14): where.action: wanted repo.create, got repo.destroy",
        "  events[1] (line 15): unless[0] held: {actor: {glob: svc-*}} (event: actor=svc-deploy)",
    ]


def test_too_many_alerts_lists_the_alerts_and_the_events_that_matched(
    results: dict[str, RuleTestResult],
) -> None:
    assert report(results, "one fires too many") == [
        "FAIL P:16: rule repo-create, test 'one fires too many': expected 0 alerts, got 1",
        "  alert: bob performed repo.create (github_audit, success)",
        "  events[0] (line 19): matched where and unless",
    ]


def test_fewer_alerts_than_matches_names_suppression(results: dict[str, RuleTestResult]) -> None:
    assert report(results, "folded by suppression") == [
        "FAIL P:20: rule repo-create, test 'folded by suppression': expected 2 alerts, got 1",
        "  2 of 2 events matched where and unless; "
        "matches within suppress 1h per actor fold into one alert",
        "  alert: bob performed repo.create (github_audit, success)",
        "  events[0] x2 (line 23): matched where and unless",
    ]


def test_an_event_that_cannot_be_built_names_its_line(results: dict[str, RuleTestResult]) -> None:
    (line,) = report(results, "not a vendor record")
    assert line.startswith(
        "FAIL P:24: rule repo-create, test 'not a vendor record': "
        "events[1] (line 28): raw event did not normalize: "
    )


def test_a_threshold_not_reached_says_what_it_needs(results: dict[str, RuleTestResult]) -> None:
    assert report(results, "two are not three") == [
        "FAIL P:43: rule sign-in-failures, test 'two are not three': expected 1 alert, got 0",
        "  2 of 3 events matched where and unless; needs 3 within 10m per actor",
        "  events[1] (line 48): where.outcome: wanted failure, got success",
        "  events[0] x2 (line 46): matched where and unless",
    ]


def test_a_missing_value_is_named_as_missing(results: dict[str, RuleTestResult]) -> None:
    assert report(results, "compact events have no raw document") == [
        "FAIL P:64: rule corp-zone, test 'compact events have no raw document': "
        "expected 1 alert, got 0",
        "  events[0] (line 67): where.raw.client.zone: wanted {prefix: corp}, "
        "got nothing (no such value)",
    ]


def test_reasons_are_capped_unless_verbose(results: dict[str, RuleTestResult]) -> None:
    short = report(results, "many reasons")
    assert short == [
        "FAIL P:49: rule sign-in-failures, test 'many reasons': expected 1 alert, got 0",
        "  events[0] (line 52): where.outcome: wanted failure, got success",
        "  events[1] (line 53): where.source: wanted okta_system_log, got github_audit",
        "  events[2] (line 54): where.outcome: wanted failure, got success",
        "  ... 1 more (--verbose shows all)",
    ]
    assert len(short) == MAX_REASONS + 2
    full = report(results, "many reasons", verbose=True)
    assert full[:-1] == short[:-1]
    assert full[-1] == "  events[3] (line 55): where.outcome: wanted failure, got unknown"


def test_passing_tests_carry_no_diagnosis(results: dict[str, RuleTestResult]) -> None:
    passed = results["passes"]
    assert passed.passed and passed.location == "" and passed.why == ()


def test_the_command_prints_failures_on_stderr_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(PACK, encoding="utf-8")
    assert main(["test-rules", str(path), "--rule", "repo-create"]) == 1
    out, err = capsys.readouterr()
    assert out == "1 of 5 rule tests passed (1 rules)\n"
    assert err.splitlines()[:3] == [
        f"FAIL {path}:11: rule repo-create, test 'nothing fires': expected 1 alert, got 0",
        "  events[0] (line 14): where.action: wanted repo.create, got repo.destroy",
        "  events[1] (line 15): unless[0] held: {actor: {glob: svc-*}} (event: actor=svc-deploy)",
    ]
    assert sum(line.startswith("FAIL ") for line in err.splitlines()) == 4


def test_verbose_adds_the_table_of_every_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(PACK, encoding="utf-8")
    assert main(["test-rules", str(path), "--rule", "sign-in-failures", "-v"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split() == ["rule", "test", "expected", "alerts", "result"]
    assert out.splitlines()[-1] == "0 of 2 rule tests passed (1 rules)"
    assert "  events[3] (line 55): where.outcome: wanted failure, got unknown" in err
    assert "more (--verbose shows all)" not in err
